#!/usr/bin/env bash
# hack/sdk-venv.sh — installs the Kubeflow Python SDK (kubeflow-training, pinned with its
# dependencies in tests/sdk/requirements.txt) into a cached virtualenv, for tests/sdk.rs.
#
# Usage: hack/sdk-venv.sh     # idempotent; about 15 s the first time, instant when cached
#
# The virtualenv lives in ${TFJOB_CACHE_DIR:-~/.cache/tfjob-operator}/sdk-venv; the last line of
# stdout is its python. A stamp file records the hash of the requirements, so a new pin reinstalls.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HACK_SCRIPT_NAME=sdk-venv
# shellcheck source=hack/lib.sh
source "$ROOT/hack/lib.sh"

VENV="${TFJOB_CACHE_DIR:-$HOME/.cache/tfjob-operator}/sdk-venv"
REQUIREMENTS="$ROOT/tests/sdk/requirements.txt"
STAMP="$VENV/.tfjob-requirements.sha256"
PYTHON="$VENV/bin/python"
want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)

if [[ -x $PYTHON && -f $STAMP && $(cat "$STAMP") == "$want" ]] &&
    "$PYTHON" -c 'import kubeflow.training' 2>/dev/null; then
    log "Kubeflow Python SDK already installed in $VENV"
    echo "$PYTHON"
    exit 0
fi

require_cmd python3 "install Python 3.10 or newer (apt-get install python3 python3-venv) and run this again."
started=$(now_ms)
log "creating a virtualenv in $VENV"
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
python3 -m venv "$VENV" ||
    die "python3 -m venv failed." "on Debian install the venv module: apt-get install python3-venv; then run this again."
log "installing $(grep -o '^kubeflow-training==[^ ]*' "$REQUIREMENTS") and its dependencies from PyPI"
if ! "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-input -r "$REQUIREMENTS"; then
    rm -rf "$VENV"
    die "pip could not install the SDK (see pip's message above)." "check that PyPI is reachable and run this again."
fi
"$PYTHON" -c 'import kubeflow.training' ||
    die "kubeflow-training installed but does not import (see above)." "remove $VENV and run this again."
echo "$want" >"$STAMP"
log "Kubeflow Python SDK ready in $VENV ($(elapsed_since "$started"))"
echo "$PYTHON"
