#!/usr/bin/env bash
# The whole suite: lints, then every test against the real services started by
# scripts/services.sh (called by `make test` before this script).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source .data/services.env
# NATS_AUTH_DIR: the tests mint their own NATS identities with its account seed.
export DATABASE_URL NATS_URL NATS_AUTH_DIR NATS_CREDS NATS_ACCOUNT_SEED_FILE

step() { printf '\n==> %s\n' "$*"; }

step "rustfmt"
cargo fmt --all --check

step "clippy (-D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# Each test creates its own database (cp_test_<uuid>): about 8 MB each, one per test, and
# autovacuum visits every one of them. Dropped before the tests (those of an earlier run)
# and after them when they pass (a failed run keeps its databases to look at).
drop_test_databases() {
  psql "$DATABASE_URL" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'cp\_test\_%'" \
    | while read -r db; do psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"; done
}
step "dropping test databases and NATS streams of earlier runs"
drop_test_databases
# Tests delete their streams when they end; a killed run leaves them (scripts/drop-test-streams.py).
python3 scripts/drop-test-streams.py "$NATS_URL" "$NATS_AUTH_DIR/admin.creds"

step "Rust tests (unit + integration, real PostgreSQL and NATS)"
cargo test --workspace --locked --exclude sandbox
step "dropping this run's test databases"
drop_test_databases

# The dashboard's Sandbox test runs code in the real engine (scripts/sandbox-tests.sh needs it too).
if [ -x scripts/sandbox-engine.sh ]; then
  step "sandbox engine (podman) for the dashboard's and the sandbox's tests"
  scripts/sandbox-engine.sh up
fi

step "web dashboard: lint, typecheck, vitest, build (JS budget), end-to-end in Chromium (scripts/frontend.sh)"
scripts/frontend.sh test

step "schemathesis: a live server fuzzed from its own /openapi.json (no 5xx, no answer off its schema)"
scripts/schemathesis.sh

step "Python client (clients/python): ruff, mypy --strict, pytest against a live server"
scripts/python-client-tests.sh

step "deployment: Dockerfile, compose, kustomize overlays, alert rules, Grafana dashboard against a live server (scripts/deploy-checks.sh)"
scripts/deploy-checks.sh

if [ -x scripts/sandbox-tests.sh ]; then
  step "sandbox tests (real container engine)"
  scripts/sandbox-tests.sh
fi
