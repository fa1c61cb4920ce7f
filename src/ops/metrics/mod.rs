//! Prometheus metrics of the operator, on a private [`Registry`] (never the process-global one,
//! so tests and several operators in one process do not collide).
//!
//! Two families:
//! * upstream training-operator's job counters, with identical names and labels
//!   (`training_operator_jobs_*_total{job_namespace, framework="tensorflow"}`) so existing
//!   dashboards keep working;
//! * this operator's own `tfjob_operator_*` metrics: reconciles, errors, latency, child writes,
//!   watch restarts, API requests, leadership, build info, and a per-state job gauge computed at
//!   scrape time from a [`JobStateSource`];
//! * the controller-runtime, client-go and process metrics upstream's binary also serves
//!   ([`compat`]), and the `process_*` metrics of the `prometheus` crate's process collector.
//!
//! [`Metrics`] is an `Arc` inside: clone it freely into reconcilers, layers and the HTTP server.

pub mod compat;
mod heap;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, RwLock},
    time::Instant,
};

pub use compat::{Progress, ReconcileResult};

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
    core::{Collector, Desc},
    proto::MetricFamily,
};

/// Value of the `framework` label on the upstream counters.
const FRAMEWORK: &str = "tensorflow";

/// Reconcile latency buckets in seconds: 50 µs (a no-op reconcile from cache) to 10 s (a burst
/// of child creations behind a throttled client).
const RECONCILE_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// One TFJob as the job gauges see it at scrape time.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSample {
    pub namespace: String,
    /// The type of the job's last condition, or `Pending` when it has none.
    pub state: String,
    /// Since when (Unix seconds) the job has been waiting for its pods to run: set for jobs not
    /// yet Running (`Pending`, `Created`), from their creation time.
    pub waiting_since: Option<f64>,
}

/// Supplies, at scrape time, one [`JobSample`] per TFJob the operator knows.
///
/// Implemented for any `Fn() -> Vec<JobSample> + Send + Sync`, typically a closure over the
/// reflector store. It runs on the scrape path, so it must be cheap and must not block.
pub trait JobStateSource: Send + Sync {
    /// The current jobs.
    fn job_states(&self) -> Vec<JobSample>;
}

impl<F> JobStateSource for F
where
    F: Fn() -> Vec<JobSample> + Send + Sync,
{
    fn job_states(&self) -> Vec<JobSample> {
        self()
    }
}

