#!/usr/bin/env bash
# Rebuilds docs/benchmarks.md from the per-benchmark pages in docs/benchmarks/.
set -euo pipefail
cd "$(dirname "$0")/.."
{
  echo "# Benchmarks"
  echo
  echo "Measured on the project's shared 2-core machine, which is noisy: every figure sits next"
  echo "to a baseline measured in the same run, and the ratio is what to compare. Reproduce all"
  echo "with \`make bench\` (or \`bench/run.sh <name>\` for one)."
  for page in docs/benchmarks/*.md; do
    echo
    sed 's/^# /## /' "$page"
  done
} > docs/benchmarks.md
echo "wrote docs/benchmarks.md"
