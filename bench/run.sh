#!/usr/bin/env bash
# `make bench`: every benchmark, each next to a baseline measured in the same run on the
# same machine. Each writes docs/benchmarks/<name>.md; docs/benchmarks.md is rebuilt from them.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
[ -n "${DATABASE_URL:-}" ] && [ -n "${NATS_AUTH_DIR:-}" ] || source .data/services.env
export DATABASE_URL NATS_URL NATS_AUTH_DIR

only="${1:-all}"
if [ "$only" = all ] || [ "$only" = reservations ]; then
  bench/reservations.sh
fi
for extra in bench/*/run.sh; do
  [ -x "$extra" ] || continue
  name=$(basename "$(dirname "$extra")")
  if [ "$only" = all ] || [ "$only" = "$name" ]; then
    BENCH_OUT="docs/benchmarks/$name.md" "$extra"
  fi
done
bench/assemble.sh
