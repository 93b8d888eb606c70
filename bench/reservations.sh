#!/usr/bin/env bash
# Reservations per second through NATS (64 clients, 1,000 budgets; and one hot budget),
# written to docs/benchmarks/reservations.md or BENCH_OUT,
# next to pgbench inserting one row per transaction into the same PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source bench/lib.sh
CLIENTS="${BENCH_CLIENTS:-64}"
SECONDS_PER_RUN="${BENCH_SECONDS:-15}"
# The many-budgets run and its pgbench baseline alternate this many times; the page quotes
# the median ratio (this machine is shared and noisy: one pair can be off by half).
ROUNDS="${BENCH_ROUNDS:-3}"
db="cp_bench_$(date +%s)"
base="${DATABASE_URL%/*}"
bench_url="$base/$db"

echo "==> building (release)"
[ -n "${BENCH_SKIP_BUILD:-}" ] || cargo build --release --locked -p controlplane -p bench >/dev/null

psql "$DATABASE_URL" -qc "CREATE DATABASE $db"
cleanup() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
}
trap cleanup EXIT

echo "==> baseline: pgbench, one INSERT per transaction"
psql "$bench_url" -qc "CREATE TABLE raw_insert (id bigserial PRIMARY KEY, payload json NOT NULL, at timestamptz NOT NULL DEFAULT now())"
script=$(mktemp)
echo "INSERT INTO raw_insert (payload) VALUES ('{\"tokens\": 100}');" > "$script"
tps() { grep -Eo 'tps = [0-9.]+' | head -1 | awk '{print $3}'; }
raw_one=$(pgbench -n -f "$script" -c 1 -j 1 -T "$SECONDS_PER_RUN" "$bench_url" 2>/dev/null | tps)
echo "    1 client: $raw_one tx/s"

echo "==> control plane (release) on a fresh database"
prefix="bench$(date +%s)"
out=$(mktemp)
APP_ENV=test DATABASE_URL="$bench_url" NATS_SUBJECT_PREFIX="$prefix" PORT=0 RUST_LOG=warn \
  EVENTS_STREAM="BENCH_$prefix" JWT_SECRET="bench-secret-0123456789abcdef0123456789abcdef" DB_MAX_CONNECTIONS=64 \
  ADMIN_PASSWORD=bench-admin-password RATE_LIMITS=admin=1000000 \
  target/release/controlplane serve > "$out" &
server_pid=$!
for _ in $(seq 1 100); do grep -q listening "$out" && break; sleep 0.1; done
grep -q listening "$out" || { echo "the control plane did not start"; exit 1; }
url=$(grep -Eo 'http://[0-9.:]+' "$out" | head -1)
bench_service "$bench_url" "$prefix"
token=$(python3 - "$url" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/auth/login", method="POST",
    data=json.dumps({"username": "admin", "password": "bench-admin-password"}).encode(),
    headers={"content-type": "application/json"})
print(json.load(urllib.request.urlopen(req))["token"])
PY
)

