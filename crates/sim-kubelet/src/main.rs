//! `tfjob-sim-kubelet`: runs the simulated kubelet (see `sim_kubelet`) against a
//! cluster without real nodes, such as the one `hack/control-plane.sh start` brings up.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use http::HeaderValue;
use kube::Client;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};
use sim_kubelet::{self, SimKubeletConfig};
use tracing_subscriber::EnvFilter;

/// Simulated kubelet: binds pods to a fake node and moves them Pending → Running →
/// Succeeded/Failed, driven by `sim.tfjob-operator.dev/*` pod annotations.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Kubeconfig file; without it, KUBECONFIG or the usual defaults are used.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Only simulate pods in this namespace (default: all namespaces).
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Only simulate pods matching this label selector, e.g. `training.kubeflow.org/job-name`.
    #[arg(long, short = 'l')]
    label_selector: Option<String>,
    /// Name of the fake node pods are bound to (created if missing).
    #[arg(long, default_value = sim_kubelet::DEFAULT_NODE)]
    node_name: String,
    /// InternalIP of the fake node, reported as the pods' hostIP.
    #[arg(long, default_value = sim_kubelet::DEFAULT_NODE_IP)]
    node_ip: String,
    /// Maximum API writes in flight (binds, status patches, deletes).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("cannot read kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    #[error("cannot load a Kubernetes client configuration: {0}")]
    InferConfig(#[from] kube::config::InferConfigError),
    #[error("cannot create a Kubernetes client: {0}")]
    Client(#[from] kube::Error),
    #[error(transparent)]
    Sim(#[from] sim_kubelet::SimError),
}

async fn client(kubeconfig: Option<&PathBuf>) -> Result<Client, StartError> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?
        }
        None => Config::infer().await?,
    };
    // Its own User-Agent, so audit logs (and the benchmark) tell its writes from the operator's.
    let mut config = config;
    config.headers.push((
        http::header::USER_AGENT,
        HeaderValue::from_static(concat!("tfjob-sim-kubelet/", env!("CARGO_PKG_VERSION"))),
    ));
    Ok(Client::try_from(config)?)
}

async fn run(args: Args) -> Result<(), StartError> {
    let client = client(args.kubeconfig.as_ref()).await?;
    let config = SimKubeletConfig {
        node_name: args.node_name,
        node_ip: args.node_ip,
        namespace: args.namespace,
        label_selector: args.label_selector,
        max_concurrent_writes: args.concurrency,
    };
    tokio::select! {
        result = sim_kubelet::run(client, config) => result?,
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
