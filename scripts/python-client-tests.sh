#!/usr/bin/env bash
# The Python client (clients/python): ruff, mypy --strict and pytest against a real
# `controlplane serve` on the PostgreSQL and NATS of scripts/services.sh. The tests start
# the binary themselves (a fresh database, their own NATS subject prefix and stream names,
# a free port) and drop all of it afterwards.
#
# Tools come from PyPI, pinned in clients/python/constraints.txt, in a venv under .data/
# (made again when the pins change). Needs python3 with venv (Debian: python3-venv) and psql.
#
#   scripts/python-client-tests.sh                 everything
#   scripts/python-client-tests.sh -k breaker      extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${DATABASE_URL:-}" ] || [ -z "${NATS_URL:-}" ]; then
  # shellcheck disable=SC1091
  [ -f .data/services.env ] && source .data/services.env
fi
: "${DATABASE_URL:?run scripts/services.sh up (make services) first}" "${NATS_URL:?run scripts/services.sh up first}"
export DATABASE_URL NATS_URL

# Debian's python3 first (what CI has), as scripts/schemathesis.sh does.
PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
VENV=.data/python-client-venv
CONSTRAINTS=clients/python/constraints.txt
stamp="$("$PYTHON" --version 2>&1) $(sha256sum "$CONSTRAINTS" clients/python/pyproject.toml | sha256sum | cut -c1-16)"
if [ "$(cat "$VENV/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "making $VENV ($stamp)"
  rm -rf "$VENV"
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    # A fresh Debian has python3 without ensurepip.
    rm -rf "$VENV"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get install -y -qq python3-venv >/dev/null || { apt-get update -qq && apt-get install -y -qq python3-venv; }
    fi
    "$PYTHON" -m venv "$VENV" || { echo "python3 -m venv failed: apt-get install python3-venv" >&2; exit 1; }
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -c "$CONSTRAINTS" \
    nats-py nkeys pynacl pytest pytest-asyncio pytest-timeout mypy ruff hatchling
  echo "$stamp" > "$VENV/.stamp"
fi
# The package itself, as a user installs it (a wheel, not the source tree); the build
# backend is the pinned one from the venv.
PIP_CONSTRAINT="$PWD/$CONSTRAINTS" "$VENV/bin/pip" install --quiet --disable-pip-version-check \
  --no-build-isolation --force-reinstall --no-deps ./clients/python

# The binary of this tree (CONTROLPLANE_BIN to test another one).
if [ -z "${CONTROLPLANE_BIN:-}" ]; then
  cargo build --locked -p controlplane
  CONTROLPLANE_BIN=${CARGO_TARGET_DIR:-target}/debug/controlplane
fi
CONTROLPLANE_BIN=$(realpath "$CONTROLPLANE_BIN")
export CONTROLPLANE_BIN

cd clients/python
echo "ruff"
../../"$VENV"/bin/ruff check --no-cache .
../../"$VENV"/bin/ruff format --no-cache --check .
echo "mypy --strict"
../../"$VENV"/bin/mypy --strict --cache-dir ../../.data/python-client-mypy-cache
echo "pytest (against $CONTROLPLANE_BIN)"
../../"$VENV"/bin/pytest -p no:cacheprovider -q "$@"
