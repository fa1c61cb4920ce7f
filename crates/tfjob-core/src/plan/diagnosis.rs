//! Why a replica failed or cannot start, read from its pod's status: what users ask first
//! when a job fails or sits in `Created` (upstream kubeflow/trainer#1749, #1598, #2001).
//!
//! Pure functions of one pod; the planner puts the results into `replicaStatuses[*].lastFailure`,
//! the Failed/Restarting messages and the current condition's notes.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube_core::ResourceExt;

use crate::api::ReplicaFailure;
use crate::api::constants::DEFAULT_CONTAINER_NAME;

/// How the pod failed, if it did: a container that exited non-zero (now, or before an
/// in-place restart), else a pod the kubelet failed as a whole (`Evicted`, `DeadlineExceeded`).
/// The `tensorflow` container is looked at first.
pub fn failure_of(pod: &Pod) -> Option<ReplicaFailure> {
    let status = pod.status.as_ref()?;
    let mut containers: Vec<&ContainerStatus> =
        status.container_statuses.iter().flatten().collect();
    containers.sort_by_key(|c| c.name != DEFAULT_CONTAINER_NAME);
    let exited = |c: &&ContainerStatus| {
        let current = c.state.as_ref().and_then(|s| s.terminated.as_ref());
        let previous = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
        let terminated = current
            .filter(|t| t.exit_code != 0)
            .or(previous.filter(|t| t.exit_code != 0))?;
        Some(ReplicaFailure {
            pod: pod.name_any(),
            container: Some(c.name.clone()),
            exit_code: Some(terminated.exit_code),
            reason: terminated
                .reason
                .clone()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "Error".into()),
            message: terminated.message.clone().filter(|m| !m.is_empty()),
            time: terminated.finished_at.clone(),
        })
    };
    if let Some(failure) = containers.iter().find_map(exited) {
        return Some(failure);
    }
    // A pod failed without a container's exit says why only in its own reason; without one
    // there is nothing to tell.
    let reason = status.reason.clone().filter(|r| !r.is_empty())?;
    (status.phase.as_deref() == Some("Failed")).then(|| ReplicaFailure {
        pod: pod.name_any(),
        container: None,
        exit_code: None,
        reason,
        message: status.message.clone().filter(|m| !m.is_empty()),
        time: None,
    })
}

/// One line for messages: `j-worker-1 exited with 137 (OOMKilled)`, or
/// `j-worker-0: Evicted (The node was low on resource: memory.)`.
pub fn describe_failure(failure: &ReplicaFailure) -> String {
    match failure.exit_code {
        Some(code) => format!("{} exited with {code} ({})", failure.pod, failure.reason),
        None => match &failure.message {
            Some(message) => format!("{}: {} ({message})", failure.pod, failure.reason),
            None => format!("{}: {}", failure.pod, failure.reason),
        },
    }
}

/// Whether `new` should replace the stored `lastFailure`: a different failure, never an older
/// one (a pod seen again after a restart of the operator does not move it back).
pub fn is_newer(stored: Option<&ReplicaFailure>, new: &ReplicaFailure) -> bool {
    let Some(stored) = stored else {
        return true;
    };
    if stored == new {
        return false;
    }
    match (&stored.time, &new.time) {
        (Some(old), Some(new)) => new.0 > old.0,
        _ => true,
    }
}

/// Why a pod that should start does not (yet). Kept for Pending pods only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    /// `metadata.creationTimestamp`: how long it has been waiting.
    pub since: Option<Timestamp>,
    /// What the kubelet or scheduler says: a reason and its detail.
    pub cause: Option<Cause>,
    /// The cause cannot resolve by waiting (a bad image, a missing Secret, no node that fits):
    /// it is reported at once rather than after the threshold.
    pub lasting: bool,
}

/// A reason and what it concerns (`ImagePullBackOff`, `image "tf:typo"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    pub reason: String,
    pub detail: Option<String>,
}

/// Waiting reasons of a container that do not go away by waiting. `ErrImagePull` and
/// `ImagePullBackOff` alternate while the kubelet retries, so both are reported as the latter
/// (one message, not one per retry).
const IMAGE_PULL: [&str; 4] = [
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "ErrImageNeverPull",
];
const CONTAINER_CONFIG: [&str; 2] = ["CreateContainerConfigError", "CreateContainerError"];

