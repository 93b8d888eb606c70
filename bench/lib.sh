# Shared by the bench scripts: a release control plane on its own database and stream.
# shellcheck shell=bash

# Release binaries: cargo's target directory (CARGO_TARGET_DIR when set, as cargo does).
release="${CARGO_TARGET_DIR:-target}/release"

# start_controlplane <database_url> <prefix> <stream> [VAR=value ...]
# Starts `controlplane serve` on a free port; sets server_pid, url and token (admin).
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
}

# delete_stream <stream>: removes a benchmark's JetStream stream (JetStream API over a raw
# NATS connection; no nats CLI needed).
delete_stream() {
  python3 - "$NATS_URL" "$1" <<'PY' || true
import socket, sys
host, port = sys.argv[1].split("//")[1].split(":")
s = socket.create_connection((host, int(port)), timeout=5)
s.recv(4096)
s.sendall(b'CONNECT {"verbose":false}\r\nSUB _INBOX.benchdel 1\r\n')
s.sendall(f'PUB $JS.API.STREAM.DELETE.{sys.argv[2]} _INBOX.benchdel 0\r\n\r\nPING\r\n'.encode())
s.recv(4096)
PY
}

# field <json> <name>; fmt <number> (one decimal); verdict <a> <op> <b> → met / NOT met
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
fmt() { python3 -c "import sys; print(f'{float(sys.argv[1]):.1f}')" "$1"; }
verdict() { python3 -c "import sys; print('met' if float(sys.argv[1]) $2 float(sys.argv[3]) else 'NOT met')" "$1" "$2" "$3"; }
