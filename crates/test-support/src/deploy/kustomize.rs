//! The kustomize trees under `deploy/kustomize/`, built by kubectl's embedded kustomize (what
//! `kubectl apply -k` runs).

use std::process::Command;

use serde_json::{Value, json};

use super::{objects, repo_path};

/// Every kustomization users can apply as it is: the base and each overlay.
pub const TREES: &[&str] = &[
    "deploy/kustomize/base",
    "deploy/kustomize/overlays/standalone",
    "deploy/kustomize/overlays/kubeflow",
    "deploy/kustomize/overlays/high-availability",
];

/// The components under `deploy/kustomize/components`, in the order a kustomization lists them
/// (single-namespace last: it narrows the webhook's selector when the webhook is there).
pub const COMPONENTS: [&str; 5] = [
    "webhook",
    "leader-election",
    "kubeflow-roles",
    "monitoring",
    "single-namespace",
];

/// The chart's values that install what the base with `components` installs.
pub fn chart_values_for(components: &[&str]) -> Value {
    let on = |name: &str| components.contains(&name);
    let mut values = json!({
        "webhook": { "enabled": on("webhook") },
        "leaderElection": { "enabled": on("leader-election") },
        "rbac": { "aggregateToDefaultRoles": on("kubeflow-roles") },
        "serviceMonitor": { "enabled": on("monitoring") },
        "prometheusRule": { "enabled": on("monitoring") },
    });
    if on("single-namespace") {
        values["namespaces"] = json!([super::NAMESPACE]);
    }
    values
}

/// Builds a kustomization of the base with `components` into the test namespace (written under
/// `target/kustomize-combinations/`, since kustomize takes only relative paths), as a user's
/// own kustomization composes them: its `namespace` places the components' objects too.
pub fn build_with_components(components: &[&str]) -> Vec<Value> {
    let name = if components.is_empty() {
        "base-only".to_string()
    } else {
        components.join("+")
    };
    let dir = repo_path("target/kustomize-combinations").join(&name);
    std::fs::create_dir_all(&dir).expect("a directory for the combination");
    let listed: Vec<String> = components
        .iter()
        .map(|c| format!("  - ../../../deploy/kustomize/components/{c}\n"))
        .collect();
    let kustomization = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
         namespace: {}\nresources:\n  - ../../../deploy/kustomize/base\ncomponents:\n{}",
        super::NAMESPACE,
        if listed.is_empty() {
            "  []\n".to_string()
        } else {
            listed.concat()
        }
    );
    std::fs::write(dir.join("kustomization.yaml"), kustomization).expect("the kustomization");
    let relative = format!("target/kustomize-combinations/{name}");
    build(&relative)
}

/// Every subset of [`COMPONENTS`], in their order.
pub fn component_combinations() -> Vec<Vec<&'static str>> {
    (0..1u32 << COMPONENTS.len())
        .map(|mask| {
            COMPONENTS
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, c)| *c)
                .collect()
        })
        .collect()
}

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
