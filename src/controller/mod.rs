//! Wiring: watches and caches, the kube-runtime `Controller`, concurrency and shutdown.
//!
//! Per watched scope (all namespaces, or each listed namespace) there is one TFJob reflector,
//! two label-filtered child watches feeding [`index::ChildIndex`], and one `Controller`. Child
//! caches must be complete before the first reconcile, or a reconcile would see "no pods" and
//! create them again; so the controller starts only once they have synced.

pub mod apply;
pub mod context;
pub mod index;
pub mod merge_patch;
pub mod reconciler;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams};
use kube::{Client, Resource, ResourceExt};
use kube_runtime::controller::{self, Controller};
use kube_runtime::events::{Recorder, Reporter};
use kube_runtime::reflector::{self, ObjectRef, Store};
use kube_runtime::{WatchStreamExt, watcher};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use self::context::Context;
use self::index::{ChildFacts, ChildIndex};
use self::reconciler::{Object, error_policy, reconcile};
use crate::api::TFJob;
use crate::api::constants::{CONTROLLER_NAME, operator_selector};
use crate::ops::{Metrics, Readiness};
use crate::reconcile::PlanConfig;
use crate::reconcile::conditions;
use crate::reconcile::observe::{PodFacts, ServiceFacts};

/// How the controller watches and reconciles.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Namespaces to watch; empty means all namespaces.
    pub namespaces: Vec<String>,
    /// Only TFJobs matching this label selector.
    pub job_selector: Option<String>,
    /// Reconciles running at the same time, per scope.
    pub concurrency: u16,
    /// Server-side `timeoutSeconds` of every watch.
    pub watch_timeout_seconds: u32,
    /// `limit` of each page of the initial list.
    pub list_page_size: u32,
    pub plan: PlanConfig,
    /// Reporter instance of events (the pod name).
    pub instance: String,
}

/// The controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(
        "the TFJob CustomResourceDefinition is not installed (tfjobs.kubeflow.org); install it with \
         `kubectl apply -f crds/kubeflow.org_tfjobs.yaml` (or `tfjob-operator crd | kubectl apply -f -`)"
    )]
    CrdMissing,
    #[error("cannot list TFJobs{scope}: {source}; check the operator's RBAC and kubeconfig")]
    Probe {
        scope: String,
        #[source]
        source: kube::Error,
    },
}

type Shutdown = Shared<BoxFuture<'static, ()>>;

/// Runs the controller until `shutdown` resolves, then lets running reconciles finish.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ControllerError> {
    let scopes: Vec<Option<String>> = if settings.namespaces.is_empty() {
        vec![None]
    } else {
        settings.namespaces.iter().cloned().map(Some).collect()
    };
    for scope in &scopes {
        check_crd(&client, scope.as_deref()).await?;
    }
    let shutdown: Shutdown = shutdown.boxed().shared();
    let mut stores = Vec::new();
    let mut controllers = Vec::new();
    for scope in scopes {
        let (store, run) = scope_controller(&client, &settings, &metrics, scope, shutdown.clone());
        stores.push(store);
        controllers.push(run);
    }
    metrics.set_job_state_source(job_states(stores.clone()));
    let all_synced = {
        let stores = stores.clone();
        async move {
            for store in &stores {
                // kube's readiness signal wakes only its most recent waiter (the controller's
                // own), so poll it rather than wait on it.
                while tokio::time::timeout(Duration::from_millis(50), store.wait_until_ready())
                    .await
                    .is_err()
                {}
            }
        }
    };
    let readiness_task = {
        let readiness = readiness.clone();
        tokio::spawn(async move {
            all_synced.await;
            readiness.set_caches_synced(true);
            info!("caches synced; reconciling");
        })
    };
    futures::future::join_all(controllers).await;
    readiness_task.abort();
    info!("controller stopped");
    Ok(())
}

/// Fails early, with the fix, when the CRD is missing or the operator may not list TFJobs.
async fn check_crd(client: &Client, namespace: Option<&str>) -> Result<(), ControllerError> {
    let api: Api<TFJob> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_not_found() => Err(ControllerError::CrdMissing),
        Err(source) => Err(ControllerError::Probe {
            scope: namespace
                .map(|ns| format!(" in namespace {ns}"))
                .unwrap_or_default(),
            source,
        }),
    }
}

