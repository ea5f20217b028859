#!/usr/bin/env bash
# Bring the four test services up or down together, and print their endpoints as environment
# variables with upstream's names. Usage:
#   hack/services.sh up       start (or reuse) PostgreSQL, MinIO, Tika, OpenSearch; print env
#   hack/services.sh down     stop what these scripts started (by recorded pid only)
#   hack/services.sh status   one line per service; exit 1 if any is down
#   hack/services.sh env      print the variables (eval "$(hack/services.sh env)")
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SERVICES=(postgres minio tika opensearch)

case "${1:-up}" in
  up)
    # The slow JVMs start in parallel with the others; each script waits on its own health check.
    pids=()
    for s in "${SERVICES[@]}"; do "$HERE/services/$s.sh" start >/dev/null & pids+=($!); done
    rc=0; for p in "${pids[@]}"; do wait "$p" || rc=1; done
    [ $rc -eq 0 ] || { echo "services: at least one service failed to start (see messages above)" >&2; exit 1; }
    for s in "${SERVICES[@]}"; do "$HERE/services/$s.sh" env; done
    echo "export QUERIDO_DIARIO_FILES_ENDPOINT=http://localhost:8000/files"
    ;;
  down)
    for (( i=${#SERVICES[@]}-1; i>=0; i-- )); do "$HERE/services/${SERVICES[$i]}.sh" stop; done ;;
  status)
    rc=0; for s in "${SERVICES[@]}"; do "$HERE/services/$s.sh" status || rc=1; done; exit $rc ;;
  env)
    for s in "${SERVICES[@]}"; do "$HERE/services/$s.sh" env; done
    echo "export QUERIDO_DIARIO_FILES_ENDPOINT=http://localhost:8000/files" ;;
  *) echo "usage: $0 [up|down|status|env]" >&2; exit 2 ;;
esac
