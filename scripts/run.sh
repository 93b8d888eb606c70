#!/usr/bin/env bash
# `make run`: build and start the control plane against the services in .data/.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source .data/services.env
# NATS runs with authentication (docs/nats-auth.md): the control plane connects with
# NATS_CREDS (its identity), the sandbox with its own; services get theirs from
# `controlplane service add` (NATS_ACCOUNT_SEED_FILE signs them).
export DATABASE_URL NATS_URL NATS_AUTH_DIR NATS_CREDS NATS_ACCOUNT_SEED_FILE

# A JWT secret and an admin password made once for this checkout, kept under .data/.
if [ -z "${JWT_SECRET:-}" ]; then
  [ -s .data/jwt_secret ] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > .data/jwt_secret)
  JWT_SECRET=$(cat .data/jwt_secret)
  export JWT_SECRET
fi
if [ -z "${ADMIN_PASSWORD:-}" ]; then
  [ -s .data/admin_password ] || (umask 077; head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > .data/admin_password)
  ADMIN_PASSWORD=$(cat .data/admin_password)
  SHOW_PASSWORD=1
fi
export ADMIN_PASSWORD
export HOST="${HOST:-127.0.0.1}" PORT="${PORT:-8000}"

echo "==> building the control plane and the sandbox (release)"
cargo build --release --locked -p controlplane -p sandbox

echo "==> building the web dashboard (skipped when nothing changed)"
scripts/frontend.sh build

# The sandbox needs a container engine; the control plane runs without it.
SANDBOX_PID=
SANDBOX_LINE="  sandbox:        NOT STARTED - no container engine here (see the message above); the control plane runs without it"
if scripts/sandbox-engine.sh up; then
  # shellcheck disable=SC1091
  source .data/sandbox.env
  export DOCKER_HOST
  SANDBOX_PORT="${SANDBOX_PORT:-8001}" NATS_CREDS="$NATS_AUTH_DIR/sandbox.creds" \
    "${CARGO_TARGET_DIR:-target}/release/sandbox" &
  SANDBOX_PID=$!
  SANDBOX_LINE="  sandbox:        http://localhost:${SANDBOX_PORT:-8001}"
fi
trap '[ -n "$SANDBOX_PID" ] && kill "$SANDBOX_PID" 2>/dev/null' EXIT

echo
echo "  control plane:  http://localhost:${PORT}"
echo "  PostgreSQL:     ${DATABASE_URL}"
echo "  NATS:           ${NATS_URL}   (authentication on; a service's creds: target/release/controlplane service add NAME --all-tenants)"
echo "$SANDBOX_LINE"
if [ "${SHOW_PASSWORD:-}" = 1 ]; then
  echo "  log in as:      admin / ${ADMIN_PASSWORD}   (kept in .data/admin_password)"
else
  echo "  log in as:      admin / \$ADMIN_PASSWORD"
fi
echo "  e.g.: curl -s localhost:${PORT}/auth/login -H 'content-type: application/json' \\"
echo "          -d '{\"username\":\"admin\",\"password\":\"<password>\"}'"
echo
"${CARGO_TARGET_DIR:-target}/release/controlplane" serve
