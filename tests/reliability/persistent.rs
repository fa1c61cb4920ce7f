//! Failures that do not go away by retrying: a ResourceQuota of `pods: 0`, and a namespace
//! deleted while its job's pods are being created. A pass stops at the first refused create
//! (slow start: one request, not fifty), writes one aggregated Warning, and the next pass
//! waits out the job's back-off, whatever its children's events do.

use super::*;

use k8s_openapi::api::core::v1::{Namespace, Pod, ResourceQuota};
use kube::api::DeleteParams;
use support::operator::{submit, workers_job};

fn fifty_workers(name: &str) -> String {
    workers_job(name, 50, &[])
}

/// Create requests for pods of `ns`, by arrival.
fn pod_creates(proxy: &FaultProxy, ns: &str) -> Vec<Instant> {
    let path = format!("/api/v1/namespaces/{ns}/pods");
    proxy
        .records()
        .iter()
        .filter(|r| r.method == "POST" && r.path.split('?').next() == Some(path.as_str()))
        .map(|r| r.received)
        .collect()
}

/// Event writes (create or patch, either API group) that carry `reason`, by arrival.
fn event_writes(proxy: &FaultProxy, ns: &str, reason: &str) -> Vec<Instant> {
    proxy
        .records()
        .iter()
        .filter(|r| {
            (r.method == "POST" || r.method == "PATCH")
                && r.path.contains(&format!("/namespaces/{ns}/events"))
                && r.body
                    .as_ref()
                    .is_some_and(|b| String::from_utf8_lossy(b).contains(reason))
        })
        .map(|r| r.received)
        .collect()
}

/// Groups request instants into attempt rounds: requests less than 200 ms apart are one pass.
fn rounds(at: &[Instant]) -> Vec<(Instant, usize)> {
    let mut rounds: Vec<(Instant, usize)> = Vec::new();
    for &t in at {
        match rounds.last_mut() {
            Some((start, n)) if t.duration_since(*start) < Duration::from_millis(200) => *n += 1,
            _ => rounds.push((t, 1)),
        }
    }
    rounds
}

/// How long the quota storm runs: one minute in the suite, ten in the long run
/// (`cargo test --test reliability -- --ignored quota`).
pub(crate) async fn quota_storm(minutes: u64) {
    let ctx = TestContext::new("quota").await;
    let ns = ctx.namespace.clone();
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "no-pods"},
        "spec": {"hard": {"pods": "0"}}
    }))
    .unwrap();
    ctx.apply(&quota).await;
    // No quota controller runs here; its status is what it would write.
    let quotas: Api<ResourceQuota> = ctx.api();
    quotas
        .patch_status(
            "no-pods",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"hard": {"pods": "0"}, "used": {"pods": "0"}}})),
        )
        .await
        .unwrap();

    let proxy = FaultProxy::start(control_plane(), 31).await;
    let operator =
        OperatorBinary::start("quota", &proxy.kubeconfig, &[format!("--namespace={ns}")]).await;
    let started = Instant::now();
    submit(&ctx, &fifty_workers("blocked")).await;
    let length = Duration::from_secs(60 * minutes);
    tokio::time::sleep(length).await;

    let creates = pod_creates(&proxy, &ns);
    let warnings = event_writes(&proxy, &ns, "FailedCreatePod");
    let rounds = rounds(&creates);
    let per_minute = |at: &[Instant]| -> Vec<usize> {
        let mut counts = vec![0; minutes as usize];
        for t in at {
            let minute = (t.duration_since(started).as_secs() / 60) as usize;
            if let Some(c) = counts.get_mut(minute) {
                *c += 1;
            }
        }
        counts
    };
    let gaps: Vec<f64> = rounds
        .windows(2)
        .map(|w| w[1].0.duration_since(w[0].0).as_secs_f64())
        .collect();
    eprintln!(
        "quota pods: 0, 50-replica job, {minutes} min: {} create attempts in {} rounds \
         (per minute {:?}), {} FailedCreatePod event writes (per minute {:?}); seconds between \
         rounds {:.1?}",
        creates.len(),
        rounds.len(),
        per_minute(&creates),
        warnings.len(),
        per_minute(&warnings),
        gaps
    );
    let jobs: Api<TFJob> = ctx.api();
    let job = jobs.get("blocked").await.unwrap();
    let pods: Api<Pod> = ctx.api();
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        rounds.iter().all(|(_, n)| *n == 1),
        "each pass stops at the first refused create: {rounds:?}"
    );
    assert!(
        warnings.len() <= rounds.len(),
        "{} FailedCreatePod writes for {} rounds",
        warnings.len(),
        rounds.len()
    );
    // The back-off doubles from 0.5 s to 5 minutes: after the first round (whose services
    // were created, which is progress), each wait at least ~doubles. Our own status write's
    // echo does not cut a wait short.
    for (i, pair) in gaps.windows(2).enumerate().skip(1) {
        let expected = (pair[0] * 2.0).min(300.0);
        assert!(
            pair[1] >= expected * 0.8,
            "round {}: waited {:.2} s after {:.2} s (back-off not followed): {gaps:.2?}",
            i + 2,
            pair[1],
            pair[0]
        );
    }
    let bound = 2 + (length.as_secs_f64() / 0.5).log2().ceil() as usize + 1;
    assert!(
        rounds.len() <= bound,
        "{} rounds in {length:?}, at most {bound} with the back-off",
        rounds.len()
    );
    assert!(condition_pairs(&job).iter().all(|(t, _)| t != "Failed"));
    panic_free(&operator);
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_deleted_mid_creation_ends_in_quiet() {
    let _serial = SERIAL.lock().await;
    let ctx = TestContext::new("ns-gone").await;
    let ns = ctx.namespace.clone();
    let proxy = FaultProxy::start(control_plane(), 32).await;
    let operator =
        OperatorBinary::start("ns-gone", &proxy.kubeconfig, &[format!("--namespace={ns}")]).await;
    submit(&ctx, &fifty_workers("going")).await;
    wait_for(secs(30), "the first pods", || async {
        pod_creates(&proxy, &ns).len() >= 3
    })
    .await;
    Api::<Namespace>::all(ctx.client.clone())
        .delete(&ns, &DeleteParams::background())
        .await
        .unwrap();
    let deleted = Instant::now();
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    wait_for(secs(120), "the namespace to be gone", || async {
        namespaces
            .get_opt(&ns)
            .await
            .map(|n| n.is_none())
            .unwrap_or(false)
    })
    .await;
    let gone = deleted.elapsed();
    // Quiet afterwards too: nothing left to reconcile.
    tokio::time::sleep(secs(10).saturating_sub(deleted.elapsed()) + secs(5)).await;
    let after = deleted + secs(10);
    let records = proxy.records();
    let late: Vec<&Record> = records
        .iter()
        .filter(|r| !r.watch && r.received >= after)
        .collect();
    let total = records
        .iter()
        .filter(|r| !r.watch && r.received >= deleted)
        .count();
    eprintln!(
        "namespace deleted mid-creation: gone after {gone:.1?}; {total} requests since the \
         delete, {} of them after the first 10 s",
        late.len()
    );
    assert!(
        late.len() <= 200,
        "{} requests after the first 10 s: {:?}",
        late.len(),
        late.iter()
            .take(20)
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
    panic_free(&operator);
}
