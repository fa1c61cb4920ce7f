//! `plan`: observed state + now → the actions to take, the new status, and when to look again.
//!
//! Pure: no I/O, no clock, no randomness. One pass follows upstream's `ReconcileJobs`:
//! managedBy hand-off → Created → validation → finished (clean-up, TTL) → suspended → resumed →
//! back-off and deadline limits → pods and Services per replica index → status pass. The fixes
//! the design lists live in the helpers: timers for deadline and TTL, a persistent back-off
//! count, succeeded indices that are never re-run, evictions that restart instead of failing,
//! clean-up that honours `cleanPodPolicy` on limit failures, events and counters once per
//! transition.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube_core::ResourceExt;

use super::children::{Builder, ServiceMode};
use super::conditions::{self, FALSE, TRUE, reason};
use super::gang::PodGroupAction;
use super::messages;
use super::observe::{PodFacts, PodGroupFacts, ServiceFacts};
use super::tf_config::Addressing;
use crate::api::podgroup::GangScheduler;
use crate::api::{EffectiveSpec, JobStatus, TFJob, ValidationError, is_managed_by_this_operator};

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
}

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

/// What one reconcile pass should do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub create_pods: Vec<Pod>,
    pub delete_pods: Vec<ChildRef>,
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
            && self.create_services.is_empty()
            && self.delete_services.is_empty()
            && self.status.is_none()
            && self.events.is_empty()
            && self.pod_warnings.is_empty()
            && self.counters.is_empty()
            && !self.delete_job
            && self.pod_group.is_none()
    }
}

/// Plans one reconcile of `job` given what was observed of its children, at time `now`.
pub fn plan(job: &TFJob, observed: &Observed<'_>, now: Timestamp, config: &PlanConfig) -> Plan {
    plan_resolved(job, &EffectiveSpec::resolve(job), observed, now, config)
}

/// [`plan`] with the job's spec already validated and defaulted. The operator resolves each
/// version of a job once, when it caches it, and caches the job without its pod templates
/// (`spec` holds them), so planning a pass that changes nothing copies no template.
pub fn plan_resolved(
    job: &TFJob,
    spec: &Result<EffectiveSpec, ValidationError>,
    observed: &Observed<'_>,
    now: Timestamp,
    config: &PlanConfig,
) -> Plan {
    let mut planner = Planner {
        job,
        spec,
        name: job.name_any(),
        namespace: job.namespace().unwrap_or_default(),
        now,
        config,
        pods: observed.pods.to_vec(),
        services: observed.services.to_vec(),
        pod_group: observed.pod_group.cloned(),
        priority_classes: observed.priority_classes.cloned().unwrap_or_default(),
        status: job.status.clone().unwrap_or_default(),
        plan: Plan::default(),
    };
    planner.run();
    let mut plan = planner.plan;
    if planner.status != job.status.clone().unwrap_or_default() {
        plan.status = Some(planner.status);
    }
    plan
}

/// The state of one planning pass.
pub(super) struct Planner<'a> {
    pub job: &'a TFJob,
    /// The job's spec, validated and defaulted.
    pub spec: &'a Result<EffectiveSpec, ValidationError>,
    pub name: String,
    pub namespace: String,
    pub now: Timestamp,
    pub config: &'a PlanConfig,
    pub pods: Vec<PodFacts>,
    pub services: Vec<ServiceFacts>,
    pub pod_group: Option<PodGroupFacts>,
    pub priority_classes: BTreeMap<String, i32>,
    /// The status being built; starts as the observed one.
    pub status: JobStatus,
    pub plan: Plan,
}

/// Why a running job hit one of its limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Limit {
    Backoff,
    Deadline,
}

impl<'a> Planner<'a> {
    fn run(&mut self) {
        if self.job.metadata.deletion_timestamp.is_some() || !is_managed_by_this_operator(self.job)
        {
            return; // Being deleted (garbage collection cleans up), or Kueue's job.
        }
        self.ensure_created();
        let resolved: &'a Result<EffectiveSpec, ValidationError> = self.spec;
        let spec = match resolved {
            Ok(spec) => spec,
            Err(error) => return self.fail_validation(error),
        };
        if conditions::is_finished(&self.status.conditions) {
            return self.finished(spec);
        }
        if spec.suspend {
            return self.suspend();
        }
        self.resume_if_suspended();

        if let Some(limit) = self.limit_reached(spec) {
            return self.fail_for_limit(spec, limit);
        }
        if self.sync_pod_group(spec) {
            return; // Volcano has not admitted the PodGroup yet: no pods.
        }
        let outcome = self.reconcile_replicas(spec);
        if let Some(limit) = outcome.limit {
            return self.fail_for_limit(spec, limit);
        }
        self.update_status(spec, &outcome);
        if conditions::is_finished(&self.status.conditions) {
            // Decided in this pass: nothing more to start or restart; clean up right away.
            self.plan.create_pods.clear();
            self.plan.create_services.clear();
            self.plan.delete_pods.clear();
            self.plan.delete_services.clear();
            return self.finished(spec);
        }
        self.arm_deadline_timer(spec);
    }

    /// The children's builder for this job.
    pub fn builder<'s>(&'s self, spec: &'s EffectiveSpec) -> Builder<'s> {
        Builder {
            job: self.job,
            spec,
            gang: self.config.gang.as_ref(),
            addressing: Addressing {
                job_name: &self.name,
                namespace: &self.namespace,
                cluster_domain: self.config.cluster_domain.as_deref(),
                service_mode: self.config.service_mode,
            },
        }
    }

