//! What a batch of requests costs kube-apiserver and etcd: their CPU time, read from the
//! kernel's per-thread counters before and after, less what they spend when idle, divided by
//! the requests.
//!
//! Each batch starts once both have gone quiet: measured right after the previous batch, a
//! price included the apiserver still digesting it (watch cache, etcd compaction), and the
//! same request cost 2–3× as much from one run to the next.

use std::time::{Duration, Instant};

use crate::procs;
use crate::report::RequestCost;
use crate::run::Run;

/// Runs `requests` (they resolve to their error count) and measures what they cost the
/// apiserver and etcd.
pub async fn measure(
    run: &Run,
    kind: &str,
    requests: usize,
    sent: impl Future<Output = usize>,
) -> RequestCost {
    let pids = (run.cp.pid("kube-apiserver"), run.cp.pid("etcd"));
    measure_pids(pids, kind, requests, sent).await
}

/// [`measure`] for the apiserver and etcd with these PIDs.
pub async fn measure_pids(
    (apiserver, etcd): (u32, u32),
    kind: &str,
    requests: usize,
    sent: impl Future<Output = usize>,
) -> RequestCost {
    let cpu = || (procs::cpu_ns(apiserver), procs::cpu_ns(etcd));
    let idle = quiet(&cpu).await;
    let before = cpu();
    let started = Instant::now();
    let errors = sent.await;
    let seconds = started.elapsed().as_secs_f64();
    let after = cpu();
    // CPU ms per request, less what the process spends idle over the same time.
    let per_request_ms = |a: u64, b: u64, idle_share: f64| {
        let spent = (b.saturating_sub(a)) as f64 / 1e6 - idle_share * seconds * 1e3;
        spent.max(0.0) / requests.max(1) as f64
    };
    RequestCost {
        kind: kind.into(),
        requests,
        errors,
        per_second: requests as f64 / seconds.max(1e-9),
        apiserver_cpu_ms: per_request_ms(before.0, after.0, idle.0),
        etcd_cpu_ms: per_request_ms(before.1, after.1, idle.1),
    }
}

/// How long one look at the idle CPU lasts.
const QUIET_SAMPLE: Duration = Duration::from_millis(500);

/// Below this share of a core (apiserver and etcd together) they count as quiet.
const QUIET_SHARE: f64 = 0.10;

/// How long to wait for quiet at most (a busy machine still gets a figure, noted as the idle
/// share it ended with).
const QUIET_WAIT: Duration = Duration::from_secs(10);

/// Waits until the apiserver and etcd are quiet; returns the share of a core each used in the
/// last look (what they spend anyway, subtracted from a batch's cost).
async fn quiet(cpu: &impl Fn() -> (u64, u64)) -> (f64, f64) {
    let deadline = Instant::now() + QUIET_WAIT;
    loop {
        let before = cpu();
        tokio::time::sleep(QUIET_SAMPLE).await;
        let after = cpu();
        let share = |a: u64, b: u64| b.saturating_sub(a) as f64 / QUIET_SAMPLE.as_nanos() as f64;
        let idle = (share(before.0, after.0), share(before.1, after.1));
        if idle.0 + idle.1 < QUIET_SHARE || Instant::now() >= deadline {
            return idle;
        }
    }
}
