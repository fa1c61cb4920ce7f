//! What every reconcile shares: the client, the caches, the event recorder, the metrics and
//! the operator's memories (see [`super::memory`]).

use std::sync::Arc;

use kube::Client;
use kube::api::ApiResource;

use super::events::EventRecorder;
use super::index::ChildIndex;
use super::long_waits::LongWaits;
use super::memory::{
    Announced, Conflicts, Creating, ErrorBackoff, HeldStatuses, StatusMemo, UndecodableMemo,
};
use crate::ops::Metrics;
use tfjob_core::api::naming::CONTROLLER_NAME;
use tfjob_core::plan::PlanConfig;
use tfjob_core::plan::observe::{PodFacts, PodGroupFacts, ServiceFacts};

/// Shared state of the controller.
pub struct Context {
    pub client: Client,
    pub recorder: EventRecorder,
    pub metrics: Metrics,
    pub pods: Arc<ChildIndex<PodFacts>>,
    pub services: Arc<ChildIndex<ServiceFacts>>,
    /// Gang scheduling on: the PodGroups of the jobs and their API resource.
    pub pod_groups: Option<(Arc<ChildIndex<PodGroupFacts>>, ApiResource)>,
    /// Gang scheduling on: PriorityClass values, for PodGroups' default `minResources`.
    pub priority_classes: Arc<PriorityClasses>,
    pub plan_config: PlanConfig,
    pub statuses: StatusMemo,
    pub held: HeldStatuses,
    pub creating: Creating,
    pub backoff: ErrorBackoff,
    pub announced: Announced,
    pub undecodable: UndecodableMemo,
    pub conflicts: Conflicts,
    /// Waits longer than a minute, kept out of kube-runtime's scheduler.
    pub long_waits: Arc<LongWaits>,
    /// In the degraded mode of `--allow-upstream-crd` (the installed CRD drops fields the
    /// operator stores, so they are left out of status writes): the command that replaces the
    /// CRD. `None`: the CRD keeps every field.
    pub degraded_fix: Option<String>,
}

impl Context {
    /// A context with empty caches and memories; the wiring replaces the caches with the ones
    /// its watches feed (struct update syntax), benchmarks use it as it is.
    pub fn new(
        client: Client,
        metrics: Metrics,
        plan_config: PlanConfig,
        instance: String,
    ) -> Self {
        Context {
            recorder: EventRecorder::new(client.clone(), CONTROLLER_NAME, &instance),
            client,
            metrics,
            pods: Default::default(),
            services: Default::default(),
            pod_groups: None,
            priority_classes: Default::default(),
            plan_config,
            statuses: Default::default(),
            held: Default::default(),
            creating: Default::default(),
            backoff: Default::default(),
            announced: Default::default(),
            undecodable: Default::default(),
            conflicts: Default::default(),
            long_waits: Default::default(),
            degraded_fix: None,
        }
    }
}

/// PriorityClass name → value, kept by a watch (cluster-scoped, small).
#[derive(Default)]
pub struct PriorityClasses(std::sync::RwLock<std::collections::BTreeMap<String, i32>>);

impl PriorityClasses {
    pub fn snapshot(&self) -> std::collections::BTreeMap<String, i32> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set(&self, name: String, value: Option<i32>) {
        let mut classes = self.0.write().unwrap_or_else(|e| e.into_inner());
        match value {
            Some(value) => classes.insert(name, value),
            None => classes.remove(&name),
        };
    }

    pub fn replace(&self, all: std::collections::BTreeMap<String, i32>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = all;
    }
}
