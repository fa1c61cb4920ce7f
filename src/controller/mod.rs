//! Wiring: watches and caches, the kube-runtime `Controller`, concurrency and shutdown.
//!
//! Per watched scope (all namespaces, or each listed namespace) there is one TFJob reflector,
//! two label-filtered child watches feeding [`index::ChildIndex`], and one `Controller`. Child
//! caches must be complete before the first reconcile, or a reconcile would see "no pods" and
//! create them again; so the controller starts only once they have synced.

pub mod adoption;
pub mod apply;
pub mod backoff_gate;
pub mod cache;
pub mod child_writes;
pub mod context;
pub mod degraded;
pub mod error;
pub mod events;
pub mod index;
pub mod job_store;
pub mod long_waits;
pub mod memory;
pub mod merge_patch;
pub mod nodes;
pub mod reconciler;
pub mod startup;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, DynamicObject};
use kube::{Client, ResourceExt};
use kube_runtime::controller::{self, Controller};
use kube_runtime::reflector::{self, ObjectRef, Store};
use kube_runtime::{WatchStreamExt, watcher};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

pub use self::startup::ControllerError;

use self::backoff_gate::BackoffGate;
use self::context::{Context, PriorityClasses};
use self::index::{ChildFacts, ChildIndex};
use self::reconciler::{Object, error_policy, reconcile};
use crate::ops::{JobSample, Metrics, Readiness};
use tfjob_core::api::naming::operator_selector;
use tfjob_core::plan::PlanConfig;
use tfjob_core::plan::conditions;
use tfjob_core::plan::observe::{PodFacts, PodGroupFacts, ServiceFacts};

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
    /// Run even when the installed CRD drops fields the operator stores (degraded).
    pub allow_upstream_crd: bool,
}

type Shutdown = Shared<BoxFuture<'static, ()>>;

/// First and longest wait between start-up attempts while the apiserver cannot be reached.
const START_RETRY_MIN: Duration = Duration::from_millis(500);
const START_RETRY_MAX: Duration = Duration::from_secs(5);

/// The start-up checks (see [`startup`]); the CRD fix when running degraded.
async fn start_checks(
    client: &Client,
    settings: &Settings,
    scopes: &[Option<String>],
) -> Result<Option<String>, ControllerError> {
    for scope in scopes {
        startup::check_crd(client, scope.as_deref()).await?;
        if let Some(gang) = &settings.plan.gang {
            startup::check_pod_group_crd(client, gang, scope.as_deref()).await?;
        }
    }
    startup::check_crd_schema(client, settings.allow_upstream_crd).await
}

/// Runs the controller until `shutdown` resolves, then lets running reconciles finish.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ControllerError> {
    metrics.declare_reconcile_errors(error::kinds());
    metrics.set_max_concurrent_reconciles(settings.concurrency);
    let scopes: Vec<Option<String>> = if settings.namespaces.is_empty() {
        vec![None]
    } else {
        settings.namespaces.iter().cloned().map(Some).collect()
    };
    let shutdown: Shutdown = shutdown.boxed().shared();
    // An apiserver that cannot be reached yet (a cluster starting, a control-plane upgrade) is
    // waited for here, with /readyz saying so, rather than by exiting into CrashLoopBackOff's
    // growing delays.
    let mut wait = START_RETRY_MIN;
    let degraded_fix = loop {
        match start_checks(&client, &settings, &scopes).await {
            Ok(fix) => break fix,
            Err(error) if error.is_transient() => {
                readiness.set_apiserver_unreachable(true);
                warn!(%error, retry_in = ?wait, "cannot reach the apiserver; retrying");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shutdown.clone() => return Ok(()),
                }
                wait = (wait * 2).min(START_RETRY_MAX);
            }
            Err(error) => return Err(error),
        }
    };
    readiness.set_apiserver_unreachable(false);
    metrics.set_crd_compatible(degraded_fix.is_none());
    let mut stores = Vec::new();
    let mut controllers = Vec::new();
    for scope in scopes {
        let (store, run) = scope_controller(
            &client,
            &settings,
            &metrics,
            scope,
            degraded_fix.clone(),
            shutdown.clone(),
        );
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

/// Keeps the PriorityClass values for PodGroups' default `minResources`.
async fn watch_priority_classes(client: Client, classes: Arc<PriorityClasses>, metrics: Metrics) {
    let api: Api<PriorityClass> = Api::all(client);
    metrics.watching("priorityclasses");
    let mut listing: Option<std::collections::BTreeMap<String, i32>> = None;
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => listing = Some(Default::default()),
            Ok(watcher::Event::InitApply(pc)) => {
                listing
                    .get_or_insert_with(Default::default)
                    .insert(pc.name_any(), pc.value);
            }
            Ok(watcher::Event::InitDone) => classes.replace(listing.take().unwrap_or_default()),
            Ok(watcher::Event::Apply(pc)) => classes.set(pc.name_any(), Some(pc.value)),
            Ok(watcher::Event::Delete(pc)) => classes.set(pc.name_any(), None),
            Err(error) => {
                metrics.watch_restarted("priorityclasses");
                warn!(%error, "PriorityClass watch failed; retrying");
            }
        }
    }
}

