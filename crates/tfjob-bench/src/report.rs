//! The results of a run: what is written as JSON, printed as a table, and checked against the
//! issue's targets.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default, Debug)]
pub struct Report {
    /// Bumped when fields change meaning.
    pub schema: u32,
    pub started: String,
    pub seconds: f64,
    pub machine: Machine,
    pub sizes: Sizes,
    pub bare: Option<Bare>,
    /// kube-apiserver and etcd CPU per request, by kind.
    #[serde(default)]
    pub costs: Vec<RequestCost>,
    /// kube-controller-manager's Job controller, at its default client limits and unthrottled.
    pub job_controller: Vec<Creator>,
    /// tfjob-operator, per-replica and per-job Service mode.
    pub tfjob: Vec<Creator>,
    pub latency: Vec<Latency>,
    pub lifecycle: Vec<Lifecycle>,
    /// Parents stored while their controller was stopped, then the controller started.
    #[serde(default)]
    pub backlog: Vec<Backlog>,
    /// Parents arriving at a fixed rate.
    #[serde(default)]
    pub open_loop: Vec<OpenLoop>,
    pub memory: Option<Memory>,
    /// Peak RSS with one large TFJob (phase `large`).
    #[serde(default)]
    pub large: Option<Large>,
    pub noop: Option<Noop>,
    pub targets: Vec<Target>,
    /// Pods created over time per creator, for the chart.
    pub timelines: Vec<Timeline>,
}

#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct Machine {
    pub cpus: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub kubernetes: String,
    /// 1/5/15-minute load averages when the run started and ended.
    pub load_start: [f64; 3],
    pub load_end: [f64; 3],
}

#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct Sizes {
    pub bare_pods: usize,
    pub concurrency: usize,
    pub jobs: usize,
    pub replicas: i32,
    pub jobs_default_qps: usize,
    pub latency_jobs: usize,
    pub lifecycle_jobs: usize,
    pub memory_jobs: usize,
    pub micro_jobs: usize,
    /// Parents of the backlog phase.
    #[serde(default)]
    pub backlog_jobs: usize,
    /// Arrival rates (jobs/s) of the open-loop phase, and how long each arrives.
    #[serde(default)]
    pub open_loop_rates: Vec<f64>,
    #[serde(default)]
    pub open_loop_seconds: u64,
    /// Repetitions of each throughput figure (its median is reported, with min and max).
    #[serde(default)]
    pub repetitions: usize,
    /// The large-jobs phase: (workers, enableDynamicWorker) of each job.
    #[serde(default)]
    pub large_jobs: Vec<(u32, bool)>,
    pub operator_args: Vec<String>,
}

/// The bare client's ceiling: pods, then pod+Service pairs, `concurrency` requests in flight.
#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct Bare {
    pub pods: usize,
    pub concurrency: usize,
    /// First request received → last response, server side.
    pub seconds: f64,
    pub pods_per_second: f64,
    pub pairs: usize,
    pub pairs_seconds: f64,
    pub pair_writes_per_second: f64,
    pub errors: usize,
    /// pods/s of each repetition (`pods_per_second` is their median).
    #[serde(default)]
    pub runs: Vec<f64>,
}

/// What one kind of request costs the apiserver and etcd, sent alone at the bare client's
/// concurrency.
#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct RequestCost {
    pub kind: String,
    pub requests: usize,
    pub errors: usize,
    pub per_second: f64,
    pub apiserver_cpu_ms: f64,
    pub etcd_cpu_ms: f64,
}

