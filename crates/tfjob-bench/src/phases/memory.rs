//! Phases 5–6, The operator's memory: idle, with N TFJobs and their children cached, and at its peak
//! during a forced re-list (kube-apiserver restarted: every watch resumes with 410 Gone). The
//! re-list ends with every job reconciled again with nothing to do: a full no-op resync.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::{Api, PostParams};
use tfjob_core::api::ServiceMode;
use tfjob_core::api::TFJob;
use tfjob_core::plan::{Observed, PlanConfig, plan};

use super::tfjob::Mode;
use crate::cluster::ensure_namespace;
use crate::daemons::OperatorProcess;
use crate::procs;
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
    // The cached jobs' pods stay Pending (no kubelet): past --pending-threshold (5m) every
    // job's condition would get its "cannot start" note, and the re-list, minutes after the
    // fill, would measure 10,000 status writes instead of the no-op resync it is about.
    let mut args = vec![
        format!("--service-mode={}", MODE.0),
        "--pending-threshold=24h".to_string(),
    ];
    args.extend(run.sizes.operator_args.iter().cloned());
    let start_operator = |log: &str| {
        OperatorProcess::start(
            &run.bins.operator,
            &run.cp,
            NAMESPACE,
            &args,
            &run.logs.join(log),
        )
    };

    // Idle: watches established on the empty namespace.
    let idle = start_operator("operator-memory-idle.log")?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (idle_rss_kib, _) = procs::memory_kib(idle.pid()).unwrap_or_default();
    idle.stop();

    // Fill: N TFJobs and the children the operator would create for them, written by the
    // benchmark at the bare client's pace (about twice the operator's, which shares the
    // apiserver with the benchmark's own submissions); the operator then starts on a cluster
    // that holds them all, as after an upgrade or a failover.
    let fill_started = Instant::now();
    let created = fill(run, jobs, replicas).await?;
    let operator = start_operator("operator-memory.log")?;
    let pid = operator.pid();
    let pods = jobs * replicas as usize;
    let services = jobs * MODE.services(replicas);
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut said = Instant::now();
    while Instant::now() < deadline && counters(&operator).reconciles < jobs as f64 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if said.elapsed() >= PROGRESS_EVERY {
            said = Instant::now();
            progress("caching", &operator, jobs);
        }
    }
    let fill_seconds = fill_started.elapsed().as_secs_f64();
    // The first statuses (Created) follow the children within the status batch window, and
    // 10,000 of them take the apiserver a minute or more: steady means they are all written.
    eprintln!("   all jobs reconciled; waiting for their first status writes to finish");
    settle(&operator, Duration::from_secs(3), Duration::from_secs(300)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (steady_rss_kib, _) = procs::memory_kib(pid).unwrap_or_default();
    let recreated = counters(&operator);
    if created < pods + services || recreated.pods + recreated.services > 0.0 {
        anyhow::bail!(
            "the memory fill is incomplete: {created} of {} children written by the benchmark, \
             {} re-created by the operator",
            pods + services,
            recreated.pods + recreated.services
        );
    }

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
    let mut said = Instant::now();
    while Instant::now() < deadline {
        let c = counters(&operator);
        if c.lists - before.lists >= 3.0 && c.reconciles - before.reconciles >= jobs as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        if said.elapsed() >= PROGRESS_EVERY {
            said = Instant::now();
            progress("re-listing", &operator, jobs);
        }
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

/// How often a long step of this phase says how far it got.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// One progress line: the operator's reconciles so far and its RSS.
fn progress(step: &str, operator: &OperatorProcess, jobs: usize) {
    let (rss, _) = procs::memory_kib(operator.pid()).unwrap_or_default();
    eprintln!(
        "   {step}: {:.0} reconciles for {jobs} jobs so far, operator RSS {:.1} MiB",
        counters(operator).reconciles,
        rss as f64 / 1024.0
    );
}

/// Creates `jobs` TFJobs and, once each exists, its pods and Service as the operator would
/// (`plan` builds them, owned by the job); returns the children created.
async fn fill(run: &Run, jobs: usize, replicas: i32) -> anyhow::Result<usize> {
    let written = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    let tenth = (jobs / 10).max(1);
    let tfjobs: Api<TFJob> = Api::namespaced(run.client.clone(), NAMESPACE);
    let pods: Api<Pod> = Api::namespaced(run.client.clone(), NAMESPACE);
    let services: Api<Service> = Api::namespaced(run.client.clone(), NAMESPACE);
    let config = PlanConfig {
        service_mode: ServiceMode::PerJob,
        ..Default::default()
    };
    let params = PostParams::default();
    let children = futures::stream::iter(0..jobs)
        .map(|i| {
            let (tfjobs, pods, services, config, params, written) =
                (&tfjobs, &pods, &services, &config, &params, &written);
            async move {
                let job = workload::tfjob(NAMESPACE, &workload::name("mem", i), i, replicas);
                let Ok(job) = tfjobs.create(params, &job).await else {
                    return 0;
                };
                let planned = plan(&job, &Observed::default(), Timestamp::now(), config);
                let pod_creates = planned
                    .create_pods
                    .iter()
                    .map(|pod| async move { pods.create(params, pod).await.is_ok() });
                let service_creates = planned
                    .create_services
                    .iter()
                    .map(|service| async move { services.create(params, service).await.is_ok() });
                let (a, b) = futures::future::join(
                    futures::future::join_all(pod_creates),
                    futures::future::join_all(service_creates),
                )
                .await;
                let done = written.fetch_add(1, Ordering::Relaxed) + 1;
                if done % tenth == 0 {
                    eprintln!(
                        "   written {done} of {jobs} TFJobs with their children ({:.0} s)",
                        started.elapsed().as_secs_f64()
                    );
                }
                a.into_iter().chain(b).filter(|ok| *ok).count()
            }
        })
        .buffer_unordered((run.sizes.concurrency / 4).max(1))
        .collect::<Vec<usize>>()
        .await;
    Ok(children.into_iter().sum())
}
