//! `kubectl tfjob describe NAME`: the job's conditions as a timeline, its replicas with their
//! last failure, its pods and its events — what a user needs to see why it is stuck or failed.

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use tfjob_core::api::TFJob;
use tfjob_core::api::podgroup::GangScheduler;

use crate::connect::Cluster;
use crate::errors::{Failure, Request, explain};
use crate::table::human_duration;

pub async fn describe(cluster: &Cluster, name: &str) -> Result<(), Failure> {
    let request = |verb, resource| Request {
        verb,
        resource,
        namespace: Some(&cluster.namespace),
        name: Some(name),
        server: &cluster.server,
    };
    let jobs: Api<TFJob> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let job = jobs
        .get(name)
        .await
        .map_err(|e| explain(&e, request("get", "tfjobs")))?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let selector = format!("training.kubeflow.org/job-name={name}");
    let pods = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map(|l| l.items)
        .map_err(|e| explain(&e, request("list", "pods")))?;
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let fields = format!("involvedObject.name={name},involvedObject.kind=TFJob");
    // Events are best effort: a user who may read TFJobs but not events still gets the rest.
    let events = events
        .list(&ListParams::default().fields(&fields))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let pod_group = pod_group(cluster, name).await;
    let now = jiff::Timestamp::now();
    print!("{}", render(&job, pod_group.as_ref(), &pods, &events, now));
    Ok(())
}

/// The job's PodGroup, when gang scheduling made one: its API and phase. Best effort: the
/// PodGroup CRDs are often not installed.
async fn pod_group(cluster: &Cluster, name: &str) -> Option<PodGroup> {
    let schedulers = [
        GangScheduler::Volcano,
        GangScheduler::SchedulerPlugins(String::new()),
    ];
    for scheduler in schedulers {
        let (group, version, kind) = scheduler.pod_group_gvk();
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, "podgroups");
        let api: Api<DynamicObject> =
            Api::namespaced_with(cluster.client.clone(), &cluster.namespace, &resource);
        if let Ok(Some(found)) = api.get_opt(name).await {
            let phase = found.data.pointer("/status/phase").and_then(|p| p.as_str());
            return Some(PodGroup {
                api: format!("{group}/{version}"),
                phase: phase.unwrap_or("<none>").to_string(),
            });
        }
    }
    None
}

/// A job's PodGroup as `describe` shows it.
pub struct PodGroup {
    pub api: String,
    pub phase: String,
}

/// The description, as text.
pub fn render(
    job: &TFJob,
    pod_group: Option<&PodGroup>,
    pods: &[Pod],
    events: &[Event],
    now: jiff::Timestamp,
) -> String {
    let ago = |t: jiff::Timestamp| {
        let d = std::time::Duration::try_from(now.duration_since(t)).unwrap_or_default();
        format!("{t} ({} ago)", human_duration(d))
    };
    let status = job.status.clone().unwrap_or_default();
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("{label:<12}{value}\n"));
    line("Name:", job.metadata.name.clone().unwrap_or_default());
    line(
        "Namespace:",
        job.metadata.namespace.clone().unwrap_or_default(),
    );
    let state = status.conditions.last().map_or_else(String::new, |c| {
        format!("{} ({})", c.type_, c.reason.clone().unwrap_or_default())
    });
    line("State:", state);
    if let Some(t) = &job.metadata.creation_timestamp {
        line("Created:", ago(t.0));
    }
    if let Some(t) = &status.start_time {
        line("Started:", ago(t.0));
    }
    if let Some(t) = &status.completion_time {
        line("Completed:", ago(t.0));
    }
    if let Some(group) = pod_group {
        line(
            "PodGroup:",
            format!("phase {} ({})", group.phase, group.api),
        );
    }

    out.push_str("\nConditions:\n");
    let mut rows = vec![cells(["TIME", "TYPE", "STATUS", "REASON", "MESSAGE"])];
    for c in &status.conditions {
        let time = c
            .last_transition_time
            .as_ref()
            .map_or(String::new(), |t| t.0.to_string());
        rows.push(vec![
            time,
            c.type_.clone(),
            c.status.clone(),
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default(),
        ]);
    }
    out.push_str(&table(&rows));

    out.push_str("\nReplicas:\n");
    let mut rows = vec![cells([
        "TYPE",
        "WANTED",
        "ACTIVE",
        "SUCCEEDED",
        "FAILED",
        "RESTARTS",
        "LAST FAILURE",
    ])];
    for (key, spec) in &job.spec.tf_replica_specs {
        let counts = status
            .replica_statuses
            .get(key.as_str())
            .cloned()
            .unwrap_or_default();
        let last = counts.last_failure.as_deref().map_or(String::new(), |f| {
            tfjob_core::plan::diagnosis::describe_failure(f)
        });
        rows.push(vec![
            key.clone(),
            spec.replicas.unwrap_or(1).to_string(),
            counts.active.to_string(),
            counts.succeeded.to_string(),
            counts.failed.to_string(),
            counts.restarts.to_string(),
            last,
        ]);
    }
    out.push_str(&table(&rows));

    out.push_str("\nPods:\n");
    if pods.is_empty() {
        out.push_str("  <none>\n");
    } else {
        let mut rows = vec![cells([
            "NAME", "PHASE", "NODE", "RESTARTS", "EXIT", "REASON",
        ])];
        let mut pods: Vec<&Pod> = pods.iter().collect();
        pods.sort_by_key(|p| p.metadata.name.clone());
        for pod in pods {
            rows.push(pod_row(pod));
        }
        out.push_str(&table(&rows));
    }

    out.push_str("\nEvents:\n");
    if events.is_empty() {
        out.push_str("  <none>\n");
    } else {
        let mut rows = vec![cells(["LAST SEEN", "TYPE", "REASON", "MESSAGE"])];
        let mut events: Vec<&Event> = events.iter().collect();
        events.sort_by_key(|e| event_time(e));
        for e in events {
            let seen = event_time(e).map_or(String::new(), |t| {
                human_duration(
                    std::time::Duration::try_from(now.duration_since(t)).unwrap_or_default(),
                )
            });
            let count = e
                .count
                .filter(|c| *c > 1)
                .map_or(String::new(), |c| format!(" (x{c})"));
            rows.push(vec![
                seen,
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                format!("{}{count}", e.message.clone().unwrap_or_default()),
            ]);
        }
        out.push_str(&table(&rows));
    }
    out
}

