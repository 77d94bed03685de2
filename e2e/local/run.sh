#!/usr/bin/env bash
# Flows against the real control plane of cluster.sh: the chart installed
# by helm, the CRDs served and enforced by kube-apiserver, the operator as a
# local process authenticated as the chart's ServiceAccount (a TokenRequest
# token, so the chart's RBAC is what it may do), the real StatefulSet
# controller and garbage collector; first with no kubelet, then with
# e2e/local/podrunner in place of scheduler and kubelet, running the
# brokers as local processes (kcat produces and consumes through them).
#
#   bash e2e/local/run.sh
#
# Environment:
#   LOCAL_K8S_DIR      where the control plane keeps its files (default: a
#                      temporary directory, removed afterwards)
#   RUNNEL_OPERATOR    the operator binary (when it is missing: cargo build
#                      -p runnel-operator, target/debug/runnel-operator)
#   RUNNEL_BROKER      the broker binary the pod runner runs for the runnel
#                      image (when it is missing: cargo build -p
#                      runnel-broker, target/debug/runnel)
#   LOCAL_K8S_TIMEOUT  seconds for each wait (default 60)
#
# Prints one line per check and `local control plane flows: N passed, M
# failed`; exits 1 when a check failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$(pwd)"
# shellcheck source=scripts/process.sh
source scripts/process.sh

TIMEOUT="${LOCAL_K8S_TIMEOUT:-60}"
RELEASE=runnel
OPERATOR_NAMESPACE=runnel-system
# The chart names its objects (ServiceAccount, Lease) <release>-operator.
OPERATOR="$RELEASE-operator"
NAMESPACE=runnel-e2e
# The pod runner's Node.
NODE=runnel-local
STARTED=$SECONDS

if [ -n "${LOCAL_K8S_DIR:-}" ]; then
    DIR="$LOCAL_K8S_DIR"
    KEEP_DIR=1
else
    DIR="$(mktemp -d)"
    KEEP_DIR=0
fi
mkdir -p "$DIR"

PASSED=0
FAILED=0
FAILED_NAMES=()

passed() {
    PASSED=$((PASSED + 1))
    echo "ok: $*"
}

failed() {
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("$1")
    echo "FAIL: $*"
}

# check NAME COMMAND...: runs the command; one line for the result, its
# output (indented) only when it failed.
check() {
    local name=$1
    shift
    local output
    if output="$("$@" 2>&1)"; then
        passed "$name"
    else
        failed "$name"
        sed 's/^/    /' <<<"$output" | tail -n 40
    fi
}

# eventually SECONDS COMMAND...: polls COMMAND until it succeeds or SECONDS
# pass; the last attempt's output goes to stderr on failure.
eventually() {
    local seconds=$1
    shift
    local deadline=$((SECONDS + seconds)) output
    until output="$("$@" 2>&1)"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "still failing after ${seconds}s: $*" >&2
            echo "$output" >&2
            return 1
        fi
        sleep 0.5
    done
}

section() {
    echo
    echo "== $*"
}

cleanup() {
    local status=$?
    stop_pid_file "$DIR/operator-1.pid" 20
    stop_pid_file "$DIR/operator-2.pid" 20
    stop_pid_file "$DIR/operator-scoped.pid" 20
    if [ -f "$DIR/podrunner.pid" ]; then
        # SIGTERM: it stops the brokers and removes its names from /etc/hosts.
        stop_pid_file "$DIR/podrunner.pid" 40
        "${PODRUNNER:-podrunner}" -clean-hosts -node-name "$NODE" || true
    fi
    bash e2e/local/cluster.sh stop "$DIR" || true
    if [ "$KEEP_DIR" = 0 ]; then
        rm -rf "$DIR"
    else
        echo "run.sh: kept $DIR (logs: *.log)"
    fi
    exit "$status"
}
trap cleanup EXIT

section "control plane (etcd, kube-apiserver, kube-controller-manager)"
bash e2e/local/cluster.sh start "$DIR"
eval "$(bash e2e/local/cluster.sh env "$DIR")"
# kubectl's discovery cache: this run's, not ~/.kube/cache.
export KUBECACHEDIR="$DIR/kube-cache"
echo "kubectl: $(command -v kubectl), helm: $(command -v helm)"
if [ ! -x "${RUNNEL_OPERATOR:-}" ]; then
    cargo build -q -p runnel-operator
    RUNNEL_OPERATOR="$ROOT/target/debug/runnel-operator"
fi
if [ ! -x "${RUNNEL_BROKER:-}" ]; then
    cargo build -q -p runnel-broker
    RUNNEL_BROKER="$ROOT/target/debug/runnel"
fi
PODRUNNER="$(bash e2e/local/build.sh --bin-dir)/podrunner"
k() { kubectl "$@"; }

section "helm install of charts/runnel"
check "helm install creates the CRDs, RBAC and ServiceAccount" \
    helm install "$RELEASE" charts/runnel --namespace "$OPERATOR_NAMESPACE" --create-namespace \
    --set logFormat=text
crds_established() {
    local crd
    for crd in clusters.runnel.dev topics.runnel.dev consumergroups.runnel.dev; do
        k wait "crd/$crd" --for=condition=Established --timeout="${TIMEOUT}s" || return 1
    done
}
check "the three CRDs are Established" crds_established
check "the chart's ServiceAccount, ClusterRole(Binding) and Deployment exist" \
    k -n "$OPERATOR_NAMESPACE" get "serviceaccount/$OPERATOR" "clusterrole/$OPERATOR" \
    "clusterrolebinding/$OPERATOR" "role/$OPERATOR-leader-election" "deployment/$OPERATOR"

