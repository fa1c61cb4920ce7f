//! The cluster and namespace, found like kubectl finds them: `--kubeconfig`, else
//! `$KUBECONFIG`, else `~/.kube/config`; `--context`, else the current context; `-n`, else
//! the context's namespace, else `default`.

use kube::Client;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};

use crate::cli::Global;
use crate::errors::Failure;

/// A client for the chosen context and the namespace to use.
pub struct Cluster {
    pub client: Client,
    pub namespace: String,
    /// The apiserver's URL, for messages.
    pub server: String,
}

pub async fn connect(global: &Global) -> Result<Cluster, Failure> {
    let options = KubeConfigOptions {
        context: global.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &global.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                Failure::usage(format!(
                    "cannot read the kubeconfig {}: {e}; check --kubeconfig",
                    path.display()
                ))
            })?;
            Config::from_custom_kubeconfig(kubeconfig, &options).await
        }
        None => Config::from_kubeconfig(&options).await,
    }
    .map_err(|e| {
        Failure::usage(format!(
            "cannot load a kubeconfig context: {e}; set --kubeconfig or KUBECONFIG, and \
             --context (kubectl config get-contexts lists them)"
        ))
    })?;
    let namespace = global
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config)
        .map_err(|e| Failure::usage(format!("cannot build a client for {server}: {e}")))?;
    Ok(Cluster {
        client,
        namespace,
        server,
    })
}
