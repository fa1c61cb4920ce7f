//! Condition and event messages, byte-for-byte as upstream writes them (clients grep them).

use crate::api::ReplicaType;

pub fn created(name: &str) -> String {
    format!("TFJob {name} is created.")
}

pub fn running(namespace: &str, name: &str) -> String {
    format!("TFJob {namespace}/{name} is running.")
}

pub fn succeeded(namespace: &str, name: &str) -> String {
    format!("TFJob {namespace}/{name} successfully completed.")
}

/// A replica failed under `Never` (the status pass). `detail` names the decisive pod (see
/// [`with_detail`]).
pub fn failed(
    namespace: &str,
    name: &str,
    failed: i32,
    replica_type: ReplicaType,
    detail: Option<&str>,
) -> String {
    with_detail(
        format!(
            "TFJob {namespace}/{name} has failed because {failed} {replica_type} replica(s) failed."
        ),
        detail,
    )
}

/// A replica exited with a permanent code under `ExitCode` (Go `%q` quoting).
pub fn exit_code_failure(name: &str, replica_type: ReplicaType, detail: Option<&str>) -> String {
    with_detail(
        format!(
            "job {name:?} is failing because {:?} replica(s) failed.",
            replica_type.as_str()
        ),
        detail,
    )
}

pub fn restarting(name: &str, replica_type: ReplicaType, detail: Option<&str>) -> String {
    with_detail(
        format!("job {name} is restarting because {replica_type} replica(s) failed."),
        detail,
    )
}

/// Not upstream's: upstream's sentence, its final period replaced by the decisive pod and how
/// it failed (`…replica(s) failed: j-worker-1 exited with 137 (OOMKilled).`), so clients that
/// match upstream's prefix still do.
pub fn with_detail(message: String, detail: Option<&str>) -> String {
    match detail {
        Some(detail) => format!("{}: {detail}.", message.trim_end_matches('.')),
        None => message,
    }
}

pub fn backoff_limit(name: &str) -> String {
    format!("Job {name} has failed because it has reached the specified backoff limit")
}

pub fn deadline(name: &str) -> String {
    format!("Job {name} has failed because it was active longer than specified deadline")
}

/// Not upstream's: a pod did not start within the pending deadline (`detail` names it).
pub fn pending_deadline(namespace: &str, name: &str, detail: &str) -> String {
    format!("TFJob {namespace}/{name} has failed because {detail}.")
}

pub fn suspended(name: &str) -> String {
    format!("TFJob {name} is suspended.")
}

pub fn resumed(name: &str) -> String {
    format!("TFJob {name} is resumed.")
}

/// Upstream's pre-webhook validation event text; the error names every bad field.
pub fn failed_validation(error: &str) -> String {
    format!("TFJob failed validation because {error}")
}

pub fn exited_with_code(namespace: &str, pod: &str, code: i32) -> String {
    format!("Pod: {namespace}.{pod} exited with code {code}")
}

pub const POD_TEMPLATE_RESTART_POLICY: &str =
    "Restart policy in pod template will be overwritten by restart policy in replica spec";

/// Event reasons that are not condition reasons.
pub mod event_reason {
    pub const EXITED_WITH_CODE: &str = "ExitedWithCode";
    /// Not upstream's: a pod stuck Terminating (see `rules::stuck`).
    pub const POD_STUCK_TERMINATING: &str = "PodStuckTerminating";
    /// Not upstream's: pods of the job cannot start (see `diagnosis`).
    pub const POD_CANNOT_START: &str = "PodCannotStart";
    pub const SET_POD_TEMPLATE_RESTART_POLICY: &str = "SetPodTemplateRestartPolicy";
    pub const SUCCESSFUL_CREATE_POD: &str = "SuccessfulCreatePod";
    pub const FAILED_CREATE_POD: &str = "FailedCreatePod";
    pub const SUCCESSFUL_DELETE_POD: &str = "SuccessfulDeletePod";
    pub const FAILED_DELETE_POD: &str = "FailedDeletePod";
    pub const SUCCESSFUL_CREATE_SERVICE: &str = "SuccessfulCreateService";
    pub const FAILED_CREATE_SERVICE: &str = "FailedCreateService";
    pub const SUCCESSFUL_DELETE_SERVICE: &str = "SuccessfulDeleteService";
    pub const FAILED_DELETE_SERVICE: &str = "FailedDeleteService";
    pub const SUCCESSFUL_DELETE_JOB: &str = "SuccessfulDeleteJob";
    pub const FAILED_DELETE_JOB: &str = "FailedDeleteJob";
    pub const SUCCESSFUL_DELETE_POD_GROUP: &str = "SuccessfulDeletePodGroup";
    pub const FAILED_DELETE_POD_GROUP: &str = "FailedDeletePodGroup";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_upstream() {
        assert_eq!(created("mnist"), "TFJob mnist is created.");
        assert_eq!(running("ns", "mnist"), "TFJob ns/mnist is running.");
        assert_eq!(
            succeeded("ns", "mnist"),
            "TFJob ns/mnist successfully completed."
        );
        assert_eq!(
            failed("ns", "mnist", 2, ReplicaType::PS, None),
            "TFJob ns/mnist has failed because 2 PS replica(s) failed."
        );
        assert_eq!(
            failed(
                "ns",
                "x",
                1,
                ReplicaType::Worker,
                Some("x-worker-1 exited with 137 (OOMKilled)")
            ),
            "TFJob ns/x has failed because 1 Worker replica(s) failed: x-worker-1 exited with 137 (OOMKilled)."
        );
        assert_eq!(
            exit_code_failure("mnist", ReplicaType::Worker, None),
            r#"job "mnist" is failing because "Worker" replica(s) failed."#
        );
        assert_eq!(
            restarting("mnist", ReplicaType::Worker, None),
            "job mnist is restarting because Worker replica(s) failed."
        );
        assert_eq!(
            backoff_limit("mnist"),
            "Job mnist has failed because it has reached the specified backoff limit"
        );
        assert_eq!(
            deadline("mnist"),
            "Job mnist has failed because it was active longer than specified deadline"
        );
        assert_eq!(suspended("mnist"), "TFJob mnist is suspended.");
        assert_eq!(resumed("mnist"), "TFJob mnist is resumed.");
        assert_eq!(
            exited_with_code("ns", "mnist-worker-0", 137),
            "Pod: ns.mnist-worker-0 exited with code 137"
        );
    }
}