/// One creator of pods: the Job controller at some client limit, or tfjob-operator in a mode.
#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct Creator {
    pub name: String,
    pub jobs: usize,
    pub pods: usize,
    /// First job submitted → last pod created (server side).
    pub seconds: f64,
    pub pods_per_second: f64,
    /// Pod, Service and job-status writes by the creator per second over the same window.
    pub object_writes_per_second: f64,
    /// Every write by the creator, by `verb resource[/subresource]`, per job.
    pub writes_per_job: BTreeMap<String, f64>,
    /// Pods, Services and job status writes per job.
    pub object_writes_per_job: f64,
    pub events_per_job: f64,
    pub conflicts: usize,
    /// GETs and LISTs by the creator after it was ready (operator only).
    pub reads_after_sync: usize,
    pub submit_errors: usize,
    /// `apiserver_request_total` change over the phase (every client), by `verb resource code`.
    pub apiserver_requests: BTreeMap<String, f64>,
    /// pods/s of each repetition; the creator's other figures are from the median one.
    #[serde(default)]
    pub runs: Vec<f64>,
    /// Every request of the window (parents submitted and the creator's writes), per job.
    #[serde(default)]
    pub window_writes_per_job: BTreeMap<String, f64>,
    /// CPU per job over the window by process: kube-apiserver, etcd, the controller,
    /// kube-controller-manager (garbage collector), the benchmark (submitting parents).
    #[serde(default)]
    pub cpu_ms_per_job: BTreeMap<String, f64>,
}

/// Phase *backlog*: M parents stored while their controller is stopped; the controller
/// starts and turns them into pods. First child → all pods created, per repetition.
#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct Backlog {
    pub creator: String,
    pub jobs: usize,
    pub pods: usize,
    /// Median of `runs`.
    pub pods_per_second: f64,
    pub runs: Vec<f64>,
    /// The controller's writes per job, by kind, in the median repetition.
    pub writes_per_job: BTreeMap<String, f64>,
    /// Pods created over time in the median repetition (first child = 0).
    pub timeline: Timeline,
}

/// Phase *open loop*: parents arrive at `rate` per second; parent stored → all its pods.
#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct OpenLoop {
    pub creator: String,
    pub rate: f64,
    pub jobs: usize,
    /// Jobs whose pods were all created (the rest count as failures of the phase).
    pub complete: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct Latency {
    pub mode: String,
    pub jobs: usize,
    /// TFJob create received → last of its pods and Services created, server side.
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub timeouts: usize,
}

#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct Lifecycle {
    pub mode: String,
    pub jobs: usize,
    pub succeeded: usize,
    pub seconds: f64,
    pub writes_per_job: BTreeMap<String, f64>,
    pub object_writes_per_job: f64,
    pub events_per_job: f64,
    pub conflicts: usize,
    pub reads_after_sync: usize,
    /// `--status-batch-window` of the run, in ms (0: every change written at once).
    #[serde(default)]
    pub window_ms: f64,
    /// Pod change → the job condition it causes (first pod Running → Running, worker 0
    /// Succeeded → Succeeded), as two watches of the benchmark saw them.
    #[serde(default)]
    pub condition_delay_p50_ms: f64,
    #[serde(default)]
    pub condition_delay_p99_ms: f64,
    #[serde(default)]
    pub conditions_timed: usize,
}

#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct Large {
    pub jobs: Vec<LargeJob>,
    /// Of peak RSS against workers, standard TF_CONFIG (1 = linear, 2 = quadratic).
    pub exponent: f64,
}

#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct LargeJob {
    pub workers: u32,
    /// `enableDynamicWorker`: the sparse TF_CONFIG.
    pub dynamic: bool,
    /// From the TFJob's create to all pods and Services created.
    pub seconds: f64,
    pub idle_rss_kib: u64,
    pub peak_rss_kib: u64,
}

#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct Memory {
    pub mode: String,
    pub jobs: usize,
    pub pods: usize,
    pub services: usize,
    pub idle_rss_kib: u64,
    pub steady_rss_kib: u64,
    /// (steady − idle) / jobs.
    pub per_job_kib: f64,
    /// Seconds from the first TFJob submitted to all children created.
    pub fill_seconds: f64,
    pub relist_peak_rss_kib: u64,
    pub relist_peak_ratio: f64,
    pub after_relist_rss_kib: u64,
    /// LIST requests the operator made for the re-list (proves it happened).
    pub relist_lists: f64,
    pub relist_seconds: f64,
    pub resync_reconciles: f64,
    /// Operator CPU over the re-list ÷ reconciles: includes decoding the re-listed objects.
    pub resync_cpu_us_per_reconcile: f64,
    /// Mean of `tfjob_operator_reconcile_duration_seconds` over the resync (wall time of the
    /// reconcile function; a no-op awaits nothing).
    pub resync_mean_reconcile_us: f64,
    /// RSS samples (seconds since the restart, KiB) during the re-list.
    pub relist_rss: Vec<(f64, u64)>,
}

