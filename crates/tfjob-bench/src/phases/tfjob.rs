//! Phases 3–4, tfjob-operator: throughput (M TFJobs submitted at once), single-job latency on an idle
//! control plane, and the writes of a whole lifecycle to Succeeded with the simulated kubelet.

use std::time::{Duration, Instant};

use kube::api::{Api, ListParams, PostParams};
use tfjob_core::api::TFJob;

use crate::audit::Agent;
use crate::cluster::{self, ensure_namespace};
use crate::daemons::{OperatorProcess, SimKubeletProcess};
use crate::phases::conditions::ConditionClock;
use crate::report::{Creator, Latency, Lifecycle, Timeline};
use crate::run::{Run, quantile, timeline};
use crate::workload;

/// `per-replica` or `per-job`.
#[derive(Clone, Copy, Debug)]
pub struct Mode(pub &'static str);

impl Mode {
    /// Services the operator creates per job.
    pub fn services(&self, replicas: i32) -> usize {
        if self.0 == "per-job" {
            1
        } else {
            replicas as usize
        }
    }

    pub fn start_operator(&self, run: &Run, namespace: &str) -> anyhow::Result<OperatorProcess> {
        self.start_operator_with(run, namespace, &[])
    }

    /// [`Mode::start_operator`] with extra flags after the run's own.
    pub fn start_operator_with(
        &self,
        run: &Run,
        namespace: &str,
        extra: &[String],
    ) -> anyhow::Result<OperatorProcess> {
        let mut args = vec![format!("--service-mode={}", self.0)];
        args.extend(run.sizes.operator_args.iter().cloned());
        args.extend(extra.iter().cloned());
        OperatorProcess::start(
            &run.bins.operator,
            &run.cp,
            namespace,
            &args,
            &run.logs.join(format!("operator-{namespace}.log")),
        )
    }
}

pub fn tfjobs(namespace: &str, prefix: &str, count: usize, replicas: i32) -> Vec<TFJob> {
    (0..count)
        .map(|i| workload::tfjob(namespace, &workload::name(prefix, i), i, replicas))
        .collect()
}

/// M TFJobs submitted with `concurrency` in flight; first submit → all pods created.
/// Repetition `rep`, in its own namespace.
pub async fn throughput(
    run: &mut Run,
    mode: Mode,
    rep: usize,
) -> anyhow::Result<(Creator, Timeline)> {
    let namespace = format!("bench-tf-{}-{rep}", mode.0);
    let (jobs, replicas) = (run.sizes.jobs, run.sizes.replicas);
    ensure_namespace(&run.client, &namespace).await?;
    let operator = mode.start_operator(run, &namespace)?;
    let before = cluster::apiserver_requests(&run.client).await?;
    let cpu = run.cp.cpu_meter(operator.pid());

    let api: Api<TFJob> = Api::namespaced(run.client.clone(), &namespace);
    let submit_errors = run
        .create_all(&api, tfjobs(&namespace, "tf", jobs, replicas))
        .await;
    let pods = jobs * replicas as usize;
    let children = pods + jobs * mode.services(replicas);
    let ns = namespace.clone();
    let done = run
        .wait_count(Duration::from_secs(120), children, |e| {
            e.namespace == ns
                && e.agent == Agent::Operator
                && (e.created("pods") || e.created("services"))
        })
        .await;
    let cpu_ms_per_job = cpu.per_job_ms(jobs);
    run.quiet(
        &namespace,
        Agent::Operator,
        Duration::from_secs(2),
        Duration::from_secs(30),
    )
    .await;
    let after = cluster::apiserver_requests(&run.client).await?;
    let ready_at = operator.ready_at;
    operator.stop();
    if !done {
        anyhow::bail!(
            "tfjob-operator ({}) did not create all {children} children within 120 s; see {}",
            mode.0,
            run.logs.join(format!("operator-{namespace}.log")).display()
        );
    }

    let times = run.pod_times(&namespace, Agent::Operator);
    let t0 = run
        .first_submit(&namespace, Agent::Bench)
        .unwrap_or_default();
    let end = times.last().copied().unwrap_or(t0);
    let seconds = end - t0;
    let acc = run.accounting(&namespace, Agent::Operator, ready_at);
    let creator = Creator {
        name: format!("tfjob-operator, {}", mode.0),
        jobs,
        pods: times.len(),
        seconds,
        pods_per_second: times.len() as f64 / seconds.max(1e-9),
        object_writes_per_second: run.object_writes_between(&namespace, Agent::Operator, t0, end)
            as f64
            / seconds.max(1e-9),
        writes_per_job: acc.per_job(jobs),
        object_writes_per_job: acc.object_writes as f64 / jobs as f64,
        events_per_job: acc.events as f64 / jobs as f64,
        conflicts: acc.conflicts,
        reads_after_sync: acc.reads_after,
        submit_errors,
        apiserver_requests: cluster::delta(&before, &after),
        runs: Vec::new(),
        cpu_ms_per_job,
        window_writes_per_job: run.window_writes_per_job(
            &namespace,
            &[Agent::Bench, Agent::Operator],
            (t0, end),
            jobs,
        ),
    };
    let line = Timeline {
        label: format!("tfjob-operator, {}", mode.0),
        points: timeline(t0, &times),
    };
    Ok((creator, line))
}

/// Single TFJobs one after another on an idle control plane: create → all children created.
pub async fn latency(run: &mut Run, mode: Mode) -> anyhow::Result<Latency> {
    let namespace = format!("bench-lat-{}", mode.0);
    let (count, replicas) = (run.sizes.latency_jobs, run.sizes.replicas);
    ensure_namespace(&run.client, &namespace).await?;
    let operator = mode.start_operator(run, &namespace)?;
    let api: Api<TFJob> = Api::namespaced(run.client.clone(), &namespace);
    let children = replicas as usize + mode.services(replicas);
    let mut timeouts = 0;
    let mut latencies = Vec::new();
    for (i, job) in tfjobs(&namespace, "lat", count, replicas)
        .into_iter()
        .enumerate()
    {
        let name = workload::name("lat", i);
        let prefix = format!("{name}-");
        api.create(&PostParams::default(), &job).await?;
        let ns = namespace.clone();
        let done = run
            .wait_count(Duration::from_secs(10), children, |e| {
                e.namespace == ns
                    && e.agent == Agent::Operator
                    && (e.created("pods") || e.created("services"))
                    && (e.name == name || e.name.starts_with(&prefix))
            })
            .await;
        if !done {
            timeouts += 1;
            continue;
        }
        let created = run
            .audit
            .in_namespace(&namespace)
            .find(|e| e.agent == Agent::Bench && e.created("tfjobs") && e.name == name)
            .map(|e| e.received);
        let last_child = run
            .audit
            .in_namespace(&namespace)
            .filter(|e| {
                e.agent == Agent::Operator && (e.name == name || e.name.starts_with(&prefix))
            })
            .filter(|e| e.created("pods") || e.created("services"))
            .map(|e| e.done)
            .fold(f64::MIN, f64::max);
        if let Some(created) = created {
            latencies.push((last_child - created) * 1000.0);
        }
        // Let the status write and events land: the next job starts on an idle control plane.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    operator.stop();
    latencies.sort_by(f64::total_cmp);
    Ok(Latency {
        mode: mode.0.into(),
        jobs: count,
        p50_ms: quantile(&latencies, 0.5),
        p90_ms: quantile(&latencies, 0.9),
        p99_ms: quantile(&latencies, 0.99),
        max_ms: latencies.last().copied().unwrap_or(0.0),
        timeouts,
    })
}

/// TFJobs per second arriving in the lifecycle phase.
const LIFECYCLE_RATE: f64 = 10.0;

/// K TFJobs run to Succeeded by the simulated kubelet with status batch `window`; every
/// operator write is counted, and how long conditions trail the pod changes behind them.
pub async fn lifecycle(run: &mut Run, mode: Mode, window: Duration) -> anyhow::Result<Lifecycle> {
    let window_ms = window.as_millis();
    let namespace = format!("bench-life-{}-w{window_ms}", mode.0);
    let (count, replicas) = (run.sizes.lifecycle_jobs, run.sizes.replicas);
    ensure_namespace(&run.client, &namespace).await?;
    let kubelet = SimKubeletProcess::start(
        &run.bins.sim_kubelet,
        &run.cp,
        &namespace,
        &run.logs.join(format!("sim-kubelet-{namespace}.log")),
    )?;
    let clock = ConditionClock::start(&run.client, &namespace);
    let window_flag = format!("--status-batch-window={window_ms}ms");
    let operator = mode.start_operator_with(run, &namespace, &[window_flag])?;
    let api: Api<TFJob> = Api::namespaced(run.client.clone(), &namespace);
    let started = Instant::now();
    // Arriving at a steady pace, not all at once: the phase measures the writes of whole
    // lifecycles and how long conditions trail pods, not a burst's queueing (the backlog and
    // end-to-end phases measure bursts).
    run.create_paced(
        &api,
        tfjobs(&namespace, "life", count, replicas),
        LIFECYCLE_RATE,
    )
    .await;
    let mut succeeded = 0;
    while started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let list = api.list(&ListParams::default()).await?;
        succeeded = list
            .items
            .iter()
            .filter(|j| {
                j.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Succeeded" && c.status == "True")
                })
            })
            .count();
        if succeeded == count {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    run.quiet(
        &namespace,
        Agent::Operator,
        Duration::from_secs(2),
        Duration::from_secs(20),
    )
    .await;
    let ready_at = operator.ready_at;
    operator.stop();
    kubelet.stop();
    let acc = run.accounting(&namespace, Agent::Operator, ready_at);
    let delays = clock.delays_ms();
    drop(clock);
    if succeeded < count {
        anyhow::bail!(
            "{succeeded} of {count} TFJobs succeeded within 120 s ({}); see {}",
            mode.0,
            run.logs.join(format!("operator-{namespace}.log")).display()
        );
    }
    Ok(Lifecycle {
        window_ms: window_ms as f64,
        condition_delay_p50_ms: quantile(&delays, 0.5),
        condition_delay_p99_ms: quantile(&delays, 0.99),
        conditions_timed: delays.len(),
        mode: mode.0.into(),
        jobs: count,
        succeeded,
        seconds,
        writes_per_job: acc.per_job(count),
        object_writes_per_job: acc.object_writes as f64 / count as f64,
        events_per_job: acc.events as f64 / count as f64,
        conflicts: acc.conflicts,
        reads_after_sync: acc.reads_after,
    })
}
