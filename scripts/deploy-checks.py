"""The checks of scripts/deploy-checks.sh that need a program (the shell script installs the
tools, builds the overlays and scrapes a live server; this file judges what they produced).

  deploy-checks.py rule [--write]          monitoring/prometheusrule.yaml is made from
                                            monitoring/alerts.yml (--write: make it)
  deploy-checks.py manifests K8S_VERSION NAME=FILE...
                                            every manifest of each kustomize build against the
                                            Kubernetes schemas (strict), the CRD kinds against
                                            structural schemas below, plus the project's rules
  deploy-checks.py metrics METRICS_FILE     every metric (and label) the Grafana dashboard and
                                            the alert rules name is in a live server's /metrics
  deploy-checks.py compose                  docker-compose.yml's ${VARS} are in .env.example,
                                            nothing secret is written in it, its mounts exist

Runs in the venv of deploy-checks.sh (PyYAML, jsonschema, kubernetes-validate).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "monitoring" / "alerts.yml"
RULE = ROOT / "monitoring" / "prometheusrule.yaml"
DASHBOARD = ROOT / "monitoring" / "grafana" / "dashboards" / "controlplane.json"
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

failures: list[str] = []


def fail(message: str) -> None:
    failures.append(message)
    print(f"FAIL {message}", file=sys.stderr)


def finish(what: str) -> int:
    if failures:
        print(f"{what}: {len(failures)} failed", file=sys.stderr)
        return 1
    print(f"{what}: ok")
    return 0


# ---------------------------------------------------------------- the PrometheusRule

RULE_HEADER = """\
# GENERATED from monitoring/alerts.yml by `scripts/deploy-checks.sh --write`: edit that file,
# not this one (scripts/deploy-checks.sh fails while the two differ). The Prometheus
# Operator's form of the same rules, for k8s/ (monitoring/kustomization.yaml).
"""


def rendered_rule() -> str:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "controlplane",
            # What kube-prometheus-stack's Prometheus selects by default (servicemonitors.yaml).
            "labels": {"release": "kube-prometheus-stack"},
        },
        "spec": {"groups": groups},
    }
    return RULE_HEADER + yaml.safe_dump(rule, sort_keys=False, width=100, allow_unicode=True)


def cmd_rule(args: list[str]) -> int:
    want = rendered_rule()
    if args[:1] == ["--write"]:
        RULE.write_text(want)
        print(f"wrote {RULE.relative_to(ROOT)}")
        return 0
    if not RULE.exists() or RULE.read_text() != want:
        fail(
            f"{RULE.relative_to(ROOT)} is not what monitoring/alerts.yml makes: "
            "run scripts/deploy-checks.sh --write and commit both"
        )
    return finish("PrometheusRule matches monitoring/alerts.yml")


# ---------------------------------------------------------------- CRD kinds, structurally

STR = {"type": "string"}
STR_MAP = {"type": "object", "additionalProperties": STR}
INT_OR_STR = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
LABEL_SELECTOR = {
    "type": "object",
    "properties": {
        "matchLabels": STR_MAP,
        "matchExpressions": {"type": "array", "items": {"type": "object"}},
    },
    "additionalProperties": False,
}
METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": STR, "namespace": STR, "labels": STR_MAP, "annotations": STR_MAP},
}


def crd(api_version: str, kind: str, spec: dict) -> dict:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": METADATA,
            "spec": spec,
        },
        "additionalProperties": False,
    }


# The fields these manifests use, with the types of the CRDs (prometheus-operator v0.7x,
# CloudNativePG 1.2x); additionalProperties false catches a misspelt or misplaced field.
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): crd(
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        {
            "type": "object",
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": LABEL_SELECTOR,
                "namespaceSelector": {"type": "object"},
                "jobLabel": STR,
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "port": STR,
                            "targetPort": INT_OR_STR,
                            "path": STR,
                            "scheme": {"enum": ["http", "https"]},
                            "interval": DURATION,
                            "scrapeTimeout": DURATION,
                            "honorLabels": {"type": "boolean"},
                            "relabelings": {"type": "array"},
                            "metricRelabelings": {"type": "array"},
                            "authorization": {
                                "type": "object",
                                "properties": {
                                    "type": STR,
                                    "credentials": {
                                        "type": "object",
                                        "required": ["name", "key"],
                                        "properties": {"name": STR, "key": STR},
                                        "additionalProperties": False,
                                    },
                                },
                                "additionalProperties": False,
                            },
                        },
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
    ),
    ("monitoring.coreos.com/v1", "PrometheusRule"): crd(
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        {
            "type": "object",
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "properties": {
                            "name": STR,
                            "interval": DURATION,
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["expr"],
                                    "properties": {
                                        "alert": STR,
                                        "record": STR,
                                        "expr": INT_OR_STR,
                                        "for": DURATION,
                                        "keep_firing_for": DURATION,
                                        "labels": STR_MAP,
                                        "annotations": STR_MAP,
                                    },
                                    "additionalProperties": False,
                                    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                },
                            },
                        },
                        "additionalProperties": False,
                    },
                }
            },
            "additionalProperties": False,
        },
    ),
    ("postgresql.cnpg.io/v1", "Cluster"): crd(
        "postgresql.cnpg.io/v1",
        "Cluster",
        {
            "type": "object",
            "required": ["instances", "storage"],
            "properties": {
                "instances": {"type": "integer", "minimum": 1},
                "imageName": STR,
                "primaryUpdateStrategy": {"enum": ["supervised", "unsupervised"]},
                "bootstrap": {
                    "type": "object",
                    "properties": {
                        "initdb": {
                            "type": "object",
                            "properties": {"database": STR, "owner": STR, "secret": {"type": "object"}},
                            "additionalProperties": False,
                        },
                        "recovery": {"type": "object"},
                    },
                    "additionalProperties": False,
                },
                "postgresql": {
                    "type": "object",
                    "properties": {"parameters": STR_MAP},
                    "additionalProperties": False,
                },
                "storage": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {"size": STR, "storageClass": STR},
                    "additionalProperties": False,
                },
                "affinity": {
                    "type": "object",
                    "properties": {"enablePodAntiAffinity": {"type": "boolean"}, "topologyKey": STR},
                    "additionalProperties": False,
                },
                "monitoring": {
                    "type": "object",
                    "properties": {"enablePodMonitor": {"type": "boolean"}},
                    "additionalProperties": False,
                },
                "resources": {
                    "type": "object",
                    "properties": {"requests": STR_MAP, "limits": STR_MAP},
                    "additionalProperties": False,
                },
                "backup": {
                    "type": "object",
                    "properties": {
                        "retentionPolicy": {"type": "string", "pattern": r"^[1-9][0-9]*[dwm]$"},
                        "barmanObjectStore": {
                            "type": "object",
                            "required": ["destinationPath"],
                            "properties": {
                                "destinationPath": STR,
                                "s3Credentials": {"type": "object"},
                                "wal": {"type": "object"},
                                "data": {"type": "object"},
                            },
                            "additionalProperties": False,
                        },
                    },
                    "additionalProperties": False,
                },
            },
            "additionalProperties": False,
        },
    ),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): crd(
        "postgresql.cnpg.io/v1",
        "ScheduledBackup",
        {
            "type": "object",
            "required": ["schedule", "cluster"],
            "properties": {
                # CloudNativePG's schedule has six fields (seconds first).
                "schedule": {"type": "string", "pattern": r"^(\S+\s+){5}\S+$"},
                "cluster": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": STR},
                    "additionalProperties": False,
                },
                "backupOwnerReference": {"enum": ["none", "self", "cluster"]},
                "immediate": {"type": "boolean"},
            },
            "additionalProperties": False,
        },
    ),
}

CLUSTER_SCOPED = {"Namespace", "RuntimeClass", "ClusterRole", "ClusterRoleBinding"}


def check_rules_of(name: str, docs: list[dict]) -> None:
    """What the project needs of its own manifests, beyond their schemas."""
    by_kind: dict[str, list[dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    config = {}
    for cm in by_kind.get("ConfigMap", []):
        if cm["metadata"]["name"].startswith("controlplane-config"):
            config = cm.get("data", {})
    grace = int(config.get("SHUTDOWN_GRACE_SECONDS", "20"))
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    for dep_name in ("controlplane", "sandbox"):
        if dep_name not in deployments:
            fail(f"{name}: no Deployment {dep_name}")
    for dep_name, dep in deployments.items():
        pod = dep["spec"]["template"]["spec"]
        for c in pod["containers"]:
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(part, {}):
                        fail(f"{name}: {dep_name}/{c['name']} has no {part}.{r}")
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in c:
                    fail(f"{name}: {dep_name}/{c['name']} has no {probe}")
            if c.get("securityContext", {}).get("allowPrivilegeEscalation") is not False:
                fail(f"{name}: {dep_name}/{c['name']} may escalate privileges")
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            fail(f"{name}: {dep_name} may run as root")
    cp = deployments.get("controlplane")
    if cp:
        pod = cp["spec"]["template"]["spec"]
        c = pod["containers"][0]
        if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
            fail(f"{name}: the control plane's liveness probe is not GET /healthz")
        if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
            fail(f"{name}: the control plane's readiness probe is not GET /readyz")
        pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        pre_stop_s = int(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0
        tgps = pod.get("terminationGracePeriodSeconds", 30)
        if tgps <= grace + pre_stop_s:
            fail(
                f"{name}: terminationGracePeriodSeconds {tgps} is not above preStop {pre_stop_s} s "
                f"+ SHUTDOWN_GRACE_SECONDS {grace}: the drain would be killed"
            )
        refs = {e.get("configMapRef", {}).get("name") for e in c.get("envFrom", [])}
        if not any(r and r.startswith("controlplane-config") for r in refs):
            fail(f"{name}: the control plane does not read its ConfigMap")
    hpas = by_kind.get("HorizontalPodAutoscaler", [])
    kinds = {m["type"] for h in hpas for m in h["spec"].get("metrics", [])}
    if not {"Resource", "Pods"} <= kinds:
        fail(f"{name}: the HPA does not scale on both CPU (Resource) and request rate (Pods)")
    for kind in ("Ingress", "PodDisruptionBudget", "NetworkPolicy", "RuntimeClass", "ServiceMonitor",
                 "PrometheusRule", "Cluster", "Service"):
        if kind not in by_kind:
            fail(f"{name}: no {kind}")
    for ing in by_kind.get("Ingress", []):
        ann = ing["metadata"].get("annotations", {})
        if int(ann.get("nginx.ingress.kubernetes.io/proxy-read-timeout", "60")) < 300:
            fail(f"{name}: Ingress {ing['metadata']['name']} would cut idle WebSockets within 5 minutes")
    for pg in by_kind.get("Cluster", []):
        if name.endswith("prod") and pg["spec"]["instances"] < 3:
            fail(f"{name}: the PostgreSQL cluster has fewer than 3 instances")
    # The rules inside the PrometheusRule are monitoring/alerts.yml's.
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    for pr in by_kind.get("PrometheusRule", []):
        if pr["spec"]["groups"] != groups:
            fail(f"{name}: PrometheusRule {pr['metadata']['name']} differs from monitoring/alerts.yml")
    for d in docs:
        if d["kind"] not in CLUSTER_SCOPED and not d["metadata"].get("namespace"):
            fail(f"{name}: {d['kind']}/{d['metadata']['name']} has no namespace")


def cmd_manifests(args: list[str]) -> int:
    version, builds = args[0], args[1:]
    counted = 0
    for spec in builds:
        name, _, path = spec.partition("=")
        docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
        for d in docs:
            where = f"{name}: {d.get('kind')}/{d.get('metadata', {}).get('name')}"
            schema = CRD_SCHEMAS.get((d.get("apiVersion"), d.get("kind")))
            if schema is not None:
                errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(d), key=str)
                for e in errors:
                    fail(f"{where}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
            else:
                try:
                    kubernetes_validate.validate(d, version, strict=True)
                except kubernetes_validate.ValidationError as e:
                    path_ = "/".join(map(str, e.path))
                    fail(f"{where}: {path_}: {e.message}")
                except Exception as e:  # an unknown kind or apiVersion, among others
                    fail(f"{where}: {e}")
            counted += 1
        check_rules_of(name, docs)
    return finish(f"{counted} manifests of {len(builds)} builds (Kubernetes {version} schemas, strict)")


# ---------------------------------------------------------------- metric names

# Names in PromQL that are not metrics: functions, aggregations, keywords.
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan",
}
BUILTIN_SERIES = {"up"}  # made by Prometheus itself for every scrape target


def parse_exposition(text: str) -> dict[str, set[str]]:
    """metric name -> label names, from the Prometheus text format."""
    series: dict[str, set[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s", line)
        if not m:
            continue
        labels = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"", m.group(3) or ""))
        series.setdefault(m.group(1), set()).update(labels)
    return series


def names_in(expr: str) -> tuple[list[tuple[str, set[str]]], set[str]]:
    """The metric selectors of a PromQL expression (name, label names matched) and the label
    names of its by/without/on/ignoring clauses."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    grouping: set[str] = set()
    for m in re.finditer(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr):
        grouping.update(x.strip() for x in m.group(1).split(",") if x.strip())
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # ranges and subqueries
    selectors = []
    for m in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?", expr):
        word, matchers = m.group(1), m.group(2)
        rest = expr[m.end():]
        if rest.lstrip().startswith("(") and not matchers:
            continue  # a function or an aggregation
        if word.lower() in PROMQL_WORDS or re.fullmatch(r"[0-9.e]+", word):
            continue
        if expr[: m.start()].rstrip().endswith(("$", "{")):
            continue
        labels = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers or ""))
        selectors.append((word, labels))
    return selectors, grouping


