#!/usr/bin/env bash
# Rebuilds test/fixtures/hello: a two-layer OCI image layout with a static busybox, small
# enough to ship in the repo, so that the quick start and the tests work with no network.
# Needs: umoci, busybox-static (apt). Output is committed; rerun only to change the image.
set -euo pipefail
cd "$(dirname "$0")/.."
out=test/fixtures/hello
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
rm -rf "$out"
umoci init --layout "$out"
umoci new --image "$out:latest"
umoci unpack --image "$out:latest" "$work/b"
r="$work/b/rootfs"
mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/var/lib/hello"
cp /bin/busybox "$r/bin/busybox"
for a in sh echo cat ls id stat; do ln -s busybox "$r/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$r/etc/passwd"
printf 'hello from a layer als stored\n' > "$r/etc/motd"
printf 'scratch\n' > "$r/var/lib/hello/old"
umoci repack --image "$out:latest" "$work/b"
# layer 2 (a fresh bundle, so repack diffs against layer 1): a change, a deletion
# (whiteout) and a setuid file
rm -rf "$work/b"
umoci unpack --image "$out:latest" "$work/b"
rm "$r/var/lib/hello/old"
printf 'second layer\n' > "$r/var/lib/hello/new"
printf '#!/bin/sh\necho hi\n' > "$r/bin/hi"; chmod 4755 "$r/bin/hi"
umoci repack --image "$out:latest" "$work/b"
umoci config --image "$out:latest" --config.cmd /bin/cat --config.cmd /etc/motd \
  --os linux --architecture amd64
umoci gc --layout "$out"
chmod -R a+rX "$out"
du -sh "$out"
