//! What the planner needs to know about each child object, read from cached pods and Services.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube_core::ResourceExt;

use super::diagnosis::{self, Waiting};
use crate::api::constants::DEFAULT_CONTAINER_NAME;
use crate::api::naming::replica_of;
use crate::api::{ReplicaFailure, ReplicaType, Uid};

/// Upstream's sentinel exit code for "the tensorflow container has not terminated" (0xbeef);
/// under `ExitCode` it counts as retryable.
pub const NO_EXIT_CODE: i32 = 0xbeef;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

/// The facts about one pod that drive decisions.
#[derive(Clone, Debug, PartialEq)]
pub struct PodFacts {
    pub name: String,
    pub uid: Option<Uid>,
    pub replica_type: Option<ReplicaType>,
    pub index: Option<i32>,
    pub phase: Phase,
    /// Has a deletionTimestamp (or the operator has deleted it and not yet seen that).
    pub terminating: bool,
    /// Exit code of the `tensorflow` container, or [`NO_EXIT_CODE`].
    pub exit_code: i32,
    /// In-place restarts of all containers and init containers.
    pub restarts: i32,
    /// Why a pod that should be running is not healthy (reason, message), as upstream's
    /// "abnormal pod" scan reports it: a container restarting after a non-zero exit, a
    /// container waiting with a message (ImagePullBackOff, CrashLoopBackOff), or a pod without
    /// container statuses whose latest condition is not True (Unschedulable).
    /// Boxed: most pods have none, and the cache holds one entry per pod.
    pub abnormal: Option<Box<(String, String)>>,
    /// When its deletion is due and where it runs, for a pod with a deletionTimestamp (boxed
    /// like `abnormal`: few pods are being deleted).
    pub deletion: Option<Box<Deletion>>,
    /// How it failed (see [`diagnosis::failure_of`]); boxed, few pods have failed.
    pub failure: Option<Box<ReplicaFailure>>,
    /// What keeps it from starting, for a Pending pod (see [`diagnosis::waiting_of`]).
    pub waiting: Option<Box<Waiting>>,
}

/// A pod's deletion as the apiserver recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deletion {
    /// `deletionTimestamp`: the request's time plus the pod's grace period; a pod still there
    /// well after it is stuck (its node is gone, or a finalizer holds it).
    pub due: Timestamp,
    /// `spec.nodeName`.
    pub node: Option<String>,
}

impl PodFacts {
    pub fn of(pod: &Pod) -> PodFacts {
        let status = pod.status.as_ref();
        let phase = match status.and_then(|s| s.phase.as_deref()) {
            Some("Running") => Phase::Running,
            Some("Succeeded") => Phase::Succeeded,
            Some("Failed") => Phase::Failed,
            Some("Unknown") => Phase::Unknown,
            _ => Phase::Pending,
        };
        let containers = status.and_then(|s| s.container_statuses.as_ref());
        let init_containers = status.and_then(|s| s.init_container_statuses.as_ref());
        let exit_code = containers
            .and_then(|cs| cs.iter().find(|c| c.name == DEFAULT_CONTAINER_NAME))
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.terminated.as_ref())
            .map_or(NO_EXIT_CODE, |t| t.exit_code);
        let restarts = containers
            .into_iter()
            .chain(init_containers)
            .flatten()
            .map(|c| c.restart_count.max(0))
            .fold(0i32, i32::saturating_add);
        let (replica_type, index) = replica_of(pod.labels());
        PodFacts {
            name: pod.name_any(),
            uid: pod.metadata.uid.as_deref().map(Uid::new),
            replica_type,
            index,
            phase,
            terminating: pod.metadata.deletion_timestamp.is_some(),
            exit_code,
            restarts,
            abnormal: abnormal(pod).map(Box::new),
            deletion: pod.metadata.deletion_timestamp.as_ref().map(|at| {
                Box::new(Deletion {
                    due: at.0,
                    node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
                })
            }),
            failure: diagnosis::failure_of(pod).map(Box::new),
            waiting: diagnosis::waiting_of(pod).map(Box::new),
        }
    }

    /// Running and not going away.
    pub fn is_active(&self) -> bool {
        self.phase == Phase::Running && !self.terminating
    }
}

/// Upstream's abnormal-pod scan, for pods that are neither finished nor being deleted.
fn abnormal(pod: &Pod) -> Option<(String, String)> {
    let status = pod.status.as_ref()?;
    let finished = matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"));
    if finished || pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let name = pod.name_any();
    let containers = status
        .container_statuses
        .as_deref()
        .filter(|c| !c.is_empty());
    let statuses = containers.or(status
        .init_container_statuses
        .as_deref()
        .filter(|c| !c.is_empty()));
    let Some(statuses) = statuses else {
        // No container has started: the most recent condition that is not True says why.
        let condition = status
            .conditions
            .iter()
            .flatten()
            .max_by_key(|c| c.last_transition_time.as_ref().map(|t| t.0))
            .filter(|c| c.status != "True")?;
        return Some((
            condition.reason.clone().unwrap_or_default(),
            format!(
                "Error pod {name} condition message: {}",
                condition.message.clone().unwrap_or_default()
            ),
        ));
    };
    statuses.iter().find_map(|c| {
        let state = c.state.as_ref()?;
        if let Some(t) = state.terminated.as_ref().filter(|t| t.exit_code != 0) {
            return Some((
                t.reason.clone().unwrap_or_default(),
                format!(
                    "Error pod {name} container {} exitCode: {} terminated message: {}",
                    c.name,
                    t.exit_code,
                    t.message.clone().unwrap_or_default()
                ),
            ));
        }
        let waiting = state
            .waiting
            .as_ref()
            .filter(|w| w.message.as_deref().is_some_and(|m| !m.is_empty()))?;
        Some((
            waiting.reason.clone().unwrap_or_default(),
            format!(
                "Error pod {name} container {} waiting message: {}",
                c.name,
                waiting.message.clone().unwrap_or_default()
            ),
        ))
    })
}

