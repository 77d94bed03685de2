#!/usr/bin/env bash
# The franz-go tests (this Go module) against Runnel, Apache Kafka or both.
#
#   e2e/go/run.sh [runnel|kafka|both]     default both
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
    *) die "usage: run.sh [runnel|kafka|both]" ;;
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

# A loopback port in 21000-21999 that nothing listens on.
free_port() {
    python3 - <<'EOF'
import random, socket
ports = list(range(21000, 22000))
random.shuffle(ports)
for port in ports:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("no free port in 21000-21999")
EOF
}

# count_results JSON_FILE: "PASSED FAILED" over top-level tests and subtests.
count_results() {
    python3 - "$1" <<'EOF'
import json, sys
passed = failed = 0
with open(sys.argv[1]) as f:
    for line in f:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if not ev.get("Test"):
            continue
        if ev.get("Action") == "pass":
            passed += 1
        elif ev.get("Action") == "fail":
            failed += 1
print(passed, failed)
EOF
}

# failed_output JSON_FILE: the output of the tests that failed.
failed_output() {
    python3 - "$1" <<'EOF'
import json, sys
out, failed = {}, []
with open(sys.argv[1]) as f:
    for line in f:
        try:
            ev = json.loads(line)
        except ValueError:
            print(line, end="")
            continue
        test = ev.get("Test")
        if ev.get("Action") == "output":
            out.setdefault(test, []).append(ev.get("Output", ""))
        elif ev.get("Action") == "fail":
            failed.append(test)
for test in failed:
    print("".join(out.get(test, [])), end="")
EOF
}

status=0
summaries=()
for kind in "${brokers[@]}"; do
    dir="$WORK/$kind"
    port="$(free_port)"
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
    read -r passed failed < <(count_results "$json")
    elapsed=$((SECONDS - start))
    if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then
        status=1
        [ "$failed" -ne 0 ] || failed=1 # go test failed before running tests (build error)
        echo "run.sh: franz-go tests failed on $kind; output of the failed tests:" >&2
        failed_output "$json" >&2
        cat "$WORK/$kind.stderr" >&2
        log="$dir/$kind.log"
        echo "run.sh: last 40 lines of $log:" >&2
        tail -n 40 "$log" >&2 || true
    fi
    "$ROOT/scripts/$kind.sh" stop "$dir" >/dev/null 2>&1 || true
    summaries+=("franz-go tests on $kind: $passed passed, $failed failed ($elapsed s)")
done
printf '%s\n' "${summaries[@]}"
exit "$status"
