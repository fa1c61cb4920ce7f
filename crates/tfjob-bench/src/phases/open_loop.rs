//! Phase *open loop*: parents arrive at a fixed rate (as users submit them, whatever the
//! controller's pace) for a fixed time; per job, parent stored (the audit log) → its last pod
//! seen by a watch. Run for the Job controller and for the operator at each rate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::Api;

use crate::audit::Agent;
use crate::cluster::ensure_namespace;
use crate::phases::backlog::Controller;
use crate::report::OpenLoop;
use crate::run::{Run, quantile};
use crate::watching::Watching;

pub async fn run(run: &mut Run, controller: Controller, rate: f64) -> anyhow::Result<OpenLoop> {
    let namespace = format!("bench-open-{}-{rate:.0}", controller.slug());
    let replicas = run.sizes.replicas;
    let jobs = (rate * run.sizes.open_loop_seconds as f64).round() as usize;
    ensure_namespace(&run.client, &namespace).await?;
    let log = run.logs.join(format!("open-loop-{namespace}.log"));
    let agent = controller.agent();
    let seen = PodsSeen::start(&run.client, &namespace);
    let stop = controller.start(run, &namespace, &log)?;

    let submit_errors = controller
        .submit(run, &namespace, "op", jobs, Some(rate))
        .await;
    let pods = jobs * replicas as usize;
    let ns = namespace.clone();
    let done = run
        .wait_count(Duration::from_secs(120), pods, |e| {
            e.namespace == ns && e.agent == agent && e.created("pods")
        })
        .await;
    run.quiet(
        &namespace,
        agent,
        Duration::from_secs(2),
        Duration::from_secs(30),
    )
    .await;
    stop();
    if submit_errors > 0 || !done {
        anyhow::bail!(
            "open loop at {rate}/s ({}): {submit_errors} submits failed, pods complete: {done}; see {}",
            controller.label(),
            log.display()
        );
    }

    // Parent stored → its last pod created.
    let stored: HashMap<String, f64> = run
        .audit
        .in_namespace(&namespace)
        .filter(|e| e.agent == Agent::Bench && e.verb == "create" && e.code == 201)
        .map(|e| (e.name.clone(), e.done))
        .collect();
    // The Job controller's pods have generated names, which a Metadata-level audit entry of
    // their create does not carry: pods are tied to their job by a watch instead (both
    // controllers alike), at the moment it delivers them.
    let last_pod = seen.by_job();
    let mut latencies: Vec<f64> = stored
        .iter()
        .filter_map(|(job, at)| {
            let (last, count) = last_pod.get(job)?;
            (*count == replicas as usize).then(|| (last - at).max(0.0) * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    write_slowest(
        run,
        &namespace,
        agent,
        &stored,
        &last_pod,
        replicas as usize,
    );
    Ok(OpenLoop {
        creator: controller.label(),
        rate,
        jobs,
        complete: latencies.len(),
        p50_ms: quantile(&latencies, 0.5),
        p99_ms: quantile(&latencies, 0.99),
        max_ms: latencies.last().copied().unwrap_or(0.0),
    })
}

/// How many of the slowest jobs `open-loop-<namespace>-slowest.tsv` lists.
const SLOWEST: usize = 10;

/// Writes, for the slowest jobs, where their time went: parent stored, the controller's first
/// and last pod create (received and done by the apiserver, from the audit log) and the last
/// pod seen by the watch, all in seconds after the parent was stored. A tail that sits in one
/// step (the controller starting late, the apiserver answering late, the watch delivering
/// late) shows there; the same moment in several rows points at a stall of the machine.
fn write_slowest(
    run: &Run,
    namespace: &str,
    agent: Agent,
    stored: &HashMap<String, f64>,
    last_pod: &HashMap<String, (f64, usize)>,
    replicas: usize,
) {
    let mut creates: HashMap<&str, Vec<(f64, f64)>> = HashMap::new();
    for e in run.audit.in_namespace(namespace) {
        if e.agent == agent && e.created("pods") {
            let job = e.name.rsplitn(3, '-').nth(2).unwrap_or_default();
            creates.entry(job).or_default().push((e.received, e.done));
        }
    }
    let mut rows: Vec<(f64, String)> = stored
        .iter()
        .filter_map(|(job, at)| {
            let (last, count) = last_pod.get(job)?;
            (*count == replicas).then_some(((last - at) * 1000.0, job.clone()))
        })
        .collect();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut text = String::from(
        "job\tstored_at\tlatency_ms\tfirst_create_received\tfirst_create_done\tlast_create_received\tlast_create_done\tlast_pod_seen\n",
    );
    for (latency, job) in rows.into_iter().take(SLOWEST) {
        let at = stored[&job];
        let rel = |t: f64| format!("{:.3}", t - at);
        let pods = creates.get(job.as_str()).cloned().unwrap_or_default();
        let first = pods.iter().copied().min_by(|a, b| a.0.total_cmp(&b.0));
        let last = pods.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1));
        let pair = |p: Option<(f64, f64)>| {
            p.map_or("-\t-".to_string(), |(r, d)| {
                format!("{}\t{}", rel(r), rel(d))
            })
        };
        text.push_str(&format!(
            "{job}\t{at:.3}\t{latency:.0}\t{}\t{}\t{}\n",
            pair(first),
            pair(last),
            rel(last_pod[&job].0)
        ));
    }
    let path = run.logs.join(format!("open-loop-{namespace}-slowest.tsv"));
    if let Err(error) = std::fs::write(&path, text) {
        eprintln!("could not write {}: {error}", path.display());
    }
}

/// A watch of the pods in a namespace: when each was first seen, by its job.
struct PodsSeen {
    seen: Arc<Mutex<HashMap<String, f64>>>,
    _watch: Watching,
}

impl PodsSeen {
    fn start(client: &kube::Client, namespace: &str) -> PodsSeen {
        let seen: Arc<Mutex<HashMap<String, f64>>> = Arc::default();
        let record = seen.clone();
        let watch = Watching::start(
            Api::<Pod>::namespaced(client.clone(), namespace),
            move |pod| {
                let at = crate::now();
                let labels = pod.labels();
                let Some(job) = labels
                    .get("training.kubeflow.org/job-name")
                    .or_else(|| labels.get("job-name"))
                else {
                    return;
                };
                let key = format!("{job}/{}", pod.name_any());
                record
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(key)
                    .or_insert(at);
            },
        );
        PodsSeen {
            seen,
            _watch: watch,
        }
    }

    /// Per job: when its last pod was first seen, and how many pods were seen.
    fn by_job(&self) -> HashMap<String, (f64, usize)> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut jobs: HashMap<String, (f64, usize)> = HashMap::new();
        for (key, at) in seen.iter() {
            let job = key.split('/').next().unwrap_or_default();
            let entry = jobs.entry(job.to_string()).or_insert((0.0, 0));
            entry.0 = entry.0.max(*at);
            entry.1 += 1;
        }
        jobs
    }
}
