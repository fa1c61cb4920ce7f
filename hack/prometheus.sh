#!/usr/bin/env bash
# hack/prometheus.sh — Prometheus and promtool from Debian's `prometheus` package, for the alert
# and dashboard tests (tests/monitoring.rs, tests/deploy_render/alerts.rs).
#
# Usage: hack/prometheus.sh     # idempotent; about 5 s the first time, instant when cached
#
# The package is downloaded (apt-get download) and unpacked (dpkg-deb -x) into
# ${TFJOB_CACHE_DIR:-~/.cache/tfjob-operator}/prometheus, never installed: only its two Go
# binaries are used, which need nothing else. The last line of stdout is the directory holding
# bin/prometheus and bin/promtool.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HACK_SCRIPT_NAME=prometheus
# shellcheck source=hack/lib.sh
source "$ROOT/hack/lib.sh"

DIR="${TFJOB_CACHE_DIR:-$HOME/.cache/tfjob-operator}/prometheus"
if [[ -x $DIR/bin/prometheus && -x $DIR/bin/promtool ]]; then
    log "Prometheus already unpacked in $DIR ($("$DIR/bin/promtool" --version 2>&1 | head -n1))"
    echo "$DIR"
    exit 0
fi

started=$(now_ms)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
debian_unpack "$work/root" prometheus
rm -rf "$DIR"
mkdir -p "$DIR/bin"
mv "$work/root/usr/bin/prometheus" "$work/root/usr/bin/promtool" "$DIR/bin/"
log "Prometheus $("$DIR/bin/promtool" --version 2>&1 | head -n1 | awk '{print $3}') unpacked into $DIR in $(elapsed_since "$started")"
echo "$DIR"
