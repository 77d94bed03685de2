# shellcheck shell=bash
# Sourced by scripts/kafka.sh and scripts/runnel.sh: a broker process kept
# by a pid file, started in the background and waited on with a deadline.

# wait_for_line WHAT PID LOG PATTERN SECONDS: waits until LOG has a line
# matching PATTERN (grep -E); fails with LOG's tail if PID exits first or
# the deadline passes.
wait_for_line() {
    local what="$1" pid="$2" log="$3" pattern="$4" seconds="$5"
    local deadline=$((SECONDS + seconds))
    until grep -qE "$pattern" "$log" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$log" >&2
            echo "$what exited while starting (log: $log)" >&2
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 30 "$log" >&2
            echo "$what not ready after $seconds s (log: $log)" >&2
            return 1
        fi
        sleep 0.1
    done
}

# running PID_FILE: whether the process of PID_FILE is alive.
running() {
    [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# stop_pid_file PID_FILE SECONDS: SIGTERM the process of PID_FILE, SIGKILL it
# if it has not exited within SECONDS, and remove PID_FILE.
stop_pid_file() {
    local pid_file="$1" seconds="$2" pid
    [ -f "$pid_file" ] || return 0
    pid="$(cat "$pid_file")"
    if kill -TERM "$pid" 2>/dev/null; then
        local deadline=$((SECONDS + seconds))
        while kill -0 "$pid" 2>/dev/null; do
            [ "$SECONDS" -lt "$deadline" ] || { kill -KILL "$pid" 2>/dev/null || true; break; }
            sleep 0.1
        done
    fi
    rm -f "$pid_file"
}
