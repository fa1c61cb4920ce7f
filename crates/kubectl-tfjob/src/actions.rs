//! `wait`, `suspend`, `resume` and `delete`: one TFJob each.

use std::time::Duration;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::wait::{Condition, await_condition, conditions};
use tfjob_core::api::TFJob;

use crate::cli::WaitFor;
use crate::connect::Cluster;
use crate::errors::{Failure, Request, explain};

fn api(cluster: &Cluster) -> Api<TFJob> {
    Api::namespaced(cluster.client.clone(), &cluster.namespace)
}

fn request<'a>(cluster: &'a Cluster, verb: &'a str, name: &'a str) -> Request<'a> {
    Request {
        verb,
        resource: "tfjobs",
        namespace: Some(&cluster.namespace),
        name: Some(name),
        server: &cluster.server,
    }
}

/// Whether the job has condition `type_` with `status`.
fn has_condition(type_: String, status: String) -> impl Condition<TFJob> {
    move |job: Option<&TFJob>| {
        job.and_then(|j| j.status.as_ref()).is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == type_ && c.status == status)
        })
    }
}

/// `kubectl tfjob wait NAME --for=condition=Succeeded --timeout=10m`.
pub async fn wait(
    cluster: &Cluster,
    name: &str,
    wait_for: &WaitFor,
    timeout: Duration,
) -> Result<(), Failure> {
    let api = api(cluster);
    // The job must exist first (except when waiting for it to go): a typo fails at once.
    let exists = api
        .get_opt(name)
        .await
        .map_err(|e| explain(&e, request(cluster, "get", name)))?;
    if exists.is_none() && *wait_for != WaitFor::Delete {
        return Err(Failure::failed(format!(
            "no TFJob {name:?} in namespace {:?}; list them with: kubectl tfjob list -n {}",
            cluster.namespace, cluster.namespace
        )));
    }
    let waited = match wait_for {
        WaitFor::Condition { type_, status } => {
            let condition = has_condition(type_.clone(), status.clone());
            tokio::time::timeout(timeout, await_condition(api, name, condition)).await
        }
        WaitFor::Delete => {
            let uid = exists.and_then(|j| j.metadata.uid).unwrap_or_default();
            let gone = conditions::is_deleted(&uid);
            tokio::time::timeout(timeout, await_condition(api, name, gone)).await
        }
    };
    match waited {
        Ok(Ok(_)) => {
            let what = match wait_for {
                WaitFor::Condition { type_, .. } => format!("condition met ({type_})"),
                WaitFor::Delete => "deleted".into(),
            };
            println!("tfjob.kubeflow.org/{name} {what}");
            Ok(())
        }
        Ok(Err(e)) => Err(Failure::failed(format!("watching tfjobs/{name}: {e}"))),
        Err(_) => Err(Failure::failed(format!(
            "timed out waiting for the condition on tfjobs/{name}"
        ))),
    }
}

/// Sets `spec.runPolicy.suspend`.
pub async fn set_suspend(cluster: &Cluster, name: &str, suspend: bool) -> Result<(), Failure> {
    let patch = serde_json::json!({"spec": {"runPolicy": {"suspend": suspend}}});
    api(cluster)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| explain(&e, request(cluster, "patch", name)))?;
    let done = if suspend { "suspended" } else { "resumed" };
    println!("tfjob.kubeflow.org/{name} {done}");
    Ok(())
}

/// Deletes the job (its children go by garbage collection); with `wait`, until it is gone.
pub async fn delete(
    cluster: &Cluster,
    name: &str,
    wait_gone: bool,
    timeout: Duration,
) -> Result<(), Failure> {
    let deleted = api(cluster)
        .delete(name, &DeleteParams::background())
        .await
        .map_err(|e| explain(&e, request(cluster, "delete", name)))?;
    println!("tfjob.kubeflow.org \"{name}\" deleted");
    if wait_gone {
        let uid = deleted
            .left()
            .and_then(|j| j.metadata.uid)
            .unwrap_or_default();
        let gone = conditions::is_deleted(&uid);
        tokio::time::timeout(timeout, await_condition(api(cluster), name, gone))
            .await
            .map_err(|_| {
                Failure::failed(format!("timed out waiting for tfjobs/{name} to be deleted"))
            })?
            .map_err(|e| Failure::failed(format!("watching tfjobs/{name}: {e}")))?;
    }
    Ok(())
}
