//! Large jobs on a real control plane, with the release binary (what users run): a TFJob with
//! 3,000 workers in the standard TF_CONFIG form (every pod lists every host: ~100 KB each) and
//! one with 10,000 workers and `enableDynamicWorker: true` are created completely while the
//! operator's peak RSS (VmHWM) stays within the chart's 256 MiB limit, and small canary jobs
//! submitted meanwhile get their pods within a second. The simulated kubelet does not run:
//! the pods stay Pending, as they would while a cluster scales up for them.
//!
//! Before passes were bounded (`plan/rules/batches.rs`) and writes sent in slow-start batches
//! (`controller/child_writes.rs`), the 3,000-worker job alone peaked at 977 MiB.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use test_support::binary::OperatorBinary;
use test_support::operator::{conditions, submit, workers_job};
use test_support::{TestContext, control_plane, secs, wait_for};
use tfjob_core::api::TFJob;

/// The chart's memory limit.
const RSS_LIMIT_MIB: u64 = 256;

fn big_job(name: &str, workers: u32, dynamic: bool) -> String {
    format!(
        "apiVersion: kubeflow.org/v1
kind: TFJob
metadata: {{name: {name}}}
spec:
  enableDynamicWorker: {dynamic}
  tfReplicaSpecs:
    PS:
      template: {{spec: {{containers: [{{name: tensorflow, image: tf}}]}}}}
    Worker:
      replicas: {workers}
      template: {{spec: {{containers: [{{name: tensorflow, image: tf}}]}}}}
"
    )
}

fn canary(name: &str) -> String {
    workers_job(name, 2, &[])
}

/// How many objects of kind `K` job `job` has (metadata only: the pods are big).
async fn count<K>(api: &Api<K>, job: &str) -> usize
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    // From the apiserver's watch cache (resourceVersion 0): counting must not load it much.
    let own = ListParams::default()
        .labels(&format!("training.kubeflow.org/job-name={job}"))
        .match_any();
    api.list_metadata(&own)
        .await
        .map(|l| l.items.len())
        .unwrap_or(0)
}

/// When each canary pod was first seen, by pod name.
type Seen = Arc<Mutex<BTreeMap<String, Instant>>>;

fn watch_canary_pods(ctx: &TestContext) -> (Seen, tokio::task::JoinHandle<()>) {
    let seen: Seen = Arc::default();
    let pods: Api<Pod> = ctx.api();
    let record = seen.clone();
    let task = tokio::spawn(async move {
        let mut events = watcher(pods, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            if let Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) = event {
                let mut seen = record.lock().unwrap();
                seen.entry(pod.name_any()).or_insert_with(Instant::now);
            }
        }
    });
    (seen, task)
}

