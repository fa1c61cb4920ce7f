//! Reliability: faults injected into a real control plane must change nothing a user can see
//! except a delay. Every test runs the real `tfjob-operator` binary and the simulated kubelet
//! against the local kube-apiserver, with seeded scripts, and checks exact outcomes.
//!
//! - `two_hundred_jobs_survive_an_operator_sigkilled_twelve_times`: 200 TFJobs (PS/Worker/Chief,
//!   `Never`/`OnFailure`/`ExitCode`, some failing, some restarting once then succeeding) while the
//!   operator binary is SIGKILLed and restarted 12 times at seeded random moments, each at a
//!   precisely known instant (the fault proxy freezes its traffic first). Afterwards every job
//!   is Succeeded or Failed as its pods dictate; its conditions are `Created`, `Running` (False)
//!   or — for a restarted job — `Restarting`, then the end, never one twice or out of order
//!   (`Running` is missing only for jobs whose pods ran while no operator watched); restart
//!   counts are as scripted; no pod or service is created more often than scripted (audit log)
//!   nor exists with two UIDs (watch); each incarnation counted exactly the writes the apiserver
//!   acknowledged to it; the job counters summed over all incarnations never exceed the real
//!   transitions and miss only those whose reconcile a kill cut off; each transition's event is
//!   written exactly once for every job no kill interrupted.
//! - `jobs_converge_across_an_apiserver_restart_and_etcd_compaction`: jobs submitted before,
//!   during and after a kube-apiserver restart (its watch caches start empty; etcd compacted just
//!   before, so old resourceVersions are gone: 410 Gone and a re-list) all reach their scripted
//!   end state with well-formed conditions and scripted restart counts; the operator process
//!   never exits or panics; no pod or service is created twice.
//! - `jobs_converge_through_injected_api_faults_without_a_hot_loop`: with 429 (Retry-After),
//!   500, dropped connections (before and after the apiserver acted), delays and cut watches on
//!   about a third of the operator's requests, every job still reaches its scripted end state,
//!   no child is created twice, and the request rate stays bounded (write attempts per write
//!   that took effect, the busiest second, and near silence once every job has finished).
//!
//! The status that records why children go (a counted restart, a finished job's clean-up) is
//! stored before any of them is deleted, and a restart is counted once per failed pod (its UID
//! is kept in `replicaStatuses[T].restartedPods` until it is gone), so no kill or API error
//! between the two loses a restart, counts one twice or re-runs a finished job. Events are
//! written after the status: a kill may lose one (its job is then named as interrupted), never
//! write one twice.
//!
//! The tests take turns (one control plane; the apiserver restart would disturb the others, and
//! a 2-core machine measures rates better without neighbours).

use test_support as support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

use support::binary::{OperatorBinary, Scrape};
use support::etcd::{bump_and_compact, etcd_endpoint};
use support::operator::sim_kubelet;
use support::pod_history::PodHistory;
use support::proxy::{FaultProxy, Faults, Outcome, Record};
use support::*;
use tfjob_core::api::TFJob;

/// One test at a time (see the module docs).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------------------------
// Scripted jobs
// ---------------------------------------------------------------------------------------------

/// xorshift64*: the same jobs and kill moments on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Succeeded,
    Failed,
}

impl End {
    fn condition(self) -> &'static str {
        match self {
            End::Succeeded => "Succeeded",
            End::Failed => "Failed",
        }
    }
}

/// A TFJob and what its pods' scripts make of it.
#[derive(Clone, Debug)]
struct Scripted {
    name: String,
    /// What the script does, for failure messages.
    kind: &'static str,
    job: TFJob,
    end: End,
    /// Pod name → how many times it must be created (2 for a pod re-created after a retryable
    /// exit code); services have the same names and are created once each.
    pods: BTreeMap<String, usize>,
    /// `Restarting` transitions (pod re-creations under `ExitCode`).
    restarts: usize,
}

/// Annotations of the simulated kubelet: a run of `run_ms`, then exit 0.
fn runs(run_ms: u64) -> Vec<(&'static str, String)> {
    vec![("pending-ms", "0".into()), ("run-ms", run_ms.to_string())]
}

fn forever() -> Vec<(&'static str, String)> {
    vec![("pending-ms", "0".into()), ("run-forever", "true".into())]
}

fn failing(run_ms: u64, attempts: &str, code: i32) -> Vec<(&'static str, String)> {
    let mut a = runs(run_ms);
    a.push(("fail-attempts", attempts.into()));
    a.push(("exit-code", code.to_string()));
    a
}

