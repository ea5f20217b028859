#!/usr/bin/env bash
# Test tier T2, "control plane": etcd + kube-apiserver (RBAC on) + kube-controller-manager as
# host processes on loopback, built from the Go module proxy. No kubelet and no scheduler: pods
# stay Pending, and tests drive pod outcomes by patching pod status (the real Job controller
# reacts to that).
#
# Usage: hack/cluster/controlplane.sh up|down|status|env
#   up      build (cached) and start, or reuse, what is already up; prints the env (like `env`)
#   down    stop the components this script started (by recorded pid) and remove the state dir
#   status  one line per component; exit 1 if any is down
#   env     print `export KUBECONFIG=…` and friends: eval "$(hack/cluster/controlplane.sh env)"
#
# State (outside the work tree): $QD_RUN/cluster/ holds pki/, tokens.csv, etcd/ (data) and the
# kubeconfigs (admin.kubeconfig, kube-controller-manager.kubeconfig, kube-scheduler.kubeconfig,
# user.kubeconfig). admin.kubeconfig also carries a context `qd-user` for the non-admin user.
# Logs: $QD_RUN/logs/cluster-*.log; pids: $QD_RUN/pids/cluster-*.pid.
set -euo pipefail
QD_SERVICE=controlplane
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../services/lib.sh"

export QD_ETCD_PORT=${QD_ETCD_PORT:-23790}
export QD_ETCD_PEER_PORT=${QD_ETCD_PEER_PORT:-23800}
export QD_APISERVER_PORT=${QD_APISERVER_PORT:-16443}
export QD_KCM_PORT=${QD_KCM_PORT:-16257}
# The address the apiserver advertises in the `kubernetes` Endpoints (never bound here). It is
# the bridge address the node tier creates; the apiserver itself listens on loopback only.
QD_NODE_IP=${QD_NODE_IP:-10.244.0.1}
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1

DIR=$QD_RUN/cluster
PKI=$DIR/pki
K8S_BIN=$QD_CACHE/bin/k8s-$K8S_VERSION
ETCD_BIN=$QD_CACHE/bin/etcd-$ETCD_VERSION
SERVER=https://127.0.0.1:$QD_APISERVER_PORT
COMPONENTS=(cluster-etcd cluster-apiserver cluster-kcm)

cp_env() {
  cat <<ENV
export QD_CLUSTER=controlplane
export QD_CLUSTER_DIR=$DIR
export KUBECONFIG=$DIR/admin.kubeconfig
export QD_KUBECTL=$K8S_BIN/kubectl
ENV
}

# --- binaries -------------------------------------------------------------------------------
ensure_binaries() {
  bash "$QD_HACK_DIR/k8s/build.sh" >/dev/null || qd_die "hack/k8s/build.sh failed"
  bash "$QD_HACK_DIR/tools/etcd.sh" >/dev/null || qd_die "hack/tools/etcd.sh failed"
  bash "$QD_HACK_DIR/tools/kubectl.sh" >/dev/null || qd_die "hack/tools/kubectl.sh failed"
}

