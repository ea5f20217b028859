#!/usr/bin/env bash
# Test tier T3, "node": turns the running control plane (hack/cluster/controlplane.sh) into a
# one-node cluster with a real container runtime: Debian's containerd + runc + CNI plugins, the
# kube-scheduler and a kubelet (node1), all host processes. Pods get addresses on a bridge this
# script creates (cni0, 10.244.0.1/24, also the node IP): they reach host services bound on
# 10.244.0.1 and nothing else (no default route in pods, no forwarding, no masquerading).
#
# Usage: hack/cluster/node.sh up|down [--purge]|status|env
#   up      install what is missing (apt: containerd, runc, containernetworking-plugins), start
#           or reuse containerd, kube-scheduler and kubelet, wait until node1 is Ready; prints env
#   down    stop them (by recorded pid), delete the Node object, remove every sandbox and
#           container, unmount what they mounted, delete cni0, remove the cgroup subtree, restore
#           the sysctls the kubelet changed. The image store ($QD_CACHE/node/containerd, the imported images) is kept;
#           --purge removes it too.
#   status  one line per component; exit 1 if any is down or the node is not Ready
#   env     print the exports: eval "$(hack/cluster/node.sh env)" (includes the control plane's)
#
# Kubelet credentials: a client certificate for system:node:node1 (group system:nodes) signed by
# the control plane's CA, which the apiserver already trusts (--client-ca-file): no token file
# change and no apiserver restart. The Node authorizer and NodeRestriction apply as usual.
#
# Machine specifics (see the test-infrastructure reference): cgroup v1 with the cgroupfs driver
# under /qd-kubelet; no CAP_SYS_RESOURCE, hence containerd's restrict_oom_score_adj and the
# kubelet's maxOpenFiles 20000; the kubelet sets vm.overcommit_memory, kernel.panic,
# kernel.panic_on_oops (and more) at start: their old values are recorded and restored by down.
#
# State: $QD_RUN/node (configs, containerd state, kubelet root, pod logs); logs
# $QD_RUN/logs/node-*.log; pids $QD_RUN/pids/node-*.pid.
set -euo pipefail
shopt -s inherit_errexit
QD_SERVICE=node
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../services/lib.sh"

NODE_NAME=node1
QD_NODE_IP=${QD_NODE_IP:-10.244.0.1}     # the bridge address; controlplane.sh uses the same default
BRIDGE=cni0
NET_PREFIX=${QD_NODE_IP%.*}
POD_CIDR=$NET_PREFIX.0/24
export QD_KUBELET_PORT=${QD_KUBELET_PORT:-16250}                   # on $QD_NODE_IP (apiserver -> kubelet)
export QD_KUBELET_HEALTHZ_PORT=${QD_KUBELET_HEALTHZ_PORT:-16248}   # on 127.0.0.1
export QD_SCHEDULER_PORT=${QD_SCHEDULER_PORT:-16259}               # on 127.0.0.1
# Optional taint the node registers with, KEY=VALUE:EFFECT (e.g. qd.dev/node=real:NoSchedule),
# so that only pods tolerating it run here (the T2 tests expect their pods to stay Pending).
# It applies when the node registers, i.e. after `down`.
QD_NODE_TAINT=${QD_NODE_TAINT:-}
CGROUP_ROOT=qd-kubelet

CP=$QD_RUN/cluster
DIR=$QD_RUN/node
CTD_ROOT=$QD_CACHE/node/containerd
SOCK=$DIR/containerd/containerd.sock
K8S_BIN=$QD_CACHE/bin/k8s-$K8S_VERSION
KUBECTL=$K8S_BIN/kubectl
HOST_STATE=$DIR/host-state
# What the kubelet (and the CNI bridge plugin, for ip_forward) may change; restored by down.
SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
         kernel/keys/root_maxkeys kernel/keys/root_maxbytes net/ipv4/ip_forward)
# Host folders the components use whatever their configuration says: the kubelet's symlinks for
# log collectors and its device-plugin socket, libcni's result cache, the containerd 1.6 shims'
# sockets. down removes our entries there, and the folders if they did not exist before up.
LOG_LINKS=/var/log/containers
HOST_PATHS=("$LOG_LINKS" /var/lib/kubelet /var/lib/cni /run/containerd)

