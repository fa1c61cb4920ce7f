//! What the scenarios check afterwards: end states, duplicates from the audit log and the proxy, events, write histories for failure messages.

use super::*;

/// Differences between each job's end state and its script, and how many jobs show the
/// canonical conditions `Created=True, Running=False, <end>=True`.
///
/// Every job must end as scripted. Its conditions must be `Created`, at most one of `Running`
/// (False, flipped by the end) or `Restarting` (True; only where the script restarts a pod), and
/// the end: never a type twice, never out of order. `Running` may be missing: a job whose pods
/// ran while no operator watched (killed, or the apiserver away) is never seen running, as
/// upstream's status algorithm does. The scripted restart count must match.
pub(crate) fn end_state_problems(
    scripts: &[Scripted],
    jobs: &BTreeMap<String, TFJob>,
) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut canonical = 0;
    for s in scripts {
        if s.ttl {
            // Gone is its end (await_all_finished waited for that); that it succeeded first is
            // checked against the status writes.
            continue;
        }
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
        if let Some(sequence) = &s.canonical {
            // A suspended job resumed: its canonical form, or without Running, or the plain
            // forms when it was resumed before an operator saw it suspended.
            let mut without_running = sequence.clone();
            without_running.retain(|(t, _)| t != "Running");
            allowed.insert(0, sequence.clone());
            allowed.push(without_running);
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
        if s.restart_count_checked && restarts != s.restarts {
            problems.push(format!(
                "{} ({}): {restarts} restarts in replicaStatuses, scripted {}",
                s.name, s.kind, s.restarts
            ));
        }
    }
    (problems, canonical)
}

/// `(resource, name)` → response codes of the operator's creates in `namespace`, from the
/// apiserver's audit log.
pub(crate) fn audited_creates(namespace: &str) -> BTreeMap<(String, String), Vec<u16>> {
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
pub(crate) fn duplicate_problems(
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
pub(crate) fn unanswered_pod_creates(records: &[Record]) -> BTreeMap<String, usize> {
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
pub(crate) async fn transition_events(ctx: &TestContext) -> BTreeMap<(String, String), usize> {
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

pub(crate) fn panic_free(operator: &OperatorBinary) {
    let panics = operator.panics();
    assert!(
        panics.is_empty(),
        "{} panicked: {panics:#?}\n{}",
        operator.name,
        operator.log_tail(30)
    );
}

/// The operator's writes about `job`, for failure messages: `+ms METHOD path outcome faults`.
pub(crate) fn history(records: &[Record], job: &str, since: Instant) -> String {
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
pub(crate) fn explain(records: &[Record], problems: &[String], since: Instant) -> String {
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
pub(crate) fn is_read_verb(verb: &str) -> bool {
    ["get", "list", "watch", "GET", "HEAD"]
        .iter()
        .any(|read| verb.starts_with(read))
}

/// Writes answered with a 2xx, as the operator counted them.
pub(crate) fn counted_writes(scrape: &Scrape) -> f64 {
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
/// name, an event's `involvedObject` (or `regarding`).
pub(crate) fn job_of_write(record: &Record) -> Option<String> {
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
    // Events: core/v1 (what the operator writes) names the job in involvedObject,
    // events.k8s.io/v1 in regarding.
    for object in ["involvedObject", "regarding"] {
        if let Some(job) = body[object]["name"].as_str() {
            return Some(job.to_string());
        }
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
pub(crate) fn sets_condition(record: &Record, type_: &str) -> bool {
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
