//! The enum-valued fields of the spec, parsed from their wire strings.

/// `spec.tfReplicaSpecs[T].restartPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    #[default]
    Never,
    /// Exit codes >= 128 of the `tensorflow` container restart the pod; 0-127 fail the job.
    ExitCode,
}

impl RestartPolicy {
    pub const VALUES: [&'static str; 4] = ["Always", "OnFailure", "Never", "ExitCode"];

    /// `None` and `""` mean the default (`Never`).
    pub fn parse(value: Option<&str>) -> Option<RestartPolicy> {
        match value.unwrap_or("") {
            "" | "Never" => Some(RestartPolicy::Never),
            "Always" => Some(RestartPolicy::Always),
            "OnFailure" => Some(RestartPolicy::OnFailure),
            "ExitCode" => Some(RestartPolicy::ExitCode),
            _ => None,
        }
    }

    /// The pod-level `restartPolicy` written into created pods.
    pub fn pod_restart_policy(self) -> &'static str {
        match self {
            RestartPolicy::Always => "Always",
            RestartPolicy::OnFailure => "OnFailure",
            RestartPolicy::Never | RestartPolicy::ExitCode => "Never",
        }
    }

    /// Whether a failed pod of this type is deleted and re-created instead of failing the job
    /// (for `ExitCode`, only when the exit code is retryable).
    pub fn restarts_failed_pods(self) -> bool {
        !matches!(self, RestartPolicy::Never)
    }
}

/// `runPolicy.cleanPodPolicy`: what to delete once the job has finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum CleanPodPolicy {
    #[default]
    None,
    Running,
    All,
}

impl CleanPodPolicy {
    pub const VALUES: [&'static str; 3] = ["None", "Running", "All"];

    /// `None` and `""` mean "unset"; the caller picks the default.
    pub fn parse(value: Option<&str>) -> Option<Option<CleanPodPolicy>> {
        match value.unwrap_or("") {
            "" => Some(None),
            "None" => Some(Some(CleanPodPolicy::None)),
            "Running" => Some(Some(CleanPodPolicy::Running)),
            "All" => Some(Some(CleanPodPolicy::All)),
            _ => None,
        }
    }
}

/// `spec.successPolicy`: which pods must succeed when there is no chief.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SuccessPolicy {
    /// Worker 0 succeeding with exit code 0 is enough.
    #[default]
    Default,
    AllWorkers,
}

impl SuccessPolicy {
    pub const VALUES: [&'static str; 2] = ["", "AllWorkers"];

    pub fn parse(value: Option<&str>) -> Option<SuccessPolicy> {
        match value.unwrap_or("") {
            "" => Some(SuccessPolicy::Default),
            "AllWorkers" => Some(SuccessPolicy::AllWorkers),
            _ => None,
        }
    }
}

/// Whether an `ExitCode` replica restarts after its `tensorflow` container exited with `code`.
/// Codes >= 128 mean "killed by a signal" (OOM, preemption) and are worth retrying; the sentinel
/// for "no exit code seen" (48879) is retried too, as upstream does.
pub fn is_retryable_exit_code(code: i32) -> bool {
    code >= 128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policy_defaults_to_never() {
        assert_eq!(RestartPolicy::parse(None), Some(RestartPolicy::Never));
        assert_eq!(RestartPolicy::parse(Some("")), Some(RestartPolicy::Never));
        assert_eq!(
            RestartPolicy::parse(Some("OnFailure")),
            Some(RestartPolicy::OnFailure)
        );
        assert_eq!(RestartPolicy::parse(Some("onfailure")), None);
    }

    #[test]
    fn exit_code_maps_to_never_in_pods() {
        assert_eq!(RestartPolicy::ExitCode.pod_restart_policy(), "Never");
        assert_eq!(RestartPolicy::Always.pod_restart_policy(), "Always");
        assert_eq!(RestartPolicy::OnFailure.pod_restart_policy(), "OnFailure");
        assert_eq!(RestartPolicy::Never.pod_restart_policy(), "Never");
    }

    #[test]
    fn clean_pod_policy_distinguishes_unset() {
        assert_eq!(CleanPodPolicy::parse(None), Some(None));
        assert_eq!(CleanPodPolicy::parse(Some("")), Some(None));
        assert_eq!(
            CleanPodPolicy::parse(Some("All")),
            Some(Some(CleanPodPolicy::All))
        );
        assert_eq!(CleanPodPolicy::parse(Some("Sometimes")), None);
    }

    #[test]
    fn success_policy_values() {
        assert_eq!(SuccessPolicy::parse(None), Some(SuccessPolicy::Default));
        assert_eq!(
            SuccessPolicy::parse(Some("AllWorkers")),
            Some(SuccessPolicy::AllWorkers)
        );
        assert_eq!(SuccessPolicy::parse(Some("allworkers")), None);
    }

    #[test]
    fn retryable_exit_codes() {
        assert!(!is_retryable_exit_code(0));
        assert!(!is_retryable_exit_code(1));
        assert!(!is_retryable_exit_code(127));
        assert!(is_retryable_exit_code(128));
        assert!(is_retryable_exit_code(137));
        assert!(is_retryable_exit_code(0xbeef));
    }
}