/// Metrics could not be registered or encoded.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A metric definition was rejected (a bug in this module: names are constants).
    #[error("cannot register metric: {0}")]
    Register(#[source] prometheus::Error),
    /// The text exposition could not be produced.
    #[error("cannot encode metrics: {0}")]
    Encode(#[source] prometheus::Error),
}

/// All metrics of the operator; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    jobs_created: IntCounterVec,
    jobs_deleted: IntCounterVec,
    jobs_successful: IntCounterVec,
    jobs_failed: IntCounterVec,
    jobs_restarted: IntCounterVec,
    reconciles: IntCounter,
    reconcile_errors: IntCounterVec,
    reconcile_duration: Histogram,
    pods_created: IntCounter,
    pods_deleted: IntCounter,
    services_created: IntCounter,
    services_deleted: IntCounter,
    watch_restarts: IntCounterVec,
    api_requests: IntCounterVec,
    leader: IntGauge,
    crd_compatible: IntGauge,
    compat: compat::Compat,
    job_state_source: Arc<RwLock<Option<Arc<dyn JobStateSource>>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Creates every metric on a new private registry and sets `tfjob_operator_build_info`.
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let job_counter = |name: &str, help: &str| {
            register(
                &registry,
                IntCounterVec::new(Opts::new(name, help), &["job_namespace", "framework"]),
            )
        };
        let counter = |name: &str, help: &str| register(&registry, IntCounter::new(name, help));
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, IntCounterVec::new(Opts::new(name, help), labels))
        };

        let inner = Inner {
            jobs_created: job_counter(
                "training_operator_jobs_created_total",
                "Counts number of jobs created",
            )?,
            jobs_deleted: job_counter(
                "training_operator_jobs_deleted_total",
                "Counts number of jobs deleted",
            )?,
            jobs_successful: job_counter(
                "training_operator_jobs_successful_total",
                "Counts number of jobs successful",
            )?,
            jobs_failed: job_counter(
                "training_operator_jobs_failed_total",
                "Counts number of jobs failed",
            )?,
            jobs_restarted: job_counter(
                "training_operator_jobs_restarted_total",
                "Counts number of jobs restarted",
            )?,
            reconciles: counter("tfjob_operator_reconcile_total", "Reconciles started")?,
            reconcile_errors: counter_vec(
                "tfjob_operator_reconcile_errors_total",
                "Reconciles that failed, by error kind",
                &["kind"],
            )?,
            reconcile_duration: register(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "tfjob_operator_reconcile_duration_seconds",
                        "Time spent in one reconcile",
                    )
                    .buckets(RECONCILE_BUCKETS.to_vec()),
                ),
            )?,
            pods_created: counter(
                "tfjob_operator_pods_created_total",
                "Pods created by the operator",
            )?,
            pods_deleted: counter(
                "tfjob_operator_pods_deleted_total",
                "Pods deleted by the operator",
            )?,
            services_created: counter(
                "tfjob_operator_services_created_total",
                "Services created by the operator",
            )?,
            services_deleted: counter(
                "tfjob_operator_services_deleted_total",
                "Services deleted by the operator",
            )?,
            watch_restarts: counter_vec(
                "tfjob_operator_watch_restarts_total",
                "Watch streams that ended with an error and were restarted, by resource",
                &["resource"],
            )?,
            api_requests: counter_vec(
                "tfjob_operator_api_requests_total",
                "Kubernetes API requests, by verb and HTTP status code (\"error\" when no response arrived)",
                &["verb", "code"],
            )?,
            crd_compatible: register(
                &registry,
                IntGauge::new(
                    "tfjob_operator_crd_compatible",
                    "1 when the installed TFJob CRD declares every field the operator stores; 0 in \
                     the degraded mode of --allow-upstream-crd",
                ),
            )?,
            leader: register(
                &registry,
                IntGauge::new(
                    "tfjob_operator_is_leader",
                    "1 while this replica holds the leader lease (or runs without leader election)",
                ),
            )?,
            compat: compat::Compat::new(&registry)?,
            job_state_source: Arc::new(RwLock::new(None)),
            registry,
        };
        // process_cpu_seconds_total, process_resident_memory_bytes, … (Linux only).
        #[cfg(target_os = "linux")]
        inner
            .registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .map_err(MetricsError::Register)?;

        inner
            .registry
            .register(Box::new(
                heap::HeapCollector::new().map_err(MetricsError::Register)?,
            ))
            .map_err(MetricsError::Register)?;

        let build_info = register(
            &inner.registry,
            IntGaugeVec::new(
                Opts::new(
                    "tfjob_operator_build_info",
                    "Always 1; labels describe the build",
                ),
                &["version"],
            ),
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        let job_states = JobStateCollector {
            gauge: IntGaugeVec::new(
                Opts::new(
                    "tfjob_operator_jobs",
                    "TFJobs known to the operator, by namespace and state (last condition type, or Pending)",
                ),
                &["job_namespace", "state"],
            )
            .map_err(MetricsError::Register)?,
            oldest_waiting: GaugeVec::new(
                Opts::new(
                    "tfjob_operator_oldest_waiting_job_seconds",
                    "Age of the oldest TFJob per namespace whose pods are not all running yet \
                     (state Pending or Created); no series for a namespace without one",
                ),
                &["job_namespace"],
            )
            .map_err(MetricsError::Register)?,
            job_counters: [
                inner.jobs_created.clone(),
                inner.jobs_deleted.clone(),
                inner.jobs_successful.clone(),
                inner.jobs_failed.clone(),
                inner.jobs_restarted.clone(),
            ],
            source: Arc::clone(&inner.job_state_source),
            scrape: Mutex::new(()),
        };
        inner
            .registry
            .register(Box::new(job_states))
            .map_err(MetricsError::Register)?;

        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Exports `tfjob_operator_reconcile_errors_total{kind}` at 0 for every kind the controller
    /// can report (as each watch's restart counter is by [`Metrics::watching`]): a `rate()` or
    /// an alert on a series that appears only with its first increment misses that increment.
    pub fn declare_reconcile_errors(&self, kinds: impl IntoIterator<Item = &'static str>) {
        for kind in kinds {
            self.inner.reconcile_errors.with_label_values(&[kind]);
        }
    }

    /// The private registry, to add metrics this module does not define.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Everything in Prometheus text exposition format (what `GET /metrics` serves).
    pub fn encode(&self) -> Result<String, MetricsError> {
        let families = self.inner.registry.gather();
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&families, &mut buffer)
            .map_err(MetricsError::Encode)?;
        // The text encoder only writes UTF-8 (names and labels are validated, values are numbers).
        String::from_utf8(buffer)
            .map_err(|e| MetricsError::Encode(prometheus::Error::Msg(e.to_string())))
    }

    /// Counts one job transition decided by the planner.
    pub fn count(&self, namespace: &str, counter: tfjob_core::plan::JobCounter) {
        use tfjob_core::plan::JobCounter;
        match counter {
            JobCounter::Created => self.job_created(namespace),
            JobCounter::Deleted => self.job_deleted(namespace),
            JobCounter::Succeeded => self.job_succeeded(namespace),
            JobCounter::Failed => self.job_failed(namespace),
            JobCounter::Restarted => self.job_restarted(namespace),
        }
    }

    /// A TFJob was seen for the first time (upstream: create event in the informer).
    pub fn job_created(&self, namespace: &str) {
        job_inc(&self.inner.jobs_created, namespace);
    }

    /// A TFJob was deleted by the operator (TTL clean-up).
    pub fn job_deleted(&self, namespace: &str) {
        job_inc(&self.inner.jobs_deleted, namespace);
    }

    /// A TFJob became Succeeded.
    pub fn job_succeeded(&self, namespace: &str) {
        job_inc(&self.inner.jobs_successful, namespace);
    }

    /// A TFJob became Failed.
    pub fn job_failed(&self, namespace: &str) {
        job_inc(&self.inner.jobs_failed, namespace);
    }

    /// A TFJob restarted a replica.
    pub fn job_restarted(&self, namespace: &str) {
        job_inc(&self.inner.jobs_restarted, namespace);
    }

    /// Counts a reconcile of `job` (`namespace/name`) and returns a guard that records its
    /// duration and result when finished (a success when just dropped).
    #[must_use = "the duration is recorded when the guard is dropped"]
    pub fn reconcile_timer(&self, job: &str) -> ReconcileTimer {
        self.inner.reconciles.inc();
        self.inner.compat.started(job);
        ReconcileTimer {
            metrics: self.clone(),
            start: Instant::now(),
            result: Some(ReconcileResult::Success),
        }
    }

    /// A reconcile of `job` (`namespace/name`) was requested (a watch event, a re-list).
    pub fn reconcile_queued(&self, job: &str) {
        self.inner.compat.queued(job);
    }

    /// A pending reconcile of `job` will not run (the job is gone).
    pub fn reconcile_dropped(&self, job: &str) {
        self.inner.compat.dropped(job);
    }

    /// What the work queue is doing, for the liveness probe.
    pub fn progress(&self) -> Progress {
        self.inner.compat.progress()
    }

    /// How many reconciles may run at once (`--concurrency`).
    pub fn set_max_concurrent_reconciles(&self, n: u16) {
        self.inner.compat.max_concurrent(n);
    }

    /// client-go's `rest_client_requests_total{code,host,method}`: one request to `host` with
    /// HTTP `method` ended with `code`, or without a response (`None`).
    pub fn rest_request(&self, host: &str, method: &str, code: Option<u16>) {
        self.inner.compat.rest_request(host, method, code);
    }

    /// controller-runtime's `leader_election_master_status{name=lease}`.
    pub fn set_lease_status(&self, lease: &str, leading: bool) {
        self.inner.compat.leading(lease, leading);
    }

    /// A reconcile failed; `kind` must come from a small fixed set (e.g. the error variant name).
    pub fn reconcile_error(&self, kind: &str) {
        self.inner.reconcile_errors.with_label_values(&[kind]).inc();
    }

    /// `n` pods were created.
    pub fn pods_created(&self, n: u64) {
        self.inner.pods_created.inc_by(n);
    }

    /// `n` pods were deleted.
    pub fn pods_deleted(&self, n: u64) {
        self.inner.pods_deleted.inc_by(n);
    }

    /// `n` services were created.
    pub fn services_created(&self, n: u64) {
        self.inner.services_created.inc_by(n);
    }

    /// `n` services were deleted.
    pub fn services_deleted(&self, n: u64) {
        self.inner.services_deleted.inc_by(n);
    }

    /// A watch on `resource` starts: exports its restart counter at 0.
    pub fn watching(&self, resource: &str) {
        self.inner.watch_restarts.with_label_values(&[resource]);
    }

    /// A watch on `resource` (e.g. `tfjobs`, `pods`) failed and is being restarted.
    pub fn watch_restarted(&self, resource: &str) {
        self.inner
            .watch_restarts
            .with_label_values(&[resource])
            .inc();
    }

    /// One API request finished with HTTP status `code`, or with no response at all (`None`,
    /// exported as `code="error"`). `verb` is kube's request name (`get`, `list`, `watch`,
    /// `patch_status`, …).
    pub fn api_request(&self, verb: &str, code: Option<u16>) {
        let code = code.map_or_else(|| "error".to_string(), |c| c.to_string());
        self.inner
            .api_requests
            .with_label_values(&[verb, &code])
            .inc();
    }

    /// Whether the installed CRD declares every field the operator stores.
    pub fn set_crd_compatible(&self, compatible: bool) {
        self.inner.crd_compatible.set(i64::from(compatible));
    }

    /// Whether this replica currently leads.
    pub fn set_leader(&self, leading: bool) {
        self.inner.leader.set(i64::from(leading));
    }

    /// Sets (or replaces) what `tfjob_operator_jobs` is computed from at each scrape.
    pub fn set_job_state_source(&self, source: impl JobStateSource + 'static) {
        let mut slot = self
            .inner
            .job_state_source
            .write()
            .unwrap_or_else(|e| e.into_inner());
        *slot = Some(Arc::new(source));
    }
}

