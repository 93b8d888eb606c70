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
if [ -z "${CONTROLPLANE_BIN:-}" ]; then
  cargo build --locked -p controlplane
  CONTROLPLANE_BIN="${CARGO_TARGET_DIR:-target}/debug/controlplane"
fi
export CONTROLPLANE_BIN
(cd bench/frontend && npm ci --no-audit --no-fund --silent && node run.mjs)
