//! Bad input never breaks the operator: a corpus of malformed TFJobs (wrong types, missing
//! fields, unknown replica types, negative and huge replica counts, names too long, bad enum
//! values, two chiefs, empty maps, nulls, huge templates, legacy-layout conflicts, negative
//! limits), each a raw JSON file under `tests/fixtures/bad_input/` submitted unchanged to the
//! real apiserver, while the real `tfjob-operator` binary watches the namespace.
//!
//! `tests/fixtures/bad_input/expected.yaml` gives each case its outcome, and the test proves it:
//!
//! - `rejected`: the apiserver refuses the create (the CRD's structural schema or its object-meta
//!   checks), and its error message names the field;
//! - `failed`: the apiserver stores the job, and the operator marks it `Failed` (reason
//!   `TFJobFailedValidation`) with a message naming the field, records a `Warning` event with
//!   that reason and message on it, and creates no pod or Service for it.
//!
//! Throughout, the operator process keeps running and never panics, and jobs submitted before
//! and after the whole corpus are reconciled as usual: their pods are created and they are
//! marked `Created`.
//!
//! A job the operator cannot decode at all (an integer the schema allows but int32 does not) is
//! marked `Failed` the same way, its message naming the field by its path. A case may carry
//! `gap:` in the manifest for a known shortcoming; none does today.

use test_support as support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::{Value, json};

use support::bad_input::{Case, Outcome, load_corpus};
use support::binary::OperatorBinary;
use support::*;
use tfjob_core::api::naming::LABEL_JOB_NAME;

/// What the operator writes on a job that fails validation (condition reason and event reason).
const FAILED_VALIDATION: &str = "TFJobFailedValidation";

/// What the apiserver answered to one create.
enum Submitted {
    Accepted { uid: String },
    Rejected { code: u16, message: String },
}

async fn submit_raw(ctx: &TestContext, body: Vec<u8>) -> Result<Submitted, kube::Error> {
    let request = http::Request::post(format!(
        "/apis/kubeflow.org/v1/namespaces/{}/tfjobs",
        ctx.namespace
    ))
    .header("content-type", "application/json")
    .body(body)
    .expect("a valid request");
    match ctx.client.request::<Value>(request).await {
        Ok(created) => Ok(Submitted::Accepted {
            uid: created["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        }),
        Err(kube::Error::Api(status)) => Ok(Submitted::Rejected {
            code: status.code,
            message: status.message,
        }),
        Err(e) => Err(e),
    }
}

/// A valid job: `replicas` per replica type, all with a `tensorflow` container.
fn good_job(name: &str, types: &[(&str, i64)]) -> Vec<u8> {
    let specs: serde_json::Map<String, Value> = types
        .iter()
        .map(|(t, n)| {
            let replica = json!({
                "replicas": n,
                "restartPolicy": "OnFailure",
                "template": {"spec": {"containers": [
                    {"name": "tensorflow", "image": "registry.example/tf:2.15",
                     "command": ["python", "/train.py"]}
                ]}}
            });
            (t.to_string(), replica)
        })
        .collect();
    let job = json!({
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": name},
        "spec": {"tfReplicaSpecs": specs},
    });
    serde_json::to_vec(&job).expect("JSON serialises")
}

/// The TFJobs of the namespace as plain JSON: the typed client could not decode the broken ones.
fn tfjob_api(ctx: &TestContext) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("kubeflow.org", "v1", "TFJob");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "tfjobs");
    Api::namespaced_with(ctx.client.clone(), &ctx.namespace, &resource)
}

/// The `Failed` condition of a job, if any: `(status, reason, message)`.
fn failed_condition(job: &DynamicObject) -> Option<(String, String, String)> {
    let conditions = job.data.pointer("/status/conditions")?.as_array()?;
    let failed = conditions.iter().find(|c| c["type"] == "Failed")?;
    let text = |key: &str| failed[key].as_str().unwrap_or_default().to_string();
    Some((text("status"), text("reason"), text("message")))
}

fn has_condition(job: &DynamicObject, type_: &str) -> bool {
    job.data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == type_ && c["status"] == "True")
        })
}

