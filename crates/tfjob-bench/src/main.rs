//! `tfjob-bench`: tfjob-operator side by side with Kubernetes' Job controller and a bare client,
//! on a fresh local control plane (`hack/control-plane.sh`), in one go. Run it through
//! `hack/bench.sh`, which builds the release binaries first.
//!
//! Phases, each in its own namespace so the audit log attributes every request; throughput
//! figures are the median of `--repetitions` runs (3), each in a fresh namespace:
//! 1. bare client: N pods, then N/2 pod + Service pairs, `--concurrency` in flight (the ceiling),
//!    after a warm-up with the same pods; and (after the Job controller's phases, so that none
//!    runs its Jobs) N/4 requests of each kind the creators send, one kind at a time, for the
//!    CPU each costs kube-apiserver and etcd, with two variants of the TFJob CRD (A/B);
//! 2. Job controller (a kube-controller-manager running only `job`) at QPS 20/burst 30 and
//!    unthrottled, M Jobs × R pods submitted at once (end to end);
//! 3. tfjob-operator (a release binary, as a process) per-replica and per-job, the same; each
//!    side's share of its own apiserver-bound cap comes from the cost phase;
//! 4. backlog: parents stored while their controller is stopped, then it starts: first child →
//!    all pods, for the Job controller and both operator modes;
//! 5. open loop: parents arriving at fixed rates; parent stored → all pods, p50/p99;
//! 6. single-job latency on an idle control plane;
//! 7. full lifecycles to Succeeded with the simulated kubelet, batched and write-per-change,
//!    counting every operator write and timing conditions against the pod changes behind them;
//! 8. operator memory idle, with `--memory-jobs` TFJobs cached, and at a forced re-list;
//! 9. no-op reconcile CPU, from that re-list's resync and in-process;
//! 10. large jobs: peak RSS with one TFJob of 500 … 3,000 workers (standard TF_CONFIG) and
//!     10,000 (sparse), each in a fresh operator, and the fitted exponent.
//!
//! Results: a Markdown table on stdout and in `<out>/latest.md`, `<out>/latest.json`, the
//! charts `pods-over-time.png`, `backlog-pods-over-time.png`, `open-loop-latency.png`, and,
//! for a run into `bench/results`, the README's benchmark block.

mod audit;
mod chart;
mod cluster;
mod daemons;
mod micro;
mod phases;
mod procs;
mod prom;
mod readme;
mod report;
mod run;
mod watching;
mod workload;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use tfjob_core::api::ServiceMode;

use crate::cluster::ControlPlane;
use crate::phases::backlog::Controller;
use crate::phases::job_controller::Limits;
use crate::phases::tfjob::Mode;
use crate::report::{Machine, Report, Sizes};
use crate::run::{Binaries, Run};

