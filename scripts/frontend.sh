#!/usr/bin/env bash
# The web dashboard (frontend/): one entry point for installing, checking, building and testing.
#   scripts/frontend.sh deps    node modules (npm ci) and Debian's Chromium when missing
#   scripts/frontend.sh build   vite build into frontend/dist, skipped when nothing changed
#   scripts/frontend.sh check   eslint, prettier --check, tsc --noEmit, vitest
#   scripts/frontend.sh e2e     the built app in Chromium against a real `controlplane serve`
#   scripts/frontend.sh test    deps + check + build + e2e (what `make test` runs)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FE=$ROOT/frontend

step() { printf '\n==> %s\n' "$*"; }

need_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node and npm are needed (Node 20.19+; Debian: apt-get install -y nodejs npm)" >&2
    exit 1
  fi
}

# A stamp of everything the installed modules or the build depend on.
hash_of() { (cd "$FE" && find "$@" -type f -print0 2>/dev/null | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64); }

deps() {
  need_node
  local want
  want=$(hash_of package.json package-lock.json)
  if [ ! -f "$FE/node_modules/.deps-stamp" ] || [ "$(cat "$FE/node_modules/.deps-stamp")" != "$want" ]; then
    step "npm ci (frontend)"
    (cd "$FE" && npm ci --no-audit --no-fund)
    echo "$want" > "$FE/node_modules/.deps-stamp"
  fi
}

chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    step "installing Debian's chromium (browser tests)"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update
    $sudo apt-get install -y chromium
  fi
}

build() {
  deps
  local want
  want=$(hash_of src index.html package-lock.json package.json vite.config.ts tsconfig.json scripts)
  if [ -f "$FE/dist/.build-stamp" ] && [ "$(cat "$FE/dist/.build-stamp")" = "$want" ] && [ -f "$FE/dist/index.html" ]; then
    echo "frontend/dist is current (nothing changed since the last build)"
    return
  fi
  step "building the dashboard (vite build into frontend/dist; JS budget checked)"
  (cd "$FE" && npm run build)
  echo "$want" > "$FE/dist/.build-stamp"
}

check() {
  deps
  step "frontend: eslint + prettier --check"
  (cd "$FE" && npm run lint)
  step "frontend: tsc --noEmit"
  (cd "$FE" && npm run typecheck)
  step "frontend: vitest"
  (cd "$FE" && npm test)
}

e2e() {
  deps
  chromium
  build
  step "frontend: end-to-end in Chromium against a real controlplane serve"
  if [ -z "${CONTROLPLANE_BIN:-}" ]; then
    cargo build --locked -p controlplane
    CONTROLPLANE_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/controlplane"
  fi
  # shellcheck disable=SC1091
  [ -f .data/services.env ] && source .data/services.env
  export CONTROLPLANE_BIN DATABASE_URL NATS_URL
  # The sandbox test runs code through a real sandbox service when the container engine is up
  # (scripts/sandbox-engine.sh up; `make test` starts it before this step); else it is skipped.
  if [ -z "${SANDBOX_BIN:-}" ] && [ -f .data/sandbox.env ] && scripts/sandbox-engine.sh status >/dev/null 2>&1; then
    # shellcheck disable=SC1091
    source .data/sandbox.env
    cargo build --locked -p sandbox
    SANDBOX_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/sandbox"
    export SANDBOX_BIN DOCKER_HOST
  fi
  (cd "$FE" && node e2e/run.mjs)
}

case "${1:-test}" in
  deps) deps; chromium ;;
  build) build ;;
  check) check ;;
  e2e) e2e ;;
  test) check; build; e2e ;;
  *) echo "usage: $0 deps|build|check|e2e|test" >&2; exit 2 ;;
esac
