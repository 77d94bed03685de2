#!/usr/bin/env bash
# Three Runnel nodes on loopback as one cluster (each broker and
# controller, process.roles=broker,controller), for the client tests that
# run outside cargo; the same commands as scripts/runnel.sh and
# scripts/kafka.sh, so a test runs against any of them.
#
#   runnel-cluster.sh start DIR PORT [KEY=VALUE...]
#                           format and start nodes 1, 2 and 3 in DIR/node-N
#                           (Kafka-style server.properties, formatted by
#                           `runnel storage format`), node 1's clients'
#                           listener on 127.0.0.1:PORT, the others' and the
#                           controller listeners on free ports, with more
#                           settings for each; waits until all three are
#                           ready (a controller elected, each registered);
#                           prints their pids
#   runnel-cluster.sh stop DIR
#                           SIGTERM the three and wait
#
# The binary is $RUNNEL_BIN, default target/debug/runnel (built by cargo
# when missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "runnel-cluster.sh: $*" >&2; exit 1; }
# shellcheck source=scripts/process.sh
source "$ROOT/scripts/process.sh"

NODES=(1 2 3)

binary() {
    local bin="${RUNNEL_BIN:-$ROOT/target/debug/runnel}"
    if [ ! -x "$bin" ]; then
        [ -z "${RUNNEL_BIN:-}" ] || die "RUNNEL_BIN=$bin is not an executable"
        (cd "$ROOT" && cargo build -q -p runnel-broker --bin runnel) >&2
    fi
    printf '%s\n' "$bin"
}

free_port() { python3 "$ROOT/scripts/free_port.py"; }

start() {
    local dir="$1" port="$2"
    shift 2
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    local bin id
    bin="$(binary)"
    for id in "${NODES[@]}"; do
        running "$dir/node-$id/runnel.pid" && die "node $id already runs from $dir/node-$id"
    done
    local voters="" controller_port=()
    for id in "${NODES[@]}"; do
        controller_port[id]="$(free_port)"
        voters="$voters${voters:+,}$id@127.0.0.1:${controller_port[id]}"
    done
    local cluster_id
    cluster_id="$("$bin" storage random-uuid)"
    for id in "${NODES[@]}"; do
        local node="$dir/node-$id" client_port=0
        [ "$id" = 1 ] && client_port="$port"
        mkdir -p "$node"
        {
            echo "process.roles=broker,controller"
            echo "node.id=$id"
            echo "controller.quorum.voters=$voters"
            echo "listeners=PLAINTEXT://127.0.0.1:$client_port,CONTROLLER://127.0.0.1:${controller_port[id]}"
            echo "controller.listener.names=CONTROLLER"
            echo "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
            echo "log.dirs=$node/data"
            echo "metrics.listen=127.0.0.1:0"
            # Replicated as a production cluster is: three copies, two
            # in sync for acks=all (later settings override these).
            echo "default.replication.factor=3"
            echo "min.insync.replicas=2"
            local setting
            for setting in "$@"; do
                case "$setting" in
                    *=*) printf '%s\n' "$setting" ;;
                    *) die "$setting is not KEY=VALUE" ;;
                esac
            done
        } >"$node/server.properties"
        if [ ! -f "$node/data/meta.properties" ]; then
            "$bin" storage format -t "$cluster_id" -c "$node/server.properties" >"$node/format.log" 2>&1 \
                || { cat "$node/format.log" >&2; die "formatting node $id failed"; }
        fi
    done
    # All three start before any is waited on: each is ready only once a
    # majority elected a controller and it registered.
    for id in "${NODES[@]}"; do
        local node="$dir/node-$id"
        "$bin" serve --config "$node/server.properties" >"$node/runnel.log" 2>&1 &
        echo "$!" >"$node/runnel.pid"
    done
    for id in "${NODES[@]}"; do
        local node="$dir/node-$id"
        wait_for_line "runnel node $id" "$(cat "$node/runnel.pid")" "$node/runnel.log" \
            '^runnel: listening on' 90 || { stop "$dir"; exit 1; }
    done
    # The tests read one broker log: node 1's, plus the others' at the end.
    ln -sf "$dir/node-1/runnel.log" "$dir/runnel-cluster.log"
    for id in "${NODES[@]}"; do cat "$dir/node-$id/runnel.pid"; done
}

stop() {
    local id
    for id in "${NODES[@]}"; do
        [ -f "$1/node-$id/runnel.pid" ] && kill -TERM "$(cat "$1/node-$id/runnel.pid")" 2>/dev/null || true
    done
    for id in "${NODES[@]}"; do
        stop_pid_file "$1/node-$id/runnel.pid" 60
    done
}

cmd="${1:-}"
shift || true
case "$cmd" in
    start) [ $# -ge 2 ] || die "usage: runnel-cluster.sh start DIR PORT [KEY=VALUE...]"; start "$@" ;;
    stop) [ -n "${1:-}" ] || die "usage: runnel-cluster.sh stop DIR"; stop "$1" ;;
    *) die "usage: runnel-cluster.sh start DIR PORT [KEY=VALUE...] | stop DIR" ;;
esac
