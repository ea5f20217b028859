#!/usr/bin/env bash
# Build kubectl at the pinned K8S_VERSION (same version as the test cluster, so no client/server
# skew) into $QD_CACHE/bin/k8s-$K8S_VERSION/kubectl. It reuses the wrapper module that
# hack/k8s/build.sh sets up in $QD_CACHE/build/k8s-$K8S_VERSION (that script is run first; it is a
# no-op when its binaries are cached). Idempotent: prints the path of the kubectl binary.
set -euo pipefail
QD_SERVICE=kubectl-build
source "$(cd "$(dirname "$0")" && pwd)/../services/lib.sh"
OUT="$QD_CACHE/bin/k8s-$K8S_VERSION"
if [ -x "$OUT/kubectl" ]; then echo "$OUT/kubectl"; exit 0; fi
qd_require_cmd go "the Go toolchain (>= 1.24) from https://go.dev/dl (Debian 12's golang-go is 1.19, too old)"
bash "$QD_HACK_DIR/k8s/build.sh" >/dev/null || qd_die "hack/k8s/build.sh failed"
MOD="$QD_CACHE/build/k8s-$K8S_VERSION"
[ -f "$MOD/go.mod" ] || qd_die "wrapper module $MOD/go.mod missing after hack/k8s/build.sh"
LOG="$QD_RUN/logs/kubectl-build.log"
qd_log "building kubectl v$K8S_VERSION in $MOD (cold: a few minutes); log: $LOG"
cd "$MOD"
: >"$LOG"
go get "k8s.io/kubernetes/cmd/kubectl@v$K8S_VERSION" >>"$LOG" 2>&1 \
  || qd_die "go get k8s.io/kubernetes/cmd/kubectl@v$K8S_VERSION failed; see $LOG"
MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
LD="-s -w"
# kubectl reports its client version from client-go; the apiserver side uses component-base.
for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  LD="$LD -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean"
done
CGO_ENABLED=0 go build -trimpath -ldflags "$LD" -o "$OUT/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl >>"$LOG" 2>&1 \
  || qd_die "building kubectl failed; see $LOG"
mv "$OUT/kubectl.tmp" "$OUT/kubectl"
got=$("$OUT/kubectl" version --client 2>&1 || true)
[[ $got == *"v$K8S_VERSION"* ]] || qd_die "$OUT/kubectl reports '$got', expected v$K8S_VERSION"
echo "$OUT/kubectl"
