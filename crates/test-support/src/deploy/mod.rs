//! Helpers of the deployment tests (`tests/deploy_render.rs`, `tests/deploy_install.rs`): the
//! Helm chart rendered by the real Helm engine ([`helm`]), the kustomize trees built by
//! `kubectl kustomize` ([`kustomize`]), the rendered objects ([`objects`]), the container
//! image ([`image`]), and, for the
//! installs on the control plane, applying them ([`cluster`]), the operator binary run under the
//! chart's ServiceAccount ([`process`]) and `kubectl auth can-i` ([`access`]).

pub mod access;
pub mod cluster;
pub mod helm;
pub mod image;
pub mod kustomize;
pub mod objects;
pub mod process;
pub mod prometheus;

use std::path::PathBuf;

pub use crate::{repo, repo_path};

/// The chart's directory.
pub fn chart_dir() -> PathBuf {
    repo_path("deploy/helm/tfjob-operator")
}

/// Where the chart installs in these tests: the namespace and ServiceAccount the harness's
/// operator token authenticates as (`system:serviceaccount:tfjob-system:tfjob-operator`), with
/// the default release name, so the chart's defaults produce exactly that identity.
pub const NAMESPACE: &str = "tfjob-system";
pub const RELEASE: &str = "tfjob-operator";
