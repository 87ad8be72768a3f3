#!/usr/bin/env bash
# Installs what als's build and tests need on Debian 12 (run as root): the container tools
# the tests drive for real, and the pinned npm packages (Bun, Deno, TypeScript, Effect …).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for cmd in podman skopeo docker-registry umoci runc getfattr debootstrap zstd busybox man openssl script; do
  command -v "$cmd" >/dev/null 2>&1 || need+=("$cmd")
done
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    podman skopeo docker-registry umoci runc uidmap fuse-overlayfs attr debootstrap zstd \
    ca-certificates iptables time busybox-static man-db openssl bsdutils >/dev/null
fi
if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
