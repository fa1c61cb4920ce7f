//! `tfjob-bench`: tfjob-operator side by side with Kubernetes' Job controller and a bare client,
//! on a fresh local control plane (`hack/control-plane.sh`), in one go. Run it through
//! `hack/bench.sh`, which builds the release binaries first.
//!
//! Phases, each in its own namespace so the audit log attributes every request:
//! 1. bare client: N pods, then N/2 pod + Service pairs, `--concurrency` in flight (the ceiling);
//!    and (after phase 4, so that no Job controller runs its Jobs) N/4 requests of each kind the
//!    creators send, one kind at a time, for the CPU each costs kube-apiserver and etcd;
//! 2. Job controller (a kube-controller-manager running only `job`) at QPS 20/burst 30 and
//!    unthrottled, M Jobs × R pods;
//! 3. tfjob-operator (a release binary, as a process) per-replica and per-job: M TFJobs × R
//!    replicas submitted at once, then single jobs one at a time for latency;
//! 4. full lifecycles to Succeeded with the simulated kubelet, counting every operator write;
//! 5. operator memory idle, with `--memory-jobs` TFJobs cached, and at a forced re-list;
//! 6. no-op reconcile CPU, from that re-list's resync and in-process;
//! 7. large jobs: peak RSS with one TFJob of 500 … 3,000 workers (standard TF_CONFIG) and
//!    10,000 (sparse), each in a fresh operator, and the fitted exponent.
//!
//! Results: a Markdown table on stdout and in `<out>/latest.md`, `<out>/latest.json`, and the
//! chart `<out>/pods-over-time.png`.

mod audit;
mod chart;
mod cluster;
mod daemons;
mod micro;
mod phases;
mod procs;
mod prom;
mod report;
mod run;
mod workload;

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use tfjob_core::api::ServiceMode;

use crate::cluster::ControlPlane;
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
    #[arg(long, default_value = "bench/results")]
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
    /// Phases to run (comma-separated): bare, jobs, tfjob, latency, lifecycle, cost, memory,
    /// large, micro.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "bare,jobs,tfjob,latency,lifecycle,cost,memory,large,micro"
    )]
    phases: Vec<String>,
    /// Tiny sizes for a correctness check (the test suite's smoke run).
    #[arg(long)]
    smoke: bool,
}

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
        kubernetes: "1.20.2".into(),
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
        let smoke = |full: usize, tiny: usize| if self.smoke { tiny } else { full };
        Sizes {
            bare_pods: smoke(self.bare_pods, 40),
            concurrency: self.concurrency,
            jobs: smoke(self.jobs, 10),
            replicas: self.replicas,
            jobs_default_qps: smoke(self.jobs_default_qps, 3),
            latency_jobs: smoke(self.latency_jobs, 5),
            lifecycle_jobs: smoke(self.lifecycle_jobs, 3),
            memory_jobs: smoke(self.memory_jobs, 20),
            micro_jobs: smoke(self.micro_jobs, 50),
            large_jobs: if self.smoke {
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
    if args.wants("bare") {
        eprintln!(
            "== bare client: {} pods, {} in flight",
            sizes.bare_pods, sizes.concurrency
        );
        let (bare, line) = phases::bare::run(run).await?;
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
                "== Job controller {}: {} Jobs × {} pods",
                limits.label, limits.jobs, sizes.replicas
            );
            let (creator, line) = phases::job_controller::run(run, &limits).await?;
            report.job_controller.push(creator);
            report.timelines.push(line);
        }
    }
    let modes = [Mode("per-replica"), Mode("per-job")];
    if args.wants("tfjob") {
        for mode in modes {
            eprintln!(
                "== tfjob-operator {}: {} TFJobs × {} replicas",
                mode.0, sizes.jobs, sizes.replicas
            );
            let (creator, line) = phases::tfjob::throughput(run, mode).await?;
            report.tfjob.push(creator);
            report.timelines.push(line);
        }
    }
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
    if args.wants("lifecycle") {
        for mode in modes {
            eprintln!(
                "== lifecycle {}: {} TFJobs to Succeeded",
                mode.0, sizes.lifecycle_jobs
            );
            report
                .lifecycle
                .push(phases::tfjob::lifecycle(run, mode).await?);
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

fn write_outputs(args: &Args, report: &Report) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(
        args.out.join("latest.json"),
        serde_json::to_string_pretty(report)? + "\n",
    )?;
    std::fs::write(args.out.join("latest.md"), report.table())?;
    if !report.timelines.is_empty() {
        let m = &report.machine;
        let subtitle = format!(
            "{} × {} pods per creator ({}), {} CPUs, Kubernetes {}, load average {:.2}; {}",
            report.sizes.jobs,
            report.sizes.replicas,
            "bare client: same pods",
            m.cpus,
            m.kubernetes,
            m.load_start[0],
            report.started
        );
        chart::draw(
            &args.out.join("pods-over-time.png"),
            &report.timelines,
            &subtitle,
        )?;
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let started = Instant::now();
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
