#!/usr/bin/env bash
# Prints the directory holding what `npm run cluster` runs, built from Go modules
# and cached outside the repo (the first build takes a few minutes):
#   temporal-server     go.temporal.io/server/cmd/server            (VERSION)
#   temporal-sql-tool   go.temporal.io/server/cmd/tools/sql         (VERSION)
#   schema/             the server module's SQL schemas, for temporal-sql-tool
#   temporal-ui-server  github.com/temporalio/ui-server/v2/cmd/server (UI_VERSION,
#                       the Web UI the Temporal CLI embeds; UI assets included)
# Order: $TEMPORAL_SERVER_DIR (a directory holding all of it), the cache dir,
# then a build from the Go module proxy.
# Progress goes to stderr; stdout carries only the directory.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=1.29.1
# The UI server the Temporal CLI 1.5.1 embeds: its module is already in the Go
# module cache after bootstrap built the CLI.
UI_VERSION=2.42.1
CACHE_DIR="${MIXROUTE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mixroute}/temporal-server-${VERSION}"

say() { echo "[temporal-server] $*" >&2; }
have_all() {
  [[ -x "$1/temporal-server" && -x "$1/temporal-sql-tool" && -x "$1/temporal-ui-server" && -f "$1/schema/postgresql/v12/temporal/schema.sql" ]]
}

if [[ -n "${TEMPORAL_SERVER_DIR:-}" ]]; then
  if have_all "$TEMPORAL_SERVER_DIR"; then echo "$TEMPORAL_SERVER_DIR"; exit 0; fi
  say "TEMPORAL_SERVER_DIR=$TEMPORAL_SERVER_DIR does not hold temporal-server, temporal-sql-tool, temporal-ui-server and schema/"; exit 1
fi

if have_all "$CACHE_DIR"; then echo "$CACHE_DIR"; exit 0; fi

GO="$(command -v go || true)"
if [[ -z "$GO" && -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go; fi
if [[ -z "$GO" ]]; then
  say "no Temporal server found in $CACHE_DIR and Go is not installed to build one."
  say "Install Go (1.24+) and run this again, or set TEMPORAL_SERVER_DIR to a directory with"
  say "temporal-server and temporal-sql-tool ${VERSION}, temporal-ui-server and the server's schema/ folder."
  exit 1
fi

mkdir -p "$CACHE_DIR"
# Two callers started at once (npm run cluster beside the cluster test) build
# once: the second waits for the first and then finds its binaries.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE_DIR/.build.lock"
  if ! flock -n 9; then
    say "another process is building the Temporal server; waiting for it..."
    flock 9
  fi
  if have_all "$CACHE_DIR"; then echo "$CACHE_DIR"; exit 0; fi
fi
say "building Temporal server ${VERSION}, temporal-sql-tool and the Web UI server from their Go modules into $CACHE_DIR (one time; takes a few minutes)..."
LOG="$CACHE_DIR/build.log"
: >"$LOG"
(
  export CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOBIN="$CACHE_DIR/.bin"
  # Both server commands live in one module: one `go install` resolves it once.
  "$GO" install -ldflags "-s -w" \
    "go.temporal.io/server/cmd/server@v${VERSION}" \
    "go.temporal.io/server/cmd/tools/sql@v${VERSION}" >>"$LOG" 2>&1
  mv "$GOBIN/server" "$GOBIN/temporal-server"
  mv "$GOBIN/sql" "$GOBIN/temporal-sql-tool"
  "$GO" install -ldflags "-s -w" "github.com/temporalio/ui-server/v2/cmd/server@v${UI_VERSION}" >>"$LOG" 2>&1
  mv "$GOBIN/server" "$GOBIN/temporal-ui-server"
  # temporal-sql-tool reads the schema files from disk; they ship in the server
  # module's source. A copy here keeps the cache whole when the module cache is cleaned.
  src="$("$GO" env GOMODCACHE)/go.temporal.io/server@v${VERSION}/schema"
  rm -rf "$GOBIN/schema"
  cp -R "$src" "$GOBIN/schema"
  chmod -R u+w "$GOBIN/schema"
) &
build_pid=$!
start=$SECONDS
while kill -0 "$build_pid" 2>/dev/null; do
  sleep 15
  if kill -0 "$build_pid" 2>/dev/null; then
    say "still building ($((SECONDS - start))s; $(grep -c '^go: downloading' "$LOG" 2>/dev/null || true) modules downloaded so far)"
  fi
done
if ! wait "$build_pid" || ! have_all "$CACHE_DIR/.bin"; then
  say "build failed; last lines of $LOG:"
  tail -n 20 "$LOG" >&2
  exit 1
fi
# Moved in only once complete, so a half-built cache is never taken for a whole one.
rm -rf "$CACHE_DIR/schema"
mv "$CACHE_DIR/.bin/temporal-server" "$CACHE_DIR/.bin/temporal-sql-tool" "$CACHE_DIR/.bin/temporal-ui-server" "$CACHE_DIR/.bin/schema" "$CACHE_DIR/"
rmdir "$CACHE_DIR/.bin"
say "built temporal-server, temporal-sql-tool and temporal-ui-server into $CACHE_DIR in $((SECONDS - start))s"
echo "$CACHE_DIR"