/// Seconds since the epoch, the audit log's clock.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Benchmark tfjob-operator against Kubernetes' Job controller"
)]
struct Args {
    /// Where latest.json, latest.md and pods-over-time.png go.
    #[arg(long, default_value = DEFAULT_OUT)]
    out: PathBuf,
    /// Process logs (operator, kube-controller-manager, simulated kubelet).
    #[arg(long, default_value = "target/bench-logs")]
    logs: PathBuf,
    /// Reuse a running control plane (started with this binary's audit policy) instead of
    /// starting a fresh one.
    #[arg(long)]
    control_plane: Option<PathBuf>,
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../hack/control-plane.sh"))]
    script: PathBuf,
    /// tfjob-operator binary (default: next to this one).
    #[arg(long)]
    operator_bin: Option<PathBuf>,
    /// tfjob-sim-kubelet binary (default: next to this one).
    #[arg(long)]
    sim_kubelet_bin: Option<PathBuf>,
    /// kube-controller-manager (default: $KUBEBUILDER_ASSETS, else control-plane.sh's cache).
    #[arg(long)]
    kcm_bin: Option<PathBuf>,
    /// Pods the bare client creates.
    #[arg(long, default_value_t = 2000)]
    bare_pods: usize,
    /// Requests in flight for the bare client and for every submission.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// M: jobs per throughput phase.
    #[arg(long, default_value_t = 500)]
    jobs: usize,
    /// R: replicas (pods) per job: 1 PS + R-1 Workers.
    #[arg(long, default_value_t = 4)]
    replicas: i32,
    /// Jobs for the Job controller at its default QPS 20 (about 12 pods/s, so fewer).
    #[arg(long, default_value_t = 50)]
    jobs_default_qps: usize,
    /// Single jobs per latency series.
    #[arg(long, default_value_t = 100)]
    latency_jobs: usize,
    /// Jobs run to Succeeded per lifecycle phase.
    #[arg(long, default_value_t = 50)]
    lifecycle_jobs: usize,
    /// TFJobs cached for the memory phase.
    #[arg(long, default_value_t = 10_000)]
    memory_jobs: usize,
    /// Jobs in the in-process no-op reconcile benchmark.
    #[arg(long, default_value_t = 10_000)]
    micro_jobs: usize,
    /// Extra flag for every operator process (repeat), e.g. `--operator-arg=--concurrency=64`.
    #[arg(long = "operator-arg", allow_hyphen_values = true)]
    operator_args: Vec<String>,
    /// Parents of the backlog phase (stored before their controller starts).
    #[arg(long, default_value_t = 250)]
    backlog_jobs: usize,
    /// Arrival rates of the open-loop phase, jobs/s (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "10,20")]
    open_loop_rates: Vec<f64>,
    /// How long parents arrive in the open-loop phase, seconds.
    #[arg(long, default_value_t = 30)]
    open_loop_seconds: u64,
    /// Repetitions of each throughput figure (bare, jobs, tfjob, backlog): the median is
    /// reported, with min and max.
    #[arg(long, default_value_t = 3)]
    repetitions: usize,
    /// Phases to run (comma-separated): bare, jobs, tfjob, backlog, open-loop, latency,
    /// lifecycle, cost, memory, large, micro.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "bare,jobs,tfjob,backlog,open-loop,latency,lifecycle,cost,memory,large,micro"
    )]
    phases: Vec<String>,
    /// Tiny sizes for a correctness check (the test suite's smoke run).
    #[arg(long)]
    smoke: bool,
    /// Smaller sizes for a run of about 5 minutes (every phase, fewer jobs).
    #[arg(long, conflicts_with = "smoke")]
    quick: bool,
    /// The 1-minute load average above which the run refuses to write into the default
    /// results directory (bench/results): other work would make its figures incomparable.
    /// Runs into another `--out` only warn.
    #[arg(long, default_value_t = MAX_LOAD)]
    max_load: f64,
}

/// The documented limit of `--max-load` (docs/performance.md).
const MAX_LOAD: f64 = 1.5;

/// `--out`'s default: the results the README shows.
const DEFAULT_OUT: &str = "bench/results";

fn machine() -> Machine {
    let loadavg = load_average();
    let memory_kib: f64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next()?.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory_gib: memory_kib / 1024.0 / 1024.0,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        kubernetes: String::new(),
        load_start: loadavg,
        load_end: loadavg,
    }
}

fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut values = text.split_whitespace().filter_map(|v| v.parse().ok());
    [
        values.next().unwrap_or(0.0),
        values.next().unwrap_or(0.0),
        values.next().unwrap_or(0.0),
    ]
}

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

impl Args {
    fn sizes(&self) -> Sizes {
        // full (the flags), quick, smoke
        let pick = |full: usize, quick: usize, tiny: usize| {
            if self.smoke {
                tiny
            } else if self.quick {
                quick
            } else {
                full
            }
        };
        Sizes {
            bare_pods: pick(self.bare_pods, 500, 40),
            concurrency: self.concurrency,
            jobs: pick(self.jobs, 100, 10),
            replicas: self.replicas,
            jobs_default_qps: pick(self.jobs_default_qps, 10, 3),
            latency_jobs: pick(self.latency_jobs, 20, 5),
            lifecycle_jobs: pick(self.lifecycle_jobs, 10, 3),
            memory_jobs: pick(self.memory_jobs, 1000, 20),
            micro_jobs: pick(self.micro_jobs, 1000, 50),
            backlog_jobs: pick(self.backlog_jobs, 60, 5),
            open_loop_rates: self.open_loop_rates.clone(),
            open_loop_seconds: pick(self.open_loop_seconds as usize, 8, 1) as u64,
            repetitions: pick(self.repetitions, 3, 1),
            large_jobs: if self.smoke || self.quick {
                phases::large::SMOKE_SIZES.to_vec()
            } else {
                phases::large::SIZES.to_vec()
            },
            operator_args: self.operator_args.clone(),
        }
    }

