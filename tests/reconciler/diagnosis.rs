//! Why a job failed or cannot start, on the real control plane: the decisive pod in the
//! Failed message and `replicaStatuses[*].lastFailure`; pods that cannot start (a bad image,
//! no node that fits, pending past `--pending-threshold`) named on the job's condition with
//! one `PodCannotStart` Warning per change.

use super::*;

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use serde_json::json;

/// Warnings of `reason` about the job, each counted as often as it was emitted (an event
/// repeated by the recorder is one object with a series).
async fn emitted(ctx: &TestContext, job: &str, reason: &str) -> Vec<(String, i32)> {
    let events: Api<Event> = ctx.api();
    let list = events.list(&ListParams::default()).await.unwrap().items;
    list.into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(job))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .map(|e| {
            let count = e.series.as_ref().map_or(1, |s| s.count);
            (e.note.unwrap_or_default(), count)
        })
        .collect()
}

/// Waits until the job's current condition message contains `wanted`; the message.
async fn await_message(ctx: &TestContext, job: &str, wanted: &str) -> String {
    let jobs: Api<TFJob> = ctx.api();
    wait_for(
        secs(30),
        &format!("{job}'s condition to say {wanted:?}"),
        || async {
            let message = last_message(&jobs.get(job).await.map_err(|e| e.to_string())?);
            if message.contains(wanted) {
                Ok(message)
            } else {
                Err(message)
            }
        },
    )
    .await
}

