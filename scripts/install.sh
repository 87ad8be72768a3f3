#!/usr/bin/env bash
# Install als: the binary, shell completions, man pages generated from its help, and the systemd
# unit for `als serve` (contrib/systemd/, when the repo has it), under a prefix.
#
#   bash scripts/install.sh [--prefix DIR] [--bin FILE]
#
#   --prefix DIR   absolute; default /usr/local
#   --bin FILE     the als executable to install (default dist/als, built first when missing;
#                  e.g. dist/als-baseline from `bun run build:baseline` for CPUs without AVX2)
#
# What lands where (PREFIX=/usr/local shown):
#   /usr/local/bin/als
#   /usr/local/share/bash-completion/completions/als
#   /usr/local/share/zsh/site-functions/_als
#   /usr/local/share/fish/vendor_completions.d/als.fish
#   /usr/local/share/man/man1/als.1, als-CMD.1 (one per command)
#   /usr/local/lib/systemd/system/*.service from contrib/systemd (systemd reads this directory
#     for /usr and /usr/local; for another prefix the script says how to link the unit)
#   /usr/local/share/als/install-manifest: every file installed, with its sha256, and every
#     directory the install created; scripts/uninstall.sh removes exactly those.
#
# Running it again replaces the files, and removes files an earlier install made that this one
# no longer makes (a command dropped from the help, say), if they are unchanged.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/install-lib.sh
. "$repo/scripts/install-lib.sh"

prefix=/usr/local
bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die 2 "--prefix needs a directory"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --bin) [ $# -ge 2 ] || die 2 "--bin needs a file"; bin=$2; shift 2 ;;
    --bin=*) bin=${1#--bin=}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die 2 "unknown argument: $1 (usage: install.sh [--prefix DIR] [--bin FILE])" ;;
  esac
done
prefix=$(check_prefix "$prefix")

if [ -z "$bin" ]; then
  bin="$repo/dist/als"
  if [ ! -e "$bin" ]; then
    say "dist/als is missing: building it (npx bun run build)"
    (cd "$repo" && npx bun run build)
  fi
fi
[ -f "$bin" ] && [ -x "$bin" ] || die 1 "not an executable file: $bin"
version=$(als_version "$bin") || die 1 "$bin --version printed no version: is it an als binary for this machine?"

stage=$(mktemp -d "${TMPDIR:-/tmp}/als-install-XXXXXX")
trap 'rm -rf "$stage"' EXIT

say "Generating completions and man pages from $bin (als $version)"
stage_generated "$bin" "$stage" "$repo" "$prefix/bin/als"

# destination → staged source, mode
declare -a dests=() srcs=() modes=()
add() { dests+=("$1"); srcs+=("$2"); modes+=("$3"); }
add "$prefix/bin/als" "$bin" 0755
add "$prefix/share/bash-completion/completions/als" "$stage/completion/als.bash" 0644
add "$prefix/share/zsh/site-functions/_als" "$stage/completion/_als" 0644
add "$prefix/share/fish/vendor_completions.d/als.fish" "$stage/completion/als.fish" 0644
for page in "$stage"/man/*.1; do add "$prefix/share/man/man1/${page##*/}" "$page" 0644; done
units=()
for unit in "$stage"/systemd/*; do
  [ -e "$unit" ] || continue
  add "$prefix/lib/systemd/system/${unit##*/}" "$unit" 0644
  units+=("${unit##*/}")
done

manifest="$prefix/share/als/install-manifest"
declare -A old_files=() created_dirs=()
if [ -e "$manifest" ]; then
  read_manifest "$manifest" "$prefix" # fills manifest_files (path → sha256) and manifest_dirs
  for p in "${!manifest_files[@]}"; do old_files[$p]=${manifest_files[$p]}; done
  for d in "${manifest_dirs[@]}"; do [ -d "$d" ] && created_dirs[$d]=1; done
fi

# Directories: every missing one from the prefix down is created here and recorded.
make_dirs() {
  local d=$1 missing=()
  while [ ! -d "$d" ]; do missing=("$d" "${missing[@]}"); d=$(dirname "$d"); done
  for d in "${missing[@]}"; do
    mkdir -m 0755 "$d"
    case "$d" in "$prefix"|"$prefix"/*) created_dirs[$d]=1 ;; esac
  done
}

say "Installing into $prefix"
declare -A new_files=()
for i in "${!dests[@]}"; do
  dest=${dests[$i]}
  make_dirs "$(dirname "$dest")"
  # beside and renamed over: an als running from the old file keeps running
  tmp="$(dirname "$dest")/.${dest##*/}.als-install.$$"
  cp "${srcs[$i]}" "$tmp"
  chmod "${modes[$i]}" "$tmp"
  mv -f "$tmp" "$dest"
  new_files[$dest]=$(sha256 "$dest")
  printf '  %s\n' "$dest"
done

# Files an earlier install made that this one does not: removed when unchanged.
for p in "${!old_files[@]}"; do
  [ -n "${new_files[$p]+x}" ] && continue
  remove_if_unchanged "$p" "${old_files[$p]}" keep
done

make_dirs "$(dirname "$manifest")"
{
  printf '# als install manifest: written by scripts/install.sh, read by scripts/uninstall.sh\n'
  printf 'prefix %s\n' "$prefix"
  printf 'version %s\n' "$version"
  for d in "${!created_dirs[@]}"; do printf 'dir %s\n' "$d"; done | sort
  for p in "${!new_files[@]}"; do printf 'file %s %s\n' "${new_files[$p]}" "$p"; done | sort -k3
} >"$manifest.tmp.$$"
mv -f "$manifest.tmp.$$" "$manifest"
chmod 0644 "$manifest"
printf '  %s\n' "$manifest"

if [ ${#units[@]} -gt 0 ]; then
  case "$prefix" in
    /usr|/usr/local) systemd_reload ;;
    *)
      say "systemd does not read $prefix/lib/systemd/system; to use the unit:"
      for u in "${units[@]}"; do printf '  systemctl link %s\n' "$prefix/lib/systemd/system/$u"; done
      ;;
  esac
else
  say "No systemd unit installed (contrib/systemd/ has none yet)"
fi

case ":$PATH:" in *":$prefix/bin:"*) ;; *) say "$prefix/bin is not on PATH: add it, or run $prefix/bin/als" ;; esac
say "als $version installed; remove it with: bash scripts/uninstall.sh --prefix $prefix"