    fn wants(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p == phase)
    }
}

async fn bench(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.logs)?;
    let logs = std::fs::canonicalize(&args.logs)?;
    let policy = logs.join("audit-policy.yaml");
    std::fs::write(&policy, audit::policy(phases::memory::NAMESPACE))?;
    let cp = match &args.control_plane {
        Some(dir) => ControlPlane::reuse(&args.script, dir),
        None => ControlPlane::start(&args.script, &policy)?,
    };
    let client = match cp.client().await {
        Ok(client) => client,
        Err(e) => {
            cp.stop();
            return Err(e);
        }
    };
    match client.apiserver_version().await {
        Ok(version) => {
            report.machine.kubernetes = version.git_version.trim_start_matches('v').to_string()
        }
        Err(e) => {
            cp.stop();
            return Err(anyhow::Error::new(e).context("reading the apiserver's version"));
        }
    }
    if let Err(e) = cluster::install_tfjob_crd(&client).await {
        cp.stop();
        return Err(e);
    }
    let mut run = Run {
        audit: audit::AuditLog::new(&cp.audit_log()),
        cp,
        client,
        bins: Binaries {
            operator: args
                .operator_bin
                .clone()
                .unwrap_or_else(|| sibling("tfjob-operator")),
            sim_kubelet: args
                .sim_kubelet_bin
                .clone()
                .unwrap_or_else(|| sibling("tfjob-sim-kubelet")),
            kcm: args
                .kcm_bin
                .clone()
                .unwrap_or_else(cluster::default_kcm_binary),
        },
        logs,
        sizes: report.sizes.clone(),
    };
    let result = phases(args, &mut run, report).await;
    run.cp.stop();
    result
}