section "kubectl explain on the served schemas"
# explain FIELD WORD: the served schema documents FIELD with WORD in it.
explain() {
    local out
    out="$(k explain "$1")" || return 1
    grep -qi -- "$2" <<<"$out" || { echo "$out"; echo "no '$2' in kubectl explain $1"; return 1; }
}
# kubectl's discovery, and the OpenAPI schema explain reads, may trail the
# CRDs' establishment by a moment.
check "kubectl api-resources lists rnc, rnt and rncg" \
    eventually "$TIMEOUT" bash -c 'kubectl api-resources --api-group=runnel.dev | grep -c -wE "rnc|rnt|rncg" | grep -qx 3'
check "kubectl explain rnc.spec.brokers" eventually "$TIMEOUT" explain rnc.spec.brokers "broker"
check "kubectl explain rnt.spec.partitions" eventually "$TIMEOUT" explain rnt.spec.partitions "partition"
check "kubectl explain rncg.spec.lagPolicy" eventually "$TIMEOUT" explain rncg.spec.lagPolicy "thresholdMessages"
check "kubectl explain rnc.status.conditions" eventually "$TIMEOUT" explain rnc.status.conditions "type"

section "kubectl apply -f examples/ (validated by the API server)"
k create namespace "$NAMESPACE" >/dev/null
check "the examples are accepted (strict field validation)" \
    k -n "$NAMESPACE" apply --validate=strict -f examples/
# refused NAME PATTERN YAML: the API server refuses YAML with PATTERN in its
# answer.
refused() {
    local out
    if out="$(k -n "$NAMESPACE" apply --validate=strict -f - <<<"$2" 2>&1)"; then
        echo "accepted: $out"
        return 1
    fi
    grep -qiE -- "$1" <<<"$out" || { echo "refused, but not for '$1': $out"; return 1; }
}
check "a Cluster with an unknown spec field is refused" refused 'unknown field "spec.brokerCount"' \
    "$(printf 'apiVersion: runnel.dev/v1alpha1\nkind: Cluster\nmetadata: {name: bad1}\nspec: {brokerCount: 1, image: x, storage: {size: 1Gi}}\n')"
check "a Topic with partitions as a string is refused" refused 'spec.partitions' \
    "$(printf 'apiVersion: runnel.dev/v1alpha1\nkind: Topic\nmetadata: {name: bad2}\nspec: {cluster: demo, partitions: "six"}\n')"
check "a Cluster without spec.image is refused" refused 'spec.image: Required' \
    "$(printf 'apiVersion: runnel.dev/v1alpha1\nkind: Cluster\nmetadata: {name: bad3}\nspec: {brokers: 1, storage: {size: 1Gi}}\n')"

# refused_patch OBJECT PATCH PATTERN: a merge PATCH of OBJECT is refused
# with PATTERN in the answer.
refused_patch() {
    local out
    if out="$(k -n "$NAMESPACE" patch "$1" --type merge -p "$2" 2>&1)"; then
        echo "accepted: $out"
        return 1
    fi
    grep -qiE -- "$3" <<<"$out" || { echo "refused, but not for '$3': $out"; return 1; }
}
# patch_then SECONDS OBJECT PATCH COMMAND...: merge-patches OBJECT, then
# waits for COMMAND.
patch_then() { patch_then_in "$NAMESPACE" "$@"; }
# patch_then_in NAMESPACE SECONDS OBJECT PATCH COMMAND...: patch_then in
# NAMESPACE.
patch_then_in() {
    local namespace=$1 seconds=$2 object=$3 patch=$4
    shift 4
    k -n "$namespace" patch "$object" --type merge -p "$patch" || return 1
    eventually "$seconds" "$@"
}

section "printer columns (kubectl get rnc,rnt,rncg)"
# columns RESOURCE HEADER...: kubectl get RESOURCE prints these headers.
columns() {
    local resource=$1 out header
    shift
    out="$(k -n "$NAMESPACE" get "$resource")" || return 1
    echo "$out"
    header="$(head -n 1 <<<"$out")"
    for column in "$@"; do
        grep -qw -- "$column" <<<"$header" || { echo "no column $column"; return 1; }
    done
}
check "kubectl get rnc: NAME BROKERS READY BOOTSTRAP AGE" columns rnc NAME BROKERS READY BOOTSTRAP AGE
check "kubectl get rnt: NAME CLUSTER PARTITIONS READY AGE" columns rnt NAME CLUSTER PARTITIONS READY AGE
check "kubectl get rncg: NAME CLUSTER STATE LAG AGE" columns rncg NAME CLUSTER STATE LAG AGE
brokers_column() {
    [ "$(k -n "$NAMESPACE" get rnc demo --no-headers -o custom-columns=B:.spec.brokers)" = 1 ] &&
        k -n "$NAMESPACE" get rnc demo --no-headers | awk '$1 == "demo" && $2 == "1" {found=1} END {exit !found}'
}
check "the Brokers column shows spec.brokers" brokers_column