/// Writes a Pending pod's status as a kubelet would (no simulated kubelet runs these pods).
async fn set_pod_status(ctx: &TestContext, pod: &str, status: serde_json::Value) {
    let pods: Api<Pod> = ctx.api();
    pods.patch_status(
        pod,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .unwrap();
}

fn waiting(reason: &str, message: &str) -> serde_json::Value {
    json!({
        "phase": "Pending",
        "containerStatuses": [{
            "name": "tensorflow", "image": "tf", "imageID": "", "ready": false,
            "restartCount": 0,
            "state": {"waiting": {"reason": reason, "message": message}}
        }]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oom_killed_worker_under_never_is_named_in_the_failed_message() {
    let ctx = TestContext::new("diag-oom").await;
    let _operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    let oom = format!("{FAST}, sim.tfjob-operator.dev/reason: OOMKilled");
    submit(
        &ctx,
        &job_yaml(
            "oom",
            "",
            &[("PS", 1, "Never", FOREVER), ("Worker", 1, "Never", &oom)],
        ),
    )
    .await;
    let job = await_condition(&ctx, "oom", "Failed", secs(30)).await;
    let message = last_message(&job);
    assert_eq!(
        message,
        format!(
            "TFJob {}/oom has failed because 1 Worker replica(s) failed: oom-worker-0 exited \
             with 137 (OOMKilled).",
            ctx.namespace
        )
    );
    let status = job.status.clone().unwrap();
    let last = status.replica_statuses["Worker"]
        .last_failure
        .clone()
        .expect("Worker.lastFailure");
    assert_eq!(last.pod, "oom-worker-0");
    assert_eq!(
        (
            last.container.as_deref(),
            last.exit_code,
            last.reason.as_str()
        ),
        (Some("tensorflow"), Some(137), "OOMKilled")
    );
    assert!(last.time.is_some(), "the container's finishedAt");
    assert!(status.replica_statuses["PS"].last_failure.is_none());
    await_events(&ctx, "oom", "the TFJobFailed event", |e| {
        e.iter().any(|e| e.contains("TFJobFailed"))
    })
    .await;
    // Once, counting repeats the recorder folds into a series.
    assert_eq!(
        emitted(&ctx, "oom", "TFJobFailed").await,
        [(message.clone(), 1)]
    );
    eprintln!("OOMKilled under Never: {message}");
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_image_and_a_pod_that_fits_no_node_are_named_once() {
    let ctx = TestContext::new("diag-start").await;
    let _operator = Operator::start(&ctx).await;
    // No kubelet: the test writes what the kubelet and the scheduler would.
    submit(
        &ctx,
        &job_yaml(
            "pull",
            "",
            &[("PS", 1, "Never", FOREVER), ("Worker", 1, "Never", FOREVER)],
        ),
    )
    .await;
    await_condition(&ctx, "pull", "Created", secs(30)).await;
    wait_pods(&ctx, &["pull-ps-0", "pull-worker-0"]).await;

    // The kubelet alternates ErrImagePull and ImagePullBackOff while it retries: one message.
    let note = r#"pull-worker-0 cannot start: ImagePullBackOff (image "tf")."#;
    for round in 0..3 {
        set_pod_status(
            &ctx,
            "pull-worker-0",
            waiting("ErrImagePull", &format!("rpc error {round}")),
        )
        .await;
        await_message(&ctx, "pull", note).await;
        set_pod_status(
            &ctx,
            "pull-worker-0",
            waiting("ImagePullBackOff", "Back-off pulling image \"tf\""),
        )
        .await;
        await_message(&ctx, "pull", note).await;
    }
    let message = await_message(&ctx, "pull", note).await;
    assert_eq!(message, format!("TFJob pull is created. Note: {note}"));

    // The scheduler finds no node for the PS: its message is told too.
    let scheduler = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.";
    set_pod_status(
        &ctx,
        "pull-ps-0",
        json!({"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": scheduler, "lastTransitionTime": "2026-01-01T00:00:00Z"
        }]}),
    )
    .await;
    let unschedulable = format!("pull-ps-0 cannot start: Unschedulable ({scheduler}).");
    let both = await_message(&ctx, "pull", &unschedulable).await;
    assert_eq!(
        both,
        format!("TFJob pull is created. Note: {note} {unschedulable}")
    );

    // Settle, then count: each note was announced exactly once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let warnings = emitted(&ctx, "pull", "PodCannotStart").await;
    let job_ref = format!("TFJob {}/pull: ", ctx.namespace);
    let mut want = vec![
        (format!("{job_ref}{note}"), 1),
        (format!("{job_ref}{unschedulable}"), 1),
    ];
    let mut got = warnings.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    eprintln!("cannot start: {both}");
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_pending_past_the_threshold_are_named_then() {
    let ctx = TestContext::new("diag-pending").await;
    let threshold = Duration::from_secs(3);
    let _operator = Operator::start_with(&ctx, |s| s.plan.pending_threshold = threshold).await;
    submit(
        &ctx,
        &job_yaml("slow", "", &[("Worker", 2, "Never", FOREVER)]),
    )
    .await;
    let created = std::time::Instant::now();
    await_condition(&ctx, "slow", "Created", secs(30)).await;
    let jobs: Api<TFJob> = ctx.api();
    assert!(
        !last_message(&jobs.get("slow").await.unwrap()).contains("cannot start"),
        "not before the threshold"
    );
    let note = "slow-worker-0 and 1 other pod(s) cannot start: Pending for more than 3s.";
    let message = await_message(&ctx, "slow", note).await;
    let after = created.elapsed();
    assert_eq!(message, format!("TFJob slow is created. Note: {note}"));
    // creationTimestamp has whole seconds: up to 1 s early, and the pass is woken on time.
    assert!(after >= threshold - Duration::from_secs(1), "{after:?}");
    assert!(after < threshold + Duration::from_secs(10), "{after:?}");
    let warnings = emitted(&ctx, "slow", "PodCannotStart").await;
    assert_eq!(
        warnings,
        [(format!("TFJob {}/slow: {note}", ctx.namespace), 1)]
    );
    eprintln!("pending past a {threshold:?} threshold: named {after:.1?} after submission");
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pending_deadline_fails_the_job_and_frees_its_pods() {
    let ctx = TestContext::new("diag-deadline").await;
    let _operator = Operator::start(&ctx).await;
    // No kubelet: the pod never starts.
    let yaml = job_yaml(
        "stalled",
        "  runPolicy: {cleanPodPolicy: Running}\n",
        &[("Worker", 1, "Never", FOREVER)],
    )
    .replace(
        "metadata: {name: stalled}",
        "metadata: {name: stalled, annotations: {tfjob-operator.dev/pending-deadline: 3s}}",
    );
    submit(&ctx, &yaml).await;
    let submitted = std::time::Instant::now();
    wait_pods(&ctx, &["stalled-worker-0"]).await;
    let job = await_condition(&ctx, "stalled", "Failed", secs(30)).await;
    let failed_after = submitted.elapsed();
    let message = format!(
        "TFJob {}/stalled has failed because stalled-worker-0 did not start within the pending \
         deadline of 3s: Pending.",
        ctx.namespace
    );
    assert_eq!(last_message(&job), message);
    wait_pods(&ctx, &[]).await;
    let failed = emitted(&ctx, "stalled", "TFJobFailed").await;
    assert_eq!(failed, [(message.clone(), 1)]);
    eprintln!("pending deadline 3s: Failed {failed_after:.1?} after submission, pods deleted");
    ctx.teardown().await;
}
