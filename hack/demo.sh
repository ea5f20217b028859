#!/usr/bin/env bash
# First command of the README: bring everything up on this machine and load sample gazettes.
# Today (until the operator lands) it starts the four services, loads the territories and seeds
# sample gazettes of every kind into PostgreSQL and the bucket, then prints how to reach them.
# Usage: hack/demo.sh [COUNT]   (default 40 gazettes)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
QD_SERVICE=demo
source hack/services/lib.sh
COUNT=${1:-40}
VENV=$(bash hack/venv.sh dev)
eval "$(bash hack/services.sh up)"
"$VENV/bin/qd-devtools" territories
"$VENV/bin/qd-devtools" seed --count "$COUNT"
PGPASSWORD=$POSTGRES_PASSWORD psql -h "$POSTGRES_HOST" -p "$POSTGRES_PORT" -U "$POSTGRES_USER" -d "$POSTGRES_DB" \
  -c "SELECT territory_id, count(*) AS gazettes, count(*) FILTER (WHERE processed) AS processed
      FROM gazettes GROUP BY territory_id ORDER BY territory_id"
cat <<MSG

Services are up (stop them with: hack/services.sh down). To use them from a shell:
  eval "\$(hack/services.sh env)"
PostgreSQL  $POSTGRES_HOST:$POSTGRES_PORT/$POSTGRES_DB   (tables gazettes, territories)
S3 (MinIO)  $STORAGE_ENDPOINT  bucket $STORAGE_BUCKET
Tika        $APACHE_TIKA_SERVER
OpenSearch  $OPENSEARCH_HOST
MSG
