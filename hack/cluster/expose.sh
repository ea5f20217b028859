#!/usr/bin/env bash
# Expose the loopback test services (and the API server) on the node's bridge address, so pods can reach them:
# one socat forwarder per service, listening on $QD_NODE_IP (10.244.0.1, the bridge node.sh made)
# and connecting to 127.0.0.1. The services themselves stay bound to loopback only.
# Usage: hack/cluster/expose.sh up|down|status|env
#   env prints the endpoints as pods must use them (POSTGRES_HOST=10.244.0.1, …).
set -euo pipefail
QD_SERVICE=expose
source "$(dirname "$0")/../services/lib.sh"
QD_NODE_IP=${QD_NODE_IP:-10.244.0.1}
QD_APISERVER_PORT=${QD_APISERVER_PORT:-16443}
# The API server too: without kube-proxy the `kubernetes` Service IP leads nowhere, so in-cluster
# clients (the operator pod) are pointed at the bridge with KUBERNETES_SERVICE_HOST/PORT.
PORTS=("postgres:$QD_PG_PORT" "minio:$QD_S3_PORT" "tika:$QD_TIKA_PORT" "opensearch:$QD_OS_PORT"
       "apiserver:$QD_APISERVER_PORT")

bridge_up() { ip -o addr show | grep " $QD_NODE_IP/" >/dev/null; }  # no -q: pipefail + SIGPIPE

listening() {  # listening PORT: something accepts on the bridge address
  python3 - "$QD_NODE_IP" "$1" <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(0.5)
sys.exit(0 if s.connect_ex((sys.argv[1], int(sys.argv[2]))) == 0 else 1)
PY
}

expose_up() {
  bridge_up || qd_die "no interface has $QD_NODE_IP: run hack/cluster/node.sh up first (it creates the bridge)"
  command -v socat >/dev/null 2>&1 || qd_apt_install socat
  for entry in "${PORTS[@]}"; do
    local name=${entry%%:*} port=${entry##*:}
    if qd_running "expose-$name" && listening "$port"; then continue; fi
    qd_start_daemon "expose-$name" socat "TCP-LISTEN:$port,bind=$QD_NODE_IP,reuseaddr,fork" "TCP:127.0.0.1:$port"
    qd_wait "expose-$name" 20 listening "$port"
  done
  qd_log "services reachable from pods on $QD_NODE_IP"
}

expose_down() {
  for entry in "${PORTS[@]}"; do qd_stop "expose-${entry%%:*}"; done
}

expose_status() {
  local rc=0
  for entry in "${PORTS[@]}"; do
    if qd_running "expose-${entry%%:*}" && listening "${entry##*:}"; then echo "expose-${entry%%:*}: running"
    else echo "expose-${entry%%:*}: stopped"; rc=1; fi
  done
  return $rc
}

expose_env() {
  cat <<ENV
export QD_POD_POSTGRES_HOST=$QD_NODE_IP
export QD_POD_STORAGE_ENDPOINT=http://$QD_NODE_IP:$QD_S3_PORT
export QD_POD_APACHE_TIKA_SERVER=http://$QD_NODE_IP:$QD_TIKA_PORT
export QD_POD_OPENSEARCH_HOST=http://$QD_NODE_IP:$QD_OS_PORT
export QD_POD_APISERVER_HOST=$QD_NODE_IP
export QD_POD_APISERVER_PORT=$QD_APISERVER_PORT
ENV
}

case "${1:-up}" in
  up) expose_up; expose_env ;;
  down) expose_down ;;
  status) expose_status ;;
  env) expose_env ;;
  *) echo "usage: $0 [up|down|status|env]" >&2; exit 2 ;;
esac
