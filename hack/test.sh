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

step "the CRD-only Kubernetes 1.36 apiserver for tests/crd_current.rs (hack/crd-apiserver.sh; ~6 minutes once)"
hack/crd-apiserver.sh install

step "Helm and kustomize for the deploy/ tests (hack/helm/venv.sh; kubectl kustomize)"
hack/helm/venv.sh >/dev/null
require_cmd kubectl "install kubectl 1.27 or newer (its embedded kustomize builds deploy/kustomize) and run this again."

step "the Kubeflow Python SDK for tests/sdk.rs (hack/sdk-venv.sh)"
hack/sdk-venv.sh >/dev/null

step "Prometheus and promtool for the alert and dashboard tests (hack/prometheus.sh)"
hack/prometheus.sh >/dev/null

step "skopeo, to check the container image (hack/skopeo.sh)"
hack/skopeo.sh >/dev/null

step "cargo-deny (licences, bans, sources of every dependency; see deny.toml)"
# Built from crates.io once into the cache (about 7 CPU-minutes, ~4 minutes on an idle 2-core
# machine), then reused. Advisories need the RustSec database from GitHub, which is not
# reachable from this project's machines, so that check is not run here.
CARGO_DENY_VERSION=0.20.2
CARGO_DENY_ROOT=${TFJOB_CACHE_DIR:-$HOME/.cache/tfjob-operator}/cargo-deny
CARGO_DENY="$CARGO_DENY_ROOT/bin/cargo-deny"
if [[ ! -x $CARGO_DENY ]] || [[ $("$CARGO_DENY" --version 2>/dev/null) != "cargo-deny $CARGO_DENY_VERSION" ]]; then
    log "installing cargo-deny $CARGO_DENY_VERSION into $CARGO_DENY_ROOT (once)"
    deny_started=$(now_ms)
    cargo install --quiet --locked --force cargo-deny --version "$CARGO_DENY_VERSION" --root "$CARGO_DENY_ROOT" ||
        die "cargo install cargo-deny failed (see above)." "Check access to crates.io and run this again."
    log "cargo-deny installed in $(elapsed_since "$deny_started")"
fi
"$CARGO_DENY" --locked check licenses bans sources ||
    die "cargo deny found a dependency problem (above)." "Fix it, or change deny.toml if the dependency is acceptable."

step "formatting (cargo fmt --check)"
cargo fmt --all -- --check || die "code is not formatted." "run: cargo fmt"

step "lint (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "release binary (the large-job test runs what users run; ~7 minutes cold: fat LTO, see Cargo.toml)"
cargo build --release --locked --bin tfjob-operator

step "unit and integration tests (cargo test)"
cargo test --workspace --locked -- --color=never

log "all tests passed in $(elapsed_since "$started")"
