#!/usr/bin/env bash
# Build the project's OCI images without a container engine and import them into the test
# node's containerd (hack/cluster/node.sh). The same images job_image/Dockerfile and
# operator/Dockerfile describe, from Debian packages and a host-built virtualenv:
#
#   layer 1  base: mmdebstrap of the host's Debian suite (minbase + python3, libmagic1,
#            ca-certificates, user qd 10001), cached as $QD_CACHE/images/base-*.tar
#   layer 2+ /opt/qd/venv: third-party requirements of the extra (rerank stacks its delta on the
#            extractor layer), built on the host with Debian's /usr/bin/python3 -m venv at the
#            in-image path /opt/qd/venv (an overlayfs mount in a private mount namespace)
#   last     the project itself (pip install --no-deps), keyed by a hash of its sources
#
# and an OCI layout written by hack/images/mkoci.py, streamed into `ctr -n k8s.io images import`.
# Every layer is cached; a warm rebuild only hashes the sources and compares manifest digests.
#
# Usage: hack/images/build.sh [extract|rerank|operator|pause|all|env]...   (default: all)
#   Images: localhost/qd-extractor, localhost/qd-extractor-rerank, localhost/qd-operator, each
#   tagged <version>-<12 hex of the manifest digest> and also <version>; localhost/pause:local.
#   Prints `export QD_*_IMAGE=...` lines (also kept in $QD_CACHE/images/refs.env); `env` prints
#   them without building.
set -euo pipefail
shopt -s inherit_errexit
QD_SERVICE=images
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../services/lib.sh"

IMG=$QD_CACHE/images
SOCK=${QD_CONTAINERD_SOCK:-$QD_RUN/node/containerd/containerd.sock}
REFS=$IMG/refs.env
PY=/usr/bin/python3          # Debian's interpreter: the image runs the same one at the same path
VENV=/opt/qd/venv
MKOCI=("$PY" "$HERE/mkoci.py")
VL=("$PY" "$HERE/venvlayer.py")
SRC_PATHS=(pyproject.toml README.md LICENSE common job_image operator devtools)
mkdir -p "$IMG"

ctr_() { ctr -a "$SOCK" -n k8s.io "$@"; }
human() { numfmt --to=iec --suffix=B "$1"; }
sha12() { sha256sum | cut -c1-12; }

print_env() { [ -f "$REFS" ] && cat "$REFS" || true; }

set_ref() {  # set_ref VAR VALUE: remember an image reference in refs.env
  touch "$REFS"
  { grep -v "^export $1=" "$REFS" || true; echo "export $1=$2"; } >"$REFS.tmp"
  sort -o "$REFS" "$REFS.tmp"; rm -f "$REFS.tmp"
}

node_ready() { [ -S "$SOCK" ] && ctr_ version >/dev/null 2>&1; }

# --- base layer -------------------------------------------------------------------------------
BASE_PKGS=python3,libmagic1,ca-certificates
host_suite() { . /etc/os-release && echo "${VERSION_CODENAME:-}"; }
host_python() { dpkg-query -W -f '${Version}' "python3.$("$PY" -c 'import sys; print(sys.version_info[1])')"; }

apt_sources() {  # the host's Debian sources (mmdebstrap pastes the file into the chroot)
  local f
  for f in ${QD_IMAGE_APT_SOURCES:-} /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    [ -n "$f" ] && [ -s "$f" ] && grep -qv '^[[:space:]]*\(#\|$\)' "$f" && { echo "$f"; return 0; }
  done
  qd_die "no Debian apt sources found (looked at /etc/apt/sources.list.d/debian.sources and /etc/apt/sources.list; set QD_IMAGE_APT_SOURCES)"
}

base_tar() {
  local suite key
  suite=$(host_suite)
  [ -n "$suite" ] && command -v dpkg-query >/dev/null || qd_die "the images are built from the host's Debian release; this host is not Debian"
  key=$(printf '%s\n' "$suite" "$IMAGE_BASE_STAMP" "$BASE_PKGS" "$(host_python)" v1 | sha12)
  echo "$IMG/base-$suite-$IMAGE_BASE_STAMP-$key.tar"
}

