#!/usr/bin/env bash
# Breaker checks per second through NATS (64 clients), next to a plain NATS request/reply
# echo measured in the same run. A check reads state and must not write: the script
# also counts the breaker events before and after the check runs.
# Writes docs/benchmarks/breakers.md, or BENCH_OUT (assembled into docs/benchmarks.md by `make bench`).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${DATABASE_URL:-}" ]; then
  # shellcheck disable=SC1091
  source .data/services.env
fi
# shellcheck disable=SC1091
source bench/lib.sh
CLIENTS="${BENCH_CLIENTS:-64}"
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
NAMES=1000
db="cp_bench_breakers_$(date +%s)"
base="${DATABASE_URL%/*}"
bench_url="$base/$db"

echo "==> building (release)"
cargo build --release -p controlplane -p bench --bin controlplane --bin breaker_check_load >/dev/null
load=target/release/breaker_check_load

psql "$DATABASE_URL" -qc "CREATE DATABASE $db"
cleanup() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
  [ -n "${echo_pid:-}" ] && kill "$echo_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
}
trap cleanup EXIT

prefix="benchbrk$(date +%s)"
out=$(mktemp)
APP_ENV=test DATABASE_URL="$bench_url" NATS_SUBJECT_PREFIX="$prefix" EVENTS_STREAM="EV_$prefix" \
  PORT=0 RUST_LOG=warn JWT_SECRET="bench-secret-0123456789abcdef0123456789abcdef" \
  DB_MAX_CONNECTIONS=32 ADMIN_PASSWORD=bench-admin-password \
  target/release/controlplane serve > "$out" &
server_pid=$!
for _ in $(seq 1 100); do grep -q listening "$out" && break; sleep 0.1; done
grep -q listening "$out" || { echo "the control plane did not start"; exit 1; }
url=$(grep -Eo 'http://[0-9.:]+' "$out" | head -1)
bench_service "$bench_url" "$prefix"

echo_out=$(mktemp)
"$load" echo-server "$NATS_URL" "$prefix.bench.echo" > "$echo_out" &
echo_pid=$!
for _ in $(seq 1 100); do grep -q ready "$echo_out" && break; sleep 0.1; done

# Register the hot breaker with a configuration, so the checks read a real, stored breaker.
python3 - "$url" <<'PY'
import json, sys, urllib.request
def call(method, path, body=None, token=None):
    req = urllib.request.Request(sys.argv[1] + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"content-type": "application/json", **({"authorization": "Bearer " + token} if token else {})})
    return json.load(urllib.request.urlopen(req))
token = call("POST", "/auth/login", {"username": "admin", "password": "bench-admin-password"})["token"]
call("PUT", "/circuit-breakers/bench0", {"failure_threshold": 5}, token)
PY
events() { psql "$bench_url" -tAc "SELECT count(*) FROM events WHERE aggregate_type = 'CircuitBreaker'"; }
before=$(events)

# Echo and check runs alternate, and each check run is compared with the echo runs on
# either side of it: the machine is shared, so its speed drifts during a run.
run_echo() {
  local result
  result=$("$load" echo "$NATS_URL" "$prefix.bench.echo" "$CLIENTS" "$SECONDS_PER_RUN")
  echo "    $result" >&2
  echo "$result"
}
echo "==> plain NATS echo, $CLIENTS clients"
echo1=$(run_echo)
echo "==> cp.cmd.bench.breaker.check, $CLIENTS clients, one breaker"
hot=$("$load" check "$NATS_URL" "$prefix" 1 "$CLIENTS" "$SECONDS_PER_RUN")
echo "    $hot"
echo "==> plain NATS echo, $CLIENTS clients"
echo2=$(run_echo)
echo "==> cp.cmd.bench.breaker.check, $CLIENTS clients, $NAMES breakers"
many=$("$load" check "$NATS_URL" "$prefix" "$NAMES" "$CLIENTS" "$SECONDS_PER_RUN")
echo "    $many"
echo "==> plain NATS echo, $CLIENTS clients"
echo3=$(run_echo)
after=$(events)

field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
fmt() { python3 -c "import sys; print(f'{float(sys.argv[1]):.1f}')" "$1"; }
fmt2() { python3 -c "import sys; print(f'{float(sys.argv[1]):.2f}')" "$1"; }
mean() { python3 -c "import sys; print((float(sys.argv[1]) + float(sys.argv[2])) / 2)" "$(field "$1" rate)" "$(field "$2" rate)"; }
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$1" "$2"; }
verdict() { python3 -c "import sys; print('met' if float(sys.argv[1]) >= 0.5 else 'NOT met')" "$1"; }
hot_ratio=$(ratio "$(field "$hot" rate)" "$(mean "$echo1" "$echo2")")
many_ratio=$(ratio "$(field "$many" rate)" "$(mean "$echo2" "$echo3")")
row() { # label json ratio target
  echo "| $1 | $(fmt "$(field "$2" rate)") | $(fmt2 "$(field "$2" p50_ms)") | $(fmt2 "$(field "$2" p99_ms)") | $(field "$2" errors) | $3 | $4 |"
}

out="${BENCH_OUT:-docs/benchmarks/breakers.md}"
mkdir -p "$(dirname "$out")"
page=$(mktemp)
cat > "$page" <<MD
# Circuit-breaker checks through NATS

Reproduce: \`bench/breakers/run.sh\` (or \`bench/run.sh breakers\`; \`BENCH_CLIENTS\`,
\`BENCH_SECONDS\` override the defaults of $CLIENTS clients and ${SECONDS_PER_RUN} s per run).
Measured $(date -u +%Y-%m-%d) on $(nproc) cores (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)).
The control plane (release build), PostgreSQL, NATS, the echo responder and the load client
share the machine with other work; compare the ratio, not the absolute figures.

| run | rate (/s) | p50 (ms) | p99 (ms) | errors | ratio to echo | target ≥ 0.5× echo |
|---|---|---|---|---|---|---|
$(row "plain NATS echo" "$echo1" "—" "—")
$(row "\`cp.cmd.bench.breaker.check\`, one breaker" "$hot" "$hot_ratio" "$(verdict "$hot_ratio")")
$(row "plain NATS echo" "$echo2" "—" "—")
$(row "\`cp.cmd.bench.breaker.check\`, $NAMES breakers" "$many" "$many_ratio" "$(verdict "$many_ratio")")
$(row "plain NATS echo" "$echo3" "—" "—")

Runs alternate; each check run's ratio divides by the mean of the echo runs just before and
after it. Breaker events in the store before the
check runs: $before; after them: $after (the checks wrote nothing).

- Echo: a one-process responder that publishes every request's payload back, the cheapest
  possible request/reply on the same NATS server. Same clients ($CLIENTS tasks over 4
  connections), same payload size.
- Check: NATS request → the control plane's breaker listener (queue group) → JSON parse and
  name validation → the breaker as this process last read it (re-read when older than
  2 s or when another process announces a change; the background pass confirms every cached
  breaker with one query per pass, so such re-reads are rare) → reply \`{"allowed","state"}\`. No
  database access on the hot path except those bounded re-reads; no writes (a half-open trial
  permit is the only check that writes, and there are at most \`half_open_max_calls\` per
  half-open period).
MD
cp "$page" "$out"
rm -f "$page"
echo "wrote $out"
