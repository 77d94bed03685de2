#!/usr/bin/env bash
# A real Kubernetes control plane on loopback, with no kubelet and no
# container runtime: etcd, kube-apiserver and kube-controller-manager
# (built by build.sh), each a local process.
#
#   cluster.sh start DIR   make a CA and keys in DIR, start the three, wait
#                          until the API server's /readyz and the controller
#                          manager's /healthz answer, write DIR/kubeconfig
#   cluster.sh stop DIR    SIGTERM them (SIGKILL after a deadline)
#   cluster.sh env DIR     print `export KUBECONFIG=... PATH=...` lines (for
#                          eval) naming DIR's kubeconfig and the cached tools
#
# What is real: the API server with its structural schemas, server-side
# apply, RBAC and Node authorization, admission (OwnerReferencesPermission-
# Enforcement on), the TokenRequest API and service-account tokens signed by
# DIR's keys; the controller manager's controllers (garbage collector,
# StatefulSet, service accounts, ...), each with its own service account.
# What is not: no node runs pods (no kubelet), no scheduler, no Service
# traffic (the service IP range is only allocated, never routed);
# e2e/local/podrunner stands in for scheduler and kubelet (run.sh starts it).
#
# Ports are free loopback ports (scripts/free_port.py). Logs are
# DIR/<program>.log.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=scripts/process.sh
source "$ROOT/scripts/process.sh"
READY_SECONDS="${LOCAL_K8S_READY_SECONDS:-180}"
SERVICE_CIDR="10.96.0.0/16"

die() { echo "cluster.sh: $*" >&2; exit 1; }

free_port() { python3 "$ROOT/scripts/free_port.py" 20000 29999; }

# cert NAME SUBJECT [SAN]: a key and a certificate signed by DIR's CA;
# client certificates without SAN, the serving one with.
cert() {
    local name="$1" subject="$2" san="${3:-}" ext
    ext="$(mktemp)"
    if [ -n "$san" ]; then
        printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >"$ext"
    else
        printf 'extendedKeyUsage=clientAuth\n' >"$ext"
    fi
    openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" \
        -subj "$subject" -out "$PKI/$name.csr" 2>/dev/null
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
        -CAcreateserial -days 2 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
    rm -f "$ext" "$PKI/$name.csr"
}

make_pki() {
    mkdir -p "$PKI"
    openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" \
        -subj "/CN=runnel-local-ca" -days 2 -out "$PKI/ca.crt" 2>/dev/null
    cert apiserver "/CN=kube-apiserver" \
        "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
    # system:masters: the admin, unrestricted by RBAC.
    cert admin "/O=system:masters/CN=runnel-local-admin"
    # The user RBAC's bootstrap roles give the controller manager.
    cert controller-manager "/CN=system:kube-controller-manager"
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
}

# kubeconfig FILE USER: a kubeconfig for USER's client certificate.
kubeconfig() {
    local file="$1" user="$2"
    cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: local
    cluster:
      server: https://127.0.0.1:$API_PORT
      certificate-authority: $PKI/ca.crt
users:
  - name: $user
    user:
      client-certificate: $PKI/$user.crt
      client-key: $PKI/$user.key
contexts:
  - name: local
    context: {cluster: local, user: $user}
current-context: local
EOF
}

# wait_https WHAT PID URL CURL_ARGS...: waits until URL answers 200 (curl
# with CURL_ARGS); fails with the log's tail when PID exits or the deadline
# passes.
wait_https() {
    local what="$1" pid="$2" url="$3"
    shift 3
    local deadline=$((SECONDS + READY_SECONDS))
    until curl -sf -o /dev/null --max-time 5 "$@" "$url"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 40 "$DIR/$what.log" >&2
            die "$what exited while starting (log: $DIR/$what.log)"
        fi
        [ "$SECONDS" -lt "$deadline" ] || {
            tail -n 40 "$DIR/$what.log" >&2
            die "$what not ready after $READY_SECONDS s ($url; log: $DIR/$what.log)"
        }
        sleep 0.2
    done
}

# spawn NAME COMMAND...: starts COMMAND in the background, its output to
# DIR/NAME.log, its pid to DIR/NAME.pid.
spawn() {
    local name="$1"
    shift
    "$@" >"$DIR/$name.log" 2>&1 &
    echo $! >"$DIR/$name.pid"
}