section "the operator as the chart's ServiceAccount (TokenRequest token)"
TOKEN="$(k -n "$OPERATOR_NAMESPACE" create token "$OPERATOR" --duration=1h)"
SERVER="$(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
CA_FILE="$(k config view --minify -o jsonpath='{.clusters[0].cluster.certificate-authority}')"
# kubeconfig_for FILE TOKEN: a kubeconfig authenticating with TOKEN.
kubeconfig_for() {
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: local
    cluster: {server: "$SERVER", certificate-authority: "$CA_FILE"}
users:
  - name: operator
    user: {token: "$2"}
contexts:
  - name: local
    context: {cluster: local, user: operator}
current-context: local
EOF
}
kubeconfig_for "$DIR/operator.kubeconfig" "$TOKEN"
as_operator() { KUBECONFIG="$DIR/operator.kubeconfig" kubectl "$@"; }
whoami_is_sa() {
    as_operator auth whoami -o jsonpath='{.status.userInfo.username}' |
        grep -qx "system:serviceaccount:$OPERATOR_NAMESPACE:$OPERATOR"
}
check "the token authenticates as system:serviceaccount:$OPERATOR_NAMESPACE:$OPERATOR" whoami_is_sa
# can yes|no VERB RESOURCE [ARGS...]: what RBAC answers for the operator's
# token.
can() {
    local expected=$1 answer
    shift
    answer="$(as_operator auth can-i "$@" -n "$NAMESPACE" 2>/dev/null || true)"
    [ "$answer" = "$expected" ] || { echo "can-i $*: '$answer', expected '$expected'"; return 1; }
}
check "RBAC lets it patch statefulsets" can yes patch statefulsets.apps
check "RBAC lets it patch clusters/status" can yes patch clusters.runnel.dev --subresource=status
check "RBAC refuses it deleting statefulsets (not granted)" can no delete statefulsets.apps
check "RBAC lets it scale deployments (backlog surges)" can yes patch deployments.apps --subresource=scale
check "RBAC lets it scale statefulsets (backlog surges)" can yes patch statefulsets.apps --subresource=scale
check "RBAC lets it delete deployments (a surge's forwarders)" can yes delete deployments.apps
check "RBAC lets it create topics (a surge's overflow Topic)" can yes create topics.runnel.dev
check "RBAC refuses it reading secrets (not granted)" can no get secrets

# start_operator N: runnel-operator run as the ServiceAccount, identity
# operator-N, its log in DIR/operator-N.log.
start_operator() {
    local n=$1 port
    port="$(python3 scripts/free_port.py 20000 29999)"
    KUBECONFIG="$DIR/operator.kubeconfig" POD_NAME="operator-$n" RUST_LOG=info NO_COLOR=1 \
        "$RUNNEL_OPERATOR" run --http-addr "127.0.0.1:$port" --log-format text \
        --lag-interval-seconds 5 --lease-name "$OPERATOR" --lease-namespace "$OPERATOR_NAMESPACE" \
        >"$DIR/operator-$n.log" 2>&1 &
    echo $! >"$DIR/operator-$n.pid"
}
lease_holder() {
    k -n "$OPERATOR_NAMESPACE" get lease "$OPERATOR" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null
}
holds_lease() { [ "$(lease_holder)" = "$1" ]; }
start_operator 1
check "operator-1 takes the Lease $OPERATOR_NAMESPACE/$OPERATOR" eventually "$TIMEOUT" holds_lease operator-1

section "a Cluster becomes its StatefulSet, Services, ConfigMap and PodDisruptionBudget"
# owned_by_demo OBJECT: OBJECT exists with a controller owner reference to
# Cluster demo (with blockOwnerDeletion, as the garbage collector's
# foreground deletion needs).
owned_by_demo() {
    local uid owner
    uid="$(k -n "$NAMESPACE" get rnc demo -o jsonpath='{.metadata.uid}')"
    owner="$(k -n "$NAMESPACE" get "$1" -o jsonpath='{range .metadata.ownerReferences[*]}{.kind}/{.name}/{.uid}/{.controller}/{.blockOwnerDeletion}{end}')" || return 1
    [ "$owner" = "Cluster/demo/$uid/true/true" ] || { echo "$1 owner: '$owner'"; return 1; }
}
OWNED=(statefulset/demo service/demo-brokers service/demo-bootstrap configmap/demo-config poddisruptionbudget/demo)
for object in "${OWNED[@]}"; do
    check "$object exists, owned by Cluster/demo" eventually "$TIMEOUT" owned_by_demo "$object"
done
sts_pod() {
    k -n "$NAMESPACE" get pod demo-0 -o jsonpath='{.metadata.ownerReferences[0].kind}' | grep -qx StatefulSet &&
        k -n "$NAMESPACE" get pvc data-demo-0 >/dev/null
}
check "the StatefulSet controller makes pod demo-0 and its claim data-demo-0" eventually "$TIMEOUT" sts_pod
cluster_status() {
    local bootstrap
    bootstrap="$(k -n "$NAMESPACE" get rnc demo -o jsonpath='{.status.bootstrap}')"
    [ "$bootstrap" = "demo-bootstrap.$NAMESPACE.svc:9092" ] || { echo "status.bootstrap '$bootstrap'"; return 1; }
    k -n "$NAMESPACE" get rnc demo -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx False
}
check "the Cluster's status: bootstrap address, Ready False (no kubelet runs the pod)" \
    eventually "$TIMEOUT" cluster_status