ctr_() { ctr -a "$SOCK" -n k8s.io "$@"; }
kc() { "$KUBECTL" --kubeconfig "$CP/admin.kubeconfig" "$@"; }

node_env() {
  bash "$HERE/controlplane.sh" env
  cat <<ENV
export QD_NODE=$NODE_NAME
export QD_NODE_IP=$QD_NODE_IP
export QD_NODE_DIR=$DIR
export QD_CONTAINERD_SOCK=$SOCK
export CONTAINER_RUNTIME_ENDPOINT=unix://$SOCK
ENV
}

# --- prerequisites ----------------------------------------------------------------------------
require_controlplane() {
  [ -f "$CP/admin.kubeconfig" ] && [ -f "$CP/pki/ca.key" ] && bash "$HERE/controlplane.sh" status >/dev/null 2>&1 \
    || qd_die "the control plane is not running: run hack/cluster/controlplane.sh up first"
}

ensure_tools() {
  [ "$(id -u)" = 0 ] || qd_die "run as root: the node needs a bridge, cgroups and mounts"
  qd_apt_install containerd runc containernetworking-plugins
  for t in ip openssl curl unshare mountpoint; do qd_require_cmd "$t" "iproute2, openssl, curl, util-linux"; done
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] \
    || qd_die "CNI plugins missing in /usr/lib/cni (apt-get install containernetworking-plugins)"
  if [ ! -x "$K8S_BIN/kubelet" ] || [ ! -x "$K8S_BIN/kube-scheduler" ]; then
    bash "$QD_HACK_DIR/k8s/build.sh" >/dev/null || qd_die "hack/k8s/build.sh failed (kubelet, kube-scheduler)"
  fi
  [ -x "$KUBECTL" ] || bash "$QD_HACK_DIR/tools/kubectl.sh" >/dev/null || qd_die "hack/tools/kubectl.sh failed"
}

# --- host state: recorded once, before the first component starts; restored by down -----------
record_host_state() {
  [ -f "$HOST_STATE" ] && return 0
  local s p tmp=$HOST_STATE.tmp
  : >"$tmp"
  for s in "${SYSCTLS[@]}"; do
    [ -r "/proc/sys/$s" ] && echo "sysctl $s $(cat "/proc/sys/$s")" >>"$tmp"
  done
  for p in "${HOST_PATHS[@]}"; do [ -e "$p" ] && echo "existed $p" >>"$tmp"; done
  ip link show "$BRIDGE" >/dev/null 2>&1 && echo "existed bridge" >>"$tmp"
  if command -v iptables-save >/dev/null 2>&1; then
    iptables-save 2>/dev/null | sed -n 's/^:\(KUBE-[A-Z-]*\) .*/iptables \1/p' >>"$tmp" || true
  fi
  mv "$tmp" "$HOST_STATE"
}

had() { grep -qx "$*" "$HOST_STATE" 2>/dev/null; }

# --- bridge, cgroups ----------------------------------------------------------------------------
make_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge || qd_die "cannot create bridge $BRIDGE"
  fi
  [ "$(cat "/sys/class/net/$BRIDGE/bridge/bridge_id" 2>/dev/null)" ] || qd_die "$BRIDGE exists but is not a bridge"
  if ! ip -4 addr show dev "$BRIDGE" | grep "inet $QD_NODE_IP/24" >/dev/null; then
    ip -4 addr show dev "$BRIDGE" | grep 'inet ' >/dev/null \
      && qd_die "$BRIDGE already has another IPv4 address ($(ip -4 -br addr show dev "$BRIDGE")); expected $QD_NODE_IP/24"
    ip addr add "$QD_NODE_IP/24" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
}

cgroup_dirs() {  # the subtree's folder in every mounted hierarchy (v1 controllers, name=systemd, unified)
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -f "$h/cgroup.procs" ] && echo "${h%/}/$CGROUP_ROOT"
  done
}