start() {
    local bin etcd_port peer_port cm_port
    bin="$(bash "$HERE/build.sh" --bin-dir)"
    for name in etcd kube-apiserver kube-controller-manager; do
        if running "$DIR/$name.pid"; then die "$name already runs from $DIR (cluster.sh stop $DIR)"; fi
    done
    # Only what an earlier start left: DIR may hold other things.
    rm -rf "$DIR/pki" "$DIR/etcd" "$DIR"/*.log "$DIR"/*kubeconfig "$DIR/controller-manager-certs"
    PKI="$DIR/pki"
    make_pki

    etcd_port="$(free_port)"
    peer_port="$(free_port)"
    spawn etcd "$bin/etcd" --name local --data-dir "$DIR/etcd" \
        --listen-client-urls "http://127.0.0.1:$etcd_port" \
        --advertise-client-urls "http://127.0.0.1:$etcd_port" \
        --listen-peer-urls "http://127.0.0.1:$peer_port" \
        --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
        --initial-cluster "local=http://127.0.0.1:$peer_port"
    wait_https etcd "$(cat "$DIR/etcd.pid")" "http://127.0.0.1:$etcd_port/health"

    API_PORT="$(free_port)"
    # --endpoint-reconciler-type=none: the `kubernetes` Endpoints would
    # name 127.0.0.1, which Endpoints validation refuses.
    spawn kube-apiserver "$bin/kube-apiserver" \
        --etcd-servers "http://127.0.0.1:$etcd_port" \
        --bind-address 127.0.0.1 --secure-port "$API_PORT" \
        --advertise-address 127.0.0.1 --endpoint-reconciler-type none \
        --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
        --client-ca-file "$PKI/ca.crt" \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-account-key-file "$PKI/sa.pub" \
        --service-account-signing-key-file "$PKI/sa.key" \
        --service-cluster-ip-range "$SERVICE_CIDR" \
        --authorization-mode Node,RBAC \
        --enable-admission-plugins OwnerReferencesPermissionEnforcement \
        --profiling=false
    kubeconfig "$DIR/kubeconfig" admin
    wait_https kube-apiserver "$(cat "$DIR/kube-apiserver.pid")" \
        "https://127.0.0.1:$API_PORT/readyz" \
        --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key"

    cm_port="$(free_port)"
    kubeconfig "$DIR/controller-manager.kubeconfig" controller-manager
    spawn kube-controller-manager "$bin/kube-controller-manager" \
        --kubeconfig "$DIR/controller-manager.kubeconfig" \
        --authentication-kubeconfig "$DIR/controller-manager.kubeconfig" \
        --authorization-kubeconfig "$DIR/controller-manager.kubeconfig" \
        --bind-address 127.0.0.1 --secure-port "$cm_port" --cert-dir "$DIR/controller-manager-certs" \
        --leader-elect=false \
        --use-service-account-credentials \
        --service-account-private-key-file "$PKI/sa.key" \
        --root-ca-file "$PKI/ca.crt" \
        --service-cluster-ip-range "$SERVICE_CIDR" \
        --profiling=false
    wait_https kube-controller-manager "$(cat "$DIR/kube-controller-manager.pid")" \
        "https://127.0.0.1:$cm_port/healthz" -k
    echo "cluster.sh: control plane up: https://127.0.0.1:$API_PORT (KUBECONFIG=$DIR/kubeconfig)"
}

stop() {
    local name
    for name in kube-controller-manager kube-apiserver etcd; do
        stop_pid_file "$DIR/$name.pid" 20
    done
}

env_lines() {
    local bin
    bin="$(bash "$HERE/build.sh" --bin-dir)"
    printf 'export KUBECONFIG=%q\n' "$DIR/kubeconfig"
    printf 'export PATH=%q:"$PATH"\n' "$bin"
}

case "$#:${1:-}" in
    2:start | 2:stop | 2:env) ;;
    *) die "usage: cluster.sh start|stop|env DIR" ;;
esac
DIR="$(mkdir -p "$2" && cd "$2" && pwd)"
case "$1" in
    start) start ;;
    stop) stop ;;
    env) env_lines ;;
esac
