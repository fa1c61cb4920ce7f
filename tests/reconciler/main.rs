//! The TFJob lifecycle on the real control plane: the operator and the simulated kubelet run
//! in-process, one namespace per test.

mod diagnosis;
mod lifecycle;
mod limits;
mod ownership;
mod restarts;
mod scaling;
mod stuck;
mod success;

use test_support as support;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};

use support::operator::{Operator, await_condition, await_events, conditions, sim_kubelet, submit};
use support::pod_history::PodHistory;
use support::*;
use tfjob_core::api::TFJob;

/// A TFJob with `PS` and `Worker` replicas whose pods behave per `annotations` (the simulated
/// kubelet's `sim.tfjob-operator.dev/*` keys).
fn job_yaml(name: &str, spec_extra: &str, replicas: &[(&str, i32, &str, &str)]) -> String {
    let mut yaml = format!(
        "apiVersion: kubeflow.org/v1\nkind: TFJob\nmetadata: {{name: {name}}}\nspec:\n{spec_extra}  tfReplicaSpecs:\n"
    );
    for (replica_type, count, policy, annotations) in replicas {
        yaml.push_str(&format!(
            "    {replica_type}:\n      replicas: {count}\n      restartPolicy: {policy}\n      template:\n        metadata:\n          annotations: {{{annotations}}}\n        spec:\n          containers: [{{name: tensorflow, image: tf}}]\n"
        ));
    }
    yaml
}

const FAST: &str = "sim.tfjob-operator.dev/pending-ms: '0', sim.tfjob-operator.dev/run-ms: '300'";
const FOREVER: &str =
    "sim.tfjob-operator.dev/pending-ms: '0', sim.tfjob-operator.dev/run-forever: 'true'";

/// The message of the job's newest condition.
fn last_message(job: &TFJob) -> String {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.last())
        .and_then(|c| c.message.clone())
        .unwrap_or_default()
}

async fn pod_names(ctx: &TestContext) -> Vec<String> {
    let pods: Api<Pod> = ctx.api();
    let mut names: Vec<String> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    names.sort();
    names
}

async fn service_names(ctx: &TestContext) -> Vec<String> {
    let services: Api<Service> = ctx.api();
    let mut names: Vec<String> = services
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|s| s.name_any())
        .collect();
    names.sort();
    names
}

async fn wait_pods(ctx: &TestContext, expected: &[&str]) {
    wait_for(secs(30), &format!("pods {expected:?}"), || async {
        let names = pod_names(ctx).await;
        if names == expected {
            Ok(())
        } else {
            Err(format!("{names:?}"))
        }
    })
    .await;
}
