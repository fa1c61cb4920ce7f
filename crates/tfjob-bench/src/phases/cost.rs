//! Phase 1b, where the apiserver's time goes: the CPU that kube-apiserver and etcd spend per
//! request of each kind the creators send, measured by sending only that kind (N requests,
//! the bare client's concurrency). It explains the throughput of the creators: on a machine
//! where the apiserver is the bottleneck, pods/s is the CPU available divided by the CPU a
//! job's requests cost.

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tfjob_core::api::TFJob;

use crate::cluster::ensure_namespace;
use crate::phases::price::{measure, measure_pids};
use crate::report::RequestCost;
use crate::run::Run;
use crate::workload;

pub const NAMESPACE: &str = "bench-cost";

pub async fn run(run: &mut Run) -> anyhow::Result<Vec<RequestCost>> {
    ensure_namespace(&run.client, NAMESPACE).await?;
    let n = run.sizes.bare_pods / 4;
    let replicas = run.sizes.replicas;
    let (pods, services): (Vec<_>, Vec<_>) = (0..n.div_ceil(replicas as usize))
        .map(|i| workload::bare_children(NAMESPACE, i, replicas))
        .unzip();
    let pods: Vec<Pod> = pods.into_iter().flatten().take(n).collect();
    let services: Vec<Service> = services.into_iter().flatten().take(n).collect();
    let names: Vec<String> = (0..n).map(|i| workload::name("cost", i)).collect();
    let tfjobs = names
        .iter()
        .enumerate()
        .map(|(i, name)| workload::tfjob(NAMESPACE, name, i, replicas))
        .collect();
    let jobs = names
        .iter()
        .enumerate()
        .map(|(i, name)| workload::job(NAMESPACE, name, i, replicas))
        .collect();
    let events = names.iter().map(|name| event(name)).collect();
    // The status the operator writes first: the Created condition and empty replica statuses.
    let status = json!({"status": {
        "conditions": [{"type": "Created", "status": "True", "reason": "TFJobCreated",
                        "message": "TFJob is created.", "lastUpdateTime": "2026-01-01T00:00:00Z",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        "replicaStatuses": {"PS": {}, "Worker": {}}
    }});
    let tfjob_api: Api<TFJob> = api(run);

    let mut costs = vec![
        measure(run, "create pod", n, run.create_all(&api(run), pods)).await,
        measure(
            run,
            "create headless Service",
            n,
            run.create_all(&api(run), services),
        )
        .await,
        measure(run, "create TFJob", n, run.create_all(&tfjob_api, tfjobs)).await,
        measure(run, "patch TFJob status", n, async {
            futures::stream::iter(&names)
                .map(|name| async {
                    let patch = Patch::Merge(&status);
                    tfjob_api
                        .patch_status(name, &PatchParams::default(), &patch)
                        .await
                })
                .buffer_unordered(run.sizes.concurrency.max(1))
                .filter(|result| futures::future::ready(result.is_err()))
                .count()
                .await
        })
        .await,
        measure(run, "create Job", n, run.create_all(&api::<Job>(run), jobs)).await,
        measure(run, "update Job status", n, async {
            let jobs: Api<Job> = api(run);
            let active = json!({"status": {"active": replicas}});
            futures::stream::iter(&names)
                .map(|name| async {
                    jobs.patch_status(name, &PatchParams::default(), &Patch::Merge(&active))
                        .await
                })
                .buffer_unordered(run.sizes.concurrency.max(1))
                .filter(|result| futures::future::ready(result.is_err()))
                .count()
                .await
        })
        .await,
        measure(
            run,
            "create event",
            n,
            run.create_all(&api::<Event>(run), events),
        )
        .await,
    ];
    costs.extend(crate::phases::crd_variants::run(run, NAMESPACE, n, &status).await?);
    costs.extend(on_current_kubernetes(run, n, &status).await?);
    Ok(costs)
}

/// The TFJob rows again on the CRD-only Kubernetes 1.36.4 apiserver of
/// `hack/crd-apiserver.sh` (upstream's apiextensions apiserver: the code kube-apiserver serves
/// custom resources with, without its authentication, authorization and admission round trips),
/// so that the cost of a TFJob write is known for a current apiserver and not only for 1.20.
async fn on_current_kubernetes(
    run: &Run,
    n: usize,
    status: &serde_json::Value,
) -> anyhow::Result<Vec<RequestCost>> {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hack/crd-apiserver.sh");
    let server = crate::cluster::ControlPlane::start_crd_apiserver(&script)?;
    let client = server.client().await?;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    crds.patch(
        "tfjobs.kubeflow.org",
        &PatchParams::apply("tfjob-bench").force(),
        &Patch::Apply(tfjob_core::api::crd::tfjob_crd()),
    )
    .await?;
    let jobs: Api<TFJob> = Api::namespaced(client, NAMESPACE);
    // Served once the CRD is Established: retry the first list until it answers.
    for _ in 0..100 {
        if jobs.list(&Default::default()).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let names: Vec<String> = (0..n).map(|i| workload::name("cost", i)).collect();
    let tfjobs = names
        .iter()
        .enumerate()
        .map(|(i, name)| workload::tfjob(NAMESPACE, name, i, run.sizes.replicas))
        .collect();
    let pids = (server.pid("apiserver"), server.pid("etcd"));
    let rows = vec![
        measure_pids(
            pids,
            "create TFJob (1.36.4 CRD apiserver)",
            n,
            run.create_all(&jobs, tfjobs),
        )
        .await,
        measure_pids(
            pids,
            "patch TFJob status (1.36.4 CRD apiserver)",
            n,
            async {
                futures::stream::iter(&names)
                    .map(|name| async {
                        jobs.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
                            .await
                    })
                    .buffer_unordered(run.sizes.concurrency.max(1))
                    .filter(|result| futures::future::ready(result.is_err()))
                    .count()
                    .await
            },
        )
        .await,
    ];
    server.stop();
    Ok(rows)
}

fn api<K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>>(run: &Run) -> Api<K>
where
    K::DynamicType: Default,
{
    Api::namespaced(run.client.clone(), NAMESPACE)
}

/// A core/v1 Event about TFJob `name`, as the operator records one.
fn event(name: &str) -> Event {
    serde_json::from_value(json!({
        "metadata": {"name": format!("{name}.created")},
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:00:00Z",
        "count": 1,
        "source": {"component": "tfjob-controller"},
        "reportingComponent": "tfjob-controller",
        "reportingInstance": "tfjob-bench",
        "action": "Create",
        "reason": "SuccessfulCreatePod",
        "message": format!("Created pod: {name}-ps-0, {name}-worker-0, {name}-worker-1, {name}-worker-2"),
        "type": "Normal",
        "involvedObject": {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "namespace": NAMESPACE, "name": name}
    }))
    .expect("the bench event is valid")
}
