#!/usr/bin/env bash
# Browser benchmarks of the operator pages (bench/ops-pages/run.mjs): the Audit log with
# BENCH_EVENTS events (100,000) and Dead letters with BENCH_ENTRIES entries (10,000): first
# rows, longest task while scrolling, Lighthouse 12; the streamed audit verify and
# GET /sandbox/runs at that size. BENCH_LOADS (5) cold loads per page for the first rows.
# Figures: docs/benchmarks/ops-pages.md (written by hand from the JSON this prints; raw
# results and Lighthouse reports in bench/ops-pages/results/).
set -euo pipefail
cd "$(dirname "$0")/../.."
# The machine is shared: say how busy it was (run.mjs also records it around its measures).
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) ($(date -u +%FT%TZ))" >&2
trap 'echo "load average at the end: $(cut -d" " -f1-3 /proc/loadavg) ($(date -u +%FT%TZ))" >&2' EXIT
scripts/frontend.sh build
scripts/frontend.sh deps
# shellcheck disable=SC1091
[ -n "${DATABASE_URL:-}" ] && [ -n "${NATS_AUTH_DIR:-}" ] || source .data/services.env
export DATABASE_URL NATS_URL NATS_AUTH_DIR
if [ -z "${CONTROLPLANE_BIN:-}" ]; then
  cargo build --locked -p controlplane
  CONTROLPLANE_BIN="${CARGO_TARGET_DIR:-target}/debug/controlplane"
fi
export CONTROLPLANE_BIN
(cd bench/ops-pages && npm ci --no-audit --no-fund --loglevel=error && node run.mjs)
