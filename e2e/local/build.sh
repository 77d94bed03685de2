#!/usr/bin/env bash
# Builds (once) the control-plane programs of the local Kubernetes tests
# into a cache outside the repository, and prints nothing else but progress
# on stderr:
#
#   build.sh            build what is missing
#   build.sh --bin-dir  the same, then print the directory of the binaries
#
# - kube-apiserver, kube-controller-manager and kubectl: `go build` of
#   k8s.io/kubernetes at the version go.mod requires (its k8s.io/* staging
#   modules pinned to the matching v0.x release by go.mod's replace lines);
# - etcd: Debian's etcd-server package, unpacked (dpkg -x), not installed;
# - podrunner (e2e/local/podrunner, in place of kubelet and scheduler):
#   `go build`, again whenever its sources change (podrunner.sum holds
#   their hash);
# - helm: the one on PATH, else the one scripts/check-chart.sh fetched,
#   else `go install helm.sh/helm/v4/cmd/helm` at HELM_VERSION.
#
# Everything lands in $RUNNEL_TOOLS_CACHE/k8s-<version>/bin (default
# ~/.cache/runnel-test-tools); Go's module and build caches are Go's own
# (~/go/pkg/mod, ~/.cache/go-build). A binary that is there is not built
# again: delete the directory to rebuild.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${RUNNEL_TOOLS_CACHE:-$HOME/.cache/runnel-test-tools}"
K8S_VERSION="$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$HERE/go.mod")"
[ -n "$K8S_VERSION" ] || { echo "build.sh: no 'require k8s.io/kubernetes' line in $HERE/go.mod" >&2; exit 1; }
BIN="$CACHE/k8s-$K8S_VERSION/bin"
HELM_VERSION="v4.3.2"
HELM_LAYER_DIR="$CACHE/kubectl-layer"

log() { echo "build.sh: $*" >&2; }

mkdir -p "$BIN"

# The version the programs report (hack/lib/version.sh sets the same):
# without it they say v0.0.0-master, and helm refuses the chart's
# kubeVersion.
K8S_MINOR="$(cut -d. -f2 <<<"$K8S_VERSION")"
LDFLAGS="-s"
for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LDFLAGS+=" -X $package.gitVersion=$K8S_VERSION -X $package.gitMajor=1"
    LDFLAGS+=" -X $package.gitMinor=$K8S_MINOR -X $package.gitTreeState=clean"
done

# The programs missing from $BIN, built by one `go build` (it shares and
# parallelises the work of the three).
missing=()
for name in kube-apiserver kube-controller-manager kubectl; do
    [ -x "$BIN/$name" ] || missing+=("k8s.io/kubernetes/cmd/$name")
done
if [ ${#missing[@]} -gt 0 ]; then
    started=$SECONDS
    log "building ${missing[*]##*/} $K8S_VERSION (go build; a first build takes 10 to 30 minutes)"
    out="$(mktemp -d "$BIN/.build.XXXXXX")"
    (cd "$HERE" && go build -trimpath -ldflags="$LDFLAGS -w" -o "$out/" "${missing[@]}")
    mv "$out"/* "$BIN/"
    rmdir "$out"
    log "built ${missing[*]##*/} in $((SECONDS - started)) s"
fi

if [ ! -x "$BIN/etcd" ]; then
    log "fetching etcd (Debian package etcd-server)"
    work="$(mktemp -d)"
    (cd "$work" && apt-get download etcd-server >/dev/null 2>&1 ||
        { source "$HERE/../../scripts/as_root.sh" && as_root apt-get update -qq && apt-get download etcd-server; })
    dpkg -x "$work"/etcd-server_*.deb "$work/root"
    mv "$work/root/usr/bin/etcd" "$BIN/etcd"
    rm -rf "$work"
fi

if [ ! -x "$BIN/helm" ]; then
    found="$(command -v helm 2>/dev/null || true)"
    [ -n "$found" ] || found="$(find "$HELM_LAYER_DIR" -type f -name helm 2>/dev/null | head -n 1 || true)"
    if [ -n "$found" ]; then
        ln -sfn "$found" "$BIN/helm"
    else
        started=$SECONDS
        log "building helm $HELM_VERSION (go install helm.sh/helm/v4/cmd/helm)"
        GOBIN="$BIN" go install -trimpath \
            -ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
            "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
        log "built helm in $((SECONDS - started)) s"
    fi
fi

sum="$(cat "$HERE"/podrunner/*.go "$HERE/go.mod" "$HERE/go.sum" | sha256sum | cut -c1-16)"
if [ ! -x "$BIN/podrunner" ] || [ "$(cat "$BIN/podrunner.sum" 2>/dev/null)" != "$sum" ]; then
    log "building podrunner"
    (cd "$HERE" && go build -trimpath -o "$BIN/podrunner.new" ./podrunner)
    mv "$BIN/podrunner.new" "$BIN/podrunner"
    echo "$sum" >"$BIN/podrunner.sum"
fi

if [ "${1:-}" = "--bin-dir" ]; then
    echo "$BIN"
fi
