//! The status pass (upstream's `UpdateJobStatus`, §7.4): replica counters, `startTime`, and
//! the Running / Succeeded / Failed decisions.

use std::collections::BTreeSet;

use super::conditions::{self, TRUE, reason};
use super::indexes;
use super::messages::{self, event_reason};
use super::observe::{NO_EXIT_CODE, Phase};
use super::planner::{JobCounter, Planner};
use super::replicas::ReplicaOutcome;
use crate::api::{EffectiveSpec, ReplicaStatus, ReplicaType, SmallMap, SuccessPolicy};

impl Planner<'_> {
    pub(super) fn update_status(&mut self, spec: &EffectiveSpec, outcome: &ReplicaOutcome) {
        self.status.replica_statuses = self.replica_statuses(spec, outcome);
        if self.status.start_time.is_none() {
            self.status.start_time = Some(self.now_time());
        }

        let restarting = self
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == conditions::RESTARTING)
            .map(|c| {
                (
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default(),
                )
            });
        let worker0_completed = self.worker0_completed(spec);
        let has_chief = spec.has_chief();
        let mut succeeded = false;

        for (&replica_type, replica) in &spec.replicas {
            let counts = self
                .status
                .replica_statuses
                .get(replica_type.as_str())
                .cloned()
                .unwrap_or_default();
            let expected = replica.replicas - counts.succeeded;
            if has_chief {
                if replica_type.is_chief() {
                    if counts.active > 0 {
                        self.set_running();
                    }
                    if expected == 0 {
                        succeeded |= self.succeed();
                    }
                }
            } else if replica_type == ReplicaType::Worker {
                if expected == 0
                    || (worker0_completed && spec.success_policy != SuccessPolicy::AllWorkers)
                {
                    succeeded |= self.succeed();
                } else if counts.active > 0 {
                    self.set_running();
                }
            }

            if counts.failed > 0 {
                if let Some((reason, message)) = &restarting {
                    // "Restarting masks failures": failed pods are part of the restart.
                    self.set_condition(conditions::RESTARTING, TRUE, reason, message);
                } else if spec.enable_dynamic_worker && replica_type == ReplicaType::Worker {
                    // Dynamic workers may come and go.
                } else if !succeeded
                    && !conditions::is_true(&self.status.conditions, conditions::SUCCEEDED)
                {
                    self.fail(replica_type, counts.failed);
                }
            }
        }
    }

    /// Counters recomputed from the pods that exist now, plus the remembered completed indices
    /// and restarts (extensions that survive pod deletion and operator restarts).
    fn replica_statuses(
        &self,
        spec: &EffectiveSpec,
        outcome: &ReplicaOutcome,
    ) -> SmallMap<ReplicaStatus> {
        spec.replicas
            .iter()
            .map(|(&replica_type, replica)| {
                let old = self
                    .status
                    .replica_statuses
                    .get(replica_type.as_str())
                    .cloned()
                    .unwrap_or_default();
                let pods = self
                    .pods
                    .iter()
                    .filter(|p| p.replica_type == Some(replica_type));
                let mut status = ReplicaStatus {
                    label_selector: old.label_selector,
                    selector: old.selector,
                    ..Default::default()
                };
                for pod in pods {
                    if pod.is_active() {
                        status.active += 1;
                    }
                    // A terminating pod is a failure only where nothing will restart it.
                    let restarts = replica.restart_policy.restarts_failed_pods();
                    let counts_as_failed = match pod.phase {
                        Phase::Failed => !(pod.terminating && restarts),
                        Phase::Running => pod.terminating && !restarts,
                        _ => false,
                    };
                    if counts_as_failed {
                        status.failed += 1;
                    }
                }
                let completed = outcome
                    .completed
                    .get(&replica_type)
                    .cloned()
                    .unwrap_or_default();
                status.succeeded = completed.len() as i32;
                status.completed_indexes = indexes::format(&completed);
                status.restarts = old
                    .restarts
                    .saturating_add(outcome.restarts.get(&replica_type).copied().unwrap_or(0));
                // Remembered while the pod still exists (its delete may yet fail).
                let alive: BTreeSet<&str> =
                    self.pods.iter().filter_map(|p| p.uid.as_deref()).collect();
                status.restarted_pods = old
                    .restarted_pods
                    .iter()
                    .chain(
                        outcome
                            .restarted_pods
                            .get(&replica_type)
                            .into_iter()
                            .flatten(),
                    )
                    .filter(|uid| alive.contains(uid.as_str()))
                    .cloned()
                    .collect();
                (replica_type.as_str().to_string(), status)
            })
            .collect()
    }

    /// Worker 0 succeeded with exit code 0 (true when there is no Worker type).
    fn worker0_completed(&self, spec: &EffectiveSpec) -> bool {
        if !spec.replicas.contains_key(&ReplicaType::Worker) {
            return true;
        }
        let mut slot0 = self
            .pods
            .iter()
            .filter(|p| p.replica_type == Some(ReplicaType::Worker) && p.index == Some(0));
        match (slot0.next(), slot0.next()) {
            (Some(pod), None) => pod.phase == Phase::Succeeded && pod.exit_code == 0,
            _ => false,
        }
    }

    fn set_running(&mut self) {
        let message = messages::running(&self.namespace, &self.name);
        self.set_condition(conditions::RUNNING, TRUE, reason::RUNNING, &message);
    }

    /// Marks the job Succeeded; true when this pass decided it.
    fn succeed(&mut self) -> bool {
        let message = messages::succeeded(&self.namespace, &self.name);
        if !self.set_condition(conditions::SUCCEEDED, TRUE, reason::SUCCEEDED, &message) {
            return false;
        }
        self.mark_completion();
        self.event(false, reason::SUCCEEDED, message);
        self.plan.counters.push(JobCounter::Succeeded);
        true
    }

    fn fail(&mut self, replica_type: ReplicaType, failed: i32) {
        let message = messages::failed(&self.namespace, &self.name, failed, replica_type);
        if !self.set_condition(conditions::FAILED, TRUE, reason::FAILED, &message) {
            return;
        }
        self.mark_completion();
        self.event(false, reason::FAILED, message);
        self.plan.counters.push(JobCounter::Failed);
        let exits: Vec<(String, i32)> = self
            .pods
            .iter()
            .filter(|p| {
                p.replica_type == Some(replica_type)
                    && p.phase == Phase::Failed
                    && p.exit_code != NO_EXIT_CODE
            })
            .map(|p| (p.name.clone(), p.exit_code))
            .collect();
        for (pod, code) in exits {
            let message = messages::exited_with_code(&self.namespace, &pod, code);
            self.event(false, event_reason::EXITED_WITH_CODE, message);
        }
    }
}
