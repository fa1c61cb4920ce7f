//! The pure core of the simulated kubelet: given what is known about a pod, what the simulator
//! remembers about it, and the time, decide the next thing to do and when.
//!
//! No I/O and no clock: `now` is an argument, so every transition is unit-tested below. The
//! driver performs the returned [`Effect`] at [`Step::at`] and then adopts [`Step::record`].
//!
//! Times of future steps are derived from the record (not from `now`), so re-planning after an
//! unrelated pod update yields the same step at the same time.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use super::behaviour::{Behaviour, Exit};

/// The pod's `spec.restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// Kubernetes defaults an unset policy to `Always`.
    pub fn parse(value: Option<&str>) -> RestartPolicy {
        match value {
            Some("OnFailure") => RestartPolicy::OnFailure,
            Some("Never") => RestartPolicy::Never,
            _ => RestartPolicy::Always,
        }
    }

    /// Whether a kubelet restarts a container that exited with `code`, in place.
    pub fn restarts_after(self, code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => code != 0,
            RestartPolicy::Never => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerFacts {
    pub name: String,
    pub image: String,
}

/// A graceful deletion in progress (`metadata.deletionTimestamp` is set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// When the delete was requested: `deletionTimestamp - deletionGracePeriodSeconds`.
    pub requested_at: Timestamp,
    pub grace: Duration,
}

/// What the simulator needs to know about a pod: its spec and metadata, not its status.
/// Status comes from the simulator's own [`Record`], so its own writes never re-trigger it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFacts {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node_name: Option<String>,
    pub restart_policy: RestartPolicy,
    pub containers: Vec<ContainerFacts>,
    pub init_containers: Vec<ContainerFacts>,
    pub deletion: Option<Deletion>,
    pub behaviour: Behaviour,
}

impl PodFacts {
    pub fn from_pod(pod: &Pod, behaviour: Behaviour) -> PodFacts {
        let meta = &pod.metadata;
        let spec = pod.spec.as_ref();
        let containers = |list: Option<&Vec<k8s_openapi::api::core::v1::Container>>| {
            list.map(|cs| {
                cs.iter()
                    .map(|c| ContainerFacts {
                        name: c.name.clone(),
                        image: c.image.clone().unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default()
        };
        let deletion = meta.deletion_timestamp.as_ref().map(|deadline| {
            let grace_secs = meta.deletion_grace_period_seconds.unwrap_or(0).max(0);
            let grace = Duration::from_secs(grace_secs.unsigned_abs());
            Deletion {
                requested_at: before(deadline.0, grace),
                grace,
            }
        });
        PodFacts {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            node_name: spec
                .and_then(|s| s.node_name.clone())
                .filter(|n| !n.is_empty()),
            restart_policy: RestartPolicy::parse(spec.and_then(|s| s.restart_policy.as_deref())),
            containers: containers(spec.map(|s| &s.containers)),
            init_containers: containers(spec.and_then(|s| s.init_containers.as_ref())),
            deletion,
            behaviour,
        }
    }
}

/// How one container run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    pub exit_code: i32,
    pub reason: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
}

/// Where the simulated containers of one pod incarnation are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Not bound by the simulator (it may still have a `nodeName` set by someone else).
    Unbound,
    /// Bound to the node at `at`; no status written yet.
    Bound { at: Timestamp },
    /// Reported `Pending` with containers being created since `since`.
    Pending { since: Timestamp },
    /// Containers running since `since`; this run is attempt `attempt` of the pod name.
    Running { since: Timestamp, attempt: u32 },
    /// Containers exited at `since` and wait (CrashLoopBackOff) for an in-place restart.
    BackOff { since: Timestamp },
    /// Terminal phase written (`Succeeded` or `Failed`).
    Finished { termination: Termination },
    /// Containers stopped because the pod is being deleted; finalisation pending.
    Killed { termination: Termination },
    /// Deleted with grace period 0; nothing more to do.
    Finalized,
}

/// What the simulator remembers about one pod incarnation (one UID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub stage: Stage,
    /// `status.startTime`: when the simulated kubelet first reported the pod.
    pub start_time: Option<Timestamp>,
    /// In-place restarts so far (`restartCount`).
    pub restarts: u32,
    /// The previous run's end (`lastState.terminated`).
    pub last_termination: Option<Termination>,
}

impl Default for Record {
    fn default() -> Self {
        Record {
            stage: Stage::Unbound,
            start_time: None,
            restarts: 0,
            last_termination: None,
        }
    }
}

impl Record {
    /// Reconstructs a record from a pod's current status: used when the simulator first sees a
    /// pod that something (an earlier simulator process, or a test) already moved along, and by the
    /// direct test helpers.
    pub fn observe(pod: &Pod, now: Timestamp) -> Record {
        let status = pod.status.as_ref();
        let bound = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty());
        let start_time = status.and_then(|s| s.start_time.as_ref()).map(|t| t.0);
        let first: Option<&ContainerStatus> = status
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.first());
        let restarts = first
            .map(|c| c.restart_count.max(0).unsigned_abs())
            .unwrap_or(0);
        let last_termination = first
            .and_then(|c| c.last_state.as_ref())
            .and_then(|s| s.terminated.as_ref())
            .map(|t| termination_from(t, now));
        let state = first.and_then(|c| c.state.as_ref());
        let running_since = state
            .and_then(|s| s.running.as_ref())
            .map(|r| r.started_at.as_ref().map_or(now, |t| t.0));
        let terminated = state
            .and_then(|s| s.terminated.as_ref())
            .map(|t| termination_from(t, now));
        let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");

