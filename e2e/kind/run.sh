#!/usr/bin/env bash
# End to end on a real Kubernetes: a kind cluster, the images built from
# this tree, the Helm chart, the examples, and real records through the
# bootstrap Service. See e2e/kind/README.md.
#
#   bash e2e/kind/run.sh                  # create, test, delete the cluster
#   KEEP_CLUSTER=1 bash e2e/kind/run.sh   # keep it afterwards to look around
#
# Environment:
#   KIND_CLUSTER_NAME   kind cluster (default runnel-e2e); an existing one is
#                       reused and never deleted
#   KEEP_CLUSTER=1      keep a cluster this script created
#   SKIP_BUILD=1        do not docker build (the images must exist)
#   E2E_MESSAGES        records produced and consumed (default 100)
#   E2E_BACKLOG         records produced without a consumer (default 40)
#   E2E_SCALING=0       skip the partition scaling step
#   E2E_TIMEOUT         seconds for each wait (default 300)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

CLUSTER_NAME="${KIND_CLUSTER_NAME:-runnel-e2e}"
KEEP_CLUSTER="${KEEP_CLUSTER:-0}"
SKIP_BUILD="${SKIP_BUILD:-0}"
MESSAGES="${E2E_MESSAGES:-100}"
BACKLOG="${E2E_BACKLOG:-40}"
SCALING="${E2E_SCALING:-1}"
TIMEOUT="${E2E_TIMEOUT:-300}"
# The broker image; cluster-patch.json names it too.
RUNNEL_IMAGE="runnel:e2e"
OPERATOR_IMAGE_REPOSITORY="runnel-operator"
OPERATOR_IMAGE_TAG="e2e"
OPERATOR_NAMESPACE="runnel-system"
RELEASE="runnel"
# The chart names its objects <release>-operator.
OPERATOR="$RELEASE-operator"
NAMESPACE="runnel-e2e"
GROUP="orders-processor"
TOPIC="orders"
CONTEXT="kind-$CLUSTER_NAME"
CREATED_CLUSTER=0
STEP=0

step() {
    STEP=$((STEP + 1))
    echo
    echo "== e2e step $STEP: $*"
}

ok() {
    echo "ok: $*"
}

die() {
    echo "FAIL: $*" >&2
    exit 1
}

k() {
    kubectl --context "$CONTEXT" "$@"
}

# until_true SECONDS WHAT COMMAND...: polls COMMAND every 2s until it
# succeeds; fails after SECONDS.
until_true() {
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            die "timed out after ${seconds}s waiting for $what"
        fi
        sleep 2
    done
}

# run_pod NAME ARGS...: runs `runnel ARGS...` in a one-off pod, with this
# script's stdin as the pod's, and prints what it printed.
run_pod() {
    local name=$1
    shift
    k -n "$NAMESPACE" run "$name" --image="$RUNNEL_IMAGE" --image-pull-policy=Never \
        --restart=Never --rm -i --quiet --pod-running-timeout="${TIMEOUT}s" -- "$@"
}

dump_diagnostics() {
    echo
    echo "== diagnostics"
    k get rnc,rnt,rncg,statefulsets,pods,services,jobs -A -o wide || true
    k -n "$NAMESPACE" describe rnc demo || true
    k -n "$NAMESPACE" get rnt "$TOPIC" -o yaml || true
    k -n "$NAMESPACE" get rncg "$GROUP" -o yaml || true
    k -n "$NAMESPACE" get events --sort-by=.lastTimestamp || true
    k -n "$OPERATOR_NAMESPACE" logs "deployment/$OPERATOR" --tail=200 || true
    k -n "$NAMESPACE" logs demo-0 --tail=100 || true
}

cleanup() {
    local status=$?
    if [ "$status" -ne 0 ]; then
        dump_diagnostics
        echo "e2e: FAILED (exit status $status)"
    fi
    if [ "$CREATED_CLUSTER" = 1 ]; then
        if [ "$KEEP_CLUSTER" = 1 ]; then
            echo "e2e: keeping kind cluster $CLUSTER_NAME (kubectl --context $CONTEXT ...; kind delete cluster --name $CLUSTER_NAME)"
        else
            echo "e2e: deleting kind cluster $CLUSTER_NAME"
            kind delete cluster --name "$CLUSTER_NAME" || true
        fi
    fi
    exit "$status"
}
trap cleanup EXIT

step "prerequisites"
for tool in docker kind kubectl helm; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not on PATH (see e2e/kind/README.md)"
done
docker info >/dev/null 2>&1 || die "docker cannot reach its daemon"
ok "docker, kind, kubectl and helm found"

step "kind cluster $CLUSTER_NAME"
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
    ok "reusing the existing kind cluster $CLUSTER_NAME (it will be kept)"
else
    CREATED_CLUSTER=1
    kind create cluster --name "$CLUSTER_NAME" --wait "${TIMEOUT}s"
    ok "created kind cluster $CLUSTER_NAME"
fi
k cluster-info >/dev/null

