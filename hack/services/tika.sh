#!/usr/bin/env bash
# Apache Tika server (tika-server-standard, the self-contained jar from Maven Central) on
# loopback, without forking a child JVM, with a bounded heap (QD_TIKA_HEAP, default 512m).
# Usage: tika.sh [start|stop|status|env]. Idempotent.
set -euo pipefail
QD_SERVICE=tika
source "$(dirname "$0")/lib.sh"
JAR=$QD_CACHE/tika-$TIKA_VERSION/tika-server-standard.jar
URL=http://127.0.0.1:$QD_TIKA_PORT

tika_env() { echo "export APACHE_TIKA_SERVER=$URL"; }
tika_ready() { curl -sf "$URL/version" | grep "Apache Tika" >/dev/null; }

fetch() {
  [ -f "$JAR" ] && return 0
  qd_require_cmd java "a Java runtime >= 11 (apt-get install default-jre-headless)"
  qd_require_cmd mvn "Apache Maven (apt-get install maven)"
  qd_log "fetching tika-server-standard $TIKA_VERSION from Maven Central"
  mvn -q -B -Dmaven.repo.local="$QD_CACHE/m2" dependency:copy \
    -Dartifact="org.apache.tika:tika-server-standard:$TIKA_VERSION" -DoutputDirectory="$(dirname "$JAR").tmp" \
    >"$QD_RUN/logs/tika-fetch.log" 2>&1 || qd_die "Maven could not fetch Tika; see $QD_RUN/logs/tika-fetch.log"
  mkdir -p "$(dirname "$JAR")"
  mv "$(dirname "$JAR").tmp/tika-server-standard-$TIKA_VERSION.jar" "$JAR"
  rm -rf "$(dirname "$JAR").tmp"
}

tika_start() {
  qd_require_cmd curl "curl (apt-get install curl)"
  if qd_running tika && tika_ready; then qd_log "already running on port $QD_TIKA_PORT"; return 0; fi
  fetch
  qd_check_port "$QD_TIKA_PORT" tika QD_TIKA_PORT
  qd_start_daemon tika java "-Xmx${QD_TIKA_HEAP:-512m}" -XX:+UseSerialGC -jar "$JAR" \
    --host "${QD_TIKA_HOST:-$QD_BIND}" --port "$QD_TIKA_PORT" -noFork
  qd_wait tika 120 tika_ready
  qd_log "ready on $URL"
}

tika_stop() { qd_stop tika; }
tika_status() { qd_running tika && tika_ready; }

qd_main tika_start tika_stop tika_status tika_env "$@"
