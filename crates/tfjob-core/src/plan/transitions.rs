//! Decide, then record: every change of a job's state is a [`Transition`], and [`record`] is the
//! one place that turns it into its condition, its event and its counter.
//!
//! The table in [`Transition::effects`] is the compatibility contract with upstream: condition
//! types, statuses, reasons, messages, event types and counters exactly as training-operator
//! writes them. Events and counters follow only a real change of the condition (upstream's
//! spam, fixed), except for restarts, which are occurrences rather than states: each one is
//! announced and counted.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::conditions::{self, FALSE, TRUE, reason};
use super::messages;
use super::output::{JobCounter, JobEvent, Plan};
use crate::api::{JobStatus, ReplicaType};

/// Why a job failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// The spec is invalid; the text names every bad field.
    Validation(String),
    /// The stored object does not even decode as a TFJob; the text says why.
    Undecodable(String),
    /// `failed` replicas of a type that does not restart them failed (the status pass).
    Replicas {
        replica_type: ReplicaType,
        failed: i32,
        /// The decisive pod and how it failed (see `diagnosis::describe_failure`).
        detail: Option<String>,
    },
    /// A replica exited with a permanent code (0–127) under `ExitCode`; the pod and how.
    ExitCode(ReplicaType, Option<String>),
    /// Restarts used up `backoffLimit`.
    BackoffLimit,
    /// The job ran longer than `activeDeadlineSeconds`.
    Deadline,
    /// Not upstream's: a pod waited to start longer than the pending deadline (the pod, the
    /// deadline and why it waited).
    PendingDeadline(String),
}

/// A change of a job's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// First seen.
    Created,
    /// The replicas that decide success are running.
    Running,
    /// A failed pod of this type is being replaced (the pod and how it failed, when known).
    Restarting(ReplicaType, Option<String>),
    /// A restart is still under way: the `Restarting` condition (its reason and message as
    /// stored) stays, even where a `Running` verdict of the same pass replaced it.
    StillRestarting {
        reason: String,
        message: String,
    },
    Succeeded,
    Failed(FailReason),
    /// Suspension stops a running job (`Running` turns False; no event of its own).
    RunningSuspended,
    Suspended,
    Resumed,
}

/// What recording a transition does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effects {
    /// The condition set: type, status, reason, message.
    pub condition: (&'static str, &'static str, String, String),
    /// The event announced: warning or normal, and its reason (its note is the message).
    pub event: Option<(bool, String)>,
    pub counter: Option<JobCounter>,
    /// Sets `completionTime` (unless already set; it is never cleared, not even on resume).
    pub completes: bool,
    /// Announced and counted each time it is recorded, even when the condition does not change.
    pub repeats: bool,
}

/// The job a transition is about, for its messages.
#[derive(Clone, Copy, Debug)]
pub struct JobName<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
}

