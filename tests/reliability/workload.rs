//! The seeded workload: scripted TFJobs (types, policies, failures, restarts) and their submission.

use super::*;

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// xorshift64*: the same jobs and kill moments on every run.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    pub(crate) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    Succeeded,
    Failed,
}

impl End {
    pub(crate) fn condition(self) -> &'static str {
        match self {
            End::Succeeded => "Succeeded",
            End::Failed => "Failed",
        }
    }
}

/// A TFJob and what its pods' scripts make of it.
#[derive(Clone, Debug)]
pub(crate) struct Scripted {
    pub(crate) name: String,
    /// What the script does, for failure messages.
    pub(crate) kind: &'static str,
    pub(crate) job: TFJob,
    pub(crate) end: End,
    /// Pod name → how many times it must be created (2 for a pod re-created after a retryable
    /// exit code); services have the same names and are created once each.
    pub(crate) pods: BTreeMap<String, usize>,
    /// `Restarting` transitions (pod re-creations under `ExitCode`).
    pub(crate) restarts: usize,
    /// Whether `replicaStatuses` must count exactly `restarts` (not for in-place restarts up
    /// to a `backoffLimit`, whose count depends on when the limit was seen).
    pub(crate) restart_count_checked: bool,
    /// The conditions of a run without kills, when not `Created, Running=False, <end>`.
    pub(crate) canonical: Option<Vec<(String, String)>>,
    /// `ttlSecondsAfterFinished`: the job is gone at the end.
    pub(crate) ttl: bool,
    /// Created suspended; the workload resumes it a few seconds later.
    pub(crate) suspended: bool,
}

impl Scripted {
    /// Adds `fields` to the job's `runPolicy`.
    pub(crate) fn with_run_policy(mut self, fields: Value) -> Self {
        let mut job = serde_json::to_value(&self.job).expect("a TFJob serialises");
        for (key, value) in fields.as_object().expect("an object").clone() {
            job["spec"]["runPolicy"][key] = value;
        }
        self.job = serde_json::from_value(job).expect("still a valid TFJob");
        self
    }
}

/// Annotations of the simulated kubelet: a run of `run_ms`, then exit 0.
pub(crate) fn runs(run_ms: u64) -> Vec<(&'static str, String)> {
    vec![("pending-ms", "0".into()), ("run-ms", run_ms.to_string())]
}

pub(crate) fn forever() -> Vec<(&'static str, String)> {
    vec![("pending-ms", "0".into()), ("run-forever", "true".into())]
}

pub(crate) fn failing(run_ms: u64, attempts: &str, code: i32) -> Vec<(&'static str, String)> {
    let mut a = runs(run_ms);
    a.push(("fail-attempts", attempts.into()));
    a.push(("exit-code", code.to_string()));
    a
}

pub(crate) struct Replica {
    pub(crate) type_: &'static str,
    pub(crate) replicas: usize,
    pub(crate) policy: &'static str,
    pub(crate) annotations: Vec<(&'static str, String)>,
}

pub(crate) fn replica(
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

pub(crate) fn scripted(
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
        restart_count_checked: true,
        canonical: None,
        ttl: false,
        suspended: false,
    }
}

/// One of seven scripts, drawn from `rng`. The deciding replicas run 4–5 s: longer than an
/// operator is ever down between a kill and its successor's first reconcile, so every job is
/// seen Running, as it would be without kills.
pub(crate) fn script(name: String, rng: &mut Rng) -> Scripted {
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

/// The soak's mix: every twentieth job has 50 workers; the others are drawn from the seven
/// scripts of [`script`] and four that exercise the run policy under kills: `backoffLimit`,
/// `activeDeadlineSeconds`, `ttlSecondsAfterFinished` and `suspend` (resumed later).
pub(crate) fn soak_script(name: String, i: usize, rng: &mut Rng) -> Scripted {
    let run = rng.range(4000, 5000);
    if i.is_multiple_of(20) {
        return scripted(
            name,
            "50 workers succeed",
            "None",
            vec![replica("Worker", 50, "Never", runs(run))],
            End::Succeeded,
            None,
        );
    }
    let pair = |t: &str, st: &str| (t.to_string(), st.to_string());
    match rng.next() % 11 {
        7 => {
            let mut s = scripted(
                name,
                "in-place restarts past backoffLimit 1",
                "All",
                vec![replica("Worker", 1, "OnFailure", failing(2000, "all", 1))],
                End::Failed,
                None,
            )
            .with_run_policy(json!({"backoffLimit": 1}));
            s.restart_count_checked = false;
            s
        }
        8 => scripted(
            name,
            "past activeDeadlineSeconds 8",
            "All",
            vec![replica("Worker", 1, "Never", forever())],
            End::Failed,
            None,
        )
        .with_run_policy(json!({"activeDeadlineSeconds": 8})),
        9 => {
            let mut s = scripted(
                name,
                "deleted 3 s after it succeeds (TTL)",
                "None",
                vec![replica("Worker", 1, "Never", runs(run))],
                End::Succeeded,
                None,
            )
            .with_run_policy(json!({"ttlSecondsAfterFinished": 3}));
            s.ttl = true;
            s
        }
        10 => {
            let mut s = scripted(
                name,
                "created suspended, resumed",
                "None",
                vec![replica("Worker", 1, "Never", runs(run))],
                End::Succeeded,
                None,
            )
            .with_run_policy(json!({"suspend": true}));
            s.suspended = true;
            s.canonical = Some(vec![
                pair("Created", "True"),
                pair("Suspended", "False"),
                pair("Running", "False"),
                pair("Succeeded", "True"),
            ]);
            s
        }
        _ => script(name, rng),
    }
}

pub(crate) async fn submit(ctx: &TestContext, job: &Scripted) {
    ctx.api::<TFJob>()
        .create(&PostParams::default(), &job.job)
        .await
        .unwrap_or_else(|e| panic!("creating TFJob {} failed: {e}", job.name));
}

/// Creates the job, retrying while the apiserver is away (restarting); returns how many
/// attempts failed.
pub(crate) async fn submit_with_retry(ctx: &TestContext, job: &Scripted) -> usize {
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
pub(crate) fn condition_pairs(job: &TFJob) -> Vec<(String, String)> {
    job.status
        .iter()
        .flat_map(|s| s.conditions.iter())
        .map(|c| (c.type_.clone(), c.status.clone()))
        .collect()
}

pub(crate) fn finished(job: &TFJob) -> Option<End> {
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
pub(crate) async fn await_all_finished(
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
            .filter(|s| match by_name.get(&s.name) {
                // Deleted after its TTL: done (end_state_problems checks it ended first).
                None => !s.ttl,
                Some(job) => finished(job).is_none() || s.ttl,
            })
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
