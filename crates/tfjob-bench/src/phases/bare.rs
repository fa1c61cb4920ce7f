//! Phase 1, ceiling: a bare client creating the operator's own pods (then pod + Service pairs)
//! with a fixed number of requests in flight. No controller is involved.

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, PostParams};

use crate::audit::Agent;
use crate::cluster::ensure_namespace;
use crate::report::{Bare, Timeline};
use crate::run::{Run, timeline};
use crate::workload;

pub const NAMESPACE: &str = "bench-bare";
const PAIRS_NAMESPACE: &str = "bench-bare-pairs";

pub async fn run(run: &mut Run) -> anyhow::Result<(Bare, Timeline)> {
    let replicas = run.sizes.replicas;
    let n = run.sizes.bare_pods;
    ensure_namespace(&run.client, NAMESPACE).await?;
    ensure_namespace(&run.client, PAIRS_NAMESPACE).await?;

    let pods: Vec<Pod> = (0..n.div_ceil(replicas as usize))
        .flat_map(|i| workload::bare_children(NAMESPACE, i, replicas).0)
        .take(n)
        .collect();
    let api: Api<Pod> = Api::namespaced(run.client.clone(), NAMESPACE);
    let mut errors = run.create_all(&api, pods).await;
    run.audit.poll();
    let times = run.pod_times(NAMESPACE, Agent::Bench);
    let t0 = run
        .first_submit(NAMESPACE, Agent::Bench)
        .unwrap_or_default();
    let seconds = times.last().map_or(0.0, |t| t - t0);

    // Pairs: the same pods with their headless Services, interleaved as an operator would.
    let pairs = n / 2;
    let (pair_pods, pair_services): (Vec<Vec<Pod>>, Vec<Vec<Service>>) = (0..pairs
        .div_ceil(replicas as usize))
        .map(|i| workload::bare_children(PAIRS_NAMESPACE, i, replicas))
        .unzip();
    let pods_api: Api<Pod> = Api::namespaced(run.client.clone(), PAIRS_NAMESPACE);
    let services_api: Api<Service> = Api::namespaced(run.client.clone(), PAIRS_NAMESPACE);
    let params = PostParams::default();
    let creates: Vec<BoxFuture<'_, bool>> = pair_pods
        .into_iter()
        .flatten()
        .zip(pair_services.into_iter().flatten())
        .take(pairs)
        .flat_map(|(pod, service)| {
            let (pods_api, services_api, params) = (&pods_api, &services_api, &params);
            [
                async move { pods_api.create(params, &pod).await.is_ok() }.boxed(),
                async move { services_api.create(params, &service).await.is_ok() }.boxed(),
            ]
        })
        .collect();
    let results: Vec<bool> = futures::stream::iter(creates)
        .buffer_unordered(run.sizes.concurrency.max(1))
        .collect()
        .await;
    errors += results.iter().filter(|ok| !**ok).count();
    run.audit.poll();
    let writes: Vec<f64> = run
        .audit
        .in_namespace(PAIRS_NAMESPACE)
        .filter(|e| e.agent == Agent::Bench && (e.created("pods") || e.created("services")))
        .map(|e| e.done)
        .collect();
    let p0 = run
        .first_submit(PAIRS_NAMESPACE, Agent::Bench)
        .unwrap_or_default();
    let p1 = writes.iter().copied().fold(p0, f64::max);

    let bare = Bare {
        pods: times.len(),
        concurrency: run.sizes.concurrency,
        seconds,
        pods_per_second: times.len() as f64 / seconds.max(1e-9),
        pairs: writes.len() / 2,
        pairs_seconds: p1 - p0,
        pair_writes_per_second: writes.len() as f64 / (p1 - p0).max(1e-9),
        errors,
    };
    let line = Timeline {
        label: format!("bare client ({} in flight)", run.sizes.concurrency),
        points: timeline(t0, &times),
    };
    Ok((bare, line))
}
