//! The watch loop: one pod watch, one lightweight tokio task per pod incarnation with its own
//! timer, and a semaphore that bounds API writes in flight. No per-pod polling, so thousands of
//! pods cost one watch plus a sleeping task each.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, info, warn};

use super::SimError;
use super::actions::{self, DEFAULT_NODE, DEFAULT_NODE_IP};
use super::behaviour::Behaviour;
use super::lifecycle::{Effect, PodFacts, Record, Stage, Step, next_step};

/// Settings of one simulated kubelet.
#[derive(Debug, Clone)]
pub struct SimKubeletConfig {
    /// The node pods are bound to; created if missing.
    pub node_name: String,
    /// The node's InternalIP, reported as the pods' `hostIP`.
    pub node_ip: String,
    /// Only pods in this namespace; `None` = all namespaces.
    pub namespace: Option<String>,
    /// Only pods matching this label selector.
    pub label_selector: Option<String>,
    /// API writes in flight at most (binds, status patches, deletes).
    pub max_concurrent_writes: usize,
}

impl Default for SimKubeletConfig {
    fn default() -> Self {
        SimKubeletConfig {
            node_name: DEFAULT_NODE.to_string(),
            node_ip: DEFAULT_NODE_IP.to_string(),
            namespace: None,
            label_selector: None,
            max_concurrent_writes: 32,
        }
    }
}

/// A running simulated kubelet (a tokio task). Dropping the handle stops it.
pub struct SimKubelet {
    task: Option<JoinHandle<Result<(), SimError>>>,
}

impl SimKubelet {
    /// Starts the watch loop as a tokio task on the current runtime.
    pub fn spawn(client: Client, config: SimKubeletConfig) -> SimKubelet {
        SimKubelet {
            task: Some(tokio::spawn(run(client, config))),
        }
    }

    /// Stops the loop and every pod timer, and waits until they are gone. Pods are left as they
    /// are. Returns the loop's start-up error, if that is why it had already stopped.
    pub async fn shutdown(mut self) -> Result<(), SimError> {
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        task.abort();
        match task.await {
            Ok(result) => result,
            Err(_) => Ok(()), // cancelled, as asked
        }
    }

    /// Whether the loop has stopped on its own, which only happens when start-up failed
    /// (see [`SimKubelet::shutdown`] for the error).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for SimKubelet {
    fn drop(&mut self) {
        // Aborting drops the loop's JoinSet, which aborts every pod task with it.
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// State shared by the pod tasks.
struct Shared {
    client: Client,
    config: SimKubeletConfig,
    writes: Semaphore,
    /// Container runs started per `namespace/name`, across incarnations: the attempt counter.
    attempts: Mutex<HashMap<String, u32>>,
}

impl Shared {
    fn attempts_started(&self, key: &str) -> u32 {
        self.attempts
            .lock()
            .map(|m| m.get(key).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    fn record_attempt(&self, key: &str, attempt: u32) {
        if let Ok(mut m) = self.attempts.lock() {
            let n = m.entry(key.to_string()).or_insert(0);
            *n = (*n).max(attempt);
        }
    }
}

/// Runs the simulated kubelet until the pod watch ends (it does not, short of the task being
/// aborted). Fails only if the node cannot be created.
pub async fn run(client: Client, config: SimKubeletConfig) -> Result<(), SimError> {
    let nodes: Api<Node> = Api::all(client.clone());
    actions::ensure_node(&nodes, &config.node_name, &config.node_ip).await?;
    // Container logs for `kubectl logs` and the API's pods/log; stops with this loop. Best
    // effort: pods still run without them.
    let _log_server = match crate::logs::serve(client.clone()).await {
        Ok((port, task)) => {
            let advertised =
                actions::advertise_kubelet(&nodes, &config.node_name, &config.node_ip, port);
            if let Err(e) = advertised.await {
                tracing::warn!(error = %e, "cannot advertise the log port on the node; no pod logs");
            }
            Some(AbortOnDrop(task))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot serve container logs");
            None
        }
    };

    let pods: Api<Pod> = match &config.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut wc = watcher::Config::default();
    if let Some(selector) = &config.label_selector {
        wc = wc.labels(selector);
    }
    info!(
        node = %config.node_name,
        namespace = config.namespace.as_deref().unwrap_or("<all>"),
        selector = config.label_selector.as_deref().unwrap_or("<none>"),
        max_concurrent_writes = config.max_concurrent_writes,
        "simulated kubelet watching pods"
    );
    let shared = Arc::new(Shared {
        writes: Semaphore::new(config.max_concurrent_writes.max(1)),
        client,
        config,
        attempts: Mutex::new(HashMap::new()),
    });

    // Watch errors are not fatal: the watcher re-lists after backoff (never `?` on this stream).
    let mut events = watcher(pods, wc).default_backoff().boxed();
    let mut tracked: HashMap<String, watch::Sender<Arc<PodFacts>>> = HashMap::new();
    let mut relisted: Option<HashSet<String>> = None;
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(watcher::Event::Init)) => relisted = Some(HashSet::new()),
                Some(Ok(watcher::Event::InitApply(pod))) => {
                    if let (Some(seen), Some(uid)) = (relisted.as_mut(), pod.metadata.uid.clone()) {
                        seen.insert(uid);
                    }
                    upsert(&shared, &mut tracked, &mut tasks, &pod);
                }
                Some(Ok(watcher::Event::InitDone)) => {
                    // Pods deleted while the watch was down: stop their tasks.
                    if let Some(seen) = relisted.take() {
                        tracked.retain(|uid, _| seen.contains(uid));
                    }
                }
                Some(Ok(watcher::Event::Apply(pod))) => upsert(&shared, &mut tracked, &mut tasks, &pod),
                Some(Ok(watcher::Event::Delete(pod))) => {
                    // Dropping the sender ends the pod's task.
                    if let Some(uid) = &pod.metadata.uid {
                        tracked.remove(uid);
                    }
                }
                Some(Err(e)) => warn!(error = %e, "pod watch failed; retrying with backoff"),
                None => return Ok(()),
            },
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = done
                    && e.is_panic()
                {
                    warn!(error = %e, "a simulated pod task panicked");
                }
            }
        }
    }
}