applied_event() {
    k -n "$NAMESPACE" get events \
        --field-selector involvedObject.name=demo,involvedObject.kind=Cluster,reason=Applied -o name | grep -q .
}
check "the operator records an Applied event on the Cluster" eventually "$TIMEOUT" applied_event
topic_finalizer() {
    k -n "$NAMESPACE" get rnt orders -o jsonpath='{.metadata.finalizers}' | grep -q 'runnel.dev/topic' &&
        k -n "$NAMESPACE" get rnt orders -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx False
}
check "the Topic gets its finalizer and Ready False (no broker answers)" eventually "$TIMEOUT" topic_finalizer
check "the ConsumerGroup patch of e2e/kind/run.sh passes the schema" \
    k -n "$NAMESPACE" patch rncg orders-processor --type merge -p \
    '{"spec":{"lagPolicy":{"thresholdMessages":1,"forSeconds":0},"partitionScaling":{"maxPartitions":8,"step":2,"cooldownSeconds":0}}}'
check "a merge patch setting brokers to 0 is refused by the schema" \
    refused_patch rnc/demo '{"spec":{"brokers":0}}' 'spec.brokers'
scaled_to_2() {
    [ "$(k -n "$NAMESPACE" get statefulset demo -o jsonpath='{.spec.replicas}')" = 2 ]
}
check "brokers 1 -> 2 on the Cluster: the operator applies replicas 2 to the StatefulSet" \
    patch_then "$TIMEOUT" rnc/demo '{"spec":{"brokers":2}}' scaled_to_2
spec_refused() {
    k -n "$NAMESPACE" get rnc demo \
        -o jsonpath='{.status.conditions[?(@.type=="Degraded")].reason}' | grep -qx SpecRefused
}
check "storage 10Gi -> 20Gi: the StatefulSet refuses it (immutable claims), the Cluster says Degraded SpecRefused" \
    patch_then "$TIMEOUT" rnc/demo '{"spec":{"storage":{"size":"20Gi"}}}' spec_refused
spec_taken() {
    k -n "$NAMESPACE" get rnc demo \
        -o jsonpath='{.status.conditions[?(@.type=="Degraded")].reason}' | grep -qvx SpecRefused
}
check "storage back to 10Gi: SpecRefused clears" \
    patch_then "$TIMEOUT" rnc/demo '{"spec":{"storage":{"size":"10Gi"}}}' spec_taken
# no_forbidden LOG: the operator's LOG has no RBAC refusal.
no_forbidden() {
    ! grep -iE 'forbidden|\b403\b[^.:]' "$1"
}
check "the operator's log has no RBAC refusal (403 Forbidden)" no_forbidden "$DIR/operator-1.log"

section "a second operator waits on the Lease"
start_operator 2
standby() {
    running "$DIR/operator-2.pid" && holds_lease operator-1 &&
        ! grep -q 'leading: reconciling' "$DIR/operator-2.log" &&
        grep -q 'runnel-operator started' "$DIR/operator-2.log"
}
check "operator-2 starts and stands by while operator-1 holds the Lease" eventually "$TIMEOUT" standby
# Stays so: a few renewals of operator-1 (every 5s) later, still operator-1.
lease_renewed() {
    local before
    before="$(k -n "$OPERATOR_NAMESPACE" get lease "$OPERATOR" -o jsonpath='{.spec.renewTime}')"
    eventually 20 renewed_since "$before" || return 1
    standby
}
renewed_since() {
    [ "$(k -n "$OPERATOR_NAMESPACE" get lease "$OPERATOR" -o jsonpath='{.spec.renewTime}')" != "$1" ]
}
check "operator-1 renews the Lease and operator-2 still stands by" lease_renewed
stop_pid_file "$DIR/operator-1.pid" 20
takes_over() {
    holds_lease operator-2 && grep -q 'leading: reconciling' "$DIR/operator-2.log"
}
check "operator-1 stops (SIGTERM, gives the Lease up): operator-2 takes over" eventually "$TIMEOUT" takes_over

section "deleting the Cluster (foreground): the garbage collector removes what it owned first"
# Foreground: the Cluster goes only after the objects whose owner
# references block its deletion (blockOwnerDeletion) are gone.
check "kubectl delete --cascade=foreground rnc demo returns once the Cluster is gone" \
    k -n "$NAMESPACE" delete rnc demo --cascade=foreground --timeout="${TIMEOUT}s"
# gone OBJECT...: none of them exists.
gone() {
    local object
    for object in "$@"; do
        if k -n "$NAMESPACE" get "$object" >/dev/null 2>&1; then
            echo "$object still there"
            return 1
        fi
    done
}
check "StatefulSet, Services, ConfigMap and PDB were deleted before the Cluster" gone "${OWNED[@]}"
check "pod demo-0 is garbage-collected" eventually "$TIMEOUT" gone pod/demo-0
check "the claim data-demo-0 stays (the StatefulSet's retention policy: Retain)" \
    k -n "$NAMESPACE" get pvc data-demo-0
check "kubectl delete rnt orders" k -n "$NAMESPACE" delete rnt orders --wait=false
topic_gone() { ! k -n "$NAMESPACE" get rnt orders >/dev/null 2>&1; }
check "the Topic's finalizer clears with its Cluster gone, and the Topic goes" eventually "$TIMEOUT" topic_gone
check "operator-2's log has no RBAC refusal (403 Forbidden)" no_forbidden "$DIR/operator-2.log"

