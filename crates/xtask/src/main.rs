//! `cargo xtask <task>`: maintenance commands of the repository.
//!
//! - `cargo xtask gen`: writes every generated file from the Rust types — the TFJob CRD under
//!   `crds/` and its copies in the Helm chart and the kustomize base. Tests fail when a committed
//!   copy drifts and name this command.
//! - `cargo xtask gen --check`: only reports which files are out of date (exit 1 if any).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

/// Every file `gen` writes, relative to the repository root. The first is the canonical CRD;
/// the others are the copies the chart (Helm installs `crds/` of a chart) and kustomize need.
pub const CRD_FILES: [&str; 3] = [
    "crds/kubeflow.org_tfjobs.yaml",
    "deploy/helm/tfjob-operator/crds/kubeflow.org_tfjobs.yaml",
    "deploy/kustomize/base/crds/kubeflow.org_tfjobs.yaml",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["gen"] => generate(false),
        ["gen", "--check"] => generate(true),
        _ => {
            eprintln!(
                "usage: cargo xtask gen [--check]\n\n  gen        write the CRD and its copies from the Rust types\n  gen --check  report files that are out of date, change nothing"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn generate(check_only: bool) -> anyhow::Result<()> {
    let crd = tfjob_core::api::crd::tfjob_crd_yaml().context("rendering the CRD as YAML")?;
    let mut stale = Vec::new();
    for relative in CRD_FILES {
        let path = repo_root().join(relative);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == crd {
            println!("up to date  {relative}");
            continue;
        }
        if check_only {
            println!("OUT OF DATE {relative}");
            stale.push(relative);
        } else {
            std::fs::write(&path, &crd).with_context(|| format!("writing {relative}"))?;
            println!("written     {relative}");
        }
    }
    if !stale.is_empty() {
        bail!(
            "{} generated file(s) out of date; run `cargo xtask gen`",
            stale.len()
        );
    }
    Ok(())
}