async fn phases(args: &Args, run: &mut Run, report: &mut Report) -> anyhow::Result<()> {
    let sizes = run.sizes.clone();
    let reps = sizes.repetitions.max(1);
    if args.wants("bare") {
        eprintln!(
            "== bare client: {} pods, {} in flight, {reps} repetitions (after a warm-up)",
            sizes.bare_pods, sizes.concurrency
        );
        phases::bare::warm_up(run).await?;
        let mut runs = Vec::new();
        for rep in 0..reps {
            let (bare, line) = phases::bare::run(run, rep).await?;
            eprintln!(
                "   repetition {}/{reps}: {:.0} pods/s",
                rep + 1,
                bare.pods_per_second
            );
            runs.push((bare, line));
        }
        let ((mut bare, line), all) = median(runs, |(b, _)| b.pods_per_second)?;
        bare.runs = all;
        report.bare = Some(bare);
        report.timelines.push(line);
    }
    if args.wants("jobs") {
        for limits in [
            Limits {
                label: "unthrottled",
                qps: 5000,
                burst: 10000,
                jobs: sizes.jobs,
            },
            Limits {
                label: "default",
                qps: 20,
                burst: 30,
                jobs: sizes.jobs_default_qps,
            },
        ] {
            eprintln!(
                "== Job controller {}: {} Jobs × {} pods, {reps} repetitions",
                limits.label, limits.jobs, sizes.replicas
            );
            let mut runs = Vec::new();
            for rep in 0..reps {
                let one = phases::job_controller::run(run, &limits, rep).await?;
                eprintln!(
                    "   repetition {}/{reps}: {:.0} pods/s",
                    rep + 1,
                    one.0.pods_per_second
                );
                runs.push(one);
            }
            let ((mut creator, line), all) = median(runs, |(c, _)| c.pods_per_second)?;
            creator.runs = all;
            report.job_controller.push(creator);
            report.timelines.push(line);
        }
    }
    let modes = [Mode("per-replica"), Mode("per-job")];
    if args.wants("tfjob") {
        for mode in modes {
            eprintln!(
                "== tfjob-operator {}: {} TFJobs × {} replicas, {reps} repetitions",
                mode.0, sizes.jobs, sizes.replicas
            );
            let mut runs = Vec::new();
            for rep in 0..reps {
                let one = phases::tfjob::throughput(run, mode, rep).await?;
                eprintln!(
                    "   repetition {}/{reps}: {:.0} pods/s",
                    rep + 1,
                    one.0.pods_per_second
                );
                runs.push(one);
            }
            let ((mut creator, line), all) = median(runs, |(c, _)| c.pods_per_second)?;
            creator.runs = all;
            report.tfjob.push(creator);
            report.timelines.push(line);
        }
    }
    // Right after the end-to-end phases, before the backlog and open-loop ones leave the
    // garbage collector busy with their thousands of children.
    if args.wants("latency") {
        for mode in modes {
            eprintln!(
                "== latency {}: {} single TFJobs",
                mode.0, sizes.latency_jobs
            );
            report
                .latency
                .push(phases::tfjob::latency(run, mode).await?);
        }
    }
    if args.wants("backlog") {
        let controllers = [
            Controller::Jobs,
            Controller::Operator(modes[0]),
            Controller::Operator(modes[1]),
        ];
        eprintln!(
            "== backlog: {} parents stored, then the controller starts; {reps} repetitions of \
             the Job controller, tfjob-operator per-replica and per-job, in turns",
            sizes.backlog_jobs
        );
        report.backlog = phases::backlog::run(run, &controllers, reps).await?;
    }
    if args.wants("open-loop") {
        for &rate in &sizes.open_loop_rates {
            for controller in [Controller::Jobs, Controller::Operator(modes[0])] {
                eprintln!(
                    "== open loop, {}: {rate} parents/s for {} s",
                    controller.label(),
                    sizes.open_loop_seconds
                );
                report
                    .open_loop
                    .push(phases::open_loop::run(run, controller, rate).await?);
            }
        }
    }
    if args.wants("lifecycle") {
        for window in [STATUS_WINDOW, Duration::ZERO] {
            for mode in modes {
                eprintln!(
                    "== lifecycle {}: {} TFJobs to Succeeded, status batch window {} ms",
                    mode.0,
                    sizes.lifecycle_jobs,
                    window.as_millis()
                );
                report
                    .lifecycle
                    .push(phases::tfjob::lifecycle(run, mode, window).await?);
            }
        }
    }
    // After the Job controller's phases, which would also run this phase's Jobs.
    if args.wants("cost") {
        eprintln!(
            "== apiserver cost per request: {} of each kind, {} in flight",
            sizes.bare_pods / 4,
            sizes.concurrency
        );
        report.costs = phases::cost::run(run).await?;
    }
    if args.wants("memory") {
        eprintln!(
            "== memory: {} TFJobs cached, then a forced re-list",
            sizes.memory_jobs
        );
        report.memory = Some(phases::memory::run(run).await?);
    }
    if args.wants("large") {
        eprintln!(
            "== large jobs: peak RSS with one TFJob of (workers, sparse) {:?}",
            sizes.large_jobs
        );
        report.large = Some(phases::large::run(run).await?);
    }
    Ok(())
}

/// The operator's default `--status-batch-window`.
const STATUS_WINDOW: Duration = tfjob_core::plan::coalesce::DEFAULT_WINDOW;

/// The median repetition and every repetition's figure.
fn median<T>(runs: Vec<T>, key: impl Fn(&T) -> f64) -> anyhow::Result<(T, Vec<f64>)> {
    run::median_run(runs, key).ok_or_else(|| anyhow::anyhow!("no repetition ran"))
}