impl Transition {
    /// The table: what each transition writes (see the module docs).
    pub fn effects(&self, job: JobName<'_>) -> Effects {
        let JobName { namespace, name } = job;
        let plain = |type_, status, reason: &str, message: String| Effects {
            condition: (type_, status, reason.to_string(), message),
            event: None,
            counter: None,
            completes: false,
            repeats: false,
        };
        match self {
            Transition::Created => Effects {
                counter: Some(JobCounter::Created),
                ..plain(
                    conditions::CREATED,
                    TRUE,
                    reason::CREATED,
                    messages::created(name),
                )
            },
            Transition::Running => plain(
                conditions::RUNNING,
                TRUE,
                reason::RUNNING,
                messages::running(namespace, name),
            ),
            Transition::Restarting(replica_type, detail) => Effects {
                event: Some((true, reason::RESTARTING.into())),
                counter: Some(JobCounter::Restarted),
                repeats: true,
                ..plain(
                    conditions::RESTARTING,
                    TRUE,
                    reason::RESTARTING,
                    messages::restarting(name, *replica_type, detail.as_deref()),
                )
            },
            Transition::StillRestarting { reason, message } => {
                plain(conditions::RESTARTING, TRUE, reason, message.clone())
            }
            Transition::Succeeded => Effects {
                event: Some((false, reason::SUCCEEDED.into())),
                counter: Some(JobCounter::Succeeded),
                completes: true,
                ..plain(
                    conditions::SUCCEEDED,
                    TRUE,
                    reason::SUCCEEDED,
                    messages::succeeded(namespace, name),
                )
            },
            Transition::Failed(why) => {
                let (warning, reason, message) = match why {
                    FailReason::Validation(error) => (
                        true,
                        reason::FAILED_VALIDATION,
                        messages::failed_validation(error),
                    ),
                    FailReason::Undecodable(error) => (
                        true,
                        reason::FAILED_VALIDATION,
                        messages::failed_validation(&format!(
                            "the object cannot be read: {error}; fix that field of the TFJob"
                        )),
                    ),
                    FailReason::Replicas {
                        replica_type,
                        failed,
                        detail,
                    } => (
                        false,
                        reason::FAILED,
                        messages::failed(
                            namespace,
                            name,
                            *failed,
                            *replica_type,
                            detail.as_deref(),
                        ),
                    ),
                    FailReason::ExitCode(replica_type, detail) => (
                        true,
                        reason::FAILED,
                        messages::exit_code_failure(name, *replica_type, detail.as_deref()),
                    ),
                    FailReason::BackoffLimit => {
                        (false, reason::FAILED, messages::backoff_limit(name))
                    }
                    FailReason::Deadline => (false, reason::FAILED, messages::deadline(name)),
                    FailReason::PendingDeadline(detail) => (
                        true,
                        reason::FAILED,
                        messages::pending_deadline(namespace, name, detail),
                    ),
                };
                Effects {
                    event: Some((warning, reason.into())),
                    counter: Some(JobCounter::Failed),
                    completes: true,
                    ..plain(conditions::FAILED, TRUE, reason, message)
                }
            }
            Transition::RunningSuspended => plain(
                conditions::RUNNING,
                FALSE,
                reason::SUSPENDED,
                messages::suspended(name),
            ),
            Transition::Suspended => Effects {
                event: Some((false, reason::SUSPENDED.into())),
                ..plain(
                    conditions::SUSPENDED,
                    TRUE,
                    reason::SUSPENDED,
                    messages::suspended(name),
                )
            },
            Transition::Resumed => Effects {
                event: Some((false, reason::RESUMED.into())),
                ..plain(
                    conditions::SUSPENDED,
                    FALSE,
                    reason::RESUMED,
                    messages::resumed(name),
                )
            },
        }
    }
}

