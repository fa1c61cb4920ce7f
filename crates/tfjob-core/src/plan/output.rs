//! What a pass decides: children to create and delete, the new status, events, counters, timers.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use serde_json::Value;

use crate::api::JobStatus;

/// A child to delete; the UID makes the delete conditional on it still being that object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildRef {
    pub name: String,
    pub uid: Option<String>,
}

/// A Kubernetes event about the TFJob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobEvent {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

/// A Warning about one unhealthy pod (upstream's "abnormal pod" events). The shell announces
/// each once per pod and message: the planner is stateless and sees it on every pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodWarning {
    pub pod_uid: String,
    pub reason: String,
    pub message: String,
}

/// Upstream's `training_operator_jobs_*_total` counters, incremented once per real transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobCounter {
    Created,
    Deleted,
    Succeeded,
    Failed,
    Restarted,
}

/// What to do with the job's PodGroup in this pass.
#[derive(Clone, Debug, PartialEq)]
pub enum PodGroupAction {
    /// Create this object (apiVersion, kind, metadata, spec).
    Create(Value),
    /// Replace the spec with this one (a merge patch of `spec`).
    Update(Value),
    Delete(ChildRef),
}

/// What one reconcile pass should do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub create_pods: Vec<Pod>,
    pub delete_pods: Vec<ChildRef>,
    /// Pods stuck Terminating on a lost node: deleted with a grace period of 0.
    pub force_delete_pods: Vec<ChildRef>,
    pub create_services: Vec<Service>,
    pub delete_services: Vec<ChildRef>,
    /// The new status, only when it differs from the observed one.
    pub status: Option<JobStatus>,
    pub events: Vec<JobEvent>,
    /// Unhealthy pods, to announce once each.
    pub pod_warnings: Vec<PodWarning>,
    pub counters: Vec<JobCounter>,
    /// TTL expired: delete the TFJob itself.
    pub delete_job: bool,
    /// Look again after this long (deadline or TTL), even if nothing changes.
    pub requeue_after: Option<Duration>,
    /// Create, update or delete the job's PodGroup.
    pub pod_group: Option<PodGroupAction>,
}

impl Plan {
    /// Whether the pass changes nothing at all.
    pub fn is_noop(&self) -> bool {
        self.create_pods.is_empty()
            && self.delete_pods.is_empty()
            && self.force_delete_pods.is_empty()
            && self.create_services.is_empty()
            && self.delete_services.is_empty()
            && self.status.is_none()
            && self.events.is_empty()
            && self.pod_warnings.is_empty()
            && self.counters.is_empty()
            && !self.delete_job
            && self.pod_group.is_none()
    }

    /// Adds an event; several pods failing alike in one pass make one event, not several.
    pub fn event(&mut self, event: JobEvent) {
        if !self.events.contains(&event) {
            self.events.push(event);
        }
    }

    /// Forgets the child writes decided so far (the job finished or hit a limit in this pass).
    pub fn drop_child_writes(&mut self) {
        self.create_pods.clear();
        self.create_services.clear();
        self.delete_pods.clear();
        self.force_delete_pods.clear();
        self.delete_services.clear();
    }

    /// Keeps the earliest of the timers asked for.
    pub fn requeue_after(&mut self, wait: Duration) {
        self.requeue_after = Some(self.requeue_after.map_or(wait, |w| w.min(wait)));
    }
}
