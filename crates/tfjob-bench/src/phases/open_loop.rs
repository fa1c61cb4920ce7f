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
