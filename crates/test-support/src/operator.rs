//! The operator and the simulated kubelet, running in-process for a test's namespace, plus
//! helpers to submit TFJobs and read their conditions and events.

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use sim_kubelet::{SimKubelet, SimKubeletConfig};
use tfjob_core::api::TFJob;
use tfjob_core::plan::PlanConfig;
use tfjob_operator::controller::{self, Settings};
use tfjob_operator::ops::{Metrics, Readiness};

use super::TestContext;
use super::wait::{secs, wait_for};

/// The controller of one test namespace, running as a task of the test's runtime.
pub struct Operator {
    pub metrics: Metrics,
    pub readiness: Readiness,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Operator {
    /// Starts the operator scoped to the test's namespace and waits until its caches synced.
    pub async fn start(ctx: &TestContext) -> Operator {
        Operator::start_with(ctx, |_| {}).await
    }

    /// Like [`Operator::start`], with settings adjusted by `adjust`.
    pub async fn start_with(ctx: &TestContext, adjust: impl FnOnce(&mut Settings)) -> Operator {
        super::init_test_logging();
        let mut settings = Settings {
            namespaces: vec![ctx.namespace.clone()],
            job_selector: None,
            concurrency: 8,
            watch_timeout_seconds: 60,
            list_page_size: 100,
            plan: PlanConfig::default(),
            instance: format!("test-{}", ctx.namespace),
            allow_upstream_crd: false,
        };
        adjust(&mut settings);
        let metrics = Metrics::new().expect("metrics register");
        let readiness = Readiness::new();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn({
            let (client, metrics, readiness) =
                (ctx.client.clone(), metrics.clone(), readiness.clone());
            async move {
                let shutdown = async move {
                    let _ = stopped.await;
                };
                if let Err(error) =
                    controller::run(client, settings, metrics, readiness, shutdown).await
                {
                    panic!("the operator stopped: {error}");
                }
            }
        });
        let operator = Operator {
            metrics,
            readiness,
            stop: Some(stop),
            task: Some(task),
        };
        wait_for(secs(30), "the operator's caches to sync", || async {
            if operator.task.as_ref().is_some_and(|t| t.is_finished()) {
                return Ok(Err(
                    "the operator task ended; see its panic above".to_string()
                ));
            }
            operator
                .readiness
                .check()
                .map(Ok)
                .map_err(|reason| reason.to_string())
        })
        .await
        .expect("the operator starts");
        operator
    }

    /// Stops taking work and waits for running reconciles to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(secs(30), task).await;
        }
    }

    /// Prometheus text of the operator's metrics.
    pub fn scrape(&self) -> String {
        self.metrics.encode().expect("metrics encode")
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A simulated kubelet for the test's namespace.
pub fn sim_kubelet(ctx: &TestContext) -> SimKubelet {
    SimKubelet::spawn(
        ctx.client.clone(),
        SimKubeletConfig {
            namespace: Some(ctx.namespace.clone()),
            ..Default::default()
        },
    )
}

/// A TFJob named `name` with `workers` Workers (`restartPolicy: Never`), whose pods carry
/// `annotations` (the simulated kubelet's `sim.tfjob-operator.dev/*` keys, without the prefix).
pub fn workers_job(name: &str, workers: u32, annotations: &[(&str, &str)]) -> String {
    let annotations: Vec<String> = annotations
        .iter()
        .map(|(k, v)| format!("sim.tfjob-operator.dev/{k}: '{v}'"))
        .collect();
    format!(
        "apiVersion: kubeflow.org/v1
kind: TFJob
metadata: {{name: {name}}}
spec:
  tfReplicaSpecs:
    Worker:
      replicas: {workers}
      restartPolicy: Never
      template:
        metadata: {{annotations: {{{}}}}}
        spec: {{containers: [{{name: tensorflow, image: tf}}]}}
",
        annotations.join(", ")
    )
}

/// Creates a TFJob from YAML in the test's namespace.
pub async fn submit(ctx: &TestContext, yaml: &str) -> TFJob {
    let job: TFJob =
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("bad TFJob YAML: {e}\n{yaml}"));
    ctx.apply(&job).await
}

/// `Type=Status/Reason` of each condition, in order.
pub fn conditions(job: &TFJob) -> Vec<String> {
    job.status
        .iter()
        .flat_map(|s| s.conditions.iter())
        .map(|c| {
            format!(
                "{}={}/{}",
                c.type_,
                c.status,
                c.reason.as_deref().unwrap_or("")
            )
        })
        .collect()
}

/// Whether the job has `type_=True`.
pub fn has(job: &TFJob, type_: &str) -> bool {
    job.status
        .iter()
        .flat_map(|s| s.conditions.iter())
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// Waits until the TFJob has condition `type_=True`; returns it.
pub async fn await_condition(
    ctx: &TestContext,
    name: &str,
    type_: &str,
    timeout: Duration,
) -> TFJob {
    let jobs: Api<TFJob> = ctx.api();
    wait_for(timeout, &format!("TFJob {name} to be {type_}"), || async {
        match jobs.get(name).await {
            Ok(job) if has(&job, type_) => Ok(job),
            Ok(job) => Err(format!("conditions {:?}", conditions(&job))),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
}

/// Waits until the TFJob's events (as [`job_events`] lists them) satisfy `done`; returns them.
/// The operator publishes events after it stores the status, so a condition seen on the job
/// does not mean its event is there yet.
pub async fn await_events(
    ctx: &TestContext,
    name: &str,
    what: &str,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    wait_for(secs(10), what, || async {
        let events = job_events(ctx, name).await;
        if done(&events) {
            Ok(events)
        } else {
            Err(format!("{events:#?}"))
        }
    })
    .await
}

/// `Type Reason: note` of the events recorded on the TFJob, oldest first.
pub async fn job_events(ctx: &TestContext, name: &str) -> Vec<String> {
    let events: Api<Event> = ctx.api();
    let mut list: Vec<Event> = events
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect();
    list.sort_by_key(|e| {
        e.event_time
            .clone()
            .map(|t| t.0)
            .or(e.metadata.creation_timestamp.clone().map(|t| t.0))
    });
    list.iter()
        .map(|e| {
            format!(
                "{} {}: {}",
                e.type_.as_deref().unwrap_or(""),
                e.reason.as_deref().unwrap_or(""),
                e.note.as_deref().unwrap_or("")
            )
        })
        .collect()
}