fn cells<const N: usize>(headers: [&str; N]) -> Vec<String> {
    headers.iter().map(|h| h.to_string()).collect()
}

fn event_time(e: &Event) -> Option<jiff::Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or(e.event_time.as_ref().map(|t| t.0))
        .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// NAME, PHASE, NODE, RESTARTS, and the exit code and reason of the `tensorflow` container's
/// last termination (or why it waits).
fn pod_row(pod: &Pod) -> Vec<String> {
    let status = pod.status.clone().unwrap_or_default();
    let containers = status.container_statuses.unwrap_or_default();
    let main = containers
        .iter()
        .find(|c| c.name == "tensorflow")
        .or(containers.first());
    let restarts: i32 = containers.iter().map(|c| c.restart_count).sum();
    let terminated = main.and_then(|c| {
        let state = c.state.as_ref();
        state
            .and_then(|s| s.terminated.clone())
            .or(c.last_state.as_ref().and_then(|s| s.terminated.clone()))
    });
    let waiting = main.and_then(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone());
    let (exit, reason) = match terminated {
        Some(t) => (t.exit_code.to_string(), t.reason.unwrap_or_default()),
        None => (String::new(), waiting.or(status.reason).unwrap_or_default()),
    };
    vec![
        pod.metadata.name.clone().unwrap_or_default(),
        status.phase.unwrap_or_default(),
        pod.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        restarts.to_string(),
        exit,
        reason,
    ]
}

/// Rows indented by two spaces, columns padded and three spaces apart.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let text: String = row
                .iter()
                .enumerate()
                .map(|(i, cell)| format!("{cell:<width$}   ", width = widths[i]))
                .collect();
            format!("  {}\n", text.trim_end())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_job_reads_top_to_bottom() {
        let job: TFJob = serde_saphyr::from_str(r#"
metadata: {name: oom, namespace: a, creationTimestamp: "2026-01-01T00:00:00Z"}
spec: {tfReplicaSpecs: {Worker: {replicas: 2, template: {}}}}
status:
  startTime: "2026-01-01T00:00:01Z"
  completionTime: "2026-01-01T00:00:30Z"
  replicaStatuses:
    Worker:
      active: 1
      failed: 1
      lastFailure: {pod: oom-worker-1, container: tensorflow, exitCode: 137, reason: OOMKilled}
  conditions:
  - {type: Created, status: "True", reason: TFJobCreated, message: TFJob oom is created., lastTransitionTime: "2026-01-01T00:00:00Z"}
  - {type: Failed, status: "True", reason: TFJobFailed, message: "TFJob a/oom has failed because 1 Worker replica(s) failed: oom-worker-1 exited with 137 (OOMKilled).", lastTransitionTime: "2026-01-01T00:00:30Z"}
"#).unwrap();
        let pod: Pod = serde_saphyr::from_str(r#"
metadata: {name: oom-worker-1}
spec: {nodeName: node-a, containers: [{name: tensorflow}]}
status:
  phase: Failed
  containerStatuses:
  - {name: tensorflow, image: tf, imageID: "", ready: false, restartCount: 0, state: {terminated: {exitCode: 137, reason: OOMKilled}}}
"#).unwrap();
        let event: Event = serde_saphyr::from_str(
            r#"
metadata: {name: e1}
involvedObject: {name: oom}
type: Normal
reason: TFJobFailed
message: it failed
lastTimestamp: "2026-01-01T00:00:30Z"
count: 2
"#,
        )
        .unwrap();
        let now: jiff::Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let group = PodGroup {
            api: "scheduling.volcano.sh/v1beta1".into(),
            phase: "Running".into(),
        };
        let text = render(&job, Some(&group), &[pod], &[event], now);
        let expected = "\
Name:       oom
Namespace:  a
State:      Failed (TFJobFailed)
Created:    2026-01-01T00:00:00Z (60s ago)
Started:    2026-01-01T00:00:01Z (59s ago)
Completed:  2026-01-01T00:00:30Z (30s ago)
PodGroup:   phase Running (scheduling.volcano.sh/v1beta1)

Conditions:
  TIME                   TYPE      STATUS   REASON         MESSAGE
  2026-01-01T00:00:00Z   Created   True     TFJobCreated   TFJob oom is created.
  2026-01-01T00:00:30Z   Failed    True     TFJobFailed    TFJob a/oom has failed because 1 Worker replica(s) failed: oom-worker-1 exited with 137 (OOMKilled).

Replicas:
  TYPE     WANTED   ACTIVE   SUCCEEDED   FAILED   RESTARTS   LAST FAILURE
  Worker   2        1        0           1        0          oom-worker-1 exited with 137 (OOMKilled)

Pods:
  NAME           PHASE    NODE     RESTARTS   EXIT   REASON
  oom-worker-1   Failed   node-a   0          137    OOMKilled

Events:
  LAST SEEN   TYPE     REASON        MESSAGE
  30s         Normal   TFJobFailed   it failed (x2)
";
        assert_eq!(text, expected, "\n{text}");
    }
}