/// Records a reconcile's duration and result when finished or dropped.
pub struct ReconcileTimer {
    metrics: Metrics,
    start: Instant,
    /// `None` once recorded or discarded.
    result: Option<ReconcileResult>,
}

impl ReconcileTimer {
    /// Drops the measurement instead of recording it (e.g. a reconcile that was skipped).
    pub fn discard(mut self) {
        self.result = None;
        self.metrics.inner.compat.finished_without_record();
    }

    /// Records the reconcile with its result.
    pub fn finish(mut self, result: ReconcileResult) {
        self.result = Some(result);
    }
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        let Some(result) = self.result.take() else {
            return;
        };
        let seconds = self.start.elapsed().as_secs_f64();
        self.metrics.inner.reconcile_duration.observe(seconds);
        self.metrics.inner.compat.finished(result, seconds);
    }
}

fn job_inc(counter: &IntCounterVec, namespace: &str) {
    counter.with_label_values(&[namespace, FRAMEWORK]).inc();
}

fn register<C: Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<C>,
) -> Result<C, MetricsError> {
    let metric = metric.map_err(MetricsError::Register)?;
    registry
        .register(Box::new(metric.clone()))
        .map_err(MetricsError::Register)?;
    Ok(metric)
}

/// Builds `tfjob_operator_jobs` afresh on every scrape, so series for namespaces or states that
/// no longer have jobs disappear instead of freezing at their last value.
struct JobStateCollector {
    gauge: IntGaugeVec,
    oldest_waiting: GaugeVec,
    /// Upstream's job counters: a namespace's series are exported at 0 from the first scrape
    /// that sees one of its jobs, so that `increase()` (and the TFJobsFailing alert) sees the
    /// namespace's first failure, which a series born at 1 would hide.
    job_counters: [IntCounterVec; 5],
    source: Arc<RwLock<Option<Arc<dyn JobStateSource>>>>,
    /// Serialises scrapes: the reset-then-fill of the shared gauge must not interleave.
    scrape: Mutex<()>,
}

impl Collector for JobStateCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.gauge.desc();
        descs.extend(self.oldest_waiting.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _scrape = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        let source = self
            .source
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.gauge.reset();
        self.oldest_waiting.reset();
        if let Some(source) = source {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
            let mut oldest: BTreeMap<String, f64> = BTreeMap::new();
            for job in source.job_states() {
                if let Some(since) = job.waiting_since {
                    let entry = oldest.entry(job.namespace.clone()).or_insert(since);
                    *entry = entry.min(since);
                }
                *counts.entry((job.namespace, job.state)).or_default() += 1;
            }
            for ((namespace, state), count) in &counts {
                self.gauge
                    .with_label_values(&[namespace.as_str(), state.as_str()])
                    .set(*count);
                for counter in &self.job_counters {
                    counter.with_label_values(&[namespace.as_str(), FRAMEWORK]);
                }
            }
            for (namespace, since) in oldest {
                self.oldest_waiting
                    .with_label_values(&[namespace.as_str()])
                    .set((now - since).max(0.0));
            }
        }
        let mut families = self.gauge.collect();
        families.extend(self.oldest_waiting.collect());
        families
    }
}

#[cfg(test)]
mod tests;