/// The facts about one Service.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceFacts {
    pub name: String,
    pub uid: Option<Uid>,
    pub replica_type: Option<ReplicaType>,
    pub index: Option<i32>,
    pub terminating: bool,
}

impl ServiceFacts {
    pub fn of(service: &Service) -> ServiceFacts {
        let (replica_type, index) = replica_of(service.labels());
        ServiceFacts {
            name: service.name_any(),
            uid: service.metadata.uid.as_deref().map(Uid::new),
            replica_type,
            index,
            terminating: service.metadata.deletion_timestamp.is_some(),
        }
    }
}

/// The facts about the job's PodGroup (gang scheduling).
#[derive(Clone, Debug, PartialEq)]
pub struct PodGroupFacts {
    pub name: String,
    pub uid: Option<Uid>,
    /// `status.phase` (Volcano: `Pending` until admitted, then `Inqueue`, `Running`, …).
    pub phase: Option<String>,
    /// The PodGroup's `spec` as stored.
    pub spec: serde_json::Value,
    pub terminating: bool,
}

impl PodGroupFacts {
    pub fn of(object: &kube_core::DynamicObject) -> PodGroupFacts {
        PodGroupFacts {
            name: object.name_any(),
            uid: object.metadata.uid.as_deref().map(Uid::new),
            phase: object
                .data
                .pointer("/status/phase")
                .and_then(|p| p.as_str())
                .map(String::from),
            spec: object
                .data
                .get("spec")
                .cloned()
                .unwrap_or(serde_json::Value::Null),
            terminating: object.metadata.deletion_timestamp.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> Pod {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn facts_of_a_failed_pod() {
        let p = pod(r#"
metadata:
  name: j-worker-1
  uid: u1
  labels: {training.kubeflow.org/replica-type: worker, training.kubeflow.org/replica-index: "1"}
status:
  phase: Failed
  initContainerStatuses:
  - {name: init, image: i, imageID: "", ready: true, restartCount: 1}
  containerStatuses:
  - {name: sidecar, image: s, imageID: "", ready: false, restartCount: 2, state: {terminated: {exitCode: 1}}}
  - {name: tensorflow, image: t, imageID: "", ready: false, restartCount: 3, state: {terminated: {exitCode: 137, reason: OOMKilled}}}
"#);
        let f = PodFacts::of(&p);
        assert_eq!(f.name, "j-worker-1");
        assert_eq!(
            (f.replica_type, f.index),
            (Some(ReplicaType::Worker), Some(1))
        );
        assert_eq!(f.phase, Phase::Failed);
        assert_eq!(
            f.exit_code, 137,
            "only the tensorflow container's exit code counts"
        );
        assert_eq!(f.restarts, 6);
        assert!(!f.terminating);
        assert!(!f.is_active());
    }

    #[test]
    fn a_pod_without_status_is_pending_with_the_sentinel_exit_code() {
        let f = PodFacts::of(&pod(
            "metadata: {name: p, labels: {training.kubeflow.org/replica-index: x}}",
        ));
        assert_eq!(f.phase, Phase::Pending);
        assert_eq!(f.exit_code, NO_EXIT_CODE);
        assert_eq!((f.replica_type, f.index), (None, None));
    }

    #[test]
    fn abnormal_pods_are_described_like_upstream() {
        let crash = PodFacts::of(&pod(r#"
metadata: {name: j-worker-0}
status:
  phase: Running
  containerStatuses:
  - {name: tensorflow, image: t, imageID: "", ready: false, restartCount: 3,
     state: {waiting: {reason: CrashLoopBackOff, message: "back-off 40s restarting failed container"}}}
"#));
        assert_eq!(
            crash.abnormal.map(|a| *a),
            Some(("CrashLoopBackOff".into(), "Error pod j-worker-0 container tensorflow waiting message: back-off 40s restarting failed container".into()))
        );
        let unschedulable = PodFacts::of(&pod(r#"
metadata: {name: j-ps-0}
status:
  phase: Pending
  conditions:
  - {type: PodScheduled, status: "False", reason: Unschedulable, message: "0/3 nodes are available", lastTransitionTime: "2026-01-01T00:00:00Z"}
"#));
        assert_eq!(
            unschedulable.abnormal.map(|a| *a),
            Some((
                "Unschedulable".into(),
                "Error pod j-ps-0 condition message: 0/3 nodes are available".into()
            ))
        );
        let oom = PodFacts::of(&pod(r#"
metadata: {name: j-worker-1}
status:
  phase: Running
  containerStatuses:
  - {name: tensorflow, image: t, imageID: "", ready: true, restartCount: 1, state: {terminated: {exitCode: 137, reason: OOMKilled}}}
"#));
        assert_eq!(
            oom.abnormal.map(|a| *a),
            Some((
                "OOMKilled".into(),
                "Error pod j-worker-1 container tensorflow exitCode: 137 terminated message: "
                    .into()
            ))
        );
        let fine = PodFacts::of(&pod("metadata: {name: p}\nstatus: {phase: Failed}"));
        assert_eq!(
            fine.abnormal.map(|a| *a),
            None,
            "finished pods are not scanned"
        );
    }

    #[test]
    fn terminating_running_pods_are_not_active() {
        let f = PodFacts::of(&pod(
            "metadata: {name: p, deletionTimestamp: '2026-01-01T00:00:00Z'}\nstatus: {phase: Running}",
        ));
        assert!(f.terminating);
        assert!(!f.is_active());
    }
}
