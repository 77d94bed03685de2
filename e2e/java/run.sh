#!/usr/bin/env bash
# Apache Kafka's Java client (kafka-clients, the version in pom.xml) against
# Runnel and against Apache Kafka itself, the reference: the same JUnit tests
# on each broker.
#
#   e2e/java/run.sh [runnel|kafka|both|runnel-cluster] [MAVEN ARG...]
#                                                     (default: both)
#
# runnel-cluster: three Runnel nodes (scripts/runnel-cluster.sh), the
# clients bootstrapped from node 1.
#
# Each broker is started on a free loopback port in 20000-20999 with the
# scripts in scripts/, in a fresh temporary directory, and stopped when its
# run ends, failed or not. One summary line per broker, e.g.
#   java client tests on runnel: 41 passed, 0 failed, 0 skipped (37 s)
# A failed run keeps its directory (the broker's log, Maven's output) and
# prints the failures and the tail of the broker's log. Exits non-zero if a
# test failed on either broker. Extra arguments go to Maven, e.g.
# -Dtest=GroupTest or -Dexcluded.groups= (to run the tagged known-bug tests).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
REPORTS="$HERE/target/surefire-reports"

die() { echo "run.sh: $*" >&2; exit 2; }

which="${1:-both}"
shift || true
case "$which" in
    runnel) brokers=(runnel) ;;
    kafka) brokers=(kafka) ;;
    both) brokers=(runnel kafka) ;;
    runnel-cluster) brokers=(runnel-cluster) ;;
    *) die "usage: e2e/java/run.sh [runnel|kafka|both|runnel-cluster] [MAVEN ARG...]" ;;
esac
command -v mvn >/dev/null 2>&1 || die "mvn not found (Maven 3 and a JDK 17 are needed)"
# The client is the version of the reference broker (scripts/kafka/pom.xml).
kafka_version="$("$ROOT/scripts/kafka.sh" version)"

# "passed failed skipped" from surefire's XML reports.
count_reports() {
    python3 - "$REPORTS" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
tests = failed = skipped = 0
for path in glob.glob(sys.argv[1] + "/TEST-*.xml"):
    suite = ET.parse(path).getroot()
    tests += int(suite.get("tests", 0))
    failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    skipped += int(suite.get("skipped", 0))
print(tests - failed - skipped, failed, skipped)
PY
}

# The failed tests' names and first lines, from the XML reports.
list_failures() {
    python3 - "$REPORTS" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
for path in sorted(glob.glob(sys.argv[1] + "/TEST-*.xml")):
    for case in ET.parse(path).getroot().iter("testcase"):
        for kind in ("failure", "error"):
            for f in case.findall(kind):
                message = (f.get("message") or f.get("type") or "").splitlines()
                print(f"  FAILED {case.get('classname')}.{case.get('name')}: {message[0] if message else ''}"[:400])
PY
}

# Indented, without colour escapes (Runnel's log and Maven's output have them).
quote() { sed -e $'s/\x1b\\[[0-9;]*m//g' -e 's/^/  | /'; }

current_kind=""
current_dir=""
stop_current() {
    if [ -n "$current_dir" ]; then
        "$ROOT/scripts/$current_kind.sh" stop "$current_dir" || true
        current_dir=""
    fi
}
trap stop_current EXIT
trap 'stop_current; exit 130' INT TERM

failed_any=0
run_on() {
    local kind="$1"
    shift
    local dir port log settings=()
    dir="$(mktemp -d "${TMPDIR:-/tmp}/runnel-java-e2e-$kind.XXXXXX")"
    port="$(python3 "$ROOT/scripts/free_port.py" 20000 20999)"
    log="$dir/$kind.log"
    # As scripts/kafka.sh configures Kafka: a new group's first rebalance is not delayed.
    [ "$kind" = kafka ] || settings=(group.initial.rebalance.delay.ms=0)
    local started=$SECONDS
    current_kind="$kind"
    current_dir="$dir"
    if ! "$ROOT/scripts/$kind.sh" start "$dir" "$port" "${settings[@]}" >/dev/null; then
        current_dir=""
        echo "java client tests on $kind: broker did not start (directory kept: $dir)"
        failed_any=1
        return
    fi
    rm -rf "$REPORTS"
    local rc=0
    mvn -B -q -f "$HERE/pom.xml" test -Dkafka.version="$kafka_version" \
        -Dbootstrap.servers="127.0.0.1:$port" -Dbroker="$kind" "$@" \
        >"$dir/maven.log" 2>&1 || rc=$?
    stop_current
    local passed failed skipped
    read -r passed failed skipped < <(count_reports)
    echo "java client tests on $kind: $passed passed, $failed failed, $skipped skipped ($((SECONDS - started)) s)"
    if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then
        failed_any=1
        list_failures
        if [ "$failed" -eq 0 ]; then
            echo "  Maven failed (exit $rc) without a failed test; its output:"
            tail -n 40 "$dir/maven.log" | quote
        fi
        echo "  broker log $log, last lines:"
        tail -n 30 "$log" | quote
        echo "  (directory kept: $dir; Maven's output in $dir/maven.log)"
    else
        rm -rf "$dir"
    fi
}

for kind in "${brokers[@]}"; do
    run_on "$kind" "$@"
done
exit "$failed_any"
