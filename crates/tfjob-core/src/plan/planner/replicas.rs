//! The pod and Service loop of a pass: create missing replicas, delete surplus ones, restart or
//! fail on failed pods (upstream's `ReconcilePods`/`ReconcileServices`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::Pass;
use crate::api::{EffectiveSpec, ReplicaType};
use crate::plan::diagnosis;
use crate::plan::messages::{self, event_reason};
use crate::plan::observe::PodFacts;
use crate::plan::output::{ChildRef, PodWarning};
use crate::plan::rules::limits::{self, Limit};
use crate::plan::rules::restart::{self, FailedPod};
use crate::plan::rules::{batches, gang, services, slots, stuck};
use crate::plan::tf_config;
use crate::plan::transitions::{FailReason, Transition};

/// What the replica loop found, for the status pass.
#[derive(Debug, Default)]
pub(super) struct ReplicaOutcome {
    /// A restart was due but would exceed `backoffLimit`.
    pub limit: Option<Limit>,
    /// Restarts decided in this pass, per type (re-creation plus the pod's in-place restarts).
    pub restarts: BTreeMap<ReplicaType, i32>,
    /// UIDs of the failed pods whose restart this pass counts, per type.
    pub restarted_pods: BTreeMap<ReplicaType, Vec<String>>,
    /// Completed indices per type after this pass.
    pub completed: BTreeMap<ReplicaType, BTreeSet<i32>>,
}