make_cgroups() {
  local d
  for d in $(cgroup_dirs); do
    mkdir -p "$d" || qd_die "cannot create cgroup $d"
    if [ -f "$d/cpuset.cpus" ]; then  # v1 cpuset children start empty
      [ -n "$(cat "$d/cpuset.cpus")" ] || cat "$(dirname "$d")/cpuset.cpus" >"$d/cpuset.cpus"
      [ -n "$(cat "$d/cpuset.mems")" ] || cat "$(dirname "$d")/cpuset.mems" >"$d/cpuset.mems"
    fi
  done
}

# --- containerd ---------------------------------------------------------------------------------
write_containerd_config() {
  mkdir -p "$DIR/containerd" "$DIR/cni/net.d" "$DIR/cni/ipam" "$CTD_ROOT"
  cat >"$DIR/containerd/config.toml" <<TOML
# Written by hack/cluster/node.sh (containerd 1.6, config version 2).
version = 2
root = "$CTD_ROOT"
state = "$DIR/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$DIR/containerd/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "localhost/pause:local"
    # Required here: without CAP_SYS_RESOURCE runc cannot lower oom_score_adj below our own.
    restrict_oom_score_adj = true
    tolerate_missing_hugetlb_controller = true
    netns_mounts_under_state_dir = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = "/usr/sbin/runc"
          Root = "$DIR/containerd/runc"
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$DIR/cni/net.d"
      max_conf_num = 1
TOML
  # No gateway role, no routes, no masquerading: pods reach $POD_CIDR (the host on $QD_NODE_IP)
  # and nothing else; the host's ip_forward stays as it is.
  cat >"$DIR/cni/net.d/10-qd-node.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "qd-node",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": false, "ipMasq": false, "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$QD_NODE_IP"}]],
               "dataDir": "$DIR/cni/ipam"}
    }
  ]
}
JSON
}

containerd_ready() { [ -S "$SOCK" ] && ctr -a "$SOCK" version >/dev/null 2>&1; }

start_containerd() {
  if qd_running node-containerd && containerd_ready; then return 0; fi
  qd_stop node-containerd >/dev/null 2>&1
  write_containerd_config
  qd_start_daemon node-containerd containerd --config "$DIR/containerd/config.toml"
  qd_wait node-containerd 60 containerd_ready
  ctr -a "$SOCK" plugins ls 2>/dev/null | awk '$2=="cri" && $NF!="ok"{exit 1}' \
    || qd_die "containerd's CRI plugin did not load; see $QD_RUN/logs/node-containerd.log"
  qd_log "containerd $(ctr -a "$SOCK" version 2>/dev/null | awk '/Server/{s=1} s&&/Version/{print $2; exit}') ready on $SOCK"
}

ensure_pause_image() {
  ctr_ images ls -q 2>/dev/null | grep -x localhost/pause:local >/dev/null && return 0
  QD_CONTAINERD_SOCK=$SOCK bash "$QD_HACK_DIR/images/build.sh" pause >/dev/null \
    || qd_die "building localhost/pause:local failed (hack/images/build.sh pause)"
}

# --- credentials ----------------------------------------------------------------------------------
cp_stamp() { cat "$CP/pki/ca.crt" "$CP/tokens.csv" | sha256sum | cut -c1-16; }

make_node_credentials() {
  local pki=$DIR/pki crt=$DIR/pki/kubelet-client.crt
  mkdir -p "$pki"; chmod 700 "$pki"
  if [ -f "$crt" ] && openssl verify -CAfile "$CP/pki/ca.crt" "$crt" >/dev/null 2>&1 \
      && openssl x509 -checkend 86400 -noout -in "$crt" >/dev/null 2>&1; then
    :
  else
    (
      cd "$pki"
      openssl req -newkey rsa:2048 -nodes -subj "/O=system:nodes/CN=system:node:$NODE_NAME" \
        -keyout kubelet-client.key -out kubelet-client.csr
      printf '%s\n' "extendedKeyUsage=clientAuth" "keyUsage=critical,digitalSignature,keyEncipherment" >client.ext
      openssl x509 -req -in kubelet-client.csr -CA "$CP/pki/ca.crt" -CAkey "$CP/pki/ca.key" \
        -set_serial "0x$(openssl rand -hex 12)" -days 365 -out kubelet-client.crt -extfile client.ext
    ) >"$QD_RUN/logs/node-pki.log" 2>&1 || qd_die "openssl failed; see $QD_RUN/logs/node-pki.log"
    chmod 600 "$pki/kubelet-client.key"
  fi
  local server
  server=$(sed -n 's/^ *server: *//p' "$CP/admin.kubeconfig" | head -n1)
  cat >"$DIR/kubelet.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: qd-controlplane
  cluster: {server: "$server", certificate-authority: "$CP/pki/ca.crt"}
users:
- name: system:node:$NODE_NAME
  user: {client-certificate: "$pki/kubelet-client.crt", client-key: "$pki/kubelet-client.key"}
contexts:
- name: node
  context: {cluster: qd-controlplane, user: "system:node:$NODE_NAME"}
current-context: node
YAML
  chmod 600 "$DIR/kubelet.kubeconfig"
}

