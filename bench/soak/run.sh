#!/usr/bin/env bash
# Soak: the many-budgets reservation load at half the peak rate for BENCH_MINUTES (default 10)
# minutes against one release control plane, one minute at a time. Each minute records the
# server's resident memory (VmRSS from /proc), the commands' p99, commit → JetStream and
# commit → read model p99, and errors. The baseline is the first minute of the same run:
# RSS should stay within 10 % of it after warm-up, p99 steady, no error. Each reservation is
# committed right after its answer, as workers do (BENCH_SOAK_OPEN=1 leaves them open until
# the expiry worker releases them after their TTL: the abandoned-reservations case).
# Not in `make test` (it takes the machine for the whole run). Writes docs/benchmarks/soak.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck disable=SC1091
[ -n "${DATABASE_URL:-}" ] || source .data/services.env
# shellcheck source=bench/lib.sh
source bench/lib.sh
MINUTES="${BENCH_MINUTES:-10}"
CLIENTS="${BENCH_CLIENTS:-64}"
out="${BENCH_OUT:-docs/benchmarks/soak.md}"
mode=commit
[ -z "${BENCH_SOAK_OPEN:-}" ] || mode=open
db="cp_bench_soak_$(date +%s)"
bench_url="${DATABASE_URL%/*}/$db"
prefix="benchs$(date +%s)"
stream="BENCH_$prefix"
# Every minute reserves on the same 1,000 budgets (bench/pipeline/latency.rs): a steady load,
# not 1,000 new budgets a minute that go idle (which the server caches, up to its bound).
export BENCH_LATENCY_RUN="$prefix"

[ -n "${BENCH_SKIP_BUILD:-}" ] || cargo build --release --locked -p controlplane -p bench >/dev/null
psql "$DATABASE_URL" -qc "CREATE DATABASE $db"
cleanup() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  delete_stream "$stream"
}
trap cleanup EXIT

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status"; }

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
start_controlplane "$bench_url" "$prefix" "$stream"
echo "==> peak: $CLIENTS clients over 1,000 budgets, 15 s"
peak=$("$release/reserve_load" "$NATS_URL" "$prefix" many "$CLIENTS" 15 "$url" "$token")
half=$(python3 -c "import sys; print(f'{float(sys.argv[1])/2:.0f}')" "$(field "$peak" rate)")
echo "    peak $(fmt "$(field "$peak" rate)")/s; soak at $half/s for $MINUTES minutes"
rss_start=$(rss_kib)
rows=""
results=()
for minute in $(seq 1 "$MINUTES"); do
  # shellcheck disable=SC2046 # no argument in open mode
  r=$("$release/pipeline_latency" "$NATS_URL" "$prefix" "$half" 60 "$url" "$token" "$bench_url" $([ "$mode" = commit ] && echo commit))
  rss=$(rss_kib)
  results+=("$rss $r")
  echo "    minute $minute: RSS $((rss / 1024)) MiB $r"
  rows+="| $minute | $((rss / 1024)) | $(fmt "$(field "$r" rate)") | $(fmt "$(field "$r" cmd_p99_ms)") | $(fmt "$(field "$r" js_p99_ms)") | $(fmt "$(field "$r" proj_p99_ms)") | $(field "$r" errors) |"$'\n'
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

summary=$(printf '%s\n' "${results[@]}" | python3 -c '
import json, sys
runs = []
for line in sys.stdin:
    rss, rest = line.split(" ", 1)
    run = json.loads(rest); run["rss"] = int(rss); runs.append(run)
warm = runs[1:] if len(runs) > 1 else runs
base = warm[0]["rss"]
spread = max(abs(r["rss"] - base) / base for r in warm) * 100
p99 = sorted(r["cmd_p99_ms"] for r in runs)
errors = sum(r["errors"] for r in runs)
print(json.dumps({"rss_spread_pct": round(spread, 1), "rss_first_mib": runs[0]["rss"] // 1024,
                  "rss_last_mib": runs[-1]["rss"] // 1024, "p99_min": p99[0], "p99_max": p99[-1],
                  "p99_median": p99[len(p99) // 2], "errors": errors}))')
spread=$(field "$summary" rss_spread_pct)
errors=$(field "$summary" errors)

cat > "$out" <<MD
# Soak: half the peak for $MINUTES minutes

Reproduce: \`bench/run.sh soak\` (\`BENCH_MINUTES\`, \`BENCH_CLIENTS\` override $MINUTES minutes,
$CLIENTS clients for the peak). Measured $(date -u +%Y-%m-%d) on $(nproc) cores; the control
plane (release), PostgreSQL, NATS and the load share the machine. Load average at the start:
$load_start; at the end: $load_end.

The peak of the reserve path over 1,000 budgets was $(fmt "$(field "$peak" rate)")/s; the soak
ran at $half reservations/s, one minute at a time (\`pipeline_latency\`, the pipeline benchmark's
paced load), $( [ "$mode" = commit ] && echo "each committed right after its answer (commands/s counts both commands)" || echo "none committed: each stays open until the expiry worker releases it after its TTL (BENCH_SOAK_OPEN=1)").
The server's RSS was $((rss_start / 1024)) MiB after the peak run.

| minute | RSS (MiB) | commands/s | command p99 (ms) | commit → JetStream p99 (ms) | commit → read model p99 (ms) | errors |
|---|---|---|---|---|---|---|
$rows
| target | result | |
|---|---|---|
| RSS flat within 10 % (minutes 2–$MINUTES against minute 2) | $spread % ($(field "$summary" rss_first_mib) → $(field "$summary" rss_last_mib) MiB) | $(verdict "$spread" "<=" 10) |
| no error | $errors | $(verdict "$errors" "==" 0) |
| p99 steady (command p99, min / median / max over the minutes) | $(fmt "$(field "$summary" p99_min)") / $(fmt "$(field "$summary" p99_median)") / $(fmt "$(field "$summary" p99_max)") ms | see the table |
MD
echo "==> written $out"
cat "$out"
