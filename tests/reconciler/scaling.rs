//! Suspend and resume, scale up and down.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_deletes_pods_and_resume_recreates_them() {
    let ctx = TestContext::new("suspend").await;
    let _operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    submit(
        &ctx,
        &job_yaml("sp", "", &[("Worker", 2, "Never", FOREVER)]),
    )
    .await;
    await_condition(&ctx, "sp", "Running", secs(20)).await;
    let jobs: Api<TFJob> = ctx.api();
    let suspend = |value: bool| serde_json::json!({"spec": {"runPolicy": {"suspend": value}}});
    jobs.patch("sp", &PatchParams::default(), &Patch::Merge(suspend(true)))
        .await
        .unwrap();
    let job = await_condition(&ctx, "sp", "Suspended", secs(20)).await;
    assert_eq!(
        conditions(&job),
        [
            "Created=True/TFJobCreated",
            "Running=False/TFJobSuspended",
            "Suspended=True/TFJobSuspended"
        ]
    );
    wait_pods(&ctx, &[]).await;
    assert!(service_names(&ctx).await.is_empty());

    jobs.patch("sp", &PatchParams::default(), &Patch::Merge(suspend(false)))
        .await
        .unwrap();
    wait_pods(&ctx, &["sp-worker-0", "sp-worker-1"]).await;
    let job = await_condition(&ctx, "sp", "Running", secs(20)).await;
    assert_eq!(
        conditions(&job),
        [
            "Created=True/TFJobCreated",
            "Suspended=False/TFJobResumed",
            "Running=True/TFJobRunning"
        ]
    );
    let events = await_events(&ctx, "sp", "the TFJobSuspended event", |e| {
        e.iter().any(|e| e.contains("TFJobSuspended"))
    })
    .await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.contains("TFJobSuspended"))
            .count(),
        1,
        "{events:?}"
    );
    ctx.teardown().await;
}

/// After a suspension (a Kueue preemption, say) every replica comes back, as upstream does: a
/// worker that had succeeded before is run again, so the chief never waits for a missing peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_recreates_a_worker_that_had_completed() {
    let ctx = TestContext::new("resume-completed").await;
    let _operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    submit(
        &ctx,
        &job_yaml(
            "rc",
            "",
            &[("Chief", 1, "Never", FOREVER), ("Worker", 1, "Never", FAST)],
        ),
    )
    .await;
    let jobs: Api<TFJob> = ctx.api();
    let worker_status = |job: &TFJob| {
        job.status
            .as_ref()
            .and_then(|s| s.replica_statuses.get("Worker"))
            .map(|r| (r.succeeded, r.completed_indexes.clone()))
            .unwrap_or_default()
    };
    wait_for(
        secs(30),
        "worker 0 to succeed and be remembered",
        || async {
            let job = jobs.get("rc").await.map_err(|e| e.to_string())?;
            match worker_status(&job) {
                (1, Some(indexes)) if indexes == "0" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;

    let suspend = |value: bool| serde_json::json!({"spec": {"runPolicy": {"suspend": value}}});
    jobs.patch("rc", &PatchParams::default(), &Patch::Merge(suspend(true)))
        .await
        .unwrap();
    await_condition(&ctx, "rc", "Suspended", secs(20)).await;
    wait_pods(&ctx, &[]).await;
    let job = jobs.get("rc").await.unwrap();
    let worker = &job.status.as_ref().unwrap().replica_statuses["Worker"];
    assert_eq!(
        (
            worker.completed_indexes.as_deref(),
            worker.restarted_pods.len()
        ),
        (None, 0),
        "suspend forgets completed indices and restarts in flight: {worker:?}"
    );

    jobs.patch("rc", &PatchParams::default(), &Patch::Merge(suspend(false)))
        .await
        .unwrap();
    // Both come back (every pod was deleted above); the worker runs and succeeds again.
    wait_pods(&ctx, &["rc-chief-0", "rc-worker-0"]).await;
    wait_for(
        secs(30),
        "the re-created worker to succeed again",
        || async {
            let job = jobs.get("rc").await.map_err(|e| e.to_string())?;
            match worker_status(&job) {
                (1, Some(indexes)) if indexes == "0" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_up_and_down() {
    let ctx = TestContext::new("scale").await;
    let _operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    submit(
        &ctx,
        &job_yaml("sc", "", &[("Worker", 2, "Never", FOREVER)]),
    )
    .await;
    wait_pods(&ctx, &["sc-worker-0", "sc-worker-1"]).await;
    let jobs: Api<TFJob> = ctx.api();
    let replicas =
        |n: i32| serde_json::json!({"spec": {"tfReplicaSpecs": {"Worker": {"replicas": n}}}});
    jobs.patch("sc", &PatchParams::default(), &Patch::Merge(replicas(4)))
        .await
        .unwrap();
    wait_pods(
        &ctx,
        &["sc-worker-0", "sc-worker-1", "sc-worker-2", "sc-worker-3"],
    )
    .await;
    jobs.patch("sc", &PatchParams::default(), &Patch::Merge(replicas(1)))
        .await
        .unwrap();
    wait_pods(&ctx, &["sc-worker-0"]).await;
    wait_for(secs(10), "surplus services removed", || async {
        let services = service_names(&ctx).await;
        if services == ["sc-worker-0"] {
            Ok(())
        } else {
            Err(format!("{services:?}"))
        }
    })
    .await;
    ctx.teardown().await;
}
