//! The Kubeflow Python SDK (`kubeflow-training` 1.9.4 from PyPI, in the virtualenv
//! `hack/sdk-venv.sh` caches) against this operator on the real control plane:
//! `tests/sdk/check.py` creates TFJobs from the SDK's models and its own template, lists,
//! gets, waits for conditions, reads pod names (all, the master pod, by type and index) and
//! logs (served by the simulated kubelet through the apiserver), and deletes them.

use std::process::Command;

use test_support as support;

use support::operator::{Operator, sim_kubelet};
use support::*;

/// The SDK virtualenv's python (installed on first use, about 20 s; cached after).
fn sdk_python() -> String {
    let output = Command::new(repo().join("hack/sdk-venv.sh"))
        .output()
        .expect("hack/sdk-venv.sh runs");
    assert!(
        output.status.success(),
        "hack/sdk-venv.sh failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .last()
        .expect("its python")
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubeflow_python_sdk_drives_tfjobs_end_to_end() {
    let python = sdk_python();
    let ctx = TestContext::new("sdk").await;
    let _operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    let output = tokio::process::Command::new(&python)
        .arg(repo().join("tests/sdk/check.py"))
        .env("KUBECONFIG", &control_plane().kubeconfig)
        .env("TFJOB_NAMESPACE", &ctx.namespace)
        .output()
        .await
        .expect("the SDK check runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}");
    assert!(
        output.status.success(),
        "the SDK check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("ok  delete_job"), "{stdout}");
    ctx.teardown().await;
}