section "a release watching one namespace (watchNamespace: a Role, not a ClusterRole)"
SCOPED=scoped
SCOPED_OPERATOR="$SCOPED-operator"
SCOPED_RELEASE_NAMESPACE=runnel-scoped
SCOPED_NAMESPACE=runnel-e2e-scoped
k create namespace "$SCOPED_NAMESPACE" >/dev/null
check "helm install with watchNamespace=$SCOPED_NAMESPACE" \
    helm install "$SCOPED" charts/runnel --namespace "$SCOPED_RELEASE_NAMESPACE" --create-namespace \
    --set watchNamespace="$SCOPED_NAMESPACE" --set grafanaDashboard.enabled=false
check "its rules are a Role in $SCOPED_NAMESPACE (no ClusterRole)" bash -c \
    "kubectl -n $SCOPED_NAMESPACE get role/$SCOPED_OPERATOR rolebinding/$SCOPED_OPERATOR >/dev/null &&
     ! kubectl get clusterrole/$SCOPED_OPERATOR >/dev/null 2>&1"
SCOPED_TOKEN="$(k -n "$SCOPED_RELEASE_NAMESPACE" create token "$SCOPED_OPERATOR" --duration=1h)"
kubeconfig_for "$DIR/scoped.kubeconfig" "$SCOPED_TOKEN"
scoped_cannot_elsewhere() {
    [ "$(KUBECONFIG="$DIR/scoped.kubeconfig" kubectl auth can-i list clusters.runnel.dev -n "$NAMESPACE" 2>/dev/null || true)" = no ]
}
check "its token may not list Clusters outside $SCOPED_NAMESPACE" scoped_cannot_elsewhere
k -n "$SCOPED_NAMESPACE" apply -f examples/cluster.yaml >/dev/null
port="$(python3 scripts/free_port.py 20000 29999)"
KUBECONFIG="$DIR/scoped.kubeconfig" POD_NAME=scoped-1 RUST_LOG=info NO_COLOR=1 \
    "$RUNNEL_OPERATOR" run --http-addr "127.0.0.1:$port" --log-format text --namespace "$SCOPED_NAMESPACE" \
    --lease-name "$SCOPED_OPERATOR" --lease-namespace "$SCOPED_RELEASE_NAMESPACE" \
    >"$DIR/operator-scoped.log" 2>&1 &
echo $! >"$DIR/operator-scoped.pid"
scoped_owned() {
    local owner
    owner="$(k -n "$SCOPED_NAMESPACE" get statefulset demo -o jsonpath='{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}')" || return 1
    [ "$owner" = Cluster/demo ] &&
        k -n "$SCOPED_NAMESPACE" get rnc demo -o jsonpath='{.status.bootstrap}' | grep -q "demo-bootstrap.$SCOPED_NAMESPACE.svc"
}
check "the namespaced operator makes the Cluster's StatefulSet and status there" eventually "$TIMEOUT" scoped_owned
check "the namespaced operator's log has no RBAC refusal (403 Forbidden)" no_forbidden "$DIR/operator-scoped.log"
stop_pid_file "$DIR/operator-scoped.pid" 20

section "the pod runner (in place of kube-scheduler and kubelet): brokers that run"
# The scoped release's Cluster goes first, so that only this section's
# brokers run (its pod is unscheduled: it goes at once).
check "the scoped Cluster is deleted (foreground), its pod with it" \
    k -n "$SCOPED_NAMESPACE" delete rnc demo --cascade=foreground --timeout="${TIMEOUT}s"
# The operator runs as a local process here: its Deployments' pods would
# read their token from /var/run/secrets, which a local process cannot.
check "the chart's operator Deployments scale to 0 replicas" bash -c \
    "kubectl -n $OPERATOR_NAMESPACE scale deployment/$OPERATOR --replicas=0 &&
     kubectl -n $SCOPED_RELEASE_NAMESPACE scale deployment/$SCOPED_OPERATOR --replicas=0"
PODS_NAMESPACE=runnel-e2e-pods
kp() { kubectl -n "$PODS_NAMESPACE" "$@"; }
"$PODRUNNER" -state-dir "$DIR/podrunner" -runnel "$RUNNEL_BROKER" -node-name "$NODE" \
    -log-file "$DIR/podrunner.log" >"$DIR/podrunner.out" 2>&1 &
echo $! >"$DIR/podrunner.pid"
node_ready() {
    k get node "$NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True
}
check "the runner registers Node $NODE, Ready" eventually "$TIMEOUT" node_ready
k create namespace "$PODS_NAMESPACE" >/dev/null
check "kubectl apply -f examples/cluster.yaml in $PODS_NAMESPACE" kp apply -f examples/cluster.yaml
# pod_field POD JSONPATH: a field of POD.
pod_field() { kp get pod "$1" -o jsonpath="$2" 2>/dev/null; }
# runs_serve POD: POD is bound to the runner's node, Running at a loopback
# address of its own, and its container is a `runnel serve` process.
runs_serve() {
    local ip pid
    [ "$(pod_field "$1" '{.spec.nodeName}')" = "$NODE" ] || { echo "not bound to $NODE"; return 1; }
    [ "$(pod_field "$1" '{.status.phase}')" = Running ] || { echo "phase $(pod_field "$1" '{.status.phase}')"; return 1; }
    ip="$(pod_field "$1" '{.status.podIP}')"
    [[ "$ip" =~ ^127\.0\.0\.[0-9]+$ && "$ip" != 127.0.0.1 ]] || { echo "podIP '$ip'"; return 1; }
    pid="$(pod_field "$1" '{.status.containerStatuses[0].containerID}')"
    pid="${pid#podrunner://}"
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "runnel serve --config $DIR/podrunner/pods/$PODS_NAMESPACE/$1/volumes/config/server.properties" ||
        { echo "pid '$pid' is not runnel serve"; return 1; }
}
check "pod demo-0 is bound to $NODE and runs runnel serve at its own 127.0.0.X" \
    eventually "$TIMEOUT" runs_serve demo-0
