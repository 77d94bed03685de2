#!/usr/bin/env bash
# Installs what the tests need (once; later runs skip what is present) and
# runs every check CI runs: formatting, clippy, and all tests.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages the tests use: kcat (package kafkacat), a real Kafka
# client; nft (nftables), which cuts nodes off in the fault harness.
DEBIAN_PACKAGES=(kafkacat nftables)
# Python packages: confluent-kafka (librdkafka's binding) and kafka-python
# (a client with its own protocol code).
PYTHON_PACKAGES=(confluent-kafka kafka-python)

# shellcheck source=scripts/as_root.sh
source scripts/as_root.sh

if { ! command -v kcat && ! command -v kafkacat; } >/dev/null 2>&1 || ! command -v nft >/dev/null 2>&1; then
    echo "test.sh: installing Debian packages: ${DEBIAN_PACKAGES[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${DEBIAN_PACKAGES[@]}"
fi

if ! python3 -c 'import confluent_kafka, kafka' >/dev/null 2>&1; then
    echo "test.sh: installing Python packages: ${PYTHON_PACKAGES[*]}"
    python3 -m pip install -q "${PYTHON_PACKAGES[@]}"
fi

# promtool (from Debian's prometheus package, unpacked, not installed)
# parses the dashboard's PromQL in tests/dashboard.rs.
PROMTOOL_DIR="${PROMTOOL_DIR:-$HOME/.cache/runnel-test-tools/prometheus}"
if [ ! -x "$PROMTOOL_DIR/usr/bin/promtool" ]; then
    echo "test.sh: fetching promtool (Debian package prometheus)"
    mkdir -p "$PROMTOOL_DIR"
    (cd "$PROMTOOL_DIR" && apt-get download prometheus >/dev/null 2>&1 \
        || { as_root apt-get update -qq && apt-get download prometheus; })
    dpkg -x "$PROMTOOL_DIR"/prometheus_*.deb "$PROMTOOL_DIR"
fi
export PROMTOOL="$PROMTOOL_DIR/usr/bin/promtool"

# Apache Kafka, the reference broker (scripts/kafka.sh: Maven resolves it
# into ~/.cache/runnel-test-tools once): its tools read our files in
# tests/kafka_files.rs, and the Java and Go client tests run against it too.
if ! command -v mvn >/dev/null 2>&1; then
    echo "test.sh: installing Debian package maven"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven
fi
command -v java >/dev/null 2>&1 || { echo "test.sh: java not found: Kafka and its Java client need Java 17" >&2; exit 1; }
command -v go >/dev/null 2>&1 || { echo "test.sh: go not found: the franz-go client tests need Go" >&2; exit 1; }
bash scripts/kafka.sh install

echo "test.sh: cargo fmt --check"
cargo fmt --all -- --check
echo "test.sh: import cycles between each crate's top-level modules"
python3 scripts/check_module_cycles.py --self-test
python3 scripts/check_module_cycles.py --allow scripts/module_cycles_allowed.txt \
    broker/*/src client/src operator/src
echo "test.sh: cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --workspace --all-targets --features runnel-broker/fault-injection -- -D warnings
bash scripts/check-chart.sh  # chart, CRDs, examples, shell scripts (offline)
echo "test.sh: cargo test"
# fault-injection: the test-only switches of broker/server/src/fault.rs
# (tests/idempotence.rs drops Produce responses with them).
cargo test --workspace --features runnel-broker/fault-injection
# The same client tests against the runnel binary cargo test just built and
# against Apache Kafka (the oracle: a test failing on both is a wrong test).
echo "test.sh: Kafka's Java client (e2e/java) against Runnel and Kafka"
bash e2e/java/run.sh both
echo "test.sh: franz-go (e2e/go) against Runnel and Kafka"
bash e2e/go/run.sh both
# franz-go against three Runnel nodes as one cluster
# (scripts/runnel-cluster.sh): groups, transactions and admin requests
# that reach brokers other than the coordinator or controller. (The Java
# suite passes there too, `e2e/java/run.sh runnel-cluster`, but some of
# its admin tests read on one broker what they changed through another,
# and a node follows a moment later: it stays out of CI until they wait.)
echo "test.sh: franz-go against three Runnel nodes"
bash e2e/go/run.sh runnel-cluster
# Replication under faults (e2e/faults): three nodes in network
# namespaces, librdkafka producers and consumers, 20 rounds of kill -9,
# pauses, cut-off leaders and controllers, packet loss and wiped data
# dirs; the checker counts lost, duplicated, reordered and truncated
# records (200 rounds by hand: see its README).
echo "test.sh: the fault harness's checker and 20 fault rounds on three nodes (e2e/faults)"
(cd e2e/faults && python3 -m unittest -q test_checker)
RUNNEL_BIN="$(pwd)/target/debug/runnel" bash e2e/faults/run.sh --rounds 20 --require-rf
# A real Kubernetes control plane on loopback (e2e/local: etcd,
# kube-apiserver and kube-controller-manager built once into
# ~/.cache/runnel-test-tools; e2e/local/podrunner in place of scheduler
# and kubelet, as root): the chart by helm, the CRDs' schemas, its RBAC,
# the operator, the garbage collector, leader election, then brokers that
# run (kcat through the Cluster's bootstrap address). The operator and
# broker binaries are the ones cargo test built.
echo "test.sh: the chart, the operator and brokers on a local control plane (e2e/local)"
RUNNEL_OPERATOR="$(pwd)/target/debug/runnel-operator" RUNNEL_BROKER="$(pwd)/target/debug/runnel" \
    bash e2e/local/run.sh
echo "test.sh: all checks passed"
