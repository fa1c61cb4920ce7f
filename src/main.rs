//! The `tfjob-operator` binary: command line and process lifecycle only; everything testable
//! lives in the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::sync::watch;
use tracing::{error, info, warn};

use tfjob_core::api::ServiceMode;
use tfjob_core::api::podgroup::GangScheduler;
use tfjob_core::plan::PlanConfig;
use tfjob_operator::config::{self, RunArgs};
use tfjob_operator::controller::{self, Settings};
use tfjob_operator::ops::{self, LeaderElection, LeaderState, Metrics, OpsServer, Readiness};
use tfjob_operator::webhook::Webhook;

#[derive(Parser)]
#[command(
    name = "tfjob-operator",
    version,
    about = "Kubernetes operator for Kubeflow TFJobs (kubeflow.org/v1)",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand the operator runs, taking `run`'s flags (as upstream's binary does).
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator (the default).
    Run(Box<RunArgs>),
    /// Print the tfjobs.kubeflow.org CustomResourceDefinition as YAML.
    Crd,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crd) => print_crd(),
        Some(Command::Run(args)) => run(*args),
        None => run(cli.run),
    }
}

fn print_crd() -> ExitCode {
    use std::io::Write;
    match tfjob_core::api::crd::tfjob_crd_yaml() {
        Ok(yaml) => {
            // `tfjob-operator crd | head` closes the pipe early: that is not an error.
            match std::io::stdout().write_all(yaml.as_bytes()) {
                Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("error: cannot write the CRD: {err}");
                    ExitCode::FAILURE
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(err) => {
            eprintln!("error: cannot render the CRD as YAML: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> ExitCode {
    if let Err(err) = ops::telemetry::init(&args.log_level, args.log_format) {
        eprintln!("error: {err}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            error!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(operate(args)) {
        Ok(code) => code,
        Err(message) => {
            error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// Why the controller stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Running,
    Signal,
    LostLease,
}

async fn operate(args: RunArgs) -> Result<ExitCode, String> {
    args.validate().map_err(|e| e.to_string())?;
    let namespaces = match args.namespace_scope().map_err(|e| e.to_string())? {
        config::NamespaceScope::All => vec![],
        config::NamespaceScope::Only(namespaces) => namespaces,
    };
    let kube_config = kube::Config::infer().await.map_err(|e| {
        format!("cannot find Kubernetes credentials ({e}); set KUBECONFIG or run inside a cluster")
    })?;
    let metrics = Metrics::new().map_err(|e| e.to_string())?;
    let client =
        ops::build_client(kube_config, args.rate_limit(), &metrics).map_err(|e| e.to_string())?;
    let readiness = Readiness::new();
    // One identity per process: the Lease holder and the events' reporting instance must match,
    // so events can be traced to the replica that led (default_identity adds a random suffix).
    let identity = ops::default_identity();

    let (stop_tx, stop_rx) = watch::channel(Stop::Running);
    tokio::spawn(watch_signals(stop_tx.clone()));
    let stopped = |rx: watch::Receiver<Stop>| async move {
        let mut rx = rx;
        let _ = rx.wait_for(|s| *s != Stop::Running).await;
    };

    let server = OpsServer::bind(
        args.metrics_bind_address.socket_addr(),
        args.health_probe_bind_address.socket_addr(),
        metrics.clone(),
        readiness.clone(),
    )
    .await
    .map_err(|e| e.to_string())?;
    info!(metrics = ?server.metrics_addr(), probes = ?server.probe_addr(), "serving metrics and health probes");
    // The metrics and probe server outlives the controller: while reconciles drain after a stop
    // signal, /readyz answers 503 "shutting down" and /metrics can still be scraped.
    let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
    let server_task = tokio::spawn(server.serve(async move {
        let _ = drained_rx.await;
    }));
    tokio::spawn({
        let (readiness, stop_rx) = (readiness.clone(), stop_rx.clone());
        async move {
            stopped(stop_rx).await;
            readiness.set_shutting_down();
        }
    });
    // The webhook serves on every replica, leader or not: the apiserver calls any ready one.
    // Like /readyz it outlives the controller, so calls routed here before the endpoint is
    // removed (readiness says "shutting down") are still answered.
    let (webhook_stop_tx, webhook_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let webhook_task = start_webhook(&args, &client, &readiness, async move {
        let _ = webhook_stop_rx.await;
    })
    .await?;

    let leader = if args.leader_elect {
        readiness.set_leader_state(LeaderState::Standby);
        let namespace = args.leader_election_namespace();
        let handle = LeaderElection::start(
            client.clone(),
            &namespace,
            &args.leader_election_id,
            identity.clone(),
            args.lease_timings(),
        )
        .map_err(|e| e.to_string())?;
        info!(lease = %args.leader_election_id, %namespace, identity = handle.identity(), "waiting for leadership");
        let mut leading = handle.subscribe();
        tokio::select! {
            result = leading.wait_for(|l| *l) => {
                if result.is_err() {
                    return Err("leader election stopped before this instance could lead".into());
                }
            }
            _ = stopped(stop_rx.clone()) => {
                info!("stopping before becoming leader");
                let _ = handle.release().await;
                let _ = drained_tx.send(());
                let _ = webhook_stop_tx.send(());
                let _ = server_task.await;
                if let Some(task) = webhook_task {
                    let _ = task.await;
                }
                return Ok(ExitCode::SUCCESS);
            }
        }
        info!("leading; starting the controller");
        readiness.set_leader_state(LeaderState::Leading);
        metrics.set_leader(true);
        // Losing the lease stops all work at once (fail-stop, like kube-controller-manager).
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            if leading.wait_for(|l| !*l).await.is_ok() || leading.has_changed().is_err() {
                let _ = stop_tx.send(Stop::LostLease);
            }
        });
        Some(handle)
    } else {
        // Without election this replica always reconciles: it counts as the leader.
        metrics.set_leader(true);
        None
    };

    let settings = Settings {
        namespaces,
        job_selector: args.job_selector.as_ref().map(ToString::to_string),
        concurrency: args.concurrency,
        watch_timeout_seconds: args.watch_timeout_seconds,
        list_page_size: args.list_page_size,
        plan: PlanConfig {
            cluster_domain: std::env::var(tfjob_core::api::constants::CUSTOM_CLUSTER_DOMAIN_ENV)
                .ok(),
            service_mode: match args.service_mode {
                config::ServiceMode::PerReplica => ServiceMode::PerReplica,
                config::ServiceMode::PerJob => ServiceMode::PerJob,
            },
            gang: GangScheduler::from_flag(&args.gang_scheduler_name),
        },
        instance: identity,
    };
    let result = controller::run(
        client,
        settings,
        metrics.clone(),
        readiness.clone(),
        stopped(stop_rx.clone()),
    )
    .await;
    readiness.set_shutting_down();
    let _ = stop_tx.send_if_modified(|s| {
        let changed = *s == Stop::Running;
        if changed {
            *s = Stop::Signal;
        }
        changed
    });
    let reason = *stop_rx.borrow();
    if let Some(handle) = leader {
        metrics.set_leader(false);
        if let Err(err) = handle.release().await {
            warn!("cannot release the leader lease: {err}");
        }
    }
    let _ = drained_tx.send(());
    let _ = webhook_stop_tx.send(());
    let _ = server_task.await;
    if let Some(task) = webhook_task {
        let _ = task.await;
    }
    result.map_err(|e| e.to_string())?;
    if reason == Stop::LostLease {
        error!("lost the leader lease; exiting so that this instance restarts as a standby");
        return Ok(ExitCode::FAILURE);
    }
    info!("stopped cleanly");
    Ok(ExitCode::SUCCESS)
}

/// Binds the admission webhook when `--webhook-enabled`, and serves it until `shutdown`.
async fn start_webhook(
    args: &RunArgs,
    client: &kube::Client,
    readiness: &Readiness,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Option<tokio::task::JoinHandle<()>>, String> {
    let Some(settings) = args.webhook_settings().map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let webhook = Webhook::start(settings, Some(client.clone()), readiness.clone())
        .await
        .map_err(|e| e.to_string())?;
    info!(addr = %webhook.local_addr(), "serving the admission webhook");
    Ok(Some(tokio::spawn(webhook.run(shutdown))))
}

/// SIGTERM (Kubernetes) or SIGINT (a terminal) starts a graceful stop.
async fn watch_signals(stop: watch::Sender<Stop>) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                warn!("cannot listen for SIGTERM: {err}");
                futures::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => info!("SIGINT received; stopping"),
        _ = term => info!("SIGTERM received; stopping"),
    }
    let _ = stop.send(Stop::Signal);
}