check "demo-0 becomes Ready (its readiness probe: GET /readyz on its address)" \
    kp wait pod/demo-0 --for=condition=Ready --timeout="${TIMEOUT}s"
cluster_ready() {
    kp get rnc demo -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}/{.status.readyBrokers}' | grep -qx True/1
}
check "the Cluster's status says Ready True, 1 broker ready" eventually "$TIMEOUT" cluster_ready
BOOTSTRAP="$(kp get rnc demo -o jsonpath='{.status.bootstrap}')"
DEMO0_IP="$(pod_field demo-0 '{.status.podIP}')"
# resolves NAME IP: NAME resolves to IP (/etc/hosts, written by the runner).
resolves() {
    local got
    got="$(getent hosts "$1" | awk '{print $1}')"
    [ "$got" = "$2" ] || { echo "$1 resolves to '$got', not $2"; return 1; }
}
dns_names() {
    resolves "demo-0.demo-brokers.$PODS_NAMESPACE.svc" "$DEMO0_IP" &&
        resolves "demo-0.demo-brokers.$PODS_NAMESPACE.svc.cluster.local" "$DEMO0_IP" &&
        resolves "${BOOTSTRAP%:*}" "$DEMO0_IP" &&
        resolves "demo-bootstrap.$PODS_NAMESPACE.svc.cluster.local" "$DEMO0_IP"
}
check "the pod's and the Services' DNS names resolve to its address ($BOOTSTRAP)" eventually "$TIMEOUT" dns_names
check "kubectl apply -f examples/topic.yaml -f examples/consumer-group.yaml" \
    kp apply -f examples/topic.yaml -f examples/consumer-group.yaml
topic_ready() {
    kp get rnt orders -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True
}
check "the Topic becomes Ready True" eventually "$TIMEOUT" topic_ready
# on_broker TOPIC PARTITIONS: kcat -L through the bootstrap address lists
# TOPIC with PARTITIONS partitions.
on_broker() {
    local out
    out="$(kcat -L -b "$BOOTSTRAP" -t "$1" -m 10 2>&1)" || { echo "$out"; return 1; }
    grep -q "topic \"$1\" with $2 partitions" <<<"$out" || { echo "$out"; return 1; }
}
check "kcat -L -b $BOOTSTRAP lists orders with its 6 partitions" eventually "$TIMEOUT" on_broker orders 6
levels_on_broker() {
    on_broker orders_30s 6 && on_broker orders_1h 6 && on_broker orders_delayed 6
}
check "its delayedDelivery levels orders_30s, orders_1h and the entry topic orders_delayed are on the broker" \
    eventually "$TIMEOUT" levels_on_broker
produced_consumed() {
    printf 'one\ntwo\nthree\n' | kcat -P -b "$BOOTSTRAP" -t orders -p 0 || return 1
    local got
    got="$(kcat -C -b "$BOOTSTRAP" -t orders -p 0 -o beginning -c 3 -e -q -m 20)" || return 1
    [ "$got" = "$(printf 'one\ntwo\nthree')" ] || { echo "consumed: '$got'"; return 1; }
}
check "kcat produces to orders and consumes the records back through $BOOTSTRAP" produced_consumed
grown_to_8() {
    on_broker orders 8 &&
        [ "$(kp get rnt orders -o jsonpath='{.status.partitions}')" = 8 ]
}
# Nothing committed: the group's lag is the 3 records, above 1.
check "a lagging ConsumerGroup (threshold 1, step 2, max 8): orders grows 6 -> 8 on the broker" \
    patch_then_in "$PODS_NAMESPACE" "$TIMEOUT" rncg/orders-processor \
    '{"spec":{"lagPolicy":{"thresholdMessages":1,"forSeconds":0},"partitionScaling":{"maxPartitions":8,"step":2,"cooldownSeconds":0}}}' \
    grown_to_8
# Delayed delivery through the Topic's entry topic, with kcat (librdkafka):
# the record is due a second after the broker takes it, and arrives on
# orders in a committed move, with the headers naming its source and time.
check "kcat produces to orders_delayed with the header runnel-delay-ms=1000" \
    bash -c "printf 'later\n' | kcat -P -b '$BOOTSTRAP' -t orders_delayed -p 0 -H runnel-delay-ms=1000"
delayed_delivered() {
    local got
    got="$(kcat -C -b "$BOOTSTRAP" -t orders -p 0 -o beginning -e -q -m 20 \
        -X isolation.level=read_committed -f '%s %h\n' 2>&1)" || { echo "$got"; return 1; }
    grep -qE '^later .*runnel-delivery-source=orders_delayed-0@0.*runnel-delivery-due-ms=' <<<"$got" ||
        { echo "$got"; return 1; }
}
check "the delayed record reaches orders, read_committed, with runnel-delivery-source and -due-ms" \
    eventually "$TIMEOUT" delayed_delivered