    /// Sets a condition; true when it changed (events and counters follow only real changes).
    pub fn set_condition(
        &mut self,
        type_: &str,
        status: &str,
        reason: &str,
        message: &str,
    ) -> bool {
        conditions::set(
            &mut self.status.conditions,
            type_,
            status,
            reason,
            message,
            self.now,
        )
    }

    pub fn event(&mut self, warning: bool, reason: &str, message: String) {
        let event = JobEvent {
            warning,
            reason: reason.into(),
            message,
        };
        // Several pods failing alike in one pass make one event, not several identical ones.
        if !self.plan.events.contains(&event) {
            self.plan.events.push(event);
        }
    }

    pub fn now_time(&self) -> Time {
        Time(self.now)
    }

    /// Sets `completionTime` unless already set (it is never cleared, not even on resume).
    pub fn mark_completion(&mut self) {
        if self.status.completion_time.is_none() {
            self.status.completion_time = Some(self.now_time());
        }
    }

    fn ensure_created(&mut self) {
        if !self
            .status
            .conditions
            .iter()
            .any(|c| c.type_ == conditions::CREATED)
            && self.set_condition(
                conditions::CREATED,
                TRUE,
                reason::CREATED,
                &messages::created(&self.name),
            )
        {
            self.plan.counters.push(JobCounter::Created);
        }
    }

    /// An invalid job is failed with a message naming every bad field; nothing else is touched.
    fn fail_validation(&mut self, error: &ValidationError) {
        let message = messages::failed_validation(&error.to_string());
        if self.set_condition(
            conditions::FAILED,
            TRUE,
            reason::FAILED_VALIDATION,
            &message,
        ) {
            self.mark_completion();
            self.event(true, reason::FAILED_VALIDATION, message);
            self.plan.counters.push(JobCounter::Failed);
        }
    }

    fn resume_if_suspended(&mut self) {
        if conditions::is_true(&self.status.conditions, conditions::SUSPENDED) {
            let message = messages::resumed(&self.name);
            if self.set_condition(conditions::SUSPENDED, FALSE, reason::RESUMED, &message) {
                // The deadline counts from the resume, as upstream does.
                self.status.start_time = Some(self.now_time());
                self.event(false, reason::RESUMED, message);
            }
        }
    }

    /// Back-off (restarts so far over the limit) and deadline checks, before touching pods.
    fn limit_reached(&self, spec: &EffectiveSpec) -> Option<Limit> {
        if let Some(limit) = spec.backoff_limit
            && self.restarts_so_far() > limit
        {
            return Some(Limit::Backoff);
        }
        match (spec.active_deadline_seconds, &self.status.start_time) {
            (Some(deadline), Some(start))
                if self.now.as_second() - start.0.as_second() >= deadline =>
            {
                Some(Limit::Deadline)
            }
            _ => None,
        }
    }

    /// Restarts counted against `backoffLimit`: those of replaced pods (kept in status) plus the
    /// in-place restarts of the pods alive now.
    pub fn restarts_so_far(&self) -> i32 {
        let replaced: i32 = self
            .status
            .replica_statuses
            .values()
            .map(|s| s.restarts)
            .sum();
        let live: i32 = self
            .pods
            .iter()
            .filter(|p| !p.terminating)
            .map(|p| p.restarts)
            .sum();
        replaced.saturating_add(live)
    }

    /// Upstream v1.9.4's limits path: mark Failed first, then clean up as for any finished job
    /// (so `cleanPodPolicy: None` keeps the pods for debugging).
    fn fail_for_limit(&mut self, spec: &EffectiveSpec, limit: Limit) {
        let message = match limit {
            Limit::Backoff => messages::backoff_limit(&self.name),
            Limit::Deadline => messages::deadline(&self.name),
        };
        self.plan.create_pods.clear();
        self.plan.create_services.clear();
        self.plan.delete_pods.clear();
        self.plan.delete_services.clear();
        if self.set_condition(conditions::FAILED, TRUE, reason::FAILED, &message) {
            self.mark_completion();
            self.event(false, reason::FAILED, message);
            self.plan.counters.push(JobCounter::Failed);
        }
        self.finished(spec);
    }

    /// Deadline timer: upstream never armed one, so quiet jobs overran their deadline.
    fn arm_deadline_timer(&mut self, spec: &EffectiveSpec) {
        if let (Some(deadline), Some(start)) =
            (spec.active_deadline_seconds, &self.status.start_time)
        {
            let expiry = start.0.as_second().saturating_add(deadline);
            self.requeue_at(expiry);
        }
    }

    /// Requeue at `expiry` (seconds since the epoch), keeping the earliest timer.
    pub fn requeue_at(&mut self, expiry: i64) {
        let wait = Duration::from_secs(expiry.saturating_sub(self.now.as_second()).max(0) as u64)
            + Duration::from_millis(100); // land just after the second boundary
        self.plan.requeue_after = Some(self.plan.requeue_after.map_or(wait, |w| w.min(wait)));
    }

    /// The pods of the job grouped by replica type and index (children with unreadable labels
    /// are left alone).
    pub fn pods_by_slot(&self) -> BTreeMap<(crate::api::ReplicaType, i32), Vec<&PodFacts>> {
        let mut slots: BTreeMap<_, Vec<&PodFacts>> = BTreeMap::new();
        for pod in &self.pods {
            if let (Some(t), Some(i)) = (pod.replica_type, pod.index) {
                slots.entry((t, i)).or_default().push(pod);
            }
        }
        slots
    }

    /// Indices of `replica_type` recorded as completed in the status.
    pub fn completed_indexes(&self, replica_type: crate::api::ReplicaType) -> BTreeSet<i32> {
        self.status
            .replica_statuses
            .get(replica_type.as_str())
            .and_then(|s| s.completed_indexes.as_deref())
            .map(super::indexes::parse)
            .unwrap_or_default()
    }
}
