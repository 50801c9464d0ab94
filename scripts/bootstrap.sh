#!/usr/bin/env bash
# Prepares this checkout and then runs a command:
#   bash scripts/bootstrap.sh [--db] -- COMMAND [ARGS...]
# Idempotent and quick when everything is in place:
#   1. npm ci when node_modules is missing or older than package-lock.json;
#   2. finds (or builds, once) the Temporal CLI and exports TEMPORAL_CLI;
#   3. checks PostgreSQL; with --db also creates the DATABASE_URL database and migrates it.
#      With DATABASE_URL unset and nothing on 127.0.0.1:5432 (or MIXROUTE_EMBEDDED_PG=1),
#      first starts an embedded PostgreSQL (scripts/embedded-pg.ts) for as long as COMMAND runs;
#      never with NODE_ENV=production (any case): there DATABASE_URL must be set.
set -euo pipefail
cd "$(dirname "$0")/.."

all_args=("$@")
prepare_db=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --db) prepare_db=1; shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done

say() { echo "[bootstrap] $*" >&2; }

if ! command -v node >/dev/null 2>&1; then say "Node.js 20.19+ is required and was not found on PATH"; exit 1; fi
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' ||
  { say "Node.js 20.19+ is required; found $(node --version)"; exit 1; }

lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp="node_modules/.mixroute-lock.sha256"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_hash" ]]; then
  say "installing dependencies (npm ci)..."
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$lock_hash" >"$stamp"
fi

TEMPORAL_CLI="$(bash scripts/find-temporal-cli.sh)"
export TEMPORAL_CLI

# A set DATABASE_URL always wins; MIXROUTE_EMBEDDED_PG=0 never embeds, =1 always does.
if [[ -z "${DATABASE_URL:-}" && "${MIXROUTE_EMBEDDED_PG:-auto}" != 0 ]]; then
  reason=""
  if [[ "${MIXROUTE_EMBEDDED_PG:-auto}" == 1 ]]; then
    reason="MIXROUTE_EMBEDDED_PG=1"
  elif ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
    reason="DATABASE_URL is not set and nothing answers on 127.0.0.1:5432"
  fi
  if [[ -n "$reason" ]]; then
    # The embedded server is for development: production must name its database.
    node_env="${NODE_ENV:-}"
    if [[ "${node_env,,}" == production ]]; then
      say "DATABASE_URL must be set when NODE_ENV=production (the embedded PostgreSQL is for development only)"
      exit 1
    fi
    # This script again, under the server: DATABASE_URL is then set, so it goes on from here.
    exec node --import tsx scripts/embedded-pg.ts --reason "$reason" -- bash scripts/bootstrap.sh ${all_args[@]+"${all_args[@]}"}
  fi
fi

if [[ $prepare_db -eq 1 ]]; then
  node --import tsx scripts/prepare-db.ts --migrate
else
  node --import tsx scripts/prepare-db.ts --check
fi

if [[ $# -gt 0 ]]; then
  # npm run puts node_modules/.bin on PATH; make a direct call find the same tools.
  PATH="$PWD/node_modules/.bin:$PATH" exec "$@"
fi
