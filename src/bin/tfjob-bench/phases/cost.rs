//! Phase 1b, where the apiserver's time goes: the CPU that kube-apiserver and etcd spend per
//! request of each kind the creators send, measured by sending only that kind (N requests,
//! the bare client's concurrency). It explains the throughput of the creators: on a machine
//! where the apiserver is the bottleneck, pods/s is the CPU available divided by the CPU a
//! job's requests cost.

use std::time::Instant;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tfjob_operator::api::TFJob;

use crate::cluster::ensure_namespace;
use crate::procs;
use crate::report::RequestCost;
use crate::run::Run;
use crate::workload;

pub const NAMESPACE: &str = "bench-cost";

/// One kind of request: its label and the requests, built for index `i`.
type Requests<'a> = (&'static str, Vec<BoxFuture<'a, bool>>);

pub async fn run(run: &mut Run) -> anyhow::Result<Vec<RequestCost>> {
    ensure_namespace(&run.client, NAMESPACE).await?;
    let n = run.sizes.bare_pods / 4;
    let replicas = run.sizes.replicas;
    let client = &run.client;
    let params = PostParams::default();
    let (pods, services): (Vec<_>, Vec<_>) = (0..n.div_ceil(replicas as usize))
        .map(|i| workload::bare_children(NAMESPACE, i, replicas))
        .unzip();
    let pods: Vec<_> = pods.into_iter().flatten().take(n).collect();
    let services: Vec<_> = services.into_iter().flatten().take(n).collect();
    let pod_api = Api::namespaced(client.clone(), NAMESPACE);
    let service_api = Api::namespaced(client.clone(), NAMESPACE);
    let tfjob_api: Api<TFJob> = Api::namespaced(client.clone(), NAMESPACE);
    let job_api: Api<Job> = Api::namespaced(client.clone(), NAMESPACE);
    let event_api: Api<Event> = Api::namespaced(client.clone(), NAMESPACE);
    let names: Vec<String> = (0..n).map(|i| workload::name("cost", i)).collect();
    // The status the operator writes first: the Created condition and empty replica statuses.
    let status = json!({"status": {
        "conditions": [{"type": "Created", "status": "True", "reason": "TFJobCreated",
                        "message": "TFJob is created.", "lastUpdateTime": "2026-01-01T00:00:00Z",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        "replicaStatuses": {"PS": {}, "Worker": {}}
    }});

    let kinds: Vec<Requests<'_>> = vec![
        (
            "create pod",
            pods.iter()
                .map(|pod| {
                    let (api, params) = (&pod_api, &params);
                    Box::pin(async move { api.create(params, pod).await.is_ok() }) as BoxFuture<_>
                })
                .collect(),
        ),
        (
            "create headless Service",
            services
                .iter()
                .map(|service| {
                    let (api, params) = (&service_api, &params);
                    Box::pin(async move { api.create(params, service).await.is_ok() })
                        as BoxFuture<_>
                })
                .collect(),
        ),
        (
            "create TFJob",
            names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let (api, params) = (&tfjob_api, &params);
                    let job = workload::tfjob(NAMESPACE, name, i, replicas);
                    Box::pin(async move { api.create(params, &job).await.is_ok() }) as BoxFuture<_>
                })
                .collect(),
        ),
        (
            "patch TFJob status",
            names
                .iter()
                .map(|name| {
                    let (api, status) = (&tfjob_api, &status);
                    Box::pin(async move {
                        api.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
                            .await
                            .is_ok()
                    }) as BoxFuture<_>
                })
                .collect(),
        ),
        (
            "create Job",
            names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let (api, params) = (&job_api, &params);
                    let job = workload::job(NAMESPACE, name, i, replicas);
                    Box::pin(async move { api.create(params, &job).await.is_ok() }) as BoxFuture<_>
                })
                .collect(),
        ),
        (
            "create event",
            names
                .iter()
                .map(|name| {
                    let (api, params) = (&event_api, &params);
                    let event = event(name);
                    Box::pin(async move { api.create(params, &event).await.is_ok() })
                        as BoxFuture<_>
                })
                .collect(),
        ),
    ];

    let mut costs = Vec::new();
    for (kind, requests) in kinds {
        let requests_sent = requests.len();
        let (apiserver, etcd) = (run.cp.pid("kube-apiserver"), run.cp.pid("etcd"));
        let cpu = || (procs::cpu_ns(apiserver), procs::cpu_ns(etcd));
        let before = cpu();
        let started = Instant::now();
        let ok = futures::stream::iter(requests)
            .buffer_unordered(run.sizes.concurrency.max(1))
            .filter(|ok| futures::future::ready(*ok))
            .count()
            .await;
        let seconds = started.elapsed().as_secs_f64();
        let after = cpu();
        let per_request_ms = |a: u64, b: u64| (b - a) as f64 / 1e6 / requests_sent.max(1) as f64;
        costs.push(RequestCost {
            kind: kind.into(),
            requests: requests_sent,
            errors: requests_sent - ok,
            per_second: requests_sent as f64 / seconds.max(1e-9),
            apiserver_cpu_ms: per_request_ms(before.0, after.0),
            etcd_cpu_ms: per_request_ms(before.1, after.1),
        });
    }
    Ok(costs)
}

/// An `events.k8s.io/v1` Event about TFJob `name`, as the operator records one.
fn event(name: &str) -> Event {
    serde_json::from_value(json!({
        "metadata": {"name": format!("{name}.created")},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "kubeflow.org/tfjob-operator",
        "reportingInstance": "tfjob-bench",
        "action": "Create",
        "reason": "SuccessfulCreatePod",
        "note": format!("Created pod: {name}-ps-0, {name}-worker-0, {name}-worker-1, {name}-worker-2"),
        "type": "Normal",
        "regarding": {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "namespace": NAMESPACE, "name": name}
    }))
    .expect("the bench event is valid")
}
