//! Phases 5–6, The operator's memory: idle, with N TFJobs and their children cached, and at its peak
//! during a forced re-list (kube-apiserver restarted: every watch resumes with 410 Gone). The
//! re-list ends with every job reconciled again with nothing to do: a full no-op resync.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use tfjob_operator::api::TFJob;

use super::tfjob::Mode;
use crate::cluster::ensure_namespace;
use crate::procs::{self, OperatorProcess};
use crate::prom;
use crate::report::Memory;
use crate::run::Run;
use crate::workload;

/// Not audited (see `audit::policy`).
pub const NAMESPACE: &str = "bench-mem";
const MODE: Mode = Mode("per-job");

/// Operator counters read together.
struct Counters {
    reconciles: f64,
    lists: f64,
    duration_sum: f64,
    duration_count: f64,
    pods: f64,
    services: f64,
}

fn counters(operator: &OperatorProcess) -> Counters {
    let text = operator.scrape();
    Counters {
        reconciles: prom::sum(&text, "tfjob_operator_reconcile_total"),
        lists: prom::sum_where(&text, "tfjob_operator_api_requests_total", "verb", "list"),
        duration_sum: prom::sum(&text, "tfjob_operator_reconcile_duration_seconds_sum"),
        duration_count: prom::sum(&text, "tfjob_operator_reconcile_duration_seconds_count"),
        pods: prom::sum(&text, "tfjob_operator_pods_created_total"),
        services: prom::sum(&text, "tfjob_operator_services_created_total"),
    }
}

/// Waits until the reconcile counter has not moved for `idle`.
async fn settle(operator: &OperatorProcess, idle: Duration, timeout: Duration) {
    let started = Instant::now();
    let mut last = counters(operator).reconciles;
    let mut since = Instant::now();
    while started.elapsed() < timeout {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = counters(operator).reconciles;
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= idle {
            return;
        }
    }
}

/// Samples RSS every 20 ms on a thread until stopped.
fn sample_rss(pid: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<(f64, u64)>> {
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut samples = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            if let Some((rss, _)) = procs::memory_kib(pid) {
                samples.push((started.elapsed().as_secs_f64(), rss));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        samples
    })
}

pub async fn run(run: &mut Run) -> anyhow::Result<Memory> {
    let (jobs, replicas) = (run.sizes.memory_jobs, run.sizes.replicas);
    ensure_namespace(&run.client, NAMESPACE).await?;
    let mut args = vec![format!("--service-mode={}", MODE.0)];
    args.extend(run.sizes.operator_args.iter().cloned());
    let operator = OperatorProcess::start(
        &run.bins.operator,
        &run.cp,
        NAMESPACE,
        &args,
        &run.logs.join("operator-memory.log"),
    )?;
    let pid = operator.pid();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (idle_rss_kib, _) = procs::memory_kib(pid).unwrap_or_default();

    // Fill: N TFJobs; the operator creates their pods and Services.
    let fill_started = Instant::now();
    let api: Api<TFJob> = Api::namespaced(run.client.clone(), NAMESPACE);
    let objects: Vec<TFJob> = (0..jobs)
        .map(|i| workload::tfjob(NAMESPACE, &workload::name("mem", i), i, replicas))
        .collect();
    run.create_all(&api, objects).await;
    let pods = jobs * replicas as usize;
    let services = jobs * MODE.services(replicas);
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        let c = counters(&operator);
        if c.pods as usize >= pods && c.services as usize >= services {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let fill_seconds = fill_started.elapsed().as_secs_f64();
    settle(&operator, Duration::from_secs(3), Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (steady_rss_kib, _) = procs::memory_kib(pid).unwrap_or_default();

    // Re-list: restart the apiserver after a write, so every watch's resourceVersion is older
    // than the new watch caches and resumes with 410 Gone.
    let before = counters(&operator);
    let cpu_before = procs::cpu_ns(pid);
    procs::reset_peak(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_rss(pid, stop.clone());
    let marker: Api<ConfigMap> = Api::namespaced(run.client.clone(), NAMESPACE);
    let cm: ConfigMap = serde_json::from_value(
        serde_json::json!({"metadata": {"generateName": "relist-marker-"}}),
    )?;
    marker.create(&PostParams::default(), &cm).await?;
    let relist_started = Instant::now();
    run.cp.restart_apiserver()?;
    // Re-listed once the operator has LISTed TFJobs, pods and Services again and gone quiet.
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        let c = counters(&operator);
        if c.lists - before.lists >= 3.0 && c.reconciles - before.reconciles >= jobs as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    settle(&operator, Duration::from_secs(3), Duration::from_secs(60)).await;
    let relist_seconds = relist_started.elapsed().as_secs_f64();
    let after = counters(&operator);
    let cpu_after = procs::cpu_ns(pid);
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap_or_default();
    let (after_rss, hwm) = procs::memory_kib(pid).unwrap_or_default();
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0).max(hwm);
    operator.stop();

    let reconciles = after.reconciles - before.reconciles;
    let step = (samples.len() / 300).max(1);
    Ok(Memory {
        mode: MODE.0.into(),
        jobs,
        pods,
        services,
        idle_rss_kib,
        steady_rss_kib,
        per_job_kib: (steady_rss_kib.saturating_sub(idle_rss_kib)) as f64 / jobs.max(1) as f64,
        fill_seconds,
        relist_peak_rss_kib: peak,
        relist_peak_ratio: peak as f64 / steady_rss_kib.max(1) as f64,
        after_relist_rss_kib: after_rss,
        relist_lists: after.lists - before.lists,
        relist_seconds,
        resync_reconciles: reconciles,
        resync_cpu_us_per_reconcile: (cpu_after - cpu_before) as f64 / 1000.0 / reconciles.max(1.0),
        resync_mean_reconcile_us: (after.duration_sum - before.duration_sum) * 1e6
            / (after.duration_count - before.duration_count).max(1.0),
        relist_rss: samples.into_iter().step_by(step).collect(),
    })
}
