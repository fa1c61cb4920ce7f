//! Pods stuck Terminating: one held by a finalizer is named (Warning, condition message) once
//! past `--stuck-terminating-after`; with `--force-delete-stuck-pods`, one whose node is lost
//! (kubelet gone, node NotReady) is force-deleted and its replica created again, counted as a
//! restart.

use super::*;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use serde_json::json;
use sim_kubelet::{SimKubelet, SimKubeletConfig};

const GRACE: Duration = Duration::from_secs(3);
const HOLD: &str = "tests.tfjob-operator.dev/hold";

async fn await_running(ctx: &TestContext, name: &str) {
    await_condition(ctx, name, "Running", secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_held_by_a_finalizer_is_named_past_the_grace() {
    let ctx = TestContext::new("stuck-finalizer").await;
    let _operator = Operator::start_with(&ctx, |s| s.plan.stuck_after = GRACE).await;
    let _kubelet = sim_kubelet(&ctx);
    submit(
        &ctx,
        &job_yaml("held", "", &[("Worker", 2, "OnFailure", FOREVER)]),
    )
    .await;
    await_running(&ctx, "held").await;

    let pods: Api<Pod> = ctx.api();
    pods.patch(
        "held-worker-1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": [HOLD]}})),
    )
    .await
    .unwrap();
    pods.delete("held-worker-1", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let deleted = Instant::now();
    let jobs: Api<TFJob> = ctx.api();
    let message = wait_for(
        GRACE + secs(20),
        "the condition to name the stuck pod",
        || async {
            let message = last_message(&jobs.get("held").await.map_err(|e| e.to_string())?);
            if message.contains("held-worker-1 is stuck terminating on node sim-node") {
                Ok(message)
            } else {
                Err(message)
            }
        },
    )
    .await;
    let named_after = deleted.elapsed();
    let events = await_events(&ctx, "held", "the PodStuckTerminating Warning", |events| {
        events
            .iter()
            .any(|e| e.starts_with("Warning PodStuckTerminating"))
    })
    .await;
    let warnings = events
        .iter()
        .filter(|e| e.starts_with("Warning PodStuckTerminating"))
        .count();
    eprintln!("stuck by a finalizer: named {named_after:.1?} after the delete: {message}");
    // deletionTimestamp has whole seconds: the grace counts from up to 1 s earlier.
    assert!(
        named_after >= GRACE - secs(1),
        "named before the grace: {named_after:?}"
    );
    assert_eq!(warnings, 1, "{events:#?}");

    // Released: the replica comes back and the note goes.
    pods.patch(
        "held-worker-1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    wait_for(secs(30), "the note to go once the pod is gone", || async {
        let job = jobs.get("held").await.map_err(|e| e.to_string())?;
        let message = last_message(&job);
        if message.contains("is stuck terminating") {
            Err(message)
        } else {
            Ok(())
        }
    })
    .await;
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_force_deletion_a_pod_on_a_lost_node_is_replaced() {
    let ctx = TestContext::new("stuck-node").await;
    let node = format!("lost-{}", ctx.namespace);
    let _operator = Operator::start_with(&ctx, |s| {
        s.plan.stuck_after = GRACE;
        s.plan.force_delete_stuck = true;
    })
    .await;
    let kubelet = SimKubelet::spawn(
        ctx.client.clone(),
        SimKubeletConfig {
            namespace: Some(ctx.namespace.clone()),
            node_name: node.clone(),
            ..Default::default()
        },
    );
    submit(
        &ctx,
        &job_yaml("lost", "", &[("Worker", 2, "OnFailure", FOREVER)]),
    )
    .await;
    await_running(&ctx, "lost").await;
    let pods: Api<Pod> = ctx.api();
    let old_uid = pods.get("lost-worker-1").await.unwrap().uid();

    // The node goes away: its kubelet stops and the node has been NotReady for a while.
    drop(kubelet);
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let long_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(600);
    nodes
        .patch_status(
            &node,
            &PatchParams::default(),
            &Patch::Strategic(json!({"status": {"conditions": [{
                "type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                "lastTransitionTime": long_ago.to_string(),
                "lastHeartbeatTime": long_ago.to_string()
            }]}})),
        )
        .await
        .unwrap();
    // Evicted as the node lifecycle controller would: a graceful delete nobody confirms.
    pods.delete("lost-worker-1", &DeleteParams::default().grace_period(1))
        .await
        .unwrap();
    let deleted = Instant::now();
    let _kubelet = sim_kubelet(&ctx); // other nodes run the replacement
    let replaced = wait_for(GRACE + secs(30), "a new lost-worker-1", || async {
        match pods.get_opt("lost-worker-1").await {
            Ok(Some(pod)) if pod.uid() != old_uid => Ok(pod),
            other => Err(format!("{:?}", other.map(|p| p.map(|p| p.uid())))),
        }
    })
    .await;
    let replaced_after = deleted.elapsed();
    let jobs: Api<TFJob> = ctx.api();
    let job = jobs.get("lost").await.unwrap();
    let restarts = job
        .status
        .as_ref()
        .and_then(|s| s.replica_statuses.get("Worker"))
        .map(|r| r.restarts);
    eprintln!(
        "stuck on a lost node: replaced {replaced_after:.1?} after the delete (pod {:?}), \
         restarts {restarts:?}",
        replaced.uid()
    );
    assert_eq!(restarts, Some(1), "the re-creation counts as a restart");
    assert!(
        replaced_after >= GRACE,
        "replaced before the grace: {replaced_after:?}"
    );
    let _ = nodes.delete(&node, &DeleteParams::default()).await;
    ctx.teardown().await;
}