impl Pass<'_> {
    /// The pod and Service loop: create missing replicas, delete surplus ones, restart or fail
    /// on failed pods (upstream's `ReconcilePods`/`ReconcileServices`).
    pub(super) fn reconcile_replicas(&mut self, spec: &EffectiveSpec) -> ReplicaOutcome {
        let pods = self.observed.pods;
        let mut outcome = ReplicaOutcome::default();
        let mut restarts_so_far = self.restarts_so_far();
        // Types no longer in the spec are scaled to zero.
        let mut types: BTreeSet<ReplicaType> = spec.replicas.keys().copied().collect();
        types.extend(pods.iter().filter_map(|p| p.replica_type));
        types.extend(self.observed.services.iter().filter_map(|s| s.replica_type));

        let mut by_slot: BTreeMap<ReplicaType, BTreeMap<i32, Vec<&PodFacts>>> = BTreeMap::new();
        for pod in pods {
            if let (Some(t), Some(i)) = (pod.replica_type, pod.index) {
                by_slot
                    .entry(t)
                    .or_default()
                    .entry(i)
                    .or_default()
                    .push(pod);
            }
        }
        let no_pods = BTreeMap::new();
        let mut to_create: Vec<(ReplicaType, i32)> = Vec::new();
        let mut to_delete: Vec<ChildRef> = Vec::new();
        let mut failed: Vec<(ReplicaType, &PodFacts)> = Vec::new();
        for &replica_type in &types {
            let replicas = spec.replicas.get(&replica_type).map_or(0, |r| r.replicas);
            let scan = slots::scan(
                replicas,
                &self.completed_indexes(replica_type, replicas),
                by_slot.get(&replica_type).unwrap_or(&no_pods),
            );
            to_create.extend(scan.missing.iter().map(|&i| (replica_type, i)));
            to_delete.extend(scan.surplus.iter().map(|p| child_ref(p)));
            failed.extend(scan.failed.iter().map(|&p| (replica_type, p)));
            outcome.completed.insert(replica_type, scan.completed);
        }

        for (replica_type, pod) in failed {
            let policy = spec
                .replicas
                .get(&replica_type)
                .map(|r| r.restart_policy)
                .unwrap_or_default();
            let already_counted = pod.uid.as_ref().is_some_and(|uid| {
                self.status
                    .replica_statuses
                    .get(replica_type.as_str())
                    .is_some_and(|s| s.restarted_pods.iter().any(|u| uid.is(u)))
            });
            let decision = restart::decide(
                policy,
                pod.exit_code,
                spec.backoff_limit,
                restarts_so_far,
                already_counted,
            );
            match decision {
                FailedPod::Keep => {}
                FailedPod::FailJob => {
                    self.exited_with_code(pod);
                    let detail = failure_detail(pod);
                    self.record(Transition::Failed(FailReason::ExitCode(
                        replica_type,
                        detail,
                    )));
                }
                FailedPod::OverBackoffLimit => {
                    outcome.limit = Some(Limit::Backoff);
                    return outcome;
                }
                // Its restart is stored; only the delete did not happen yet.
                FailedPod::DeleteOnly => to_delete.push(child_ref(pod)),
                FailedPod::Restart => {
                    // Each failure restarts the pod once: its in-place restarts move into the
                    // count kept in status, so the total survives the re-creation and an
                    // operator restart.
                    if let Some(uid) = &pod.uid {
                        outcome
                            .restarted_pods
                            .entry(replica_type)
                            .or_default()
                            .push(uid.to_string());
                    }
                    let consumed = pod.restarts.saturating_add(1);
                    restarts_so_far = restarts_so_far.saturating_add(1);
                    let counted = outcome.restarts.entry(replica_type).or_default();
                    *counted = counted.saturating_add(consumed);
                    to_delete.push(child_ref(pod));
                    self.exited_with_code(pod);
                    self.record(Transition::Restarting(replica_type, failure_detail(pod)));
                }
            }
        }

        if self.stuck_pods(spec, &mut outcome, &mut restarts_so_far) {
            return outcome;
        }

        self.plan.pod_warnings.extend(pods.iter().filter_map(|pod| {
            let (reason, message) = *pod.abnormal.clone()?;
            Some(PodWarning {
                pod_uid: pod.uid.as_ref()?.to_string(),
                reason,
                message,
            })
        }));
        self.blocked_pods();
        self.create_pods(spec, &to_create);
        self.plan.delete_pods.extend(to_delete);
        self.sync_services(spec, &types);
        outcome
    }

    /// Pods stuck Terminating: each is named (a Warning once, and a note on the condition);
    /// with force deletion on and its node lost, it is force-deleted and its replica's
    /// re-creation counted as a restart. Returns whether that restart would exceed
    /// `backoffLimit` (the job then fails; `outcome.limit` says so).
    fn stuck_pods(
        &mut self,
        spec: &EffectiveSpec,
        outcome: &mut ReplicaOutcome,
        restarts_so_far: &mut i32,
    ) -> bool {
        for pod in self.observed.pods {
            let Some(deletion) = pod.deletion.as_deref() else {
                continue;
            };
            let node_lost = deletion
                .node
                .as_ref()
                .is_some_and(|node| self.observed.lost_nodes.contains(node));
            let verdict = stuck::judge(
                deletion,
                self.now,
                self.config.stuck_after,
                node_lost,
                self.config.force_delete_stuck,
            );
            if verdict == stuck::Verdict::Waiting {
                // Nothing else may happen to wake the job when the grace runs out.
                if let Some(wait) = stuck::until_stuck(deletion, self.now, self.config.stuck_after)
                {
                    self.plan.requeue_after(wait);
                }
                continue;
            }
            let description = stuck::describe(&pod.name, deletion);
            if let Some(uid) = &pod.uid {
                self.plan.pod_warnings.push(PodWarning {
                    pod_uid: uid.to_string(),
                    reason: event_reason::POD_STUCK_TERMINATING.into(),
                    message: format!(
                        "Pod {}/{}",
                        self.namespace,
                        description.trim_start_matches("pod ")
                    ),
                });
            }
            self.notes.push(format!("{description}."));
            if verdict != stuck::Verdict::ForceDelete {
                if self.config.force_delete_stuck {
                    // Its node may be lost later, with no event on the job: look again.
                    self.plan.requeue_after(self.config.stuck_after);
                }
                continue;
            }
            if let (Some(replica_type), Some(uid)) = (pod.replica_type, &pod.uid) {
                let already_counted = self
                    .status
                    .replica_statuses
                    .get(replica_type.as_str())
                    .is_some_and(|s| s.restarted_pods.iter().any(|u| uid.is(u)));
                if !already_counted {
                    if !limits::may_restart(spec.backoff_limit, *restarts_so_far) {
                        outcome.limit = Some(Limit::Backoff);
                        return true;
                    }
                    outcome
                        .restarted_pods
                        .entry(replica_type)
                        .or_default()
                        .push(uid.to_string());
                    *restarts_so_far = restarts_so_far.saturating_add(1);
                    let counted = outcome.restarts.entry(replica_type).or_default();
                    *counted = counted.saturating_add(pod.restarts.saturating_add(1));
                    let detail = Some(format!(
                        "{} was stuck terminating on lost node {} and is force-deleted",
                        pod.name,
                        deletion.node.as_deref().unwrap_or("<none>")
                    ));
                    self.record(Transition::Restarting(replica_type, detail));
                }
            }
            self.plan.force_delete_pods.push(child_ref(pod));
        }
        false
    }

    /// Pods that cannot start: for each reason, a note on the current condition naming the
    /// first pod and how many others, and one Warning (the shell announces each message once).
    /// A lasting cause (a bad image, no node that fits) is told at once, plain waiting after
    /// `--pending-threshold`, when the pass asks to be woken.
    fn blocked_pods(&mut self) {
        let mut by_reason: BTreeMap<String, Vec<&PodFacts>> = BTreeMap::new();
        for pod in self.observed.pods {
            let Some(waiting) = pod.waiting.as_deref() else {
                continue;
            };
            match diagnosis::judge_start(waiting, self.now, self.config.pending_threshold) {
                diagnosis::Start::NotYet(Some(wait)) => self.plan.requeue_after(wait),
                diagnosis::Start::NotYet(None) => {}
                diagnosis::Start::Blocked(why) => by_reason.entry(why).or_default().push(pod),
            }
        }
        for (why, pods) in by_reason {
            let names: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
            let note = diagnosis::blocked_note(&names, &why);
            if let Some(uid) = pods
                .first()
                .and_then(|p| p.uid.as_ref())
                .map(ToString::to_string)
            {
                self.plan.pod_warnings.push(PodWarning {
                    pod_uid: uid,
                    reason: event_reason::POD_CANNOT_START.into(),
                    message: format!("TFJob {}/{}: {note}", self.namespace, self.name),
                });
            }
            self.notes.push(note);
        }
    }

    fn create_pods(&mut self, spec: &EffectiveSpec, to_create: &[(ReplicaType, i32)]) {
        if to_create.is_empty() {
            return;
        }
        let template_sets_restart_policy = to_create.iter().any(|(t, _)| {
            spec.replicas.get(t).is_some_and(|r| {
                r.template
                    .get()
                    .spec
                    .is_some_and(|s| s.restart_policy.is_some_and(|p| !p.is_empty()))
            })
        });
        let pods: Vec<_> = {
            let builder = self.builder(spec);
            let per_pass =
                batches::pods_per_pass(tf_config::longest_len(spec, &builder.addressing));
            to_create
                .iter()
                .take(per_pass)
                .map(|(t, i)| builder.pod(*t, *i))
                .collect()
        };
        if pods.len() < to_create.len() {
            self.plan.requeue_after(Duration::ZERO); // the rest in the next pass
        }
        self.plan.create_pods.extend(pods);
        if template_sets_restart_policy {
            self.event(
                true,
                event_reason::SET_POD_TEMPLATE_RESTART_POLICY,
                messages::POD_TEMPLATE_RESTART_POLICY.into(),
            );
        }
        if let Some(gang_scheduler) = &self.config.gang {
            let foreign_scheduler = spec.replicas.values().any(|r| {
                r.template
                    .get()
                    .spec
                    .and_then(|s| s.scheduler_name)
                    .is_some_and(|name| !name.is_empty() && name != gang_scheduler.scheduler_name())
            });
            if foreign_scheduler {
                self.event(
                    true,
                    gang::SET_POD_TEMPLATE_SCHEDULER_NAME,
                    gang::POD_TEMPLATE_SCHEDULER_NAME_MESSAGE.into(),
                );
            }
        }
    }

    fn sync_services(&mut self, spec: &EffectiveSpec, types: &BTreeSet<ReplicaType>) {
        let replicas: Vec<(ReplicaType, i32)> = types
            .iter()
            .map(|&t| (t, spec.replicas.get(&t).map_or(0, |r| r.replicas)))
            .collect();
        let decision = services::plan(
            self.config.service_mode,
            &self.name,
            &replicas,
            self.observed.services,
        );
        let created: Vec<_> = {
            let builder = self.builder(spec);
            decision
                .create
                .iter()
                .take(batches::MAX_CREATES_PER_PASS)
                .map(|wanted| match *wanted {
                    services::Wanted::Job => builder.job_service(),
                    services::Wanted::Replica(t, i) => builder.replica_service(t, i),
                })
                .collect()
        };
        if created.len() < decision.create.len() {
            self.plan.requeue_after(Duration::ZERO); // the rest in the next pass
        }
        self.plan.create_services.extend(created);
        self.plan.delete_services.extend(decision.delete);
    }
}

fn child_ref(pod: &PodFacts) -> ChildRef {
    ChildRef {
        name: pod.name.clone(),
        uid: pod.uid.as_ref().map(ToString::to_string),
    }
}

/// The decisive pod and how it failed, for a Failed or Restarting message.
pub(super) fn failure_detail(pod: &PodFacts) -> Option<String> {
    pod.failure.as_deref().map(diagnosis::describe_failure)
}
