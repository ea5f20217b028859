#!/usr/bin/env bash
# The project's test command (README: "Run all tests"). It builds the dev virtualenv, runs lint
# and type checks, the unit tier, then starts the real services and runs the integration tier,
# and finally stops the services it started (services that were already up are left running).
# Usage: hack/test.sh [all|lint|unit|integration]  (default: all)
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

if [[ $WHAT == all || $WHAT == integration ]]; then
  step "services"
  STARTED=()
  for s in postgres minio tika opensearch; do
    bash "hack/services/$s.sh" status >/dev/null 2>&1 || STARTED+=("$s")
  done
  cleanup() {
    local rc=$?
    for (( i=${#STARTED[@]}-1; i>=0; i-- )); do bash "hack/services/${STARTED[$i]}.sh" stop || true; done
    exit $rc
  }
  trap cleanup EXIT
  eval "$(bash hack/services.sh up)"
  step "integration tier"
  pytest tests/integration
fi
step "done"