# A one-time offset reset: the group never committed, so its lag is every
# record; reset to latest, it is 0.
reset_applied() {
    [ "$(kp get rncg orders-processor -o jsonpath='{.status.appliedOffsetReset}')" = r1 ] &&
        [ "$(kp get rncg orders-processor -o jsonpath='{.status.lagTotal}')" = 0 ]
}
check "offsetReset {id: r1, to: latest} on the ConsumerGroup: applied once (status), its lag drops to 0" \
    patch_then_in "$PODS_NAMESPACE" "$TIMEOUT" rncg/orders-processor \
    '{"spec":{"offsetReset":{"id":"r1","to":"latest"}}}' reset_applied
# A backlog-forwarding surge, end to end: the group's own consumer (a
# Deployment running `runnel consume` of another topic, so that the group
# has a member and the backlog stays) is scaled to 0, the operator's
# forwarder Deployment runs `runnel forward` as a pod, the overflow's
# consumers (a Deployment running `runnel consume --isolation-level
# read_committed`) work the overflow off, and the group is handed back.
kp apply -f - >/dev/null <<EOF
apiVersion: runnel.dev/v1alpha1
kind: Topic
metadata: {name: surge-src}
spec: {cluster: demo, partitions: 2}
---
apiVersion: runnel.dev/v1alpha1
kind: Topic
metadata: {name: surge-other}
spec: {cluster: demo, partitions: 1}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: surge-originals}
spec:
  replicas: 1
  selector: {matchLabels: {app: surge-originals}}
  template:
    metadata: {labels: {app: surge-originals}}
    spec:
      containers:
        - name: consume
          image: ghcr.io/runnel-dev/runnel:0.1.0
          args: [consume, --bootstrap-server, "$BOOTSTRAP", --topic, surge-other, --group, surge-group,
                 --consumer-property, session.timeout.ms=6000]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: surge-overflow-consumers}
spec:
  replicas: 0
  selector: {matchLabels: {app: surge-overflow-consumers}}
  template:
    metadata: {labels: {app: surge-overflow-consumers}}
    spec:
      containers:
        - name: consume
          image: ghcr.io/runnel-dev/runnel:0.1.0
          args: [consume, --bootstrap-server, "$BOOTSTRAP", --topic, surge-src.overflow,
                 --group, surge-overflow, --from-beginning, --isolation-level, read_committed,
                 --consumer-property, session.timeout.ms=6000]
EOF
surge_ready() {
    on_broker surge-src 2 && on_broker surge-other 1 &&
        [ "$(kp get deployment surge-originals -o jsonpath='{.status.readyReplicas}')" = 1 ]
}
check "a source topic, the group's own consumer (a Deployment, Ready) and the overflow consumers (0)" \
    eventually "$TIMEOUT" surge_ready
surge_backlog() {
    seq 1 2000 | awk '{print "k" ($1 % 50) ":" $1}' | kcat -P -b "$BOOTSTRAP" -t surge-src -K :
}
check "a backlog of 2000 keyed records on surge-src" surge_backlog
kp apply -f - >/dev/null <<'EOF'
apiVersion: runnel.dev/v1alpha1
kind: ConsumerGroup
metadata: {name: surge}
spec:
  cluster: demo
  groupId: surge-group
  topics: [surge-src]
  backlogForwarding:
    overflow: {name: surge-src.overflow, partitions: 6, group: surge-overflow}
    start: {lagAbove: 100, forSeconds: 0}
    stop: {lagBelow: 1}
    originals: {scaleTargetRef: {kind: Deployment, name: surge-originals}}
    overflowConsumers: {scaleTargetRef: {kind: Deployment, name: surge-overflow-consumers}, replicas: 2}
EOF
# surge_events REASON...: the ConsumerGroup surge has an Event of each REASON.
surge_events() {
    local events reason
    events="$(kp get events --field-selector involvedObject.name=surge -o jsonpath='{.items[*].reason}')"
    for reason in "$@"; do
        grep -qw "$reason" <<<"$events" || { echo "no $reason in: $events"; return 1; }
    done
}
check "the surge starts: SurgeStarted, the originals scaled to 0" \
    eventually "$TIMEOUT" surge_events SurgeStarted
check "once they left the group: ForwardingStarted (the forwarders' Deployment applied)" \
    eventually "$TIMEOUT" surge_events ForwardingStarted
surge_ended() {
    surge_events ForwardingStopped SurgeEnded &&
        [ "$(kp get rncg surge -o jsonpath='{.status.surge.phase}')" = Normal ] &&
        [ "$(kp get deployment surge-originals -o jsonpath='{.spec.replicas}')" = 1 ] &&
        [ "$(kp get deployment surge-overflow-consumers -o jsonpath='{.spec.replicas}')" = 0 ] &&
        ! kp get deployment surge-forwarder >/dev/null 2>&1
}
check "the backlog forwarded, the overflow drained: SurgeEnded, Normal, the originals back, overflow consumers 0" \
    eventually 180 surge_ended
overflow_exactly_once() {
    local all distinct
    all="$(kcat -C -b "$BOOTSTRAP" -t surge-src.overflow -o beginning -e -q -m 20 \
        -X isolation.level=read_committed -f '%s\n')" || return 1
    distinct="$(sort -n <<<"$all" | uniq | wc -l)"
    [ "$distinct" = 2000 ] && [ "$(wc -l <<<"$all")" = 2000 ] ||
        { echo "records in the overflow: $(wc -l <<<"$all"), distinct: $distinct"; return 1; }
}
check "the overflow holds each of the 2000 records once (read_committed)" overflow_exactly_once
forwarder_ran() {
    grep -qE "container $PODS_NAMESPACE/surge-forwarder-[a-z0-9-]+/forward: pid [0-9]+ exited with 0" \
        "$DIR/podrunner.log"
}
check "the runnel forward pod ran and exited 0 when its Deployment was deleted (SIGTERM)" \
    eventually "$TIMEOUT" forwarder_ran
