//! Back-off and deadline: when a running job has used up its restarts or its time.
//!
//! Upstream counted only in-place restarts of the pods alive now, so re-created pods reset the
//! count; here the restarts of replaced pods are kept in status and added (see
//! [`restarts_so_far`]). Upstream checked the deadline only when something else woke the job;
//! here [`deadline_expiry`] arms a timer.

use jiff::Timestamp;

use crate::plan::observe::PodFacts;

/// Which limit a job reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Backoff,
    Deadline,
}

/// Restarts counted against `backoffLimit`: those of replaced pods (`stored`, kept in status)
/// plus the in-place restarts of the pods alive now. Saturates instead of overflowing.
pub fn restarts_so_far(stored: impl IntoIterator<Item = i32>, pods: &[PodFacts]) -> i32 {
    let replaced = stored.into_iter().fold(0i32, i32::saturating_add);
    let live = pods
        .iter()
        .filter(|p| !p.terminating)
        .map(|p| p.restarts)
        .fold(0i32, i32::saturating_add);
    replaced.saturating_add(live)
}

/// Whether one more restart stays within `backoff_limit`.
pub fn may_restart(backoff_limit: Option<i32>, restarts_so_far: i32) -> bool {
    backoff_limit.is_none_or(|limit| restarts_so_far < limit)
}

/// The limit a job has reached before a pass touches its pods: more restarts than allowed, or
/// active (since `start`) for `active_deadline_seconds` or longer.
pub fn reached(
    backoff_limit: Option<i32>,
    restarts_so_far: i32,
    active_deadline_seconds: Option<i64>,
    start: Option<Timestamp>,
    now: Timestamp,
) -> Option<Limit> {
    if backoff_limit.is_some_and(|limit| restarts_so_far > limit) {
        return Some(Limit::Backoff);
    }
    match (active_deadline_seconds, start) {
        (Some(deadline), Some(start))
            if now.as_second().saturating_sub(start.as_second()) >= deadline =>
        {
            Some(Limit::Deadline)
        }
        _ => None,
    }
}

/// When the deadline expires (seconds since the epoch), to look again then even if nothing
/// changes.
pub fn deadline_expiry(
    active_deadline_seconds: Option<i64>,
    start: Option<Timestamp>,
) -> Option<i64> {
    Some(start?.as_second().saturating_add(active_deadline_seconds?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::observe::Phase;
    use crate::test_fixtures::t;

    fn pod(restarts: i32, terminating: bool) -> PodFacts {
        PodFacts {
            name: "p".into(),
            uid: None,
            replica_type: None,
            index: None,
            phase: Phase::Running,
            terminating,
            exit_code: 0,
            restarts,
            abnormal: None,
            failure: None,
            waiting: None,
            deletion: None,
        }
    }

    #[test]
    fn restarts_add_replaced_and_live_pods_but_not_terminating_ones() {
        let cases: [(&[i32], Vec<PodFacts>, i32); 5] = [
            (&[], vec![], 0),
            (&[2, 1], vec![], 3),
            (&[1], vec![pod(2, false), pod(5, true)], 3),
            (&[i32::MAX], vec![pod(1, false)], i32::MAX),
            (&[i32::MAX, i32::MAX], vec![], i32::MAX),
        ];
        for (stored, pods, want) in cases {
            assert_eq!(
                restarts_so_far(stored.iter().copied(), &pods),
                want,
                "{stored:?}"
            );
        }
    }

    #[test]
    fn one_more_restart_must_stay_within_the_limit() {
        let cases = [
            (None, 1_000, true),
            (Some(0), 0, false),
            (Some(3), 2, true),
            (Some(3), 3, false),
            (Some(i32::MAX), i32::MAX, false),
        ];
        for (limit, so_far, want) in cases {
            assert_eq!(may_restart(limit, so_far), want, "{limit:?} {so_far}");
        }
    }

    #[test]
    fn limits_reached_before_touching_pods() {
        let cases = [
            // backoff limit, restarts, deadline, start, now → limit
            (None, 9, None, Some(0), 100, None),
            (Some(2), 2, None, None, 0, None),
            (Some(2), 3, None, None, 0, Some(Limit::Backoff)),
            (Some(2), 3, Some(10), Some(0), 100, Some(Limit::Backoff)),
            (None, 0, Some(10), Some(0), 9, None),
            (None, 0, Some(10), Some(0), 10, Some(Limit::Deadline)),
            (None, 0, Some(10), None, 100, None),
            (None, 0, Some(i64::MAX), Some(0), 100, None),
        ];
        for (backoff, restarts, deadline, start, now, want) in cases {
            assert_eq!(
                reached(backoff, restarts, deadline, start.map(t), t(now)),
                want,
                "backoff {backoff:?} restarts {restarts} deadline {deadline:?} start {start:?} now {now}"
            );
        }
    }

    #[test]
    fn the_deadline_timer_fires_at_start_plus_deadline() {
        assert_eq!(
            deadline_expiry(Some(60), Some(t(10))),
            Some(t(70).as_second())
        );
        assert_eq!(deadline_expiry(None, Some(t(10))), None);
        assert_eq!(deadline_expiry(Some(60), None), None);
        assert_eq!(deadline_expiry(Some(i64::MAX), Some(t(1))), Some(i64::MAX));
    }
}
