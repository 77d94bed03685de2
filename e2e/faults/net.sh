#!/usr/bin/env bash
# The fault harness's network: three network namespaces rf-1, rf-2 and
# rf-3 (one broker each, 10.77.0.1..3) joined by veth pairs to the bridge
# rfbr0 in the root namespace (10.77.0.254), where the clients run. Every
# command is idempotent, so a run that died half way is cleaned up by the
# next one.
#
#   net.sh up            remove leftovers (down), then make the namespaces,
#                        the bridge and the veth pairs; fails if it cannot
#   net.sh down          end what runs in rf-N, delete rf-N and the bridge
#   net.sh isolate N     rf-N drops all traffic to and from the other
#                        brokers' addresses; clients still reach it
#   net.sh lossy N       netem (delay 50ms loss 5%) on both ends of rf-N's
#                        veth; where the kernel has no netem, 5% loss by nft
#                        only (prints which)
#   net.sh heal N        undo isolate and lossy on rf-N
#   net.sh has-netem     exit 0 when the kernel has the netem qdisc
#
# Needs root, iproute2 (ip, tc) and nft (Debian package nftables).
set -euo pipefail

NODES=(1 2 3)
SUBNET=10.77.0
BRIDGE=rfbr0
TABLE=runnel_faults
NFT="${NFT:-$(command -v nft || echo /usr/sbin/nft)}"

die() { echo "net.sh: $*" >&2; exit 1; }

ns() { printf 'rf-%s\n' "$1"; }
# The root namespace's end of node N's veth pair; the other end is eth0
# inside rf-N.
veth() { printf 'rfv-%s\n' "$1"; }

check_node() {
    case "${1:-}" in
        1 | 2 | 3) ;;
        *) die "node must be 1, 2 or 3, not '${1:-}'" ;;
    esac
}

down() {
    local id name pids
    for id in "${NODES[@]}"; do
        name="$(ns "$id")"
        ip netns list 2>/dev/null | grep -qw "^$name" || continue
        # Only processes inside our own namespace: brokers a run left.
        pids="$(ip netns pids "$name" 2>/dev/null || true)"
        if [ -n "$pids" ]; then
            echo "net.sh: killing leftover processes in $name: $(echo "$pids" | tr '\n' ' ')" >&2
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null || true
        fi
        ip netns del "$name" 2>/dev/null || true
    done
    for id in "${NODES[@]}"; do
        ip link del "$(veth "$id")" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
}

up() {
    down
    command -v ip >/dev/null || die "ip (iproute2) not found"
    [ -x "$NFT" ] || die "nft not found (Debian package nftables)"
    if ip -4 -o addr show | grep -v " $BRIDGE " | grep -q "inet $SUBNET\."; then
        die "$SUBNET.0/24 is already in use on this host"
    fi
    ip link add "$BRIDGE" type bridge
    ip addr add "$SUBNET.254/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    local id name
    for id in "${NODES[@]}"; do
        name="$(ns "$id")"
        ip netns add "$name"
        ip netns exec "$name" ip link set lo up
        ip link add "$(veth "$id")" type veth peer name eth0 netns "$name"
        ip link set "$(veth "$id")" master "$BRIDGE"
        ip link set "$(veth "$id")" up
        ip netns exec "$name" ip addr add "$SUBNET.$id/24" dev eth0
        ip netns exec "$name" ip link set eth0 up
        ip netns exec "$name" ip route add default via "$SUBNET.254"
    done
    # Traffic from the root namespace must reach every node, and nft must
    # work inside one (the isolate fault's tool).
    for id in "${NODES[@]}"; do
        ip netns exec "$(ns "$id")" "$NFT" list ruleset >/dev/null \
            || die "nft does not work inside $(ns "$id")"
    done
}

isolate() {
    check_node "$1"
    local others="" id
    for id in "${NODES[@]}"; do
        [ "$id" = "$1" ] || others="$others${others:+, }$SUBNET.$id"
    done
    ip netns exec "$(ns "$1")" "$NFT" delete table inet "$TABLE" 2>/dev/null || true
    ip netns exec "$(ns "$1")" "$NFT" -f - <<EOF
table inet $TABLE {
    chain input {
        type filter hook input priority 0; policy accept;
        ip saddr { $others } drop
    }
    chain output {
        type filter hook output priority 0; policy accept;
        ip daddr { $others } drop
    }
}
EOF
}

has_netem() {
    local probe=rfv-probe
    ip link del "$probe" 2>/dev/null || true
    ip link add "$probe" type veth peer name "$probe-b" || return 1
    local ok=1
    tc qdisc add dev "$probe" root netem delay 1ms 2>/dev/null && ok=0
    ip link del "$probe" 2>/dev/null || true
    return "$ok"
}

lossy() {
    check_node "$1"
    local name
    name="$(ns "$1")"
    if has_netem; then
        tc qdisc replace dev "$(veth "$1")" root netem delay 50ms loss 5%
        ip netns exec "$name" tc qdisc replace dev eth0 root netem delay 50ms loss 5%
        echo "netem delay 50ms loss 5% on both ends of $(veth "$1")"
    else
        ip netns exec "$name" "$NFT" delete table inet "$TABLE-loss" 2>/dev/null || true
        ip netns exec "$name" "$NFT" -f - <<EOF
table inet $TABLE-loss {
    chain input {
        type filter hook input priority 0; policy accept;
        numgen random mod 100 < 5 drop
    }
    chain output {
        type filter hook output priority 0; policy accept;
        numgen random mod 100 < 5 drop
    }
}
EOF
        echo "no netem in this kernel: 5% loss each way by nft in $name, no delay"
    fi
}

heal() {
    check_node "$1"
    local name
    name="$(ns "$1")"
    ip netns exec "$name" "$NFT" delete table inet "$TABLE" 2>/dev/null || true
    ip netns exec "$name" "$NFT" delete table inet "$TABLE-loss" 2>/dev/null || true
    tc qdisc del dev "$(veth "$1")" root 2>/dev/null || true
    ip netns exec "$name" tc qdisc del dev eth0 root 2>/dev/null || true
}

cmd="${1:-}"
shift || true
case "$cmd" in
    up) up ;;
    down) down ;;
    isolate) isolate "${1:-}" ;;
    lossy) lossy "${1:-}" ;;
    heal) heal "${1:-}" ;;
    has-netem) has_netem ;;
    *) die "usage: net.sh up | down | isolate N | lossy N | heal N | has-netem" ;;
esac
