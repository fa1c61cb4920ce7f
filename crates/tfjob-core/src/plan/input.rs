//! What a pass is given: the operator's settings and what its caches hold of a job's children.

use std::collections::BTreeMap;
use std::time::Duration;

use super::observe::{PodFacts, PodGroupFacts, ServiceFacts};
use crate::api::ServiceMode;
use crate::api::podgroup::GangScheduler;

/// Operator-wide settings that shape the children.
#[derive(Clone, Debug)]
pub struct PlanConfig {
    /// `CUSTOM_CLUSTER_DOMAIN`, appended to TF_CONFIG hosts.
    pub cluster_domain: Option<String>,
    pub service_mode: ServiceMode,
    /// `--gang-scheduler-name`: PodGroups and pod decoration.
    pub gang: Option<GangScheduler>,
    /// `--stuck-terminating-after`: how long past its deletion's due time a pod counts as
    /// stuck Terminating.
    pub stuck_after: Duration,
    /// `--force-delete-stuck-pods`: force-delete stuck pods whose node is lost.
    pub force_delete_stuck: bool,
    /// `--pending-threshold`: how long a pod may wait to start, for no lasting reason, before
    /// the job says it cannot start.
    pub pending_threshold: Duration,
    /// `--pending-deadline`: fail a job whose pod waits to start longer (off when `None`); a
    /// job's `tfjob-operator.dev/pending-deadline` annotation overrides it.
    pub pending_deadline: Option<Duration>,
    /// `--status-batch-window`: how long the shell holds a job's progress (pods starting,
    /// counters) before writing its status; zero writes every change. Not read by the planner
    /// but by [`crate::plan::coalesce`], after it.
    pub status_batch_window: Duration,
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig {
            cluster_domain: None,
            service_mode: ServiceMode::default(),
            gang: None,
            stuck_after: DEFAULT_STUCK_AFTER,
            force_delete_stuck: false,
            pending_threshold: DEFAULT_PENDING_THRESHOLD,
            pending_deadline: None,
            status_batch_window: crate::plan::coalesce::DEFAULT_WINDOW,
        }
    }
}

/// The default of `--pending-threshold`.
pub const DEFAULT_PENDING_THRESHOLD: Duration = Duration::from_secs(300);

/// The default of `--stuck-terminating-after`.
pub const DEFAULT_STUCK_AFTER: Duration = Duration::from_secs(300);

/// What the operator observed about a job's children, from its caches.
#[derive(Clone, Copy, Debug, Default)]
pub struct Observed<'a> {
    pub pods: &'a [PodFacts],
    pub services: &'a [ServiceFacts],
    /// The job's PodGroup, when gang scheduling is on and it exists.
    pub pod_group: Option<&'a PodGroupFacts>,
    /// PriorityClass name → value, for the PodGroup's default `minResources`.
    pub priority_classes: Option<&'a BTreeMap<String, i32>>,
    /// What the shell found that keeps the job from progressing (e.g. a child name taken by
    /// an object of another controller), appended to the current condition's message.
    pub notes: &'a [String],
    /// Nodes found gone, or NotReady for longer than `stuck_after` (looked up by the shell
    /// only for the nodes of stuck pods, and only with force deletion on).
    pub lost_nodes: &'a [String],
}
