#!/usr/bin/env bash
# Prints the path of a Temporal CLI (which contains the dev server and Web UI).
# Order: $TEMPORAL_CLI, `temporal` on PATH (same version), the cache dir outside
# the repo, and only then a build from the Go module (takes minutes).
# Progress goes to stderr; stdout carries only the path.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="$(node -p "require('./package.json').mixroute.temporalCliVersion")"
CACHE_DIR="${MIXROUTE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mixroute}/temporal-${VERSION}"

say() { echo "[temporal-cli] $*" >&2; }

if [[ -n "${TEMPORAL_CLI:-}" ]]; then
  if [[ -x "$TEMPORAL_CLI" ]]; then echo "$TEMPORAL_CLI"; exit 0; fi
  say "TEMPORAL_CLI=$TEMPORAL_CLI is not an executable file"; exit 1
fi

if command -v temporal >/dev/null 2>&1; then
  found="$(command -v temporal)"
  if "$found" --version 2>/dev/null | grep -q "temporal version ${VERSION}"; then echo "$found"; exit 0; fi
  say "ignoring $found: not version ${VERSION}"
fi

if [[ -x "$CACHE_DIR/temporal" ]]; then echo "$CACHE_DIR/temporal"; exit 0; fi

if ! command -v go >/dev/null 2>&1; then
  say "no Temporal CLI found and Go is not installed to build one."
  say "Install the Temporal CLI ${VERSION} (https://docs.temporal.io/cli#install) and set TEMPORAL_CLI=/path/to/temporal,"
  say "or install Go 1.22+ and run this again to build it into $CACHE_DIR."
  exit 1
fi

mkdir -p "$CACHE_DIR"
# Two set-ups started at once (npm run dev beside npm test) build once: the
# second waits for the first and then finds its binary.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE_DIR/.build.lock"
  if ! flock -n 9; then
    say "another process is building the Temporal CLI; waiting for it..."
    flock 9
  fi
  if [[ -x "$CACHE_DIR/temporal" ]]; then echo "$CACHE_DIR/temporal"; exit 0; fi
fi
say "building Temporal CLI ${VERSION} from its Go module into $CACHE_DIR (one time; takes a few minutes)..."
LOG="$CACHE_DIR/build.log"
# Newer tags carry a replace directive and cannot be installed with `go install pkg@version`.
(
  export CGO_ENABLED=0 GOTOOLCHAIN=local GOBIN="$CACHE_DIR"
  go install -ldflags "-s -w -X github.com/temporalio/cli/temporalcli.Version=${VERSION}" \
    "github.com/temporalio/cli/cmd/temporal@v${VERSION}" >"$LOG" 2>&1 ||
    GONOSUMDB=github.com/temporalio/cli go install -ldflags "-s -w -X github.com/temporalio/cli/temporalcli.Version=${VERSION}" \
      "github.com/temporalio/cli/cmd/temporal@v${VERSION}" >>"$LOG" 2>&1
) &
build_pid=$!
start=$SECONDS
while kill -0 "$build_pid" 2>/dev/null; do
  sleep 15
  if kill -0 "$build_pid" 2>/dev/null; then
    say "still building ($((SECONDS - start))s; $(grep -c '^go: downloading' "$LOG" 2>/dev/null || true) modules downloaded so far)"
  fi
done
if ! wait "$build_pid" || [[ ! -x "$CACHE_DIR/temporal" ]]; then
  say "build failed; last lines of $LOG:"
  tail -n 20 "$LOG" >&2
  exit 1
fi
say "built $CACHE_DIR/temporal in $((SECONDS - start))s"
echo "$CACHE_DIR/temporal"
