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
# shellcheck source=scripts/process.sh
source "$ROOT/scripts/process.sh"

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
    running "$dir/runnel.pid" && die "a Runnel broker already runs from $dir (pid $(cat "$dir/runnel.pid"))"
    local bin
    bin="$(binary)"
    local args=(serve --log-dirs "$dir/data" --listeners "PLAINTEXT://127.0.0.1:$port"
        --override metrics.listen=127.0.0.1:0)
    local setting
    for setting in "$@"; do args+=(--override "$setting"); done
    "$bin" "${args[@]}" >"$dir/runnel.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/runnel.pid"
    wait_for_line "runnel" "$pid" "$dir/runnel.log" '^runnel: listening on' 60 || exit 1
    echo "$pid"
}

stop() {
    stop_pid_file "$1/runnel.pid" 60
}

cmd="${1:-}"
shift || true
case "$cmd" in
    start) [ $# -ge 2 ] || die "usage: runnel.sh start DIR PORT [KEY=VALUE...]"; start "$@" ;;
    stop) [ -n "${1:-}" ] || die "usage: runnel.sh stop DIR"; stop "$1" ;;
    *) die "usage: runnel.sh start DIR PORT [KEY=VALUE...] | stop DIR" ;;
esac
