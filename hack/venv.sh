#!/usr/bin/env bash
# Create (or reuse) the development virtualenv outside the work tree and print its path.
# The venv is keyed by pyproject.toml, so a dependency change builds a fresh one; the project
# itself is installed editable from this checkout every time (fast, and the clone path may move).
# Usage: hack/venv.sh [EXTRAS]   (default extras: dev)
set -euo pipefail
QD_SERVICE=venv
source "$(dirname "$0")/services/lib.sh"
EXTRAS=${1:-dev}
PY=/usr/bin/python3   # Debian's interpreter: the job image's venv layer uses the same path.
[ -x "$PY" ] || qd_apt_install python3
"$PY" -c 'import ensurepip, venv' 2>/dev/null || qd_apt_install python3-venv
qd_apt_install libmagic1   # python-magic's library (type detection by content)
KEY=$( (cat "$QD_ROOT/pyproject.toml"; echo "$EXTRAS"; "$PY" -V) | sha256sum | cut -c1-12)
VENV="$QD_CACHE/venv-$KEY"
if [ ! -f "$VENV/.complete" ]; then
  qd_log "creating $VENV (extras: $EXTRAS)"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip >"$QD_RUN/logs/pip.log" 2>&1
  "$VENV/bin/pip" install -q -e "$QD_ROOT[$EXTRAS]" >>"$QD_RUN/logs/pip.log" 2>&1 \
    || { tail -n 30 "$QD_RUN/logs/pip.log" >&2; qd_die "pip install failed; see $QD_RUN/logs/pip.log"; }
  touch "$VENV/.complete"
else
  "$VENV/bin/pip" install -q --no-deps -e "$QD_ROOT" >"$QD_RUN/logs/pip.log" 2>&1 \
    || { tail -n 30 "$QD_RUN/logs/pip.log" >&2; qd_die "pip install -e failed; see $QD_RUN/logs/pip.log"; }
fi
echo "$VENV"
