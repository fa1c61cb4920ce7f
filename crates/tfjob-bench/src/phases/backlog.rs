//! Phase *backlog*, like for like: M parents are stored while their controller is stopped
//! (no kube-controller-manager Job controller, no operator), then the controller starts and
//! turns the backlog into pods. Timed from its first child to its last pod, from the audit
//! log; both controllers face the same apiserver in the same run.

use std::time::Duration;

use kube::api::Api;

use crate::audit::Agent;
use crate::cluster::{JobController, ensure_namespace};
use crate::phases::tfjob::{Mode, tfjobs};
use crate::report::{Backlog, Timeline};
use crate::run::{Run, median_run, timeline};
use crate::workload;

/// Who works the backlog.
#[derive(Clone, Copy, Debug)]
pub enum Controller {
    /// kube-controller-manager's Job controller, unthrottled (QPS 5000, burst 10000).
    Jobs,
    Operator(Mode),
}

impl Controller {
    pub fn label(&self) -> String {
        match self {
            Controller::Jobs => "Job controller".into(),
            Controller::Operator(mode) => format!("tfjob-operator, {}", mode.0),
        }
    }

    pub fn slug(&self) -> &'static str {
        match self {
            Controller::Jobs => "job",
            Controller::Operator(mode) => mode.0,
        }
    }

    pub fn agent(&self) -> Agent {
        match self {
            Controller::Jobs => Agent::ControllerManager,
            Controller::Operator(_) => Agent::Operator,
        }
    }

    /// Stores `count` of this controller's parents (Jobs or TFJobs) named `{prefix}-…` in
    /// `namespace`: all at once (`rate` `None`, the run's concurrency in flight) or `rate` per
    /// second. Returns how many could not be created.
    pub async fn submit(
        &self,
        run: &Run,
        namespace: &str,
        prefix: &str,
        count: usize,
        rate: Option<f64>,
    ) -> usize {
        let replicas = run.sizes.replicas;
        match self {
            Controller::Jobs => {
                let parents = (0..count)
                    .map(|i| workload::job(namespace, &workload::name(prefix, i), i, replicas))
                    .collect();
                send(run, namespace, parents, rate).await
            }
            Controller::Operator(_) => {
                send(
                    run,
                    namespace,
                    tfjobs(namespace, prefix, count, replicas),
                    rate,
                )
                .await
            }
        }
    }

    /// Starts the controller for `namespace` (its log at `log`); the result stops it.
    pub fn start(
        &self,
        run: &Run,
        namespace: &str,
        log: &std::path::Path,
    ) -> anyhow::Result<Box<dyn FnOnce()>> {
        Ok(match self {
            Controller::Jobs => {
                let kcm = JobController::start(&run.bins.kcm, &run.cp, 5000, 10000, log)?;
                Box::new(move || kcm.stop())
            }
            Controller::Operator(mode) => {
                let operator = mode.start_operator(run, namespace)?;
                Box::new(move || operator.stop())
            }
        })
    }
}

/// Creates `parents` in `namespace`, all at once or at `rate` per second; the errors.
async fn send<K>(run: &Run, namespace: &str, parents: Vec<K>, rate: Option<f64>) -> usize
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(run.client.clone(), namespace);
    match rate {
        Some(rate) => run.create_paced(&api, parents, rate).await,
        None => run.create_all(&api, parents).await,
    }
}

/// `reps` repetitions for each of `controllers`, taken in turns (A, B, C, A, B, C, …) so that
/// a machine that gets busier or quieter during the phase weighs on every controller alike;
/// for each controller, the figures of its median repetition.
pub async fn run(
    run: &mut Run,
    controllers: &[Controller],
    reps: usize,
) -> anyhow::Result<Vec<Backlog>> {
    let mut runs: Vec<Vec<Backlog>> = controllers.iter().map(|_| Vec::new()).collect();
    for rep in 0..reps {
        for (controller, runs) in controllers.iter().zip(&mut runs) {
            let one = once(run, *controller, rep).await?;
            eprintln!(
                "   repetition {}/{reps}, {}: {:.0} pods/s",
                rep + 1,
                controller.label(),
                one.pods_per_second
            );
            runs.push(one);
        }
    }
    runs.into_iter()
        .map(|runs| {
            let (mut median, all) = median_run(runs, |b| b.pods_per_second)
                .ok_or_else(|| anyhow::anyhow!("no backlog repetition ran"))?;
            median.runs = all;
            Ok(median)
        })
        .collect()
}

async fn once(run: &mut Run, controller: Controller, rep: usize) -> anyhow::Result<Backlog> {
    let namespace = format!("bench-backlog-{}-{rep}", controller.slug());
    let (jobs, replicas) = (run.sizes.backlog_jobs, run.sizes.replicas);
    ensure_namespace(&run.client, &namespace).await?;
    // The backlog, stored while nothing works it.
    let submit_errors = controller.submit(run, &namespace, "bl", jobs, None).await;
    if submit_errors > 0 {
        anyhow::bail!("{submit_errors} of {jobs} backlog parents could not be created");
    }
    let log = run.logs.join(format!("backlog-{namespace}.log"));
    let stop = controller.start(run, &namespace, &log)?;
    let pods = jobs * replicas as usize;
    let agent = controller.agent();
    let ns = namespace.clone();
    let done = run
        .wait_count(Duration::from_secs(180), pods, |e| {
            e.namespace == ns && e.agent == agent && e.created("pods")
        })
        .await;
    // Status writes and events trail the pods (the Job controller batches for 1 s).
    run.quiet(
        &namespace,
        agent,
        Duration::from_secs(2),
        Duration::from_secs(30),
    )
    .await;
    stop();
    if !done {
        anyhow::bail!(
            "{} created fewer than {pods} pods for its backlog; see {}",
            controller.label(),
            log.display()
        );
    }
    let times = run.pod_times(&namespace, agent);
    let first_child = run
        .audit
        .in_namespace(&namespace)
        .filter(|e| e.agent == agent && (e.created("pods") || e.created("services")))
        .map(|e| e.done)
        .fold(f64::MAX, f64::min);
    let last = times.last().copied().unwrap_or(first_child);
    let acc = run.accounting(&namespace, agent, f64::MAX);
    Ok(Backlog {
        creator: controller.label(),
        jobs,
        pods: times.len(),
        pods_per_second: times.len() as f64 / (last - first_child).max(1e-9),
        runs: Vec::new(),
        writes_per_job: acc.per_job(jobs),
        timeline: Timeline {
            label: controller.label(),
            points: timeline(first_child, &times),
        },
    })
}