# --- PKI, tokens, kubeconfigs (made once per state dir) ------------------------------------------
make_pki() {
  if [ -f "$PKI/.done" ]; then
    openssl x509 -checkend 86400 -noout -in "$PKI/apiserver.crt" >/dev/null \
      || qd_die "the test cluster's certificates in $PKI expire within a day: run '$0 down' then '$0 up'"
    return 0
  fi
  qd_require_cmd openssl "openssl (apt-get install openssl)"
  rm -rf "$PKI"; mkdir -p "$PKI"; chmod 700 "$DIR" "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=qd-test-cluster-ca" \
      -keyout ca.key -out ca.crt \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr
    printf '%s\n' \
      "subjectAltName=IP:127.0.0.1,IP:$SERVICE_IP,IP:$QD_NODE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
      "extendedKeyUsage=serverAuth" "keyUsage=critical,digitalSignature,keyEncipherment" >san.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
      -out apiserver.crt -extfile san.ext
    openssl genrsa -out sa.key 2048
    openssl rsa -in sa.key -pubout -out sa.pub
  ) >"$QD_RUN/logs/cluster-pki.log" 2>&1 || qd_die "openssl failed; see $QD_RUN/logs/cluster-pki.log"
  chmod 600 "$PKI"/*.key
  # Static tokens (token,user,uid,"groups"), random per state dir.
  local admin kcm sched user
  admin=$(openssl rand -hex 16); kcm=$(openssl rand -hex 16)
  sched=$(openssl rand -hex 16); user=$(openssl rand -hex 16)
  cat >"$DIR/tokens.csv" <<CSV
$admin,admin,admin,"system:masters"
$kcm,system:kube-controller-manager,kube-controller-manager
$sched,system:kube-scheduler,kube-scheduler
$user,qd-user,qd-user,"qd:testers"
CSV
  chmod 600 "$DIR/tokens.csv"
  kubeconfig "$DIR/admin.kubeconfig" admin "$admin" qd-user "$user"
  kubeconfig "$DIR/kube-controller-manager.kubeconfig" kube-controller-manager "$kcm"
  kubeconfig "$DIR/kube-scheduler.kubeconfig" kube-scheduler "$sched"
  kubeconfig "$DIR/user.kubeconfig" qd-user "$user"
  touch "$PKI/.done"
}

# kubeconfig FILE USER TOKEN [USER2 TOKEN2]: the first user is the current context.
kubeconfig() {
  local f=$1 u=$2 t=$3 u2=${4:-} t2=${5:-}
  {
    cat <<YAML
apiVersion: v1
kind: Config
clusters:
- name: qd-controlplane
  cluster:
    server: $SERVER
    certificate-authority: $PKI/ca.crt
users:
- name: $u
  user:
    token: $t
YAML
    [ -n "$u2" ] && printf -- '- name: %s\n  user:\n    token: %s\n' "$u2" "$t2"
    cat <<YAML
contexts:
- name: $u
  context: {cluster: qd-controlplane, user: $u}
YAML
    [ -n "$u2" ] && printf -- '- name: %s\n  context: {cluster: qd-controlplane, user: %s}\n' "$u2" "$u2"
    echo "current-context: $u"
  } >"$f"
  chmod 600 "$f"
}

admin_token() { cut -d, -f1 "$DIR/tokens.csv" | head -n1; }

# --- health checks ---------------------------------------------------------------------------------
etcd_ready() { curl -sf "http://127.0.0.1:$QD_ETCD_PORT/health" | grep '"health":"true"' >/dev/null; }
apiserver_ready() {
  [ "$(curl -s --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(admin_token)" "$SERVER/readyz")" = ok ]
}
kcm_ready() { [ "$(curl -sk "https://127.0.0.1:$QD_KCM_PORT/healthz")" = ok ]; }

# --- components --------------------------------------------------------------------------------
start_etcd() {
  if qd_running cluster-etcd && etcd_ready; then return 0; fi
  qd_stop cluster-etcd >/dev/null 2>&1
  qd_check_port "$QD_ETCD_PORT" "etcd client" QD_ETCD_PORT
  qd_check_port "$QD_ETCD_PEER_PORT" "etcd peer" QD_ETCD_PEER_PORT
  mkdir -p "$DIR/etcd"; chmod 700 "$DIR/etcd"
  # --unsafe-no-fsync: a throw-away test store; fsync dominates etcd latency on CI disks.
  qd_start_daemon cluster-etcd "$ETCD_BIN/etcd" --name qd --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$QD_ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$QD_ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$QD_ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$QD_ETCD_PEER_PORT" \
    --initial-cluster "qd=http://127.0.0.1:$QD_ETCD_PEER_PORT" \
    --unsafe-no-fsync --log-level warn
  qd_wait cluster-etcd 60 etcd_ready
  qd_log "etcd $ETCD_VERSION ready on 127.0.0.1:$QD_ETCD_PORT"
}

start_apiserver() {
  if qd_running cluster-apiserver && apiserver_ready; then return 0; fi
  qd_stop cluster-apiserver >/dev/null 2>&1
  qd_check_port "$QD_APISERVER_PORT" kube-apiserver QD_APISERVER_PORT
  qd_start_daemon cluster-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$QD_ETCD_PORT" \
    --bind-address=127.0.0.1 --secure-port="$QD_APISERVER_PORT" --advertise-address="$QD_NODE_IP" \
    --cert-dir="$DIR/apiserver-certs" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" --token-auth-file="$DIR/tokens.csv" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" --allow-privileged=true \
    --kubelet-preferred-address-types=InternalIP --profiling=false
  qd_wait cluster-apiserver 180 apiserver_ready
  qd_log "kube-apiserver v$K8S_VERSION ready on $SERVER"
}

start_kcm() {
  if qd_running cluster-kcm && kcm_ready; then return 0; fi
  qd_stop cluster-kcm >/dev/null 2>&1
  qd_check_port "$QD_KCM_PORT" kube-controller-manager QD_KCM_PORT
  # Its health port serves only the always-allowed /healthz, /readyz, /livez (no delegated
  # authn/z). --flex-volume-plugin-dir: the default /usr/libexec/kubernetes/... would be created
  # on the host.
  qd_start_daemon cluster-kcm "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$DIR/kube-controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$QD_KCM_PORT" --cert-dir="$DIR/kcm-certs" \
    --leader-elect=false --controllers='*,-nodeipam' \
    --root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
    --use-service-account-credentials=true \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" --profiling=false \
    --flex-volume-plugin-dir="$DIR/flexvolume"
  qd_wait cluster-kcm 120 kcm_ready
  qd_log "kube-controller-manager ready (health on 127.0.0.1:$QD_KCM_PORT)"
}

cp_up() {
  qd_require_cmd curl "curl (apt-get install curl)"
  local t0=$SECONDS
  ensure_binaries
  mkdir -p "$DIR"; chmod 700 "$DIR"
  make_pki
  start_etcd
  start_apiserver
  start_kcm
  qd_log "control plane up in $((SECONDS - t0))s: KUBECONFIG=$DIR/admin.kubeconfig"
  cp_env
}

cp_down() {
  local i
  for (( i=${#COMPONENTS[@]}-1; i>=0; i-- )); do QD_SERVICE=${COMPONENTS[$i]} qd_stop "${COMPONENTS[$i]}"; done
  rm -rf "$DIR"
}

cp_status() {
  local rc=0
  if qd_running cluster-etcd && etcd_ready; then echo "etcd: running (127.0.0.1:$QD_ETCD_PORT)"; else echo "etcd: stopped"; rc=1; fi
  if qd_running cluster-apiserver && [ -f "$DIR/tokens.csv" ] && apiserver_ready; then
    echo "kube-apiserver: running ($SERVER)"; else echo "kube-apiserver: stopped"; rc=1; fi
  if qd_running cluster-kcm && kcm_ready; then echo "kube-controller-manager: running"; else echo "kube-controller-manager: stopped"; rc=1; fi
  return $rc
}

case "${1:-up}" in
  up|start) cp_up ;;
  down|stop) cp_down ;;
  status) cp_status ;;
  env) cp_env ;;
  *) echo "usage: $0 [up|down|status|env]" >&2; exit 2 ;;
esac
