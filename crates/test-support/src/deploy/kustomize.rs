//! The kustomize trees under `deploy/kustomize/`, built by kubectl's embedded kustomize (what
//! `kubectl apply -k` runs).

use std::process::Command;

use serde_json::Value;

use super::{objects, repo_path};

/// Every kustomization users can apply: the base and each overlay.
pub const TREES: &[&str] = &[
    "deploy/kustomize/base",
    "deploy/kustomize/overlays/cluster-wide",
    "deploy/kustomize/overlays/single-namespace",
    "deploy/kustomize/overlays/leader-election",
    "deploy/kustomize/overlays/without-webhook",
];

/// `kubectl kustomize DIR` as YAML; Err with kubectl's message when the build fails.
pub fn build_yaml(dir: &str) -> Result<String, String> {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(repo_path(dir))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run kubectl ({e}); install kubectl (it embeds kustomize)")
        });
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// The objects of `kubectl kustomize DIR`; panics if the build fails.
pub fn build(dir: &str) -> Vec<Value> {
    let yaml = build_yaml(dir).unwrap_or_else(|e| panic!("kubectl kustomize {dir} failed:\n{e}"));
    objects::parse_stream(&yaml)
}
