//! The chart rendered, linted and schema-checked by Helm 4's own engine: `hack/helm/helm.py`
//! run with the virtualenv `hack/helm/venv.sh` installs (the python there, or
//! `TFJOB_HELM_PYTHON`).

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

use super::{NAMESPACE, RELEASE, chart_dir, objects, repo_path};

/// The python of the Helm virtualenv; panics with how to install it when it is missing.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("TFJOB_HELM_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(python);
    }
    let cache = std::env::var_os("TFJOB_CACHE_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/tfjob-operator"))
        })
        .expect("HOME or TFJOB_CACHE_DIR must be set to find the Helm virtualenv");
    let python = cache.join("venv/bin/python");
    assert!(
        python.is_file(),
        "Helm is not installed: {} is missing.\nInstall it (about 10 s, cached) with:\n    \
         hack/helm/venv.sh\n(hack/test.sh does this), or set TFJOB_HELM_PYTHON to a python that \
         can import helm_python.",
        python.display()
    );
    python
}

/// Runs `helm.py COMMAND CHART ARGS... --values-json VALUES`.
fn run(command: &str, values: &Value, args: &[&str]) -> Output {
    run_chart(&chart_dir(), command, values, args)
}

fn run_chart(chart: &std::path::Path, command: &str, values: &Value, args: &[&str]) -> Output {
    let script = repo_path("hack/helm/helm.py");
    Command::new(python())
        .arg(&script)
        .arg(command)
        .arg(chart)
        .args(args)
        .arg("--values-json")
        .arg(values.to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The Kubernetes version charts are rendered for: the local control plane's.
pub const KUBE_VERSION: &str = "v1.20.2";

/// The Prometheus Operator's APIs, for renders of a cluster that has its CRDs.
pub const PROMETHEUS_OPERATOR: [&str; 2] = [
    "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
];

/// `helm template` with `values` into the test namespace as the default release, as YAML.
pub fn template_yaml(values: &Value, include_crds: bool) -> Result<String, String> {
    template_yaml_for(values, include_crds, &[])
}

/// Like [`template_yaml`], for a cluster that also serves `api_versions` (helm's
/// `--api-versions`: `group/version/Kind`).
pub fn template_yaml_for(
    values: &Value,
    include_crds: bool,
    api_versions: &[&str],
) -> Result<String, String> {
    let mut args = vec![
        "--name",
        RELEASE,
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
    ];
    for api in api_versions {
        args.extend(["--api-versions", api]);
    }
    if include_crds {
        args.push("--include-crds");
    }
    let output = run("template", values, &args);
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(text(&output))
    }
}

/// Whether `obj` is a `helm test` hook: rendered by `helm template`, created only by `helm test`.
fn is_test_hook(obj: &Value) -> bool {
    obj["metadata"]["annotations"]["helm.sh/hook"]
        .as_str()
        .is_some_and(|hooks| hooks.split(',').any(|h| h.trim() == "test"))
}

/// What `helm install` creates with `values` (without CRDs and `helm test` hooks); panics if
/// rendering fails.
pub fn render(values: &Value) -> Vec<Value> {
    let yaml = template_yaml(values, false)
        .unwrap_or_else(|e| panic!("helm template with {values} failed:\n{e}"));
    objects::parse_stream(&yaml)
        .into_iter()
        .filter(|o| !is_test_hook(o))
        .collect()
}

/// Like [`render`], for a cluster that also serves `api_versions` (e.g.
/// [`PROMETHEUS_OPERATOR`]).
pub fn render_for(values: &Value, api_versions: &[&str]) -> Vec<Value> {
    let yaml = template_yaml_for(values, false, api_versions)
        .unwrap_or_else(|e| panic!("helm template with {values} failed:\n{e}"));
    objects::parse_stream(&yaml)
        .into_iter()
        .filter(|o| !is_test_hook(o))
        .collect()
}

/// Renders another chart (a parent that has this one as a subchart, say) as the default
/// release into the test namespace; Err with Helm's message.
pub fn render_chart(chart: &std::path::Path, values: &Value) -> Result<Vec<Value>, String> {
    let args = [
        "--name",
        RELEASE,
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
    ];
    let output = run_chart(chart, "template", values, &args);
    if output.status.success() {
        Ok(objects::parse_stream(&String::from_utf8_lossy(
            &output.stdout,
        )))
    } else {
        Err(text(&output))
    }
}

/// Like [`render_for`], with the chart's CRDs first.
pub fn render_with_crds_for(values: &Value, api_versions: &[&str]) -> Vec<Value> {
    let yaml = template_yaml_for(values, true, api_versions)
        .unwrap_or_else(|e| panic!("helm template --include-crds with {values} failed:\n{e}"));
    objects::parse_stream(&yaml)
        .into_iter()
        .filter(|o| !is_test_hook(o))
        .collect()
}

/// Like [`render`], with the chart's CRDs first (`helm template --include-crds`).
pub fn render_with_crds(values: &Value) -> Vec<Value> {
    let yaml = template_yaml(values, true)
        .unwrap_or_else(|e| panic!("helm template --include-crds with {values} failed:\n{e}"));
    objects::parse_stream(&yaml)
        .into_iter()
        .filter(|o| !is_test_hook(o))
        .collect()
}

/// The `helm test` hooks rendered with `values`: what `helm test` creates.
pub fn test_hooks(values: &Value) -> Vec<Value> {
    let yaml = template_yaml(values, false)
        .unwrap_or_else(|e| panic!("helm template with {values} failed:\n{e}"));
    objects::parse_stream(&yaml)
        .into_iter()
        .filter(is_test_hook)
        .collect()
}

/// NOTES.txt as rendered with `values`.
pub fn notes(values: &Value) -> String {
    notes_for(values, &[])
}

/// NOTES.txt as rendered with `values` for a cluster that also serves `api_versions`.
pub fn notes_for(values: &Value, api_versions: &[&str]) -> String {
    let mut args = vec![
        "--namespace",
        NAMESPACE,
        "--notes",
        "--kube-version",
        KUBE_VERSION,
    ];
    for api in api_versions {
        args.extend(["--api-versions", api]);
    }
    let output = run("template", values, &args);
    assert!(
        output.status.success(),
        "rendering NOTES.txt failed:\n{}",
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `helm lint --strict` with `values`: Ok(report) when it passes, Err(report) otherwise.
pub fn lint(values: &Value) -> Result<String, String> {
    let output = run("lint", values, &["--namespace", NAMESPACE]);
    if output.status.success() {
        Ok(text(&output))
    } else {
        Err(text(&output))
    }
}

/// The values schema check alone: Err(Helm's message) when `values` are rejected.
pub fn validate(values: &Value) -> Result<(), String> {
    let output = run("validate", values, &[]);
    if output.status.success() {
        Ok(())
    } else {
        Err(text(&output))
    }
}
