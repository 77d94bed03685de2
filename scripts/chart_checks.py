#!/usr/bin/env python3
"""Checks of the Helm chart that helm lint and kubernetes-validate do not do,
for scripts/check-chart.sh. Each subcommand prints one line per check and
exits 1 when one fails.

  values-doc VALUES_YAML README_MD
      Every value in values.yaml has a comment line right above it and is
      listed (as `path.to.value`) in the chart's README.

  split RENDERED OUT_DIR
      Splits `helm template` output into OUT_DIR/kubernetes.yaml (kinds
      kubernetes-validate has schemas for: the built-in API groups) and
      OUT_DIR/monitoring.yaml (monitoring.coreos.com: ServiceMonitor,
      PodMonitor). Any other API group is an error, never a silent skip.

  expect RENDERED [--kinds K,K,...] [--arg A]... [--no-arg A]...
                  [--hardened] [--dashboard JSON_FILE]
      The rendered objects are exactly these kinds (sorted, with repeats);
      the operator container has (or has not) these arguments; the pod runs
      hardened (non-root, read-only root, no capabilities, seccomp) and its
      labels never match a Cluster's broker selector; the dashboard
      ConfigMap holds JSON_FILE unchanged.

  monitors [--prove-rejections] MONITORING_YAML
      Validates ServiceMonitors and PodMonitors against prometheus-operator's
      types (PyPI cloudcoil-models-prometheus-operator, generated from its
      CRDs; must be importable, see check-chart.sh), rejecting unknown
      fields; with --prove-rejections, also checks that broken monitors
      built here from them are rejected.
"""

import argparse
import copy
import json
import os
import re
import sys

import yaml

from check_report import FAILURES, fail, ok


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def name_of(document):
    return f"{document.get('kind')}/{document.get('metadata', {}).get('name')}"


# values-doc

KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_.-]*):(?:\s|$)")


def leaf_paths(node, prefix=""):
    """Dotted paths of the values: keys whose value is not a non-empty map."""
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from leaf_paths(value, path + ".")
        else:
            yield path


