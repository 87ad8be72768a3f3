#!/usr/bin/env bash
# CI's benchmark: `bun run bench --quick` (one small image, one round, fewer lookups and log
# events) proves the benchmark still runs end to end and prints its table. It is not a
# pass/fail on the targets: the exit status is 0 whenever the benchmark ran, whatever the
# figures. Runs as root (cache drops, podman); takes well under 2 minutes once the tools are in.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# GNU time measures CPU and peak RSS of every tool run
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends time >/dev/null
exec timeout 300 npx bun run bench --quick "$@"