ensure_base() {
  local tar; tar=$(base_tar)
  [ -f "$tar" ] && return 0
  qd_apt_install mmdebstrap
  local suite src t0=$SECONDS
  suite=$(host_suite); src=$(apt_sources)
  qd_log "building the base layer (mmdebstrap $suite: $BASE_PKGS) from $src ..."
  rm -rf "$IMG"/base-*
  # Acquire::Check-*: the host's mirror may serve a dated snapshot whose Release files expired.
  if ! mmdebstrap --variant=minbase --include="$BASE_PKGS" \
      --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='Acquire::Check-Date "false"' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --customize-hook='chroot "$1" useradd --uid 10001 --user-group --home-dir /home/qd --no-create-home --shell /usr/sbin/nologin qd' \
      --customize-hook='mkdir -p "$1/work" "$1/home/qd" && chown 10001:10001 "$1/home/qd" "$1/work"' \
      --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*.log' \
      --skip=output/dev \
      "$suite" "${tar%.tar}.tmp.tar" "$src" >"$QD_RUN/logs/images-base.log" 2>&1; then
    tail -n 20 "$QD_RUN/logs/images-base.log" >&2
    qd_die "mmdebstrap failed; see $QD_RUN/logs/images-base.log"
  fi
  mv "${tar%.tar}.tmp.tar" "$tar"
  "${MKOCI[@]}" digest "$tar" >/dev/null
  local inbase
  inbase=$(tar -xOf "$tar" ./var/lib/dpkg/status | awk -v p="python3.${PYMINOR}" '$1=="Package:"{n=$2} $1=="Version:" && n==p {print $2}')
  [ "$inbase" = "$(host_python)" ] \
    || qd_log "note: the base has python3.$PYMINOR $inbase, the host $(host_python) (same minor version and ABI; the venv works with both)"
  qd_log "base layer ready in $((SECONDS - t0))s: $(basename "$tar") ($(human "$(stat -c %s "$tar")"))"
}
PYMINOR=$("$PY" -c 'import sys; print(sys.version_info[1])')

# --- /opt/qd/venv stages in a private mount namespace ----------------------------------------
MADE_MOUNTPOINT=()
ensure_mountpoint() {
  local d
  for d in /opt /opt/qd "$VENV"; do
    [ -d "$d" ] && continue
    mkdir "$d"; MADE_MOUNTPOINT=("$d" "${MADE_MOUNTPOINT[@]}")
  done
}
remove_mountpoint() {  # remove the empty directories ensure_mountpoint made (deepest first)
  local d
  for d in "${MADE_MOUNTPOINT[@]}"; do rmdir "$d" 2>/dev/null || true; done
}
trap remove_mountpoint EXIT

# in_venv UPPER LOWERS CMD...: run CMD with $VENV = overlay(LOWERS (colon list, top first), UPPER).
in_venv() {
  local upper=$1 lowers=$2; shift 2
  local work="$upper.work"
  rm -rf "$work"; mkdir -p "$upper" "$work"
  [ -d "$VENV" ] || qd_die "$VENV is missing (ensure_mountpoint runs first)"
  unshare --mount --propagation private -- /bin/bash -c '
    set -euo pipefail
    mount -t overlay qd-venv -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4"
    shift 4
    "$@"' _ "$lowers" "$upper" "$work" "$VENV" "$@"
  rm -rf "$work"
}

# venv_layer NAME EXTRA PREV_KEY PREV_LOWERS: prints "KEY LOWERS TAR" of the layer with EXTRA.
venv_layer() {
  local name=$1 extra=$2 prev_key=$3 prev_lowers=$4
  local reqs key dir tar lowers
  reqs=$("${VL[@]}" reqs "$QD_ROOT/pyproject.toml" "$extra")
  key=$(printf '%s\n' "$prev_key" "$extra" "$reqs" "$(host_python)" "$IMAGE_BASE_STAMP" v1 | sha12)
  dir=$IMG/venv/$name-$key; tar=$dir.tar
  lowers=$dir/upper${prev_lowers:+:$prev_lowers}
  if [ ! -f "$tar" ]; then
    local t0=$SECONDS log=$QD_RUN/logs/images-venv-$name.log
    qd_log "building venv layer $name ([$extra] requirements) ..."
    rm -rf "$dir"; mkdir -p "$dir"
    printf '%s\n' "$reqs" >"$dir/requirements.txt"
    local setup=":"
    [ -z "$prev_lowers" ] && setup="$PY -m venv $VENV"
    if ! in_venv "$dir/upper" "${prev_lowers:-$IMG/empty}" /bin/bash -c "
        set -euo pipefail
        $setup
        $VENV/bin/pip install --no-compile --disable-pip-version-check -r '$dir/requirements.txt'
        $PY '$HERE/venvlayer.py' compile '$dir/upper' $VENV >/dev/null" >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      qd_die "building the $name venv layer failed; see $log"
    fi
    "${MKOCI[@]}" layer "$dir/upper" "$tar.tmp" --prefix "${VENV#/}" --overlay >/dev/null
    mv "$tar.tmp" "$tar"; mv "$tar.tmp.sha256" "$tar.sha256"
    qd_log "venv layer $name ready in $((SECONDS - t0))s ($(human "$(stat -c %s "$tar")"))"
    prune "$IMG/venv" "$name-" "$name-$key"
  fi
  echo "$key $lowers $tar"
}