        let stage = match (phase, running_since, terminated) {
            ("Succeeded" | "Failed", _, Some(termination)) => Stage::Finished { termination },
            ("Succeeded" | "Failed", _, None) => Stage::Finished {
                termination: Termination {
                    exit_code: if phase == "Succeeded" { 0 } else { 1 },
                    reason: if phase == "Succeeded" {
                        "Completed"
                    } else {
                        "Error"
                    }
                    .to_string(),
                    started_at: start_time.unwrap_or(now),
                    finished_at: now,
                },
            },
            (_, Some(since), _) => Stage::Running {
                since,
                attempt: restarts + 1,
            },
            ("Running", None, _) => Stage::BackOff { since: now },
            _ if !bound => Stage::Unbound,
            _ => match start_time {
                Some(since) => Stage::Pending { since },
                None => Stage::Bound { at: now },
            },
        };
        Record {
            stage,
            start_time,
            restarts,
            last_termination,
        }
    }
}

fn termination_from(
    t: &k8s_openapi::api::core::v1::ContainerStateTerminated,
    now: Timestamp,
) -> Termination {
    Termination {
        exit_code: t.exit_code,
        reason: t
            .reason
            .clone()
            .unwrap_or_else(|| Exit::with_default_reason(t.exit_code).reason),
        started_at: t.started_at.as_ref().map_or(now, |s| s.0),
        finished_at: t.finished_at.as_ref().map_or(now, |s| s.0),
    }
}

/// The side effect of a step, performed by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// POST `pods/<name>/binding` to the simulator's node.
    Bind,
    /// Write the status that [`super::status::pod_status`] builds from the step's new record.
    WriteStatus,
    /// Delete the pod with grace period 0, as a kubelet does once its containers are gone.
    Finalize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// When to perform the effect (it may be in the past: then at once).
    pub at: Timestamp,
    pub effect: Effect,
    /// The record once the effect is done.
    pub record: Record,
    /// The effect starts a container run: the driver counts it as attempt `next_attempt`.
    pub starts_run: bool,
}

/// Exit codes a kubelet's container runtime reports for a container stopped on deletion.
pub const EXIT_SIGTERM: i32 = 143;
pub const EXIT_SIGKILL: i32 = 137;

