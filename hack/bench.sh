#!/usr/bin/env bash
# hack/bench.sh — the benchmark: tfjob-operator side by side with Kubernetes' Job controller and a
# bare client, on a fresh local control plane, in one go (about 10 minutes on 2 idle cores,
# most of it caching 10,000 TFJobs).
#
# Usage:
#   hack/bench.sh [tfjob-bench flags]      e.g. --jobs 250, --memory-jobs 2000, --phases bare,tfjob
#
# Builds the release binaries (tfjob-operator, tfjob-sim-kubelet, tfjob-bench), installs the
# control plane if needed (hack/control-plane.sh install), then runs target/release/tfjob-bench,
# which starts and stops its own control plane and writes bench/results/latest.{json,md} and
# bench/results/pods-over-time.png. `target/release/tfjob-bench --help` lists every flag.
# Numbers depend on the machine's load: the table records the load average at start and end.
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
read -r load1 _ </proc/loadavg
if awk -v l="$load1" 'BEGIN { exit !(l > 1.5) }'; then
    warn "load average is $load1: other work competes for the CPU; numbers will be lower than on an idle machine"
fi
exec "$ROOT/target/release/tfjob-bench" "$@"