# app_layer IMAGE CHAIN_KEY LOWERS: prints the tar of the project installed over LOWERS.
app_layer() {
  local image=$1 chain_key=$2 lowers=$3
  local src_hash key dir tar
  src_hash=$("${VL[@]}" srchash "$QD_ROOT" "${SRC_PATHS[@]}")
  key=$(printf '%s\n' "$chain_key" "$src_hash" v1 | sha12)
  dir=$IMG/app/$image-$key; tar=$dir.tar
  if [ ! -f "$tar" ]; then
    local t0=$SECONDS log=$QD_RUN/logs/images-app-$image.log p
    rm -rf "$dir"; mkdir -p "$dir/src"
    for p in "${SRC_PATHS[@]}"; do
      cp -a "$QD_ROOT/$p" "$dir/src/"
    done
    find "$dir/src" \( -name __pycache__ -o -name '*.egg-info' -o -name build \) -prune -exec rm -rf {} +
    if ! in_venv "$dir/upper" "$lowers" /bin/bash -c "
        set -euo pipefail
        $VENV/bin/pip install --no-deps --no-compile --disable-pip-version-check '$dir/src'
        $PY '$HERE/venvlayer.py' compile '$dir/upper' $VENV >/dev/null" >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      qd_die "installing the project into the $image image failed; see $log"
    fi
    "${MKOCI[@]}" layer "$dir/upper" "$tar.tmp" --prefix "${VENV#/}" --overlay >/dev/null
    mv "$tar.tmp" "$tar"; mv "$tar.tmp.sha256" "$tar.sha256"
    rm -rf "$dir/src"
    qd_log "app layer for $image ready in $((SECONDS - t0))s ($(human "$(stat -c %s "$tar")"))"
    prune "$IMG/app" "$image-" "$image-$key"
  fi
  echo "$tar"
}

# prune DIR PREFIX KEEP: remove cached entries DIR/PREFIX* other than DIR/KEEP (and its tar).
prune() {
  local e
  for e in "$1/$2"*; do
    [ -e "$e" ] || continue
    case $(basename "$e") in "$3" | "$3".tar | "$3".tar.sha256) continue ;; esac
    rm -rf "$e"
  done
}

