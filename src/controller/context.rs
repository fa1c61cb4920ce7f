//! What every reconcile shares: the client, the caches, the event recorder, the metrics and
//! the operator's memory of its own recent writes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::ApiResource;

use super::events::EventRecorder;
use super::index::ChildIndex;
use crate::ops::Metrics;
use tfjob_core::api::JobStatus;
use tfjob_core::api::naming::CONTROLLER_NAME;
use tfjob_core::plan::PlanConfig;
use tfjob_core::plan::observe::{PodFacts, PodGroupFacts, ServiceFacts};

/// Shared state of the controller.
pub struct Context {
    pub client: Client,
    pub recorder: EventRecorder,
    pub metrics: Metrics,
    pub pods: Arc<ChildIndex<PodFacts>>,
    pub services: Arc<ChildIndex<ServiceFacts>>,
    /// Gang scheduling on: the PodGroups of the jobs and their API resource.
    pub pod_groups: Option<(Arc<ChildIndex<PodGroupFacts>>, ApiResource)>,
    /// Gang scheduling on: PriorityClass values, for PodGroups' default `minResources`.
    pub priority_classes: Arc<PriorityClasses>,
    pub plan_config: PlanConfig,
    pub statuses: StatusMemo,
    pub backoff: ErrorBackoff,
    pub announced: Announced,
    pub undecodable: super::reconciler::UndecodableMemo,
}

impl Context {
    /// A context with empty caches and memories; the wiring replaces the caches with the ones
    /// its watches feed (struct update syntax), benchmarks use it as it is.
    pub fn new(
        client: Client,
        metrics: Metrics,
        plan_config: PlanConfig,
        instance: String,
    ) -> Self {
        Context {
            recorder: EventRecorder::new(client.clone(), CONTROLLER_NAME, &instance),
            client,
            metrics,
            pods: Default::default(),
            services: Default::default(),
            pod_groups: None,
            priority_classes: Default::default(),
            plan_config,
            statuses: Default::default(),
            backoff: Default::default(),
            announced: Default::default(),
            undecodable: Default::default(),
        }
    }
}

/// The statuses this operator wrote recently, by job UID, with the resourceVersion each write
/// produced. A reconcile that runs before the TFJob cache has caught up with our own write uses
/// the memo instead of the stale cached status, so no transition is applied, counted or
/// announced twice.
#[derive(Default)]
pub struct StatusMemo {
    written: Mutex<HashMap<String, (u64, JobStatus, Instant)>>,
}

/// How long a memo entry is kept at most (the cache normally catches up in milliseconds).
const MEMO_TTL: Duration = Duration::from_secs(300);

impl StatusMemo {
    /// The status to plan from: ours if the cached object (at `cached_rv`) predates our write.
    pub fn newer_than(&self, uid: &str, cached_rv: u64) -> Option<JobStatus> {
        let mut written = self.lock();
        match written.get(uid) {
            Some((rv, status, _)) if *rv > cached_rv => Some(status.clone()),
            Some(_) => {
                written.remove(uid); // the cache has caught up
                None
            }
            None => None,
        }
    }

    pub fn remember(&self, uid: &str, rv: u64, status: JobStatus) {
        let mut written = self.lock();
        let now = Instant::now();
        written.retain(|_, (_, _, at)| now.duration_since(*at) < MEMO_TTL);
        written.insert(uid.to_string(), (rv, status, now));
    }

    pub fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, JobStatus, Instant)>> {
        self.written.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The pod warnings already announced, by pod UID: an unhealthy pod gets one event per distinct
/// message, not one per reconcile (upstream's event spam).
#[derive(Default)]
pub struct Announced(Mutex<HashMap<String, String>>);

impl Announced {
    /// Bounds the memory of pods that are long gone.
    const MAX: usize = 50_000;

    /// Whether `message` is new for `pod_uid` (and remembers it).
    pub fn first_time(&self, pod_uid: &str, message: &str) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.get(pod_uid).is_some_and(|m| m == message) {
            return false;
        }
        if seen.len() >= Self::MAX {
            seen.clear();
        }
        seen.insert(pod_uid.to_string(), message.to_string());
        true
    }
}

/// PriorityClass name → value, kept by a watch (cluster-scoped, small).
#[derive(Default)]
pub struct PriorityClasses(std::sync::RwLock<std::collections::BTreeMap<String, i32>>);

impl PriorityClasses {
    pub fn snapshot(&self) -> std::collections::BTreeMap<String, i32> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set(&self, name: String, value: Option<i32>) {
        let mut classes = self.0.write().unwrap_or_else(|e| e.into_inner());
        match value {
            Some(value) => classes.insert(name, value),
            None => classes.remove(&name),
        };
    }

    pub fn replace(&self, all: std::collections::BTreeMap<String, i32>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = all;
    }
}

/// Per-job exponential back-off for failed reconciles (kube-runtime's `error_policy` is not
/// told about successes, so the count is kept here and reset on success).
#[derive(Default)]
pub struct ErrorBackoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl ErrorBackoff {
    const BASE: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(300);

    /// Records a failure of `key`; returns how long to wait before retrying.
    pub fn failed(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        Self::BASE
            .saturating_mul(1u32 << (*n - 1).min(20))
            .min(Self::MAX)
    }

    pub fn succeeded(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if !failures.is_empty() {
            failures.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memo_serves_our_status_until_the_cache_catches_up() {
        let memo = StatusMemo::default();
        let status = JobStatus {
            completion_time: None,
            ..Default::default()
        };
        memo.remember("uid", 10, status.clone());
        assert_eq!(memo.newer_than("uid", 9), Some(status));
        assert_eq!(memo.newer_than("uid", 10), None);
        assert_eq!(memo.newer_than("uid", 9), None, "forgotten once caught up");
    }

    #[test]
    fn pod_warnings_are_announced_once_per_message() {
        let announced = Announced::default();
        assert!(announced.first_time("pod-a", "waiting: back-off 10s"));
        assert!(!announced.first_time("pod-a", "waiting: back-off 10s"));
        assert!(announced.first_time("pod-a", "waiting: back-off 20s"));
        assert!(announced.first_time("pod-b", "waiting: back-off 10s"));
    }

    #[test]
    fn backoff_doubles_up_to_five_minutes_and_resets_on_success() {
        let backoff = ErrorBackoff::default();
        assert_eq!(backoff.failed("a"), Duration::from_millis(500));
        assert_eq!(backoff.failed("a"), Duration::from_secs(1));
        assert_eq!(backoff.failed("a"), Duration::from_secs(2));
        for _ in 0..30 {
            backoff.failed("a");
        }
        assert_eq!(backoff.failed("a"), Duration::from_secs(300));
        backoff.succeeded("a");
        assert_eq!(backoff.failed("a"), Duration::from_millis(500));
    }
}
