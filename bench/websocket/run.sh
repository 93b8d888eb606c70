#!/usr/bin/env bash
# WebSocket fan-out: commit→client latency p50/p99 with BENCH_WS_CLIENTS (1,000) clients
# subscribed to everything, under the many-budgets reservation load at half its peak, next
# to commit→JetStream for the same events (the floor every frame sits on) in the same run;
# then BENCH_WS_IDLE (10,000) idle connections and the server's memory per connection.
# Writes docs/benchmarks/websocket.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck disable=SC1091
[ -n "${DATABASE_URL:-}" ] || source .data/services.env
# shellcheck source=bench/lib.sh
source bench/lib.sh
CLIENTS="${BENCH_WS_CLIENTS:-1000}"
IDLE="${BENCH_WS_IDLE:-10000}"
SECONDS_PER_RUN="${BENCH_SECONDS:-15}"
LOAD_CLIENTS="${BENCH_CLIENTS:-64}"
# 10,000 sockets on each side (server and client are separate processes): raise the soft
# limit on open files to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

db="cp_bench_ws_$(date +%s)"
bench_url="${DATABASE_URL%/*}/$db"
prefix="benchws$(date +%s)"
stream="BENCH_$prefix"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "==> building (release)"
[ -n "${BENCH_SKIP_BUILD:-}" ] || cargo build --release --locked -p controlplane -p bench >/dev/null
psql "$DATABASE_URL" -qc "CREATE DATABASE $db"
cleanup() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  delete_stream "$stream"
}
trap cleanup EXIT
start_controlplane "$bench_url" "$prefix" "$stream" WS_MAX_CONNECTIONS=$((IDLE + CLIENTS + 100))

echo "==> peak: reserve path, $LOAD_CLIENTS clients over 1,000 budgets (no WebSocket clients)"
peak=$("$release"/reserve_load "$NATS_URL" "$prefix" many "$LOAD_CLIENTS" "$SECONDS_PER_RUN" "$url" "$token")
peak_rate=$(field "$peak" rate)
half=$(python3 -c "import sys; print(f'{float(sys.argv[1])/2:.0f}')" "$peak_rate")
echo "    peak $(fmt "$peak_rate")/s; latency run at $half/s with $CLIENTS clients"
lat=$("$release"/ws_fanout latency "$NATS_URL" "$prefix" "$url" "$token" "$CLIENTS" "$half" "$SECONDS_PER_RUN")
echo "    $lat"
low=$("$release"/ws_fanout latency "$NATS_URL" "$prefix" "$url" "$token" "$CLIENTS" 50 "$SECONDS_PER_RUN")
echo "    at 50/s: $low"
echo "==> $IDLE idle connections"
idle=$("$release"/ws_fanout idle "$url" "$token" "$IDLE" "$server_pid")
echo "    $idle"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
# Met only when (nearly) every frame arrived and the p99 is under 50 ms.
ws_verdict() {
  python3 -c "import json,sys; r=json.loads(sys.argv[1]); ok=r['frames_received'] >= 0.99*r['frames_expected'] and r['ws_p99_ms'] < 50; print('met' if ok else 'NOT met')" "$1"
}
mib=$(python3 -c "import sys; print(f'{int(sys.argv[1])/1024:.0f}')" "$(field "$idle" rss_after_kib)")

cat > "${BENCH_OUT:-docs/benchmarks/websocket.md}" <<MD
# WebSocket fan-out

Reproduce: \`bench/run.sh websocket\` (\`BENCH_WS_CLIENTS\`, \`BENCH_WS_IDLE\`, \`BENCH_SECONDS\`
override $CLIENTS clients, $IDLE idle connections, ${SECONDS_PER_RUN} s per run). Measured $(date -u +%Y-%m-%d) on $(nproc) cores;
the control plane (release), PostgreSQL, NATS and **all the WebSocket clients** share the machine.
Load average (1/5/15 min) at the start: $load_start; at the end: $load_end.

## Commit → client, $CLIENTS clients subscribed to everything
Peak of the many-budgets load (\`reservations\`: $LOAD_CLIENTS clients over 1,000 budgets through
NATS) in this run: $(fmt "$peak_rate")/s. Paced loads, each ${SECONDS_PER_RUN} s:

| load | commands | frames expected / received | commit → JetStream p50 / p99 (ms) | commit → WebSocket client p50 / p99 (ms) | target p99 < 50 |
|---|---|---|---|---|---|
| half the peak: $half/s asked, $(fmt "$(field "$lat" rate)")/s sent | $(field "$lat" commands) | $(field "$lat" frames_expected) / $(field "$lat" frames_received) | $(fmt "$(field "$lat" js_p50_ms)") / $(fmt "$(field "$lat" js_p99_ms)") | $(fmt "$(field "$lat" ws_p50_ms)") / $(fmt "$(field "$lat" ws_p99_ms)") | $(ws_verdict "$lat") |
| 50/s | $(field "$low" commands) | $(field "$low" frames_expected) / $(field "$low" frames_received) | $(fmt "$(field "$low" js_p50_ms)") / $(fmt "$(field "$low" js_p99_ms)") | $(fmt "$(field "$low" ws_p50_ms)") / $(fmt "$(field "$low" ws_p99_ms)") | $(ws_verdict "$low") |

"Commit" is the event's \`recorded_at\`; the JetStream column is a core-NATS subscriber of the
events subjects in the same run: every WebSocket frame comes after that point, so the
difference is what the fan-out adds. At half the peak, $CLIENTS clients mean
$CLIENTS × $(fmt "$(field "$lat" rate)") frames per second written by the server and read by clients on the same two cores.
Frames received can be fewer than expected when the run ends before a backlog drains.

Reading the figures: every frame is written by the server and read by a client process on
the same two cores that also run PostgreSQL, NATS, the publisher and the load generator, so
the fan-out competes with the pipeline it measures. At half the peak, $CLIENTS clients ask
for hundreds of thousands of frames per second; the machine saturates and the JetStream
column itself (the publisher's commit → stream latency, before any WebSocket work) grows to
seconds — the backlog is CPU, not the ring (connections that fall behind catch up from
PostgreSQL, two at a time, so commands keep their pool: no command errors). At 50/s the
fan-out adds tens of milliseconds over the JetStream floor. Idle connections cost a few KiB
each (a task, a 4 KiB read buffer; write buffers only while frames are queued).

## Idle connections
$(field "$idle" connections) connections opened (in $(fmt "$(field "$idle" open_seconds)") s), each subscribed to budget and breaker events;
server resident memory $(field "$idle" rss_before_kib) KiB before, $(field "$idle" rss_after_kib) KiB ($mib MiB) after:
**$(fmt "$(field "$idle" kib_per_connection)") KiB per connection**. A sample of $(field "$idle" sampled) answered a ping: $(field "$idle" sampled_alive).
Target ≥ 10,000 idle connections under 1 GiB: $(python3 -c "import sys; print('met' if int(sys.argv[1]) >= 10000 and int(sys.argv[2]) < 1048576 else 'NOT met')" "$(field "$idle" connections)" "$(field "$idle" rss_after_kib)").
MD
echo "==> wrote ${BENCH_OUT:-docs/benchmarks/websocket.md}"
