#!/usr/bin/env bash
# MinIO (S3) built from the Go module proxy at the pinned MINIO_VERSION, on loopback, with the
# bucket created. Usage: minio.sh [start|stop|status|env]. Idempotent.
# MinIO is AGPL-3.0: it runs as a separate test process and is never a project dependency.
set -euo pipefail
QD_SERVICE=minio
source "$(dirname "$0")/lib.sh"
BIN=$QD_CACHE/bin/minio-$MINIO_VERSION/minio
DATA=$QD_RUN/minio/data
ENDPOINT=http://127.0.0.1:$QD_S3_PORT

s3_env() {
  cat <<ENV
export STORAGE_ENDPOINT=$ENDPOINT
export STORAGE_REGION=us-east-1
export STORAGE_ACCESS_KEY=$QD_S3_ACCESS_KEY
export STORAGE_ACCESS_SECRET=$QD_S3_SECRET_KEY
export STORAGE_BUCKET=$QD_S3_BUCKET
ENV
}

s3_ready() { curl -sf "$ENDPOINT/minio/health/ready" >/dev/null; }

build() {
  [ -x "$BIN" ] && return 0
  qd_require_cmd go "the Go toolchain (>= 1.24): https://go.dev/doc/install"
  qd_log "building MinIO $MINIO_VERSION from the Go module proxy (cold: ~4 min)"
  GOBIN=$(dirname "$BIN") CGO_ENABLED=0 go install "github.com/minio/minio@$MINIO_VERSION" \
    >"$QD_RUN/logs/minio-build.log" 2>&1 || qd_die "MinIO build failed; see $QD_RUN/logs/minio-build.log"
}

s3_start() {
  qd_require_cmd curl "curl (apt-get install curl)"
  if qd_running minio && s3_ready; then qd_log "already running on port $QD_S3_PORT"; else
    build
    qd_check_port "$QD_S3_PORT" minio QD_S3_PORT
    qd_check_port "$((QD_S3_PORT + 1))" "minio console" QD_S3_PORT
    mkdir -p "$DATA"
    MINIO_ROOT_USER=$QD_S3_ACCESS_KEY MINIO_ROOT_PASSWORD=$QD_S3_SECRET_KEY MINIO_BROWSER=off \
      MINIO_UPDATE=off qd_start_daemon minio "$BIN" server "$DATA" --quiet \
      --address "${QD_S3_ADDRESS:-$QD_BIND:$QD_S3_PORT}" --console-address "$QD_BIND:$((QD_S3_PORT + 1))"
    qd_wait minio 60 s3_ready
  fi
  # Create the bucket with an S3 call (no mc client needed).
  "$(dirname "$0")/s3_bucket.py" "$ENDPOINT" "$QD_S3_ACCESS_KEY" "$QD_S3_SECRET_KEY" "$QD_S3_BUCKET" \
    || qd_die "could not create bucket $QD_S3_BUCKET"
  qd_log "ready on $ENDPOINT (bucket $QD_S3_BUCKET)"
}

s3_stop() { qd_stop minio; }
s3_status() { qd_running minio && s3_ready; }

qd_main s3_start s3_stop s3_status s3_env "$@"
