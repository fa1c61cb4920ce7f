//! One pass, in upstream's `ReconcileJobs` order: managedBy hand-off → Created → validation →
//! finished (clean-up, TTL) → suspended → resumed → back-off and deadline → PodGroup → pods and
//! Services per replica slot → status pass.
//!
//! This module only orchestrates: [`replicas`] is the pod and Service loop, [`status`] the
//! status pass. Each decision is a pure function in [`super::rules`] with its
//! own table test, and every change of state goes through [`transitions::record`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube_core::ResourceExt;

mod replicas;
mod status;

use super::children::{Builder, owner_reference};
use super::indexes;
use super::input::{Observed, PlanConfig};
use super::messages::{self, event_reason};
use super::observe::{NO_EXIT_CODE, PodFacts};
use super::output::{JobEvent, Plan};
use super::rules::limits::{self, Limit};
use super::rules::{cleanup, gang, suspend, ttl};
use super::tf_config::{self, Addressing};
use super::transitions::{self, FailReason, JobName, Transition};
use super::{conditions, diagnosis};
use crate::api::{
    EffectiveSpec, JobStatus, ReplicaType, TFJob, ValidationError, is_managed_by_this_operator,
};

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
    let observed_status = job.status.clone().unwrap_or_default();
    let mut pass = Pass {
        job,
        name: job.name_any(),
        namespace: job.namespace().unwrap_or_default(),
        now,
        config,
        observed: *observed,
        status: observed_status.clone(),
        plan: Plan::default(),
        running: false,
        ran: false,
        notes: Vec::new(),
    };
    pass.run(spec);
    // Notes describe a running job's obstacles; any other outcome clears them.
    let notes: Vec<String> = if pass.running {
        observed
            .notes
            .iter()
            .cloned()
            .chain(pass.notes.drain(..))
            .collect()
    } else {
        Vec::new()
    };
    conditions::annotate(&mut pass.status.conditions, &notes);
    if let Ok(spec) = spec
        && pass.ran
    {
        pass.status.ready = Some(ready(&pass.status, spec));
    }
    let mut plan = pass.plan;
    if pass.status != observed_status {
        plan.status = Some(pass.status);
    }
    plan
}

/// The status and event of a TFJob stored in a form that does not even decode (the apiserver
/// accepted it, the operator's types do not): Created, then Failed with the decoding error.
pub fn plan_undecodable(namespace: &str, name: &str, error: &str, now: Timestamp) -> Plan {
    let job = JobName { namespace, name };
    let mut status = JobStatus::default();
    let mut plan = Plan::default();
    for transition in [
        Transition::Created,
        Transition::Failed(FailReason::Undecodable(error.to_string())),
    ] {
        transitions::record(&transition, job, now, &mut status, &mut plan);
    }
    plan.status = Some(status);
    plan
}

/// The state of one planning pass.
struct Pass<'a> {
    job: &'a TFJob,
    name: String,
    namespace: String,
    now: Timestamp,
    config: &'a PlanConfig,
    observed: Observed<'a>,
    /// The status being built; starts as the observed one.
    status: JobStatus,
    plan: Plan,
    /// The pass ended with the job running (not finished, suspended or waiting for admission).
    running: bool,
    /// Obstacles the pass found itself (stuck pods), after the shell's `observed.notes`.
    notes: Vec<String>,
    /// The job is this operator's to reconcile (not being deleted, not Kueue's): its status
    /// is ours to write.
    ran: bool,
}

/// `status.ready`: running pods of all types / the replicas the spec wants.
fn ready(status: &JobStatus, spec: &EffectiveSpec) -> String {
    let running = status
        .replica_statuses
        .values()
        .map(|s| s.active)
        .fold(0i32, i32::saturating_add);
    let wanted = spec
        .replicas
        .values()
        .map(|r| r.replicas)
        .fold(0i32, i32::saturating_add);
    format!("{running}/{wanted}")
}

