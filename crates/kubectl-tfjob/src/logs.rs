//! `kubectl tfjob logs JOB`: every replica's logs in one stream, each line prefixed with its
//! replica (`[worker-0] …`); `-f` follows them all at once, interleaved as they come.

use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};

use crate::cli::LogsArgs;
use crate::connect::Cluster;
use crate::errors::{Failure, Request, explain};

const REPLICA_TYPE: &str = "training.kubeflow.org/replica-type";
const REPLICA_INDEX: &str = "training.kubeflow.org/replica-index";

pub async fn logs(cluster: &Cluster, args: &LogsArgs) -> Result<(), Failure> {
    let request = |verb, resource| Request {
        verb,
        resource,
        namespace: Some(&cluster.namespace),
        name: Some(&args.name),
        server: &cluster.server,
    };
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let pods = api
        .list(&ListParams::default().labels(&selector(args)))
        .await
        .map_err(|e| explain(&e, request("list", "pods")))?
        .items;
    if pods.is_empty() {
        return Err(Failure::failed(format!(
            "TFJob {:?} has no pods{} in namespace {:?}; see why with: kubectl tfjob describe {} -n {}",
            args.name,
            args.replica
                .as_deref()
                .map_or(String::new(), |r| format!(" of replica type {r}")),
            cluster.namespace,
            args.name,
            cluster.namespace
        )));
    }
    let mut replicas: Vec<(String, String)> = pods
        .iter()
        .map(|p| (prefix(p), p.metadata.name.clone().unwrap_or_default()))
        .collect();
    replicas.sort();
    let params = LogParams {
        container: Some(args.container.clone()),
        follow: args.follow,
        tail_lines: args.tail,
        since_seconds: args.since.map(|d| d.as_secs() as i64),
        ..LogParams::default()
    };
    if !args.follow {
        for (prefix, pod) in &replicas {
            match api.logs(pod, &params).await {
                Ok(text) => text.lines().for_each(|l| println!("[{prefix}] {l}")),
                Err(e) => eprintln!("[{prefix}] {}", not_available(&e)),
            }
        }
        return Ok(());
    }
    let mut streams = Vec::new();
    for (prefix, pod) in replicas {
        match api.log_stream(&pod, &params).await {
            Ok(reader) => {
                let tagged = reader
                    .lines()
                    .map_ok(move |l| format!("[{prefix}] {l}"))
                    .boxed();
                streams.push(tagged);
            }
            Err(e) => eprintln!("[{prefix}] {}", not_available(&e)),
        }
    }
    let mut all = futures::stream::select_all(streams);
    while let Some(line) = all.next().await {
        match line {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("a log stream broke: {e}"),
        }
    }
    Ok(())
}

/// `training.kubeflow.org/job-name=<job>`, narrowed by `--replica` and `--index`.
fn selector(args: &LogsArgs) -> String {
    let mut selector = format!("training.kubeflow.org/job-name={}", args.name);
    if let Some(replica) = &args.replica {
        selector.push_str(&format!(",{REPLICA_TYPE}={}", replica.to_lowercase()));
    }
    if let Some(index) = args.index {
        selector.push_str(&format!(",{REPLICA_INDEX}={index}"));
    }
    selector
}

/// `worker-0`, from the pod's replica labels (its name when they are missing).
fn prefix(pod: &Pod) -> String {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    match (labels.get(REPLICA_TYPE), labels.get(REPLICA_INDEX)) {
        (Some(t), Some(i)) => format!("{t}-{i}"),
        _ => pod.metadata.name.clone().unwrap_or_default(),
    }
}

/// Why a pod's logs cannot be read (not started yet, most often).
fn not_available(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("no logs: {}", status.message),
        other => format!("no logs: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_are_selected_and_named_by_their_labels() {
        let args = |replica: Option<&str>, index: Option<i32>| LogsArgs {
            name: "mnist".into(),
            replica: replica.map(String::from),
            index,
            follow: false,
            tail: None,
            since: None,
            container: "tensorflow".into(),
        };
        let cases = [
            (None, None, "training.kubeflow.org/job-name=mnist"),
            (
                Some("Worker"),
                Some(1),
                "training.kubeflow.org/job-name=mnist,training.kubeflow.org/replica-type=worker,\
                 training.kubeflow.org/replica-index=1",
            ),
        ];
        for (replica, index, want) in cases {
            assert_eq!(selector(&args(replica, index)), want);
        }
        let pod: Pod = serde_json::from_value(serde_json::json!({"metadata": {
            "name": "mnist-worker-1",
            "labels": {REPLICA_TYPE: "worker", REPLICA_INDEX: "1"}}}))
        .unwrap();
        assert_eq!(prefix(&pod), "worker-1");
        let bare: Pod =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "odd"}})).unwrap();
        assert_eq!(prefix(&bare), "odd");
    }
}
