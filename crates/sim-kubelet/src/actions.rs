//! The simulated kubelet's API writes, and the direct helpers tests use without the watch loop.
//!
//! Every write that targets one pod carries its UID as a precondition, like a real kubelet's, so a
//! late write never lands on a newer pod that reuses the name.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Binding, Node, NodeAddress, NodeCondition, NodeStatus, NodeSystemInfo, ObjectReference, Pod,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;

use super::SimError;
use super::behaviour::{Behaviour, Exit};
use super::lifecycle::{PodFacts, Record, Stage, Termination};
use super::status::pod_status;

/// Node the direct helpers bind unbound pods to, and the binary's default `--node-name`.
pub const DEFAULT_NODE: &str = "sim-node";
/// The simulated node's address (`status.hostIP` of its pods).
pub const DEFAULT_NODE_IP: &str = "172.20.0.2";

/// Creates the fake node if it does not exist. Nothing watches nodes here (no scheduler, no node
/// lifecycle controller), but objects referring to a node name should find it.
pub async fn ensure_node(nodes: &Api<Node>, name: &str, ip: &str) -> Result<(), SimError> {
    if nodes.get_opt(name).await?.is_some() {
        return Ok(());
    }
    let now = Time(Timestamp::now());
    let capacity = [("cpu", "64"), ("memory", "256Gi"), ("pods", "100000")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
        .collect::<std::collections::BTreeMap<_, _>>();
    let node = Node {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(
                [
                    ("kubernetes.io/hostname", name),
                    ("kubernetes.io/os", "linux"),
                    ("type", "sim-kubelet"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ),
            ..ObjectMeta::default()
        },
        status: Some(NodeStatus {
            addresses: Some(vec![NodeAddress {
                type_: "InternalIP".into(),
                address: ip.into(),
            }]),
            allocatable: Some(capacity.clone()),
            capacity: Some(capacity),
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: Some("KubeletReady".into()),
                message: Some("simulated kubelet is posting ready status".into()),
                last_heartbeat_time: Some(now.clone()),
                last_transition_time: Some(now),
            }]),
            node_info: Some(NodeSystemInfo {
                architecture: "amd64".into(),
                operating_system: "linux".into(),
                kubelet_version: "v1.20.2-sim".into(),
                kube_proxy_version: "v1.20.2-sim".into(),
                container_runtime_version: "containerd://sim".into(),
                os_image: "tfjob-operator simulated kubelet".into(),
                ..NodeSystemInfo::default()
            }),
            ..NodeStatus::default()
        }),
        ..Node::default()
    };
    match nodes.create(&PostParams::default(), &node).await {
        // Nodes are the one kind whose status may be set on create.
        Ok(created) => {
            tracing::info!(node = name, uid = ?created.metadata.uid, "created simulated node");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Points the apiserver at this process for the node's container logs: its addresses (the
/// pods' InternalIP, and 127.0.0.1 as Hostname, which the apiserver prefers when it dials a
/// kubelet) and `daemonEndpoints.kubeletEndpoint.Port`.
pub async fn advertise_kubelet(
    nodes: &Api<Node>,
    name: &str,
    ip: &str,
    port: u16,
) -> Result<(), SimError> {
    let patch = json!({"status": {
        "addresses": [
            {"type": "Hostname", "address": "127.0.0.1"},
            {"type": "InternalIP", "address": ip},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
    }});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// POSTs `pods/<name>/binding`, which is how a scheduler assigns a pod to a node.
/// Fails with [`SimError::AlreadyBound`] when the pod has a node already.
pub async fn bind(
    pods: &Api<Pod>,
    name: &str,
    uid: Option<&str>,
    node: &str,
) -> Result<(), SimError> {
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            uid: uid.map(str::to_string),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            ..ObjectReference::default()
        },
    };
    match pods
        .create_subresource::<_, serde_json::Value>(
            "binding",
            name,
            &PostParams::default(),
            &binding,
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.is_conflict() => Err(SimError::AlreadyBound {
            pod: name.to_string(),
            message: s.message.clone(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Writes the status built from `rec` with a merge patch on `pods/<name>/status`.
pub async fn write_status(
    pods: &Api<Pod>,
    pod: &PodFacts,
    rec: &Record,
    host_ip: &str,
) -> Result<Pod, SimError> {
    let status = pod_status(pod, rec, host_ip).ok_or_else(|| SimError::NothingToReport {
        pod: pod.name.clone(),
    })?;
    // metadata.uid in the patch makes the apiserver reject it if the pod was replaced.
    let patch = json!({ "metadata": { "uid": pod.uid }, "status": status });
    Ok(pods
        .patch_status(&pod.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?)
}

/// Deletes the pod with grace period 0, as a kubelet does once the containers are gone; without
/// this, a bound pod stays `Terminating` forever. A pod that is already gone is fine.
pub async fn finalize(pods: &Api<Pod>, name: &str, uid: &str) -> Result<(), SimError> {
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match pods.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.is_not_found() || s.is_conflict() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Test helper: binds the pod (to [`DEFAULT_NODE`]) if needed and reports its containers running.
pub async fn set_running(pods: &Api<Pod>, name: &str) -> Result<Pod, SimError> {
    drive(pods, name, |rec, now| {
        let attempt = rec.restarts + 1;
        rec.stage = Stage::Running {
            since: now,
            attempt,
        };
    })
    .await
}

/// Test helper: the containers exit with `exit_code` and the pod reaches its terminal phase
/// (`Succeeded` for 0, else `Failed`), whatever its restart policy, as when a kubelet gives up.
/// `reason` defaults to what a kubelet reports (`Completed` or `Error`); pass e.g. `OOMKilled`.
pub async fn terminate(
    pods: &Api<Pod>,
    name: &str,
    exit_code: i32,
    reason: Option<&str>,
) -> Result<Pod, SimError> {
    drive(pods, name, |rec, now| {
        let termination = end_current_run(rec, now, exit_code, reason);
        rec.stage = Stage::Finished { termination };
    })
    .await
}

/// Test helper: the containers exit with `exit_code` and restart in place, as a kubelet does
/// under `OnFailure`/`Always`: `restartCount` + 1, `lastState.terminated` filled, phase `Running`.
pub async fn restart_in_place(
    pods: &Api<Pod>,
    name: &str,
    exit_code: i32,
    reason: Option<&str>,
) -> Result<Pod, SimError> {
    drive(pods, name, |rec, now| {
        let termination = end_current_run(rec, now, exit_code, reason);
        rec.restarts += 1;
        rec.last_termination = Some(termination);
        rec.stage = Stage::Running {
            since: now,
            attempt: rec.restarts + 1,
        };
    })
    .await
}

fn end_current_run(
    rec: &Record,
    now: Timestamp,
    exit_code: i32,
    reason: Option<&str>,
) -> Termination {
    let started_at = match &rec.stage {
        Stage::Running { since, .. } => *since,
        _ => now,
    };
    Termination {
        exit_code,
        reason: reason.map_or_else(
            || Exit::with_default_reason(exit_code).reason,
            str::to_string,
        ),
        started_at,
        finished_at: now,
    }
}

/// Reads the pod, binds it if needed, applies `change` to its observed record and writes the result.
async fn drive(
    pods: &Api<Pod>,
    name: &str,
    change: impl FnOnce(&mut Record, Timestamp),
) -> Result<Pod, SimError> {
    let mut pod = pods.get(name).await?;
    let bound = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    if !bound {
        let nodes: Api<Node> = Api::all(pods.clone().into_client());
        ensure_node(&nodes, DEFAULT_NODE, DEFAULT_NODE_IP).await?;
        bind(pods, name, pod.metadata.uid.as_deref(), DEFAULT_NODE).await?;
        pod = pods.get(name).await?;
    }
    let now = Timestamp::now();
    let mut rec = Record::observe(&pod, now);
    rec.start_time.get_or_insert(now);
    change(&mut rec, now);
    let facts = PodFacts::from_pod(&pod, Behaviour::default());
    write_status(pods, &facts, &rec, DEFAULT_NODE_IP).await
}
