//! The status pass (upstream's `UpdateJobStatus`): replica counters, `startTime`, and the
//! Running / Succeeded / Failed verdicts, type by type in upstream's order.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::Pass;
use super::replicas::ReplicaOutcome;
use crate::api::{EffectiveSpec, ReplicaStatus, ReplicaType, Uid};
use crate::plan::messages::{self, event_reason};
use crate::plan::observe::{NO_EXIT_CODE, Phase};
use crate::plan::rules::{counts, failure, success};
use crate::plan::transitions::{FailReason, Transition};
use crate::plan::{conditions, diagnosis};

impl Pass<'_> {
    /// The status pass (upstream's `UpdateJobStatus`): replica counters, `startTime`, and the
    /// Running / Succeeded / Failed decisions, type by type in upstream's order.
    pub(super) fn status_pass(&mut self, spec: &EffectiveSpec, outcome: &ReplicaOutcome) {
        let pods = self.observed.pods;
        let alive: Vec<&Uid> = pods.iter().filter_map(|p| p.uid.as_ref()).collect();
        let no_indexes = BTreeSet::new();
        self.status.replica_statuses = spec
            .replicas
            .iter()
            .map(|(&replica_type, replica)| {
                let old = self
                    .status
                    .replica_statuses
                    .get(replica_type.as_str())
                    .cloned()
                    .unwrap_or_default();
                let pass = counts::PassMemory {
                    completed: outcome.completed.get(&replica_type).unwrap_or(&no_indexes),
                    restarts: outcome.restarts.get(&replica_type).copied().unwrap_or(0),
                    restarted_pods: outcome
                        .restarted_pods
                        .get(&replica_type)
                        .map_or(&[], Vec::as_slice),
                };
                let of_type = pods.iter().filter(|p| p.replica_type == Some(replica_type));
                let status =
                    counts::replica_status(&old, of_type, replica.restart_policy, pass, &alive);
                (replica_type.as_str().to_string(), status)
            })
            .collect();
        if self.status.start_time.is_none() {
            self.status.start_time = Some(Time(self.now));
        }

        // "Restarting masks failures": a restart under way keeps its condition, as stored.
        let restarting = self
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == conditions::RESTARTING)
            .map(|c| Transition::StillRestarting {
                reason: c.reason.clone().unwrap_or_default(),
                message: c.message.clone().unwrap_or_default(),
            });
        let has_workers = spec.replicas.contains_key(&ReplicaType::Worker);
        let worker0_completed = success::worker0_completed(has_workers, pods);
        let has_chief = spec.has_chief();
        let mut succeeded = false;
        for (&replica_type, replica) in &spec.replicas {
            let counted: ReplicaStatus = self
                .status
                .replica_statuses
                .get(replica_type.as_str())
                .cloned()
                .unwrap_or_default();
            let verdict = success::verdict(
                replica_type,
                has_chief,
                spec.success_policy,
                worker0_completed,
                success::TypeCounts {
                    replicas: replica.replicas,
                    active: counted.active,
                    succeeded: counted.succeeded,
                },
            );
            if verdict.running {
                self.record(Transition::Running);
            }
            if verdict.succeeded {
                succeeded |= self.record(Transition::Succeeded);
            }
            let failure = failure::verdict(
                replica_type,
                counted.failed,
                restarting.is_some(),
                spec.enable_dynamic_worker,
                succeeded || self.is_true(conditions::SUCCEEDED),
            );
            match (failure, &restarting) {
                (failure::Verdict::MaskedByRestart, Some(still)) => {
                    self.record(still.clone());
                }
                (failure::Verdict::FailsJob, _) => {
                    self.fail_for_replicas(replica_type, counted.failed)
                }
                _ => {}
            }
        }
    }

    /// Failed replicas fail the job; each failed pod's exit code is announced with it. The
    /// message names the most recent failure of the type.
    fn fail_for_replicas(&mut self, replica_type: ReplicaType, failed: i32) {
        let failed_pods = || {
            self.observed
                .pods
                .iter()
                .filter(move |p| p.replica_type == Some(replica_type) && p.phase == Phase::Failed)
        };
        let decisive = failed_pods()
            .filter_map(|p| p.failure.as_deref())
            .max_by_key(|f| f.time.as_ref().map(|t| t.0));
        let why = FailReason::Replicas {
            replica_type,
            failed,
            detail: decisive.map(diagnosis::describe_failure),
        };
        if !self.record(Transition::Failed(why)) {
            return;
        }
        let exits: Vec<(String, i32)> = failed_pods()
            .filter(|p| p.exit_code != NO_EXIT_CODE)
            .map(|p| (p.name.clone(), p.exit_code))
            .collect();
        for (pod, code) in exits {
            let message = messages::exited_with_code(&self.namespace, &pod, code);
            self.event(false, event_reason::EXITED_WITH_CODE, message);
        }
    }
}
