#!/usr/bin/env bash
# hack/helm/venv.sh — installs Helm (as the Python library helm-python-sdk, pinned in
# requirements.txt beside this script) into a cached virtualenv, for the chart tests.
#
# Usage: hack/helm/venv.sh          # idempotent; about 10 s the first time, instant when cached
#
# The virtualenv lives in ${TFJOB_CACHE_DIR:-~/.cache/tfjob-operator}/venv. The last line of
# stdout is its python, which hack/helm/helm.py runs under (the tests find it there by
# themselves; TFJOB_HELM_PYTHON overrides). A stamp file records the hash of requirements.txt,
# so changing the pin reinstalls.
set -euo pipefail

HELM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HACK_SCRIPT_NAME=helm-venv
# shellcheck source=hack/lib.sh
source "$HELM_DIR/../lib.sh"

CACHE_DIR=${TFJOB_CACHE_DIR:-$HOME/.cache/tfjob-operator}
VENV="$CACHE_DIR/venv"
REQUIREMENTS="$HELM_DIR/requirements.txt"
STAMP="$VENV/.tfjob-requirements.sha256"
PYTHON="$VENV/bin/python"

want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)

# Cached: the stamp matches the pin and the library loads (its Go runtime included).
if [[ -x $PYTHON && -f $STAMP && $(cat "$STAMP") == "$want" ]] &&
    "$PYTHON" -c 'import helm_python' 2>/dev/null; then
    log "Helm library already installed in $VENV"
    echo "$PYTHON"
    exit 0
fi

require_cmd python3 "install Python 3.10 or newer (apt-get install python3 python3-venv) and run this again."
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    die "python3 is $(python3 --version 2>&1); helm-python-sdk needs Python 3.10 or newer." \
        "install a newer python3 and run this again."

started=$(now_ms)
log "creating a virtualenv in $VENV"
rm -rf "$VENV"
mkdir -p "$CACHE_DIR"
python3 -m venv "$VENV" ||
    die "python3 -m venv failed." "on Debian install the venv module: apt-get install python3-venv; then run this again."

# The wheel is about 75 MB (Helm's Go SDK compiled into a shared library).
log "installing $(grep -o '^helm-python-sdk==[^ ]*' "$REQUIREMENTS") from PyPI (about 75 MB)"
if ! "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-input \
    --require-hashes -r "$REQUIREMENTS"; then
    rm -rf "$VENV"
    die "pip could not install helm-python-sdk (see pip's message above)." \
        "check that PyPI is reachable; a hash mismatch means the wheel for this platform is not the" \
        "pinned x86_64 Linux one: add its hash to $REQUIREMENTS."
fi

versions=$("$PYTHON" -c 'import helm_python as h; print(h.helm_sdk_version(), h.helm_c_version())') ||
    die "helm-python-sdk installed but does not load (see the error above)." \
        "remove $VENV and run this again."
echo "$want" >"$STAMP"
log "Helm $versions ready in $VENV ($(elapsed_since "$started"))"
echo "$PYTHON"