/// Decides the next step for a pod, or `None` when nothing happens until the pod changes.
///
/// `next_attempt` is the 1-based number the next container run of this pod name would get
/// (counted across pod incarnations and in-place restarts by the driver).
pub fn next_step(rec: &Record, pod: &PodFacts, now: Timestamp, next_attempt: u32) -> Option<Step> {
    if rec.stage == Stage::Finalized {
        return None;
    }
    if let Some(deletion) = &pod.deletion {
        return deletion_step(rec, pod, deletion, now);
    }
    let b = &pod.behaviour;
    match &rec.stage {
        Stage::Unbound if pod.node_name.is_none() => Some(Step {
            at: now,
            effect: Effect::Bind,
            record: Record {
                stage: Stage::Bound { at: now },
                ..rec.clone()
            },
            starts_run: false,
        }),
        // Bound by someone else (a test, or a pod created with nodeName): report it.
        Stage::Unbound => Some(report_pending(rec, now)),
        // With no pending time the Pending report would be overwritten at once: skip that write
        // (it matters when thousands of pods compete for the apiserver).
        Stage::Bound { at } if b.pending.is_zero() && !b.manual => {
            Some(start_run(rec, *at, rec.restarts, None, next_attempt))
        }
        Stage::Bound { at } => Some(report_pending(rec, *at)),
        _ if b.manual => None,
        Stage::Pending { since } => Some(start_run(
            rec,
            after(*since, b.pending),
            rec.restarts,
            None,
            next_attempt,
        )),
        Stage::Running { .. } if b.run_forever => None,
        Stage::Running { since, attempt } => {
            let at = after(*since, b.run);
            let exit = b.exit_for(*attempt);
            let termination = Termination {
                exit_code: exit.code,
                reason: exit.reason,
                started_at: *since,
                finished_at: at,
            };
            if !pod.restart_policy.restarts_after(termination.exit_code) {
                return Some(Step {
                    at,
                    effect: Effect::WriteStatus,
                    record: Record {
                        stage: Stage::Finished { termination },
                        ..rec.clone()
                    },
                    starts_run: false,
                });
            }
            if b.restart_delay.is_zero() {
                return Some(start_run(
                    rec,
                    at,
                    rec.restarts + 1,
                    Some(termination),
                    next_attempt,
                ));
            }
            Some(Step {
                at,
                effect: Effect::WriteStatus,
                record: Record {
                    stage: Stage::BackOff { since: at },
                    restarts: rec.restarts + 1,
                    last_termination: Some(termination),
                    ..rec.clone()
                },
                starts_run: false,
            })
        }
        Stage::BackOff { since } => Some(start_run(
            rec,
            after(*since, b.restart_delay),
            rec.restarts,
            None,
            next_attempt,
        )),
        Stage::Finished { .. } | Stage::Killed { .. } | Stage::Finalized => None,
    }
}

fn report_pending(rec: &Record, at: Timestamp) -> Step {
    Step {
        at,
        effect: Effect::WriteStatus,
        record: Record {
            stage: Stage::Pending { since: at },
            start_time: Some(rec.start_time.unwrap_or(at)),
            ..rec.clone()
        },
        starts_run: false,
    }
}

fn start_run(
    rec: &Record,
    at: Timestamp,
    restarts: u32,
    last: Option<Termination>,
    attempt: u32,
) -> Step {
    Step {
        at,
        effect: Effect::WriteStatus,
        record: Record {
            stage: Stage::Running { since: at, attempt },
            start_time: Some(rec.start_time.unwrap_or(at)),
            restarts,
            last_termination: last.or_else(|| rec.last_termination.clone()),
        },
        starts_run: true,
    }
}

