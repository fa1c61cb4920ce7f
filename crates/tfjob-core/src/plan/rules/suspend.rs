//! Suspend and resume (`runPolicy.suspend`, Kueue's admission switch).
//!
//! Suspending deletes every pod and Service (see [`super::cleanup::everything`]), zeroes the
//! active counts, turns `Running` False and sets `Suspended` once. It also forgets which indices
//! completed and which restarts are in flight: after a Kueue preemption every replica runs again,
//! as upstream re-creates every pod on resume (a chief must not wait for peers that never
//! start). The restart count stays: back-off history survives a suspension, as a Kubernetes
//! Job's failure count does. Resuming turns `Suspended` False and restarts the deadline clock
//! (upstream counts `activeDeadlineSeconds` from the resume).

use crate::api::ReplicaStatus;
use crate::plan::transitions::Transition;

/// A replica type's status while its job is suspended.
pub fn suspended_status(status: &ReplicaStatus) -> ReplicaStatus {
    ReplicaStatus {
        active: 0,
        completed_indexes: None,
        restarted_pods: Vec::new(),
        ..status.clone()
    }
}

/// The transitions of a pass that finds the job suspended.
pub fn suspend(running: bool, suspended: bool) -> Vec<Transition> {
    let mut transitions = Vec::new();
    if running {
        transitions.push(Transition::RunningSuspended);
    }
    if !suspended {
        transitions.push(Transition::Suspended);
    }
    transitions
}

/// The transition of a pass that finds the job no longer suspended.
pub fn resume(suspended: bool) -> Option<Transition> {
    suspended.then_some(Transition::Resumed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspending_stops_running_and_marks_suspended_once() {
        let cases = [
            (
                true,
                false,
                vec![Transition::RunningSuspended, Transition::Suspended],
            ),
            (false, false, vec![Transition::Suspended]),
            (false, true, vec![]),
            (true, true, vec![Transition::RunningSuspended]),
        ];
        for (running, suspended, want) in cases {
            assert_eq!(
                suspend(running, suspended),
                want,
                "running={running} suspended={suspended}"
            );
        }
    }

    #[test]
    fn a_suspended_job_forgets_its_progress_but_not_its_restarts() {
        let running = ReplicaStatus {
            active: 2,
            succeeded: 1,
            failed: 1,
            restarts: 3,
            completed_indexes: Some("0".into()),
            restarted_pods: vec!["uid-1".into()],
            ..Default::default()
        };
        assert_eq!(
            suspended_status(&running),
            ReplicaStatus {
                active: 0,
                succeeded: 1,
                failed: 1,
                restarts: 3,
                completed_indexes: None,
                restarted_pods: vec![],
                ..Default::default()
            }
        );
    }

    #[test]
    fn resuming_only_a_suspended_job() {
        assert_eq!(resume(true), Some(Transition::Resumed));
        assert_eq!(resume(false), None);
    }
}
