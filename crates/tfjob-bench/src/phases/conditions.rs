//! How long a job's condition trails the pod change that causes it, as the benchmark's own
//! watches see both: the first pod Running → the job's Running condition, worker 0 Succeeded →
//! the job's Succeeded condition (the benchmark's jobs have no chief).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::ResourceExt;
use tfjob_core::api::TFJob;

use crate::watching::Watching;

/// When each thing was first seen, by job name.
#[derive(Default)]
struct Seen {
    first_pod_running: HashMap<String, Instant>,
    worker0_succeeded: HashMap<String, Instant>,
    job_running: HashMap<String, Instant>,
    job_succeeded: HashMap<String, Instant>,
}

/// Two watches in `namespace`, until dropped.
pub struct ConditionClock {
    seen: Arc<Mutex<Seen>>,
    _watches: [Watching; 2],
}

const JOB_NAME: &str = "training.kubeflow.org/job-name";

impl ConditionClock {
    pub fn start(client: &kube::Client, namespace: &str) -> ConditionClock {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let pod_seen = seen.clone();
        let pods = Watching::start(
            Api::<Pod>::namespaced(client.clone(), namespace),
            move |pod| {
                let now = Instant::now();
                let Some(job) = pod.labels().get(JOB_NAME).cloned() else {
                    return;
                };
                let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                let mut seen = pod_seen.lock().unwrap_or_else(|e| e.into_inner());
                if phase == Some("Running") {
                    seen.first_pod_running.entry(job.clone()).or_insert(now);
                }
                if phase == Some("Succeeded") && pod.name_any() == format!("{job}-worker-0") {
                    seen.worker0_succeeded.entry(job).or_insert(now);
                }
            },
        );
        let job_seen = seen.clone();
        let jobs = Watching::start(
            Api::<TFJob>::namespaced(client.clone(), namespace),
            move |job| {
                let now = Instant::now();
                let conditions = job.status.as_ref().map(|s| s.conditions.as_slice());
                let has = |type_: &str| {
                    conditions
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == type_ && c.status == "True")
                };
                let ever_running = conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Running");
                let mut seen = job_seen.lock().unwrap_or_else(|e| e.into_inner());
                if ever_running {
                    seen.job_running.entry(job.name_any()).or_insert(now);
                }
                if has("Succeeded") {
                    seen.job_succeeded.entry(job.name_any()).or_insert(now);
                }
            },
        );
        ConditionClock {
            seen,
            _watches: [pods, jobs],
        }
    }

    /// The delays seen so far, in ms, sorted: one per job and condition whose cause was seen.
    pub fn delays_ms(&self) -> Vec<f64> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut delays: Vec<f64> = [
            (&seen.first_pod_running, &seen.job_running),
            (&seen.worker0_succeeded, &seen.job_succeeded),
        ]
        .into_iter()
        .flat_map(|(causes, effects)| {
            causes.iter().filter_map(|(job, cause)| {
                let effect = effects.get(job)?;
                Some(effect.saturating_duration_since(*cause).as_secs_f64() * 1000.0)
            })
        })
        .collect();
        delays.sort_by(f64::total_cmp);
        delays
    }
}