# --- kube-scheduler ---------------------------------------------------------------------------------
scheduler_ready() { [ "$(curl -sk "https://127.0.0.1:$QD_SCHEDULER_PORT/healthz")" = ok ]; }

start_scheduler() {
  if qd_running node-scheduler && scheduler_ready && [ "$(cat "$DIR/scheduler.stamp" 2>/dev/null)" = "$(cp_stamp)" ]; then
    return 0
  fi
  qd_stop node-scheduler >/dev/null 2>&1
  qd_check_port "$QD_SCHEDULER_PORT" kube-scheduler QD_SCHEDULER_PORT
  local kcfg=$CP/kube-scheduler.kubeconfig
  [ -f "$kcfg" ] || qd_die "$kcfg is missing (hack/cluster/controlplane.sh writes it)"
  qd_start_daemon node-scheduler "$K8S_BIN/kube-scheduler" --kubeconfig="$kcfg" \
    --authentication-kubeconfig="$kcfg" --authorization-kubeconfig="$kcfg" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port="$QD_SCHEDULER_PORT" --profiling=false
  qd_wait node-scheduler 60 scheduler_ready
  cp_stamp >"$DIR/scheduler.stamp"
  qd_log "kube-scheduler ready (health on 127.0.0.1:$QD_SCHEDULER_PORT)"
}

# --- kubelet ------------------------------------------------------------------------------------------
write_kubelet_config() {
  mkdir -p "$DIR/kubelet" "$DIR/pod-logs" "$DIR/volume-plugins"
  # Pods get no resolver of the host (its nameserver is not an address pods may reach).
  echo "nameserver 127.0.0.1" >"$DIR/resolv.conf"
  cat >"$DIR/kubelet-config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$SOCK
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
failSwapOn: false
maxOpenFiles: 20000
oomScoreAdj: 0
address: $QD_NODE_IP
port: $QD_KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $QD_KUBELET_HEALTHZ_PORT
# Test node only: the kubelet API listens on the bridge address alone.
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
imageGCHighThresholdPercent: 100
evictionHard: {nodefs.available: "0%", nodefs.inodesFree: "0%", imagefs.available: "0%", imagefs.inodesFree: "0%"}
resolvConf: $DIR/resolv.conf
serializeImagePulls: false
protectKernelDefaults: false
podLogsDir: $DIR/pod-logs
volumePluginDir: $DIR/volume-plugins
YAML
  if [ -n "$QD_NODE_TAINT" ]; then
    [[ $QD_NODE_TAINT =~ ^([^=:]+)(=([^:]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$ ]] \
      || qd_die "QD_NODE_TAINT=$QD_NODE_TAINT is not KEY[=VALUE]:EFFECT"
    printf 'registerWithTaints:\n- {key: "%s", value: "%s", effect: %s}\n' \
      "${BASH_REMATCH[1]}" "${BASH_REMATCH[3]}" "${BASH_REMATCH[4]}" >>"$DIR/kubelet-config.yaml"
  fi
}

kubelet_healthy() { [ "$(curl -s "http://127.0.0.1:$QD_KUBELET_HEALTHZ_PORT/healthz")" = ok ]; }
node_ready() {
  [ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

start_kubelet() {
  if qd_running node-kubelet && kubelet_healthy && [ "$(cat "$DIR/kubelet.stamp" 2>/dev/null)" = "$(cp_stamp)" ]; then
    return 0
  fi
  qd_stop node-kubelet >/dev/null 2>&1
  qd_check_port "$QD_KUBELET_HEALTHZ_PORT" "kubelet healthz" QD_KUBELET_HEALTHZ_PORT
  write_kubelet_config
  qd_start_daemon node-kubelet "$K8S_BIN/kubelet" --config="$DIR/kubelet-config.yaml" \
    --kubeconfig="$DIR/kubelet.kubeconfig" --hostname-override="$NODE_NAME" --node-ip="$QD_NODE_IP" \
    --root-dir="$DIR/kubelet" --cert-dir="$DIR/kubelet/pki" --containerd="$SOCK"
  qd_wait node-kubelet 120 kubelet_healthy
  cp_stamp >"$DIR/kubelet.stamp"
  qd_log "kubelet v$K8S_VERSION healthy (API on $QD_NODE_IP:$QD_KUBELET_PORT)"
}

node_up() {
  local t0=$SECONDS
  ensure_tools
  require_controlplane
  mkdir -p "$DIR"; chmod 755 "$DIR"
  record_host_state
  make_bridge
  make_cgroups
  start_containerd
  ensure_pause_image
  make_node_credentials
  start_scheduler
  start_kubelet
  qd_wait node-kubelet 120 node_ready
  qd_log "node $NODE_NAME Ready in $((SECONDS - t0))s (node IP $QD_NODE_IP, pods on $POD_CIDR)"
  node_env
}

# --- teardown -------------------------------------------------------------------------------------------
# Pids of processes whose command line names our containerd socket (the runc shims).
our_shims() {
  local p
  for p in /proc/[0-9]*; do
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -- "-address $SOCK " >/dev/null && echo "${p#/proc/}"
  done
  return 0
}

remove_containers() {
  containerd_ready || return 0
  local ids c
  ids=$(ctr_ containers ls -q 2>/dev/null || true)
  [ -n "$ids" ] || return 0
  qd_log "removing $(echo "$ids" | wc -l) containers and sandboxes"
  for c in $ids; do ctr_ tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true; done
  for c in $ids; do
    for _ in $(seq 50); do
      ctr_ tasks ls 2>/dev/null | awk -v id="$c" '$1==id && $3=="RUNNING"{f=1} END{exit !f}' || break
      sleep 0.1
    done
    ctr_ tasks rm -f "$c" >/dev/null 2>&1 || true
    ctr_ containers rm "$c" >/dev/null 2>&1 || true
    rm -f /var/lib/cni/results/*-"$c"-*   # libcni's cached results (CNI DEL is not run here)
  done
}

# Kill what is left in our cgroup subtree (by pid, read from its cgroup.procs files).
kill_cgroup_procs() {
  local d pids
  for d in $(cgroup_dirs); do
    [ -d "$d" ] || continue
    pids=$(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
  done
}

unmount_under() {  # unmount every mount below the given folders, deepest first
  local m left
  for _ in 1 2 3; do
    left=0
    while read -r m; do
      [ -n "$m" ] || continue
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || left=1
    done < <(awk '{print $5}' /proc/self/mountinfo | sed 's/\\040/ /g' | while read -r mp; do
               for root in "$@"; do case $mp in "$root"/*) echo "$mp" ;; esac; done
             done | awk '{print length($0) " " $0}' | sort -rn | cut -d' ' -f2-)
    [ $left = 0 ] && break
  done
}

remove_cgroups() {
  local d
  for d in $(cgroup_dirs); do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ -d "$d" ] && qd_log "WARNING: could not remove cgroup $d (processes left: $(find "$d" -name cgroup.procs -exec cat {} + | tr '\n' ' '))"
  done
  return 0
}

restore_host_state() {
  [ -f "$HOST_STATE" ] || return 0
  local kind key value cur
  while read -r kind key value; do
    [ "$kind" = sysctl ] || continue
    cur=$(cat "/proc/sys/$key" 2>/dev/null || true)
    if [ "$cur" != "$value" ]; then
      echo "$value" >"/proc/sys/$key" && qd_log "restored $key=$value (was $cur)"
    fi
  done <"$HOST_STATE"
  [ -d "$LOG_LINKS" ] && find "$LOG_LINKS" -maxdepth 1 -type l -lname "$DIR/*" -delete 2>/dev/null
  rm -f /var/lib/cni/results/qd-node-*
  had existed /var/lib/kubelet || rm -f /var/lib/kubelet/device-plugins/kubelet.sock
  local p
  for p in "${HOST_PATHS[@]}"; do
    had existed "$p" || [ ! -d "$p" ] || find "$p" -depth -type d -empty -delete 2>/dev/null || true
  done
  if command -v iptables >/dev/null 2>&1; then
    local chain table
    # The kubelet's chains (it makes them only where iptables is installed).
    for chain in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
      had iptables "$chain" && continue
      for table in filter nat mangle; do
        while iptables -t "$table" -S 2>/dev/null | grep -- "-j $chain\$" >/dev/null; do
          iptables -t "$table" -S | grep -- "-j $chain\$" | head -n1 | sed 's/^-A/-D/' | xargs iptables -t "$table" 2>/dev/null || break
        done
        iptables -t "$table" -F "$chain" 2>/dev/null && iptables -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  fi
}

node_down() {
  local purge=${1:-}
  QD_SERVICE=node-kubelet qd_stop node-kubelet
  # The Node object this kubelet registered (the pod GC then removes the pods bound to it).
  if [ -f "$CP/admin.kubeconfig" ] && [ -x "$KUBECTL" ] && kc get node "$NODE_NAME" >/dev/null 2>&1; then
    kc delete node "$NODE_NAME" --wait=false >/dev/null 2>&1 && qd_log "deleted Node $NODE_NAME from the API"
  fi
  QD_SERVICE=node-scheduler qd_stop node-scheduler
  remove_containers
  QD_SERVICE=node-containerd qd_stop node-containerd
  local p
  for p in $(our_shims); do kill -KILL "$p" 2>/dev/null && qd_log "killed leftover shim $p"; done
  kill_cgroup_procs
  unmount_under "$DIR" "$CTD_ROOT"
  if ip link show "$BRIDGE" >/dev/null 2>&1 && ! had existed bridge; then
    ip link del "$BRIDGE" && qd_log "deleted bridge $BRIDGE"
  fi
  sleep 0.2
  remove_cgroups
  restore_host_state
  if [ -d "$DIR" ]; then
    if grep -q " $DIR/" /proc/self/mountinfo; then
      qd_die "mounts are left under $DIR (see /proc/self/mountinfo); not removing it"
    fi
    rm -rf --one-file-system "$DIR"
  fi
  if [ "$purge" = --purge ]; then
    grep -q " $CTD_ROOT/" /proc/self/mountinfo && qd_die "mounts are left under $CTD_ROOT; not removing it"
    rm -rf --one-file-system "$CTD_ROOT"
    rm -f "$QD_CACHE/images/refs.env"
    qd_log "removed the image store $CTD_ROOT"
  fi
  qd_log "node down"
}

node_status() {
  local rc=0
  if qd_running node-containerd && containerd_ready; then echo "containerd: running ($SOCK)"; else echo "containerd: stopped"; rc=1; fi
  if qd_running node-scheduler && scheduler_ready; then echo "kube-scheduler: running"; else echo "kube-scheduler: stopped"; rc=1; fi
  if qd_running node-kubelet && kubelet_healthy; then echo "kubelet: running"; else echo "kubelet: stopped"; rc=1; fi
  if [ $rc = 0 ] && [ -f "$CP/admin.kubeconfig" ] && node_ready; then echo "node $NODE_NAME: Ready ($QD_NODE_IP)"; else echo "node $NODE_NAME: not ready"; rc=1; fi
  return $rc
}

case "${1:-up}" in
  up|start) node_up ;;
  down|stop) node_down "${2:-}" ;;
  status) node_status ;;
  env) node_env ;;
  *) echo "usage: $0 [up|down [--purge]|status|env]" >&2; exit 2 ;;
esac
