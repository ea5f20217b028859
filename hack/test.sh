#!/usr/bin/env bash
# The project's test command (README: "Run all tests"). It builds the dev virtualenv, runs lint
# and type checks, the unit tier, starts the real services and runs the integration tier, brings
# up a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager built from the
# Go module proxy) and runs the cluster tier, and finally stops what it started (anything that
# was already up is left running).
# Usage: hack/test.sh [all|lint|unit|integration|cluster]  (default: all)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
QD_SERVICE=test
source hack/services/lib.sh
WHAT=${1:-all}
T0=$SECONDS
step() { printf '\n=== %s (t+%ss)\n' "$*" "$((SECONDS - T0))"; }

step "virtualenv"
VENV=$(bash hack/venv.sh dev)
export PATH="$VENV/bin:$PATH"

if [[ $WHAT == all || $WHAT == lint ]]; then
  step "ruff"
  ruff check .
  step "mypy --strict"
  mypy common/qd_core job_image/qd_extractor operator/qd_operator devtools/qd_devtools
fi

if [[ $WHAT == all || $WHAT == unit ]]; then
  step "unit tier"
  pytest tests/unit
fi

STARTED=()
cleanup() {
  local rc=$?
  for (( i=${#STARTED[@]}-1; i>=0; i-- )); do
    case ${STARTED[$i]} in
      controlplane) bash hack/cluster/controlplane.sh down || true ;;
      *) bash "hack/services/${STARTED[$i]}.sh" stop || true ;;
    esac
  done
  exit $rc
}
trap cleanup EXIT

if [[ $WHAT == all || $WHAT == integration || $WHAT == cluster ]]; then
  step "services"
  for s in postgres minio tika opensearch; do
    bash "hack/services/$s.sh" status >/dev/null 2>&1 || STARTED+=("$s")
  done
  eval "$(bash hack/services.sh up)"
fi

if [[ $WHAT == all || $WHAT == integration ]]; then
  step "integration tier"
  pytest tests/integration
fi

if [[ $WHAT == all || $WHAT == cluster ]]; then
  step "control plane"
  bash hack/cluster/controlplane.sh status >/dev/null 2>&1 || STARTED+=(controlplane)
  eval "$(bash hack/cluster/controlplane.sh up)"
  step "cluster tier"
  pytest tests/cluster
fi
step "done"