/// CPU of a no-op reconcile measured in-process: the operator's own `reconcile` on caches
/// holding `jobs` steady-state jobs, run on one thread.
#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct Noop {
    pub jobs: usize,
    pub reconciles: usize,
    pub cpu_us_per_reconcile: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct Target {
    pub what: String,
    pub target: String,
    pub value: String,
    pub met: bool,
}

#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct Timeline {
    pub label: String,
    /// (seconds since the first submit, pods created so far).
    pub points: Vec<(f64, usize)>,
}

pub fn fmt_f(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The cost-phase row that prices a write of this audit kind (`verb resource[/sub]`).
fn cost_row(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "create pods" => "create pod",
        "create services" => "create headless Service",
        "create tfjobs" => "create TFJob",
        "patch tfjobs/status" | "update tfjobs/status" => "patch TFJob status",
        "create jobs" => "create Job",
        "update jobs/status" | "patch jobs/status" => "update Job status",
        "create events" | "patch events" => "create event",
        _ => return None,
    })
}

/// `min–max` of repetitions, or "" for a single run.
fn spread(runs: &[f64]) -> String {
    if runs.len() < 2 {
        return String::new();
    }
    let min = runs.iter().copied().fold(f64::MAX, f64::min);
    let max = runs.iter().copied().fold(f64::MIN, f64::max);
    format!(" ({}–{} over {})", fmt_f(min), fmt_f(max), runs.len())
}

/// An end-to-end creator's share of its own apiserver-bound cap.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    pub creator: String,
    pub pods_per_second: f64,
    /// apiserver + etcd CPU of a job's requests in the window (its parent's create included).
    pub cost_ms_per_job: f64,
    /// pods/s if the apiserver and etcd had every CPU of the machine.
    pub cap_pods_per_second: f64,
    pub share: f64,
}

impl Report {
    /// apiserver + etcd CPU (ms) that `writes` (per job, by audit kind) cost at this run's
    /// prices; `None` without a cost phase. Kinds no row prices count as free.
    pub fn cost_per_job(&self, writes: &BTreeMap<String, f64>) -> Option<f64> {
        if self.costs.is_empty() {
            return None;
        }
        let price = |row: &str| {
            self.costs
                .iter()
                .find(|c| c.kind == row)
                .map_or(0.0, |c| c.apiserver_cpu_ms + c.etcd_cpu_ms)
        };
        Some(
            writes
                .iter()
                .filter_map(|(kind, n)| Some(n * price(cost_row(kind)?)))
                .sum(),
        )
    }

    /// Each end-to-end creator's share of its own apiserver-bound cap.
    pub fn shares(&self) -> Vec<Share> {
        let cpus = self.machine.cpus.max(1) as f64;
        self.job_controller
            .iter()
            .chain(&self.tfjob)
            .filter(|c| !c.window_writes_per_job.is_empty())
            .filter_map(|c| {
                let cost = self.cost_per_job(&c.window_writes_per_job)?;
                let pods_per_job = c.pods as f64 / c.jobs.max(1) as f64;
                let cap = cpus * 1000.0 / cost.max(1e-9) * pods_per_job;
                Some(Share {
                    creator: c.name.clone(),
                    pods_per_second: c.pods_per_second,
                    cost_ms_per_job: cost,
                    cap_pods_per_second: cap,
                    share: c.pods_per_second / cap,
                })
            })
            .collect()
    }

