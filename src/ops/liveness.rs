//! The liveness probe: `/healthz` fails when the controller is stuck, not only when the
//! process is gone. Stuck means jobs are waiting or reconciles running, and none finished for
//! `--stall-timeout` (a reconcile hung on something no timeout covers, a deadlock): the
//! kubelet then restarts the container, and the new process plans again from the cluster.

use std::time::{Duration, Instant};

use super::Metrics;
use super::metrics::Progress;

/// The liveness check, cheap to clone.
#[derive(Clone)]
pub struct Liveness {
    metrics: Metrics,
    /// `None`: only the process being up counts.
    stall_after: Option<Duration>,
}

impl Liveness {
    pub fn new(metrics: Metrics, stall_after: Option<Duration>) -> Self {
        Liveness {
            metrics,
            stall_after,
        }
    }

    /// `Ok(())` when alive, else what `/healthz` reports.
    pub fn check(&self) -> Result<(), String> {
        match self.stall_after {
            None => Ok(()),
            Some(limit) => stalled(self.metrics.progress(), Instant::now(), limit),
        }
    }
}

/// Whether work waits or runs and nothing finished for longer than `limit`.
fn stalled(progress: Progress, now: Instant, limit: Duration) -> Result<(), String> {
    let quiet = now.saturating_duration_since(progress.last_progress);
    let working = progress.pending > 0 || progress.active > 0;
    if working && quiet > limit {
        Err(format!(
            "stalled: {} jobs waiting and {} reconciles running, none finished for {}s \
             (--stall-timeout={}s)",
            progress.pending,
            progress.active,
            quiet.as_secs(),
            limit.as_secs()
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_work_without_progress_past_the_limit_is_a_stall() {
        let now = Instant::now();
        let limit = Duration::from_secs(300);
        let ago = |s: u64| now - Duration::from_secs(s);
        let cases = [
            // (pending, active, last progress seconds ago, stalled)
            (0, 0, 10_000, false), // idle for hours: nothing to do is not a stall
            (3, 0, 10, false),
            (3, 0, 301, true),
            (0, 2, 301, true),
            (0, 2, 299, false),
            (5, 4, 300, false), // at the limit, not over it
        ];
        for (pending, active, seconds, expected) in cases {
            let progress = Progress {
                pending,
                active,
                last_progress: ago(seconds),
            };
            let result = stalled(progress, now, limit);
            assert_eq!(result.is_err(), expected, "{progress:?}: {result:?}");
        }
        let message = stalled(
            Progress {
                pending: 3,
                active: 1,
                last_progress: ago(400),
            },
            now,
            limit,
        )
        .unwrap_err();
        assert_eq!(
            message,
            "stalled: 3 jobs waiting and 1 reconciles running, none finished for 400s \
             (--stall-timeout=300s)"
        );
    }
}
