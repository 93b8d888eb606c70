#!/usr/bin/env bash
# HTTP API under a fixed load: BENCH_RATE (1,000) requests/s for BENCH_SECONDS (60) s of
# mixed reads and reservations, next to GET /healthz at the same rate in the same run (the
# floor: HTTP, routing and every middleware layer, no database). Open loop: latencies count
# from each request's scheduled start. Targets: p95 < 20 ms and no 5xx.
# Writes docs/benchmarks/http.md, or BENCH_OUT (assembled into docs/benchmarks.md by `make bench`).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${DATABASE_URL:-}" ]; then
  # shellcheck disable=SC1091
  source .data/services.env
fi
RATE="${BENCH_RATE:-1000}"
SECONDS_PER_RUN="${BENCH_SECONDS:-60}"
id=$(date +%s)
db="cp_bench_http_$id"
bench_url="${DATABASE_URL%/*}/$db"
prefix="benchhttp$id"

echo "==> building (release)"
cargo build --release --locked -p controlplane -p bench --bin controlplane --bin http_load >/dev/null
bin="${CARGO_TARGET_DIR:-target}/release"
load=$bin/http_load

psql "$DATABASE_URL" -qc "CREATE DATABASE $db"
out=$(mktemp)
cleanup() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  rm -f "$out"
}
trap cleanup EXIT
APP_ENV=test DATABASE_URL="$bench_url" NATS_SUBJECT_PREFIX="$prefix" EVENTS_STREAM="EV_$prefix" \
  PORT=0 RUST_LOG=warn JWT_SECRET="bench-secret-0123456789abcdef0123456789abcdef" \
  DB_MAX_CONNECTIONS=64 ADMIN_PASSWORD=bench-admin-password \
  RATE_LIMITS="admin=100000000" \
  "$bin/controlplane" serve > "$out" &
server_pid=$!
for _ in $(seq 1 300); do grep -q listening "$out" && break; sleep 0.1; done
grep -q listening "$out" || { echo "the control plane did not start"; cat "$out"; exit 1; }
url=$(grep -Eo 'http://[0-9.:]+' "$out" | head -1)

# 100 budgets with room for every reservation of the run, and one breaker.
token=$(python3 - "$url" <<'PY'
import json, sys, urllib.request
def call(method, path, body=None, token=None):
    req = urllib.request.Request(sys.argv[1] + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"content-type": "application/json", **({"authorization": "Bearer " + token} if token else {})})
    return json.load(urllib.request.urlopen(req))
token = call("POST", "/auth/login", {"username": "admin", "password": "bench-admin-password"})["token"]
for p in range(100):
    call("PUT", "/budget/limit", {"tenant_id": "bench", "project_id": f"p{p}", "total_tokens": 10**12}, token)
call("PUT", "/circuit-breakers/openai_api", {}, token)
print(token)
PY
)
# The budget reads come from the read model: wait until it has every budget.
for _ in $(seq 1 100); do
  n=$(psql "$bench_url" -tAc "SELECT count(*) FROM read_budgets WHERE total IS NOT NULL")
  [ "$n" = 100 ] && break
  sleep 0.2
done

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "==> GET /healthz, $RATE/s for $SECONDS_PER_RUN s (load average $load_before)"
base=$("$load" "$url" "$token" healthz "$RATE" "$SECONDS_PER_RUN")
echo "    $base"
echo "==> mixed: 50 % GET /budget/state, 10 % GET /circuit-breakers, 40 % POST /budget/request; $RATE/s for $SECONDS_PER_RUN s"
mixed=$("$load" "$url" "$token" mixed "$RATE" "$SECONDS_PER_RUN")
echo "    $mixed"
load_avg=$(cut -d' ' -f1-3 /proc/loadavg)
events=$(psql "$bench_url" -tAc "SELECT count(*) FROM events WHERE aggregate_type = 'Budget'")

field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
f1() { python3 -c "import sys; print(f'{float(sys.argv[1]):.1f}')" "$1"; }
f2() { python3 -c "import sys; print(f'{float(sys.argv[1]):.2f}')" "$1"; }
row() { # label json
  echo "| $1 | $(f1 "$(field "$2" rate)") | $(f2 "$(field "$2" p50_ms)") | $(f2 "$(field "$2" p95_ms)") | $(f2 "$(field "$2" p99_ms)") | $(f1 "$(field "$2" max_ms)") | $(field "$2" errors) | $(field "$2" server_errors) |"
}
kind() { python3 -c "import json,sys; k=json.loads(sys.argv[1])['by_kind'][sys.argv[2]]; print(' / '.join(f'{k[p]:.1f}' for p in ('p50_ms','p95_ms','p99_ms')))" "$mixed" "$1"; }
p95=$(field "$mixed" p95_ms)
five=$(field "$mixed" server_errors)
verdict=$(python3 -c "import sys; print('met' if float(sys.argv[1]) < 20 and int(sys.argv[2]) == 0 else 'NOT met')" "$p95" "$five")

out="${BENCH_OUT:-docs/benchmarks/http.md}"
mkdir -p "$(dirname "$out")"
page=$(mktemp)
cat > "$page" <<MD
# HTTP API under load

Reproduce: \`bench/http/run.sh\` (or \`bench/run.sh http\`; \`BENCH_RATE\` and \`BENCH_SECONDS\`
override the defaults of $RATE requests/s and $SECONDS_PER_RUN s per run).
Measured $(date -u +%Y-%m-%d) on $(nproc) cores (load average before: $load_before; at the end:
$load_avg).
The control plane (release build), PostgreSQL, NATS and the load client share the machine
with other work.

| run | rate (/s) | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) | errors | 5xx |
|---|---|---|---|---|---|---|---|
$(row "\`GET /healthz\` (baseline)" "$base")
$(row "mixed reads and reservations" "$mixed")

Target: p95 < 20 ms and zero 5xx for the mixed run — **$verdict**.

By kind in the mixed run (p50 / p95 / p99, ms): budget state reads $(kind reads),
reservations $(kind reservations), breaker lists $(kind breaker_lists).

- Open loop at a fixed rate: each request is sent at its scheduled time whatever happened
  to the earlier ones, and its latency counts from that time (a stall shows in the tail
  instead of lowering the rate). One client process, a reqwest connection pool, bearer token
  of an admin (rate limits raised for the run).
- Baseline: \`GET /healthz\` at the same rate just before, through the same stack (security
  headers, CORS, rate limiter, metrics, route table), without PostgreSQL.
- Mixed, per 10 requests: 5 \`GET /budget/state\` (read model), 1 \`GET /circuit-breakers\`,
  4 \`POST /budget/request\` (a reservation of a new task, appended as an event); reads go
  to all 100 budgets, reservations to the 40 whose number ends in 1–4 (the client's spread,
  (n · 7919) mod 100, over the reservation slots n mod 10 = 6–9). Mixed "errors" are
  non-2xx answers (a 404 would be a budget the read model has not got, which the script
  waits out before the run). Budget events written in the
  run: $events.
MD
# The profile notes below the figures are written by hand: keep them.
if [ -f "$out" ]; then
  sed -n '/^## What the time goes to/,$p' "$out" > "$page.notes"
  if [ -s "$page.notes" ]; then printf '\n' >> "$page"; cat "$page.notes" >> "$page"; fi
  rm -f "$page.notes"
fi
cp "$page" "$out"
rm -f "$page"
echo "wrote $out"