/// Records `transition` into `status` and `plan`: sets its condition by upstream's rules and,
/// when the condition changed (or the transition repeats), adds its event and counter and sets
/// `completionTime`. Returns whether the condition changed.
pub fn record(
    transition: &Transition,
    job: JobName<'_>,
    now: Timestamp,
    status: &mut JobStatus,
    plan: &mut Plan,
) -> bool {
    let effects = transition.effects(job);
    let (type_, condition_status, reason, message) = &effects.condition;
    let changed = conditions::set(
        &mut status.conditions,
        type_,
        condition_status,
        reason,
        message,
        now,
    );
    if !changed && !effects.repeats {
        return false;
    }
    if effects.completes && status.completion_time.is_none() {
        status.completion_time = Some(Time(now));
    }
    if let Some((warning, reason)) = effects.event {
        plan.event(JobEvent {
            warning,
            reason,
            message: message.clone(),
        });
    }
    if let Some(counter) = effects.counter {
        plan.counters.push(counter);
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::t;

    const JOB: JobName<'static> = JobName {
        namespace: "ns",
        name: "mnist",
    };

    /// Every transition, with exactly what upstream writes for it.
    #[test]
    fn every_transition_writes_upstreams_condition_event_and_counter() {
        use JobCounter as C;
        struct Case {
            transition: Transition,
            condition: (&'static str, &'static str, &'static str, &'static str),
            event: Option<(bool, &'static str)>,
            counter: Option<JobCounter>,
            completes: bool,
        }
        let cases = [
            Case {
                transition: Transition::Created,
                condition: ("Created", "True", "TFJobCreated", "TFJob mnist is created."),
                event: None,
                counter: Some(C::Created),
                completes: false,
            },
            Case {
                transition: Transition::Running,
                condition: (
                    "Running",
                    "True",
                    "TFJobRunning",
                    "TFJob ns/mnist is running.",
                ),
                event: None,
                counter: None,
                completes: false,
            },
            Case {
                transition: Transition::Restarting(ReplicaType::Worker, None),
                condition: (
                    "Restarting",
                    "True",
                    "TFJobRestarting",
                    "job mnist is restarting because Worker replica(s) failed.",
                ),
                event: Some((true, "TFJobRestarting")),
                counter: Some(C::Restarted),
                completes: false,
            },
            Case {
                transition: Transition::StillRestarting {
                    reason: "TFJobRestarting".into(),
                    message: "job mnist is restarting because PS replica(s) failed.".into(),
                },
                condition: (
                    "Restarting",
                    "True",
                    "TFJobRestarting",
                    "job mnist is restarting because PS replica(s) failed.",
                ),
                event: None,
                counter: None,
                completes: false,
            },
            Case {
                transition: Transition::Succeeded,
                condition: (
                    "Succeeded",
                    "True",
                    "TFJobSucceeded",
                    "TFJob ns/mnist successfully completed.",
                ),
                event: Some((false, "TFJobSucceeded")),
                counter: Some(C::Succeeded),
                completes: true,
            },
            Case {
                transition: Transition::Failed(FailReason::Replicas {
                    replica_type: ReplicaType::PS,
                    failed: 2,
                    detail: Some("mnist-ps-1 exited with 137 (OOMKilled)".into()),
                }),
                condition: (
                    "Failed",
                    "True",
                    "TFJobFailed",
                    "TFJob ns/mnist has failed because 2 PS replica(s) failed: mnist-ps-1 exited with 137 (OOMKilled).",
                ),
                event: Some((false, "TFJobFailed")),
                counter: Some(C::Failed),
                completes: true,
            },
            Case {
                transition: Transition::Failed(FailReason::ExitCode(ReplicaType::Worker, None)),
                condition: (
                    "Failed",
                    "True",
                    "TFJobFailed",
                    r#"job "mnist" is failing because "Worker" replica(s) failed."#,
                ),
                event: Some((true, "TFJobFailed")),
                counter: Some(C::Failed),
                completes: true,
            },
            Case {
                transition: Transition::Failed(FailReason::BackoffLimit),
                condition: (
                    "Failed",
                    "True",
                    "TFJobFailed",
                    "Job mnist has failed because it has reached the specified backoff limit",
                ),
                event: Some((false, "TFJobFailed")),
                counter: Some(C::Failed),
                completes: true,
            },
            Case {
                transition: Transition::Failed(FailReason::Deadline),
                condition: (
                    "Failed",
                    "True",
                    "TFJobFailed",
                    "Job mnist has failed because it was active longer than specified deadline",
                ),
                event: Some((false, "TFJobFailed")),
                counter: Some(C::Failed),
                completes: true,
            },
            Case {
                transition: Transition::Failed(FailReason::Validation(
                    "spec.x: Required value".into(),
                )),
                condition: (
                    "Failed",
                    "True",
                    "TFJobFailedValidation",
                    "TFJob failed validation because spec.x: Required value",
                ),
                event: Some((true, "TFJobFailedValidation")),
                counter: Some(C::Failed),
                completes: true,
            },
            Case {
                transition: Transition::Failed(FailReason::Undecodable(
                    "spec.runPolicy: invalid type".into(),
                )),
                condition: (
                    "Failed",
                    "True",
                    "TFJobFailedValidation",
                    "TFJob failed validation because the object cannot be read: \
                     spec.runPolicy: invalid type; fix that field of the TFJob",
                ),
                event: Some((true, "TFJobFailedValidation")),
                counter: Some(C::Failed),
                completes: true,
            },
            Case {
                transition: Transition::RunningSuspended,
                condition: (
                    "Running",
                    "False",
                    "TFJobSuspended",
                    "TFJob mnist is suspended.",
                ),
                event: None,
                counter: None,
                completes: false,
            },
            Case {
                transition: Transition::Suspended,
                condition: (
                    "Suspended",
                    "True",
                    "TFJobSuspended",
                    "TFJob mnist is suspended.",
                ),
                event: Some((false, "TFJobSuspended")),
                counter: None,
                completes: false,
            },
            Case {
                transition: Transition::Resumed,
                condition: (
                    "Suspended",
                    "False",
                    "TFJobResumed",
                    "TFJob mnist is resumed.",
                ),
                event: Some((false, "TFJobResumed")),
                counter: None,
                completes: false,
            },
        ];
        for case in cases {
            let mut status = JobStatus::default();
            let mut plan = Plan::default();
            assert!(record(&case.transition, JOB, t(5), &mut status, &mut plan));
            let c = &status.conditions[0];
            let (type_, cond_status, reason, message) = case.condition;
            assert_eq!(
                (
                    c.type_.as_str(),
                    c.status.as_str(),
                    c.reason.as_deref().unwrap(),
                    c.message.as_deref().unwrap()
                ),
                (type_, cond_status, reason, message),
                "{:?}",
                case.transition
            );
            let events: Vec<(bool, &str, &str)> = plan
                .events
                .iter()
                .map(|e| (e.warning, e.reason.as_str(), e.message.as_str()))
                .collect();
            let want: Vec<(bool, &str, &str)> = case
                .event
                .map(|(warning, reason)| (warning, reason, message))
                .into_iter()
                .collect();
            assert_eq!(events, want, "{:?}", case.transition);
            assert_eq!(
                plan.counters,
                case.counter.into_iter().collect::<Vec<_>>(),
                "{:?}",
                case.transition
            );
            assert_eq!(
                status.completion_time.is_some(),
                case.completes,
                "{:?}",
                case.transition
            );
        }
    }

    #[test]
    fn an_unchanged_condition_records_nothing_but_restarts_repeat() {
        let mut status = JobStatus::default();
        let mut plan = Plan::default();
        assert!(record(
            &Transition::Succeeded,
            JOB,
            t(1),
            &mut status,
            &mut plan
        ));
        assert!(!record(
            &Transition::Succeeded,
            JOB,
            t(2),
            &mut status,
            &mut plan
        ));
        assert_eq!(plan.counters, [JobCounter::Succeeded]);
        assert_eq!(plan.events.len(), 1);
        assert_eq!(status.completion_time, Some(Time(t(1))));

        let restart = Transition::Restarting(ReplicaType::Worker, None);
        let mut plan = Plan::default();
        record(&restart, JOB, t(3), &mut status, &mut plan);
        assert!(!record(&restart, JOB, t(3), &mut status, &mut plan));
        assert_eq!(
            plan.counters,
            [JobCounter::Restarted, JobCounter::Restarted],
            "each restart counts"
        );
        assert_eq!(plan.events.len(), 1, "identical events in one pass are one");
    }

    #[test]
    fn completion_time_is_kept_once_set() {
        let mut status = JobStatus {
            completion_time: Some(Time(t(1))),
            ..Default::default()
        };
        record(
            &Transition::Failed(FailReason::Deadline),
            JOB,
            t(9),
            &mut status,
            &mut Plan::default(),
        );
        assert_eq!(status.completion_time, Some(Time(t(1))));
    }
}
