#!/usr/bin/env bash
# hack/bench.sh — the benchmark: tfjob-operator side by side with Kubernetes' Job controller and a
# bare client, on a fresh local control plane, in one go (about 17 minutes on 2 idle cores;
# --quick about 5).
#
# Usage:
#   hack/bench.sh [tfjob-bench flags]      e.g. --quick, --phases backlog,open-loop, --out /tmp/b
#
# Builds the release binaries (tfjob-operator, tfjob-sim-kubelet, tfjob-bench), installs the
# control plane if needed (hack/control-plane.sh install), then runs target/release/tfjob-bench,
# which starts and stops its own control plane and writes bench/results/latest.{json,md}, the
# charts (pods-over-time, backlog-pods-over-time, open-loop-latency) and the README's benchmark
# block. `target/release/tfjob-bench --help` lists every flag. Numbers depend on the machine's
# load: a run refuses to replace bench/results when the 1-minute load average is above 1.5
# (--max-load), and the table records the load average at start and end.
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HACK_DIR/.." && pwd)
HACK_SCRIPT_NAME=bench
# shellcheck source=hack/lib.sh
source "$HACK_DIR/lib.sh"

cd "$ROOT"
"$HACK_DIR/control-plane.sh" install
log "building release binaries"
cargo build --release --locked --package tfjob-operator --package sim-kubelet --package tfjob-bench --bins >&2
exec "$ROOT/target/release/tfjob-bench" "$@"
