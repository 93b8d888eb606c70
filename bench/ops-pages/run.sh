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
# The server as it is deployed, a release build: a debug build's JSON and queries are several
# times slower, which both slows the first rows and takes CPU from the browser on the same
# cores while it scrolls (the pages of rows load as it goes).
if [ -z "${CONTROLPLANE_BIN:-}" ]; then
  cargo build --release --locked -p controlplane
  CONTROLPLANE_BIN="${CARGO_TARGET_DIR:-target}/release/controlplane"
fi
export CONTROLPLANE_BIN
(cd bench/ops-pages && npm ci --no-audit --no-fund --loglevel=error && node run.mjs)
