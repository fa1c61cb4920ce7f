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

const WARM_UP_NAMESPACE: &str = "bench-warm-up";

/// Warms the apiserver (its caches, its connections, Go's heap) with the same pods before
/// the first measured phase, so the ceiling is not measured on a cold server.
pub async fn warm_up(run: &mut Run) -> anyhow::Result<()> {
    ensure_namespace(&run.client, WARM_UP_NAMESPACE).await?;
    let replicas = run.sizes.replicas;
    let pods: Vec<Pod> = (0..run.sizes.bare_pods.div_ceil(replicas as usize))
        .flat_map(|i| workload::bare_children(WARM_UP_NAMESPACE, i, replicas).0)
        .take(run.sizes.bare_pods)
        .collect();
    let api: Api<Pod> = Api::namespaced(run.client.clone(), WARM_UP_NAMESPACE);
    run.create_all(&api, pods).await;
    Ok(())
}

/// Repetition `rep` of the ceiling, in its own namespaces.
pub async fn run(run: &mut Run, rep: usize) -> anyhow::Result<(Bare, Timeline)> {
    let replicas = run.sizes.replicas;
    let n = run.sizes.bare_pods;
    let namespace = format!("bench-bare-{rep}");
    let pairs_namespace = format!("bench-bare-pairs-{rep}");
    let (ns, pairs_ns) = (namespace.as_str(), pairs_namespace.as_str());
    ensure_namespace(&run.client, ns).await?;
    ensure_namespace(&run.client, pairs_ns).await?;

    let pods: Vec<Pod> = (0..n.div_ceil(replicas as usize))
        .flat_map(|i| workload::bare_children(ns, i, replicas).0)
        .take(n)
        .collect();
    let api: Api<Pod> = Api::namespaced(run.client.clone(), ns);
    let mut errors = run.create_all(&api, pods).await;
    run.audit.poll();
    let times = run.pod_times(ns, Agent::Bench);
    let t0 = run.first_submit(ns, Agent::Bench).unwrap_or_default();
    let seconds = times.last().map_or(0.0, |t| t - t0);

    // Pairs: the same pods with their headless Services, interleaved as an operator would.
    let pairs = n / 2;
    let (pair_pods, pair_services): (Vec<Vec<Pod>>, Vec<Vec<Service>>) = (0..pairs
        .div_ceil(replicas as usize))
        .map(|i| workload::bare_children(pairs_ns, i, replicas))
        .unzip();
    let pods_api: Api<Pod> = Api::namespaced(run.client.clone(), pairs_ns);
    let services_api: Api<Service> = Api::namespaced(run.client.clone(), pairs_ns);
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
        .in_namespace(pairs_ns)
        .filter(|e| e.agent == Agent::Bench && (e.created("pods") || e.created("services")))
        .map(|e| e.done)
        .collect();
    let p0 = run.first_submit(pairs_ns, Agent::Bench).unwrap_or_default();
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
        runs: Vec::new(),
    };
    if bare.pods < n || bare.pairs < pairs {
        anyhow::bail!(
            "the bare client created {} of {n} pods and {} of {pairs} pairs ({errors} errors)",
            bare.pods,
            bare.pairs
        );
    }
    let line = Timeline {
        label: format!("bare client ({} in flight)", run.sizes.concurrency),
        points: timeline(t0, &times),
    };
    Ok((bare, line))
}
