#!/usr/bin/env bash
# Build kube-apiserver, kube-controller-manager, kube-scheduler and kubelet from the Go module
# proxy at the pinned K8S_VERSION, through a wrapper module (k8s.io/kubernetes has `replace`
# lines, so a plain `go install` refuses it). Idempotent: binaries are cached by version.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../services/lib.sh"
qd_require_cmd go "the Go toolchain (>= 1.24) from https://go.dev/dl (Debian 12's golang-go is 1.19, too old)"
OUT="$QD_CACHE/bin/k8s-$K8S_VERSION"
WANT=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
all_there() { for c in "${WANT[@]}"; do [ -x "$OUT/$c" ] || return 1; done; }
if all_there; then echo "$OUT"; exit 0; fi
MOD="$QD_CACHE/build/k8s-$K8S_VERSION"
mkdir -p "$MOD" "$OUT"
cd "$MOD"
STAGING="v0.${K8S_VERSION#1.}"
if [ ! -f go.mod ]; then
  go mod init local/k8sbuild >/dev/null 2>&1
  GOMOD=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  for m in $(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) v0\.0\.0$#\1#p' "$GOMOD"); do
    go mod edit -replace="$m=$m@$STAGING"
  done
  go get "k8s.io/kubernetes@v$K8S_VERSION" >/dev/null
  for c in "${WANT[@]}"; do go get "k8s.io/kubernetes/cmd/$c@v$K8S_VERSION" >/dev/null; done
fi
MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
LD="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$MINOR \
 -X k8s.io/component-base/version.gitTreeState=clean"
for c in "${WANT[@]}"; do
  [ -x "$OUT/$c" ] && continue
  CGO_ENABLED=0 go build -trimpath -ldflags "$LD" -o "$OUT/$c.tmp" "k8s.io/kubernetes/cmd/$c"
  mv "$OUT/$c.tmp" "$OUT/$c"
done
echo "$OUT"
