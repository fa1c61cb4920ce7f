//! Phase 6, CPU of a no-op reconcile, in-process: the operator's own `reconcile` function over
//! caches holding N steady-state jobs (each with its pods and Services), on one thread, timed
//! with the thread's CPU clock. The client behind it answers nothing and counts requests: a
//! no-op must not make any.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::bail;
use jiff::Timestamp;
use kube::core::DeserializeGuard;
use kube_runtime::watcher;
use tfjob_core::api::ServiceMode;
use tfjob_core::api::TFJob;
use tfjob_core::plan::{Observed, PlanConfig, plan};
use tfjob_operator::controller::cache::CachedJob;
use tfjob_operator::controller::context::Context;
use tfjob_operator::controller::reconciler::reconcile;
use tfjob_operator::ops::Metrics;

use crate::procs::thread_cpu_ns;
use crate::report::Noop;
use crate::run::quantile;
use crate::workload;

const NAMESPACE: &str = "micro";

/// A client whose every request fails, counted.
fn counting_client(requests: Arc<AtomicUsize>) -> kube::Client {
    let service = tower::service_fn(move |_request: http::Request<kube::client::Body>| {
        requests.fetch_add(1, Ordering::Relaxed);
        async {
            Ok::<_, Infallible>(
                http::Response::builder()
                    .status(503)
                    .body(String::new())
                    .expect("static response"),
            )
        }
    });
    kube::Client::new(service, NAMESPACE)
}

/// Job `index` in steady state: its children exist in the caches and its status is what the
/// planner would write, so planning it again changes nothing.
fn steady_job(ctx: &Context, index: usize, replicas: i32) -> anyhow::Result<TFJob> {
    let name = workload::name("micro", index);
    let mut job = workload::tfjob(NAMESPACE, &name, index, replicas);
    job.metadata.uid = Some(format!("00000000-0000-0000-0001-{index:012}"));
    job.metadata.resource_version = Some("1000000".into());
    job.metadata.generation = Some(1);
    let key = (NAMESPACE.to_string(), name);
    for round in 0..5 {
        let pods = ctx.pods.children(&key, job.metadata.uid.as_deref());
        let services = ctx.services.children(&key, job.metadata.uid.as_deref());
        let observed = Observed {
            pods: &pods,
            services: &services,
            ..Default::default()
        };
        let planned = plan(&job, &observed, Timestamp::now(), &ctx.plan_config);
        if planned.is_noop() {
            return Ok(job);
        }
        for (i, mut pod) in planned.create_pods.into_iter().enumerate() {
            pod.metadata.uid = Some(format!("pod-{index}-{round}-{i}"));
            pod.metadata.resource_version = Some("10".into());
            ctx.pods.apply(&watcher::Event::Apply(pod));
        }
        for (i, mut service) in planned.create_services.into_iter().enumerate() {
            service.metadata.uid = Some(format!("svc-{index}-{round}-{i}"));
            service.metadata.resource_version = Some("10".into());
            ctx.services.apply(&watcher::Event::Apply(service));
        }
        if let Some(status) = planned.status {
            job.status = Some(status);
        }
    }
    bail!("job {index} does not reach a steady state")
}

/// Runs `rounds` passes of the no-op reconcile over `jobs` steady jobs.
pub fn run(jobs: usize, replicas: i32, mode: ServiceMode, rounds: usize) -> anyhow::Result<Noop> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let requests = Arc::new(AtomicUsize::new(0));
    let client = runtime.block_on(async { counting_client(requests.clone()) });
    let config = PlanConfig {
        service_mode: mode,
        ..Default::default()
    };
    let ctx = Arc::new(Context::new(
        client,
        Metrics::new()?,
        config,
        "tfjob-bench-micro".into(),
    ));
    let objects: Vec<Arc<DeserializeGuard<CachedJob>>> = (0..jobs)
        .map(|i| {
            let job = steady_job(&ctx, i, replicas)?;
            Ok(Arc::new(DeserializeGuard(Ok(CachedJob::from(job)))))
        })
        .collect::<anyhow::Result<_>>()?;

    let mut walls = Vec::with_capacity(jobs * rounds);
    let cpu_start = thread_cpu_ns();
    runtime.block_on(async {
        for _ in 0..rounds {
            for object in &objects {
                let started = Instant::now();
                let _ = reconcile(object.clone(), ctx.clone()).await;
                walls.push(started.elapsed().as_secs_f64() * 1e6);
            }
        }
    });
    let cpu = thread_cpu_ns() - cpu_start;
    if requests.load(Ordering::Relaxed) > 0 {
        bail!(
            "a no-op reconcile made {} API requests",
            requests.load(Ordering::Relaxed)
        );
    }
    walls.sort_by(f64::total_cmp);
    let calls = walls.len();
    Ok(Noop {
        jobs,
        reconciles: calls,
        cpu_us_per_reconcile: cpu as f64 / 1000.0 / calls.max(1) as f64,
        p50_us: quantile(&walls, 0.5),
        p99_us: quantile(&walls, 0.99),
    })
}