/// A kubelet sends SIGTERM when deletion is requested and SIGKILL when the grace period is over;
/// once the containers are gone it deletes the pod with grace period 0.
fn deletion_step(
    rec: &Record,
    pod: &PodFacts,
    deletion: &Deletion,
    now: Timestamp,
) -> Option<Step> {
    let finalize = |at| Step {
        at,
        effect: Effect::Finalize,
        record: Record {
            stage: Stage::Finalized,
            ..rec.clone()
        },
        starts_run: false,
    };
    match &rec.stage {
        // Unbound pods are removed by the apiserver itself; nothing ran.
        Stage::Unbound if pod.node_name.is_none() => None,
        Stage::Finished { .. } | Stage::Killed { .. } => Some(finalize(now)),
        Stage::Finalized => None,
        Stage::Unbound
        | Stage::Bound { .. }
        | Stage::Pending { .. }
        | Stage::Running { .. }
        | Stage::BackOff { .. } => {
            let sigkill = pod.behaviour.stop >= deletion.grace;
            let at = after(
                deletion.requested_at,
                pod.behaviour.stop.min(deletion.grace),
            );
            let exit_code = if sigkill { EXIT_SIGKILL } else { EXIT_SIGTERM };
            let started_at = match &rec.stage {
                Stage::Running { since, .. } => *since,
                _ => at,
            };
            let termination = Termination {
                exit_code,
                reason: "Error".to_string(),
                started_at,
                finished_at: at,
            };
            Some(Step {
                at,
                effect: Effect::WriteStatus,
                record: Record {
                    stage: Stage::Killed { termination },
                    start_time: Some(rec.start_time.unwrap_or(at)),
                    ..rec.clone()
                },
                starts_run: false,
            })
        }
    }
}

