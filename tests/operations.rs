//! The operations layer on the real control plane, through the real `tfjob-operator` binary run
//! as a child process: paged initial list, re-list after 410 Gone, namespace and label-selector
//! scoping, leader election and hand-over, every metric of the README scraped over HTTP,
//! `/readyz` and `/healthz`, SIGTERM, and the JSON log format.
//!
//! Each test has its own namespace(s) and scopes its operators to them, so the tests of this file
//! run in parallel on one control plane. Two take [`EXCLUSIVE`] for writing and run alone: the
//! one that compacts etcd and resets the apiserver's TFJob watch cache (every other operator
//! would see that), and the one that creates 2,000 jobs (it saturates the control plane, which
//! would starve the lease renewals and timings measured by the others).

use test_support as support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::RwLock;

use support::binary::{OperatorBinary, Scrape, http, message};
use support::etcd::{bump_and_compact, etcd_endpoint};
use support::operator::{has, sim_kubelet};
use support::pod_history::PodHistory;
use support::*;
use tfjob_core::api::TFJob;

/// Taken for reading by every test; for writing by the test that disturbs the whole apiserver.
static EXCLUSIVE: RwLock<()> = RwLock::const_new(());

// ---------------------------------------------------------------------------------------------
// The operator as a child process
// ---------------------------------------------------------------------------------------------

/// Starts `tfjob-operator run ARGS` against the test control plane (JSON logs, both endpoints on
/// free loopback ports) and waits until it serves them. `env` adds variables to an otherwise
/// empty environment (so a `RUST_LOG` or `TFJOB_*` of the caller cannot change the flags under
/// test).
async fn start_operator(name: &str, args: &[&str], env: &[(&str, &str)]) -> OperatorBinary {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    OperatorBinary::start_with_env(name, &control_plane().kubeconfig, &args, env).await
}

/// `(status, body)` of a probe endpoint, or the connection error.
async fn probe(operator: &OperatorBinary, path: &str) -> Result<(u16, String), String> {
    let probes = operator.probes.expect("the operator serves its probes");
    http(probes, "GET", path, "")
        .await
        .map_err(|e| e.to_string())
}

/// Sum of the samples of `name` whose labels include `labels`; `None` if there is none.
fn sample(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let present = scrape.matching(name, labels).next().is_some();
    present.then(|| scrape.sum(name, labels))
}

/// Like [`wait_for`] but probing every 20 ms, for waits whose duration is measured.
async fn wait_fast<F, Fut, T>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cluster helpers
// ---------------------------------------------------------------------------------------------

const FAST: &str = "sim.tfjob-operator.dev/pending-ms: '0', sim.tfjob-operator.dev/run-ms: '300'";
const FOREVER: &str =
    "sim.tfjob-operator.dev/pending-ms: '0', sim.tfjob-operator.dev/run-forever: 'true'";

/// A TFJob with one replica type.
fn job(
    name: &str,
    labels: &[(&str, &str)],
    run_policy: Value,
    replicas: i32,
    policy: &str,
    annotations: &str,
) -> TFJob {
    let annotations: BTreeMap<String, String> = annotations
        .split(", ")
        .filter(|a| !a.is_empty())
        .map(|a| {
            let (k, v) = a.split_once(": ").expect("key: value");
            (k.to_string(), v.trim_matches('\'').to_string())
        })
        .collect();
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    serde_json::from_value(json!({
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "runPolicy": run_policy,
            "tfReplicaSpecs": {"Worker": {
                "replicas": replicas,
                "restartPolicy": policy,
                "template": {
                    "metadata": {"annotations": annotations},
                    "spec": {"containers": [{"name": "tensorflow", "image": "tf"}]}
                }
            }}
        }
    }))
    .expect("a valid TFJob")
}

async fn create(ctx: &TestContext, namespace: &str, job: &TFJob) {
    Api::<TFJob>::namespaced(ctx.client.clone(), namespace)
        .create(&PostParams::default(), job)
        .await
        .unwrap_or_else(|e| panic!("creating TFJob {namespace}/{} failed: {e}", job.name_any()));
}

