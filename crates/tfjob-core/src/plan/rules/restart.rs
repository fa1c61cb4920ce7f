//! What happens to a failed pod, under each restart policy and the back-off limit.
//!
//! `Always` and `OnFailure` replace it; `ExitCode` replaces it only after a retryable exit
//! (128 and above: a signal such as OOM or preemption) and fails the job on any other code;
//! `Never` leaves it for the status pass, which fails the job. A replacement needs room under
//! `backoffLimit`. A pod whose restart status already records (its delete failed, or the
//! operator restarted) is only deleted, never counted twice.

use crate::api::RestartPolicy;
use crate::api::policy::is_retryable_exit_code;

use super::limits;

/// The decision for one failed pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailedPod {
    /// Replace the pod and count the restart.
    Restart,
    /// Its restart is already counted: only delete it.
    DeleteOnly,
    /// A restart would exceed `backoffLimit`: the job fails.
    OverBackoffLimit,
    /// A permanent exit code under `ExitCode`: the job fails.
    FailJob,
    /// `Never`: nothing restarts it; the status pass fails the job.
    Keep,
}

/// Decides what to do with a failed pod of a replica type with `policy`.
pub fn decide(
    policy: RestartPolicy,
    exit_code: i32,
    backoff_limit: Option<i32>,
    restarts_so_far: i32,
    already_counted: bool,
) -> FailedPod {
    let retry = match policy {
        RestartPolicy::Always | RestartPolicy::OnFailure => true,
        RestartPolicy::ExitCode => is_retryable_exit_code(exit_code),
        RestartPolicy::Never => false,
    };
    if !retry {
        return match policy {
            RestartPolicy::ExitCode => FailedPod::FailJob,
            _ => FailedPod::Keep,
        };
    }
    if !limits::may_restart(backoff_limit, restarts_so_far) {
        return FailedPod::OverBackoffLimit;
    }
    if already_counted {
        FailedPod::DeleteOnly
    } else {
        FailedPod::Restart
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::observe::NO_EXIT_CODE;
    use RestartPolicy::*;

    #[test]
    fn failed_pods_under_each_policy() {
        let cases = [
            // policy, exit code, backoff limit, restarts so far, already counted → decision
            (Always, 0, None, 0, false, FailedPod::Restart),
            (Always, 1, None, 0, false, FailedPod::Restart),
            (OnFailure, 1, None, 0, false, FailedPod::Restart),
            (Never, 1, None, 0, false, FailedPod::Keep),
            (Never, 137, Some(0), 5, false, FailedPod::Keep),
            (ExitCode, 1, None, 0, false, FailedPod::FailJob),
            (ExitCode, 127, None, 0, false, FailedPod::FailJob),
            (ExitCode, 128, None, 0, false, FailedPod::Restart),
            (ExitCode, 137, None, 0, false, FailedPod::Restart),
            (ExitCode, NO_EXIT_CODE, None, 0, false, FailedPod::Restart),
            // back-off: the restart must fit under the limit
            (OnFailure, 1, Some(2), 1, false, FailedPod::Restart),
            (OnFailure, 1, Some(2), 2, false, FailedPod::OverBackoffLimit),
            (
                ExitCode,
                137,
                Some(0),
                0,
                false,
                FailedPod::OverBackoffLimit,
            ),
            (ExitCode, 1, Some(0), 0, false, FailedPod::FailJob),
            // a restart already stored is not counted again
            (Always, 1, None, 3, true, FailedPod::DeleteOnly),
            (Always, 1, Some(3), 3, true, FailedPod::OverBackoffLimit),
        ];
        for (policy, code, limit, so_far, counted, want) in cases {
            assert_eq!(
                decide(policy, code, limit, so_far, counted),
                want,
                "{policy:?} exit {code} limit {limit:?} so far {so_far} counted {counted}"
            );
        }
    }
}
