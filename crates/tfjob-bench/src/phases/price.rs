//! What a batch of requests costs kube-apiserver and etcd: their CPU time, read from the
//! kernel's per-thread counters before and after, divided by the requests.

use std::time::Instant;

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
    let before = cpu();
    let started = Instant::now();
    let errors = sent.await;
    let seconds = started.elapsed().as_secs_f64();
    let after = cpu();
    let per_request_ms = |a: u64, b: u64| (b - a) as f64 / 1e6 / requests.max(1) as f64;
    RequestCost {
        kind: kind.into(),
        requests,
        errors,
        per_second: requests as f64 / seconds.max(1e-9),
        apiserver_cpu_ms: per_request_ms(before.0, after.0),
        etcd_cpu_ms: per_request_ms(before.1, after.1),
    }
}
