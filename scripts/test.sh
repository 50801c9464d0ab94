#!/usr/bin/env bash
# What `npm test` runs after bootstrap: type check, lint, the layer check, then vitest.
# tsx runs TypeScript without checking types, so the check happens here.
# Extra arguments go to vitest (npm test -- test/unit).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "[test] type check (tsc --noEmit)" >&2
tsc --noEmit
echo "[test] lint (eslint)" >&2
eslint --max-warnings=0 .
echo "[test] layers (dependency-cruiser; docs/development.md#layers)" >&2
node --import tsx scripts/layers.ts
exec vitest run "$@"
