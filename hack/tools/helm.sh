#!/usr/bin/env bash
# Build Helm at the pinned HELM_VERSION from the Go module proxy into
# $QD_CACHE/bin/helm-$HELM_VERSION/ (helm.sh/helm/v3 has no `replace` lines, so `go install`
# works). Idempotent: prints the path of the helm binary.
set -euo pipefail
QD_SERVICE=helm-build
source "$(cd "$(dirname "$0")" && pwd)/../services/lib.sh"
OUT="$QD_CACHE/bin/helm-$HELM_VERSION"
if [ -x "$OUT/helm" ]; then echo "$OUT/helm"; exit 0; fi
qd_require_cmd go "the Go toolchain (>= 1.24) from https://go.dev/dl (Debian 12's golang-go is 1.19, too old)"
LOG="$QD_RUN/logs/helm-build.log"
mkdir -p "$OUT"
qd_log "building helm v$HELM_VERSION from the Go module proxy (cold: a few minutes); log: $LOG"
# The version string lives in helm.sh/helm/v3/internal/version; without -X it says "v3.x-dev"-ish.
LD="-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
GOBIN="$OUT" CGO_ENABLED=0 go install -trimpath -ldflags "$LD" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" >"$LOG" 2>&1 \
  || qd_die "go install helm.sh/helm/v3/cmd/helm@v$HELM_VERSION failed; see $LOG"
got=$("$OUT/helm" version --short 2>&1 || true)
[[ $got == "v$HELM_VERSION"* ]] || qd_die "$OUT/helm reports '$got', expected v$HELM_VERSION"
echo "$OUT/helm"