# --- image assembly and import ----------------------------------------------------------------
# publish REPO TAG_MODE CONFIG_JSON VAR LAYER...: import (when changed) and record the reference.
publish() {
  local repo=$1 tagmode=$2 config=$3 var=$4; shift 4
  local out digest size tag ref alias=""
  out=$("${MKOCI[@]}" image --config "$config" $(printf -- '--layer %s ' "$@"))
  digest=${out% *}; size=${out#* }
  if [ "$tagmode" = fixed ]; then
    ref=$repo
  else
    tag="$VERSION-$(echo "${digest#sha256:}" | cut -c1-12)"; ref=$repo:$tag; alias=$repo:$VERSION
  fi
  qd_require_cmd ctr "Debian's containerd (hack/cluster/node.sh up installs it)"
  node_ready || qd_die "the node's containerd does not answer on $SOCK: run hack/cluster/node.sh up first (the layers built so far are cached)"
  local have
  have=$(ctr_ images ls "name==$ref" 2>/dev/null | awk 'NR>1{print $3}')
  if [ "$have" = "$digest" ]; then
    qd_log "$ref is up to date ($(human "$size"))"
  else
    local t0=$SECONDS log=$QD_RUN/logs/images-import.log
    if ! "${MKOCI[@]}" image --config "$config" --ref "$ref" --out - $(printf -- '--layer %s ' "$@") 2>/dev/null \
        | ctr_ images import - >"$log" 2>&1; then
      cat "$log" >&2
      qd_die "ctr images import of $ref failed; see $log"
    fi
    qd_log "imported $ref ($(human "$size"), $# layers) in $((SECONDS - t0))s"
  fi
  if [ -n "$alias" ]; then
    ctr_ images tag --force "$ref" "$alias" >/dev/null
    # Drop older content-hash tags of this repository (their layers are shared or garbage).
    local old
    for old in $(ctr_ images ls -q | grep "^$repo:$VERSION-" | grep -vx "$ref" || true); do
      ctr_ images rm "$old" >/dev/null && qd_log "removed the older $old"
    done
  fi
  set_ref "$var" "$ref"
  BUILT+=("$ref $(human "$size")")
}

config_json() {  # config_json ENTRYPOINT CMD_JSON EXTRA_ENV_JSON [EXTRA_FIELDS_JSON]
  "$PY" - "$@" <<'PY'
import json, sys
entry, cmd, env, extra = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4:]
cfg = {
    "User": "10001",
    "Entrypoint": [entry],
    "Cmd": cmd,
    "WorkingDir": "/work",
    "Env": ["PATH=/opt/qd/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "PYTHONUNBUFFERED=1", *env],
    "Labels": {"org.opencontainers.image.title": "querido-diario-extractor"},
}
for item in extra:
    cfg.update(json.loads(item))
print(json.dumps(cfg, sort_keys=True))
PY
}

build_python_image() {  # build_python_image IMAGE
  local image=$1 chain entry cmd env extra="{}" repo var
  case $image in
    extract)  chain=(extractor); repo=localhost/qd-extractor; var=QD_EXTRACTOR_IMAGE
              entry=qd-extract; cmd='["--help"]'; env='["QD_WORK_DIR=/work"]' ;;
    # QD_IMAGE_TESTMODEL=1 adds the small test model package (tests only; never in a release image).
    rerank)   chain=(extractor rerank ${QD_IMAGE_TESTMODEL:+testmodel}); repo=localhost/qd-extractor-rerank
              var=QD_RERANK_IMAGE
              entry=qd-extract; cmd='["--help"]'
              env='["QD_WORK_DIR=/work", "HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "HOME=/home/qd"]' ;;
    operator) chain=(operator); repo=localhost/qd-operator; var=QD_OPERATOR_IMAGE
              entry=qd-operator; cmd='[]'; env='["PYTHONDONTWRITEBYTECODE=1"]'
              extra='{"ExposedPorts": {"8080/tcp": {}, "8081/tcp": {}}}' ;;
  esac
  local t0=$SECONDS key=base lowers="" layers=("$(base_tar)") out e
  ensure_base
  for e in "${chain[@]}"; do
    out=$(venv_layer "$e" "$e" "$key" "$lowers")
    read -r key lowers tar <<<"$out"
    layers+=("$tar")
  done
  layers+=("$(app_layer "$image" "$key" "$lowers")")
  publish "$repo" hashed "$(config_json "$entry" "$cmd" "$env" "$extra")" "$var" "${layers[@]}"
  qd_log "$image done in $((SECONDS - t0))s"
}

build_pause() {
  local t0=$SECONDS key dir
  qd_apt_install gcc libc6-dev
  key=$(cat "$QD_HACK_DIR/cluster/pause.c" <(gcc --version | head -n1) | sha12)
  dir=$IMG/pause-$key
  if [ ! -f "$dir.tar" ]; then
    rm -rf "$IMG"/pause-*; mkdir -p "$dir/root"
    gcc -Os -static -s -o "$dir/root/pause" "$QD_HACK_DIR/cluster/pause.c" \
      || qd_die "gcc -static failed for hack/cluster/pause.c (needs Debian gcc and libc6-dev)"
    "${MKOCI[@]}" layer "$dir/root" "$dir.tar" >/dev/null
  fi
  publish localhost/pause:local fixed '{"Entrypoint": ["/pause"], "User": "65535:65535"}' QD_PAUSE_IMAGE "$dir.tar"
  qd_log "pause done in $((SECONDS - t0))s"
}

main() {
  local what=("$@") t0=$SECONDS w
  [ ${#what[@]} -eq 0 ] && what=(all)
  if [ "${what[0]}" = env ]; then print_env; return 0; fi
  [ "$(id -u)" = 0 ] || qd_die "run as root: the venv layers are built in a private mount namespace (unshare, overlayfs)"
  qd_require_cmd unshare "util-linux"
  [ -x "$PY" ] || qd_die "$PY not found: install Debian's python3 and python3-venv"
  "$PY" -c 'import ensurepip' 2>/dev/null || qd_apt_install python3-venv
  mkdir -p "$IMG/empty" "$IMG/venv" "$IMG/app"
  VERSION=$("$PY" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$QD_ROOT/pyproject.toml")
  [ "${what[0]}" = all ] && what=(pause extract operator rerank)
  ensure_mountpoint   # in this shell, so that the EXIT trap removes what it made
  BUILT=()
  for w in "${what[@]}"; do
    case $w in
      extract|rerank|operator) build_python_image "$w" ;;
      pause) build_pause ;;
      *) echo "usage: $0 [extract|rerank|operator|pause|all|env]..." >&2; exit 2 ;;
    esac
  done
  qd_log "built in $((SECONDS - t0))s:"
  printf '  %s\n' "${BUILT[@]}" >&2
  print_env
}

main "$@"
