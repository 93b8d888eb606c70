# Shared by the bench scripts: a release control plane on its own database and stream.
# shellcheck shell=bash

# Release binaries: cargo's target directory (CARGO_TARGET_DIR when set, as cargo does).
release="${CARGO_TARGET_DIR:-target}/release"

# NATS runs with authentication (docs/nats-auth.md): the control plane connects with
# NATS_CREDS, the load clients as the service `bench` (bench_service), observers as the
# administrator (NATS_AUTH_DIR/admin.creds).
: "${NATS_AUTH_DIR:?run scripts/services.sh up (it makes the NATS identities) and source .data/services.env}"
export NATS_AUTH_DIR
export NATS_CREDS="${NATS_CREDS:-$NATS_AUTH_DIR/controlplane.creds}"

# bench_service <database_url> <prefix>: registers the service `bench` (every tenant) in the
# control plane's database and exports BENCH_NATS_CREDS, its creds file.
bench_service() {
  local dir
  dir=$(mktemp -d)
  BENCH_NATS_CREDS="$dir/bench.creds"
  env APP_ENV=test DATABASE_URL="$1" NATS_SUBJECT_PREFIX="$2" \
    NATS_ACCOUNT_SEED_FILE="$NATS_AUTH_DIR/account.seed" \
    "$release/controlplane" service add bench --all-tenants --out "$BENCH_NATS_CREDS" >/dev/null
  export BENCH_NATS_CREDS
}

# start_controlplane <database_url> <prefix> <stream> [VAR=value ...]
# Starts `controlplane serve` on a free port; sets server_pid, url and token (admin), and
# the bench service's creds (bench_service).
start_controlplane() {
  local database_url=$1 prefix=$2 stream=$3
  shift 3
  local out
  out=$(mktemp)
  env APP_ENV=test DATABASE_URL="$database_url" NATS_SUBJECT_PREFIX="$prefix" EVENTS_STREAM="$stream" \
    PORT=0 RUST_LOG=warn JWT_SECRET="bench-secret-0123456789abcdef0123456789abcdef" \
    DB_MAX_CONNECTIONS=64 ADMIN_PASSWORD=bench-admin-password \
    RATE_LIMITS="admin=100000000,operator=1000000,developer=1000000,auditor=1000000,viewer=1000000,service=1000000" \
    "$@" "$release/controlplane" serve > "$out" &
  server_pid=$!
  for _ in $(seq 1 100); do grep -q listening "$out" && break; sleep 0.1; done
  grep -q listening "$out" || { echo "the control plane did not start"; cat "$out"; return 1; }
  url=$(grep -Eo 'http://[0-9.:]+' "$out" | head -1)
  token=$(python3 - "$url" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/auth/login", method="POST",
    data=json.dumps({"username": "admin", "password": "bench-admin-password"}).encode(),
    headers={"content-type": "application/json"})
print(json.load(urllib.request.urlopen(req))["token"])
PY
)
  bench_service "$database_url" "$prefix"
}

# delete_stream <stream>: removes a benchmark's JetStream stream and its audit anchors
# (<stream>_ANCHORS, made by the publisher), as the administrator
# (scripts/drop-test-streams.py's NATS connection; no nats CLI needed).
delete_stream() {
  python3 - "$NATS_URL" "$1" "$NATS_AUTH_DIR/admin.creds" <<'PY' || true
import importlib.util, sys
spec = importlib.util.spec_from_file_location("drop", "scripts/drop-test-streams.py")
drop = importlib.util.module_from_spec(spec)
spec.loader.exec_module(drop)
nats = drop.Nats(sys.argv[1], sys.argv[3])
for name in (sys.argv[2], f"{sys.argv[2]}_ANCHORS"):
    nats.request(f"$JS.API.STREAM.DELETE.{name}", {})
PY
}

# field <json> <name>; fmt <number> (one decimal); verdict <a> <op> <b> → met / NOT met
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
fmt() { python3 -c "import sys; print(f'{float(sys.argv[1]):.1f}')" "$1"; }
verdict() { python3 -c "import sys; print('met' if float(sys.argv[1]) $2 float(sys.argv[3]) else 'NOT met')" "$1" "$2" "$3"; }
