#!/usr/bin/env bash
# Build etcd (server) and etcdctl at the pinned ETCD_VERSION from the Go module proxy into
# $QD_CACHE/bin/etcd-$ETCD_VERSION/. etcd's modules carry `replace` lines (server/v3 replaces
# api/v3 => ../api, ...), so `go install` refuses them; a wrapper module that requires both
# modules at the tag resolves every go.etcd.io/etcd/* dependency to the same tag instead.
# Idempotent: prints the bin directory; builds only what is missing.
set -euo pipefail
QD_SERVICE=etcd-build
source "$(cd "$(dirname "$0")" && pwd)/../services/lib.sh"
OUT="$QD_CACHE/bin/etcd-$ETCD_VERSION"
if [ -x "$OUT/etcd" ] && [ -x "$OUT/etcdctl" ]; then echo "$OUT"; exit 0; fi
qd_require_cmd go "the Go toolchain (>= 1.24) from https://go.dev/dl (Debian 12's golang-go is 1.19, too old)"
MOD="$QD_CACHE/build/etcd-$ETCD_VERSION"
LOG="$QD_RUN/logs/etcd-build.log"
mkdir -p "$MOD" "$OUT"
cd "$MOD"
qd_log "building etcd v$ETCD_VERSION from the Go module proxy (cold: a few minutes); log: $LOG"
: >"$LOG"
if [ ! -f go.sum ]; then
  { [ -f go.mod ] || go mod init local/etcdbuild; } >>"$LOG" 2>&1
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@v$ETCD_VERSION" >>"$LOG" 2>&1 \
    || { rm -f go.sum; qd_die "go get etcd v$ETCD_VERSION failed; see $LOG"; }
fi
build() { # build NAME PACKAGE
  [ -x "$OUT/$1" ] && return 0
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OUT/$1.tmp" "$2" >>"$LOG" 2>&1 \
    || qd_die "building $1 ($2) failed; see $LOG"
  mv "$OUT/$1.tmp" "$OUT/$1"
}
build etcd go.etcd.io/etcd/server/v3
build etcdctl go.etcd.io/etcd/etcdctl/v3
got=$("$OUT/etcd" --version 2>&1 || true)
[[ $got == *"etcd Version: $ETCD_VERSION"* ]] || qd_die "$OUT/etcd does not report version $ETCD_VERSION: $got"
echo "$OUT"