async fn pods_in(ctx: &TestContext, namespace: &str) -> Vec<String> {
    let mut names: Vec<String> = Api::<Pod>::namespaced(ctx.client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .expect("list pods")
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    names.sort();
    names
}

/// Waits until the TFJob `namespace/name` has condition `type_=True`.
async fn await_job(
    ctx: &TestContext,
    namespace: &str,
    name: &str,
    type_: &str,
    timeout: Duration,
) -> TFJob {
    let jobs: Api<TFJob> = Api::namespaced(ctx.client.clone(), namespace);
    await_object(
        &jobs,
        name,
        timeout,
        &format!("{name} to be {type_}"),
        |j| has(j, type_),
    )
    .await
}

/// The operator's requests in `namespace` from the apiserver audit log (writes only, the
/// audit policy's scope): `(verb, resource, subresource, name, code)`.
fn operator_writes(namespace: &str) -> Vec<(String, String, String, String, u16)> {
    let text = std::fs::read_to_string(control_plane().audit_log()).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["stage"] == "ResponseComplete")
        .filter(|e| {
            e["userAgent"]
                .as_str()
                .is_some_and(|ua| ua.starts_with("tfjob-operator/"))
        })
        .filter(|e| e["objectRef"]["namespace"] == namespace)
        .map(|e| {
            let field = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (
                field(&e["verb"]),
                field(&e["objectRef"]["resource"]),
                field(&e["objectRef"]["subresource"]),
                field(&e["objectRef"]["name"]),
                e["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
            )
        })
        .collect()
}

/// How many times the operator created each pod (any response code).
fn pod_creates(namespace: &str) -> BTreeMap<String, Vec<u16>> {
    let mut creates: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for (verb, resource, subresource, name, code) in operator_writes(namespace) {
        if verb == "create" && resource == "pods" && subresource.is_empty() {
            creates.entry(name).or_default().push(code);
        }
    }
    creates
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// 2,000 TFJobs, listed 100 at a time: `/readyz` stays 503 until the cache holds every one of
/// them (and `/healthz` is 200 throughout), the list was paged, and every job was reconciled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_list_of_2000_jobs_in_pages_of_100_fills_the_cache_before_ready() {
    // Creating 2,000 objects saturates a 2-core control plane for seconds: alone, so that the
    // lease renewals and timings of the other tests are not starved by it.
    let _exclusive = EXCLUSIVE.write().await;
    let ctx = TestContext::new("list2000").await;
    const JOBS: usize = 2000;
    let jobs: Api<TFJob> = ctx.api();
    // Jobs handed to another controller (Kueue): cached and reconciled, but never written to,
    // which keeps 2,000 of them light.
    let kueue = json!({"managedBy": "kueue.x-k8s.io/multikueue"});
    let created = Instant::now();
    futures::stream::iter(0..JOBS)
        .map(|i| {
            let jobs = jobs.clone();
            let job = job(&format!("j{i:04}"), &[], kueue.clone(), 1, "Never", "");
            async move { jobs.create(&PostParams::default(), &job).await }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .expect("create 2,000 TFJobs");
    let created = created.elapsed();

    let mut operator = start_operator(
        "list2000",
        &[
            &format!("--namespace={}", ctx.namespace),
            "--list-page-size=100",
            // kube's request log: one `requesting` line per request, in a span with its URL.
            "--log-level=info,kube_client::client::builder=debug",
        ],
        &[],
    )
    .await;

    // Poll both probes from the start; readiness must not come before the whole list.
    let not_ready = std::cell::Cell::new(0);
    let ready_after = wait_fast(secs(60), "/readyz to turn 200", || {
        let (operator, not_ready) = (&operator, &not_ready);
        async move {
            let health = probe(operator, "/healthz").await?;
            assert_eq!(health, (200, "ok".to_string()), "/healthz while starting");
            match probe(operator, "/readyz").await? {
                (200, _) => Ok(operator.started.elapsed()),
                (503, reason) => {
                    assert_eq!(reason, "caches not synced");
                    not_ready.set(not_ready.get() + 1);
                    Err(reason)
                }
                other => panic!("/readyz answered {other:?}"),
            }
        }
    })
    .await;
    let not_ready = not_ready.get();
    assert!(not_ready > 0, "/readyz was never seen unready");
    let scrape = operator.scrape().await;
    assert_eq!(
        scrape.sum("tfjob_operator_jobs", &[("job_namespace", &ctx.namespace)]),
        JOBS as f64,
        "every job is cached when /readyz first says ready: {:?}",
        scrape.series("tfjob_operator_jobs")
    );
    assert_eq!(
        sample(&scrape, "tfjob_operator_jobs", &[("state", "Pending")]),
        Some(JOBS as f64)
    );

    // Every job reaches the reconciler.
    let reconciles = wait_for(secs(60), "2,000 reconciles", || async {
        let n = operator
            .scrape()
            .await
            .sum("tfjob_operator_reconcile_total", &[]);
        if n >= JOBS as f64 {
            Ok(n)
        } else {
            Err(format!("{n} reconciles"))
        }
    })
    .await;

    // Paged: the TFJob list took exactly 20 requests with limit=100, 19 of them continuations.
    let lists: Vec<String> = operator
        .log_lines()
        .iter()
        .filter(|l| message(l) == "requesting" && l["otel.name"] == "list")
        .filter_map(|l| l["http.url"].as_str().map(str::to_string))
        .filter(|url| url.contains("/tfjobs?"))
        .collect();
    let pages: Vec<&String> = lists.iter().filter(|u| u.contains("limit=100")).collect();
    assert_eq!(pages.len(), JOBS / 100, "TFJob list requests: {lists:#?}");
    assert_eq!(
        pages.iter().filter(|u| u.contains("continue=")).count(),
        JOBS / 100 - 1,
        "{pages:#?}"
    );
    // The same from the operator's own request metric: 20 TFJob pages and one page each of pods
    // and Services (the CRD probe is a `list_metadata`); no watch restarted.
    let scrape = operator.scrape().await;
    assert_eq!(
        sample(
            &scrape,
            "tfjob_operator_api_requests_total",
            &[("verb", "list"), ("code", "200")]
        ),
        Some((JOBS / 100 + 2) as f64),
        "{:?}",
        scrape.series("tfjob_operator_api_requests_total")
    );
    assert_eq!(scrape.sum("tfjob_operator_watch_restarts_total", &[]), 0.0);
    assert!(
        operator_writes(&ctx.namespace).is_empty(),
        "Kueue's jobs are not written to"
    );

    assert!(operator.terminate(secs(10)).await.success());
    eprintln!(
        "2,000 jobs: created in {:.1}s; operator ready {:.2}s after start ({not_ready} polls saw 503); {reconciles} reconciles",
        created.as_secs_f64(),
        ready_after.as_secs_f64()
    );
    ctx.teardown().await;
}

/// Lines of a JSON log whose `error` field contains `text`.
fn errors_containing(lines: &[Value], text: &str) -> usize {
    lines
        .iter()
        .filter(|l| l["error"].as_str().is_some_and(|e| e.contains(text)))
        .count()
}

/// The operator's writes in `namespace` received after `since`, as `verb resource/name`.
fn operator_writes_since(namespace: &str, since: jiff::Timestamp) -> Vec<String> {
    let text = std::fs::read_to_string(control_plane().audit_log()).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["stage"] == "ResponseComplete" && e["objectRef"]["namespace"] == namespace)
        .filter(|e| {
            e["userAgent"]
                .as_str()
                .is_some_and(|ua| ua.starts_with("tfjob-operator/"))
        })
        .filter(|e| {
            e["requestReceivedTimestamp"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .is_some_and(|t| t > since)
        })
        .map(|e| {
            format!(
                "{} {}/{}{}",
                e["verb"].as_str().unwrap_or_default(),
                e["objectRef"]["resource"].as_str().unwrap_or_default(),
                e["objectRef"]["name"].as_str().unwrap_or_default(),
                e["objectRef"]["subresource"]
                    .as_str()
                    .map(|s| format!("/{s}"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// Compacts etcd every few milliseconds until dropped, so that any paged list taking longer
/// than that gets 410 Expired on its next page.
struct Compactor(tokio::task::JoinHandle<()>);

impl Compactor {
    fn start(etcd: SocketAddr) -> Compactor {
        Compactor(tokio::spawn(async move {
            loop {
                bump_and_compact(etcd).await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }))
    }
}

impl Drop for Compactor {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Puts the TFJob CRD back as the project defines it when dropped (also when a test fails).
struct RestoreCrd;

impl Drop for RestoreCrd {
    fn drop(&mut self) {
        let restore = std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let text = std::fs::read_to_string(TFJOB_CRD_PATH).expect("the CRD file");
                let crd: CustomResourceDefinition = serde_saphyr::from_str(&text).expect("a CRD");
                install_crd(&client().await, &crd).await;
            });
        });
        let _ = restore.join();
    }
}

/// etcd compaction during the paged initial list (its continue token expires: 410) and a TFJob
/// watch that can no longer resume (410 "too old resource version") both make the operator
/// list again and carry on: jobs created or changed while it was not watching are reconciled,
/// nothing settled is written again, no pod is created twice. Watches that merely time out
/// resume across a compaction without a re-list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_and_a_dropped_watch_make_the_operator_relist_without_duplicate_work() {
    let _exclusive = EXCLUSIVE.write().await;
    let ctx = TestContext::new("relist").await;
    let ns = ctx.namespace.as_str();
    let pod_history = PodHistory::record(&ctx);
    let _kubelet = sim_kubelet(&ctx);
    const BEFORE: usize = 8;
    for i in 0..BEFORE {
        create(
            &ctx,
            ns,
            &job(&format!("before-{i}"), &[], json!({}), 1, "Never", FOREVER),
        )
        .await;
    }
    let tfjob_restarts = |s: &Scrape| {
        s.sum(
            "tfjob_operator_watch_restarts_total",
            &[("resource", "tfjobs")],
        )
    };

    // 1. Compact etcd continuously while the operator starts. Its TFJob list has four pages at
    // least 100 ms apart (10 requests/s, burst 1), so each continuation names a compacted
    // revision and is answered 410 Expired: the watcher lists again from the start.
    let etcd = etcd_endpoint(&control_plane().dir);
    let compactor = Compactor::start(etcd);
    let operator = start_operator(
        "relist",
        &[
            &format!("--namespace={ns}"),
            "--list-page-size=2",
            "--kube-api-qps=10",
            "--kube-api-burst=1",
            "--watch-timeout-seconds=1",
        ],
        &[],
    )
    .await;
    wait_for(secs(30), "a TFJob list to fail with 410", || async {
        let scrape = operator.scrape().await;
        if tfjob_restarts(&scrape) >= 1.0 {
            Ok(())
        } else {
            Err(format!(
                "{:?}",
                scrape.series("tfjob_operator_watch_restarts_total")
            ))
        }
    })
    .await;
    drop(compactor);
    assert!(
        errors_containing(&operator.log_lines(), "continue parameter is too old") >= 1,
        "the list failed because of the compaction:\n{}",
        operator.log_tail(20)
    );
    wait_for(secs(30), "/readyz", || async {
        matches!(probe(&operator, "/readyz").await, Ok((200, _)))
    })
    .await;
    for i in 0..BEFORE {
        await_job(&ctx, ns, &format!("before-{i}"), "Running", secs(60)).await;
    }

    // 2. Watches end every second (--watch-timeout-seconds=1) and resume from their last
    // resourceVersion, which etcd has compacted by now: the apiserver's watch cache still serves
    // them, so nothing is re-listed and nothing is written again.
    let settled = jiff::Timestamp::now();
    let before = operator.scrape().await;
    let watches = |s: &Scrape| s.sum("tfjob_operator_api_requests_total", &[("verb", "watch")]);
    bump_and_compact(etcd).await;
    wait_for(
        secs(20),
        "every watch to resume twice after the compaction",
        || async {
            let n = watches(&operator.scrape().await) - watches(&before);
            if n >= 6.0 {
                Ok(())
            } else {
                Err(format!("{n} new watch requests"))
            }
        },
    )
    .await;
    create(
        &ctx,
        ns,
        &job("a-resumed", &[], json!({}), 1, "Never", FOREVER),
    )
    .await;
    await_job(&ctx, ns, "a-resumed", "Running", secs(30)).await;
    let scrape = operator.scrape().await;
    assert_eq!(
        scrape.sum("tfjob_operator_watch_restarts_total", &[]),
        before.sum("tfjob_operator_watch_restarts_total", &[]),
        "a resumed watch needs no re-list: {:?}",
        scrape.series("tfjob_operator_watch_restarts_total")
    );

    // 3. Drop the TFJob watch for good: a change to the CRD's spec makes kube-apiserver rebuild
    // the resource's storage and watch cache at the current revision, so the operator's watch
    // ends and its resume is answered 410 "too old resource version" (etcd compaction alone
    // cannot do that on an apiserver with a watch cache). Compaction keeps the re-list failing
    // meanwhile, so a job is created and another suspended while the operator is not watching.
    let restore_crd = RestoreCrd;
    let restarts = tfjob_restarts(&operator.scrape().await);
    let compactor = Compactor::start(etcd);
    let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    let column = json!([{"op": "add", "path": "/spec/versions/0/additionalPrinterColumns/-",
        "value": {"name": "Test", "type": "string", "jsonPath": ".metadata.uid"}}]);
    crds.patch(
        "tfjobs.kubeflow.org",
        &PatchParams::default(),
        &Patch::<()>::Json(serde_json::from_value(column).expect("json patch")),
    )
    .await
    .expect("patch the CRD");
    wait_for(secs(30), "the TFJob watch to fail with 410", || async {
        let n = tfjob_restarts(&operator.scrape().await);
        if n > restarts {
            Ok(())
        } else {
            Err(format!("{n} TFJob watch restarts"))
        }
    })
    .await;
    assert!(
        errors_containing(&operator.log_lines(), "too old resource version") >= 1,
        "the watch failed with 410:\n{}",
        operator.log_tail(20)
    );
    create(
        &ctx,
        ns,
        &job("a-unwatched", &[], json!({}), 1, "Never", FOREVER),
    )
    .await;
    Api::<TFJob>::namespaced(ctx.client.clone(), ns)
        .patch(
            "a-resumed",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"runPolicy": {"suspend": true}}})),
        )
        .await
        .expect("suspend a-resumed");
    // A re-list failing after both changes proves they happened before the list that succeeds.
    // Both jobs are on its first page (names sort first), so they are listed while the store
    // still holds the old list: a reconcile started for them then would find the old state.
    let failed = tfjob_restarts(&operator.scrape().await);
    wait_for(secs(30), "another failed re-list", || async {
        let n = tfjob_restarts(&operator.scrape().await);
        if n > failed {
            Ok(())
        } else {
            Err(format!("{n} TFJob watch restarts"))
        }
    })
    .await;
    drop(compactor);
    await_job(&ctx, ns, "a-unwatched", "Running", secs(30)).await;
    await_job(&ctx, ns, "a-resumed", "Suspended", secs(30)).await;

    // Put the CRD back (another storage reset, another re-list) before other tests run.
    let restarts = tfjob_restarts(&operator.scrape().await);
    drop(restore_crd);
    wait_for(secs(30), "the re-list after restoring the CRD", || async {
        let n = tfjob_restarts(&operator.scrape().await);
        if n > restarts {
            Ok(())
        } else {
            Err(format!("{n} TFJob watch restarts"))
        }
    })
    .await;
    create(
        &ctx,
        ns,
        &job("restored", &[], json!({}), 1, "Never", FOREVER),
    )
    .await;
    await_job(&ctx, ns, "restored", "Running", secs(30)).await;

    // No duplicate work: the settled jobs were not written to again by any re-list or resume,
    // and every pod was created once (one create request, one UID).
    let late: Vec<String> = operator_writes_since(ns, settled)
        .into_iter()
        .filter(|w| w.contains("/before-"))
        .collect();
    assert!(
        late.is_empty(),
        "writes for settled jobs after they settled: {late:#?}"
    );
    let creates = pod_creates(ns);
    let expected: BTreeSet<String> = (0..BEFORE)
        .map(|i| format!("before-{i}-worker-0"))
        .chain(["a-resumed", "a-unwatched", "restored"].map(|j| format!("{j}-worker-0")))
        .collect();
    assert_eq!(creates.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(creates.values().all(|codes| codes == &[201]), "{creates:?}");
    pod_history.stop();
    pod_history.assert_no_pod_created_twice();
    let scrape = operator.scrape().await;
    assert_eq!(
        scrape.sum("tfjob_operator_reconcile_errors_total", &[]),
        0.0
    );
    eprintln!(
        "re-lists: {} TFJob watch restarts (410 on a compacted continue token or a too-old resourceVersion)",
        tfjob_restarts(&scrape)
    );
    ctx.teardown().await;
}

/// `--namespace a,b --job-selector shard=a`: only jobs in a or b labelled shard=a are cached,
/// get a status and get pods; nothing the operator sends touches anything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_and_label_selector_scoping_only_touch_the_selected_jobs() {
    let _shared = EXCLUSIVE.read().await;
    let a = TestContext::new("scope-a").await;
    let b = TestContext::new("scope-b").await;
    let c = TestContext::new("scope-c").await;
    let namespaces = [&a.namespace, &b.namespace, &c.namespace];
    for ns in namespaces {
        create(
            &a,
            ns,
            &job("shard-a", &[("shard", "a")], json!({}), 1, "Never", ""),
        )
        .await;
        create(
            &a,
            ns,
            &job("shard-b", &[("shard", "b")], json!({}), 1, "Never", ""),
        )
        .await;
        create(&a, ns, &job("unlabelled", &[], json!({}), 1, "Never", "")).await;
    }
    let operator = start_operator(
        "scope",
        &[
            &format!("--namespace={},{}", a.namespace, b.namespace),
            "--job-selector=shard=a",
        ],
        &[],
    )
    .await;
    wait_for(secs(30), "/readyz", || async {
        matches!(probe(&operator, "/readyz").await, Ok((200, _)))
    })
    .await;
    // The watches are filtered by the apiserver: the cache never held the other seven jobs.
    let scrape = operator.scrape().await;
    assert_eq!(
        scrape.sum("tfjob_operator_jobs", &[]),
        2.0,
        "{:?}",
        scrape.series("tfjob_operator_jobs")
    );
    assert_eq!(
        scrape.sum("tfjob_operator_jobs", &[("job_namespace", &a.namespace)]),
        1.0
    );
    assert_eq!(
        scrape.sum("tfjob_operator_jobs", &[("job_namespace", &b.namespace)]),
        1.0
    );

    // Jobs created while it runs are filtered the same way.
    create(
        &a,
        &a.namespace,
        &job("late", &[("shard", "a")], json!({}), 1, "Never", ""),
    )
    .await;
    create(
        &a,
        &a.namespace,
        &job("late-b", &[("shard", "b")], json!({}), 1, "Never", ""),
    )
    .await;
    create(
        &a,
        &c.namespace,
        &job("late", &[("shard", "a")], json!({}), 1, "Never", ""),
    )
    .await;
    for (ns, name) in [
        (&a.namespace, "shard-a"),
        (&b.namespace, "shard-a"),
        (&a.namespace, "late"),
    ] {
        await_job(&a, ns, name, "Created", secs(30)).await;
    }
    wait_for(secs(30), "the selected jobs' pods", || async {
        let (in_a, in_b) = (
            pods_in(&a, &a.namespace).await,
            pods_in(&a, &b.namespace).await,
        );
        if in_a == ["late-worker-0", "shard-a-worker-0"] && in_b == ["shard-a-worker-0"] {
            Ok(())
        } else {
            Err(format!("{in_a:?} {in_b:?}"))
        }
    })
    .await;

    assert!(pods_in(&a, &c.namespace).await.is_empty());
    for (ns, names) in [
        (&a.namespace, &["shard-b", "unlabelled", "late-b"][..]),
        (&b.namespace, &["shard-b", "unlabelled"]),
        (&c.namespace, &["shard-a", "shard-b", "unlabelled", "late"]),
    ] {
        let jobs: Api<TFJob> = Api::namespaced(a.client.clone(), ns);
        for name in names {
            let job = jobs.get(name).await.expect("get job");
            assert!(
                job.status.is_none(),
                "{ns}/{name} got a status: {:?}",
                job.status
            );
        }
    }
    assert!(
        operator_writes(&c.namespace).is_empty(),
        "{:?}",
        operator_writes(&c.namespace)
    );
    for ns in [&a.namespace, &b.namespace] {
        for (verb, resource, subresource, name, _) in operator_writes(ns) {
            let job = match resource.as_str() {
                "tfjobs" => name.clone(),
                "pods" | "services" => name.trim_end_matches("-worker-0").to_string(),
                // Events are named after the object they are about: `<job>.<suffix>`.
                _ => name.split('.').next().unwrap_or_default().to_string(),
            };
            assert!(
                job == "shard-a" || (job == "late" && ns == &a.namespace),
                "{verb} {resource}/{name}/{subresource} in {ns} is outside the scope"
            );
        }
    }
    let scrape = operator.scrape().await;
    assert_eq!(
        scrape.sum("tfjob_operator_jobs", &[]),
        3.0,
        "{:?}",
        scrape.series("tfjob_operator_jobs")
    );
    assert_eq!(scrape.sum("training_operator_jobs_created_total", &[]), 3.0);
    c.teardown().await;
    b.teardown().await;
    a.teardown().await;
}

/// `reportingInstance` of the events about TFJob `name` with `reason`, once there is at least one
/// (events are published after the status that records the transition).
async fn event_reporters(ctx: &TestContext, name: &str, reason: &str) -> Vec<String> {
    let events: Api<Event> = ctx.api();
    wait_for(
        secs(10),
        &format!("a {reason} event about {name}"),
        || async {
            let reporters: Vec<String> = events
                .list(&ListParams::default())
                .await
                .expect("list events")
                .items
                .into_iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
                .filter(|e| e.reason.as_deref() == Some(reason))
                .map(|e| e.reporting_instance.unwrap_or_default())
                .collect();
            if reporters.is_empty() {
                Err("none yet".to_string())
            } else {
                Ok(reporters)
            }
        },
    )
    .await
}

async fn lease_holder(ctx: &TestContext, name: &str) -> Option<String> {
    let leases: Api<Lease> = ctx.api();
    leases
        .get_opt(name)
        .await
        .expect("get lease")
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

fn leader_args(ctx: &TestContext, timings: [&str; 3]) -> Vec<String> {
    vec![
        format!("--namespace={}", ctx.namespace),
        "--leader-elect".into(),
        "--leader-election-id=tfjob-operator-test".into(),
        format!("--leader-election-namespace={}", ctx.namespace),
        format!("--lease-duration={}", timings[0]),
        format!("--renew-deadline={}", timings[1]),
        format!("--retry-period={}", timings[2]),
    ]
}

async fn is_leader(operator: &OperatorBinary) -> f64 {
    operator.scrape().await.sum("tfjob_operator_is_leader", &[])
}

/// Two processes on one Lease: only the leader talks to anything but the Lease; a SIGKILLed
/// leader is replaced once its lease expires, and the new leader creates no pod twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_only_the_leader_reconciles_and_a_killed_leader_is_replaced() {
    let _shared = EXCLUSIVE.read().await;
    let ctx = TestContext::new("leader").await;
    let pod_history = PodHistory::record(&ctx);
    let args = leader_args(&ctx, ["3s", "2s", "500ms"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let mut a = start_operator("leader-a", &args, &[("POD_NAME", "op-a")]).await;
    wait_for(secs(20), "op-a to lead and be ready", || async {
        matches!(probe(&a, "/readyz").await, Ok((200, _))) && is_leader(&a).await == 1.0
    })
    .await;
    let b = start_operator("leader-b", &args, &[("POD_NAME", "op-b")]).await;
    wait_for(secs(20), "op-b to stand by", || async {
        b.log_lines()
            .iter()
            .any(|l| message(l) == "waiting for leadership")
    })
    .await;
    assert_eq!(
        probe(&b, "/readyz").await,
        Ok((200, "ok".to_string())),
        "a standby is ready"
    );
    assert_eq!(is_leader(&b).await, 0.0);
    let holder_a = lease_holder(&ctx, "tfjob-operator-test")
        .await
        .expect("a holder");
    assert!(holder_a.starts_with("op-a_"), "{holder_a}");

    create(
        &ctx,
        &ctx.namespace,
        &job("first", &[], json!({}), 2, "Never", ""),
    )
    .await;
    await_job(&ctx, &ctx.namespace, "first", "Created", secs(30)).await;
    wait_for(secs(30), "first's pods", || async {
        pods_in(&ctx, &ctx.namespace).await == ["first-worker-0", "first-worker-1"]
    })
    .await;
    let standby = b.scrape().await;
    assert_eq!(standby.sum("tfjob_operator_reconcile_total", &[]), 0.0);
    assert_eq!(standby.sum("tfjob_operator_pods_created_total", &[]), 0.0);
    for sample in standby.samples("tfjob_operator_api_requests_total") {
        assert_eq!(
            sample.labels["verb"], "get",
            "a standby only reads the Lease: {sample:?}"
        );
    }
    let reporters = event_reporters(&ctx, "first", "SuccessfulCreatePod").await;
    assert!(
        !reporters.is_empty() && reporters.iter().all(|r| r == &holder_a),
        "{reporters:?}"
    );

    // SIGKILL: no release, the standby must wait for the lease to expire.
    a.kill().await;
    let killed = Instant::now();
    create(
        &ctx,
        &ctx.namespace,
        &job("second", &[], json!({}), 2, "Never", ""),
    )
    .await;
    wait_fast(secs(15), "op-b to lead", || async {
        if is_leader(&b).await == 1.0 {
            Ok(())
        } else {
            Err("standby".to_string())
        }
    })
    .await;
    let handover = killed.elapsed();
    await_job(&ctx, &ctx.namespace, "second", "Created", secs(30)).await;
    let reconciling = killed.elapsed();
    wait_for(secs(30), "all four pods", || async {
        pods_in(&ctx, &ctx.namespace).await.len() == 4
    })
    .await;
    let holder_b = lease_holder(&ctx, "tfjob-operator-test")
        .await
        .expect("a holder");
    assert!(holder_b.starts_with("op-b_"), "{holder_b}");
    assert_eq!(
        event_reporters(&ctx, "second", "SuccessfulCreatePod").await,
        [holder_b]
    );
    assert_eq!(probe(&b, "/readyz").await, Ok((200, "ok".to_string())));
    // A standby may take over only once the lease has expired: lease duration after the last
    // renewal it saw, which it sees up to one (jittered) retry period late, then up to one more
    // retry period until its next attempt: 3 s + 2 × 1.1 s at most, plus request time.
    assert!(
        handover >= Duration::from_millis(2000),
        "took over a live lease after {handover:?}"
    );
    assert!(
        handover <= Duration::from_millis(5700),
        "hand-over took {handover:?}"
    );

    pod_history.stop();
    pod_history.assert_no_pod_created_twice();
    let creates = pod_creates(&ctx.namespace);
    assert_eq!(creates.len(), 4, "{creates:?}");
    assert!(
        creates.values().all(|codes| codes == &[201]),
        "no pod create was repeated: {creates:?}"
    );
    eprintln!(
        "leader hand-over after SIGKILL: lease taken over {:.2}s after the kill, second job Created {:.2}s after it",
        handover.as_secs_f64(),
        reconciling.as_secs_f64()
    );
    ctx.teardown().await;
}

/// SIGTERM while a reconcile creates 60 pods: the reconcile finishes, the Lease is handed back
/// (so the standby leads at once, long before the 15 s lease would expire) and the process
/// exits 0 well within a 10 s grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_reconciles_releases_the_lease_and_exits_0() {
    let _shared = EXCLUSIVE.read().await;
    let ctx = TestContext::new("sigterm").await;
    let pod_history = PodHistory::record(&ctx);
    let args = leader_args(&ctx, ["15s", "10s", "1s"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut a = start_operator("sigterm-a", &args, &[("POD_NAME", "op-a")]).await;
    wait_for(secs(20), "op-a to lead and be ready", || async {
        matches!(probe(&a, "/readyz").await, Ok((200, _))) && is_leader(&a).await == 1.0
    })
    .await;
    let b = start_operator("sigterm-b", &args, &[("POD_NAME", "op-b")]).await;
    wait_for(secs(20), "op-b to stand by", || async {
        b.log_lines()
            .iter()
            .any(|l| message(l) == "waiting for leadership")
    })
    .await;
    let holder_a = lease_holder(&ctx, "tfjob-operator-test")
        .await
        .expect("a holder");

    create(
        &ctx,
        &ctx.namespace,
        &job("big", &[], json!({}), 60, "Never", ""),
    )
    .await;
    wait_fast(secs(30), "the first pod", || async {
        if pod_history.names_seen() == 0 {
            Err("no pod yet".to_string())
        } else {
            Ok(())
        }
    })
    .await;
    let terminated = Instant::now();
    let status = a.terminate(secs(10)).await;
    let shutdown = terminated.elapsed();
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        a.log_tail(20)
    );
    let log = a.log_lines();
    for expected in [
        "SIGTERM received; stopping",
        "released the lease",
        "stopped cleanly",
    ] {
        assert!(
            log.iter().any(|l| message(l) == expected),
            "no {expected:?} in:\n{}",
            a.log_tail(20)
        );
    }
    wait_fast(secs(5), "op-b to lead", || async {
        if is_leader(&b).await == 1.0 {
            Ok(())
        } else {
            Err("standby".to_string())
        }
    })
    .await;
    let takeover = terminated.elapsed();
    // The in-flight reconcile created all 60 pods before op-a exited: op-b has none left to create.
    wait_for(secs(30), "60 pods", || async {
        pods_in(&ctx, &ctx.namespace).await.len() == 60
    })
    .await;
    await_job(&ctx, &ctx.namespace, "big", "Created", secs(30)).await;
    wait_for(secs(30), "op-b to reconcile big", || async {
        b.scrape().await.sum("tfjob_operator_reconcile_total", &[]) >= 1.0
    })
    .await;
    let scrape = b.scrape().await;
    assert_eq!(
        scrape.sum("tfjob_operator_pods_created_total", &[]),
        0.0,
        "op-a finished its work"
    );
    let reporters = event_reporters(&ctx, "big", "SuccessfulCreatePod").await;
    assert!(
        !reporters.is_empty() && reporters.iter().all(|r| r == &holder_a),
        "{reporters:?}"
    );
    pod_history.stop();
    pod_history.assert_no_pod_created_twice();
    assert!(
        takeover < secs(5),
        "the standby led {takeover:?} after SIGTERM"
    );
    eprintln!(
        "SIGTERM with 60 pod creations in flight: exit 0 after {:.2}s; standby leading {:.2}s after the signal",
        shutdown.as_secs_f64(),
        takeover.as_secs_f64()
    );
    ctx.teardown().await;
}

/// A metric name, labels its sample must have, and the value expected (summed over samples).
type Expected<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);

/// A scripted lifecycle, then every metric of the README's table scraped over HTTP from the
/// running binary with its exact value: one job succeeds, one fails, one restarts once (exit
/// code 137 under `ExitCode`), one succeeds and is deleted by its TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_has_the_right_value_after_a_scripted_lifecycle() {
    let _shared = EXCLUSIVE.read().await;
    let ctx = TestContext::new("metrics").await;
    let ns = ctx.namespace.as_str();
    let operator = start_operator("metrics", &[&format!("--namespace={ns}")], &[]).await;
    let _kubelet = sim_kubelet(&ctx);
    let exit_3 = format!("{FAST}, sim.tfjob-operator.dev/exit-code: '3'");
    let oom_once = format!(
        "{FAST}, sim.tfjob-operator.dev/fail-attempts: '1', sim.tfjob-operator.dev/reason: OOMKilled"
    );
    create(&ctx, ns, &job("ok", &[], json!({}), 1, "Never", FAST)).await;
    create(&ctx, ns, &job("bad", &[], json!({}), 1, "Never", &exit_3)).await;
    create(
        &ctx,
        ns,
        &job("flaky", &[], json!({}), 1, "ExitCode", &oom_once),
    )
    .await;
    create(
        &ctx,
        ns,
        &job(
            "ttl",
            &[],
            json!({"ttlSecondsAfterFinished": 1}),
            1,
            "Never",
            FAST,
        ),
    )
    .await;
    await_job(&ctx, ns, "ok", "Succeeded", secs(30)).await;
    await_job(&ctx, ns, "bad", "Failed", secs(30)).await;
    let flaky = await_job(&ctx, ns, "flaky", "Succeeded", secs(30)).await;
    assert_eq!(
        flaky.status.expect("status").replica_statuses["Worker"].restarts,
        1
    );
    await_deleted(&ctx.api::<TFJob>(), "ttl", secs(30)).await;

    let job_labels = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        let mut labels = vec![("job_namespace", ns), ("framework", "tensorflow")];
        labels.extend_from_slice(extra);
        labels
    };
    let expected: Vec<Expected> = vec![
        ("training_operator_jobs_created_total", job_labels(&[]), 4.0),
        (
            "training_operator_jobs_successful_total",
            job_labels(&[]),
            3.0,
        ),
        ("training_operator_jobs_failed_total", job_labels(&[]), 1.0),
        (
            "training_operator_jobs_restarted_total",
            job_labels(&[]),
            1.0,
        ),
        ("training_operator_jobs_deleted_total", job_labels(&[]), 1.0),
        // One pod per job plus flaky's replacement; flaky's failed pod deleted; one Service each.
        ("tfjob_operator_pods_created_total", vec![], 5.0),
        ("tfjob_operator_pods_deleted_total", vec![], 1.0),
        ("tfjob_operator_services_created_total", vec![], 4.0),
        ("tfjob_operator_services_deleted_total", vec![], 0.0),
        (
            "tfjob_operator_jobs",
            vec![("job_namespace", ns), ("state", "Succeeded")],
            2.0,
        ),
        (
            "tfjob_operator_jobs",
            vec![("job_namespace", ns), ("state", "Failed")],
            1.0,
        ),
        ("tfjob_operator_jobs", vec![], 3.0),
        ("tfjob_operator_is_leader", vec![], 1.0),
        (
            "tfjob_operator_build_info",
            vec![("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        ),
        ("tfjob_operator_reconcile_errors_total", vec![], 0.0),
        ("tfjob_operator_watch_restarts_total", vec![], 0.0),
        // The initial lists of TFJobs, pods and Services (one page each) and the CRD probe.
        (
            "tfjob_operator_api_requests_total",
            vec![("verb", "list"), ("code", "200")],
            3.0,
        ),
        (
            "tfjob_operator_api_requests_total",
            vec![("verb", "list_metadata"), ("code", "200")],
            1.0,
        ),
    ];
    let scrape = wait_for(secs(30), "the expected metric values", || async {
        let scrape = operator.scrape().await;
        let wrong: Vec<String> = expected
            .iter()
            .filter(|(name, labels, value)| sample(&scrape, name, labels) != Some(*value))
            .map(|(name, labels, value)| {
                format!(
                    "{name}{labels:?}: want {value}, got {:?}",
                    sample(&scrape, name, labels)
                )
            })
            .collect();
        if wrong.is_empty() {
            Ok(scrape)
        } else {
            Err(wrong.join("; "))
        }
    })
    .await;

    // Labelled families are exported before their first increment, at 0, for every known label.
    for kind in ["child_write", "status_write", "job_delete", "undecodable"] {
        assert_eq!(
            sample(
                &scrape,
                "tfjob_operator_reconcile_errors_total",
                &[("kind", kind)]
            ),
            Some(0.0)
        );
    }
    for resource in ["tfjobs", "pods", "services"] {
        assert_eq!(
            sample(
                &scrape,
                "tfjob_operator_watch_restarts_total",
                &[("resource", resource)]
            ),
            Some(0.0)
        );
    }
    let reconciles = scrape.sum("tfjob_operator_reconcile_total", &[]);
    assert!(reconciles >= 4.0, "{reconciles} reconciles");
    let observed = scrape.sum("tfjob_operator_reconcile_duration_seconds_count", &[]);
    assert!(
        observed >= 4.0 && observed <= reconciles,
        "{observed} durations for {reconciles} reconciles"
    );
    assert_eq!(
        sample(
            &scrape,
            "tfjob_operator_reconcile_duration_seconds_bucket",
            &[("le", "+Inf")]
        ),
        Some(observed)
    );
    assert!(scrape.sum("tfjob_operator_reconcile_duration_seconds_sum", &[]) > 0.0);
    // Writes by verb, each counted once with its status code: pods and Services created (plus
    // events), flaky's pod and the TTL'd job deleted, statuses patched.
    let api = |verb: &str, code: &str| {
        scrape.sum(
            "tfjob_operator_api_requests_total",
            &[("verb", verb), ("code", code)],
        )
    };
    assert!(
        api("create", "201") >= 9.0,
        "{:?}",
        scrape.series("tfjob_operator_api_requests_total")
    );
    assert_eq!(
        api("delete", "200"),
        2.0,
        "{:?}",
        scrape.series("tfjob_operator_api_requests_total")
    );
    assert!(api("watch", "200") >= 3.0);
    assert!(
        api("patch_status", "200") >= 4.0,
        "{:?}",
        scrape.series("tfjob_operator_api_requests_total")
    );
    // The same writes from the apiserver's side: the counters match the audit log.
    let writes = operator_writes(ns);
    let count = |verb: &str, resource: &str| {
        writes
            .iter()
            .filter(|w| w.0 == verb && w.1 == resource && w.2.is_empty())
            .count() as f64
    };
    assert_eq!(count("create", "pods"), 5.0, "{writes:?}");
    assert_eq!(count("delete", "pods"), 1.0, "{writes:?}");
    assert_eq!(count("create", "services"), 4.0, "{writes:?}");
    assert_eq!(count("delete", "tfjobs"), 1.0, "{writes:?}");
    ctx.teardown().await;
}

/// `--log-format json --log-level tfjob_operator=debug`: one flat JSON object per line; lines of
/// a reconcile carry the job's `namespace` and `name`; a failed reconcile is a warning naming
/// the job, the error and the retry delay (README, "Reading the logs").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_namespace_and_name_on_reconcile_lines() {
    let _shared = EXCLUSIVE.read().await;
    let ctx = TestContext::new("logs").await;
    let ns = ctx.namespace.as_str();
    let mut operator = start_operator(
        "logs",
        // JSON logs: OperatorBinary always passes --log-format=json.
        &[
            &format!("--namespace={ns}"),
            "--log-level=tfjob_operator=debug",
        ],
        &[],
    )
    .await;
    create(&ctx, ns, &job("good", &[], json!({}), 1, "Never", "")).await;
    // The apiserver rejects this job's pod (an environment variable name cannot start with a
    // digit), so its reconcile fails and is retried.
    let mut bad =
        serde_json::to_value(job("bad-env", &[], json!({}), 1, "Never", "")).expect("json");
    bad["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "1BAD", "value": "x"}]);
    create(&ctx, ns, &serde_json::from_value(bad).expect("a TFJob")).await;
    await_job(&ctx, ns, "good", "Created", secs(30)).await;
    wait_for(secs(30), "a failed reconcile of bad-env", || async {
        operator
            .log_lines()
            .iter()
            .any(|l| message(l) == "reconcile failed")
    })
    .await;
    assert!(operator.terminate(secs(10)).await.success());

    let text = operator.log_text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for line in &lines {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(line[key].is_string(), "no {key} in {line}");
        }
        let in_reconcile = line["spans"]
            .as_array()
            .is_some_and(|spans| spans.iter().any(|s| s == "reconcile"));
        if in_reconcile {
            assert_eq!(line["namespace"], ns, "{line}");
            assert!(line["name"].is_string(), "{line}");
        }
    }
    let plan = lines
        .iter()
        .find(|l| message(l) == "applying plan" && l["name"] == "good")
        .unwrap_or_else(|| panic!("no plan logged for good:\n{text}"));
    assert_eq!(plan["level"], "DEBUG");
    assert_eq!(plan["namespace"], ns);
    assert_eq!(plan["create_pods"], 1);
    assert_eq!(plan["status"], true);
    let failed = lines
        .iter()
        .find(|l| message(l) == "reconcile failed")
        .expect("a failed reconcile");
    assert_eq!(failed["level"], "WARN");
    assert_eq!(failed["job"], format!("{ns}/bad-env"), "{failed}");
    assert!(
        failed["error"].as_str().is_some_and(|e| e.contains("1BAD")),
        "{failed}"
    );
    assert!(failed["retry_in"].is_string(), "{failed}");
    assert_eq!(lines.last().map(message), Some("stopped cleanly"));
    ctx.teardown().await;
}
