//! The faults that take minutes of waiting run side by side: a black hole held for 2 minutes,
//! the apiserver down for 60 s when an operator starts, and a one-minute quota storm. Each has
//! its own namespace, fault proxy and operator, and little traffic, so they do not disturb
//! each other's figures; together they take the time of the longest.
//!
//! `TFJOB_QUOTA_STORM_MINUTES=10` runs the same test with the storm's long version (ten
//! minutes, for the figures in docs/reliability.md); CI runs the one-minute storm.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_faults_side_by_side() {
    let _serial = SERIAL.lock().await;
    tokio::join!(
        black_hole::a_black_holed_job_holds_up_nothing_else_and_recovers(),
        startup::an_apiserver_down_at_start_is_waited_for_not_exited_on(),
        persistent::quota_storm(quota_storm_minutes()),
    );
}

/// How long the quota storm lasts: `TFJOB_QUOTA_STORM_MINUTES`, else one minute.
fn quota_storm_minutes() -> u64 {
    std::env::var("TFJOB_QUOTA_STORM_MINUTES")
        .ok()
        .and_then(|m| m.trim().parse().ok())
        .filter(|m| *m >= 1)
        .unwrap_or(1)
}
