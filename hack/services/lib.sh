# Shared helpers for the service scripts. Source it; it defines no side effects but variables.
#
# Layout (all outside the work tree):
#   $QD_CACHE            downloads and builds, keyed by the versions in hack/versions.env
#   $QD_RUN              live state: data dirs, logs, pid files (pids/<service>.pid)
# Every server binds to loopback (QD_BIND, default 127.0.0.1) unless told otherwise.

QD_HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QD_ROOT=$(cd "$QD_HACK_DIR/.." && pwd)
# shellcheck source=../versions.env
source "$QD_HACK_DIR/versions.env"

export QD_CACHE=${QD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qd-extractor}
export QD_RUN=${QD_RUN:-$QD_CACHE/run}
export QD_BIND=${QD_BIND:-127.0.0.1}
mkdir -p "$QD_CACHE/bin" "$QD_RUN/pids" "$QD_RUN/logs"

# Ports (override with the environment). OpenSearch must stay within 9201-9299: the runner
# only scans that range for its HTTP port.
export QD_PG_PORT=${QD_PG_PORT:-15432}
export QD_S3_PORT=${QD_S3_PORT:-19000}
export QD_TIKA_PORT=${QD_TIKA_PORT:-19998}
export QD_OS_PORT=${QD_OS_PORT:-9250}

# Credentials of the throw-away test services (never used for anything real).
export QD_PG_DB=${QD_PG_DB:-queridodiario}
export QD_PG_USER=${QD_PG_USER:-queridodiario}
export QD_PG_PASSWORD=${QD_PG_PASSWORD:-queridodiario}
export QD_S3_ACCESS_KEY=${QD_S3_ACCESS_KEY:-qdtestaccess}
export QD_S3_SECRET_KEY=${QD_S3_SECRET_KEY:-qdtestsecret}
export QD_S3_BUCKET=${QD_S3_BUCKET:-queridodiariobucket}

qd_log() { printf '[%s] %s\n' "${QD_SERVICE:-services}" "$*" >&2; }
qd_die() { qd_log "ERROR: $*"; exit 1; }

# qd_require_cmd CMD HOW: stop with a message naming what to install.
qd_require_cmd() {
  command -v "$1" >/dev/null 2>&1 || qd_die "'$1' not found: install $2"
}

# qd_apt_install PKG...: install Debian packages when missing (root only).
qd_apt_install() {
  local missing=()
  # "install ok installed" only: a removed package keeps a dpkg record ("deinstall ok config-files").
  for p in "$@"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || qd_die "missing Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})"
  qd_log "installing Debian packages: ${missing[*]}"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >"$QD_RUN/logs/apt.log" 2>&1; then
    apt-get update >>"$QD_RUN/logs/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >>"$QD_RUN/logs/apt.log" 2>&1 \
      || qd_die "apt-get install ${missing[*]} failed; see $QD_RUN/logs/apt.log"
  fi
}

qd_pidfile() { echo "$QD_RUN/pids/$1.pid"; }

# qd_running NAME: true when the recorded pid of NAME is alive.
qd_running() {
  local f; f=$(qd_pidfile "$1")
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

# qd_port_in_use PORT: true when something listens on PORT on loopback.
qd_port_in_use() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(0.5)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
PY
}

# qd_check_port PORT NAME VAR: stop with a clear message when PORT is taken by a stranger.
qd_check_port() {
  if qd_port_in_use "$1"; then
    qd_die "port $1 ($2) is already in use by another process; stop it or set $3 to a free port"
  fi
}

# qd_start_daemon NAME CMD...: start CMD in its own session, log to logs/NAME.log, record its pid.
qd_start_daemon() {
  local name=$1; shift
  setsid "$@" >"$QD_RUN/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$(qd_pidfile "$name")"
}

# qd_wait NAME TIMEOUT_S CMD...: poll CMD until it succeeds; fail if the daemon dies or time runs out.
qd_wait() {
  local name=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! qd_running "$name"; then
      tail -n 20 "$QD_RUN/logs/$name.log" >&2 || true
      qd_die "$name exited during start-up; log: $QD_RUN/logs/$name.log"
    fi
    [ $SECONDS -lt $deadline ] || qd_die "$name not healthy after ${timeout}s; log: $QD_RUN/logs/$name.log"
    sleep 0.5
  done
}

# qd_stop NAME: stop the recorded pid only (TERM, then KILL after 30 s), and forget it.
qd_stop() {
  local f pid; f=$(qd_pidfile "$1")
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
  qd_log "stopped (pid $pid)"
}

# qd_main START_FN STOP_FN STATUS_FN ENV_FN "$@": the subcommand dispatcher every script uses.
qd_main() {
  local start=$1 stop=$2 status=$3 envfn=$4; shift 4
  case "${1:-start}" in
    start) $start; $envfn ;;
    stop) $stop ;;
    status) if $status; then echo "${QD_SERVICE}: running"; else echo "${QD_SERVICE}: stopped"; return 1; fi ;;
    env) $envfn ;;
    *) echo "usage: $0 [start|stop|status|env]" >&2; return 2 ;;
  esac
}

# qd_eval [VAR=value...] CMD...: run CMD, stop if it fails, then eval the `export` lines it printed.
# (A bare eval "$(CMD)" would go on with an empty environment when CMD fails.)
qd_eval() {
  local out
  out=$(env "$@") || qd_die "failed: $*"
  eval "$out"
}