/// The TFJob store and the controller future of one scope.
fn scope_controller(
    client: &Client,
    settings: &Settings,
    metrics: &Metrics,
    namespace: Option<String>,
    shutdown: Shutdown,
) -> (Store<Object>, BoxFuture<'static, ()>) {
    let api = |client: &Client| -> (Api<Object>, Api<Pod>, Api<Service>) {
        match &namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
            ),
        }
    };
    let (jobs, pods, services) = api(client);
    let base = watcher::Config::default()
        .timeout(settings.watch_timeout_seconds)
        .page_size(settings.list_page_size);
    let job_config = match &settings.job_selector {
        Some(selector) => base.clone().labels(selector),
        None => base.clone(),
    };
    let child_config = base.labels(&operator_selector());

    let pod_index = Arc::new(ChildIndex::<PodFacts>::default());
    let service_index = Arc::new(ChildIndex::<ServiceFacts>::default());
    let (trigger_tx, trigger_rx) = mpsc::unbounded_channel::<ObjectRef<Object>>();
    let pod_watch = watch_children(
        pods,
        child_config.clone(),
        pod_index.clone(),
        trigger_tx.clone(),
        metrics.clone(),
        "pods",
    );
    let service_watch = watch_children(
        services,
        child_config,
        service_index.clone(),
        trigger_tx,
        metrics.clone(),
        "services",
    );

    let (store, writer) = reflector::store::<Object>();
    let job_metrics = metrics.clone();
    let job_stream = reflector::reflector(
        writer,
        watcher(jobs, job_config)
            .default_backoff()
            .modify(trim_job)
            .inspect_err(move |error| {
                job_metrics.watch_restarted("tfjobs");
                warn!(%error, "TFJob watch failed; retrying");
            }),
    )
    .applied_objects()
    .boxed();

    let reporter = Reporter {
        controller: CONTROLLER_NAME.into(),
        instance: Some(settings.instance.clone()),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        metrics: metrics.clone(),
        pods: pod_index.clone(),
        services: service_index.clone(),
        plan_config: settings.plan.clone(),
        statuses: Default::default(),
        backoff: Default::default(),
        undecodable: Default::default(),
    });
    let concurrency = settings.concurrency;
    let reader = store.clone();
    let run = async move {
        let pod_task = tokio::spawn(pod_watch);
        let service_task = tokio::spawn(service_watch);
        // Reconciling before the child caches are complete would re-create existing pods.
        while !(pod_index.is_ready() && service_index.is_ready()) {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = shutdown.clone() => { pod_task.abort(); service_task.abort(); return; }
            }
        }
        debug!(
            pods = pod_index.len(),
            services = service_index.len(),
            "child caches synced"
        );
        Controller::for_stream(job_stream, reader)
            .reconcile_on(tokio_stream_of(trigger_rx))
            .with_config(controller::Config::default().concurrency(concurrency))
            .graceful_shutdown_on(shutdown)
            .run(reconcile, error_policy, ctx)
            .for_each(|result| async move {
                if let Err(error) = result {
                    // ObjectNotFound is expected right after deletions (kube-rs #1167).
                    debug!(%error, "reconcile stream");
                }
            })
            .await;
        pod_task.abort();
        service_task.abort();
    }
    .boxed();
    (store, run)
}

/// Feeds a child index from a label-filtered watch and triggers the owning jobs.
async fn watch_children<F: ChildFacts>(
    api: Api<F::Object>,
    config: watcher::Config,
    index: Arc<ChildIndex<F>>,
    triggers: mpsc::UnboundedSender<ObjectRef<Object>>,
    metrics: Metrics,
    resource: &'static str,
) where
    F::Object: Resource<DynamicType = ()> + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut events = watcher(api, config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => {
                for (namespace, job) in index.apply(&event) {
                    if triggers
                        .send(ObjectRef::new(&job).within(&namespace))
                        .is_err()
                    {
                        return; // the controller has stopped
                    }
                }
            }
            Err(error) => {
                metrics.watch_restarted(resource);
                warn!(%error, resource, "watch failed; retrying");
            }
        }
    }
}

fn tokio_stream_of<T: Send + 'static>(
    mut rx: mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Drops what the operator never reads before caching: managedFields and the last-applied
/// annotation often make up half of an object.
fn trim_job(object: &mut Object) {
    if let Ok(job) = &mut object.0 {
        job.metadata.managed_fields = None;
        if let Some(annotations) = job.metadata.annotations.as_mut() {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
}

/// `(namespace, state)` of every cached job for the jobs-per-state gauge.
fn job_states(stores: Vec<Store<Object>>) -> impl Fn() -> Vec<(String, String)> + Send + Sync {
    move || {
        stores
            .iter()
            .flat_map(|store| store.state())
            .map(|object| {
                let state = match &object.0 {
                    Ok(job) => job
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.last())
                        .map(|c| c.type_.clone())
                        .unwrap_or_else(|| "Pending".into()),
                    Err(_) => conditions::FAILED.into(),
                };
                (object.namespace().unwrap_or_default(), state)
            })
            .collect()
    }
}
