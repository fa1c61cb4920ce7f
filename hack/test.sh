#!/usr/bin/env bash
# hack/test.sh — the project's test command (the README's second command, and CI's).
#
# Installs what the tests need, once (the Kubernetes 1.20 binaries, built and cached under
# ~/.cache/tfjob-operator; later steps add their own tools), then runs: formatting, lint,
# unit tests, and the integration tests on a real local control plane (each test binary
# starts its own and stops it when it exits).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source hack/lib.sh

started=$(now_ms)
# Each step says how long the run has taken so far, so slow steps are easy to spot in CI logs.
step() { log "== $* == (at $(elapsed_since "$started"))"; }

require_cmd cargo "install the Rust toolchain (https://rustup.rs) and run this again."

step "Kubernetes binaries for the local control plane"
hack/control-plane.sh install

step "Helm and kustomize for the deploy/ tests (hack/helm/venv.sh; kubectl kustomize)"
hack/helm/venv.sh >/dev/null
require_cmd kubectl "install kubectl 1.27 or newer (its embedded kustomize builds deploy/kustomize) and run this again."

step "formatting (cargo fmt --check)"
cargo fmt --all -- --check || die "code is not formatted." "run: cargo fmt"

step "lint (cargo clippy -D warnings)"
cargo clippy --all-targets --locked -- -D warnings

step "unit and integration tests (cargo test)"
cargo test --locked -- --color=never

log "all tests passed in $(elapsed_since "$started")"
