#!/usr/bin/env bash
# The franz-go tests (this Go module) against Runnel, Apache Kafka or both.
#
#   e2e/go/run.sh [runnel|kafka|both|runnel-cluster]     default both
#
# runnel-cluster: three Runnel nodes (scripts/runnel-cluster.sh), the
# clients bootstrapped from node 1.
#
# Each broker is started by scripts/runnel.sh or scripts/kafka.sh in a temp
# dir on a free loopback port (21000-21999), `go test -count=1 -json ./...`
# runs with KAFKA_BOOTSTRAP and BROKER set, and one line per broker sums up:
#
#   franz-go tests on runnel: 9 passed, 0 failed (21 s)
#
# Brokers are stopped on any exit; a failed run prints the failing tests'
# output and the broker's log tail. Exits non-zero if anything failed on
# either broker. GO_TEST_FLAGS adds flags to go test (e.g. "-run Txn").
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
die() { echo "run.sh: $*" >&2; exit 2; }

which_brokers="${1:-both}"
case "$which_brokers" in
    runnel) brokers=(runnel) ;;
    kafka) brokers=(kafka) ;;
    both) brokers=(runnel kafka) ;;
    runnel-cluster) brokers=(runnel-cluster) ;;
    *) die "usage: run.sh [runnel|kafka|both|runnel-cluster]" ;;
esac
command -v go >/dev/null 2>&1 || die "go not found"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/runnel-e2e-go.XXXXXX")"
started=()
# shellcheck disable=SC2329 # invoked by the EXIT trap
cleanup() {
    local kind
    for kind in "${started[@]}"; do
        "$ROOT/scripts/$kind.sh" stop "$WORK/$kind" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# results JSON_FILE counts|failed: "PASSED FAILED" over tests and subtests
# (one that started and never ended, as in a panic or a timeout, failed),
# or the output of the failed tests and of the package.
results() {
    python3 - "$@" <<'EOF'
import json, sys
out, ended, started = {}, {}, []
with open(sys.argv[1]) as f:
    for line in f:
        try:
            ev = json.loads(line)
        except ValueError:
            out.setdefault(None, []).append(line)
            continue
        test, action = ev.get("Test"), ev.get("Action")
        if action == "output":
            out.setdefault(test, []).append(ev.get("Output", ""))
        elif test and action == "run":
            started.append(test)
        elif test and action in ("pass", "fail", "skip"):
            ended[test] = action
failed = [t for t in started if ended.get(t, "fail") == "fail"]
if sys.argv[2] == "counts":
    print(sum(1 for a in ended.values() if a == "pass"), len(failed))
else:
    for test in failed + [None]:
        print("".join(out.get(test, [])), end="")
EOF
}

status=0
summaries=()
for kind in "${brokers[@]}"; do
    dir="$WORK/$kind"
    port="$(python3 "$ROOT/scripts/free_port.py" 21000 21999)"
    start=$SECONDS
    echo "run.sh: starting $kind on 127.0.0.1:$port" >&2
    started+=("$kind")
    settings=()
    # As scripts/kafka.sh configures Kafka: a new group's first rebalance at once.
    [ "$kind" = kafka ] || settings=(group.initial.rebalance.delay.ms=0)
    if ! "$ROOT/scripts/$kind.sh" start "$dir" "$port" "${settings[@]}" >/dev/null; then
        summaries+=("franz-go tests on $kind: 0 passed, 1 failed (broker did not start)")
        status=1
        continue
    fi
    json="$WORK/$kind.json"
    rc=0
    # shellcheck disable=SC2086 # GO_TEST_FLAGS holds several flags
    (cd "$HERE" && KAFKA_BOOTSTRAP="127.0.0.1:$port" BROKER="$kind" \
        go test -count=1 -json ${GO_TEST_FLAGS:-} ./...) >"$json" 2>"$WORK/$kind.stderr" || rc=$?
    read -r passed failed < <(results "$json" counts)
    elapsed=$((SECONDS - start))
    if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then
        status=1
        [ "$failed" -ne 0 ] || failed=1 # go test failed before running tests (build error)
        echo "run.sh: franz-go tests failed on $kind; output of the failed tests and the package:" >&2
        results "$json" failed >&2
        cat "$WORK/$kind.stderr" >&2
        log="$dir/$kind.log"
        echo "run.sh: last 40 lines of $log:" >&2
        tail -n 40 "$log" | sed 's/\x1b\[[0-9;]*m//g' >&2 || true
    fi
    "$ROOT/scripts/$kind.sh" stop "$dir" >/dev/null 2>&1 || true
    summaries+=("franz-go tests on $kind: $passed passed, $failed failed ($elapsed s)")
done
printf '%s\n' "${summaries[@]}"
exit "$status"