    /// Compares the run with the targets.
    pub fn evaluate(&mut self) {
        let mut targets = Vec::new();
        let mut push = |what: &str, target: String, value: String, met: bool| {
            targets.push(Target {
                what: what.into(),
                target,
                value,
                met,
            })
        };
        let tf = |mode: &str| self.tfjob.iter().find(|c| c.name.ends_with(mode));
        for life in self.lifecycle.iter().filter(|l| l.window_ms > 0.0) {
            let patches = life
                .writes_per_job
                .get("patch tfjobs/status")
                .copied()
                .unwrap_or(0.0);
            push(
                &format!("status patches per TFJob lifecycle ({})", life.mode),
                "≤ 3.0".into(),
                fmt_f(patches),
                patches <= 3.0 + 1e-9 && life.succeeded == life.jobs,
            );
            let baseline = self
                .lifecycle
                .iter()
                .find(|l| l.mode == life.mode && l.window_ms == 0.0);
            if let (Some(base), Some(now)) = (
                baseline.and_then(|b| self.cost_per_job(&b.writes_per_job)),
                self.cost_per_job(&life.writes_per_job),
            ) {
                let fall = 1.0 - now / base.max(1e-9);
                push(
                    &format!(
                        "operator-caused apiserver + etcd CPU per lifecycle, batched vs every change ({})",
                        life.mode
                    ),
                    "≥ 35% less".into(),
                    format!(
                        "{:.0}% less ({} → {} ms)",
                        fall * 100.0,
                        fmt_f(base),
                        fmt_f(now)
                    ),
                    fall >= 0.35,
                );
            }
            push(
                &format!(
                    "pod change → condition p99, window {} ms ({})",
                    life.window_ms, life.mode
                ),
                format!("≤ {} ms", fmt_f(1.1 * life.window_ms)),
                format!(
                    "{} ms (p50 {} ms, {} conditions)",
                    fmt_f(life.condition_delay_p99_ms),
                    fmt_f(life.condition_delay_p50_ms),
                    life.conditions_timed
                ),
                life.conditions_timed > 0 && life.condition_delay_p99_ms <= 1.1 * life.window_ms,
            );
        }
        let backlog_jobs = self.backlog.iter().find(|b| b.creator == "Job controller");
        for (mode, factor) in [("per-job", 1.25), ("per-replica", 1.1)] {
            let ours = self.backlog.iter().find(|b| b.creator.ends_with(mode));
            if let (Some(ours), Some(theirs)) = (ours, backlog_jobs) {
                let ratio = ours.pods_per_second / theirs.pods_per_second.max(1e-9);
                push(
                    &format!("backlog pods/s vs the Job controller ({mode})"),
                    format!("≥ {factor}×"),
                    format!(
                        "{ratio:.2}× ({} vs {})",
                        fmt_f(ours.pods_per_second),
                        fmt_f(theirs.pods_per_second)
                    ),
                    ratio >= factor,
                );
            }
        }
        for ours in self
            .open_loop
            .iter()
            .filter(|o| o.creator.starts_with("tfjob"))
        {
            let theirs = self
                .open_loop
                .iter()
                .find(|o| o.creator == "Job controller" && o.rate == ours.rate);
            if let Some(theirs) = theirs {
                push(
                    &format!(
                        "open loop {}/s: p99 parent stored → all pods",
                        fmt_f(ours.rate)
                    ),
                    format!("≤ Job controller's ({} ms)", fmt_f(theirs.p99_ms)),
                    format!("{} ms", fmt_f(ours.p99_ms)),
                    ours.p99_ms <= theirs.p99_ms && ours.complete == ours.jobs,
                );
            }
        }
        for share in self
            .shares()
            .iter()
            .filter(|s| s.creator.starts_with("tfjob"))
        {
            push(
                &format!(
                    "end to end: share of own apiserver-bound cap ({})",
                    share.creator
                ),
                "≥ 0.85".into(),
                format!(
                    "{:.2} ({} of {} pods/s)",
                    share.share,
                    fmt_f(share.pods_per_second),
                    fmt_f(share.cap_pods_per_second)
                ),
                share.share >= 0.85,
            );
        }
        for latency in &self.latency {
            push(
                &format!("single-job latency p99 ({})", latency.mode),
                "≤ 100 ms".into(),
                format!(
                    "{} ms (p50 {} ms)",
                    fmt_f(latency.p99_ms),
                    fmt_f(latency.p50_ms)
                ),
                latency.p99_ms <= 100.0 && latency.timeouts == 0,
            );
        }
        for (mode, limit) in [("per-replica", 9.0), ("per-job", 6.0)] {
            if let Some(c) = tf(mode) {
                push(
                    &format!("object writes per TFJob to all pods created ({mode})"),
                    format!("≤ {limit}"),
                    fmt_f(c.object_writes_per_job),
                    c.object_writes_per_job <= limit + 1e-9,
                );
            }
        }
        for life in self.lifecycle.iter().filter(|l| l.window_ms > 0.0) {
            push(
                &format!("events per TFJob lifecycle ({})", life.mode),
                "≤ 6".into(),
                fmt_f(life.events_per_job),
                life.events_per_job <= 6.0 && life.succeeded == life.jobs,
            );
        }
        let conflicts: usize = self.tfjob.iter().map(|c| c.conflicts).sum::<usize>()
            + self.lifecycle.iter().map(|l| l.conflicts).sum::<usize>();
        push(
            "409 conflicts",
            "0".into(),
            conflicts.to_string(),
            conflicts == 0,
        );
        let reads: usize = self.tfjob.iter().map(|c| c.reads_after_sync).sum::<usize>()
            + self
                .lifecycle
                .iter()
                .map(|l| l.reads_after_sync)
                .sum::<usize>();
        push(
            "reads after initial sync",
            "0".into(),
            reads.to_string(),
            reads == 0,
        );
        if let Some(m) = &self.memory {
            push(
                "idle RSS",
                "≤ 11 MiB".into(),
                format!("{:.1} MiB", m.idle_rss_kib as f64 / 1024.0),
                m.idle_rss_kib <= 11 * 1024,
            );
            push(
                &format!("RSS per cached TFJob incl. children ({} jobs)", m.jobs),
                "≤ 6 KiB".into(),
                format!("{:.2} KiB", m.per_job_kib),
                m.per_job_kib <= 6.0,
            );
            push(
                "re-list peak RSS vs steady",
                "≤ 1.2×".into(),
                format!("{:.2}×", m.relist_peak_ratio),
                m.relist_peak_ratio <= 1.2 && m.relist_lists > 0.0,
            );
        }
        if let Some(n) = &self.noop {
            push(
                "no-op reconcile CPU",
                "≤ 50 µs".into(),
                format!("{:.1} µs", n.cpu_us_per_reconcile),
                n.cpu_us_per_reconcile <= 50.0,
            );
        }
        self.targets = targets;
    }

