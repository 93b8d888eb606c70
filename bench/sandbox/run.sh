#!/usr/bin/env bash
# Sandbox benchmark in one command: brings up the engine, starts a release build of the
# sandbox service on a free loopback port, runs bench.py (service vs direct `podman run`, same
# run, same machine), writes the figures to docs/benchmarks/sandbox.md (BENCH_OUT to change),
# and stops the service it started.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT="${BENCH_OUT:-docs/benchmarks/sandbox.md}"
IMAGE="${SANDBOX_PYTHON_IMAGE:-golden-arch/python-runtime:latest}"

scripts/sandbox-engine.sh up
# shellcheck disable=SC1091
source .data/sandbox.env
export DOCKER_HOST

echo "==> building the sandbox service (release)"
cargo build --release --quiet -p sandbox

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
LOG="$(mktemp "${TMPDIR:-/tmp}/sandbox-bench.XXXXXX.log")"

APP_ENV=production JWT_SECRET="$SECRET" HOST=127.0.0.1 SANDBOX_PORT="$PORT" \
    SANDBOX_INSTANCE=bench SANDBOX_MAX_CONCURRENT=4 SANDBOX_QUEUE_SIZE=64 \
    SANDBOX_IMAGES="python=$IMAGE" NATS_URL="${NATS_URL:-}" RUST_LOG=warn \
    target/release/sandbox >"$LOG" 2>&1 &
SERVICE_PID=$!
trap 'kill "$SERVICE_PID" 2>/dev/null || true; wait "$SERVICE_PID" 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    kill -0 "$SERVICE_PID" 2>/dev/null || { cat "$LOG" >&2; echo "the sandbox service died" >&2; exit 1; }
    sleep 0.1
done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { cat "$LOG" >&2; exit 1; }

echo "==> benchmarking (service on :$PORT vs podman run)"
python3 bench/sandbox/bench.py --url "http://127.0.0.1:$PORT" --secret "$SECRET" \
    --image "$IMAGE" ${SANDBOX_RUNTIME:+--runtime "$SANDBOX_RUNTIME"} --out "$OUT"
echo "wrote $OUT"
