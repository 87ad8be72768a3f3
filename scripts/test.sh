#!/usr/bin/env bash
# The test suite: unit, replay, integration against a real docker-registry on 127.0.0.1,
# end to end with real podman 4.3.1 (host) and podman 5.4.2 (Debian 13 chroot).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -x dist/als ] || npx bun run build
exec npx bun test --timeout 600000 "$@"
