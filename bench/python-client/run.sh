#!/usr/bin/env bash
# Reserve + commit through the Python client (clients/python), 64 concurrent asyncio tasks,
# next to bare nats-py doing the same two requests in the same process and the same run
# (runs alternate). Target (issue 21): the client at >= 0.8x the bare throughput.
# Writes docs/benchmarks/python-client.md (assembled into docs/benchmarks.md by `make bench`).
#
#   bench/python-client/run.sh          BENCH_TASKS (64), BENCH_SECONDS (8), BENCH_ROUNDS (3)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${DATABASE_URL:-}" ]; then
  # shellcheck disable=SC1091
  source .data/services.env
fi
export DATABASE_URL NATS_URL
# shellcheck source=bench/lib.sh
source bench/lib.sh
TASKS="${BENCH_TASKS:-64}"
SECONDS_PER_RUN="${BENCH_SECONDS:-8}"
ROUNDS="${BENCH_ROUNDS:-3}"
OUT="${BENCH_OUT:-docs/benchmarks/python-client.md}"

echo "==> building (release)"
cargo build --release --locked -p controlplane >/dev/null

# The client and nats-py as the tests pin them, in a venv of the benchmark's own.
PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
VENV=.data/python-client-bench-venv
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -c clients/python/constraints.txt \
  nats-py hatchling
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-build-isolation --no-deps ./clients/python

id=$(date +%s)
db="cp_bench_pyc_$id"
prefix="benchpyc$id"
stream="EV_$prefix"
psql "$DATABASE_URL" -qc "CREATE DATABASE $db"
cleanup() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  delete_stream "$stream"
  psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
}
trap cleanup EXIT
start_controlplane "${DATABASE_URL%/*}/$db" "$prefix" "$stream"

# One budget per task, each far from its limit.
python3 - "$url" "$token" "$TASKS" <<'PY'
import json, sys, urllib.request
url, token, tasks = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(tasks):
    req = urllib.request.Request(url + "/budget/limit", method="PUT",
        data=json.dumps({"tenant_id": "bench", "project_id": f"p{i}",
                         "total_tokens": 1_000_000_000_000}).encode(),
        headers={"content-type": "application/json", "authorization": "Bearer " + token})
    urllib.request.urlopen(req).read()
PY

echo "==> reserve + commit: bare nats-py vs the client, $TASKS tasks, $ROUNDS rounds of ${SECONDS_PER_RUN} s"
result=$("$VENV/bin/python" bench/python-client/bench.py "$NATS_URL" "$prefix" bench "$TASKS" "$SECONDS_PER_RUN" "$ROUNDS")
load=$(cut -d' ' -f1-3 /proc/loadavg)

ratio=$(field "$result" ratio_median)
python3 - "$result" "$ratio" "$load" "$TASKS" "$SECONDS_PER_RUN" > "$OUT" <<'PY'
import json, sys, datetime
r, ratio, load, tasks, seconds = json.loads(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
today = datetime.date.today().isoformat()
print("# Python client: reserve + commit vs bare nats-py")
print()
print("Reproduce: `bench/python-client/run.sh` (or `bench/run.sh python-client`; `BENCH_TASKS`,")
print("`BENCH_SECONDS`, `BENCH_ROUNDS` override 64 tasks, 8 s per run, 3 rounds).")
print(f"Measured {today} on 2 cores (load average at the end: {load}). The control plane (release")
print("build), PostgreSQL, NATS and the Python process share the machine; compare the ratio.")
print()
print("| run | pairs/s | median (ms) | p99 (ms) | Python CPU per pair (µs) | ratio to bare | target ≥ 0.8× bare |")
print("|---|---|---|---|---|---|---|")
for k, bare in enumerate(r["bare"]):
    print(f"| bare nats-py | {bare['pairs_per_second']:.1f} | {bare['median_ms']:.2f} | {bare['p99_ms']:.2f} | {bare['cpu_us_per_pair']:.0f} | — | — |")
    if k < len(r["client"]):
        c, q = r["client"][k], r["ratios"][k]
        print(f"| `controlplane_client` | {c['pairs_per_second']:.1f} | {c['median_ms']:.2f} | {c['p99_ms']:.2f} | {c['cpu_us_per_pair']:.0f} | {q:.2f} | {'met' if q >= 0.8 else 'NOT met'} |")
print()
print(f"Median ratio {ratio:.2f} ({'met' if ratio >= 0.8 else 'NOT met'}); medians of the pair's latency: bare "
      f"{r['bare_median_ms']:.2f} ms, client {r['client_median_ms']:.2f} ms.")
import statistics
bare_cpu = statistics.median(b["cpu_us_per_pair"] for b in r["bare"])
client_cpu = statistics.median(c["cpu_us_per_pair"] for c in r["client"])
print(f"Per-run ratios {min(r['ratios']):.2f}–{max(r['ratios']):.2f}. The client's process spends "
      f"{client_cpu:.0f} µs of CPU per pair against {bare_cpu:.0f} µs bare (+{client_cpu - bare_cpu:.0f} µs, "
      f"{(client_cpu / bare_cpu - 1) * 100:.0f}%): on a 2-core machine shared with the server, that CPU is what the")
print("rate gives up.")
print()
print(f"- Both sides: {tasks} asyncio tasks in one Python process (CPython, nats-py, one NATS")
print("  connection each), each task on a budget of its own, a fresh task id per pair:")
print("  `cp.cmd.bench.budget.request` then `cp.cmd.bench.budget.commit`, both with the service's")
print("  creds. Runs alternate bare, client, bare,")
print("  ...; each client run is divided by the mean of the bare runs on either side of it.")
print("- Bare: `nc.request` with `json.dumps`/`json.loads`, the approval checked, no headers, no")
print("  retries.")
print("- Client: `async with cp.budget.reserve(...) as r: r.record(90)` — the error check")
print("  and retry wrapper on each request, the typed commit answer, the")
print("  commit resent in the background if the caller is cancelled midway.")
print("- Python CPU per pair: the benchmark process's CPU time over the pairs it completed; the")
print("  client's own cost, steadier than the rates on a shared machine.")
PY
cat "$OUT"