def check_expr(where: str, expr: str, exported: dict[str, set[str]]) -> int:
    selectors, grouping = names_in(expr)
    if not selectors:
        fail(f"{where}: names no metric: {expr}")
    seen_labels: set[str] = {"le", "job", "instance"}
    for name, labels in selectors:
        if name in BUILTIN_SERIES:
            continue
        if name not in exported:
            fail(f"{where}: metric {name} is not exported by the server (GET /metrics)")
            continue
        seen_labels |= exported[name]
        for label in labels - exported[name] - {"job", "instance"}:
            fail(f"{where}: metric {name} has no label {label}")
    for label in grouping - seen_labels:
        fail(f"{where}: groups by {label}, which none of its metrics has")
    return len(selectors)


def cmd_metrics(args: list[str]) -> int:
    exported = parse_exposition(Path(args[0]).read_text())
    if not exported:
        fail(f"{args[0]} holds no metric")
        return finish("metric names")
    dash = json.loads(DASHBOARD.read_text())  # fails loudly on broken JSON
    ids = set()
    used = 0
    panels = [p for p in dash.get("panels", []) if p.get("type") != "row"]
    if not panels:
        fail("the dashboard has no panel")
    for p in panels:
        if p["id"] in ids:
            fail(f"panel {p['id']} ({p['title']}): id used twice")
        ids.add(p["id"])
        targets = [t for t in p.get("targets", []) if t.get("expr")]
        if not targets:
            fail(f"panel {p['title']}: no query")
        for t in targets:
            if t.get("datasource", {}).get("uid") != "${datasource}":
                fail(f"panel {p['title']}: a query not on the ${{datasource}} variable")
            used += check_expr(f"panel '{p['title']}'", t["expr"], exported)
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            used += check_expr(f"alert {rule.get('alert', rule.get('record'))}", str(rule["expr"]), exported)
    return finish(
        f"{len(panels)} panels and the alert rules name {used} series; all exported "
        f"({len(exported)} metric names scraped)"
    )