impl Pass<'_> {
    fn run(&mut self, spec: &Result<EffectiveSpec, ValidationError>) {
        if self.job.metadata.deletion_timestamp.is_some() || !is_managed_by_this_operator(self.job)
        {
            return; // Being deleted (garbage collection cleans up), or Kueue's job.
        }
        self.ran = true;
        if !self.has_condition(conditions::CREATED) {
            self.record(Transition::Created);
        }
        let spec = match spec {
            Ok(spec) => spec,
            Err(error) => {
                // An invalid job is failed with every bad field named; nothing else is touched.
                // The condition carries the hints too: what to change, not only what is wrong.
                self.record(Transition::Failed(FailReason::Validation(
                    error.explained(),
                )));
                return;
            }
        };
        if conditions::is_finished(&self.status.conditions) {
            return self.finished(spec);
        }
        // Needs the namespace and the operator's addressing, so it is checked here (and in the
        // webhook) rather than with the spec alone.
        if let Some(error) = tf_config::check_size(spec, &self.builder(spec).addressing) {
            self.record(Transition::Failed(FailReason::Validation(
                error.explained(),
            )));
            return;
        }
        if spec.suspend {
            return self.suspend();
        }
        if let Some(resumed) = suspend::resume(self.is_true(conditions::SUSPENDED))
            && self.record(resumed)
        {
            // The deadline counts from the resume, as upstream does.
            self.status.start_time = Some(Time(self.now));
        }
        let limit = limits::reached(
            spec.backoff_limit,
            self.restarts_so_far(),
            spec.active_deadline_seconds,
            self.start_time(),
            self.now,
        );
        if let Some(limit) = limit {
            return self.fail_for_limit(spec, limit);
        }
        if let Some(detail) = self.pending_deadline(spec) {
            self.plan.drop_child_writes();
            self.record(Transition::Failed(FailReason::PendingDeadline(detail)));
            return self.finished(spec);
        }
        if self.sync_pod_group(spec) {
            return; // Volcano has not admitted the PodGroup yet: no pods.
        }
        let outcome = self.reconcile_replicas(spec);
        if let Some(limit) = outcome.limit {
            return self.fail_for_limit(spec, limit);
        }
        self.status_pass(spec, &outcome);
        if conditions::is_finished(&self.status.conditions) {
            // Decided in this pass: nothing more to start or restart; clean up right away.
            self.plan.drop_child_writes();
            return self.finished(spec);
        }
        if let Some(expiry) =
            limits::deadline_expiry(spec.active_deadline_seconds, self.start_time())
        {
            self.requeue_at(expiry);
        }
        self.running = true;
    }

    /// Records a transition (condition, event, counter); true when the condition changed.
    fn record(&mut self, transition: Transition) -> bool {
        let job = JobName {
            namespace: &self.namespace,
            name: &self.name,
        };
        transitions::record(&transition, job, self.now, &mut self.status, &mut self.plan)
    }

    fn event(&mut self, warning: bool, reason: &str, message: String) {
        self.plan.event(JobEvent {
            warning,
            reason: reason.into(),
            message,
        });
    }

    fn has_condition(&self, type_: &str) -> bool {
        self.status.conditions.iter().any(|c| c.type_ == type_)
    }

    fn is_true(&self, type_: &str) -> bool {
        conditions::is_true(&self.status.conditions, type_)
    }

    fn start_time(&self) -> Option<Timestamp> {
        self.status.start_time.as_ref().map(|t| t.0)
    }

    /// Look again at `expiry` (seconds since the epoch), just after the second boundary.
    fn requeue_at(&mut self, expiry: i64) {
        let seconds = expiry.saturating_sub(self.now.as_second()).max(0);
        let wait =
            Duration::from_secs(u64::try_from(seconds).unwrap_or(0)) + Duration::from_millis(100);
        self.plan.requeue_after(wait);
    }

    fn restarts_so_far(&self) -> i32 {
        let stored = self.status.replica_statuses.values().map(|s| s.restarts);
        limits::restarts_so_far(stored, self.observed.pods)
    }

    /// The children's builder for this job.
    fn builder<'s>(&'s self, spec: &'s EffectiveSpec) -> Builder<'s> {
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

    /// The opt-in pending deadline (the job's annotation, else `--pending-deadline`): why the
    /// job fails now, or `None` (and a wake-up when the first waiting pod would exceed it).
    fn pending_deadline(&mut self, spec: &EffectiveSpec) -> Option<String> {
        let deadline = spec.pending_deadline.or(self.config.pending_deadline)?;
        let waiting = self
            .observed
            .pods
            .iter()
            .filter_map(|p| Some((p.name.as_str(), p.waiting.as_deref()?)));
        match diagnosis::pending_deadline(waiting, deadline, self.now) {
            diagnosis::PendingDeadline::Exceeded(detail) => Some(detail),
            diagnosis::PendingDeadline::Within(next) => {
                if let Some(wait) = next {
                    self.plan.requeue_after(wait);
                }
                None
            }
        }
    }

    /// Upstream v1.9.4's limits path: mark Failed first, then clean up as for any finished job
    /// (so `cleanPodPolicy: None` keeps the pods for debugging).
    fn fail_for_limit(&mut self, spec: &EffectiveSpec, limit: Limit) {
        self.plan.drop_child_writes();
        let why = match limit {
            Limit::Backoff => FailReason::BackoffLimit,
            Limit::Deadline => FailReason::Deadline,
        };
        self.record(Transition::Failed(why));
        self.finished(spec);
    }

    /// Every pass of a finished job: clean up per policy (idempotent) and run the TTL timer.
    fn finished(&mut self, spec: &EffectiveSpec) {
        if self.is_true(conditions::SUCCEEDED) {
            for status in self.status.replica_statuses.values_mut() {
                status.succeeded = status.succeeded.saturating_add(status.active);
                status.active = 0;
            }
        }
        let doomed = cleanup::finished(
            spec.clean_pod_policy,
            self.observed.pods,
            self.observed.services,
        );
        self.plan.delete_pods.extend(doomed.pods);
        self.plan.delete_services.extend(doomed.services);
        self.delete_pod_group();
        if spec.ttl_seconds_after_finished.is_some() && self.status.completion_time.is_none() {
            self.status.completion_time = Some(Time(self.now));
        }
        let completion = self
            .status
            .completion_time
            .as_ref()
            .map_or(self.now, |t| t.0);
        match ttl::decide(spec.ttl_seconds_after_finished, completion, self.now) {
            ttl::Ttl::Keep => {}
            ttl::Ttl::DeleteNow => self.plan.delete_job = true,
            ttl::Ttl::At(expiry) => self.requeue_at(expiry),
        }
    }

    /// Suspended: no pods, no Services, no timers.
    fn suspend(&mut self) {
        let doomed = cleanup::everything(self.observed.pods, self.observed.services);
        self.plan.delete_pods.extend(doomed.pods);
        self.plan.delete_services.extend(doomed.services);
        self.delete_pod_group();
        for status in self.status.replica_statuses.values_mut() {
            *status = suspend::suspended_status(status);
        }
        let running = self.is_true(conditions::RUNNING);
        let suspended = self.is_true(conditions::SUSPENDED);
        for transition in suspend::suspend(running, suspended) {
            self.record(transition);
        }
    }

    /// Creates or updates the PodGroup; true when pods must wait for Volcano's admission.
    fn sync_pod_group(&mut self, spec: &EffectiveSpec) -> bool {
        let Some(gang_scheduler) = &self.config.gang else {
            return false;
        };
        let owner = gang::Owner {
            name: &self.name,
            namespace: &self.namespace,
            annotations: self.job.annotations(),
            reference: owner_reference(self.job),
        };
        let no_classes = BTreeMap::new();
        let priorities = self.observed.priority_classes.unwrap_or(&no_classes);
        let decision = gang::sync(
            gang_scheduler,
            spec,
            &owner,
            self.observed.pod_group,
            priorities,
        );
        if decision.action.is_some() {
            self.plan.pod_group = decision.action;
        }
        if decision.hold_pods && self.status.last_reconcile_time.is_none() {
            self.status.last_reconcile_time = Some(Time(self.now));
        }
        decision.hold_pods
    }

    /// Deletes the PodGroup of a finished or suspended job, announcing it once.
    fn delete_pod_group(&mut self) {
        if self.config.gang.is_none() {
            return;
        }
        if let Some(action) = gang::delete(self.observed.pod_group) {
            self.plan.pod_group = Some(action);
            self.event(
                false,
                gang::JOB_TERMINATED,
                gang::JOB_TERMINATED_MESSAGE.into(),
            );
        }
    }

    fn exited_with_code(&mut self, pod: &PodFacts) {
        if pod.exit_code != NO_EXIT_CODE {
            let message = messages::exited_with_code(&self.namespace, &pod.name, pod.exit_code);
            self.event(false, event_reason::EXITED_WITH_CODE, message);
        }
    }

    /// Indices of `replica_type` recorded as completed in the status, among its `replicas`.
    fn completed_indexes(&self, replica_type: ReplicaType, replicas: i32) -> BTreeSet<i32> {
        self.status
            .replica_statuses
            .get(replica_type.as_str())
            .and_then(|s| s.completed_indexes.as_deref())
            .map(|text| indexes::parse(text, replicas))
            .unwrap_or_default()
    }
}
