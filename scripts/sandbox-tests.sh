#!/usr/bin/env bash
# The sandbox tests against a real container engine (podman's Docker API here; see docs/sandbox.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/sandbox-engine.sh up
# shellcheck disable=SC1091
source .data/sandbox.env
export DOCKER_HOST
cargo test -p sandbox --locked
