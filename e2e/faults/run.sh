#!/usr/bin/env bash
# The replication fault harness (see e2e/faults/README.md): three Runnel
# nodes in network namespaces, a workload of idempotent, transactional and
# probe producers and consumers, faults in rounds, then checker.py's
# verdict on the journals. Exits 0 only when no anomaly was found.
#
#   bash e2e/faults/run.sh [--rounds N] [--faults kind,kind] [--seed S]
#                          [--keep] [harness.py options...]
#
#   --rounds N     fault rounds (default 20, a few minutes; 200 by hand)
#   --faults LIST  kill-leader, kill-controller, pause-leader,
#                  partition-leader, partition-controller, netem, wipe
#                  (default all)
#   --seed S       the fault schedule's seed (printed at the start)
#   --keep         keep the work dir (logs, journals) even when it passes;
#                  a failed run's is always kept
#   --help         all of harness.py's options
#
# The binary is $RUNNEL_BIN (default target/release/runnel), copied first
# so that a rebuild does not change it mid-run. Needs root for the network
# namespaces; without them (or with RUNNEL_FAULTS_NET=loopback) the nodes
# run on 127.0.0.1 and the network faults are skipped.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PREFIX="${TMPDIR:-/tmp}/runnel-faults."

die() { echo "faults: $*" >&2; exit 1; }

KEEP=0
ARGS=()
for arg in "$@"; do
    case "$arg" in
        --keep) KEEP=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
            exec python3 "$HERE/harness.py" --help ;;
        *) ARGS+=("$arg") ;;
    esac
done

BIN="${RUNNEL_BIN:-$ROOT/target/release/runnel}"
[ -x "$BIN" ] || die "no runnel binary at $BIN (cargo build --release -p runnel-broker --bin runnel, or set RUNNEL_BIN)"

if ! python3 -c 'import confluent_kafka' >/dev/null 2>&1; then
    echo "faults: installing Python package confluent-kafka"
    python3 -m pip install -q confluent-kafka
fi

# kill_leftovers DIR: SIGKILL the processes a run in DIR recorded, only
# those whose command line still names DIR (a pid may have been reused).
kill_leftovers() {
    local dir="$1" pid_file pid
    for pid_file in "$dir"/pids/*.pid; do
        [ -f "$pid_file" ] || continue
        pid="$(cat "$pid_file")"
        if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$dir"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$pid_file"
    done
}

# What an earlier run left when it could not clean up (killed itself).
for old in "$PREFIX"*; do
    [ -d "$old" ] || continue
    kill_leftovers "$old"
    rm -rf "${old:?}/bin"
done
NET=loopback
if [ "${RUNNEL_FAULTS_NET:-netns}" = netns ] && [ "$(id -u)" = 0 ]; then
    if bash "$HERE/net.sh" up; then
        NET=netns
    else
        bash "$HERE/net.sh" down || true
    fi
fi
if [ "$NET" = loopback ]; then
    echo "faults: *** no network namespaces (need root, ip and nft; RUNNEL_FAULTS_NET=${RUNNEL_FAULTS_NET:-netns}):"
    echo "faults: *** brokers on 127.0.0.1, NETWORK FAULTS SKIPPED (partition-leader, partition-controller, netem)"
fi

WORK="$(mktemp -d "${PREFIX}XXXXXX")"
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    kill_leftovers "$WORK"
    [ "$NET" = netns ] && bash "$HERE/net.sh" down
    rm -rf "${WORK:?}/bin"
    if [ "$status" -eq 0 ] && [ "$KEEP" = 0 ]; then
        rm -rf "$WORK"
    else
        echo "faults: kept $WORK (broker logs in node-N/, journals in journal/, client logs in clients/)"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$WORK/bin" "$WORK/pids"
cp "$BIN" "$WORK/bin/runnel"
echo "faults: binary $BIN ($(stat -c '%y' "$BIN" | cut -d. -f1)), copied to $WORK/bin/runnel"

cd "$HERE"
python3 "$HERE/harness.py" --work "$WORK" --bin "$WORK/bin/runnel" --net "$NET" "${ARGS[@]}"