field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
rounds_table=""
runs=()
raws=()
ratios=()
for round in $(seq 1 "$ROUNDS"); do
  echo "==> round $round/$ROUNDS: pgbench, $CLIENTS clients, one INSERT per transaction"
  raw=$(pgbench -n -f "$script" -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" "$bench_url" 2>/dev/null | tps)
  echo "    $raw tx/s"
  echo "==> round $round/$ROUNDS: reserve path, $CLIENTS clients over 1,000 budgets"
  run=$(target/release/reserve_load "$NATS_URL" "$prefix" many "$CLIENTS" "$SECONDS_PER_RUN" "$url" "$token")
  echo "    $run"
  r=$(python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$(field "$run" rate)" "$raw")
  ratios+=("$r")
  rounds_table+="| $round | $(python3 -c "import sys; print(f'{float(sys.argv[1]):.1f}')" "$(field "$run" rate)") | $(python3 -c "import sys; print(f'{float(sys.argv[1]):.1f}')" "$raw") | $r |"$'\n'
  # The median round's figures go in the main table.
  runs+=("$run"); raws+=("$raw")
done
rm -f "$script"
median_index=$(python3 -c "import sys; v=[float(x) for x in sys.argv[1:]]; print(sorted(range(len(v)), key=lambda i: v[i])[len(v)//2])" "${ratios[@]}")
many="${runs[$median_index]}"; raw_many="${raws[$median_index]}"
echo "==> reserve path: $CLIENTS clients on one hot budget"
hot=$(target/release/reserve_load "$NATS_URL" "$prefix" hot "$CLIENTS" "$SECONDS_PER_RUN" "$url" "$token")
echo "    $hot"

kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=

# A second baseline: the event table's own INSERT (its indexes and the hash-chain trigger of
# migration 0004), one new aggregate per transaction, without the service around it.
echo "==> baseline: pgbench, one INSERT into events per transaction"
psql "$bench_url" -qc "CREATE SEQUENCE pgbench_events"
script=$(mktemp)
cat > "$script" <<'SQL'
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
VALUES ('PgBench', 'pgbench/' || nextval('pgbench_events'), 1, 'TokensReserved', '1',
 '{"type":"TokensReserved","tenant_id":"pgbench","project_id":"p","reservation_id":"6f1c2a9e-0000-4000-8000-000000000000","task_id":"t","model":"m","allocated":100,"expires_at":"2030-01-01T00:00:00Z","used":0,"reserved":100}',
 '{"user":"bench","via":"sql"}');
SQL
events_many=$(pgbench -n -f "$script" -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" "$bench_url" 2>/dev/null | tps)
rm -f "$script"
echo "    $CLIENTS clients: $events_many tx/s"

ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$1" "$2"; }
fmt() { python3 -c "import sys; print(f'{float(sys.argv[1]):.1f}')" "$1"; }
many_rate=$(field "$many" rate); hot_rate=$(field "$hot" rate)
many_ratio=$(ratio "$many_rate" "$raw_many"); hot_ratio=$(ratio "$hot_rate" "$raw_one")
verdict() { python3 -c "import sys; print('met' if float(sys.argv[1]) >= float(sys.argv[2]) else 'NOT met')" "$1" "$2"; }

out="${BENCH_OUT:-docs/benchmarks/reservations.md}"
cat > "$out" <<MD
# Budget reservations through NATS

Reproduce: \`bench/run.sh reservations\` (\`BENCH_CLIENTS\`, \`BENCH_SECONDS\`, \`BENCH_ROUNDS\` override
the defaults of $CLIENTS clients, ${SECONDS_PER_RUN} s per run and $ROUNDS rounds). Measured $(date -u +%Y-%m-%d) on $(nproc) cores.
The control plane (release build), PostgreSQL, NATS and the load client share the machine.

| run | rate (/s) | p50 (ms) | p99 (ms) | errors | baseline (/s) | ratio | target |
|---|---|---|---|---|---|---|---|
| reserve, $CLIENTS clients, 1,000 budgets (median of $ROUNDS rounds) | $(fmt "$many_rate") | $(fmt "$(field "$many" p50_ms)") | $(fmt "$(field "$many" p99_ms)") | $(field "$many" errors) | pgbench $CLIENTS clients: $(fmt "$raw_many") | $many_ratio | ≥ 0.25: $(verdict "$many_ratio" 0.25) |
| (second baseline) pgbench $CLIENTS clients, one INSERT into \`events\` | $(fmt "$events_many") | | | | pgbench $CLIENTS clients: $(fmt "$raw_many") | $(ratio "$events_many" "$raw_many") | (one event per transaction) |
| reserve, $CLIENTS clients, one hot budget | $(fmt "$hot_rate") | $(fmt "$(field "$hot" p50_ms)") | $(fmt "$(field "$hot" p99_ms)") | $(field "$hot" errors) | pgbench 1 client: $(fmt "$raw_one") | $hot_ratio | ≥ 0.5: $(verdict "$hot_ratio" 0.5) |

Every round (\`BENCH_ROUNDS\`, default $ROUNDS) runs the pgbench baseline, then the many-budgets
load, back to back; the table above shows the round with the median ratio:

| round | reserve (/s) | pgbench $CLIENTS clients (/s) | ratio |
|---|---|---|---|
${rounds_table}
Baseline: \`pgbench -n -c N -T ${SECONDS_PER_RUN}\` running \`INSERT INTO raw_insert (payload) VALUES (…)\`, one row
per transaction, on the same PostgreSQL. Load average when the run ended: $(cut -d' ' -f1-3 /proc/loadavg)
(other work on the machine slows both sides of a ratio; the ratio is what to compare).
The reserve path is NATS request → validation → the shared executor's per-aggregate queue
(group commit of one budget's commands; breakers and dead letters take the same path,
docs/adr/017) → decide → the process's one event store, whose writers insert the events of
every aggregate waiting at that moment in one statement (docs/adr/007) → reply.
During the run the same process also publishes every event to JetStream and projects it into
the read models, as in production, on the same two cores as PostgreSQL, NATS and the client.

The second baseline separates the schema's cost from the service's: the same pgbench load
inserting one event per transaction into \`events\` — with its indexes and the per-aggregate
hash-chain trigger the audit needs — runs at $(ratio "$events_many" "$raw_many")× the plain insert; the reserve
path runs at $(ratio "$many_rate" "$events_many")× of that, because it writes many events per transaction.

What moved the many-budgets ratio up from 0.11 (the previous measurement), found by
profiling the whole machine with \`perf record -a -g\` during the run:
- the hash-chain trigger called SQL functions that PostgreSQL parsed and planned again on every
  call: 13 % of all CPU (a third of PostgreSQL's) went to it. Migration 0007 computes the
  same bytes in one PL/pgSQL expression (5 % after);
- one transaction (and one WAL flush) per command: backends waited mostly on
  \`LWLock:WALWrite\`. Group commit across budgets (ADR 007) writes the events of all the
  budgets waiting at a moment in one statement.
MD
echo "wrote $out"
