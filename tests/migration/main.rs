//! Moving a cluster from training-operator v1.9 to this operator, on the real control plane:
//! the start-up check of the installed CRD and its degraded mode, `tfjob-operator check` on a
//! good install and on each broken one, upstream's Deployment arguments, and
//! docs/migration.md followed step by step. These tests replace and delete the cluster-scoped
//! TFJob CRD, so they take turns.

mod crd_check;
mod preflight;
mod upstream_args;
mod walkthrough;

use test_support as support;

use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use tfjob_core::api::TFJob;
use tfjob_core::api::crd::{tfjob_crd, upstream_shaped};

use support::{TestContext, secs, wait_for};

/// One test at a time: each installs the CRD it needs.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// This test's turn (a tokio mutex is not poisoned by a failed test).
async fn turn() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().await
}

/// Installs this project's CRD over whatever is there.
async fn install_project_crd() {
    support::install_crd(&support::client().await, &tfjob_crd()).await;
}

/// Installs the CRD in upstream's shape (without the fields only this project stores).
async fn install_upstream_crd() {
    support::install_crd(&support::client().await, &upstream_shaped()).await;
}

/// The command that replaces the CRD on this control plane's apiserver (its form depends on
/// the version: see `replace_crd_command`).
async fn replace_crd_command() -> String {
    let version = support::client()
        .await
        .apiserver_version()
        .await
        .expect("the apiserver's version");
    let server = format!("{}.{}", version.major, version.minor).parse().ok();
    tfjob_core::api::crd::replace_crd_command(server)
}

/// `tfjob-operator <args>` run to the end with `KUBECONFIG=kubeconfig` and `env` only:
/// (success, stdout, stderr).
async fn run_binary(
    kubeconfig: &Path,
    args: &[String],
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let output = tokio::process::Command::new(support::workspace_binary("tfjob-operator"))
        .args(args)
        .env_clear()
        .env("KUBECONFIG", kubeconfig)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("the operator binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Waits until a replica type's status reports `succeeded` pods and `completed` indexes (the
/// latter only survives where the CRD keeps it).
async fn await_worker_status(
    ctx: &TestContext,
    job: &str,
    replica_type: &str,
    expected: (i32, Option<&str>),
) -> TFJob {
    let jobs: Api<TFJob> = ctx.api();
    wait_for(
        secs(30),
        &format!("{job}'s {replica_type} status to be {expected:?}"),
        || async {
            let found = jobs.get(job).await.map_err(|e| e.to_string())?;
            let status = found
                .status
                .as_ref()
                .and_then(|s| s.replica_statuses.get(replica_type))
                .map(|r| (r.succeeded, r.completed_indexes.clone()));
            match status {
                Some((succeeded, indexes)) if (succeeded, indexes.as_deref()) == expected => {
                    Ok(found)
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
}

/// A Lease renewed just now by a controller-runtime identity (`<pod>_<uuid>`, upstream's form).
fn held_lease(name: &str) -> k8s_openapi::api::coordination::v1::Lease {
    serde_json::from_value(serde_json::json!({
        "metadata": { "name": name },
        "spec": {
            "holderIdentity": "training-operator-6c7d8-xk2lp_3f1d2c3b-8e5a-4b7c-9d0e-1a2b3c4d5e6f",
            "leaseDurationSeconds": 3600,
            "renewTime": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string(),
        }
    }))
    .expect("a Lease")
}

/// Creates the namespace upstream installs into, unless it exists.
async fn ensure_kubeflow_namespace() {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(support::client().await);
    let namespace =
        serde_json::from_value(serde_json::json!({ "metadata": { "name": "kubeflow" } }))
            .expect("a Namespace");
    let _ = namespaces
        .create(&kube::api::PostParams::default(), &namespace)
        .await;
}

/// Waits until the CRD is gone (a deleted CRD first removes every custom object).
async fn await_crd_gone(name: &str) {
    let crds: Api<CustomResourceDefinition> = Api::all(support::client().await);
    wait_for(secs(60), &format!("CRD {name} to be deleted"), || async {
        match crds.get_opt(name).await {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err("still there".to_string()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
}

/// A TFJob with a chief that runs until stopped and one worker that succeeds at once: the
/// worker's completed index is what only this project's CRD keeps.
fn chief_and_quick_worker(name: &str) -> String {
    format!(
        "apiVersion: kubeflow.org/v1
kind: TFJob
metadata: {{name: {name}}}
spec:
  tfReplicaSpecs:
    Chief:
      replicas: 1
      restartPolicy: Never
      template:
        metadata:
          annotations: {{sim.tfjob-operator.dev/pending-ms: '0', sim.tfjob-operator.dev/run-forever: 'true'}}
        spec:
          containers: [{{name: tensorflow, image: tf}}]
    Worker:
      replicas: 1
      restartPolicy: Never
      template:
        metadata:
          annotations: {{sim.tfjob-operator.dev/pending-ms: '0', sim.tfjob-operator.dev/run-ms: '300'}}
        spec:
          containers: [{{name: tensorflow, image: tf}}]
"
    )
}