# ---------------------------------------------------------------- docker-compose.yml

def cmd_compose(_args: list[str]) -> int:
    text = COMPOSE.read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    for var in sorted(set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))):
        if var not in documented:
            fail(f"docker-compose.yml reads ${{{var}}}, which .env.example does not explain")
    compose = yaml.safe_load(text)
    for svc_name, svc in compose["services"].items():
        env = svc.get("environment", {})
        items = env.items() if isinstance(env, dict) else (e.split("=", 1) for e in env)
        for key, value in items:
            secret = re.search(r"PASSWORD|SECRET|TOKEN|KEY", key)
            if secret and value is not None and "${" not in str(value):
                fail(f"{svc_name}: {key} is written in docker-compose.yml; take it from .env")
        for vol in svc.get("volumes", []):
            src = vol.split(":", 1)[0] if isinstance(vol, str) else vol.get("source", "")
            if src.startswith("./") and not (ROOT / src).exists():
                fail(f"{svc_name}: mounts {src}, which does not exist")
    for need in ("postgres", "nats", "controlplane", "sandbox", "prometheus", "grafana"):
        if need not in compose["services"]:
            fail(f"docker-compose.yml has no service {need}")
    return finish("docker-compose.yml: variables documented, no secret written, mounts exist")


def main() -> int:
    commands = {"rule": cmd_rule, "manifests": cmd_manifests, "metrics": cmd_metrics, "compose": cmd_compose}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
