# Sourced by scripts/test.sh and scripts/check-chart.sh.
# as_root COMMAND...: runs COMMAND as root (directly when root, else with
# sudo), or fails saying what it needed.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "$(basename "$0"): need root or sudo to run: $*" >&2
        return 1
    fi
}
