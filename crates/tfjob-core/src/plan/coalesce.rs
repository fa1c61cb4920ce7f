//! Coalesced status writes: when a planned status change is written.
//!
//! A TFJob status patch is one of the dearest requests an apiserver serves (it decodes,
//! prunes, validates and computes managedFields for the whole custom object), and most of a
//! job's status changes only move counters: `active` rises as each pod starts. Like the Job
//! controller, which batches pod updates for a second, the operator holds such a change for a
//! short window from the first one it saw and then writes the job's state once.
//!
//! Only *progress* is held: Created and Running appearing (or their notes changing), the
//! `active`/`succeeded` counters and `completedIndexes`, `ready`, `startTime`. A new job's
//! children are created at once and its Created status follows within the window: when many
//! jobs arrive together, their pods go first. Everything else is written at once, because
//! someone acts on it or a later step depends on it being stored:
//!
//! | change | written |
//! |---|---|
//! | a condition other than Created or Running=True appears, changes or goes (Succeeded, Failed, Restarting, Suspended, Resumed) | now |
//! | a counted transition other than Created (a metrics counter moves) | now |
//! | `failed`, `restarts` and the failure memory, `completionTime`, the selectors | now |
//! | the plan deletes something (the status records why, before the delete) | now |
//! | Running=True appearing | within half the window (with whatever else is held) |
//! | Created, `active`, `succeeded`, `completedIndexes`, `ready`, `startTime` | at the end of the window |
//!
//! A new job's first status (Created) also waits, after its window, while other jobs' children
//! are being created, up to [`FIRST_STATUS_WINDOWS`] windows: when many jobs arrive at once,
//! their pods go first and the bookkeeping follows. A first status that already carries
//! Running=True does not: the condition someone watches for appears within the window.
//!
//! A held change is never lost: the next pass plans from the held status (as from a status
//! just written), the shell looks again when the window ends, and the write carries the state
//! at that moment (the final counters); an urgent change in between carries the held ones
//! with it, so a Running seen while held still precedes Succeeded in the conditions.

use std::time::Duration;

use jiff::Timestamp;

use super::conditions;
use super::output::{JobCounter, Plan, PodGroupAction};
use crate::api::{JobStatus, ReplicaStatus};

/// The Job controller's pod-update batch period; the default `--status-batch-window`.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(1);

/// How many windows a new job's first status (Created) waits at most while other jobs' children
/// are being created: under a backlog, pods go first and the bookkeeping follows.
pub const FIRST_STATUS_WINDOWS: u32 = 5;

/// Running=True appearing waits at most the window divided by this (half of it): the counters
/// batch for the whole window, the condition someone watches for does not.
pub const RUNNING_WINDOW_DIVISOR: u32 = 2;

/// When a pass runs and what holds its status back.
#[derive(Clone, Copy, Debug)]
pub struct Batching {
    pub now: Timestamp,
    /// `--status-batch-window`; zero writes every change at once.
    pub window: Duration,
    /// Other jobs' children are being created at this moment.
    pub others_creating: bool,
}

/// When to write a planned status change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusWrite {
    /// With this pass.
    Now,
    /// Held: plan again after this long (the rest of the window).
    Hold(Duration),
}

/// A status change held for a job: since when, and the status as planned so far. The next
/// pass plans from it rather than from the stored status, so a transition seen while held
/// (Running) is never lost when a later one (Succeeded) is written.
#[derive(Clone, Debug, PartialEq)]
pub struct Held {
    /// When the first change still held was seen; moved back when Running appears, so that
    /// the condition is written within half the window.
    pub since: Timestamp,
    pub status: JobStatus,
    /// Counted transitions held with it (Created): counted when the status is written.
    pub counters: Vec<JobCounter>,
}

