//! The pod and Service loop of one pass: create missing replicas, delete surplus ones, restart
//! or fail on failed pods (upstream's `ReconcilePods`/`ReconcileServices`, §6.7–6.8).

use std::collections::{BTreeMap, BTreeSet};

use super::children::ServiceMode;
use super::conditions::{self, TRUE, reason};
use super::gang;
use super::messages::{self, event_reason};
use super::observe::{NO_EXIT_CODE, Phase, PodFacts};
use super::planner::{ChildRef, JobCounter, Limit, Planner, PodWarning};
use crate::api::policy::is_retryable_exit_code;
use crate::api::{EffectiveSpec, ReplicaType, RestartPolicy};

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

impl Planner<'_> {
    pub(super) fn reconcile_replicas(&mut self, spec: &EffectiveSpec) -> ReplicaOutcome {
        let mut outcome = ReplicaOutcome::default();
        let mut restarts_so_far = self.restarts_so_far();
        // Types no longer in the spec are scaled to zero.
        let mut types: BTreeSet<ReplicaType> = spec.replicas.keys().copied().collect();
        types.extend(self.pods.iter().filter_map(|p| p.replica_type));
        types.extend(self.services.iter().filter_map(|s| s.replica_type));

        let slots = self.pods_by_slot();
        let mut to_create: Vec<(ReplicaType, i32)> = Vec::new();
        let mut to_delete: Vec<ChildRef> = Vec::new();
        let mut failed: Vec<(ReplicaType, RestartPolicy, PodFacts)> = Vec::new();

        for &replica_type in &types {
            let (replicas, policy) = spec
                .replicas
                .get(&replica_type)
                .map_or((0, RestartPolicy::Never), |r| {
                    (r.replicas, r.restart_policy)
                });
            let mut completed: BTreeSet<i32> = self
                .completed_indexes(replica_type)
                .into_iter()
                .filter(|i| *i < replicas)
                .collect();
            let highest = slots
                .keys()
                .filter(|(t, _)| *t == replica_type)
                .map(|(_, i)| i + 1)
                .max()
                .unwrap_or(0);
            for index in 0..replicas.max(highest) {
                // Deterministic names make two pods in one slot impossible for our own pods;
                // should it happen anyway, the first one decides, as upstream.
                let Some(pod) = slots
                    .get(&(replica_type, index))
                    .and_then(|pods| pods.first())
                else {
                    // A succeeded index is never run again when its pod disappears.
                    if index < replicas && !completed.contains(&index) {
                        to_create.push((replica_type, index));
                    }
                    continue;
                };
                if pod.terminating {
                    continue;
                }
                if index >= replicas {
                    to_delete.push(child_ref(pod));
                    continue;
                }
                match pod.phase {
                    Phase::Succeeded => {
                        completed.insert(index);
                    }
                    Phase::Failed => failed.push((replica_type, policy, (*pod).clone())),
                    _ => {}
                }
            }
            outcome.completed.insert(replica_type, completed);
        }

        for (replica_type, policy, pod) in failed {
            let retry = match policy {
                RestartPolicy::Always | RestartPolicy::OnFailure => true,
                RestartPolicy::ExitCode => is_retryable_exit_code(pod.exit_code),
                RestartPolicy::Never => false, // the status pass fails the job
            };
            if policy == RestartPolicy::ExitCode && !retry {
                self.exited_with_code(&pod);
                let message = messages::exit_code_failure(&self.name, replica_type);
                if self.set_condition(conditions::FAILED, TRUE, reason::FAILED, &message) {
                    self.mark_completion();
                    self.event(true, reason::FAILED, message);
                    self.plan.counters.push(JobCounter::Failed);
                }
                continue;
            }
            if !retry {
                continue;
            }
            if spec
                .backoff_limit
                .is_some_and(|limit| restarts_so_far.saturating_add(1) > limit)
            {
                outcome.limit = Some(Limit::Backoff);
                return outcome;
            }
            let already_counted = pod.uid.as_ref().is_some_and(|uid| {
                self.status
                    .replica_statuses
                    .get(replica_type.as_str())
                    .is_some_and(|s| s.restarted_pods.contains(uid))
            });
            if already_counted {
                // Its restart is stored; only the delete did not happen yet.
                to_delete.push(child_ref(&pod));
                continue;
            }
            // Each failure restarts the pod once: its in-place restarts move into the count
            // kept in status, so the total survives the re-creation and an operator restart.
            if let Some(uid) = &pod.uid {
                outcome
                    .restarted_pods
                    .entry(replica_type)
                    .or_default()
                    .push(uid.clone());
            }
            let consumed = 1 + pod.restarts;
            restarts_so_far = restarts_so_far.saturating_add(1);
            *outcome.restarts.entry(replica_type).or_default() += consumed;
            to_delete.push(child_ref(&pod));
            self.exited_with_code(&pod);
            let message = messages::restarting(&self.name, replica_type);
            self.set_condition(conditions::RESTARTING, TRUE, reason::RESTARTING, &message);
            self.event(true, reason::RESTARTING, message);
            self.plan.counters.push(JobCounter::Restarted);
        }

        self.plan
            .pod_warnings
            .extend(self.pods.iter().filter_map(|pod| {
                let (reason, message) = *pod.abnormal.clone()?;
                Some(PodWarning {
                    pod_uid: pod.uid.clone()?,
                    reason,
                    message,
                })
            }));
        self.plan_pod_creation(spec, &to_create);
        self.plan.delete_pods.extend(to_delete);
        self.plan_services(spec, &types);
        outcome
    }

    fn plan_pod_creation(&mut self, spec: &EffectiveSpec, to_create: &[(ReplicaType, i32)]) {
        if to_create.is_empty() {
            return;
        }
        let template_sets_restart_policy = to_create.iter().any(|(t, _)| {
            spec.replicas[t]
                .template
                .get()
                .spec
                .is_some_and(|s| s.restart_policy.is_some_and(|p| !p.is_empty()))
        });
        let pods: Vec<_> = {
            let builder = self.builder(spec);
            to_create.iter().map(|(t, i)| builder.pod(*t, *i)).collect()
        };
        self.plan.create_pods.extend(pods);
        if template_sets_restart_policy {
            self.event(
                true,
                event_reason::SET_POD_TEMPLATE_RESTART_POLICY,
                messages::POD_TEMPLATE_RESTART_POLICY.into(),
            );
        }
        if let Some(gang) = &self.config.gang {
            let foreign_scheduler = spec.replicas.values().any(|r| {
                r.template
                    .get()
                    .spec
                    .and_then(|s| s.scheduler_name)
                    .is_some_and(|name| !name.is_empty() && name != gang.scheduler_name())
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

    /// Missing Services are created for every replica index; surplus ones are deleted.
    fn plan_services(&mut self, spec: &EffectiveSpec, types: &BTreeSet<ReplicaType>) {
        let builder = self.builder(spec);
        let mut create = Vec::new();
        let mut delete = Vec::new();
        match self.config.service_mode {
            ServiceMode::PerJob => {
                if !self.services.iter().any(|s| s.name == self.name) {
                    create.push(builder.job_service());
                }
            }
            ServiceMode::PerReplica => {
                for &replica_type in types {
                    let replicas = spec.replicas.get(&replica_type).map_or(0, |r| r.replicas);
                    let existing: BTreeSet<i32> = self
                        .services
                        .iter()
                        .filter(|s| s.replica_type == Some(replica_type))
                        .filter_map(|s| s.index)
                        .collect();
                    create.extend(
                        (0..replicas)
                            .filter(|i| !existing.contains(i))
                            .map(|i| builder.replica_service(replica_type, i)),
                    );
                    delete.extend(
                        self.services
                            .iter()
                            .filter(|s| s.replica_type == Some(replica_type) && !s.terminating)
                            .filter(|s| s.index.is_some_and(|i| i >= replicas))
                            .map(|s| ChildRef {
                                name: s.name.clone(),
                                uid: s.uid.clone(),
                            }),
                    );
                }
            }
        }
        self.plan.create_services.extend(create);
        self.plan.delete_services.extend(delete);
    }

    fn exited_with_code(&mut self, pod: &PodFacts) {
        if pod.exit_code != NO_EXIT_CODE {
            let message = messages::exited_with_code(&self.namespace, &pod.name, pod.exit_code);
            self.event(false, event_reason::EXITED_WITH_CODE, message);
        }
    }
}

pub(super) fn child_ref(pod: &PodFacts) -> ChildRef {
    ChildRef {
        name: pod.name.clone(),
        uid: pod.uid.clone(),
    }
}
