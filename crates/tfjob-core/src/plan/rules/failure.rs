//! When failed replicas fail the job (upstream's status pass).
//!
//! Failed pods of any type fail the job unless something else explains them: a restart under
//! way ("Restarting masks failures": the failed pods are part of it), dynamic workers (Workers
//! may come and go), or a success already decided in this pass or before.

use crate::api::ReplicaType;

/// Why failed pods of a type do or do not fail the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No failed pods.
    Healthy,
    /// A restart is under way; the failed pods are part of it.
    MaskedByRestart,
    /// `enableDynamicWorker`: Worker failures are tolerated.
    DynamicWorker,
    /// The job already succeeded.
    AfterSuccess,
    /// The job fails.
    FailsJob,
}

/// The verdict on `failed` failed pods of `replica_type`.
pub fn verdict(
    replica_type: ReplicaType,
    failed: i32,
    restarting: bool,
    dynamic_worker: bool,
    succeeded: bool,
) -> Verdict {
    if failed <= 0 {
        Verdict::Healthy
    } else if restarting {
        Verdict::MaskedByRestart
    } else if dynamic_worker && replica_type == ReplicaType::Worker {
        Verdict::DynamicWorker
    } else if succeeded {
        Verdict::AfterSuccess
    } else {
        Verdict::FailsJob
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReplicaType::*;

    #[test]
    fn failed_pods_fail_the_job_unless_explained() {
        let cases = [
            // type, failed, restarting, dynamic workers, succeeded → verdict
            (Worker, 0, false, false, false, Verdict::Healthy),
            (Worker, 1, false, false, false, Verdict::FailsJob),
            (PS, 2, false, false, false, Verdict::FailsJob),
            (PS, 1, true, false, false, Verdict::MaskedByRestart),
            (Worker, 1, false, true, false, Verdict::DynamicWorker),
            (PS, 1, false, true, false, Verdict::FailsJob),
            (Evaluator, 1, false, false, true, Verdict::AfterSuccess),
            (Worker, 1, true, true, true, Verdict::MaskedByRestart),
        ];
        for (replica_type, failed, restarting, dynamic, succeeded, want) in cases {
            assert_eq!(
                verdict(replica_type, failed, restarting, dynamic, succeeded),
                want,
                "{replica_type} failed={failed} restarting={restarting} dynamic={dynamic} succeeded={succeeded}"
            );
        }
    }
}