/// Applies the batch window to `plan`, made from `held`'s status if any (else from
/// `stored`, the status the apiserver holds). Afterwards `plan.status` is the status to
/// write with this pass, if any; the result is what stays held (a held change also sets
/// the plan's timer to the end of its window).
pub fn coalesce(
    plan: &mut Plan,
    stored: &JobStatus,
    held: Option<Held>,
    batching: Batching,
) -> Option<Held> {
    let now = batching.now;
    let mut since = held.as_ref().map(|h| h.since);
    let (held_status, mut counters) = match held {
        Some(held) => (Some(held.status), held.counters),
        None => (None, Vec::new()),
    };
    counters.append(&mut plan.counters);
    let before = held_status.as_ref().unwrap_or(stored);
    let running_appears = plan.status.as_ref().is_some_and(|planned| {
        conditions::is_true(&planned.conditions, conditions::RUNNING)
            && !conditions::is_true(&before.conditions, conditions::RUNNING)
    });
    let planned = match (plan.status.take(), held_status) {
        (Some(status), _) => status,
        (None, Some(status)) => status,
        (None, None) => return None,
    };
    if planned == *stored {
        return None; // the change went away before it was written
    }
    if running_appears {
        since = Some(running_since(since, now, batching.window));
    }
    match status_write(stored, &planned, plan, &counters, since, batching) {
        StatusWrite::Now => {
            plan.status = Some(planned);
            plan.counters = counters;
            None
        }
        StatusWrite::Hold(rest) => {
            plan.requeue_after(rest);
            Some(Held {
                since: since.unwrap_or(now),
                status: planned,
                counters,
            })
        }
    }
}

/// When the change held for a job counts as first seen once Running appears in it: Running,
/// the condition people wait for, is written within the window divided by
/// [`RUNNING_WINDOW_DIVISOR`], whatever was held before it; the counters ride along.
fn running_since(since: Option<Timestamp>, now: Timestamp, window: Duration) -> Timestamp {
    let waited = window.saturating_sub(window / RUNNING_WINDOW_DIVISOR);
    let latest = jiff::SignedDuration::try_from(waited)
        .ok()
        .and_then(|waited| now.checked_sub(waited).ok())
        .unwrap_or(now);
    since.map_or(latest, |since| since.min(latest))
}

/// When to write `planned` over `stored`, given the plan it came with, the transitions it
/// counts (the plan's and those held) and when the first change still held for this job was
/// seen (`held_since`, `None` if nothing is held).
pub fn status_write(
    stored: &JobStatus,
    planned: &JobStatus,
    plan: &Plan,
    counters: &[JobCounter],
    held_since: Option<Timestamp>,
    batching: Batching,
) -> StatusWrite {
    let Batching {
        now,
        window,
        others_creating,
    } = batching;
    if window.is_zero() || is_urgent(stored, planned, plan, counters) {
        return StatusWrite::Now;
    }
    let since = held_since.unwrap_or(now);
    let held_for = now.duration_since(since).unsigned_abs();
    if let Some(rest) = window.checked_sub(held_for).filter(|r| !r.is_zero()) {
        return StatusWrite::Hold(rest);
    }
    // A new job's Created yields to the children other jobs are creating, a while; once its
    // pods run, the Running it carries waits no longer than the window.
    let only_created = stored.conditions.is_empty()
        && !conditions::is_true(&planned.conditions, conditions::RUNNING);
    let first_limit = window.saturating_mul(FIRST_STATUS_WINDOWS);
    match first_limit.checked_sub(held_for) {
        Some(rest) if only_created && others_creating && !rest.is_zero() => {
            StatusWrite::Hold(rest.min(window / 4))
        }
        _ => StatusWrite::Now,
    }
}

/// Whether the change must be stored with this pass (see the module's table).
pub fn is_urgent(
    stored: &JobStatus,
    planned: &JobStatus,
    plan: &Plan,
    counters: &[JobCounter],
) -> bool {
    let deletes = !plan.delete_pods.is_empty()
        || !plan.delete_services.is_empty()
        || !plan.force_delete_pods.is_empty()
        || plan.delete_job
        || matches!(plan.pod_group, Some(PodGroupAction::Delete(_)));
    counters.iter().any(|c| *c != JobCounter::Created)
        || deletes
        || without_progress(stored) != without_progress(planned)
}