step "images"
if [ "$SKIP_BUILD" = 1 ]; then
    ok "SKIP_BUILD=1: using the existing images $RUNNEL_IMAGE and $OPERATOR_IMAGE_REPOSITORY:$OPERATOR_IMAGE_TAG"
else
    docker build --target runnel -t "$RUNNEL_IMAGE" .
    docker build --target operator -t "$OPERATOR_IMAGE_REPOSITORY:$OPERATOR_IMAGE_TAG" .
    ok "built $RUNNEL_IMAGE and $OPERATOR_IMAGE_REPOSITORY:$OPERATOR_IMAGE_TAG"
fi
kind load docker-image --name "$CLUSTER_NAME" "$RUNNEL_IMAGE" "$OPERATOR_IMAGE_REPOSITORY:$OPERATOR_IMAGE_TAG"
ok "loaded both images into the kind nodes"

step "helm install the chart (CRDs, operator)"
helm --kube-context "$CONTEXT" upgrade --install "$RELEASE" charts/runnel \
    --namespace "$OPERATOR_NAMESPACE" --create-namespace \
    --set image.repository="$OPERATOR_IMAGE_REPOSITORY" \
    --set image.tag="$OPERATOR_IMAGE_TAG" \
    --set image.pullPolicy=Never \
    --set logFormat=text \
    --set logLevel='info\,runnel_operator=debug' \
    --set lagIntervalSeconds=5 \
    --wait --timeout "${TIMEOUT}s"
for crd in clusters.runnel.dev topics.runnel.dev consumergroups.runnel.dev; do
    k wait "crd/$crd" --for=condition=Established --timeout="${TIMEOUT}s" >/dev/null
done
ok "CRDs established"
k -n "$OPERATOR_NAMESPACE" rollout status "deployment/$OPERATOR" --timeout="${TIMEOUT}s"
k -n "$OPERATOR_NAMESPACE" wait pod -l app.kubernetes.io/name=runnel-operator \
    --for=condition=Ready --timeout="${TIMEOUT}s" >/dev/null
ok "operator Ready (its /readyz answers)"

step "apply examples/ (Cluster with 1 broker, 1Gi, image $RUNNEL_IMAGE)"
k create namespace "$NAMESPACE" --dry-run=client -o yaml | k apply -f - >/dev/null
# cluster-patch.json: one broker (no replication yet), a small volume for
# kind, the image loaded above (scripts/check-chart.sh checks the patched
# Cluster against the CRD offline). The Topic and ConsumerGroup are applied
# as they are.
k patch --local -f examples/cluster.yaml --type merge -o yaml \
    --patch-file e2e/kind/cluster-patch.json |
    k -n "$NAMESPACE" apply -f -
k -n "$NAMESPACE" apply -f examples/topic.yaml -f examples/consumer-group.yaml

step "the Cluster becomes Ready"
k -n "$NAMESPACE" wait rnc/demo --for=condition=Ready --timeout="${TIMEOUT}s"
k -n "$NAMESPACE" rollout status statefulset/demo --timeout="${TIMEOUT}s"
k -n "$NAMESPACE" get rnc demo
ready="$(k -n "$NAMESPACE" get rnc demo -o jsonpath='{.status.readyBrokers}')"
[ "$ready" = 1 ] || die "status.readyBrokers is '$ready', expected 1"
BOOTSTRAP="$(k -n "$NAMESPACE" get rnc demo -o jsonpath='{.status.bootstrap}')"
[ "$BOOTSTRAP" = "demo-bootstrap.$NAMESPACE.svc:9092" ] ||
    die "status.bootstrap is '$BOOTSTRAP', expected demo-bootstrap.$NAMESPACE.svc:9092"
ok "Ready with 1 broker; bootstrap $BOOTSTRAP"
for object in statefulset/demo service/demo-brokers service/demo-bootstrap configmap/demo-config poddisruptionbudget/demo; do
    owner="$(k -n "$NAMESPACE" get "$object" -o jsonpath='{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}' 2>/dev/null || true)"
    [ "$owner" = "Cluster/demo" ] || die "$object is missing or not owned by Cluster/demo (owner '$owner')"
done
ok "StatefulSet, Services, ConfigMap and PodDisruptionBudget exist, owned by Cluster/demo"

step "the Topic exists on the brokers"
k -n "$NAMESPACE" wait "rnt/$TOPIC" --for=condition=Ready --timeout="${TIMEOUT}s"
described="$(run_pod e2e-describe topics --bootstrap-server "$BOOTSTRAP" --describe --topic "$TOPIC" </dev/null)"
echo "$described"
grep -q "PartitionCount: 6" <<<"$described" || die "topic $TOPIC does not have 6 partitions on the brokers"
ok "topic $TOPIC has 6 partitions"

step "produce $MESSAGES records and consume them through $BOOTSTRAP"
seq 1 "$MESSAGES" | sed 's/^/order-/' |
    run_pod e2e-produce produce --bootstrap-server "$BOOTSTRAP" --topic "$TOPIC"
