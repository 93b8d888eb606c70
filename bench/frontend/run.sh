#!/usr/bin/env bash
# Browser benchmarks of the dashboard (bench/frontend/run.mjs): Lighthouse 12 on Dashboard and
# Governance, event -> visible latency, the longest task while scrolling 10,000 rows.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/frontend.sh build
scripts/frontend.sh deps
# shellcheck disable=SC1091
source .data/services.env
export DATABASE_URL NATS_URL
# The server as it is deployed, a release build: a debug build's JSON and queries are several
# times slower, which both slows the first rows and takes CPU from the browser on the same
# cores while it scrolls (the pages of rows load as it goes).
if [ -z "${CONTROLPLANE_BIN:-}" ]; then
  cargo build --release --locked -p controlplane
  CONTROLPLANE_BIN="${CARGO_TARGET_DIR:-target}/release/controlplane"
fi
export CONTROLPLANE_BIN
(cd bench/frontend && npm ci --no-audit --no-fund --silent && node run.mjs)
