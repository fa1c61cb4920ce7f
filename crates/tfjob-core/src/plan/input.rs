//! What a pass is given: the operator's settings and what its caches hold of a job's children.

use std::collections::BTreeMap;

use super::observe::{PodFacts, PodGroupFacts, ServiceFacts};
use crate::api::ServiceMode;
use crate::api::podgroup::GangScheduler;

/// Operator-wide settings that shape the children.
#[derive(Clone, Debug, Default)]
pub struct PlanConfig {
    /// `CUSTOM_CLUSTER_DOMAIN`, appended to TF_CONFIG hosts.
    pub cluster_domain: Option<String>,
    pub service_mode: ServiceMode,
    /// `--gang-scheduler-name`: PodGroups and pod decoration.
    pub gang: Option<GangScheduler>,
}

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
}