/// The TFJob store and the controller future of one scope.
fn scope_controller(
    client: &Client,
    settings: &Settings,
    metrics: &Metrics,
    namespace: Option<String>,
    degraded_fix: Option<String>,
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
    let resend = trigger_tx.clone();
    let wake = trigger_tx.clone();
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
        trigger_tx.clone(),
        metrics.clone(),
        "services",
    );

    // Gang scheduling: the jobs' PodGroups (unlabelled, so every PodGroup in scope; they are
    // few) and the PriorityClasses.
    let gang = settings.plan.gang.as_ref().map(|gang| {
        let resource = startup::pod_group_resource(gang);
        let api: Api<DynamicObject> = match &namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let index = Arc::new(ChildIndex::<PodGroupFacts>::default());
        let config = watcher::Config::default()
            .timeout(settings.watch_timeout_seconds)
            .page_size(settings.list_page_size);
        let watch = watch_children(
            api,
            config,
            index.clone(),
            trigger_tx.clone(),
            metrics.clone(),
            "podgroups",
        );
        (index, resource, watch)
    });
    let priority_classes = Arc::new(PriorityClasses::default());
    let priority_watch = gang
        .as_ref()
        .map(|_| watch_priority_classes(client.clone(), priority_classes.clone(), metrics.clone()));
    let (pod_groups, pod_group_watch) = match gang {
        Some((index, resource, watch)) => (Some((index, resource)), Some(watch)),
        None => (None, None),
    };
    let pod_group_index = pod_groups.as_ref().map(|(index, _)| index.clone());

    let (store, writer) = reflector::store::<Object>();
    let mut writer = job_store::InPlaceWriter::new(writer);
    let job_metrics = metrics.clone();
    job_metrics.watching("tfjobs");
    let listed = store.clone();
    // Reconcile on watch events, and on every job once a list (initial or re-list) is complete.
    // Not on the list's own objects: the initial list fills the store only at its end, so a
    // reconcile started for one would find its job missing (kube-runtime drops it as
    // ObjectNotFound) and nothing would trigger it again.
    let queue_metrics = metrics.clone();
    let long_waits = Arc::new(long_waits::LongWaits::default());
    let gone_waits = long_waits.clone();
    let job_stream = watcher(jobs, job_config)
        .default_backoff()
        .inspect_err(move |error| {
            job_metrics.watch_restarted("tfjobs");
            warn!(%error, "TFJob watch failed; retrying");
        })
        .inspect_ok(move |event| writer.apply(event))
        .filter_map(move |event| {
            futures::future::ready(match event {
                Ok(watcher::Event::Apply(job)) => {
                    queue_metrics.reconcile_queued(&job_key(&job));
                    Some(Ok(job))
                }
                Ok(watcher::Event::InitDone) => {
                    // The writer has brought the store up to date with the list by now.
                    for job in listed.state() {
                        let _ = trigger_tx.send(ObjectRef::from_obj(job.as_ref()));
                    }
                    None
                }
                Ok(watcher::Event::Delete(job)) => {
                    // Its pending request, if any, never runs (kube-runtime drops it).
                    queue_metrics.reconcile_dropped(&job_key(&job));
                    gone_waits.forget(&(job.namespace().unwrap_or_default(), job.name_any()));
                    None
                }
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => None,
                Err(error) => Some(Err(error)),
            })
        })
        .boxed();

    let ctx = Arc::new(Context {
        pods: pod_index.clone(),
        services: service_index.clone(),
        pod_groups,
        priority_classes,
        degraded_fix,
        long_waits: long_waits.clone(),
        ..Context::new(
            client.clone(),
            metrics.clone(),
            settings.plan.clone(),
            settings.instance.clone(),
        )
    });
    let concurrency = settings.concurrency;
    let reader = store.clone();
    let queued = store.clone();
    let trigger_metrics = metrics.clone();
    let run = async move {
        let waits = long_waits.clone();
        let mut tasks = vec![
            tokio::spawn(pod_watch),
            tokio::spawn(service_watch),
            tokio::spawn(async move { waits.run(wake).await }),
        ];
        tasks.extend(pod_group_watch.map(tokio::spawn));
        tasks.extend(priority_watch.map(tokio::spawn));
        let abort_all =
            |tasks: &[tokio::task::JoinHandle<()>]| tasks.iter().for_each(|t| t.abort());
        // Reconciling before the child caches are complete would re-create existing pods.
        while !(pod_index.is_ready()
            && service_index.is_ready()
            && pod_group_index
                .as_ref()
                .is_none_or(|index| index.is_ready()))
        {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = shutdown.clone() => { abort_all(&tasks); return; }
            }
        }
        debug!(
            pods = pod_index.len(),
            services = service_index.len(),
            "child caches synced"
        );
        let gate = BackoffGate::new(ctx.clone(), resend);
        let triggers = tokio_stream_of(trigger_rx)
            .filter(move |job: &ObjectRef<Object>| std::future::ready(gate.admit(job)))
            .inspect(move |job: &ObjectRef<Object>| {
                // A child of a deleted job triggers nothing that will run.
                if queued.get(job).is_some() {
                    let namespace = job.namespace.as_deref().unwrap_or_default();
                    trigger_metrics.reconcile_queued(&format!("{namespace}/{}", job.name));
                }
            });
        Controller::for_stream(job_stream, reader)
            .reconcile_on(triggers)
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
        abort_all(&tasks);
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
    F::Object: serde::de::DeserializeOwned + std::fmt::Debug,
{
    metrics.watching(resource);
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

/// `namespace/name` of a job, as the reconcile metrics key it.
fn job_key(job: &Object) -> String {
    format!("{}/{}", job.namespace().unwrap_or_default(), job.name_any())
}

fn tokio_stream_of<T: Send + 'static>(
    mut rx: mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// `(namespace, state)` of every cached job for the jobs-per-state gauge.
fn job_states(stores: Vec<Store<Object>>) -> impl Fn() -> Vec<JobSample> + Send + Sync {
    move || {
        stores
            .iter()
            .flat_map(|store| store.state())
            .map(|object| {
                let state = match &object.0 {
                    Ok(cached) => cached
                        .job
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.last())
                        .map(|c| c.type_.clone())
                        .unwrap_or_else(|| "Pending".into()),
                    Err(_) => conditions::FAILED.into(),
                };
                // Not running yet: waiting since the job was created.
                let waiting_since = matches!(state.as_str(), "Pending" | conditions::CREATED)
                    .then(|| object.creation_timestamp())
                    .flatten()
                    .map(|t| t.0.as_millisecond() as f64 / 1000.0);
                JobSample {
                    namespace: object.namespace().unwrap_or_default(),
                    state,
                    waiting_since,
                }
            })
            .collect()
    }
}