/// Starts a task for a new pod incarnation, or hands the latest facts to its task.
fn upsert(
    shared: &Arc<Shared>,
    tracked: &mut HashMap<String, watch::Sender<Arc<PodFacts>>>,
    tasks: &mut JoinSet<()>,
    pod: &Pod,
) {
    let Some(uid) = pod.metadata.uid.clone() else {
        return;
    };
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty());
    if node.is_some_and(|n| n != shared.config.node_name) {
        // Someone else's pod (another simulated node won the binding).
        tracked.remove(&uid);
        return;
    }
    let behaviour = Behaviour::from_annotations(pod.metadata.annotations.as_ref().unwrap_or(&Default::default()))
        .unwrap_or_else(|e| {
            warn!(pod = ?pod.metadata.name, error = %e, "ignoring invalid simulator annotations; using defaults");
            Behaviour::default()
        });
    let facts = Arc::new(PodFacts::from_pod(pod, behaviour));
    match tracked.get(&uid) {
        // Only wake the task when something it reads changed; the simulator's own status writes
        // come back as watch events and must not.
        Some(tx) => {
            tx.send_if_modified(|current| {
                let changed = **current != *facts;
                if changed {
                    *current = facts.clone();
                }
                changed
            });
        }
        None => {
            let record = Record::observe(pod, Timestamp::now());
            if let Stage::Running { attempt, .. } = record.stage {
                shared.record_attempt(&attempt_key(&facts), attempt);
            }
            let (tx, rx) = watch::channel(facts);
            tracked.insert(uid, tx);
            tasks.spawn(drive_pod(shared.clone(), rx, record));
        }
    }
}

fn attempt_key(pod: &PodFacts) -> String {
    format!("{}/{}", pod.namespace, pod.name)
}

/// One pod incarnation: sleep until the next step, perform it, repeat; re-plan whenever the pod's
/// facts change (e.g. a deletion starts). Ends when the pod is finalised or stops being tracked.
async fn drive_pod(
    shared: Arc<Shared>,
    mut facts_rx: watch::Receiver<Arc<PodFacts>>,
    mut record: Record,
) {
    let mut failures = 0u32;
    loop {
        let facts = facts_rx.borrow_and_update().clone();
        let key = attempt_key(&facts);
        let now = Timestamp::now();
        let Some(step) = next_step(&record, &facts, now, shared.attempts_started(&key) + 1) else {
            if facts_rx.changed().await.is_err() {
                return;
            }
            continue;
        };
        let wait = step
            .at
            .duration_since(now)
            .try_into()
            .unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            changed = facts_rx.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        }
        match perform(&shared, &facts, &step).await {
            Ok(()) => {
                failures = 0;
                if step.starts_run
                    && let Stage::Running { attempt, .. } = step.record.stage
                {
                    shared.record_attempt(&key, attempt);
                }
                debug!(pod = %key, stage = ?step.record.stage, "simulated pod moved on");
                record = step.record;
                if record.stage == Stage::Finalized {
                    return;
                }
            }
            Err(SimError::Kube(kube::Error::Api(s))) if s.is_not_found() => return,
            Err(SimError::AlreadyBound { .. }) => {
                // Bound meanwhile (by us on a lost response, or by someone else): wait for the
                // watch to show the node and re-plan from there.
                debug!(pod = %key, "pod already bound; waiting for the watch to catch up");
                if facts_rx.changed().await.is_err() {
                    return;
                }
            }
            Err(e) => {
                failures += 1;
                let backoff = Duration::from_millis(200 * 2u64.pow(failures.min(5)));
                warn!(pod = %key, error = %e, retry_in = ?backoff, "simulated kubelet write failed");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    changed = facts_rx.changed() => if changed.is_err() { return },
                }
            }
        }
    }
}

async fn perform(shared: &Shared, facts: &PodFacts, step: &Step) -> Result<(), SimError> {
    // The semaphore is never closed, so acquiring cannot fail; hold the permit for the write.
    let _permit = shared.writes.acquire().await.ok();
    let pods: Api<Pod> = Api::namespaced(shared.client.clone(), &facts.namespace);
    match step.effect {
        Effect::Bind => {
            actions::bind(
                &pods,
                &facts.name,
                Some(&facts.uid),
                &shared.config.node_name,
            )
            .await
        }
        Effect::WriteStatus => {
            actions::write_status(&pods, facts, &step.record, &shared.config.node_ip)
                .await
                .map(drop)
        }
        Effect::Finalize => actions::finalize(&pods, &facts.name, &facts.uid).await,
    }
}

/// Aborts a task when dropped (with the loop that owns it).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