    /// The results as a Markdown table (what docs/performance.md shows).
    pub fn table(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "Machine: {} CPUs, {:.0} GiB, Linux {}, Kubernetes {}; load average {:.2} at start, {:.2} at end; {}; run took {:.0} s.\n",
            m.cpus,
            m.memory_gib,
            m.kernel,
            m.kubernetes,
            m.load_start[0],
            m.load_end[0],
            self.started,
            self.seconds
        );
        let _ = writeln!(
            out,
            "| creator | jobs × pods | first submit → all pods | pods/s | object writes/s | object writes per job | events per job | 409s | reads after sync |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
        if let Some(b) = &self.bare {
            let _ = writeln!(
                out,
                "| bare client, {} in flight (pods) | {} pods | {:.2} s | **{}**{} | {} | – | – | – | – |",
                b.concurrency,
                b.pods,
                b.seconds,
                fmt_f(b.pods_per_second),
                spread(&b.runs),
                fmt_f(b.pods_per_second)
            );
            let _ = writeln!(
                out,
                "| bare client, {} in flight (pod + Service pairs) | {} pairs | {:.2} s | {} | {} | – | – | – | – |",
                b.concurrency,
                b.pairs,
                b.pairs_seconds,
                fmt_f(b.pair_writes_per_second / 2.0),
                fmt_f(b.pair_writes_per_second)
            );
        }
        for c in self.job_controller.iter().chain(&self.tfjob) {
            let _ = writeln!(
                out,
                "| {} | {} × {} | {:.2} s | **{}**{} | {} | {} | {} | {} | {} |",
                c.name,
                c.jobs,
                c.pods / c.jobs.max(1),
                c.seconds,
                fmt_f(c.pods_per_second),
                spread(&c.runs),
                fmt_f(c.object_writes_per_second),
                fmt_f(c.object_writes_per_job),
                fmt_f(c.events_per_job),
                c.conflicts,
                if c.name.starts_with("tfjob") {
                    c.reads_after_sync.to_string()
                } else {
                    "–".into()
                }
            );
        }
        let shares = self.shares();
        if !shares.is_empty() {
            let _ = writeln!(
                out,
                "\n| end to end: share of own apiserver-bound cap | pods/s | apiserver + etcd CPU per job (parent included) | cap on {} CPUs | share | measured CPU per job over the window |\n|---|---|---|---|---|---|",
                self.machine.cpus
            );
            for s in &shares {
                let measured: Vec<String> = self
                    .job_controller
                    .iter()
                    .chain(&self.tfjob)
                    .find(|c| c.name == s.creator)
                    .map(|c| {
                        c.cpu_ms_per_job
                            .iter()
                            .map(|(k, v)| format!("{k} {} ms", fmt_f(*v)))
                            .collect()
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "| {} | {} | {} ms | {} pods/s | **{:.2}** | {} |",
                    s.creator,
                    fmt_f(s.pods_per_second),
                    fmt_f(s.cost_ms_per_job),
                    fmt_f(s.cap_pods_per_second),
                    s.share,
                    measured.join(", ")
                );
            }
        }
        if !self.backlog.is_empty() {
            let _ = writeln!(
                out,
                "\n| backlog: parents stored, then the controller starts | jobs × pods | first child → all pods: pods/s | writes per job |\n|---|---|---|---|"
            );
            for b in &self.backlog {
                let writes: Vec<String> = b
                    .writes_per_job
                    .iter()
                    .map(|(k, v)| format!("{k} {}", fmt_f(*v)))
                    .collect();
                let _ = writeln!(
                    out,
                    "| {} | {} × {} | **{}**{} | {} |",
                    b.creator,
                    b.jobs,
                    b.pods / b.jobs.max(1),
                    fmt_f(b.pods_per_second),
                    spread(&b.runs),
                    writes.join(", ")
                );
            }
        }
        if !self.open_loop.is_empty() {
            let _ = writeln!(
                out,
                "\n| open loop: parents arriving at a fixed rate | parents/s | parents | parent stored → all pods p50 | p99 | max |\n|---|---|---|---|---|---|"
            );
            for o in &self.open_loop {
                let _ = writeln!(
                    out,
                    "| {} | {} | {}/{} | {} ms | **{} ms** | {} ms |",
                    o.creator,
                    fmt_f(o.rate),
                    o.complete,
                    o.jobs,
                    fmt_f(o.p50_ms),
                    fmt_f(o.p99_ms),
                    fmt_f(o.max_ms)
                );
            }
        }
        if let Some(first) = self.costs.first() {
            let _ = writeln!(
                out,
                "\n| apiserver cost per request ({} of one kind at a time, {} in flight) | requests/s | kube-apiserver CPU | etcd CPU | errors |",
                first.requests, self.sizes.concurrency
            );
            let _ = writeln!(out, "|---|---|---|---|---|");
            for c in &self.costs {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} ms | {} ms | {} |",
                    c.kind,
                    fmt_f(c.per_second),
                    fmt_f(c.apiserver_cpu_ms),
                    fmt_f(c.etcd_cpu_ms),
                    c.errors
                );
            }
        }
        if !self.latency.is_empty() {
            let _ = writeln!(
                out,
                "\n| single TFJob on an idle control plane: create → all pods and Services | jobs | p50 | p90 | p99 | max |"
            );
            let _ = writeln!(out, "|---|---|---|---|---|---|");
            for l in &self.latency {
                let _ = writeln!(
                    out,
                    "| tfjob-operator {} | {} | {} ms | {} ms | **{} ms** | {} ms |",
                    l.mode,
                    l.jobs,
                    fmt_f(l.p50_ms),
                    fmt_f(l.p90_ms),
                    fmt_f(l.p99_ms),
                    fmt_f(l.max_ms)
                );
            }
        }
        if !self.lifecycle.is_empty() {
            let _ = writeln!(
                out,
                "\n| full lifecycle to Succeeded (simulated kubelet) | status batch window | jobs | status patches per job | apiserver + etcd CPU per job | pod change → condition p50 / p99 | object writes per job | events per job | all operator writes per job | 409s | reads after sync |"
            );
            let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
            for l in &self.lifecycle {
                let detail: Vec<String> = l
                    .writes_per_job
                    .iter()
                    .map(|(k, v)| format!("{k} {}", fmt_f(*v)))
                    .collect();
                let patches = l
                    .writes_per_job
                    .get("patch tfjobs/status")
                    .copied()
                    .unwrap_or(0.0);
                let cost = self
                    .cost_per_job(&l.writes_per_job)
                    .map_or("–".into(), |c| format!("{} ms", fmt_f(c)));
                let _ = writeln!(
                    out,
                    "| tfjob-operator {} | {} ms | {}/{} succeeded | **{}** | {} | {} / {} ms | {} | {} | {} | {} | {} |",
                    l.mode,
                    l.window_ms,
                    l.succeeded,
                    l.jobs,
                    fmt_f(patches),
                    cost,
                    fmt_f(l.condition_delay_p50_ms),
                    fmt_f(l.condition_delay_p99_ms),
                    fmt_f(l.object_writes_per_job),
                    fmt_f(l.events_per_job),
                    detail.join(", "),
                    l.conflicts,
                    l.reads_after_sync
                );
            }
        }
        if let Some(large) = &self.large {
            let _ = writeln!(
                out,
                "\n| one large TFJob (no kubelet) | children created in | operator peak RSS |\n|---|---|---|"
            );
            for j in &large.jobs {
                let _ = writeln!(
                    out,
                    "| 1 PS + {} workers, {} TF_CONFIG | {:.1} s | **{:.1} MiB** |",
                    j.workers,
                    if j.dynamic { "sparse" } else { "standard" },
                    j.seconds,
                    j.peak_rss_kib as f64 / 1024.0
                );
            }
            let _ = writeln!(
                out,
                "\nPeak RSS grows as workers^{:.2} in the standard form (1 would be linear, 2 quadratic).",
                large.exponent
            );
        }
        if let Some(mem) = &self.memory {
            let _ = writeln!(
                out,
                "\n| operator memory ({}) | value |\n|---|---|",
                mem.mode
            );
            let _ = writeln!(
                out,
                "| idle RSS (watches established, 0 TFJobs) | **{:.1} MiB** |",
                mem.idle_rss_kib as f64 / 1024.0
            );
            let _ = writeln!(
                out,
                "| RSS with {} TFJobs, {} pods, {} Services cached | {:.1} MiB → **{:.2} KiB per TFJob** |",
                mem.jobs,
                mem.pods,
                mem.services,
                mem.steady_rss_kib as f64 / 1024.0,
                mem.per_job_kib
            );
            let _ = writeln!(
                out,
                "| peak RSS during a forced re-list (apiserver restart, {:.0} LISTs) | {:.1} MiB = **{:.2}× steady** (after: {:.1} MiB) |",
                mem.relist_lists,
                mem.relist_peak_rss_kib as f64 / 1024.0,
                mem.relist_peak_ratio,
                mem.after_relist_rss_kib as f64 / 1024.0
            );
            let _ = writeln!(
                out,
                "| resync after the re-list: {:.0} reconciles | mean reconcile {:.1} µs; process CPU incl. decoding the re-list {:.1} µs per reconcile |",
                mem.resync_reconciles,
                mem.resync_mean_reconcile_us,
                mem.resync_cpu_us_per_reconcile
            );
        }
        if let Some(n) = &self.noop {
            let _ = writeln!(
                out,
                "| no-op reconcile, in-process over {} cached jobs ({} calls) | **{:.1} µs CPU** (wall p50 {:.1} µs, p99 {:.1} µs) |",
                n.jobs, n.reconciles, n.cpu_us_per_reconcile, n.p50_us, n.p99_us
            );
        }
        if !self.targets.is_empty() {
            out.push_str(&self.targets_table());
        }
        out
    }

    /// The targets as a Markdown table, after a blank line (the table's and the README's).
    pub fn targets_table(&self) -> String {
        let mut out = String::from("\n| target | wanted | measured | met |\n|---|---|---|---|\n");
        for t in &self.targets {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                t.what,
                t.target,
                t.value,
                if t.met { "yes" } else { "**no**" }
            );
        }
        out
    }
}