/// What keeps a Pending pod from starting; `None` for pods that are not Pending or are being
/// deleted.
pub fn waiting_of(pod: &Pod) -> Option<Waiting> {
    let status = pod.status.as_ref();
    let pending = matches!(
        status.and_then(|s| s.phase.as_deref()),
        None | Some("Pending")
    );
    if !pending || pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let since = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let containers = status
        .into_iter()
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .filter_map(|c| Some((c, c.state.as_ref()?.waiting.as_ref()?)));
    let mut first_waiting = None;
    for (container, waiting) in containers {
        let reason = waiting.reason.clone().unwrap_or_default();
        if IMAGE_PULL.contains(&reason.as_str()) {
            let reason = if reason == "ErrImagePull" {
                "ImagePullBackOff".to_string()
            } else {
                reason
            };
            let detail = Some(format!("image {:?}", container.image));
            return Some(lasting(since, reason, detail));
        }
        if CONTAINER_CONFIG.contains(&reason.as_str()) {
            let detail = waiting.message.clone().filter(|m| !m.is_empty());
            return Some(lasting(since, reason, detail));
        }
        if first_waiting.is_none() && !reason.is_empty() {
            first_waiting = Some(Cause {
                reason,
                detail: None,
            });
        }
    }
    let unschedulable = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        });
    if let Some(condition) = unschedulable {
        let detail = condition.message.clone().filter(|m| !m.is_empty());
        return Some(lasting(since, "Unschedulable".into(), detail));
    }
    Some(Waiting {
        since,
        cause: first_waiting,
        lasting: false,
    })
}

fn lasting(since: Option<Timestamp>, reason: String, detail: Option<String>) -> Waiting {
    Waiting {
        since,
        cause: Some(Cause { reason, detail }),
        lasting: true,
    }
}

/// The verdict on a waiting pod at `now`, given `--pending-threshold`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// Nothing to say yet; look again after the wait (if it is known).
    NotYet(Option<Duration>),
    /// It cannot start: this is why (`ImagePullBackOff (image "tf:typo")`, or
    /// `Pending for more than 5m`).
    Blocked(String),
}

pub fn judge_start(waiting: &Waiting, now: Timestamp, threshold: Duration) -> Start {
    if waiting.lasting
        && let Some(cause) = &waiting.cause
    {
        return Start::Blocked(match &cause.detail {
            Some(detail) => format!("{} ({detail})", cause.reason),
            None => cause.reason.clone(),
        });
    }
    let waited = waiting
        .since
        .and_then(|since| Duration::try_from(now.duration_since(since)).ok())
        .unwrap_or_default();
    if waiting.since.is_none() || waited < threshold {
        let left = threshold.saturating_sub(waited) + Duration::from_millis(100);
        return Start::NotYet(waiting.since.map(|_| left));
    }
    let reason = waiting
        .cause
        .as_ref()
        .map_or("Pending", |c| c.reason.as_str());
    Start::Blocked(format!(
        "{reason} for more than {}",
        humantime_short(threshold)
    ))
}

/// What a waiting pod waits for, in a few words: its lasting cause with its detail, else the
/// container's waiting reason, else `Pending`.
pub fn waiting_for(waiting: &Waiting) -> String {
    match &waiting.cause {
        Some(Cause {
            reason,
            detail: Some(detail),
        }) if waiting.lasting => format!("{reason} ({detail})"),
        Some(cause) => cause.reason.clone(),
        None => "Pending".into(),
    }
}

/// The verdict of the opt-in pending deadline on a job's waiting pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PendingDeadline {
    /// Every waiting pod is within it; look again when the first would exceed it.
    Within(Option<Duration>),
    /// This pod waited longer: the job fails with this detail.
    Exceeded(String),
}

/// Judges `pods` (name and what it waits for) against `deadline`: the first pod that has
/// waited longer fails the job. Pods without a creation time are never judged.
pub fn pending_deadline<'a>(
    pods: impl IntoIterator<Item = (&'a str, &'a Waiting)>,
    deadline: Duration,
    now: Timestamp,
) -> PendingDeadline {
    let mut next: Option<Duration> = None;
    for (pod, waiting) in pods {
        let Some(since) = waiting.since else {
            continue;
        };
        let waited = Duration::try_from(now.duration_since(since)).unwrap_or_default();
        if waited >= deadline {
            return PendingDeadline::Exceeded(format!(
                "{pod} did not start within the pending deadline of {}: {}",
                humantime_short(deadline),
                waiting_for(waiting)
            ));
        }
        let left = deadline - waited + Duration::from_millis(100);
        next = Some(next.map_or(left, |n| n.min(left)));
    }
    PendingDeadline::Within(next)
}