def values_doc(values_path, readme_path):
    with open(values_path) as f:
        lines = f.read().splitlines()
    values = yaml.safe_load("\n".join(lines)) or {}
    leaves = set(leaf_paths(values))

    # Each key line's dotted path, from its indentation, and whether the
    # line above it is a comment.
    commented = {}
    stack = []  # (indent, key)
    previous = ""
    for line in lines:
        match = KEY_LINE.match(line)
        if match and not line.lstrip().startswith("-"):
            indent = len(match["indent"])
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, match["key"]))
            path = ".".join(key for _, key in stack)
            commented[path] = previous.lstrip().startswith("#")
        if line.strip():
            previous = line
    with open(readme_path) as f:
        readme = f.read()

    unparsed = leaves - set(commented)
    if unparsed:
        fail(f"{values_path}: values not found line by line: {sorted(unparsed)}")
    uncommented = sorted(p for p in leaves if p in commented and not commented[p])
    if uncommented:
        fail(f"{values_path}: values without a comment above them: {uncommented}")
    else:
        ok(f"{values_path}: all {len(leaves)} values have a comment")
    undocumented = sorted(p for p in leaves if f"`{p}`" not in readme)
    if undocumented:
        fail(f"{readme_path}: values not listed: {undocumented}")
    else:
        ok(f"{readme_path}: lists all {len(leaves)} values")
    # The rows of the Values table: from "## Values" to the next heading.
    section = readme.split("\n## Values", 1)[-1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([A-Za-z0-9_.-]+)` \|", section, re.M))
    stale = sorted(listed - leaves)
    if stale:
        fail(f"{readme_path}: lists values values.yaml does not have: {stale}")
    else:
        ok(f"{readme_path}: lists no value values.yaml lacks")


# split

MONITORING_GROUP = "monitoring.coreos.com"


def split(rendered, out_dir):
    documents = load_all(rendered)
    label = os.path.basename(os.path.dirname(rendered)) or rendered
    kubernetes, monitoring = [], []
    for document in documents:
        api_version = document.get("apiVersion", "")
        if not api_version or not document.get("kind"):
            fail(f"{label}: a document without apiVersion or kind: {document}")
            continue
        group = api_version.split("/")[0] if "/" in api_version else ""
        if group == MONITORING_GROUP:
            monitoring.append(document)
        elif group == "" or group.endswith(".k8s.io") or "." not in group:
            # The core group and the built-in groups (apps, policy,
            # rbac.authorization.k8s.io, ...): kubernetes-validate has them.
            kubernetes.append(document)
        else:
            fail(f"{label}: {name_of(document)} is of API group {group}, which no check here validates")
    os.makedirs(out_dir, exist_ok=True)
    for name, part in (("kubernetes.yaml", kubernetes), ("monitoring.yaml", monitoring)):
        with open(os.path.join(out_dir, name), "w") as f:
            yaml.safe_dump_all(part, f, sort_keys=False)
    print(
        f"{label}: {len(kubernetes)} built-in object(s) for kubernetes-validate, "
        f"{len(monitoring)} {MONITORING_GROUP} object(s) for the prometheus-operator types"
    )


# expect

# The labels a Cluster's StatefulSet, Services and PodDisruptionBudget
# select broker pods by (operator/src/objects.rs).
BROKER_SELECTOR_NAME = ("app.kubernetes.io/name", "runnel")


def operator_container(documents):
    deployments = [d for d in documents if d["kind"] == "Deployment"]
    if len(deployments) != 1:
        fail(f"expected one Deployment, found {len(deployments)}")
        return None, None
    pod = deployments[0]["spec"]["template"]
    containers = pod["spec"]["containers"]
    return pod, containers[0]


def expect(rendered, kinds, args, no_args, hardened, dashboard):
    documents = load_all(rendered)
    label = os.path.basename(os.path.dirname(rendered)) or rendered
    if kinds is not None:
        want = sorted(k for k in kinds.split(",") if k)
        got = sorted(d["kind"] for d in documents)
        if got == want:
            ok(f"{label}: renders {', '.join(got)}")
        else:
            fail(f"{label}: renders {got}, expected {want}")
    pod, container = operator_container(documents)
    if container is None:
        return
    container_args = container.get("args", [])
    if container_args[:1] == ["run"]:
        ok(f"{label}: the operator runs `runnel-operator run`")
    else:
        fail(f"{label}: the operator's args do not start with run: {container_args}")
    for arg in args:
        if arg in container_args:
            ok(f"{label}: operator argument {arg}")
        else:
            fail(f"{label}: operator argument {arg} missing from {container_args}")
    for arg in no_args:
        present = [a for a in container_args if a == arg or a.startswith(arg + "=")]
        if present:
            fail(f"{label}: operator argument {arg} should be absent: {present}")
        else:
            ok(f"{label}: no operator argument {arg}")
    env = {e["name"]: e for e in container.get("env", [])}
    for name, field in (("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")):
        if env.get(name, {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == field:
            ok(f"{label}: {name} from the downward API ({field})")
        else:
            fail(f"{label}: {name} is not taken from {field}")
    probes = {
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
    if ports.get("http") == 8080:
        ok(f"{label}: container port 8080 named http")
    else:
        fail(f"{label}: no container port 8080 named http: {ports}")
    for probe, path in probes.items():
        get = container.get(probe, {}).get("httpGet", {})
        if get.get("path") == path and get.get("port") == "http":
            ok(f"{label}: {probe} GET {path} on port http")
        else:
            fail(f"{label}: {probe} is {get}, expected GET {path} on port http")
    pod_labels = pod["metadata"].get("labels", {})
    if pod_labels.get(BROKER_SELECTOR_NAME[0]) == BROKER_SELECTOR_NAME[1]:
        fail(f"{label}: operator pods carry {'='.join(BROKER_SELECTOR_NAME)}: a Cluster's broker selector could match them")
    else:
        ok(f"{label}: operator pods cannot match a broker selector ({BROKER_SELECTOR_NAME[0]}={pod_labels.get(BROKER_SELECTOR_NAME[0])})")
    if hardened:
        pod_sc = pod["spec"].get("securityContext", {})
        sc = container.get("securityContext", {})
        checks = {
            "runAsNonRoot": pod_sc.get("runAsNonRoot") is True and sc.get("runAsNonRoot") is not False,
            "runAsUser 65532": pod_sc.get("runAsUser", sc.get("runAsUser")) == 65532,
            "readOnlyRootFilesystem": sc.get("readOnlyRootFilesystem") is True,
            "allowPrivilegeEscalation false": sc.get("allowPrivilegeEscalation") is False,
            "capabilities drop ALL": sc.get("capabilities", {}).get("drop") == ["ALL"],
            "seccomp RuntimeDefault": (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
            == "RuntimeDefault",
            "resource requests and limits": bool(container.get("resources", {}).get("requests"))
            and bool(container.get("resources", {}).get("limits")),
        }
        for what, good in checks.items():
            (ok if good else fail)(f"{label}: operator pod {what}")
    if dashboard:
        with open(dashboard) as f:
            want = f.read()
        maps = [d for d in documents if d["kind"] == "ConfigMap" and os.path.basename(dashboard) in d.get("data", {})]
        if len(maps) != 1:
            fail(f"{label}: {len(maps)} ConfigMaps hold {os.path.basename(dashboard)}, expected 1")
        else:
            got = maps[0]["data"][os.path.basename(dashboard)]
            if got.rstrip("\n") == want.rstrip("\n") and json.loads(got) == json.loads(want):
                ok(f"{label}: ConfigMap {maps[0]['metadata']['name']} holds {dashboard} unchanged")
            else:
                fail(f"{label}: the dashboard ConfigMap differs from {dashboard}")
            if maps[0]["metadata"].get("labels", {}).get("grafana_dashboard") == "1":
                ok(f"{label}: the dashboard ConfigMap has the label grafana_dashboard=1")
            else:
                fail(f"{label}: the dashboard ConfigMap lacks the label grafana_dashboard=1")


# monitors


def monitor_errors(document):
    """Why a monitoring.coreos.com object is invalid (empty when valid)."""
    try:
        from cloudcoil.models.prometheus_operator import v1 as monitoring_v1
        import pydantic
    except ImportError as error:
        return [f"cannot import the prometheus-operator types: {error}"]
    if document.get("apiVersion") != f"{MONITORING_GROUP}/v1":
        return [f"apiVersion {document.get('apiVersion')} is not {MONITORING_GROUP}/v1"]
    model = getattr(monitoring_v1, str(document.get("kind")), None)
    if model is None or document.get("kind") not in ("ServiceMonitor", "PodMonitor"):
        return [f"no prometheus-operator type for kind {document.get('kind')}"]
    try:
        parsed = model.model_validate(document)
    except pydantic.ValidationError as error:
        return [
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        ]
    # The models drop fields they do not know: a round trip that loses
    # something means an unknown (misspelt or misplaced) field.
    again = parsed.model_dump(by_alias=True, exclude_unset=True, mode="json")
    if again != document:
        return [f"unknown fields: {sorted(differences(document, again))}"]
    return []


def differences(want, got, path=""):
    if isinstance(want, dict) and isinstance(got, dict):
        for key in set(want) | set(got):
            yield from differences(want.get(key), got.get(key), f"{path}.{key}" if path else key)
    elif isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        for i, (a, b) in enumerate(zip(want, got)):
            yield from differences(a, b, f"{path}[{i}]")
    elif want != got:
        yield path


def monitors(path, prove_rejections):
    documents = load_all(path)
    if not documents:
        fail(f"{path}: no monitoring.coreos.com object to validate")
        return
    for document in documents:
        errors = monitor_errors(document)
        if errors:
            fail(f"{name_of(document)} is not a valid {document.get('kind')}: " + "; ".join(errors))
        else:
            ok(f"{name_of(document)} is a valid {MONITORING_GROUP}/v1 {document['kind']} (prometheus-operator types, strict)")
    if not prove_rejections:
        return
    # Proof that these checks can fail.
    for sample in documents:
        kind = sample["kind"]
        key = "endpoints" if kind == "ServiceMonitor" else "podMetricsEndpoints"
        broken = {}
        typo = copy.deepcopy(sample)
        typo["spec"][key][0]["intervall"] = typo["spec"][key][0].pop("interval", "30s")
        broken["a misspelt endpoint field (intervall)"] = typo
        bad_interval = copy.deepcopy(sample)
        bad_interval["spec"][key][0]["interval"] = "30 seconds"
        broken["an interval that is not a Prometheus duration"] = bad_interval
        no_selector = copy.deepcopy(sample)
        no_selector["spec"].pop("selector")
        broken["no selector"] = no_selector
        port_number = copy.deepcopy(sample)
        port_number["spec"][key][0]["port"] = 8080
        broken["a numeric port name"] = port_number
        for what, document in broken.items():
            errors = monitor_errors(document)
            if errors:
                ok(f"rejected a {kind} with {what}: {errors[0]}")
            else:
                fail(f"accepted a {kind} with {what}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("values-doc")
    p.add_argument("values")
    p.add_argument("readme")
    p = sub.add_parser("split")
    p.add_argument("rendered")
    p.add_argument("out_dir")
    p = sub.add_parser("expect")
    p.add_argument("rendered")
    p.add_argument("--kinds")
    p.add_argument("--arg", action="append", default=[])
    p.add_argument("--no-arg", action="append", default=[])
    p.add_argument("--hardened", action="store_true")
    p.add_argument("--dashboard")
    p = sub.add_parser("monitors")
    p.add_argument("--prove-rejections", action="store_true")
    p.add_argument("path")
    args = parser.parse_args()
    if args.command == "values-doc":
        values_doc(args.values, args.readme)
    elif args.command == "split":
        split(args.rendered, args.out_dir)
    elif args.command == "expect":
        expect(args.rendered, args.kinds, args.arg, args.no_arg, args.hardened, args.dashboard)
    elif args.command == "monitors":
        monitors(args.path, args.prove_rejections)
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