struct Replica {
    type_: &'static str,
    replicas: usize,
    policy: &'static str,
    annotations: Vec<(&'static str, String)>,
}

fn replica(
    type_: &'static str,
    replicas: usize,
    policy: &'static str,
    annotations: Vec<(&'static str, String)>,
) -> Replica {
    Replica {
        type_,
        replicas,
        policy,
        annotations,
    }
}

fn scripted(
    name: String,
    kind: &'static str,
    clean_pod_policy: &str,
    replicas: Vec<Replica>,
    end: End,
    recreated: Option<&str>,
) -> Scripted {
    let mut specs = serde_json::Map::new();
    let mut pods = BTreeMap::new();
    for r in &replicas {
        let annotations: BTreeMap<String, String> = r
            .annotations
            .iter()
            .map(|(k, v)| (format!("sim.tfjob-operator.dev/{k}"), v.clone()))
            .collect();
        specs.insert(
            r.type_.to_string(),
            json!({
                "replicas": r.replicas,
                "restartPolicy": r.policy,
                "template": {
                    "metadata": {"annotations": annotations},
                    "spec": {"containers": [{"name": "tensorflow", "image": "tf"}]}
                }
            }),
        );
        for i in 0..r.replicas {
            let pod = format!("{name}-{}-{i}", r.type_.to_ascii_lowercase());
            let times = if recreated == Some(r.type_) { 2 } else { 1 };
            pods.insert(pod, times);
        }
    }
    let job = serde_json::from_value(json!({
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": name},
        "spec": {
            "runPolicy": {"cleanPodPolicy": clean_pod_policy},
            "tfReplicaSpecs": specs,
        }
    }))
    .expect("a valid TFJob");
    Scripted {
        name,
        kind,
        job,
        end,
        pods,
        restarts: usize::from(recreated.is_some()),
    }
}

/// One of seven scripts, drawn from `rng`. The deciding replicas run 4–5 s: longer than an
/// operator is ever down between a kill and its successor's first reconcile, so every job is
/// seen Running, as it would be without kills.
fn script(name: String, rng: &mut Rng) -> Scripted {
    let run = rng.range(4000, 5000);
    let policies = ["Never", "OnFailure", "ExitCode"];
    let cleanups = ["None", "Running", "All"];
    let n = |rng: &mut Rng, max| rng.range(1, max) as usize;
    match rng.next() % 7 {
        0 => scripted(
            name,
            "workers succeed",
            rng.pick(&cleanups),
            vec![replica("Worker", n(rng, 3), rng.pick(&policies), runs(run))],
            End::Succeeded,
            None,
        ),
        1 => scripted(
            name,
            "PS + workers succeed",
            rng.pick(&cleanups),
            vec![
                replica("PS", 1, rng.pick(&policies), forever()),
                replica("Worker", n(rng, 2), rng.pick(&policies), runs(run)),
            ],
            End::Succeeded,
            None,
        ),
        2 => scripted(
            name,
            "chief succeeds",
            rng.pick(&cleanups),
            vec![
                replica("Chief", 1, rng.pick(&policies), runs(run)),
                replica("Worker", n(rng, 2), rng.pick(&policies), forever()),
            ],
            End::Succeeded,
            None,
        ),
        3 => scripted(
            name,
            "workers fail under Never",
            rng.pick(&cleanups),
            vec![
                replica("PS", 1, "Never", forever()),
                replica("Worker", n(rng, 2), "Never", failing(run, "all", 1)),
            ],
            End::Failed,
            None,
        ),
        4 => scripted(
            name,
            "permanent exit code under ExitCode",
            rng.pick(&cleanups),
            vec![replica("Worker", 1, "ExitCode", failing(run, "all", 2))],
            End::Failed,
            None,
        ),
        5 => scripted(
            name,
            "retryable exit code once under ExitCode (pod re-created)",
            "None",
            vec![replica("Worker", 1, "ExitCode", failing(run, "1", 137))],
            End::Succeeded,
            Some("Worker"),
        ),
        _ => scripted(
            name,
            "fails once under OnFailure (restarted in place)",
            "None",
            vec![replica("Worker", 1, "OnFailure", failing(run, "1", 3))],
            End::Succeeded,
            None,
        ),
    }
}

async fn submit(ctx: &TestContext, job: &Scripted) {
    ctx.api::<TFJob>()
        .create(&PostParams::default(), &job.job)
        .await
        .unwrap_or_else(|e| panic!("creating TFJob {} failed: {e}", job.name));
}

/// Creates the job, retrying while the apiserver is away (restarting); returns how many
/// attempts failed.
async fn submit_with_retry(ctx: &TestContext, job: &Scripted) -> usize {
    let jobs = ctx.api::<TFJob>();
    let deadline = Instant::now() + secs(60);
    let mut failed = 0;
    loop {
        match jobs.create(&PostParams::default(), &job.job).await {
            Ok(_) => return failed,
            // An earlier attempt went through; its answer was lost.
            Err(kube::Error::Api(s)) if s.is_already_exists() => return failed,
            Err(_) if Instant::now() < deadline => {
                failed += 1;
                tokio::time::sleep(ms(200)).await;
            }
            Err(e) => panic!("creating TFJob {} failed for 60 s: {e}", job.name),
        }
    }
}

/// `(type, status)` of each condition, in order.
fn condition_pairs(job: &TFJob) -> Vec<(String, String)> {
    job.status
        .iter()
        .flat_map(|s| s.conditions.iter())
        .map(|c| (c.type_.clone(), c.status.clone()))
        .collect()
}

fn finished(job: &TFJob) -> Option<End> {
    let pairs = condition_pairs(job);
    let is = |t: &str| pairs.iter().any(|(ty, st)| ty == t && st == "True");
    if is("Succeeded") {
        Some(End::Succeeded)
    } else if is("Failed") {
        Some(End::Failed)
    } else {
        None
    }
}

/// Waits until every scripted job is Succeeded or Failed; returns the jobs by name.
async fn await_all_finished(
    ctx: &TestContext,
    scripts: &[Scripted],
    timeout: Duration,
) -> BTreeMap<String, TFJob> {
    let jobs = ctx.api::<TFJob>();
    wait_for(timeout, "every TFJob to finish", || async {
        let list = jobs
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let by_name: BTreeMap<String, TFJob> =
            list.items.into_iter().map(|j| (j.name_any(), j)).collect();
        let unfinished: Vec<String> = scripts
            .iter()
            .filter(|s| by_name.get(&s.name).and_then(finished).is_none())
            .map(|s| {
                let now = by_name.get(&s.name).map(condition_pairs);
                format!("{} ({}): {now:?}", s.name, s.kind)
            })
            .collect();
        if unfinished.is_empty() {
            Ok(by_name)
        } else {
            Err(format!(
                "{} unfinished, e.g. {:?}",
                unfinished.len(),
                &unfinished[..unfinished.len().min(5)]
            ))
        }
    })
    .await
}

/// Differences between each job's end state and its script, and how many jobs show the
/// canonical conditions `Created=True, Running=False, <end>=True`.
///
/// Every job must end as scripted. Its conditions must be `Created`, at most one of `Running`
/// (False, flipped by the end) or `Restarting` (True; only where the script restarts a pod), and
/// the end: never a type twice, never out of order. `Running` may be missing: a job whose pods
/// ran while no operator watched (killed, or the apiserver away) is never seen running, as
/// upstream's status algorithm does. The scripted restart count must match.
fn end_state_problems(
    scripts: &[Scripted],
    jobs: &BTreeMap<String, TFJob>,
) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut canonical = 0;
    for s in scripts {
        let Some(job) = jobs.get(&s.name) else {
            problems.push(format!("{} ({}): missing", s.name, s.kind));
            continue;
        };
        let pairs = condition_pairs(job);
        let end = finished(job);
        if end != Some(s.end) {
            problems.push(format!(
                "{} ({}): expected {:?}, got {end:?} with conditions {pairs:?}",
                s.name, s.kind, s.end
            ));
            continue;
        }
        let pair = |t: &str, st: &str| (t.to_string(), st.to_string());
        let (created, end) = (pair("Created", "True"), pair(s.end.condition(), "True"));
        let mut allowed = vec![
            vec![created.clone(), pair("Running", "False"), end.clone()],
            vec![created.clone(), end.clone()],
        ];
        if s.restarts > 0 {
            allowed.push(vec![
                created.clone(),
                pair("Restarting", "True"),
                end.clone(),
            ]);
        }
        if pairs == allowed[0] {
            canonical += 1;
        } else if !allowed.contains(&pairs) {
            problems.push(format!(
                "{} ({}): conditions {pairs:?}, expected one of {allowed:?}",
                s.name, s.kind
            ));
        }
        let restarts: usize = job
            .status
            .iter()
            .flat_map(|st| st.replica_statuses.values())
            .map(|r| r.restarts.max(0) as usize)
            .sum();
        if restarts != s.restarts {
            problems.push(format!(
                "{} ({}): {restarts} restarts in replicaStatuses, scripted {}",
                s.name, s.kind, s.restarts
            ));
        }
    }
    (problems, canonical)
}

// ---------------------------------------------------------------------------------------------
// Duplicates: the audit log and a watch
// ---------------------------------------------------------------------------------------------

/// `(resource, name)` → response codes of the operator's creates in `namespace`, from the
/// apiserver's audit log.
fn audited_creates(namespace: &str) -> BTreeMap<(String, String), Vec<u16>> {
    let text = std::fs::read_to_string(control_plane().audit_log()).unwrap_or_default();
    let mut creates: BTreeMap<(String, String), Vec<u16>> = BTreeMap::new();
    for e in text
        .lines()
        .filter(|l| l.contains(namespace))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let operator = e["userAgent"]
            .as_str()
            .is_some_and(|ua| ua.starts_with("tfjob-operator/"));
        if e["stage"] != "ResponseComplete"
            || !operator
            || e["objectRef"]["namespace"] != namespace
            || e["verb"] != "create"
            || e["objectRef"]["subresource"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        {
            continue;
        }
        let resource = e["objectRef"]["resource"].as_str().unwrap_or_default();
        if resource != "pods" && resource != "services" {
            continue;
        }
        let name = e["objectRef"]["name"].as_str().unwrap_or_default();
        creates
            .entry((resource.to_string(), name.to_string()))
            .or_default()
            .push(e["responseStatus"]["code"].as_u64().unwrap_or(0) as u16);
    }
    creates
}

/// Pods and services created more often than scripted (audit log), and pod names seen with
/// another number of UIDs than successful creates (watch). Returns the problems and the
/// children never created: a job decided by its chief or worker 0 may end before a
/// kill-delayed reconcile creates its other replicas.
fn duplicate_problems(
    namespace: &str,
    scripts: &[Scripted],
    pod_history: &PodHistory,
    records: &[Record],
) -> (Vec<String>, Vec<String>) {
    let creates = audited_creates(namespace);
    let seen = pod_history.uids_by_name();
    let unanswered = unanswered_pod_creates(records);
    let mut problems = Vec::new();
    let mut never = Vec::new();
    let mut expected_keys = BTreeSet::new();
    for s in scripts {
        for (pod, times) in &s.pods {
            for (resource, times) in [("pods", *times), ("services", 1)] {
                let key = (resource.to_string(), pod.clone());
                let codes = creates.get(&key).cloned().unwrap_or_default();
                let done = codes.iter().filter(|c| **c == 201).count();
                if done > times {
                    problems.push(format!(
                        "{resource} {pod} created {done} times (expected {times}); create responses {codes:?}"
                    ));
                }
                if done == 0 {
                    never.push(format!("{resource} {pod}"));
                }
                if resource == "pods" {
                    let n = seen.get(pod).map_or(0, BTreeSet::len);
                    // An apiserver stopped after storing a pod but before answering writes no
                    // audit entry for it: such a pod is explained by a create left unanswered.
                    let unaudited = n.saturating_sub(done);
                    let explained = unaudited <= unanswered.get(pod).copied().unwrap_or(0);
                    if n > times || n < done || !explained {
                        problems.push(format!(
                            "pod {pod} existed with {n} UIDs, created {done} times: {:?}",
                            seen.get(pod)
                        ));
                    }
                }
                expected_keys.insert(key);
            }
        }
    }
    for (key, codes) in &creates {
        if !expected_keys.contains(key) {
            problems.push(format!("unexpected {} {} created: {codes:?}", key.0, key.1));
        }
    }
    (problems, never)
}

/// Pod creates the apiserver never answered (stopped, or the connection cut), by pod name.
fn unanswered_pod_creates(records: &[Record]) -> BTreeMap<String, usize> {
    let mut unanswered = BTreeMap::new();
    for record in records {
        let path = record.path.split('?').next().unwrap_or_default();
        if record.method != "POST" || !path.ends_with("/pods") || record.upstream_status.is_some() {
            continue;
        }
        let name = record
            .body
            .as_ref()
            .and_then(|body| serde_json::from_slice::<Value>(body).ok())
            .and_then(|pod| pod["metadata"]["name"].as_str().map(str::to_string));
        if let Some(name) = name {
            *unanswered.entry(name).or_default() += 1;
        }
    }
    unanswered
}

/// How often each job announced each of its transitions: `(job, reason)` → events.
async fn transition_events(ctx: &TestContext) -> BTreeMap<(String, String), usize> {
    let events: Api<Event> = ctx.api();
    let mut counts = BTreeMap::new();
    for event in events
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
    {
        let reason = event.reason.clone().unwrap_or_default();
        if !matches!(
            reason.as_str(),
            "TFJobSucceeded" | "TFJobFailed" | "TFJobRestarting"
        ) {
            continue;
        }
        let job = event.regarding.and_then(|r| r.name).unwrap_or_default();
        *counts.entry((job, reason)).or_insert(0) += 1;
    }
    counts
}

fn panic_free(operator: &OperatorBinary) {
    let panics = operator.panics();
    assert!(
        panics.is_empty(),
        "{} panicked: {panics:#?}\n{}",
        operator.name,
        operator.log_tail(30)
    );
}

// ---------------------------------------------------------------------------------------------
// Crash-consistency soak
// ---------------------------------------------------------------------------------------------

/// One run of the operator binary: when it was spawned and its metrics at the instant of its
/// (simulated) crash.
struct Incarnation {
    spawned: Instant,
    metrics: Scrape,
}

/// The instant of a crash: nothing the operator sends is forwarded or answered any more, the
/// requests already at the apiserver finish there, and the answers already on their way are
/// read; then its metrics cannot change and are scraped.
async fn freeze_and_scrape(proxy: &FaultProxy, operator: &OperatorBinary) -> Scrape {
    proxy.freeze();
    assert!(
        proxy.await_quiet(secs(20)).await,
        "requests forwarded before the freeze did not finish within 20 s"
    );
    // Answers the proxy handed over just before the freeze reach the client's counters.
    tokio::time::sleep(ms(500)).await;
    operator.scrape().await
}

async fn await_ready(operator: &OperatorBinary) {
    wait_for(
        secs(60),
        &format!("{} to be ready", operator.name),
        || async {
            match operator.readyz().await {
                Ok((200, _)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
}

/// The operator's writes about `job`, for failure messages: `+ms METHOD path outcome faults`.
fn history(records: &[Record], job: &str, since: Instant) -> String {
    records
        .iter()
        .filter(|r| r.is_write() && job_of_write(r).as_deref() == Some(job))
        .map(|r| {
            let path = r.path.split('?').next().unwrap_or_default();
            let short = path.rsplit("namespaces/").next().unwrap_or(path);
            let conditions: Vec<String> = r
                .body
                .as_ref()
                .and_then(|b| serde_json::from_slice::<Value>(b).ok())
                .and_then(|b| b["status"]["conditions"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .map(|c| {
                    format!(
                        "{}={}",
                        c["type"].as_str().unwrap_or(""),
                        c["status"].as_str().unwrap_or("")
                    )
                })
                .collect();
            format!(
                "  +{}ms {} {short} {:?}/{:?} {:?} {}",
                r.received.duration_since(since).as_millis(),
                r.method,
                r.outcome,
                r.upstream_status,
                r.faults,
                conditions.join(",")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each problem line followed by the operator's writes about the job it names.
fn explain(records: &[Record], problems: &[String], since: Instant) -> String {
    problems
        .iter()
        .map(|p| {
            // Lines name a job (`soak-003 (…)`) or a child (`pods soak-003-worker-0 …`).
            let word = p
                .split([' ', ':'])
                .find(|w| w.matches('-').count() >= 1 && !w.starts_with('('))
                .unwrap_or("");
            let job = if word.matches('-').count() >= 3 {
                word.rsplitn(3, '-').last().unwrap_or(word)
            } else {
                word
            };
            format!("{p}\n{}", history(records, job, since))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Kube operation names (the `verb` label) that do not write.
fn is_read_verb(verb: &str) -> bool {
    ["get", "list", "watch", "GET", "HEAD"]
        .iter()
        .any(|read| verb.starts_with(read))
}

/// Writes answered with a 2xx, as the operator counted them.
fn counted_writes(scrape: &Scrape) -> f64 {
    scrape
        .samples("tfjob_operator_api_requests_total")
        .filter(|s| {
            s.labels.get("verb").is_some_and(|v| !is_read_verb(v))
                && s.labels.get("code").is_some_and(|c| c.starts_with('2'))
        })
        .map(|s| s.value)
        .sum()
}

/// The TFJob a write of the operator is about: the status patch's path, a child's label or
/// name, an event's `regarding`.
fn job_of_write(record: &Record) -> Option<String> {
    let path = record.path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').collect();
    if let Some(i) = segments.iter().position(|s| *s == "tfjobs") {
        return segments.get(i + 1).map(|s| s.to_string());
    }
    let body: Value = record
        .body
        .as_ref()
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or(Value::Null);
    if let Some(job) = body["metadata"]["labels"]["training.kubeflow.org/job-name"].as_str() {
        return Some(job.to_string());
    }
    if let Some(job) = body["regarding"]["name"].as_str() {
        return Some(job.to_string());
    }
    // DELETE .../pods/<job>-<type>-<index>
    let name = segments.last()?;
    if path.contains("/pods/") || path.contains("/services/") {
        let mut parts = name.rsplitn(3, '-');
        let (_index, _type, job) = (parts.next()?, parts.next()?, parts.next()?);
        return Some(job.to_string());
    }
    None
}

/// Whether a status patch sets condition `type_` to True.
fn sets_condition(record: &Record, type_: &str) -> bool {
    if record.method != "PATCH"
        || !record
            .path
            .split('?')
            .next()
            .is_some_and(|p| p.ends_with("/status"))
    {
        return false;
    }
    let body: Value = record
        .body
        .as_ref()
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or(Value::Null);
    body["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == type_ && c["status"] == "True")
    })
}

/// 200 seeded TFJobs while the operator binary is SIGKILLed 12 times; see the module docs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_jobs_survive_an_operator_sigkilled_twelve_times() {
    const JOBS: usize = 200;
    const KILLS: usize = 12;
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let ctx = TestContext::new("soak").await;
    let ns = ctx.namespace.clone();
    let pod_history = PodHistory::record(&ctx);
    let _kubelet = sim_kubelet(&ctx);
    let mut rng = Rng(0x5eed_0007);
    let scripts: Vec<Scripted> = (0..JOBS)
        .map(|i| script(format!("soak-{i:03}"), &mut rng))
        .collect();

    // The operator talks to the apiserver only through the proxy (no faults: only freezes).
    let proxy = FaultProxy::start(control_plane(), 7).await;
    let args = vec![format!("--namespace={ns}")];
    let mut incarnations = Vec::new();
    let mut spawned = Instant::now();
    let mut operator = OperatorBinary::start("soak-0", &proxy.kubeconfig, &args).await;

    // 10 jobs every 500 ms: submissions span the first ~10 s of the kills.
    let submitter = tokio::spawn({
        let scripts = scripts.clone();
        let client = ctx.client.clone();
        let ns = ns.clone();
        async move {
            let jobs: Api<TFJob> = Api::namespaced(client, &ns);
            for wave in scripts.chunks(10) {
                for s in wave {
                    jobs.create(&PostParams::default(), &s.job)
                        .await
                        .unwrap_or_else(|e| panic!("creating TFJob {} failed: {e}", s.name));
                }
                tokio::time::sleep(ms(500)).await;
            }
        }
    });

    for kill in 1..=KILLS {
        // Killed 1–2.5 s after its caches synced: mid-way through the work that piled up.
        await_ready(&operator).await;
        tokio::time::sleep(ms(rng.range(1000, 2500))).await;
        let metrics = freeze_and_scrape(&proxy, &operator).await;
        operator.kill().await;
        panic_free(&operator);
        incarnations.push(Incarnation { spawned, metrics });
        proxy.reset();
        spawned = Instant::now();
        operator = OperatorBinary::start(&format!("soak-{kill}"), &proxy.kubeconfig, &args).await;
    }
    submitter.await.expect("every job submitted");
    let killed_at = started.elapsed();

    let jobs = await_all_finished(&ctx, &scripts, secs(120)).await;
    let converged_at = started.elapsed();
    // Let the last writes (clean-up, final status) land, then stop the last incarnation the
    // same way.
    tokio::time::sleep(secs(2)).await;
    let metrics = freeze_and_scrape(&proxy, &operator).await;
    operator.kill().await;
    panic_free(&operator);
    incarnations.push(Incarnation { spawned, metrics });
    proxy.reset();
    pod_history.stop();

    // 1. Every job ended as its pods dictate, with the conditions a run without kills shows.
    let records = proxy.records();
    let kill_times: Vec<u128> = incarnations
        .iter()
        .map(|i| i.spawned.duration_since(started).as_millis())
        .collect();
    let explain = |problems: &[String]| explain(&records, problems, started);
    let mut bounds: Vec<Instant> = incarnations.iter().map(|i| i.spawned).collect();
    bounds.push(Instant::now());
    let incarnation_of = |r: &Record| {
        bounds
            .windows(2)
            .position(|w| r.received >= w[0] && r.received < w[1])
    };
    let (problems, canonical) = end_state_problems(&scripts, &jobs);
    assert!(
        problems.is_empty(),
        "{} of {JOBS} jobs differ from their script (incarnations spawned at {kill_times:?} ms):\n{}",
        problems.len(),
        explain(&problems)
    );

    // 2. Nothing was created twice (audit log and watch).
    let (problems, never_created) = duplicate_problems(&ns, &scripts, &pod_history, &records);
    assert!(
        problems.is_empty(),
        "children created other than once (incarnations spawned at {kill_times:?} ms):\n{}",
        explain(&problems)
    );

    // 3. Each incarnation counted exactly the writes the apiserver acknowledged to it.
    let mut mismatches = Vec::new();
    for (i, incarnation) in incarnations.iter().enumerate() {
        let acked = records
            .iter()
            .filter(|r| incarnation_of(r) == Some(i))
            .filter(|r| r.is_write() && r.outcome == Outcome::Delivered && r.took_effect())
            .count();
        let counted = counted_writes(&incarnation.metrics);
        if counted != acked as f64 {
            mismatches.push(format!(
                "incarnation {i}: counted {counted} successful writes, the apiserver acknowledged {acked} to it ({:?})",
                incarnation.metrics.series("tfjob_operator_api_requests_total")
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));

    // 4. Job counters, summed over incarnations: never more than the real transitions; fewer
    // only by transitions whose reconcile a kill cut off (a transition is counted in memory
    // once the reconcile that stored it has also sent its events).
    let interrupted: BTreeSet<String> = records
        .iter()
        .filter(|r| r.is_write() && r.outcome != Outcome::Delivered)
        .filter_map(job_of_write)
        .collect();
    let withheld = records
        .iter()
        .filter(|r| r.outcome == Outcome::Withheld)
        .count();
    let total = |metric: &str| -> f64 {
        incarnations
            .iter()
            .map(|i| i.metrics.sum(metric, &[("job_namespace", ns.as_str())]))
            .sum()
    };
    let counters = [
        ("training_operator_jobs_created_total", "Created"),
        ("training_operator_jobs_successful_total", "Succeeded"),
        ("training_operator_jobs_failed_total", "Failed"),
        ("training_operator_jobs_restarted_total", "Restarting"),
    ];
    let mut counter_report = Vec::new();
    for (metric, condition) in counters {
        // The transitions that happened: those a status patch stored (one per job and
        // condition: the scripts restart a pod once at most).
        let stored_by: BTreeSet<String> = records
            .iter()
            .filter(|r| r.took_effect() && sets_condition(r, condition))
            .filter_map(job_of_write)
            .collect();
        let scripted: Vec<&Scripted> = scripts
            .iter()
            .filter(|s| match condition {
                "Created" => true,
                "Restarting" => s.restarts > 0,
                end => s.end.condition() == end,
            })
            .collect();
        let unstored: Vec<&str> = scripted
            .iter()
            .filter(|s| !stored_by.contains(&s.name))
            .map(|s| s.name.as_str())
            .collect();
        assert!(
            unstored.is_empty(),
            "no status patch through the proxy set {condition} for {unstored:?}"
        );
        let transitioned: Vec<&Scripted> = scripted
            .into_iter()
            .filter(|s| stored_by.contains(&s.name))
            .collect();
        let real = transitioned.len();
        // A count is lost only when the kill fell inside the reconcile that stored the
        // transition: its status patch was never answered, or a write of that job sent with
        // it (its events, sent concurrently: 3 s of slack under load) or after it in the same
        // incarnation (a later reconcile: over-counted, harmless) was cut.
        let may_be_lost = transitioned
            .iter()
            .filter(|s| {
                let job = Some(s.name.clone());
                let Some(stored) = records.iter().find(|r| {
                    r.took_effect() && sets_condition(r, condition) && job_of_write(r) == job
                }) else {
                    return false;
                };
                stored.outcome != Outcome::Delivered
                    || records.iter().any(|r| {
                        r.is_write()
                            && r.outcome != Outcome::Delivered
                            && r.received + Duration::from_secs(3) >= stored.received
                            && incarnation_of(r) == incarnation_of(stored)
                            && job_of_write(r) == job
                    })
            })
            .count();
        let counted = total(metric);
        counter_report.push(format!(
            "{metric}: {counted} counted, {real} real, {may_be_lost} stored by a reconcile a kill cut off"
        ));
        assert!(
            counted <= real as f64,
            "{metric} summed over incarnations is {counted}, more than the {real} real {condition} transitions: a transition was counted twice"
        );
        assert!(
            counted >= (real - may_be_lost) as f64,
            "{metric} summed over incarnations is {counted}: {} of {real} {condition} transitions uncounted, but kills interrupted only {may_be_lost} of those jobs",
            real as f64 - counted
        );
    }

    // 5. Each transition announced once: exactly for jobs no kill interrupted; for the others
    // a kill may fall between the status write and its event (missing) or between an event
    // and a status write that never reached the apiserver (announced again).
    let events = transition_events(&ctx).await;
    let mut event_problems = Vec::new();
    let mut event_notes = Vec::new();
    for s in &scripts {
        let mut expected = vec![(format!("TFJob{}", s.end.condition()), 1)];
        if s.restarts > 0 {
            expected.push(("TFJobRestarting".into(), s.restarts));
        }
        for (reason, times) in expected {
            let n = events
                .get(&(s.name.clone(), reason.clone()))
                .copied()
                .unwrap_or(0);
            if n == times {
                continue;
            }
            let line = format!(
                "{} ({}): {n} {reason} events, expected {times}",
                s.name, s.kind
            );
            if interrupted.contains(&s.name) {
                event_notes.push(line);
            } else {
                event_problems.push(line);
            }
        }
    }
    assert!(
        event_problems.is_empty(),
        "transitions announced other than once for jobs no kill interrupted:\n{}",
        event_problems.join("\n")
    );

    let writes = records.iter().filter(|r| r.is_write()).count();
    eprintln!(
        "soak: {JOBS} jobs, {KILLS} SIGKILLs within {:.1}s, all finished at {:.1}s; {} requests \
         ({writes} writes, {withheld} carried out but never answered at a kill); {} jobs \
         interrupted mid-write; {canonical} jobs with conditions Created, Running, end (the \
         others never seen running); children never created (their job ended first): \
         {never_created:?}\n  {}\n  events differing for interrupted jobs: \
         {event_notes:?}",
        killed_at.as_secs_f64(),
        converged_at.as_secs_f64(),
        records.len(),
        interrupted.len(),
        counter_report.join("\n  "),
    );
    ctx.teardown().await;
}

// ---------------------------------------------------------------------------------------------
// Apiserver restart and etcd compaction
// ---------------------------------------------------------------------------------------------

const CONTROL_PLANE_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/hack/control-plane.sh");

/// Jobs submitted before, during and after a kube-apiserver restart; see the module docs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_converge_across_an_apiserver_restart_and_etcd_compaction() {
    const PER_PHASE: usize = 20;
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let ctx = TestContext::new("apiserver-restart").await;
    let ns = ctx.namespace.clone();
    let pod_history = PodHistory::record(&ctx);
    let _kubelet = sim_kubelet(&ctx);
    let mut rng = Rng(0x5eed_0002);
    let mut phase = |label: &str| -> Vec<Scripted> {
        (0..PER_PHASE)
            .map(|i| script(format!("{label}-{i:02}"), &mut rng))
            .collect()
    };
    let (before, during, after) = (phase("before"), phase("during"), phase("after"));

    // Through a proxy without faults: it records what the operator sent and how it ended.
    let proxy = FaultProxy::start(control_plane(), 2).await;
    let mut operator = OperatorBinary::start(
        "apiserver-restart",
        &proxy.kubeconfig,
        &[format!("--namespace={ns}")],
    )
    .await;
    for s in &before {
        submit(&ctx, s).await;
    }
    // Some of them have pods running when the apiserver goes away.
    tokio::time::sleep(secs(1)).await;
    let restarts_before = operator
        .scrape()
        .await
        .sum("tfjob_operator_watch_restarts_total", &[]);

    // Compact etcd, then restart the apiserver: its watch caches start empty at the current
    // revision, and every watch resuming from an older resourceVersion gets 410 Gone.
    let dir = control_plane().dir.clone();
    bump_and_compact(etcd_endpoint(&dir)).await;
    let restart = tokio::process::Command::new(CONTROL_PLANE_SCRIPT)
        .arg("restart-apiserver")
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run control-plane.sh restart-apiserver");
    let restarting = Instant::now();
    // One a second until one meets the apiserver away (its graceful shutdown serves a while),
    // then the rest as it comes back, its watch caches still filling.
    let mut refused = 0;
    for s in &during {
        refused += submit_with_retry(&ctx, s).await;
        tokio::time::sleep(if refused == 0 { secs(1) } else { ms(100) }).await;
    }
    let output = restart.wait_with_output().await.expect("restart-apiserver");
    assert!(
        output.status.success(),
        "restart-apiserver failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let restarted_in = restarting.elapsed();
    assert!(
        refused > 0,
        "no submission met the apiserver away: the restart was over before the jobs meant to \
         be submitted during it"
    );
    assert!(
        operator.is_running(),
        "the operator exited during the restart:\n{}",
        operator.log_tail(30)
    );
    for s in &after {
        submit(&ctx, s).await;
    }

    let scripts: Vec<Scripted> = [before, during, after].concat();
    let jobs = await_all_finished(&ctx, &scripts, secs(120)).await;
    let converged_at = started.elapsed();
    tokio::time::sleep(secs(1)).await;
    pod_history.stop();

    assert!(
        operator.is_running(),
        "the operator exited:\n{}",
        operator.log_tail(30)
    );
    panic_free(&operator);
    let restarts = operator
        .scrape()
        .await
        .sum("tfjob_operator_watch_restarts_total", &[])
        - restarts_before;
    assert!(
        restarts >= 1.0,
        "the restart ended no watch with an error (tfjob_operator_watch_restarts_total unchanged): the test did not disturb the operator"
    );
    let records = proxy.records();
    let (problems, canonical) = end_state_problems(&scripts, &jobs);
    assert!(
        problems.is_empty(),
        "{} of {} jobs differ from their script:\n{}",
        problems.len(),
        scripts.len(),
        explain(&records, &problems, started)
    );
    let (problems, never_created) = duplicate_problems(&ns, &scripts, &pod_history, &records);
    assert!(
        problems.is_empty(),
        "children created other than once:\n{}",
        explain(&records, &problems, started)
    );
    operator.terminate(secs(30)).await;
    eprintln!(
        "apiserver restart: {} jobs (before/during/after; {refused} submissions refused while \
         it was away), apiserver back after {:.1}s, \
         {restarts} watch restarts, all finished at {:.1}s; {canonical} jobs with conditions \
         Created, Running, end; children never created: {never_created:?}",
        scripts.len(),
        restarted_in.as_secs_f64(),
        converged_at.as_secs_f64()
    );
    ctx.teardown().await;
}

// ---------------------------------------------------------------------------------------------
// Injected API faults
// ---------------------------------------------------------------------------------------------

/// Jobs through 429/500/drops/delays/cut watches; see the module docs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_converge_through_injected_api_faults_without_a_hot_loop() {
    const JOBS: usize = 60;
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let ctx = TestContext::new("api-faults").await;
    let ns = ctx.namespace.clone();
    let pod_history = PodHistory::record(&ctx);
    let _kubelet = sim_kubelet(&ctx);
    let mut rng = Rng(0x5eed_0003);
    let scripts: Vec<Scripted> = (0..JOBS)
        .map(|i| script(format!("faults-{i:02}"), &mut rng))
        .collect();

    let proxy = FaultProxy::start(control_plane(), 3).await;
    proxy.set_faults(Faults {
        reject_429: 0.10,
        reject_500: 0.10,
        drop_before: 0.05,
        error_after: 0.05,
        drop_after: 0.05,
        delay: 0.15,
        max_delay: ms(500),
        cut_watch: 0.20,
        max_watch_life: secs(3),
        ..Faults::default()
    });
    let faults_from = Instant::now();
    let operator = OperatorBinary::start(
        "api-faults",
        &proxy.kubeconfig,
        &[format!("--namespace={ns}")],
    )
    .await;
    for s in &scripts {
        submit(&ctx, s).await;
    }
    let jobs = await_all_finished(&ctx, &scripts, secs(120)).await;
    let faults_to = Instant::now();
    let converged_at = started.elapsed();
    // Faults go on with nothing left to do: only watches (cut, re-opened) should be seen.
    tokio::time::sleep(secs(5)).await;
    let idle_to = Instant::now();
    proxy.set_faults(Faults::default());
    tokio::time::sleep(secs(1)).await;
    pod_history.stop();
    panic_free(&operator);

    let records = proxy.records();
    let (problems, canonical) = end_state_problems(&scripts, &jobs);
    let (duplicates, never_created) = duplicate_problems(&ns, &scripts, &pod_history, &records);
    let during = |r: &&Record| r.received >= faults_from && r.received < faults_to;
    let faulted = records
        .iter()
        .filter(during)
        .filter(|r| !r.faults.is_empty())
        .count();
    let attempts = records
        .iter()
        .filter(during)
        .filter(|r| r.is_write())
        .count();
    let effective = records
        .iter()
        .filter(during)
        .filter(|r| r.is_write() && r.took_effect())
        .count();
    let busiest = proxy.busiest_seconds(faults_from, faults_to);
    let idle: Vec<String> = records
        .iter()
        .filter(|r| r.received >= faults_to && r.received < idle_to)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let seconds = faults_to.duration_since(faults_from).as_secs_f64();
    eprintln!(
        "api faults: {JOBS} jobs finished at {:.1}s; {} requests in {seconds:.1}s, {faulted} \
         with a fault; {attempts} write attempts for {effective} writes that took effect; \
         busiest seconds {:?}; {} requests in the 5 idle seconds; {canonical} jobs with \
         conditions Created, Running, end; children never created: {never_created:?}",
        converged_at.as_secs_f64(),
        records.iter().filter(during).count(),
        &busiest[..busiest.len().min(5)],
        idle.len()
    );
    assert!(
        problems.is_empty(),
        "{} of {JOBS} jobs differ from their script:\n{}",
        problems.len(),
        explain(&records, &problems, started)
    );
    assert!(
        duplicates.is_empty(),
        "children created other than once:\n{}",
        explain(&records, &duplicates, started)
    );

    // No hot loop. Every write that failed is tried again, and a fault may hide a success (the
    // retry then meets AlreadyExists or NotFound): with 35 % of requests failing, about 1.5
    // attempts per write that took effect are expected; a retry without back-off on a failing
    // job would multiply that.
    assert!(
        attempts as f64 <= 2.5 * effective as f64,
        "{attempts} write attempts for {effective} writes that took effect: retries without back-off"
    );
    // The busiest second. The operator has no client-side rate limit (--kube-api-qps 0), so
    // its first wave for the 60 jobs submitted at once (about 5 creates and a status patch
    // each: ~350 writes) goes out as fast as the apiserver completes them (~100-170/s on this
    // 2-core machine). Even a fast apiserver cannot see more than that whole wave in one
    // second; faults answered by the proxy itself cost nothing, so a retry loop without
    // back-off would go far beyond it. Above 400 requests in a second is a loop, not work.
    assert!(
        busiest.first().copied().unwrap_or(0) <= 400,
        "{} requests in the busiest second: a hot loop",
        busiest[0]
    );
    // Nothing left to do: at most the three watches re-opened after cuts (20 % of watches cut
    // within 3 s) and their re-lists.
    assert!(
        idle.len() <= 30,
        "{} requests in 5 s with every job finished: {idle:#?}",
        idle.len()
    );
    ctx.teardown().await;
}