/// The Warning events of the namespace with the operator's validation reason: uid → notes.
async fn validation_events(ctx: &TestContext) -> BTreeMap<String, Vec<String>> {
    let events: Api<Event> = ctx.api();
    let mut by_uid: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let list = events
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("listing events failed: {e}"));
    for event in list.items {
        if event.type_.as_deref() != Some("Warning")
            || event.reason.as_deref() != Some(FAILED_VALIDATION)
        {
            continue;
        }
        let uid = event
            .regarding
            .as_ref()
            .and_then(|r| r.uid.clone())
            .unwrap_or_default();
        by_uid
            .entry(uid)
            .or_default()
            .push(event.note.unwrap_or_default());
    }
    by_uid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_tfjobs_are_rejected_or_failed_and_the_operator_keeps_serving() {
    let started = Instant::now();
    let cases = load_corpus();
    let ctx = TestContext::new("bad-input").await;
    let mut operator = OperatorBinary::start(
        "bad-input",
        &control_plane().kubeconfig,
        &[format!("--namespace={}", ctx.namespace)],
    )
    .await;
    let jobs = tfjob_api(&ctx);
    let pods: Api<Pod> = ctx.api();
    let services: Api<Service> = ctx.api();

    // A good job before the corpus...
    let mut good: Vec<(&str, usize)> = vec![("good-before", 2)];
    let submitted = submit_raw(&ctx, good_job("good-before", &[("Worker", 2)])).await;
    assert!(
        matches!(submitted, Ok(Submitted::Accepted { .. })),
        "the good job before the corpus was not accepted"
    );

    // ...the corpus, each case as it is in its file...
    let mut problems: Vec<String> = Vec::new();
    let mut accepted: Vec<(&Case, String, String)> = Vec::new(); // case, job name, uid
    for case in &cases {
        let result = submit_raw(&ctx, case.body(&ctx.namespace))
            .await
            .unwrap_or_else(|e| panic!("{}: the create request failed: {e}", case.case));
        match (case.outcome, result) {
            (Outcome::Rejected, Submitted::Rejected { code, message }) => {
                let missing = case.missing_from(&message);
                if !missing.is_empty() {
                    problems.push(format!(
                        "{}: rejected ({code}) as expected, but the message lacks {}: {message}",
                        case.case,
                        missing.join(" and ")
                    ));
                }
                if !(400..500).contains(&code) {
                    problems.push(format!("{}: rejected with status {code}", case.case));
                }
            }
            (Outcome::Rejected, Submitted::Accepted { uid }) => {
                problems.push(format!(
                    "{}: expected the apiserver to reject it naming {:?}, but it was accepted",
                    case.case,
                    case.field.as_deref().unwrap_or(&case.message)
                ));
                // Whatever the schema let through, the operator must still fail it.
                accepted.push((case, case.name().unwrap_or_default(), uid));
            }
            (Outcome::Failed, Submitted::Rejected { code, message }) => {
                problems.push(format!(
                    "{}: expected the apiserver to accept it (and the operator to fail it), but \
                     it was rejected ({code}): {message}",
                    case.case
                ));
            }
            (Outcome::Failed, Submitted::Accepted { uid }) => {
                accepted.push((case, case.name().unwrap_or_default(), uid));
            }
        }
    }

    // ...and good jobs after it, which must still be reconciled.
    for (name, types, pods) in [
        ("good-after-ps-worker", &[("PS", 1), ("Worker", 2)][..], 3),
        ("good-after-chief", &[("Chief", 1), ("Worker", 1)][..], 2),
    ] {
        let submitted = submit_raw(&ctx, good_job(name, types)).await;
        assert!(
            matches!(submitted, Ok(Submitted::Accepted { .. })),
            "the good job {name} after the corpus was not accepted"
        );
        good.push((name, pods));
    }

    // Every accepted bad job ends up Failed, with a Warning event, both naming the field.
    let deadline = Instant::now() + secs(60);
    loop {
        let listed = jobs
            .list(&ListParams::default())
            .await
            .unwrap_or_else(|e| panic!("listing TFJobs failed: {e}"));
        let by_name: BTreeMap<String, DynamicObject> = listed
            .items
            .into_iter()
            .map(|j| (j.metadata.name.clone().unwrap_or_default(), j))
            .collect();
        let events = validation_events(&ctx).await;
        let mut pending = Vec::new();
        for (case, name, uid) in &accepted {
            let Some(job) = by_name.get(name) else {
                pending.push(format!("{}: job {name} is gone", case.case));
                continue;
            };
            match failed_condition(job) {
                None => pending.push(format!(
                    "{}: not marked Failed (status {})",
                    case.case,
                    job.data.get("status").cloned().unwrap_or_default()
                )),
                Some((status, reason, message)) => {
                    let missing = case.missing_from(&message);
                    if status != "True" || reason != FAILED_VALIDATION || !missing.is_empty() {
                        pending.push(format!(
                            "{}: Failed={status} reason {reason:?}, expected True and \
                             {FAILED_VALIDATION:?} with a message containing {}; message: \
                             {message}",
                            case.case,
                            case.missing_from("").join(" and ")
                        ));
                    }
                }
            }
            // A case marked `gap:` in expected.yaml is exempt from the event check.
            let notes = events.get(uid).cloned().unwrap_or_default();
            if case.gap.is_none() && !notes.iter().any(|note| case.missing_from(note).is_empty()) {
                pending.push(format!(
                    "{}: no Warning {FAILED_VALIDATION} event containing {}; its validation \
                     events: {notes:?}",
                    case.case,
                    case.missing_from("").join(" and ")
                ));
            }
        }
        if pending.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            problems.extend(pending);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The good jobs, before and after, are reconciled: Created, with all their pods.
    let good_names: BTreeSet<&str> = good.iter().map(|(n, _)| *n).collect();
    for (name, expected_pods) in &good {
        let seen = wait_for(
            secs(30),
            &format!("good job {name} to be reconciled"),
            || {
                let jobs = jobs.clone();
                let pods = pods.clone();
                async move {
                    let job = jobs.get(name).await.map_err(|e| e.to_string())?;
                    let selector = format!("{LABEL_JOB_NAME}={name}");
                    let count = pods
                        .list(&ListParams::default().labels(&selector))
                        .await
                        .map_err(|e| e.to_string())?
                        .items
                        .len();
                    if has_condition(&job, "Created") && count == *expected_pods {
                        Ok(count)
                    } else {
                        Err(format!(
                            "{count} of {expected_pods} pods, status {}",
                            job.data.get("status").cloned().unwrap_or_default()
                        ))
                    }
                }
            },
        )
        .await;
        assert_eq!(seen, *expected_pods);
    }

    // No bad job got a pod or a Service.
    for (kind, labels) in [
        (
            "pod",
            pods.list(&ListParams::default())
                .await
                .expect("list pods")
                .items
                .into_iter()
                .map(|p| (p.metadata.name, p.metadata.labels))
                .collect::<Vec<_>>(),
        ),
        (
            "service",
            services
                .list(&ListParams::default())
                .await
                .expect("list services")
                .items
                .into_iter()
                .map(|s| (s.metadata.name, s.metadata.labels))
                .collect(),
        ),
    ] {
        for (name, labels) in labels {
            let job = labels
                .as_ref()
                .and_then(|l| l.get(LABEL_JOB_NAME))
                .cloned()
                .unwrap_or_default();
            if !good_names.contains(job.as_str()) {
                problems.push(format!(
                    "{kind} {} belongs to {job:?}, which is not a good job",
                    name.unwrap_or_default()
                ));
            }
        }
    }

    // The operator is still up, ready, and never panicked.
    assert!(
        operator.is_running(),
        "the operator exited:\n{}",
        operator.log_tail(40)
    );
    assert!(
        matches!(operator.readyz().await, Ok((200, _))),
        "the operator is not ready any more: {:?}",
        operator.readyz().await
    );
    let panics = operator.panics();
    assert!(panics.is_empty(), "the operator panicked: {panics:#?}");

    assert!(
        problems.is_empty(),
        "{} of {} cases did not get their expected outcome:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
    let rejected = cases
        .iter()
        .filter(|c| c.outcome == Outcome::Rejected)
        .count();
    eprintln!(
        "{} cases: {rejected} rejected by the apiserver, {} failed by the operator ({:.1?})",
        cases.len(),
        accepted.len(),
        started.elapsed()
    );
    for case in cases.iter().filter(|c| c.gap.is_some()) {
        eprintln!(
            "known gap: {}: {}",
            case.case,
            case.gap.as_deref().unwrap_or("")
        );
    }
    ctx.teardown().await;
}
