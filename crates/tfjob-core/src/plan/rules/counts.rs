//! `status.replicaStatuses[T]`: the counters recomputed from the pods that exist now, plus the
//! memory that must survive pod deletion and operator restarts (this project's extensions:
//! `completedIndexes`, `restarts`, `restartedPods`, `lastFailure`).

use std::collections::BTreeSet;

use crate::api::{ReplicaStatus, RestartPolicy, Uid};
use crate::plan::observe::{Phase, PodFacts};
use crate::plan::{diagnosis, indexes};

/// What this pass adds to a type's memory.
#[derive(Clone, Copy, Debug)]
pub struct PassMemory<'a> {
    /// Indices completed after this pass.
    pub completed: &'a BTreeSet<i32>,
    /// Restarts decided in this pass (re-creations plus the pods' in-place restarts).
    pub restarts: i32,
    /// UIDs of the failed pods whose restart this pass counts.
    pub restarted_pods: &'a [String],
}

impl Default for PassMemory<'_> {
    fn default() -> Self {
        static NONE: BTreeSet<i32> = BTreeSet::new();
        PassMemory {
            completed: &NONE,
            restarts: 0,
            restarted_pods: &[],
        }
    }
}

/// The new status of one replica type. `pods` are the type's pods; `alive` the UIDs of all the
/// job's pods (a restart is remembered while its pod still exists, since its delete may yet fail).
pub fn replica_status<'a>(
    old: &ReplicaStatus,
    pods: impl IntoIterator<Item = &'a PodFacts>,
    policy: RestartPolicy,
    pass: PassMemory<'_>,
    alive: &[&Uid],
) -> ReplicaStatus {
    let mut status = ReplicaStatus {
        label_selector: old.label_selector.clone(),
        selector: old.selector.clone(),
        ..Default::default()
    };
    let restarts_failed_pods = policy.restarts_failed_pods();
    let mut last_failure = old.last_failure.clone();
    for pod in pods {
        if let Some(failure) = pod.failure.as_deref()
            && diagnosis::is_newer(last_failure.as_deref(), failure)
        {
            last_failure = Some(Box::new(failure.clone()));
        }
        if pod.is_active() {
            status.active = status.active.saturating_add(1);
        }
        // A terminating pod is a failure only where nothing will restart it.
        let failed = match pod.phase {
            Phase::Failed => !(pod.terminating && restarts_failed_pods),
            Phase::Running => pod.terminating && !restarts_failed_pods,
            _ => false,
        };
        if failed {
            status.failed = status.failed.saturating_add(1);
        }
    }
    status.succeeded = i32::try_from(pass.completed.len()).unwrap_or(i32::MAX);
    status.completed_indexes = indexes::format(pass.completed);
    status.restarts = old.restarts.saturating_add(pass.restarts);
    status.restarted_pods = old
        .restarted_pods
        .iter()
        .chain(pass.restarted_pods)
        .filter(|uid| alive.iter().any(|a| a.is(uid)))
        .cloned()
        .collect();
    status.last_failure = last_failure;
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str, phase: Phase, terminating: bool) -> PodFacts {
        PodFacts {
            name: uid.into(),
            uid: Some(uid.into()),
            replica_type: None,
            index: None,
            phase,
            terminating,
            exit_code: 0,
            restarts: 0,
            abnormal: None,
            failure: None,
            waiting: None,
            deletion: None,
        }
    }

    #[test]
    fn counters_per_pod_state_and_policy() {
        use Phase::*;
        // pods, policy → (active, failed)
        let cases = [
            (vec![pod("a", Running, false)], RestartPolicy::Never, (1, 0)),
            (vec![pod("a", Pending, false)], RestartPolicy::Never, (0, 0)),
            (vec![pod("a", Failed, false)], RestartPolicy::Never, (0, 1)),
            (
                vec![pod("a", Failed, false)],
                RestartPolicy::OnFailure,
                (0, 1),
            ),
            // a deleted failed pod is being restarted, unless nothing restarts it
            (
                vec![pod("a", Failed, true)],
                RestartPolicy::OnFailure,
                (0, 0),
            ),
            (vec![pod("a", Failed, true)], RestartPolicy::Never, (0, 1)),
            // a running pod being deleted (eviction): a failure only under Never
            (vec![pod("a", Running, true)], RestartPolicy::Never, (0, 1)),
            (
                vec![pod("a", Running, true)],
                RestartPolicy::ExitCode,
                (0, 0),
            ),
            (
                vec![
                    pod("a", Running, false),
                    pod("b", Running, false),
                    pod("c", Succeeded, false),
                ],
                RestartPolicy::Never,
                (2, 0),
            ),
        ];
        for (pods, policy, (active, failed)) in cases {
            let status = replica_status(
                &ReplicaStatus::default(),
                &pods,
                policy,
                PassMemory::default(),
                &[],
            );
            assert_eq!(
                (status.active, status.failed),
                (active, failed),
                "{pods:?} {policy:?}"
            );
        }
    }

    #[test]
    fn memory_survives_pods_and_forgets_restarts_of_pods_that_are_gone() {
        let old = ReplicaStatus {
            succeeded: 1,
            restarts: 2,
            restarted_pods: vec!["gone".into(), "deleting".into()],
            completed_indexes: Some("0".into()),
            selector: Some("kept".into()),
            ..Default::default()
        };
        let completed = BTreeSet::from([0, 2, 3]);
        let new_restart = ["fresh".to_string()];
        let alive = [&Uid::new("deleting"), &Uid::new("fresh")];
        let status = replica_status(
            &old,
            [],
            RestartPolicy::OnFailure,
            PassMemory {
                completed: &completed,
                restarts: 3,
                restarted_pods: &new_restart,
            },
            &alive,
        );
        assert_eq!(status.succeeded, 3);
        assert_eq!(status.completed_indexes.as_deref(), Some("0,2-3"));
        assert_eq!(status.restarts, 5);
        assert_eq!(status.restarted_pods, ["deleting", "fresh"]);
        assert_eq!(status.selector.as_deref(), Some("kept"));
    }

    #[test]
    fn the_last_failure_survives_its_pod_and_moves_only_forward() {
        use crate::api::ReplicaFailure;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let failure = |pod: &str, minute: i8| ReplicaFailure {
            pod: pod.into(),
            container: Some("tensorflow".into()),
            exit_code: Some(137),
            reason: "OOMKilled".into(),
            message: None,
            time: Some(Time(
                jiff::civil::date(2026, 1, 1)
                    .at(0, minute, 0, 0)
                    .in_tz("UTC")
                    .unwrap()
                    .timestamp(),
            )),
        };
        let failed_pod = |name: &str, minute: i8| PodFacts {
            failure: Some(Box::new(failure(name, minute))),
            ..pod(name, Phase::Failed, false)
        };
        let stored = |f: Option<ReplicaFailure>| ReplicaStatus {
            last_failure: f.map(Box::new),
            ..Default::default()
        };
        // stored, pods → the new lastFailure's pod
        let cases = [
            (None, vec![], None),
            (Some(failure("a", 1)), vec![], Some("a")),
            (None, vec![failed_pod("b", 2)], Some("b")),
            (Some(failure("a", 1)), vec![failed_pod("b", 2)], Some("b")),
            (Some(failure("c", 5)), vec![failed_pod("b", 2)], Some("c")),
            (
                None,
                vec![failed_pod("b", 2), failed_pod("d", 3), failed_pod("e", 1)],
                Some("d"),
            ),
        ];
        for (old, pods, want) in cases {
            let status = replica_status(
                &stored(old.clone()),
                &pods,
                RestartPolicy::Never,
                PassMemory::default(),
                &[],
            );
            assert_eq!(
                status.last_failure.as_ref().map(|f| f.pod.as_str()),
                want,
                "{old:?}"
            );
        }
    }

    #[test]
    fn restart_counts_saturate() {
        let old = ReplicaStatus {
            restarts: i32::MAX - 1,
            ..Default::default()
        };
        let status = replica_status(
            &old,
            [],
            RestartPolicy::Always,
            PassMemory {
                restarts: 5,
                ..PassMemory::default()
            },
            &[],
        );
        assert_eq!(status.restarts, i32::MAX);
    }
}
