//! The degraded mode of `--allow-upstream-crd`: the installed CRD is upstream's, which has no
//! place for this operator's status extensions (`replicaStatuses[T].{restarts, completedIndexes,
//! restartedPods}`), so the apiserver drops them from every write. Writing them anyway would
//! make every pass see a difference and write again; so they are left out of the status before
//! it is compared and written, and each job that needed one is told once, with the fix.

use tfjob_core::api::JobStatus;
use tfjob_core::plan::{JobEvent, Plan};

/// The reason of the Warning event a job gets when it needs a field the CRD drops.
pub const REASON: &str = "TFJobStatusFieldsDropped";

/// Fits `plan`'s status to a CRD without the extensions: leaves them out, and drops the status
/// write when nothing else changed compared with `current`. Returns whether the plan needed an
/// extension (a counted restart, a completed index, a restart in flight).
pub fn fit_to_upstream_crd(plan: &mut Plan, current: &JobStatus) -> bool {
    let Some(status) = plan.status.as_mut() else {
        return false;
    };
    let needed = strip(status);
    let mut stored = current.clone();
    strip(&mut stored);
    if *status == stored {
        plan.status = None;
    }
    needed
}

/// Removes the extensions; whether any that changes behaviour carried a value (`lastFailure`
/// and `ready` only inform, so losing them is not worth a Warning).
fn strip(status: &mut JobStatus) -> bool {
    let mut had_any = false;
    for replica in status.replica_statuses.values_mut() {
        had_any |= replica.restarts != 0
            || replica.completed_indexes.is_some()
            || !replica.restarted_pods.is_empty();
        replica.restarts = 0;
        replica.completed_indexes = None;
        replica.restarted_pods.clear();
        replica.last_failure = None;
    }
    status.ready = None;
    had_any
}

/// The Warning a job gets the first time it needs a field the installed CRD drops; `fix` is
/// the command that replaces the CRD.
pub fn warning(fix: &str) -> JobEvent {
    JobEvent {
        warning: true,
        reason: REASON.into(),
        message: format!(
            "the installed TFJob CRD drops status.replicaStatuses[*].restarts, completedIndexes \
             and restartedPods, so this job's backoffLimit counts only live pods, a succeeded \
             replica may run again and a restart may be counted twice, as in training-operator; \
             replace the CRD: {fix}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfjob_core::api::ReplicaStatus;

    fn status(restarts: i32, completed: Option<&str>, active: i32) -> JobStatus {
        JobStatus {
            replica_statuses: [(
                "Worker",
                ReplicaStatus {
                    active,
                    restarts,
                    completed_indexes: completed.map(String::from),
                    ..Default::default()
                },
            )]
            .into(),
            ..Default::default()
        }
    }

    fn informed(mut status: JobStatus) -> JobStatus {
        status.ready = Some("2/2".into());
        status
            .replica_statuses
            .get_mut("Worker")
            .unwrap()
            .last_failure = Some(Box::new(tfjob_core::api::ReplicaFailure {
            pod: "j-worker-0".into(),
            reason: "OOMKilled".into(),
            ..Default::default()
        }));
        status
    }

    #[test]
    fn extensions_are_left_out_and_an_unchanged_rest_is_not_written() {
        let cases = [
            // planned, stored (as the upstream CRD keeps it) → needed an extension, writes
            (status(1, None, 2), status(0, None, 2), true, false),
            (status(1, Some("0"), 3), status(0, None, 2), true, true),
            (status(0, None, 3), status(0, None, 2), false, true),
            (status(0, None, 2), status(0, None, 2), false, false),
            // lastFailure and ready are pruned too, without a Warning: no write loop
            (
                informed(status(0, None, 2)),
                status(0, None, 2),
                false,
                false,
            ),
        ];
        for (planned, stored, needed, writes) in cases {
            let mut plan = Plan {
                status: Some(planned.clone()),
                ..Default::default()
            };
            assert_eq!(
                fit_to_upstream_crd(&mut plan, &stored),
                needed,
                "{planned:?}"
            );
            assert_eq!(plan.status.is_some(), writes, "{planned:?}");
            if let Some(written) = &plan.status {
                let worker = &written.replica_statuses["Worker"];
                assert_eq!((worker.restarts, &worker.completed_indexes), (0, &None));
            }
        }
    }
}