fn write_outputs(args: &Args, report: &Report) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(
        args.out.join("latest.json"),
        serde_json::to_string_pretty(report)? + "\n",
    )?;
    std::fs::write(args.out.join("latest.md"), report.table())?;
    let m = &report.machine;
    let machine = format!(
        "{} CPUs, Kubernetes {}, load average {:.2}; {}",
        m.cpus, m.kubernetes, m.load_start[0], report.started
    );
    if !report.timelines.is_empty() {
        let subtitle = format!(
            "{} × {} pods per creator (bare client: same pods), median of {} runs; {machine}",
            report.sizes.jobs, report.sizes.replicas, report.sizes.repetitions
        );
        chart::draw(
            &args.out.join("pods-over-time.png"),
            &report.timelines,
            &chart::Labels {
                title: "Pods created over time (first submit = 0)",
                x_desc: "seconds since the first job was submitted",
                subtitle: &subtitle,
            },
        )?;
    }
    if !report.backlog.is_empty() {
        let lines: Vec<_> = report.backlog.iter().map(|b| b.timeline.clone()).collect();
        let subtitle = format!(
            "{} parents × {} pods stored, then the controller started; median of {} runs; {machine}",
            report.sizes.backlog_jobs, report.sizes.replicas, report.sizes.repetitions
        );
        chart::draw(
            &args.out.join("backlog-pods-over-time.png"),
            &lines,
            &chart::Labels {
                title: "Backlog: pods created over time (first child = 0)",
                x_desc: "seconds since the controller's first child",
                subtitle: &subtitle,
            },
        )?;
    }
    if !report.open_loop.is_empty() {
        let subtitle = format!(
            "{} s of arrivals per rate, {} pods per parent; {machine}",
            report.sizes.open_loop_seconds, report.sizes.replicas
        );
        chart::draw_rates(
            &args.out.join("open-loop-latency.png"),
            &chart::open_loop_series(&report.open_loop),
            &subtitle,
        )?;
    }
    if args.out == std::path::Path::new(DEFAULT_OUT) {
        readme::update(std::path::Path::new("README.md"), report)?;
    }
    Ok(())
}

/// Refuses a run into the default results directory on a busy machine. Right after
/// `hack/bench.sh`'s release build the load average is high but falling: wait up to two
/// minutes for it, saying so.
fn check_load(args: &Args) -> Result<(), std::process::ExitCode> {
    let default_out = args.out == std::path::Path::new(DEFAULT_OUT);
    let waited = Instant::now();
    let mut load = load_average()[0];
    while default_out && load > args.max_load && waited.elapsed() < Duration::from_secs(120) {
        eprintln!(
            "waiting for the load average to fall below {:.2} (now {load:.2}, {:.0} s so far)",
            args.max_load,
            waited.elapsed().as_secs_f64()
        );
        std::thread::sleep(Duration::from_secs(10));
        load = load_average()[0];
    }
    if load <= args.max_load {
        return Ok(());
    }
    if default_out {
        eprintln!(
            "error: the load average is {load:.2}, above {:.2}: other work would skew the \
             figures, so this run will not replace {DEFAULT_OUT}. Stop what else runs on this \
             machine, or pass --out <dir> (or a higher --max-load) for a run to look at",
            args.max_load
        );
        return Err(std::process::ExitCode::from(2));
    }
    eprintln!(
        "warning: the load average is {load:.2} (above {:.2}): figures will be lower than on an idle machine",
        args.max_load
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let started = Instant::now();
    if let Err(code) = check_load(&args) {
        return code;
    }
    let mut report = Report {
        schema: 1,
        started: jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .map_or_else(|_| String::new(), |t| t.to_string()),
        machine: machine(),
        sizes: args.sizes(),
        ..Default::default()
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut result = runtime.block_on(bench(&args, &mut report));
    if result.is_ok() && args.wants("micro") {
        eprintln!(
            "== no-op reconcile in-process: {} jobs",
            report.sizes.micro_jobs
        );
        match micro::run(
            report.sizes.micro_jobs,
            report.sizes.replicas,
            ServiceMode::PerReplica,
            3,
        ) {
            Ok(noop) => report.noop = Some(noop),
            Err(e) => result = Err(e.context("the in-process no-op benchmark")),
        }
    }
    report.machine.load_end = load_average();
    report.seconds = started.elapsed().as_secs_f64();
    report.evaluate();
    println!("{}", report.table());
    if let Err(e) = result {
        // A partial run must not replace the latest complete results.
        let _ = std::fs::create_dir_all(&args.out);
        let _ = serde_json::to_string_pretty(&report)
            .map(|json| std::fs::write(args.out.join("failed-run.json"), json));
        eprintln!("error: {e:#}");
        return std::process::ExitCode::FAILURE;
    }
    if let Err(e) = write_outputs(&args, &report) {
        eprintln!("error: cannot write the results: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