/// The status with what may be held blanked out: what is left must be written at once.
fn without_progress(status: &JobStatus) -> JobStatus {
    let mut status = status.clone();
    status.conditions.retain(|c| match c.type_.as_str() {
        conditions::CREATED => false,
        conditions::RUNNING => c.status != conditions::TRUE,
        _ => true,
    });
    for condition in &mut status.conditions {
        // Notes on a condition (what keeps the job from progressing) may wait too; its
        // type, status and reason may not.
        condition.message = None;
        condition.last_update_time = None;
    }
    let replicas = std::mem::take(&mut status.replica_statuses);
    for (replica_type, replica) in replicas.iter() {
        let mut replica = replica.clone();
        replica.active = 0;
        replica.succeeded = 0;
        // Which indexes completed: the next pass plans from the held status, which has them.
        replica.completed_indexes = None;
        // A type's first, empty entry (a new job's) is progress too.
        if replica != ReplicaStatus::default() {
            status
                .replica_statuses
                .insert(replica_type.clone(), replica);
        }
    }
    status.ready = None;
    status.start_time = None;
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::JobCondition;
    use crate::plan::ChildRef;
    use crate::test_fixtures::t;

    fn condition(type_: &str, status: &str) -> JobCondition {
        JobCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(format!("TFJob{type_}")),
            message: Some(format!("TFJob is {type_}")),
            ..Default::default()
        }
    }

    fn status(conditions: &[(&str, &str)], active: i32, succeeded: i32, failed: i32) -> JobStatus {
        let mut status = JobStatus {
            conditions: conditions.iter().map(|(t, s)| condition(t, s)).collect(),
            ready: Some(format!("{active}/4")),
            ..Default::default()
        };
        status.replica_statuses.insert(
            "Worker",
            ReplicaStatus {
                active,
                succeeded,
                failed,
                ..Default::default()
            },
        );
        status
    }

    fn at(now: Timestamp, window: Duration) -> Batching {
        Batching {
            now,
            window,
            others_creating: false,
        }
    }

    #[test]
    fn a_new_jobs_created_yields_to_other_jobs_children_for_a_while() {
        let window = Duration::from_secs(1);
        let new = JobStatus::default();
        let created = status(&[CREATED], 0, 0, 0);
        let running = status(&[CREATED, RUNNING], 1, 0, 0);
        let plan = Plan::default();
        let quarter = StatusWrite::Hold(Duration::from_millis(250));
        let cases = [
            // (stored, planned, seconds held, others creating, expected)
            (&new, &created, 0, true, StatusWrite::Hold(window)),
            (&new, &created, 1, false, StatusWrite::Now),
            (&new, &created, 1, true, quarter),
            (&new, &created, 4, true, quarter),
            (&new, &created, 5, true, StatusWrite::Now),
            // Only the first status waits longer than its window,
            (&created, &running, 1, true, StatusWrite::Now),
            // and only while its pods are not running yet.
            (&new, &running, 1, true, StatusWrite::Now),
            (&new, &running, 0, true, StatusWrite::Hold(window)),
        ];
        for (stored, planned, held, others_creating, want) in cases {
            let batching = Batching {
                now: t(10 + held),
                window,
                others_creating,
            };
            let got = status_write(stored, planned, &plan, &[], Some(t(10)), batching);
            assert_eq!(
                got, want,
                "held {held} s, others creating: {others_creating}"
            );
        }
    }

    const CREATED: (&str, &str) = ("Created", "True");
    const RUNNING: (&str, &str) = ("Running", "True");
    const NOT_RUNNING: (&str, &str) = ("Running", "False");
    const SUCCEEDED: (&str, &str) = ("Succeeded", "True");
    const FAILED: (&str, &str) = ("Failed", "True");
    const RESTARTING: (&str, &str) = ("Restarting", "True");

    #[test]
    fn what_is_held_and_what_is_written_at_once() {
        let window = Duration::from_secs(1);
        let hold = StatusWrite::Hold(window);
        let created = status(&[CREATED], 0, 0, 0);
        let running = status(&[CREATED, RUNNING], 2, 0, 0);
        let deleting = Plan {
            delete_pods: vec![ChildRef {
                name: "p".into(),
                uid: None,
            }],
            ..Plan::default()
        };
        let counted = Plan {
            counters: vec![JobCounter::Succeeded],
            ..Plan::default()
        };
        let plain = Plan::default();
        let first = Plan {
            counters: vec![JobCounter::Created],
            ..Plan::default()
        };
        let cases = [
            (
                "first status",
                JobStatus::default(),
                created.clone(),
                &first,
                hold,
            ),
            (
                "Running appears",
                created.clone(),
                running.clone(),
                &plain,
                hold,
            ),
            (
                "a pod starts",
                running.clone(),
                status(&[CREATED, RUNNING], 3, 0, 0),
                &plain,
                hold,
            ),
            (
                "a worker finishes",
                running.clone(),
                status(&[CREATED, RUNNING], 1, 1, 0),
                &plain,
                hold,
            ),
            (
                "a pod fails",
                running.clone(),
                status(&[CREATED, RUNNING], 1, 0, 1),
                &plain,
                StatusWrite::Now,
            ),
            (
                "Succeeded",
                running.clone(),
                status(&[CREATED, NOT_RUNNING, SUCCEEDED], 0, 4, 0),
                &counted,
                StatusWrite::Now,
            ),
            (
                "Succeeded, no counter",
                running.clone(),
                status(&[CREATED, NOT_RUNNING, SUCCEEDED], 0, 4, 0),
                &plain,
                StatusWrite::Now,
            ),
            (
                "Failed",
                running.clone(),
                status(&[CREATED, NOT_RUNNING, FAILED], 0, 0, 1),
                &plain,
                StatusWrite::Now,
            ),
            (
                "Restarting",
                running.clone(),
                status(&[CREATED, RESTARTING], 1, 0, 0),
                &plain,
                StatusWrite::Now,
            ),
            (
                "Running back after Restarting",
                status(&[CREATED, RESTARTING], 1, 0, 0),
                running.clone(),
                &plain,
                StatusWrite::Now,
            ),
            (
                "counters with a delete",
                running.clone(),
                status(&[CREATED, RUNNING], 1, 0, 0),
                &deleting,
                StatusWrite::Now,
            ),
        ];
        for (name, stored, planned, plan, want) in cases {
            let got = status_write(
                &stored,
                &planned,
                plan,
                &plan.counters,
                None,
                at(t(10), window),
            );
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn running_appearing_is_written_within_half_the_window() {
        let window = Duration::from_secs(1);
        let ms = |m: i64| t(10) + jiff::SignedDuration::from_millis(m);
        let new = JobStatus::default();
        let created = status(&[CREATED], 0, 0, 0);
        let running = status(&[CREATED, RUNNING], 1, 0, 0);
        let more = status(&[CREATED, RUNNING], 3, 0, 0);
        let cases = [
            // (what, stored, held since and status, planned, now, rest of the hold)
            (
                "Running appears, nothing held",
                &created,
                None,
                &running,
                ms(0),
                500,
            ),
            (
                "Running appears early in Created's window",
                &new,
                Some((ms(0), &created)),
                &running,
                ms(200),
                500,
            ),
            (
                "Running appears late in Created's window",
                &new,
                Some((ms(0), &created)),
                &running,
                ms(800),
                200,
            ),
            (
                "counters move under a held Running: its deadline stays",
                &created,
                Some((ms(-500), &running)),
                &more,
                ms(200),
                300,
            ),
            (
                "and it is written when it comes",
                &created,
                Some((ms(-500), &running)),
                &more,
                ms(500),
                0,
            ),
            (
                "counters only: the whole window",
                &running,
                None,
                &more,
                ms(0),
                1000,
            ),
        ];
        for (what, stored, held, planned, now, rest_ms) in cases {
            let held = held.map(|(since, status)| Held {
                since,
                status: status.clone(),
                counters: Vec::new(),
            });
            let mut plan = Plan {
                status: Some(planned.clone()),
                ..Plan::default()
            };
            let still = coalesce(&mut plan, stored, held, at(now, window));
            if rest_ms == 0 {
                assert!(still.is_none(), "{what}: held");
                assert_eq!(plan.status.as_ref(), Some(planned), "{what}");
            } else {
                let still = still.unwrap_or_else(|| panic!("{what}: written at once"));
                assert_eq!(&still.status, planned, "{what}");
                assert!(plan.status.is_none(), "{what}");
                assert_eq!(
                    plan.requeue_after,
                    Some(Duration::from_millis(rest_ms)),
                    "{what}"
                );
            }
        }
    }

    #[test]
    fn a_held_change_waits_for_the_rest_of_the_window_from_the_first_one() {
        let stored = status(&[CREATED], 0, 0, 0);
        let planned = status(&[CREATED, RUNNING], 1, 0, 0);
        let plan = Plan::default();
        let window = Duration::from_secs(2);
        let cases = [
            (None, t(10), StatusWrite::Hold(Duration::from_secs(2))),
            (
                Some(t(10)),
                t(11),
                StatusWrite::Hold(Duration::from_secs(1)),
            ),
            (Some(t(10)), t(12), StatusWrite::Now),
            (Some(t(10)), t(30), StatusWrite::Now),
            // A clock that went back holds for at most a window.
            (Some(t(10)), t(9), StatusWrite::Hold(Duration::from_secs(1))),
        ];
        for (since, now, want) in cases {
            let got = status_write(&stored, &planned, &plan, &[], since, at(now, window));
            assert_eq!(got, want, "held since {since:?}, now {now}");
        }
        let off = status_write(
            &stored,
            &planned,
            &plan,
            &[],
            None,
            at(t(10), Duration::ZERO),
        );
        assert_eq!(off, StatusWrite::Now, "a zero window writes every change");
    }
}
