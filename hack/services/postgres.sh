#!/usr/bin/env bash
# PostgreSQL from Debian packages, on loopback, with the upstream schema (gazettes, territories).
# Usage: postgres.sh [start|stop|status|env]. Idempotent: a running server is reused.
set -euo pipefail
QD_SERVICE=postgres
source "$(dirname "$0")/lib.sh"
PGBIN=/usr/lib/postgresql/$POSTGRES_MAJOR/bin
# As root the server runs as the 'postgres' user, which cannot enter a 0700 home: keep its
# files under /var/tmp then (QD_PG_DIR overrides).
if [ "$(id -u)" = 0 ]; then QD_PG_DIR=${QD_PG_DIR:-/var/tmp/qd-extractor-postgres}; fi
QD_PG_DIR=${QD_PG_DIR:-$QD_RUN/postgres}
DATA=$QD_PG_DIR/data

pg_env() {
  cat <<ENV
export POSTGRES_HOST=127.0.0.1
export POSTGRES_PORT=$QD_PG_PORT
export POSTGRES_DB=$QD_PG_DB
export POSTGRES_USER=$QD_PG_USER
export POSTGRES_PASSWORD=$QD_PG_PASSWORD
ENV
}

pg_ready() { "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$QD_PG_PORT"; }

pg_start() {
  if qd_running postgres && pg_ready; then qd_log "already running on port $QD_PG_PORT"; return 0; fi
  [ -x "$PGBIN/postgres" ] || qd_apt_install "postgresql-$POSTGRES_MAJOR"
  qd_check_port "$QD_PG_PORT" postgres QD_PG_PORT
  # initdb refuses root; the Debian package creates the 'postgres' system user. setpriv execs
  # in place (no fork), so the recorded pid is the postmaster's own.
  local user=postgres
  local as=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  if [ "$(id -u)" != 0 ]; then user=$(id -un); as=(); fi
  if [ ! -f "$DATA/PG_VERSION" ]; then
    mkdir -p "$DATA" && chown -R "$user" "$QD_PG_DIR"
    local pw; pw=$(mktemp); echo "$QD_PG_PASSWORD" >"$pw"; chown "$user" "$pw"
    "${as[@]}" "$PGBIN/initdb" -D "$DATA" -U "$QD_PG_USER" --pwfile="$pw" -A scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$QD_RUN/logs/postgres-initdb.log" 2>&1 \
      || { rm -f "$pw"; qd_die "initdb failed; see $QD_RUN/logs/postgres-initdb.log"; }
    rm -f "$pw"
  fi
  mkdir -p "$QD_PG_DIR/sock" && chown "$user" "$QD_PG_DIR/sock"
  if [ -n "${QD_PG_LISTEN:-}" ] && ! grep -q 'qd-pods' "$DATA/pg_hba.conf"; then
    echo "host all all 0.0.0.0/0 scram-sha-256 # qd-pods" >>"$DATA/pg_hba.conf"
  fi
  # Pass extra listen addresses (e.g. a test bridge) with QD_PG_LISTEN="127.0.0.1,10.244.0.1".
  qd_start_daemon postgres "${as[@]}" "$PGBIN/postgres" -D "$DATA" -p "$QD_PG_PORT" \
    -c listen_addresses="${QD_PG_LISTEN:-$QD_BIND}" -c unix_socket_directories="$QD_PG_DIR/sock" \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200
  qd_wait postgres 60 pg_ready
  PGPASSWORD=$QD_PG_PASSWORD "$PGBIN/psql" -q -h 127.0.0.1 -p "$QD_PG_PORT" -U "$QD_PG_USER" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='$QD_PG_DB'" | grep 1 >/dev/null \
    || PGPASSWORD=$QD_PG_PASSWORD "$PGBIN/createdb" -h 127.0.0.1 -p "$QD_PG_PORT" -U "$QD_PG_USER" "$QD_PG_DB"
  PGPASSWORD=$QD_PG_PASSWORD "$PGBIN/psql" -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$QD_PG_PORT" -U "$QD_PG_USER" \
    -d "$QD_PG_DB" -f "$QD_ROOT/hack/sql/upstream_schema.sql" >/dev/null
  qd_log "ready on 127.0.0.1:$QD_PG_PORT (database $QD_PG_DB)"
}

pg_stop() {
  if qd_running postgres; then
    # SIGINT = PostgreSQL's "fast" shutdown; qd_stop then waits for the pid.
    kill -INT "$(cat "$(qd_pidfile postgres)")" 2>/dev/null || true
  fi
  qd_stop postgres
}

pg_status() { qd_running postgres && pg_ready; }

qd_main pg_start pg_stop pg_status pg_env "$@"
