#!/usr/bin/env bash
# Build a .deb of als with dpkg-deb alone (no debhelper): the binary in /usr/bin, shell
# completions, man pages generated from the help, the systemd units from contrib/systemd/
# under /lib/systemd/system (not enabled: `als serve` needs a store and a mount point chosen).
#
#   bash scripts/package-deb.sh [--bin FILE] [--out DIR] [--compress xz|gzip|zstd|none]
#   (also: bun run package)
#
#   --bin FILE     the als executable to package (default dist/als, built first when missing)
#   --out DIR      where the .deb goes (default dist/); its name is als_VERSION_ARCH.deb
#   --compress     dpkg-deb's compression: gzip (default: 17 s of CPU here, 54 MB), xz (smallest,
#                  41 MB, but 2 minutes of CPU), zstd (needs dpkg 1.21.18+ where it is installed)
#
# Version from package.json, architecture from dpkg --print-architecture, file times and the
# man pages' date from SOURCE_DATE_EPOCH (default: the last commit's time), so a rebuild of the
# same commit gives the same package.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/install-lib.sh
. "$repo/scripts/install-lib.sh"

bin=""
out="$repo/dist"
compress=gzip
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) [ $# -ge 2 ] || die 2 "--bin needs a file"; bin=$2; shift 2 ;;
    --bin=*) bin=${1#--bin=}; shift ;;
    --out) [ $# -ge 2 ] || die 2 "--out needs a directory"; out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    --compress) [ $# -ge 2 ] || die 2 "--compress needs a type"; compress=$2; shift 2 ;;
    --compress=*) compress=${1#--compress=}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die 2 "unknown argument: $1 (usage: package-deb.sh [--bin FILE] [--out DIR] [--compress TYPE])" ;;
  esac
done
case "$compress" in xz|gzip|zstd|none) ;; *) die 2 "--compress must be xz, gzip, zstd or none: $compress" ;; esac
command -v dpkg-deb >/dev/null 2>&1 || die 1 "dpkg-deb is needed (apt-get install dpkg)"

# The version: package.json's, in Debian's grammar, and the binary must say the same.
version=$(sed -n 's/^  "version": "\([^"]*\)",\{0,1\}$/\1/p' "$repo/package.json" | head -n1)
[[ "$version" =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die 1 "package.json's version is not a Debian upstream version: '$version'"
arch=$(dpkg --print-architecture)
[[ "$arch" =~ ^[a-z0-9-]+$ ]] || die 1 "dpkg --print-architecture printed: $arch"

if [ -z "$bin" ]; then
  bin="$repo/dist/als"
  if [ ! -e "$bin" ]; then
    say "dist/als is missing: building it (npx bun run build)"
    (cd "$repo" && npx bun run build)
  fi
fi
[ -f "$bin" ] && [ -x "$bin" ] || die 1 "not an executable file: $bin"
bin_version=$(als_version "$bin") || die 1 "$bin --version printed no version"
[ "$bin_version" = "$version" ] || die 1 "$bin says version $bin_version, package.json $version: rebuild it (npx bun run build)"

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)
fi
[[ "$SOURCE_DATE_EPOCH" =~ ^[0-9]+$ ]] || die 2 "SOURCE_DATE_EPOCH is not a number of seconds: $SOURCE_DATE_EPOCH"
export SOURCE_DATE_EPOCH

work=$(mktemp -d "${TMPDIR:-/tmp}/als-deb-XXXXXX")
trap 'rm -rf "$work"' EXIT
gen="$work/generated"
root="$work/root"

say "Generating completions and man pages from $bin (als $version)"
stage_generated "$bin" "$gen" "$repo" /usr/bin/als

say "Laying out the package"
install -D -m 0755 "$bin" "$root/usr/bin/als"
install -D -m 0644 "$gen/completion/als.bash" "$root/usr/share/bash-completion/completions/als"
# Debian's zsh reads vendor completions from here (site-functions is for /usr/local)
install -D -m 0644 "$gen/completion/_als" "$root/usr/share/zsh/vendor-completions/_als"
install -D -m 0644 "$gen/completion/als.fish" "$root/usr/share/fish/vendor_completions.d/als.fish"
mkdir -p "$root/usr/share/man/man1"
for page in "$gen"/man/*.1; do
  gzip -9n <"$page" >"$root/usr/share/man/man1/${page##*/}.gz"
done
units=()
for unit in "$gen"/systemd/*; do
  [ -e "$unit" ] || continue
  install -D -m 0644 "$unit" "$root/lib/systemd/system/${unit##*/}"
  units+=("${unit##*/}")
done
mkdir -p "$root/usr/share/doc/als"
cat >"$root/usr/share/doc/als/copyright" <<'EOF'
als: an Additional Layer Store for podman, buildah and CRI-O

Copyright: the als authors
License: Apache-2.0
 On Debian systems the full text of the Apache License, Version 2.0, is in
 /usr/share/common-licenses/Apache-2.0.

/usr/bin/als is one executable made with `bun build --compile`: it carries the Bun runtime
(MIT; its JavaScriptCore engine is LGPL-2) and the npm packages named in the source's
package-lock.json, each under its own license (MIT, Apache-2.0, ISC).
EOF
chmod 0644 "$root/usr/share/doc/als/copyright"

mkdir -p "$root/DEBIAN"
# The lowest glibc symbol version the binary needs, when objdump can say.
depends=""
if command -v objdump >/dev/null 2>&1; then
  glibc=$(objdump -T "$bin" 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1 || true)
  [ -z "$glibc" ] || depends="libc6 (>= $glibc)"
fi
installed_size=$(du -sk --apparent-size "$root" | cut -f1)
{
  printf 'Package: als\n'
  printf 'Version: %s\n' "$version"
  printf 'Architecture: %s\n' "$arch"
  printf 'Maintainer: als developers <als@invalid>\n'
  printf 'Installed-Size: %s\n' "$installed_size"
  [ -z "$depends" ] || printf 'Depends: %s\n' "$depends"
  printf 'Recommends: podman\n'
  printf 'Section: admin\n'
  printf 'Priority: optional\n'
  printf 'Description: Additional Layer Store for podman, buildah and CRI-O\n'
  printf ' als fills a directory with image layers that containers/storage (podman,\n'
  printf ' buildah, CRI-O) takes instead of pulling them: linked from a pool on a shared\n'
  printf ' filesystem when one has the layer, else pulled from the registry, verified\n'
  printf ' and extracted. Every step is an event in an append-only, hash-chained log.\n'
} >"$root/DEBIAN/control"

if [ ${#units[@]} -gt 0 ]; then
  # systemd reads the units again after they come or go; they are stopped before removal but
  # never enabled here (the store and mount point are the administrator's choice).
  cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null || true
fi
EOF
  cat >"$root/DEBIAN/prerm" <<EOF
#!/bin/sh
set -e
if [ "\$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl --system stop ${units[*]} >/dev/null 2>&1 || true
fi
EOF
  cat >"$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null || true
fi
EOF
  chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
fi

(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
find "$root" -type d -exec chmod 0755 {} +
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out"
deb="$out/als_${version}_${arch}.deb"
say "Building $deb ($compress)"
level=()
[ "$compress" != gzip ] || level=(-z6)
dpkg-deb --root-owner-group -Z"$compress" "${level[@]}" --build "$root" "$deb.tmp.$$" >/dev/null
mv -f "$deb.tmp.$$" "$deb"
printf '%s\n' "$deb"