check "kubectl delete rncg surge, the surge's Deployments and Topics" \
    kp delete rncg/surge deployment/surge-originals deployment/surge-overflow-consumers \
    rnt/surge-src rnt/surge-other --timeout="${TIMEOUT}s"
restarted() {
    [ "$(pod_field demo-0 '{.metadata.uid}')" != "$1" ] &&
        [ "$(pod_field demo-0 '{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
old_uid="$(pod_field demo-0 '{.metadata.uid}')"
check "kubectl delete pod demo-0: the runner stops it (SIGTERM) and deletes it" \
    kp delete pod demo-0 --timeout="${TIMEOUT}s"
sigterm_shutdown() {
    grep 'shutting down' "$DIR/podrunner/pods/$PODS_NAMESPACE/demo-0/runnel.log" | grep -q SIGTERM &&
        grep -qE "demo-0/runnel: pid [0-9]+ exited with 0" "$DIR/podrunner.log"
}
check "the broker shut down on SIGTERM and exited 0" sigterm_shutdown
check "the StatefulSet's new demo-0 becomes Ready" eventually "$TIMEOUT" restarted "$old_uid"
data_survived() {
    on_broker orders 8 &&
        kcat -C -b "$BOOTSTRAP" -t orders -p 0 -o beginning -c 3 -e -q -m 20 | grep -qx three
}
check "its data survived in the claim's directory: orders still has 8 partitions and its records" \
    eventually "$TIMEOUT" data_survived
check "kubectl delete rnt orders returns once the finalizer deleted it" \
    kp delete rnt orders --timeout="${TIMEOUT}s"
not_on_broker() {
    local out
    out="$(kcat -L -b "$BOOTSTRAP" -m 10 2>&1)" || { echo "$out"; return 1; }
    ! grep -qE 'topic "orders(_30s|_1h|_delayed)?"' <<<"$out" || { echo "$out"; return 1; }
}
check "orders and its levels are gone from the broker" eventually "$TIMEOUT" not_on_broker
rolled() {
    [ "$(pod_field demo-0 '{.metadata.uid}')" != "$1" ] &&
        [ "$(pod_field demo-0 '{.status.conditions[?(@.type=="Ready")].status}')" = True ] &&
        grep -qx 'log.retention.hours=24' "$DIR/podrunner/pods/$PODS_NAMESPACE/demo-0/volumes/config/server.properties"
}
old_uid="$(pod_field demo-0 '{.metadata.uid}')"
check "spec.config log.retention.hours 168 -> 24 rolls the broker (StatefulSet RollingUpdate): the new demo-0 reads it, Ready" \
    patch_then_in "$PODS_NAMESPACE" "$TIMEOUT" rnc/demo '{"spec":{"config":{"log.retention.hours":"24"}}}' \
    rolled "$old_uid"
check "the Cluster says Ready again" eventually "$TIMEOUT" cluster_ready
plain_log() {
    ! grep -q $'\e\[' "$DIR/podrunner/pods/$PODS_NAMESPACE/demo-0/runnel.log" ||
        { echo "terminal escape codes in the broker's log (what kubectl logs would show)"; return 1; }
}
check "the broker's log is plain text (no terminal colours outside a terminal)" plain_log
# A bare pod (no StatefulSet): an emptyDir for its data, a liveness probe
# that fails (no such path): the runner restarts it.
kp apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: unlively}
spec:
  containers:
    - name: runnel
      image: ghcr.io/runnel-dev/runnel:0.1.0
      args: [serve, --listeners, "PLAINTEXT://0.0.0.0:9092", --log-dirs, /data]
      env: [{name: RUNNEL_METRICS_LISTEN, value: "0.0.0.0:9308"}]
      volumeMounts: [{name: data, mountPath: /data}]
      livenessProbe:
        httpGet: {path: /no-such-path, port: 9308}
        periodSeconds: 1
        failureThreshold: 2
  volumes: [{name: data, emptyDir: {}}]
  terminationGracePeriodSeconds: 5
EOF
restarted_by_liveness() {
    [ "$(pod_field unlively '{.status.containerStatuses[0].restartCount}')" -ge 1 ] 2>/dev/null &&
        [ -n "$(pod_field unlively '{.status.containerStatuses[0].lastState.terminated.finishedAt}')" ] &&
        grep -q 'unlively/runnel: liveness probe failed' "$DIR/podrunner.log"
}
check "a pod whose liveness probe fails is stopped and restarted (restartCount, lastState)" \
    eventually "$TIMEOUT" restarted_by_liveness
check "kubectl delete pod unlively" kp delete pod unlively --timeout="${TIMEOUT}s"
check "operator-2's log has no RBAC refusal (403 Forbidden)" no_forbidden "$DIR/operator-2.log"

section "summary"
if [ "$FAILED" -gt 0 ]; then
    for name in "${FAILED_NAMES[@]}"; do echo "failed: $name"; done
    for log in operator-1 operator-2 operator-scoped kube-controller-manager podrunner; do
        echo "--- tail of $log.log"
        tail -n 30 "$DIR/$log.log" 2>/dev/null || true
    done
fi
echo "run.sh: $((SECONDS - STARTED)) s"
echo "local control plane flows: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
