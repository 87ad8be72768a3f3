#!/usr/bin/env bash
# The shipped binary and the Deno entry both start, create a store and answer a lookup.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
miss="sha256:$(printf '0%.0s' {1..64})"

./dist/als --help >/dev/null
./dist/als init --root "$tmp/bin" | grep -q "additionallayerstores"
set +e; ./dist/als lookup "$miss" --root "$tmp/bin" 2>/dev/null; rc=$?; set -e
[ "$rc" = 1 ] || { echo "binary: lookup of a missing layer exited $rc, want 1"; exit 1; }

npx deno task -q als init --root "$tmp/deno" | grep -q "additionallayerstores"
set +e; npx deno task -q als lookup "$miss" --root "$tmp/deno" 2>/dev/null; rc=$?; set -e
[ "$rc" = 1 ] || { echo "deno: lookup of a missing layer exited $rc, want 1"; exit 1; }
echo "smoke: binary and Deno OK"