/// `ts + d`, saturating instead of overflowing on absurd annotation values.
pub fn after(ts: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| ts.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

fn before(ts: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| ts.checked_sub(d).ok())
        .unwrap_or(Timestamp::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::AttemptSet;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_700_000_000_000 + ms).unwrap()
    }

    fn pod(policy: RestartPolicy, behaviour: Behaviour) -> PodFacts {
        PodFacts {
            namespace: "ns".into(),
            name: "job-worker-0".into(),
            uid: "uid-1".into(),
            node_name: None,
            restart_policy: policy,
            containers: vec![ContainerFacts {
                name: "tensorflow".into(),
                image: "tf:2".into(),
            }],
            init_containers: vec![],
            deletion: None,
            behaviour,
        }
    }

    /// Runs the pure state machine like the driver does (performing every step at its time,
    /// counting attempts), and returns the stages it went through.
    fn simulate(mut p: PodFacts, steps: usize) -> Vec<(Timestamp, Stage)> {
        let mut rec = Record::default();
        let mut now = t(0);
        let mut attempts = 0;
        let mut seen = Vec::new();
        for _ in 0..steps {
            let Some(step) = next_step(&rec, &p, now, attempts + 1) else {
                break;
            };
            now = step.at.max(now);
            if step.starts_run {
                attempts += 1;
            }
            if step.effect == Effect::Bind {
                p.node_name = Some("sim-node".into());
            }
            rec = step.record;
            seen.push((now, rec.stage.clone()));
        }
        seen
    }

    #[test]
    fn happy_path_binds_then_pending_running_succeeded() {
        let seen = simulate(pod(RestartPolicy::Never, Behaviour::default()), 10);
        let stages: Vec<&Stage> = seen.iter().map(|(_, s)| s).collect();
        assert!(matches!(stages[0], Stage::Bound { .. }));
        assert!(matches!(stages[1], Stage::Pending { .. }));
        assert!(matches!(stages[2], Stage::Running { attempt: 1, .. }));
        match stages[3] {
            Stage::Finished { termination } => {
                assert_eq!(termination.exit_code, 0);
                assert_eq!(termination.reason, "Completed");
                assert_eq!(termination.finished_at, t(1100));
            }
            other => panic!("expected Finished, got {other:?}"),
        }
        assert_eq!(seen.len(), 4, "nothing after the terminal phase: {seen:?}");
        assert_eq!(
            seen[2].0,
            t(100),
            "runs after the default 100 ms pending time"
        );
    }

    #[test]
    fn failure_under_never_is_terminal() {
        let b = Behaviour {
            exit_code: 3,
            ..Behaviour::default()
        };
        let seen = simulate(pod(RestartPolicy::Never, b), 10);
        match &seen.last().unwrap().1 {
            Stage::Finished { termination } => assert_eq!(
                (termination.exit_code, termination.reason.as_str()),
                (3, "Error")
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn on_failure_restarts_in_place_until_an_attempt_succeeds() {
        let b = Behaviour {
            exit_code: 2,
            fail_attempts: AttemptSet::parse("1,2").unwrap(),
            ..Behaviour::default()
        };
        let p = pod(RestartPolicy::OnFailure, b);
        let mut rec = Record::default();
        let mut now = t(0);
        let mut attempts = 0;
        let mut p2 = p.clone();
        let mut restarts_seen = vec![];
        while let Some(step) = next_step(&rec, &p2, now, attempts + 1) {
            now = step.at;
            attempts += u32::from(step.starts_run);
            if step.effect == Effect::Bind {
                p2.node_name = Some("n".into());
            }
            rec = step.record;
            if let Stage::Running { attempt, .. } = rec.stage {
                restarts_seen.push((
                    attempt,
                    rec.restarts,
                    rec.last_termination.as_ref().map(|t| t.exit_code),
                ));
            }
        }
        assert_eq!(
            restarts_seen,
            vec![(1, 0, None), (2, 1, Some(2)), (3, 2, Some(2))]
        );
        assert!(
            matches!(&rec.stage, Stage::Finished { termination } if termination.exit_code == 0)
        );
        assert_eq!(rec.restarts, 2);
    }

    #[test]
    fn always_restarts_even_after_success_and_backoff_is_honoured() {
        let b = Behaviour {
            restart_delay: Duration::from_millis(500),
            ..Behaviour::default()
        };
        let seen = simulate(pod(RestartPolicy::Always, b), 6);
        let stages: Vec<&Stage> = seen.iter().map(|(_, s)| s).collect();
        assert!(matches!(stages[3], Stage::BackOff { .. }), "{stages:?}");
        assert!(matches!(stages[4], Stage::Running { attempt: 2, .. }));
        assert_eq!(seen[4].0, t(100 + 1000 + 500));
    }

    #[test]
    fn run_forever_stays_running() {
        let b = Behaviour {
            run_forever: true,
            ..Behaviour::default()
        };
        let seen = simulate(pod(RestartPolicy::Never, b), 10);
        assert!(matches!(seen.last().unwrap().1, Stage::Running { .. }));
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn zero_pending_time_goes_straight_from_binding_to_running() {
        let b = Behaviour {
            pending: Duration::ZERO,
            ..Behaviour::default()
        };
        let seen = simulate(pod(RestartPolicy::Never, b), 10);
        assert!(matches!(seen[0].1, Stage::Bound { .. }));
        assert!(
            matches!(seen[1].1, Stage::Running { attempt: 1, .. }),
            "{seen:?}"
        );
        assert_eq!(seen[1].0, seen[0].0);
        assert_eq!(seen.len(), 3, "bind, run, finish: {seen:?}");
    }

    #[test]
    fn manual_pods_are_only_bound_and_reported_pending() {
        let b = Behaviour {
            manual: true,
            ..Behaviour::default()
        };
        let seen = simulate(pod(RestartPolicy::Never, b), 10);
        assert_eq!(seen.len(), 2);
        assert!(matches!(seen[1].1, Stage::Pending { .. }));
    }

    #[test]
    fn pod_bound_by_someone_else_is_reported_without_binding() {
        let mut p = pod(RestartPolicy::Never, Behaviour::default());
        p.node_name = Some("sim-node".into());
        let step = next_step(&Record::default(), &p, t(5), 1).unwrap();
        assert_eq!(step.effect, Effect::WriteStatus);
        assert_eq!(step.record.start_time, Some(t(5)));
    }

    #[test]
    fn graceful_deletion_sends_sigterm_then_finalizes() {
        let mut p = pod(RestartPolicy::OnFailure, Behaviour::default());
        p.node_name = Some("sim-node".into());
        let rec = Record {
            stage: Stage::Running {
                since: t(0),
                attempt: 1,
            },
            start_time: Some(t(0)),
            ..Record::default()
        };
        p.deletion = Some(Deletion {
            requested_at: t(300),
            grace: Duration::from_secs(30),
        });
        let step = next_step(&rec, &p, t(310), 2).unwrap();
        assert_eq!(step.effect, Effect::WriteStatus);
        assert_eq!(step.at, t(300));
        match &step.record.stage {
            Stage::Killed { termination } => {
                assert_eq!(termination.exit_code, EXIT_SIGTERM);
                assert_eq!(termination.started_at, t(0));
            }
            other => panic!("{other:?}"),
        }
        let fin = next_step(&step.record, &p, t(320), 2).unwrap();
        assert_eq!(fin.effect, Effect::Finalize);
        assert_eq!(next_step(&fin.record, &p, t(330), 2), None);
    }

    #[test]
    fn slow_stop_beyond_grace_is_a_sigkill() {
        let mut p = pod(
            RestartPolicy::Never,
            Behaviour {
                stop: Duration::from_secs(60),
                ..Behaviour::default()
            },
        );
        p.node_name = Some("n".into());
        p.deletion = Some(Deletion {
            requested_at: t(0),
            grace: Duration::from_secs(2),
        });
        let rec = Record {
            stage: Stage::Running {
                since: t(-1000),
                attempt: 1,
            },
            ..Record::default()
        };
        let step = next_step(&rec, &p, t(0), 2).unwrap();
        assert_eq!(step.at, t(2000));
        assert!(
            matches!(&step.record.stage, Stage::Killed { termination } if termination.exit_code == EXIT_SIGKILL)
        );
    }

    #[test]
    fn finished_pods_are_finalized_at_once_and_unbound_ones_left_to_the_apiserver() {
        let mut p = pod(RestartPolicy::Never, Behaviour::default());
        p.deletion = Some(Deletion {
            requested_at: t(0),
            grace: Duration::ZERO,
        });
        assert_eq!(next_step(&Record::default(), &p, t(0), 1), None);
        p.node_name = Some("n".into());
        let rec = Record {
            stage: Stage::Finished {
                termination: Termination {
                    exit_code: 0,
                    reason: "Completed".into(),
                    started_at: t(0),
                    finished_at: t(1),
                },
            },
            ..Record::default()
        };
        assert_eq!(
            next_step(&rec, &p, t(9), 1).unwrap().effect,
            Effect::Finalize
        );
    }

    #[test]
    fn replanning_is_stable() {
        let mut p = pod(RestartPolicy::Never, Behaviour::default());
        p.node_name = Some("n".into());
        let rec = Record {
            stage: Stage::Pending { since: t(0) },
            start_time: Some(t(0)),
            ..Record::default()
        };
        assert_eq!(next_step(&rec, &p, t(10), 1), next_step(&rec, &p, t(50), 1));
    }

    #[test]
    fn restart_policy_rules() {
        assert!(RestartPolicy::Always.restarts_after(0));
        assert!(RestartPolicy::OnFailure.restarts_after(1));
        assert!(!RestartPolicy::OnFailure.restarts_after(0));
        assert!(!RestartPolicy::Never.restarts_after(1));
        assert_eq!(RestartPolicy::parse(None), RestartPolicy::Always);
    }
}