/// Creates the big job while canaries arrive every 250 ms; returns how long the big job's
/// pods and Services took and each canary's latency (submitted → both pods exist).
async fn create_with_canaries(
    big: &TestContext,
    canaries: &TestContext,
    seen: &Seen,
    name: &str,
    workers: u32,
    dynamic: bool,
) -> (Duration, Vec<Duration>) {
    let started = Instant::now();
    submit(big, &big_job(name, workers, dynamic)).await;
    let submitted: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let submitter = tokio::spawn({
        let (client, namespace, name) = (
            canaries.client.clone(),
            canaries.namespace.clone(),
            name.to_string(),
        );
        let submitted = submitted.clone();
        async move {
            let jobs: Api<TFJob> = Api::namespaced(client, &namespace);
            for i in 0..400 {
                let job: TFJob = serde_saphyr::from_str(&canary(&format!("{name}-c{i}")))
                    .expect("a canary TFJob");
                jobs.create(&Default::default(), &job)
                    .await
                    .expect("canary created");
                submitted
                    .lock()
                    .unwrap()
                    .push((job.name_any(), Instant::now()));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    });
    let expected = workers as usize + 1;
    let (pods, services): (Api<Pod>, Api<Service>) = (big.api(), big.api());
    loop {
        let (p, s) = (count(&pods, name).await, count(&services, name).await);
        if p == expected && s == expected {
            break;
        }
        assert!(
            started.elapsed() < secs(600),
            "{name}: {p} of {expected} pods and {s} Services after 10 minutes"
        );
        tokio::time::sleep(secs(2)).await;
    }
    let took = started.elapsed();
    submitter.abort();
    let _ = submitter.await;
    let submitted = submitted.lock().unwrap().clone();
    let latencies = wait_for(secs(60), "every canary's pods", || async {
        let seen = seen.lock().unwrap();
        submitted
            .iter()
            .map(|(job, at)| {
                let pods = [format!("{job}-worker-0"), format!("{job}-worker-1")];
                let last = pods.iter().map(|p| seen.get(p)).collect::<Option<Vec<_>>>();
                match last {
                    Some(times) => Ok(times
                        .into_iter()
                        .max()
                        .unwrap()
                        .saturating_duration_since(*at)),
                    None => Err(format!("{job} has not both pods yet")),
                }
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await;
    (took, latencies)
}

fn p99(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let rank = (samples.len() * 99).div_ceil(100).max(1);
    samples[rank - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_jobs_are_created_in_bounded_memory_without_holding_up_small_ones() {
    let big = TestContext::new("lg").await;
    let canaries = TestContext::new("canary").await;
    let (seen, watch) = watch_canary_pods(&canaries);
    let mut operator =
        OperatorBinary::start_release("scale", &control_plane().kubeconfig, &[]).await;

    let mut report = Vec::new();
    for (name, workers, dynamic) in [("std", 3_000, false), ("sparse", 10_000, true)] {
        let (took, latencies) =
            create_with_canaries(&big, &canaries, &seen, name, workers, dynamic).await;
        let peak_mib = operator.peak_rss_kib().expect("the operator runs") / 1024;
        let (n, worst) = (latencies.len(), p99(latencies.clone()));
        let line = format!(
            "{name}: 1 PS + {workers} workers{}: pods and Services created in {took:.1?}, \
             operator peak RSS {peak_mib} MiB; {n} canaries, p99 {worst:.2?} to all pods",
            if dynamic {
                " (enableDynamicWorker)"
            } else {
                ""
            }
        );
        eprintln!("{line}");
        report.push(line);
        assert!(
            peak_mib <= RSS_LIMIT_MIB,
            "{name}: peak RSS {peak_mib} MiB over {RSS_LIMIT_MIB} MiB"
        );
        assert!(n >= 1, "{name}: no canary ran during the creation");
        assert!(
            worst <= secs(1),
            "{name}: canary p99 {worst:?} over 1 s: {latencies:?}"
        );
    }

    // Over the limit: failed before any pod, naming the field, the size and the way out.
    let long = "a-job-whose-long-name-makes-every-host-longer";
    submit(&big, &big_job(long, 4_000, false)).await;
    let jobs: Api<TFJob> = big.api();
    let message = wait_for(secs(30), "the oversized job to fail", || async {
        let job = jobs.get(long).await.map_err(|e| e.to_string())?;
        job.status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Failed"))
            .map(|c| c.message.clone().unwrap_or_default())
            .ok_or_else(|| format!("{:?}", conditions(&job)))
    })
    .await;
    for part in [
        "spec.tfReplicaSpecs",
        "TF_CONFIG would be",
        "enableDynamicWorker",
    ] {
        assert!(message.contains(part), "{part:?} missing from {message:?}");
    }
    let pods: Api<Pod> = big.api();
    let own = ListParams::default().labels(&format!("training.kubeflow.org/job-name={long}"));
    assert_eq!(pods.list_metadata(&own).await.unwrap().items.len(), 0);
    eprintln!("over the limit: {message}");

    watch.abort();
    assert!(operator.is_running(), "{}", operator.log_tail(20));
    drop(operator);
    canaries.teardown().await;
    big.teardown().await;
}