ok "produced order-1 .. order-$MESSAGES"
# The consumer runs as a Job in group $GROUP, the group the ConsumerGroup
# resource watches, and commits its offsets.
k -n "$NAMESPACE" delete job e2e-consume --ignore-not-found >/dev/null
k -n "$NAMESPACE" apply -f - <<EOF
apiVersion: batch/v1
kind: Job
metadata:
  name: e2e-consume
spec:
  backoffLimit: 0
  activeDeadlineSeconds: $TIMEOUT
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: consume
          image: $RUNNEL_IMAGE
          imagePullPolicy: Never
          args: [consume, --bootstrap-server, "$BOOTSTRAP", --topic, "$TOPIC", --group, "$GROUP",
                 --from-beginning, --max-messages, "$MESSAGES", --timeout-ms, "60000"]
EOF
job_done() {
    local succeeded failed
    succeeded="$(k -n "$NAMESPACE" get job e2e-consume -o jsonpath='{.status.succeeded}')"
    failed="$(k -n "$NAMESPACE" get job e2e-consume -o jsonpath='{.status.failed}')"
    [ "${failed:-0}" = 0 ] || die "the consumer Job failed: $(k -n "$NAMESPACE" logs job/e2e-consume --tail=20)"
    [ "${succeeded:-0}" = 1 ]
}
until_true "$TIMEOUT" "the consumer Job" job_done
consumed="$(k -n "$NAMESPACE" logs job/e2e-consume | grep '^order-' | sort -u)"
expected="$(seq 1 "$MESSAGES" | sed 's/^/order-/' | sort -u)"
[ "$consumed" = "$expected" ] ||
    die "the consumer got $(wc -l <<<"$consumed") distinct records, expected order-1 .. order-$MESSAGES"
ok "consumed exactly order-1 .. order-$MESSAGES in group $GROUP"

step "the ConsumerGroup reports no lag once the group has caught up"
caught_up() {
    local partitions total
    partitions="$(k -n "$NAMESPACE" get rncg "$GROUP" -o jsonpath='{.status.lag[*].partition}')"
    total="$(k -n "$NAMESPACE" get rncg "$GROUP" -o jsonpath='{.status.lagTotal}')"
    [ -n "$partitions" ] && [ "$total" = 0 ]
}
until_true "$TIMEOUT" "status.lag with lagTotal 0" caught_up
k -n "$NAMESPACE" get rncg "$GROUP"
ok "lag per partition in status, lagTotal 0"

step "produce $BACKLOG more records with no consumer: the ConsumerGroup shows lag $BACKLOG"
seq 1 "$BACKLOG" | sed 's/^/backlog-/' |
    run_pod e2e-produce-backlog produce --bootstrap-server "$BOOTSTRAP" --topic "$TOPIC"
lagging() {
    [ "$(k -n "$NAMESPACE" get rncg "$GROUP" -o jsonpath='{.status.lagTotal}')" = "$BACKLOG" ]
}
until_true "$TIMEOUT" "status.lagTotal = $BACKLOG" lagging
k -n "$NAMESPACE" get rncg "$GROUP"
echo "lag per partition: $(k -n "$NAMESPACE" get rncg "$GROUP" -o jsonpath='{range .status.lag[*]}{.topic}/{.partition}={.lag} {end}')"
ok "kubectl get rncg $GROUP shows lagTotal $BACKLOG"
metrics="$(k get --raw "/api/v1/namespaces/$OPERATOR_NAMESPACE/services/$OPERATOR:http/proxy/metrics")"
grep -E "^runnel_operator_consumergroup_lag\{[^}]*consumergroup=\"$GROUP\"" <<<"$metrics" | head -n 6
grep -qE "^runnel_operator_consumergroup_lag\{[^}]*consumergroup=\"$GROUP\"" <<<"$metrics" ||
    die "the operator's /metrics has no runnel_operator_consumergroup_lag for $GROUP"
ok "the operator's /metrics exports runnel_operator_consumergroup_lag for $GROUP"

if [ "$SCALING" = 1 ]; then
    step "lag above the policy's threshold adds partitions (6 -> 8, maxPartitions 8)"
    k -n "$NAMESPACE" patch rncg "$GROUP" --type merge -p \
        '{"spec":{"lagPolicy":{"thresholdMessages":1,"forSeconds":0},"partitionScaling":{"maxPartitions":8,"step":2,"cooldownSeconds":0}}}'
    scaled() {
        run_pod "e2e-describe-$SECONDS" topics --bootstrap-server "$BOOTSTRAP" --describe --topic "$TOPIC" \
            </dev/null | grep -q "PartitionCount: 8"
    }
    until_true "$TIMEOUT" "topic $TOPIC to have 8 partitions" scaled
    ok "topic $TOPIC grew to 8 partitions on the brokers (step 2, maxPartitions 8)"
    recorded() {
        [ "$(k -n "$NAMESPACE" get rnt "$TOPIC" -o jsonpath='{.status.scaledPartitions}')" = 8 ]
    }
    until_true "$TIMEOUT" "Topic $TOPIC status.scaledPartitions = 8" recorded
    ok "the Topic records status.scaledPartitions 8 (spec.partitions 6 is no shrink)"
fi

echo
echo "e2e: all steps passed"
