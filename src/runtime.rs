//! The operator's process lifecycle: start the metrics, probe and webhook servers, wait for
//! leadership when election is on, run the controller, and stop in one ordered sequence however
//! the run ends (a signal, a lost Lease, or an error).
//!
//! Stopping: readiness turns to "shutting down" → running reconciles drain (for at most
//! [`DRAIN_LIMIT`]) → the Lease is
//! released → the servers stop (they outlive the controller so `/readyz` can say why and the
//! webhook keeps answering calls routed here before the endpoint was removed).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::config::RunArgs;
use crate::controller;
use crate::ops::{self, LeaderElection, LeaderState, Liveness, Metrics, OpsServer, Readiness};
use crate::webhook::Webhook;

/// Runs the operator with `args` until it stops; the exit code says how it ended.
pub fn main(args: RunArgs) -> ExitCode {
    let (level, format) = (
        args.logging.level(&args.upstream),
        args.logging.format(&args.upstream),
    );
    if let Err(err) = ops::telemetry::init(&level, format) {
        eprintln!("error: {err}");
        return ExitCode::FAILURE;
    }
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(run(args)));
    match result {
        Ok(code) => code,
        Err(err) => {
            error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

/// How long running reconciles may take to finish once the operator is stopping.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Why the controller stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Running,
    Signal,
}

/// The servers that outlive the controller, and how to stop them.
struct Servers {
    drained: oneshot::Sender<()>,
    ops: JoinHandle<Result<(), ops::ServerError>>,
    webhook_stop: oneshot::Sender<()>,
    webhook: Option<JoinHandle<()>>,
}

impl Servers {
    async fn stop(self) {
        let _ = self.drained.send(());
        let _ = self.webhook_stop.send(());
        if let Ok(Err(err)) = self.ops.await {
            warn!("the metrics and probe server stopped with an error: {err}");
        }
        if let Some(task) = self.webhook {
            let _ = task.await;
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    args.validate()?;
    let ignored = args.upstream.ignored();
    if !ignored.is_empty() {
        warn!(flags = ?ignored, "training-operator flags that mean nothing here are ignored");
    }
    // One identity per process: the Lease holder and the events' reporting instance must match,
    // so events can be traced to the replica that led (default_identity adds a random suffix).
    let identity = ops::default_identity();
    let settings = args.watch.settings(identity.clone())?;
    let kube_config = ops::client::load_config(args.upstream.kubeconfig.as_deref()).await?;
    let metrics = Metrics::new().context("cannot register the metrics")?;
    let client = ops::build_client(
        kube_config,
        args.client.rate_limit(),
        args.client.request_timeout(),
        &metrics,
    )?;
    let readiness = Readiness::new();

    let (stop_tx, stop_rx) = watch::channel(Stop::Running);
    tokio::spawn(watch_signals(stop_tx.clone()));
    let stopped = |mut rx: watch::Receiver<Stop>| async move {
        let _ = rx.wait_for(|s| *s != Stop::Running).await;
    };
    tokio::spawn({
        let (readiness, stop_rx) = (readiness.clone(), stop_rx.clone());
        async move {
            stopped(stop_rx).await;
            readiness.set_shutting_down();
        }
    });
    let servers = start_servers(&args, &client, &metrics, &readiness).await?;

    let leader = if args.leader.leader_elect {
        readiness.set_leader_state(LeaderState::Standby);
        let namespace = args.leader.namespace();
        let lease = &args.leader.leader_election_id;
        metrics.set_lease_status(lease, false);
        let handle = LeaderElection::start(
            client.clone(),
            &namespace,
            lease,
            identity.clone(),
            args.leader.timings(),
        )
        .context("cannot start leader election")?;
        info!(%lease, %namespace, identity = handle.identity(), "waiting for leadership");
        let mut leading = handle.subscribe();
        tokio::select! {
            result = leading.wait_for(|l| *l) => {
                if result.is_err() {
                    return Err(anyhow!("leader election stopped before this instance could lead"));
                }
            }
            _ = stopped(stop_rx.clone()) => {
                info!("stopping before becoming leader");
                let _ = handle.release().await;
                servers.stop().await;
                return Ok(ExitCode::SUCCESS);
            }
        }
        info!("leading; starting the controller");
        readiness.set_leader_state(LeaderState::Leading);
        metrics.set_leader(true);
        metrics.set_lease_status(lease, true);
        // Losing the Lease is fail-stop, as in kube-controller-manager: the process exits at
        // once, with requests in flight, so that none of its writes can start after another
        // replica takes the Lease (the elector reports the loss at the renew deadline, before
        // the Lease expires). Status writes that were already on the wire are conditional on
        // the version they were planned from, so a late one is refused with 409.
        let fail_stop = tokio::spawn(async move {
            if leading.wait_for(|l| !*l).await.is_ok() || leading.has_changed().is_err() {
                error!(
                    "lost the leader lease; exiting at once so that this replica writes nothing \
                     more (it restarts as a standby)"
                );
                std::process::exit(1);
            }
        });
        Some((handle, fail_stop))
    } else {
        // Without election this replica always reconciles: it counts as the leader.
        metrics.set_leader(true);
        None
    };

    let controller = controller::run(
        client,
        settings,
        metrics.clone(),
        readiness.clone(),
        stopped(stop_rx.clone()),
    );
    // Running reconciles get DRAIN_LIMIT after the stop; one stuck on a request that never
    // answers is abandoned then, so the process exits well inside a pod's default 30 s grace
    // period. Abandoning is safe: status writes are conditional and the next run plans again.
    let drain_limit = async {
        stopped(stop_rx.clone()).await;
        tokio::time::sleep(DRAIN_LIMIT).await;
    };
    let result = tokio::select! {
        result = controller => result,
        () = drain_limit => {
            warn!(
                "reconciles still running {}s after the stop; abandoning them",
                DRAIN_LIMIT.as_secs()
            );
            Ok(())
        }
    };

    readiness.set_shutting_down();
    stop_tx.send_if_modified(|s| {
        let running = *s == Stop::Running;
        if running {
            *s = Stop::Signal;
        }
        running
    });
    if let Some((handle, fail_stop)) = leader {
        // Releasing the Lease on a clean stop is not losing it.
        fail_stop.abort();
        metrics.set_leader(false);
        metrics.set_lease_status(&args.leader.leader_election_id, false);
        if let Err(err) = handle.release().await {
            warn!("cannot release the leader lease: {err}");
        }
    }
    servers.stop().await;
    result?;
    info!("stopped cleanly");
    Ok(ExitCode::SUCCESS)
}

/// Binds the metrics and probe server and, with `--webhook-enabled`, the admission webhook.
/// The webhook serves on every replica, leader or not: the apiserver calls any ready one.
async fn start_servers(
    args: &RunArgs,
    client: &kube::Client,
    metrics: &Metrics,
    readiness: &Readiness,
) -> anyhow::Result<Servers> {
    let server = OpsServer::bind(
        args.servers.metrics_bind_address.socket_addr(),
        args.servers.health_probe_bind_address.socket_addr(),
        metrics.clone(),
        readiness.clone(),
        Liveness::new(metrics.clone(), args.servers.stall_after()),
    )
    .await
    .context("cannot serve metrics and health probes")?;
    info!(metrics = ?server.metrics_addr(), probes = ?server.probe_addr(), "serving metrics and health probes");
    let (drained, drained_rx) = oneshot::channel::<()>();
    let ops = tokio::spawn(server.serve(until(drained_rx)));

    let (webhook_stop, webhook_stop_rx) = oneshot::channel::<()>();
    let webhook = match args.webhook.settings(args.watch.placement())? {
        None => None,
        Some(settings) => {
            let webhook = Webhook::start(settings, Some(client.clone()), readiness.clone())
                .await
                .context("cannot start the admission webhook")?;
            info!(addr = %webhook.local_addr(), "serving the admission webhook");
            Some(tokio::spawn(webhook.run(until(webhook_stop_rx))))
        }
    };
    Ok(Servers {
        drained,
        ops,
        webhook_stop,
        webhook,
    })
}

/// Resolves when `signal` fires (or its sender is dropped).
async fn until(signal: oneshot::Receiver<()>) {
    let _ = signal.await;
}

/// SIGTERM (Kubernetes) or SIGINT (a terminal) starts a graceful stop.
async fn watch_signals(stop: watch::Sender<Stop>) {
    let ctrl_c = tokio::signal::ctrl_c();
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
    tokio::select! {
        _ = ctrl_c => info!("SIGINT received; stopping"),
        _ = term => info!("SIGTERM received; stopping"),
    }
    let _ = stop.send(Stop::Signal);
}
