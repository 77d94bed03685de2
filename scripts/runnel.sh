#!/usr/bin/env bash
# A Runnel broker on loopback for the tests and benchmarks that run outside
# cargo (the Java and Go client tests, the side-by-side benchmark); the same
# commands as scripts/kafka.sh, so a test runs against either.
#
#   runnel.sh start DIR PORT [KEY=VALUE...]
#                           start `runnel serve` with its data in DIR/data,
#                           listening on 127.0.0.1:PORT (metrics on a free
#                           port), with more settings as --override; waits
#                           for its ready line; prints its pid
#   runnel.sh stop DIR      SIGTERM it and wait
#
# The binary is $RUNNEL_BIN, default target/debug/runnel (built by cargo
# when missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "runnel.sh: $*" >&2; exit 1; }

binary() {
    local bin="${RUNNEL_BIN:-$ROOT/target/debug/runnel}"
    if [ ! -x "$bin" ]; then
        [ -z "${RUNNEL_BIN:-}" ] || die "RUNNEL_BIN=$bin is not an executable"
        (cd "$ROOT" && cargo build -q -p runnel-broker --bin runnel) >&2
    fi
    printf '%s\n' "$bin"
}

start() {
    local dir="$1" port="$2"
    shift 2
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    [ -f "$dir/runnel.pid" ] && kill -0 "$(cat "$dir/runnel.pid")" 2>/dev/null \
        && die "a Runnel broker already runs from $dir (pid $(cat "$dir/runnel.pid"))"
    local bin
    bin="$(binary)"
    local args=(serve --log-dirs "$dir/data" --listeners "PLAINTEXT://127.0.0.1:$port"
        --override metrics.listen=127.0.0.1:0)
    local setting
    for setting in "$@"; do args+=(--override "$setting"); done
    "$bin" "${args[@]}" >"$dir/runnel.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/runnel.pid"
    local deadline=$((SECONDS + 60))
    until grep -q '^runnel: listening on' "$dir/runnel.log" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { tail -n 30 "$dir/runnel.log" >&2; die "runnel exited while starting (log: $dir/runnel.log)"; }
        [ "$SECONDS" -lt "$deadline" ] || { tail -n 30 "$dir/runnel.log" >&2; die "runnel not ready after 60 s (log: $dir/runnel.log)"; }
        sleep 0.1
    done
    echo "$pid"
}

stop() {
    local dir="$1"
    [ -f "$dir/runnel.pid" ] || return 0
    local pid
    pid="$(cat "$dir/runnel.pid")"
    if kill -TERM "$pid" 2>/dev/null; then
        local deadline=$((SECONDS + 60))
        while kill -0 "$pid" 2>/dev/null; do
            [ "$SECONDS" -lt "$deadline" ] || { kill -KILL "$pid" 2>/dev/null || true; break; }
            sleep 0.1
        done
    fi
    rm -f "$dir/runnel.pid"
}

cmd="${1:-}"
shift || true
case "$cmd" in
    start) [ $# -ge 2 ] || die "usage: runnel.sh start DIR PORT [KEY=VALUE...]"; start "$@" ;;
    stop) [ -n "${1:-}" ] || die "usage: runnel.sh stop DIR"; stop "$1" ;;
    *) die "usage: runnel.sh start DIR PORT [KEY=VALUE...] | stop DIR" ;;
esac