/// `5m`, `90s`, `1h30m`: a threshold as a user would write the flag.
pub fn humantime_short(d: Duration) -> String {
    let total = d.as_secs();
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// The condition note for pods blocked for the same reason: `j-worker-0 cannot start: …`, or
/// `j-worker-0 and 3 other pod(s) cannot start: …`.
pub fn blocked_note(pods: &[&str], why: &str) -> String {
    match pods {
        [] => String::new(),
        [one] => format!("{one} cannot start: {why}."),
        [first, rest @ ..] => format!(
            "{first} and {} other pod(s) cannot start: {why}.",
            rest.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> Pod {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn failure(
        pod: &str,
        container: Option<&str>,
        code: Option<i32>,
        reason: &str,
        message: Option<&str>,
    ) -> ReplicaFailure {
        ReplicaFailure {
            pod: pod.into(),
            container: container.map(String::from),
            exit_code: code,
            reason: reason.into(),
            message: message.map(String::from),
            time: None,
        }
    }

    #[test]
    fn failures_are_read_from_the_pod() {
        let cases: [(&str, Option<ReplicaFailure>); 8] = [
            (
                "status: {phase: Failed, containerStatuses: [{name: tensorflow, image: t, imageID: '', ready: false, restartCount: 0, state: {terminated: {exitCode: 137, reason: OOMKilled}}}]}",
                Some(failure(
                    "p",
                    Some("tensorflow"),
                    Some(137),
                    "OOMKilled",
                    None,
                )),
            ),
            (
                // No reason: `Error`, as kubectl shows it; the sidecar's failure comes second.
                "status: {phase: Failed, containerStatuses: [{name: side, image: s, imageID: '', ready: false, restartCount: 0, state: {terminated: {exitCode: 2}}}, {name: tensorflow, image: t, imageID: '', ready: false, restartCount: 0, state: {terminated: {exitCode: 1, message: 'loss is NaN'}}}]}",
                Some(failure(
                    "p",
                    Some("tensorflow"),
                    Some(1),
                    "Error",
                    Some("loss is NaN"),
                )),
            ),
            (
                // Restarted in place (OnFailure): the previous run's end.
                "status: {phase: Running, containerStatuses: [{name: tensorflow, image: t, imageID: '', ready: true, restartCount: 1, state: {running: {}}, lastState: {terminated: {exitCode: 137, reason: OOMKilled}}}]}",
                Some(failure(
                    "p",
                    Some("tensorflow"),
                    Some(137),
                    "OOMKilled",
                    None,
                )),
            ),
            (
                "status: {phase: Failed, reason: Evicted, message: 'The node was low on resource: memory.'}",
                Some(failure(
                    "p",
                    None,
                    None,
                    "Evicted",
                    Some("The node was low on resource: memory."),
                )),
            ),
            (
                "status: {phase: Failed, reason: DeadlineExceeded}",
                Some(failure("p", None, None, "DeadlineExceeded", None)),
            ),
            (
                "status: {phase: Succeeded, containerStatuses: [{name: tensorflow, image: t, imageID: '', ready: false, restartCount: 0, state: {terminated: {exitCode: 0}}}]}",
                None,
            ),
            ("status: {phase: Running}", None),
            ("status: {phase: Failed}", None),
        ];
        for (status, want) in cases {
            let p = pod(&format!("metadata: {{name: p}}\n{status}"));
            assert_eq!(failure_of(&p), want, "{status}");
        }
    }

    #[test]
    fn failures_read_as_one_line() {
        let cases = [
            (
                failure(
                    "j-worker-1",
                    Some("tensorflow"),
                    Some(137),
                    "OOMKilled",
                    None,
                ),
                "j-worker-1 exited with 137 (OOMKilled)",
            ),
            (
                failure("j-worker-0", None, None, "Evicted", Some("low memory")),
                "j-worker-0: Evicted (low memory)",
            ),
            (
                failure("j-ps-0", None, None, "DeadlineExceeded", None),
                "j-ps-0: DeadlineExceeded",
            ),
        ];
        for (failure, want) in cases {
            assert_eq!(describe_failure(&failure), want);
        }
    }

    #[test]
    fn the_stored_failure_moves_only_forward() {
        let at = |s: &str| {
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                s.parse().unwrap(),
            ))
        };
        let old = ReplicaFailure {
            time: at("2026-01-01T00:00:00Z"),
            ..failure("a", Some("tensorflow"), Some(1), "Error", None)
        };
        let newer = ReplicaFailure {
            time: at("2026-01-01T00:01:00Z"),
            ..failure("b", Some("tensorflow"), Some(137), "OOMKilled", None)
        };
        assert!(is_newer(None, &old));
        assert!(!is_newer(Some(&old), &old));
        assert!(is_newer(Some(&old), &newer));
        assert!(!is_newer(Some(&newer), &old));
        let untimed = failure("c", None, None, "Evicted", None);
        assert!(is_newer(Some(&newer), &untimed));
    }

    #[test]
    fn waiting_pods_are_judged() {
        let created = "2026-01-01T00:00:00Z";
        let now = |s: u64| created.parse::<Timestamp>().unwrap() + Duration::from_secs(s);
        let threshold = Duration::from_secs(300);
        let pod_with = |status: &str| {
            pod(&format!(
                "metadata: {{name: p, creationTimestamp: '{created}'}}\nstatus: {status}"
            ))
        };
        let cases = [
            (
                "{phase: Pending, containerStatuses: [{name: tensorflow, image: 'tf:typo', imageID: '', ready: false, restartCount: 0, state: {waiting: {reason: ErrImagePull, message: 'rpc error: not found'}}}]}",
                1,
                Start::Blocked(r#"ImagePullBackOff (image "tf:typo")"#.into()),
            ),
            (
                "{phase: Pending, containerStatuses: [{name: tensorflow, image: 'tf:typo', imageID: '', ready: false, restartCount: 0, state: {waiting: {reason: ImagePullBackOff, message: 'Back-off pulling image'}}}]}",
                1,
                Start::Blocked(r#"ImagePullBackOff (image "tf:typo")"#.into()),
            ),
            (
                "{phase: Pending, containerStatuses: [{name: tensorflow, image: t, imageID: '', ready: false, restartCount: 0, state: {waiting: {reason: CreateContainerConfigError, message: 'secret \"s3\" not found'}}}]}",
                1,
                Start::Blocked(r#"CreateContainerConfigError (secret "s3" not found)"#.into()),
            ),
            (
                "{phase: Pending, conditions: [{type: PodScheduled, status: 'False', reason: Unschedulable, message: '0/3 nodes are available: 3 Insufficient nvidia.com/gpu.'}]}",
                1,
                Start::Blocked(
                    "Unschedulable (0/3 nodes are available: 3 Insufficient nvidia.com/gpu.)"
                        .into(),
                ),
            ),
            (
                "{phase: Pending, containerStatuses: [{name: tensorflow, image: t, imageID: '', ready: false, restartCount: 0, state: {waiting: {reason: ContainerCreating}}}]}",
                60,
                Start::NotYet(Some(Duration::from_millis(240_100))),
            ),
            (
                "{phase: Pending, containerStatuses: [{name: tensorflow, image: t, imageID: '', ready: false, restartCount: 0, state: {waiting: {reason: ContainerCreating}}}]}",
                301,
                Start::Blocked("ContainerCreating for more than 5m".into()),
            ),
            (
                "{phase: Pending}",
                3600,
                Start::Blocked("Pending for more than 5m".into()),
            ),
        ];
        for (status, seconds, want) in cases {
            let waiting = waiting_of(&pod_with(status)).expect("a waiting pod");
            assert_eq!(
                judge_start(&waiting, now(seconds), threshold),
                want,
                "{status}"
            );
        }
        for status in ["{phase: Running}", "{phase: Failed}", "{phase: Succeeded}"] {
            assert_eq!(waiting_of(&pod_with(status)), None, "{status}");
        }
    }

    #[test]
    fn the_pending_deadline_fails_on_the_first_pod_past_it() {
        let since: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let at = |s: u64| since + Duration::from_secs(s);
        let bad_image = lasting(
            Some(since),
            "ImagePullBackOff".into(),
            Some(r#"image "tf:typo""#.into()),
        );
        let plain = Waiting {
            since: Some(at(30)),
            cause: None,
            lasting: false,
        };
        let unknown_age = Waiting {
            since: None,
            cause: None,
            lasting: false,
        };
        let deadline = Duration::from_secs(600);
        let pods = [
            ("j-worker-0", &bad_image),
            ("j-ps-0", &plain),
            ("j-x", &unknown_age),
        ];
        assert_eq!(
            pending_deadline(pods, deadline, at(100)),
            PendingDeadline::Within(Some(Duration::from_millis(500_100)))
        );
        assert_eq!(
            pending_deadline(pods, deadline, at(600)),
            PendingDeadline::Exceeded(
                r#"j-worker-0 did not start within the pending deadline of 10m: ImagePullBackOff (image "tf:typo")"#
                    .into()
            )
        );
        assert_eq!(
            pending_deadline([("j-ps-0", &plain)], deadline, at(630)),
            PendingDeadline::Exceeded(
                "j-ps-0 did not start within the pending deadline of 10m: Pending".into()
            )
        );
        assert_eq!(
            pending_deadline([("j-x", &unknown_age)], deadline, at(10_000)),
            PendingDeadline::Within(None)
        );
    }

    #[test]
    fn blocked_pods_share_one_note() {
        assert_eq!(
            blocked_note(&["j-worker-0"], "Unschedulable (no nodes)"),
            "j-worker-0 cannot start: Unschedulable (no nodes)."
        );
        assert_eq!(
            blocked_note(
                &["j-worker-0", "j-worker-1", "j-ps-0"],
                "Pending for more than 5m"
            ),
            "j-worker-0 and 2 other pod(s) cannot start: Pending for more than 5m."
        );
        assert_eq!(humantime_short(Duration::from_secs(5400)), "1h30m");
        assert_eq!(humantime_short(Duration::from_secs(90)), "1m30s");
        assert_eq!(humantime_short(Duration::ZERO), "0s");
    }
}
