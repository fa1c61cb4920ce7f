//! The metric names of controller-runtime and client-go that upstream training-operator exports
//! beside its job counters, so dashboards and alerts built for it keep their data:
//!
//! | metric | labels | here |
//! |---|---|---|
//! | `controller_runtime_reconcile_total` | `controller`, `result` | every reconcile: `success`, `error` or `requeue_after` (a timer was set) |
//! | `controller_runtime_reconcile_errors_total` | `controller` | reconciles that returned an error |
//! | `controller_runtime_reconcile_time_seconds` | `controller` | time spent in one reconcile |
//! | `controller_runtime_max_concurrent_reconciles` | `controller` | `--concurrency` |
//! | `controller_runtime_active_workers` | `controller` | reconciles running now |
//! | `workqueue_adds_total` | `name` | reconcile requests queued while none was pending for the job (client-go's de-duplication) |
//! | `workqueue_depth` | `name` | jobs waiting for a reconcile |
//! | `workqueue_queue_duration_seconds` | `name` | from the first request to the reconcile's start |
//! | `workqueue_work_duration_seconds` | `name` | as `controller_runtime_reconcile_time_seconds` |
//! | `workqueue_retries_total` | `name` | reconciles retried after an error |
//! | `rest_client_requests_total` | `code`, `host`, `method` | every API request (`code="<error>"` without a response) |
//! | `leader_election_master_status` | `name` | 1 while leading the Lease `name` (only with `--leader-elect`) |
//!
//! The controller label is `tfjob-controller`, upstream's. What differs: requests kube-runtime
//! re-queues by itself (timers for deadlines and TTLs) are not seen as queue adds, so the
//! queue counts are a lower bound; the reconcile counts are exact.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use super::{MetricsError, RECONCILE_BUCKETS, register};

/// The controller and work-queue name upstream uses.
pub const CONTROLLER: &str = "tfjob-controller";

/// How one reconcile ended, as controller-runtime labels it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconcileResult {
    Success,
    Error,
    RequeueAfter,
}

impl ReconcileResult {
    fn label(self) -> &'static str {
        match self {
            ReconcileResult::Success => "success",
            ReconcileResult::Error => "error",
            ReconcileResult::RequeueAfter => "requeue_after",
        }
    }
}

/// What the work queue is doing, for the liveness probe.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Jobs waiting for a reconcile.
    pub pending: usize,
    /// Reconciles running now.
    pub active: i64,
    /// When a reconcile last finished, or work last appeared after there was none.
    pub last_progress: Instant,
}

pub(super) struct Compat {
    reconcile_total: IntCounterVec,
    reconcile_errors: IntCounterVec,
    reconcile_time: HistogramVec,
    max_concurrent: IntGaugeVec,
    active_workers: IntGaugeVec,
    queue_adds: IntCounterVec,
    queue_depth: IntGaugeVec,
    queue_duration: HistogramVec,
    work_duration: HistogramVec,
    queue_retries: IntCounterVec,
    rest_requests: IntCounterVec,
    leader_status: IntGaugeVec,
    /// Jobs with a reconcile request pending, and since when (client-go's "dirty" set).
    pending: Mutex<HashMap<String, Instant>>,
    last_progress: Mutex<Instant>,
}

