#!/usr/bin/env bash
# The test suite: unit, replay, integration against a real docker-registry on 127.0.0.1,
# end to end with real podman 4.3.1 (host) and podman 5.4.2 (Debian 13 chroot).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/setup-podman5.sh /var/tmp/als-trixie >/dev/null
[ -x dist/als ] || npx bun run build
log=$(mktemp)
set +e
npx bun test --timeout 600000 "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
passed=$(grep -E '^ *[0-9]+ pass$' "$log" | tail -n 1 | tr -dc '0-9')
failed=$(grep -E '^ *[0-9]+ fail$' "$log" | tail -n 1 | tr -dc '0-9')
rm -f "$log"
echo "tests: ${passed:-0} passed, ${failed:-0} failed"
exit "$rc"
