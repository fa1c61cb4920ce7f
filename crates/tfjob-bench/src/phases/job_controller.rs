//! Phase 2, like-for-like peer: kube-controller-manager's Job controller turning M Jobs of R
//! pods each into pods, at its default client limits (QPS 20, burst 30) and unthrottled.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::api::Api;

use crate::audit::Agent;
use crate::cluster::{self, JobController, ensure_namespace};
use crate::report::{Creator, Timeline};
use crate::run::{Run, timeline};
use crate::workload;

pub struct Limits {
    pub label: &'static str,
    pub qps: u32,
    pub burst: u32,
    pub jobs: usize,
}

/// Repetition `rep`, in its own namespace.
pub async fn run(
    run: &mut Run,
    limits: &Limits,
    rep: usize,
) -> anyhow::Result<(Creator, Timeline)> {
    let namespace = format!("bench-job-{}-{rep}", limits.label);
    let replicas = run.sizes.replicas;
    ensure_namespace(&run.client, &namespace).await?;
    let log = run.logs.join(format!("kcm-{namespace}.log"));
    let controller = JobController::start(&run.bins.kcm, &run.cp, limits.qps, limits.burst, &log)?;

    let before = cluster::apiserver_requests(&run.client).await?;
    let cpu = run.cp.cpu_meter(controller.pid());
    let jobs: Vec<Job> = (0..limits.jobs)
        .map(|i| workload::job(&namespace, &workload::name("job", i), i, replicas))
        .collect();
    let api: Api<Job> = Api::namespaced(run.client.clone(), &namespace);
    let expected = limits.jobs * replicas as usize;
    let ns = namespace.clone();
    let (submit_errors, done) = {
        let submit = run.create_all(&api, jobs);
        let submit_errors = submit.await;
        // 20 QPS needs about expected/17 s; leave room for a loaded machine.
        let timeout = Duration::from_secs(60 + expected as u64 / 5);
        let done = run
            .wait_count(timeout, expected, |e| {
                e.namespace == ns && e.agent == Agent::ControllerManager && e.created("pods")
            })
            .await;
        (submit_errors, done)
    };
    let cpu_ms_per_job = cpu.per_job_ms(limits.jobs);
    // Status updates and events trail the pods by up to the controller's 1 s batch period.
    run.quiet(
        &namespace,
        Agent::ControllerManager,
        Duration::from_secs(2),
        Duration::from_secs(20),
    )
    .await;
    controller.stop();
    let after = cluster::apiserver_requests(&run.client).await?;
    if !done {
        anyhow::bail!(
            "the Job controller ({}) did not create all {expected} pods; see {}",
            limits.label,
            log.display()
        );
    }

    let times = run.pod_times(&namespace, Agent::ControllerManager);
    let t0 = run
        .first_submit(&namespace, Agent::Bench)
        .unwrap_or_default();
    let end = times.last().copied().unwrap_or(t0);
    let seconds = end - t0;
    let acc = run.accounting(&namespace, Agent::ControllerManager, f64::MAX);
    let creator = Creator {
        name: format!(
            "Job controller, {} (QPS {}, burst {})",
            limits.label, limits.qps, limits.burst
        ),
        jobs: limits.jobs,
        pods: times.len(),
        seconds,
        pods_per_second: times.len() as f64 / seconds.max(1e-9),
        object_writes_per_second: run.object_writes_between(
            &namespace,
            Agent::ControllerManager,
            t0,
            end,
        ) as f64
            / seconds.max(1e-9),
        writes_per_job: acc.per_job(limits.jobs),
        object_writes_per_job: acc.object_writes as f64 / limits.jobs as f64,
        events_per_job: acc.events as f64 / limits.jobs as f64,
        conflicts: acc.conflicts,
        reads_after_sync: acc.reads_after,
        submit_errors,
        apiserver_requests: cluster::delta(&before, &after),
        runs: Vec::new(),
        cpu_ms_per_job,
        window_writes_per_job: run.window_writes_per_job(
            &namespace,
            &[Agent::Bench, Agent::ControllerManager],
            (t0, end),
            limits.jobs,
        ),
    };
    let line = Timeline {
        label: format!("Job controller, QPS {}", limits.qps),
        points: timeline(t0, &times),
    };
    Ok((creator, line))
}
