#!/usr/bin/env bash
# The project's test command (README: "Run all tests"). Tiers, in order:
#   lint         ruff + mypy --strict
#   unit         no services
#   integration  the four real services (PostgreSQL, MinIO, Tika, OpenSearch)
#   cluster      a real control plane (etcd, kube-apiserver, kube-controller-manager from the Go
#                module proxy); the operator runs in-process and pod outcomes are driven through the API
#   node         the control plane becomes a one-node cluster (containerd, kubelet, scheduler), the
#                project's images are built without Docker and imported; real pods, real OOM kills
#   e2e          the Helm chart on that node, ExtractionRuns end to end
# Everything is installed and built by the project's own scripts, cached outside the work tree.
# The slow Go builds (Kubernetes, etcd, kubectl, Helm) start in the background at once and are
# awaited only where needed. At the end it stops what it started (what was already up stays up).
# Usage: hack/test.sh [all|lint|unit|integration|cluster|node|e2e]  (default: all)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
QD_SERVICE=test
source hack/services/lib.sh
WHAT=${1:-all}
T0=$SECONDS
step() { printf '\n=== %s (t+%ss)\n' "$*" "$((SECONDS - T0))"; }
want() { [[ $WHAT == all ]] && return 0; for t in "$@"; do [[ $WHAT == "$t" ]] && return 0; done; return 1; }

STARTED=()
BUILDS_PID=""
cleanup() {
  local rc=$?
  [ -n "$BUILDS_PID" ] && kill "$BUILDS_PID" 2>/dev/null || true
  for (( i=${#STARTED[@]}-1; i>=0; i-- )); do
    case ${STARTED[$i]} in
      controlplane) bash hack/cluster/controlplane.sh down || true ;;
      node) bash hack/cluster/node.sh down || true ;;
      expose) bash hack/cluster/expose.sh down || true ;;
      *) bash "hack/services/${STARTED[$i]}.sh" stop || true ;;
    esac
  done
  exit $rc
}
trap cleanup EXIT

if want unit cluster node e2e; then
  # Cold machines build Helm, Kubernetes (~7 min), etcd and kubectl: start now, wait later.
  if [[ $WHAT == unit ]]; then builds=(hack/tools/helm.sh)
  else builds=(hack/tools/helm.sh hack/k8s/build.sh hack/tools/etcd.sh hack/tools/kubectl.sh); fi
  ( for b in "${builds[@]}"; do bash "$b"; done ) >"$QD_RUN/logs/go-builds.log" 2>&1 &
  BUILDS_PID=$!
fi
await_builds() {
  [ -z "$BUILDS_PID" ] && return 0
  step "waiting for the Go builds (log: $QD_RUN/logs/go-builds.log)"
  wait "$BUILDS_PID" || { tail -n 30 "$QD_RUN/logs/go-builds.log" >&2; qd_die "Go builds failed"; }
  BUILDS_PID=""
}

step "virtualenv"
VENV=$(bash hack/venv.sh dev)
export PATH="$VENV/bin:$PATH"

if want lint; then
  step "ruff"
  ruff check .
  step "mypy --strict"
  mypy common/qd_core job_image/qd_extractor operator/qd_operator devtools/qd_devtools
fi

if want unit; then
  step "unit tier"
  pytest tests/unit --ignore=tests/unit/chart  # the chart's unit tests need Helm: run after the builds
fi

if want integration cluster node e2e; then
  step "services"
  for s in postgres minio tika opensearch; do
    bash "hack/services/$s.sh" status >/dev/null 2>&1 || STARTED+=("$s")
  done
  qd_eval bash hack/services.sh up
fi

if want integration; then
  step "integration tier"
  pytest tests/integration
fi

if want unit cluster node e2e; then
  await_builds
  export QD_HELM=$(bash hack/tools/helm.sh | tail -n 1)
fi

if want unit; then
  step "unit tier: the Helm chart"
  pytest tests/unit/chart
fi

if want cluster node e2e; then
  step "control plane"
  bash hack/cluster/controlplane.sh status >/dev/null 2>&1 || STARTED+=(controlplane)
  qd_eval bash hack/cluster/controlplane.sh up
fi

if want cluster; then
  # Before the node exists: these tests drive pod outcomes themselves, no kubelet may run them.
  step "cluster tier"
  pytest tests/cluster
fi

if want node e2e; then
  step "node"
  bash hack/cluster/node.sh status >/dev/null 2>&1 || STARTED+=(node)
  qd_eval bash hack/cluster/node.sh up
  bash hack/cluster/expose.sh status >/dev/null 2>&1 || STARTED+=(expose)
  qd_eval bash hack/cluster/expose.sh up
  step "images"
  qd_eval QD_IMAGE_TESTMODEL=1 bash hack/images/build.sh all
  step "node tier"
  pytest tests/node
fi

if want e2e; then
  step "e2e tier"
  pytest tests/e2e
fi
step "done"
