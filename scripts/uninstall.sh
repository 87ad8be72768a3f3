#!/usr/bin/env bash
# Remove what scripts/install.sh installed under a prefix, and nothing else: the files listed in
# PREFIX/share/als/install-manifest (each only while it still holds what was installed), then
# the directories the install created, when they are empty. Stores are never touched: the end
# of the output says how to remove one.
#
#   bash scripts/uninstall.sh [--prefix DIR] [--force]
#
#   --prefix DIR   the prefix given to install.sh (absolute; default /usr/local)
#   --force        also remove listed files that were changed since the install
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/install-lib.sh
. "$repo/scripts/install-lib.sh"

prefix=/usr/local
mode=keep
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die 2 "--prefix needs a directory"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --force) mode=force; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die 2 "unknown argument: $1 (usage: uninstall.sh [--prefix DIR] [--force])" ;;
  esac
done
prefix=$(check_prefix "$prefix")

manifest="$prefix/share/als/install-manifest"
[ -f "$manifest" ] || die 1 "no als install under $prefix (no $manifest)"
read_manifest "$manifest" "$prefix"

# A unit still running keeps its process (and its mount) after the files go: say so first.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  for p in "${!manifest_files[@]}"; do
    case "$p" in
      "$prefix"/lib/systemd/system/*)
        u=${p##*/}
        if systemctl is-active --quiet "$u" 2>/dev/null || systemctl is-enabled --quiet "$u" 2>/dev/null; then
          warn "$u is enabled or running: stop it first (systemctl disable --now $u), its mount stays otherwise"
        fi
        ;;
    esac
  done
fi

say "Removing als from $prefix"
units_removed=""
for p in "${!manifest_files[@]}"; do
  before=$removed_count
  remove_if_unchanged "$p" "${manifest_files[$p]}" "$mode"
  case "$p" in "$prefix"/lib/systemd/system/*) [ "$removed_count" = "$before" ] || units_removed=1 ;; esac
done

if [ "$kept_count" -gt 0 ]; then
  # The manifest keeps naming what was kept, so `uninstall.sh --force` can finish the job.
  {
    printf '# als install manifest: what uninstall.sh kept because it had changed\n'
    printf 'prefix %s\n' "$prefix"
    for d in "${manifest_dirs[@]}"; do printf 'dir %s\n' "$d"; done
    for p in "${kept_paths[@]}"; do printf 'file %s %s\n' "${manifest_files[$p]}" "$p"; done
  } >"$manifest.tmp.$$"
  mv -f "$manifest.tmp.$$" "$manifest"
else
  rm -f -- "$manifest"
fi
# deepest first; a directory that holds anything else stays
while IFS= read -r d; do
  [ -n "$d" ] || continue
  if rmdir -- "$d" 2>/dev/null; then printf '  removed %s/\n' "$d"; fi
done < <(printf '%s\n' "${manifest_dirs[@]}" | awk '{ print gsub("/", "/"), $0 }' | sort -rn | cut -d' ' -f2-)

[ -z "$units_removed" ] || systemd_reload

if [ "$kept_count" -gt 0 ]; then
  say "als removed from $prefix, except $kept_count changed file(s) named above"
else
  say "als removed from $prefix"
fi
cat <<'EOF'

Stores are left as they were. To remove one (ROOT: the --root it was used with; the default is
/var/lib/als as root, $XDG_DATA_HOME/als otherwise, or $ALS_ROOT):
  1. stop `als serve` on it (systemctl disable --now als-serve.service, or Ctrl-C) and check that
     nothing is mounted below it: findmnt -R ROOT
  2. podman images whose layers came from the store need them: remove those images first
     (podman rmi IMAGE), or pull them again after step 3 without the store
  3. remove the store from podman's storage.conf: the "ROOT:ref" entry of additionallayerstores
     under [storage.options] (in $CONTAINERS_STORAGE_CONF, ~/.config/containers/storage.conf or
     /etc/containers/storage.conf: podman info --format '{{.Store.ConfigFile}}' says which)
  4. rm -rf ROOT
EOF
