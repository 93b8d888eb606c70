#!/usr/bin/env bash
# Fuzzes the HTTP API from its own OpenAPI document: a fresh database, a `controlplane
# serve` on a free port, an admin token, then schemathesis (from PyPI, pinned, in a venv
# under .data/) with a fixed number of examples per operation. Fails on any 5xx, any
# answer that breaks its documented schema, status code or content type.
#
#   scripts/schemathesis.sh                   the short run of `make test`
#   SCHEMATHESIS_EXAMPLES=500 SCHEMATHESIS_PHASES=examples,coverage,fuzzing,stateful \
#     scripts/schemathesis.sh                 a longer run (docs/operations.md)
#
# Needs DATABASE_URL and NATS_URL (scripts/services.sh) and target/debug/controlplane
# (built by `cargo test` / `cargo build -p controlplane`; CONTROLPLANE_BIN to override).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${SCHEMATHESIS_EXAMPLES:-10}
PHASES=${SCHEMATHESIS_PHASES:-examples,coverage,fuzzing}
SEED=${SCHEMATHESIS_SEED:-20261127}
BIN=${CONTROLPLANE_BIN:-${CARGO_TARGET_DIR:-target}/debug/controlplane}
VENV=.data/schemathesis-venv
# Debian's python3 first: a pyenv 3.11.7 trips over a CPython AST bug in hypothesis.
PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
: "${DATABASE_URL:?run scripts/services.sh up first}" "${NATS_URL:?run scripts/services.sh up first}"

if [ "$("$VENV/bin/schemathesis" --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ]; then
  echo "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" || { echo "python3 -m venv failed: apt-get install python3-venv" >&2; exit 1; }
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
# CPython 3.11 (Debian's 3.11.2, pyenv's 3.11.7) can fail an `ast.parse` made deep in a call
# stack with "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905).
# Hypothesis parses source only to name a lambda in a strategy's repr; schemathesis's coverage
# phase gets there now and then, and the whole run ends as a runtime error that says nothing
# about the API. Such a lambda gets a plain name instead; nothing else changes.
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cat >"$site/cp_lambda_names.py" <<'PY'
from hypothesis.internal import lambda_sources

_describe = lambda_sources.lambda_description


def lambda_description(f):
    try:
        return _describe(f)
    except SystemError:
        return "lambda: <source not parsed>"


lambda_sources.lambda_description = lambda_description
PY
echo "import cp_lambda_names" >"$site/cp_lambda_names.pth"
[ -x "$BIN" ] || cargo build --locked -p controlplane

# A database and NATS names of its own, dropped afterwards.
id=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
db="cp_fuzz_$id"
psql "$DATABASE_URL" -qc "CREATE DATABASE $db"
db_url="${DATABASE_URL%/*}/$db"
case $DATABASE_URL in *\?*) db_url="$db_url?${DATABASE_URL#*\?}";; esac
password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
log=$(mktemp)
SERVER_PID=
cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  rm -f "$log"
  exit "$rc"
}
trap cleanup EXIT

APP_ENV=test DATABASE_URL="$db_url" NATS_URL="$NATS_URL" \
  NATS_SUBJECT_PREFIX="fuzz$id" EVENTS_STREAM="FUZZ_$id" \
  JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  ADMIN_PASSWORD="$password" HOST=127.0.0.1 PORT=0 RUST_LOG=warn \
  RATE_LIMITS="admin=1000000" LOGIN_RATE_PER_MINUTE=100000 \
  "$BIN" serve >"$log" 2>&1 &
SERVER_PID=$!
url=
for _ in $(seq 600); do
  url=$(grep -o 'http://[0-9.:]*' "$log" | head -n1 || true)
  [ -n "$url" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; echo "controlplane serve exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { cat "$log" >&2; echo "controlplane serve did not say where it listens" >&2; exit 1; }
token=$(curl -fsS "$url/auth/login" -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
# Something for the generated requests to find: a budget and a breaker.
curl -fsS -X PUT "$url/budget/limit" -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"tenant_id":"org1","project_id":"proj1","total_tokens":100000}' >/dev/null
curl -fsS -X PUT "$url/circuit-breakers/openai_api" -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{}' >/dev/null

echo "schemathesis $SCHEMATHESIS_VERSION against $url: $EXAMPLES examples per operation, phases $PHASES, seed $SEED"
status=0
# Its working files (.schemathesis/, .hypothesis/) go under .data/, not into the checkout.
# /sandbox/* is left out: it forwards to the sandbox service (none runs here, so every answer
# is the proxy's documented 503); controlplane/tests/it/sandbox_proxy.rs tests it.
mkdir -p .data/schemathesis-work
(cd .data/schemathesis-work && "../../$VENV/bin/schemathesis" run "$url/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases "$PHASES" --max-examples "$EXAMPLES" --seed "$SEED" \
  --exclude-path-regex '^/(docs|sandbox/)' --exclude-path /ws \
  --exclude-path /auth/logout \
  --generation-database none --request-timeout 30 --no-color \
  --workers 2) || status=$?
if grep -qi 'panicked' "$log"; then
  echo "the server panicked:" >&2; grep -i -A5 panicked "$log" >&2; status=1
fi
exit "$status"