impl Compat {
    pub(super) fn new(registry: &Registry) -> Result<Compat, MetricsError> {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(registry, IntCounterVec::new(Opts::new(name, help), labels))
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            register(registry, IntGaugeVec::new(Opts::new(name, help), labels))
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            register(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(RECONCILE_BUCKETS.to_vec()),
                    labels,
                ),
            )
        };
        let compat = Compat {
            reconcile_total: counter(
                "controller_runtime_reconcile_total",
                "Total number of reconciliations per controller",
                &["controller", "result"],
            )?,
            reconcile_errors: counter(
                "controller_runtime_reconcile_errors_total",
                "Total number of reconciliation errors per controller",
                &["controller"],
            )?,
            reconcile_time: histogram(
                "controller_runtime_reconcile_time_seconds",
                "Length of time per reconciliation per controller",
                &["controller"],
            )?,
            max_concurrent: gauge(
                "controller_runtime_max_concurrent_reconciles",
                "Maximum number of concurrent reconciles per controller",
                &["controller"],
            )?,
            active_workers: gauge(
                "controller_runtime_active_workers",
                "Number of currently used workers per controller",
                &["controller"],
            )?,
            queue_adds: counter(
                "workqueue_adds_total",
                "Total number of adds handled by workqueue",
                &["name"],
            )?,
            queue_depth: gauge("workqueue_depth", "Current depth of workqueue", &["name"])?,
            queue_duration: histogram(
                "workqueue_queue_duration_seconds",
                "How long in seconds an item stays in workqueue before being requested",
                &["name"],
            )?,
            work_duration: histogram(
                "workqueue_work_duration_seconds",
                "How long in seconds processing an item from workqueue takes",
                &["name"],
            )?,
            queue_retries: counter(
                "workqueue_retries_total",
                "Total number of retries handled by workqueue",
                &["name"],
            )?,
            rest_requests: counter(
                "rest_client_requests_total",
                "Number of HTTP requests, partitioned by status code, method, and host",
                &["code", "host", "method"],
            )?,
            leader_status: gauge(
                "leader_election_master_status",
                "Gauge of if the reporting system is master of the relevant lease, 0 indicates \
                 backup, 1 indicates master. 'name' is the string used to identify the lease",
                &["name"],
            )?,
            pending: Mutex::new(HashMap::new()),
            last_progress: Mutex::new(Instant::now()),
        };
        // Exported from the start, as controller-runtime does.
        for result in [
            ReconcileResult::Success,
            ReconcileResult::Error,
            ReconcileResult::RequeueAfter,
        ] {
            compat
                .reconcile_total
                .with_label_values(&[CONTROLLER, result.label()]);
        }
        compat.reconcile_errors.with_label_values(&[CONTROLLER]);
        compat.queue_adds.with_label_values(&[CONTROLLER]);
        compat.queue_depth.with_label_values(&[CONTROLLER]);
        compat.queue_retries.with_label_values(&[CONTROLLER]);
        compat.active_workers.with_label_values(&[CONTROLLER]);
        Ok(compat)
    }

    pub(super) fn max_concurrent(&self, n: u16) {
        self.max_concurrent
            .with_label_values(&[CONTROLLER])
            .set(i64::from(n));
    }

    /// A reconcile was requested for `job`; de-duplicated like client-go's queue.
    pub(super) fn queued(&self, job: &str) {
        let mut pending = self.lock();
        if pending.contains_key(job) {
            return;
        }
        if pending.is_empty() && self.active() == 0 {
            self.made_progress(); // work after a quiet spell: the stall clock starts now
        }
        pending.insert(job.to_string(), Instant::now());
        self.queue_adds.with_label_values(&[CONTROLLER]).inc();
        self.queue_depth
            .with_label_values(&[CONTROLLER])
            .set(i64::try_from(pending.len()).unwrap_or(i64::MAX));
    }

    /// A pending request for `job` is dropped (the job is gone).
    pub(super) fn dropped(&self, job: &str) {
        let mut pending = self.lock();
        if pending.remove(job).is_some() {
            self.queue_depth
                .with_label_values(&[CONTROLLER])
                .set(i64::try_from(pending.len()).unwrap_or(i64::MAX));
        }
    }

    /// A reconcile of `job` starts.
    pub(super) fn started(&self, job: &str) {
        let since = {
            let mut pending = self.lock();
            if pending.is_empty() && self.active() == 0 {
                self.made_progress(); // a timer's reconcile after a quiet spell
            }
            let since = pending.remove(job);
            self.queue_depth
                .with_label_values(&[CONTROLLER])
                .set(i64::try_from(pending.len()).unwrap_or(i64::MAX));
            since
        };
        if let Some(since) = since {
            self.queue_duration
                .with_label_values(&[CONTROLLER])
                .observe(since.elapsed().as_secs_f64());
        }
        self.active_workers.with_label_values(&[CONTROLLER]).inc();
    }

    /// A reconcile ended after `seconds`.
    pub(super) fn finished(&self, result: ReconcileResult, seconds: f64) {
        self.active_workers.with_label_values(&[CONTROLLER]).dec();
        self.made_progress();
        self.reconcile_total
            .with_label_values(&[CONTROLLER, result.label()])
            .inc();
        self.reconcile_time
            .with_label_values(&[CONTROLLER])
            .observe(seconds);
        self.work_duration
            .with_label_values(&[CONTROLLER])
            .observe(seconds);
        if result == ReconcileResult::Error {
            self.reconcile_errors.with_label_values(&[CONTROLLER]).inc();
            self.queue_retries.with_label_values(&[CONTROLLER]).inc();
        }
    }

    /// A reconcile ended without being measured.
    pub(super) fn finished_without_record(&self) {
        self.active_workers.with_label_values(&[CONTROLLER]).dec();
        self.made_progress();
    }

    pub(super) fn rest_request(&self, host: &str, method: &str, code: Option<u16>) {
        let code = code.map_or_else(|| "<error>".to_string(), |c| c.to_string());
        self.rest_requests
            .with_label_values(&[&code, host, method])
            .inc();
    }

    pub(super) fn leading(&self, lease: &str, leading: bool) {
        self.leader_status
            .with_label_values(&[lease])
            .set(i64::from(leading));
    }

    /// What the queue is doing now.
    pub(super) fn progress(&self) -> Progress {
        Progress {
            pending: self.lock().len(),
            active: self.active(),
            last_progress: *self.last_progress.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    fn active(&self) -> i64 {
        self.active_workers.with_label_values(&[CONTROLLER]).get()
    }

    fn made_progress(&self) {
        *self.last_progress.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}
