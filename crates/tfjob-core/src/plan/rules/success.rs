//! When a job is running and when it has succeeded (upstream's status pass).
//!
//! With a Chief (or Master), the chief alone decides: running while it runs, succeeded once it
//! has succeeded, whatever the workers do. Without one, the workers decide: succeeded when worker
//! 0 exited 0 (default success policy) or when every worker succeeded (`AllWorkers`), running
//! while any worker runs. Other types (PS, Evaluator) never decide.

use crate::api::{ReplicaType, SuccessPolicy};
use crate::plan::observe::{Phase, PodFacts};

/// A replica type's counts, as the status pass sees them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TypeCounts {
    /// `replicas` in the spec.
    pub replicas: i32,
    pub active: i32,
    pub succeeded: i32,
}

/// What one replica type says about the job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub running: bool,
    pub succeeded: bool,
}

/// The verdict of `replica_type` (nothing unless it is the type that decides).
pub fn verdict(
    replica_type: ReplicaType,
    has_chief: bool,
    policy: SuccessPolicy,
    worker0_completed: bool,
    counts: TypeCounts,
) -> Verdict {
    let all_succeeded = counts.replicas.saturating_sub(counts.succeeded) == 0;
    if has_chief {
        if !replica_type.is_chief() {
            return Verdict::default();
        }
        return Verdict {
            running: counts.active > 0,
            succeeded: all_succeeded,
        };
    }
    if replica_type != ReplicaType::Worker {
        return Verdict::default();
    }
    let succeeded = all_succeeded || (worker0_completed && policy != SuccessPolicy::AllWorkers);
    Verdict {
        running: !succeeded && counts.active > 0,
        succeeded,
    }
}

/// Worker 0 succeeded with exit code 0 (true when the job has no Worker type). Two pods in
/// slot 0 decide nothing.
pub fn worker0_completed(has_workers: bool, pods: &[PodFacts]) -> bool {
    if !has_workers {
        return true;
    }
    let mut slot0 = pods
        .iter()
        .filter(|p| p.replica_type == Some(ReplicaType::Worker) && p.index == Some(0));
    match (slot0.next(), slot0.next()) {
        (Some(pod), None) => pod.phase == Phase::Succeeded && pod.exit_code == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReplicaType::*;
    use SuccessPolicy::*;

    const NONE: Verdict = Verdict {
        running: false,
        succeeded: false,
    };
    const RUNNING: Verdict = Verdict {
        running: true,
        succeeded: false,
    };
    const SUCCEEDED: Verdict = Verdict {
        running: false,
        succeeded: true,
    };

    fn counts(replicas: i32, active: i32, succeeded: i32) -> TypeCounts {
        TypeCounts {
            replicas,
            active,
            succeeded,
        }
    }

    #[test]
    fn who_decides_and_what() {
        let cases = [
            // type, has chief, policy, worker 0 done, counts → verdict
            (Chief, true, Default, false, counts(1, 1, 0), RUNNING),
            (Chief, true, Default, false, counts(1, 0, 1), SUCCEEDED),
            (Chief, true, Default, false, counts(1, 0, 0), NONE),
            (Master, true, Default, false, counts(1, 1, 0), RUNNING),
            // the chief decides even when workers are done
            (Worker, true, Default, true, counts(2, 0, 2), NONE),
            // without a chief, worker 0 is enough by default
            (Worker, false, Default, true, counts(2, 1, 1), SUCCEEDED),
            (Worker, false, AllWorkers, true, counts(2, 1, 1), RUNNING),
            (Worker, false, AllWorkers, true, counts(2, 0, 2), SUCCEEDED),
            (Worker, false, Default, false, counts(2, 2, 0), RUNNING),
            (Worker, false, Default, false, counts(2, 0, 0), NONE),
            // other types never decide
            (PS, false, Default, true, counts(1, 1, 1), NONE),
            (Evaluator, true, Default, true, counts(1, 0, 1), NONE),
        ];
        for (replica_type, has_chief, policy, worker0, counts, want) in cases {
            assert_eq!(
                verdict(replica_type, has_chief, policy, worker0, counts),
                want,
                "{replica_type} chief={has_chief} {policy:?} worker0={worker0} {counts:?}"
            );
        }
    }

    #[test]
    fn a_chief_that_runs_and_succeeded_says_both() {
        assert_eq!(
            verdict(Chief, true, Default, false, counts(1, 1, 1)),
            Verdict {
                running: true,
                succeeded: true
            }
        );
    }

    fn pod(index: i32, phase: Phase, exit_code: i32) -> PodFacts {
        PodFacts {
            name: format!("w{index}"),
            uid: None,
            replica_type: Some(Worker),
            index: Some(index),
            phase,
            terminating: false,
            exit_code,
            restarts: 0,
            abnormal: None,
            failure: None,
            waiting: None,
            deletion: None,
        }
    }

    #[test]
    fn worker_zero_must_exit_zero_alone_in_its_slot() {
        let cases = [
            (true, vec![], false),
            (false, vec![], true),
            (true, vec![pod(0, Phase::Succeeded, 0)], true),
            (
                true,
                vec![pod(0, Phase::Succeeded, 0), pod(1, Phase::Running, 0)],
                true,
            ),
            (true, vec![pod(0, Phase::Failed, 1)], false),
            (true, vec![pod(0, Phase::Running, 0)], false),
            (true, vec![pod(1, Phase::Succeeded, 0)], false),
            (
                true,
                vec![pod(0, Phase::Succeeded, 0), pod(0, Phase::Succeeded, 0)],
                false,
            ),
        ];
        for (has_workers, pods, want) in cases {
            assert_eq!(worker0_completed(has_workers, &pods), want, "{pods:?}");
        }
    }
}
