//! Success and failure: chief, worker 0, all workers, `Never`, completed indices.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chief_success_decides_while_workers_run() {
    let ctx = TestContext::new("chief").await;
    let _operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    submit(
        &ctx,
        &job_yaml(
            "cj",
            "",
            &[("Chief", 1, "Never", FAST), ("Worker", 2, "Never", FOREVER)],
        ),
    )
    .await;
    let job = await_condition(&ctx, "cj", "Succeeded", secs(30)).await;
    assert_eq!(job.status.unwrap().replica_statuses["Chief"].succeeded, 1);
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_0_success_vs_all_workers() {
    let ctx = TestContext::new("allworkers").await;
    let _operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    // Worker 0 finishes fast, worker 1 never: default policy succeeds, AllWorkers does not.
    let slow = "sim.tfjob-operator.dev/pending-ms: '0', sim.tfjob-operator.dev/run-ms: '300'";
    let mut yaml = job_yaml("w0", "", &[("Worker", 2, "Never", slow)]);
    submit(&ctx, &yaml).await;
    await_condition(&ctx, "w0", "Succeeded", secs(30)).await;

    yaml = job_yaml(
        "all",
        "  successPolicy: AllWorkers\n",
        &[("Worker", 2, "Never", FOREVER)],
    );
    submit(&ctx, &yaml).await;
    await_condition(&ctx, "all", "Running", secs(30)).await;
    let pods: Api<Pod> = ctx.api();
    sim_kubelet::terminate(&pods, "all-worker-0", 0, None)
        .await
        .unwrap();
    wait_for(secs(20), "worker 0 of `all` to be counted", || async {
        let job: TFJob = ctx
            .api::<TFJob>()
            .get("all")
            .await
            .map_err(|e| e.to_string())?;
        let succeeded = job
            .status
            .as_ref()
            .and_then(|s| s.replica_statuses.get("Worker"))
            .map_or(0, |r| r.succeeded);
        if succeeded == 1 {
            Ok(job)
        } else {
            Err(format!("{:?}", conditions(&job)))
        }
    })
    .await;
    let job: TFJob = ctx.api::<TFJob>().get("all").await.unwrap();
    assert_eq!(
        conditions(&job),
        ["Created=True/TFJobCreated", "Running=True/TFJobRunning"]
    );
    sim_kubelet::terminate(&pods, "all-worker-1", 0, None)
        .await
        .unwrap();
    await_condition(&ctx, "all", "Succeeded", secs(20)).await;
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_under_never_fails_the_job() {
    let ctx = TestContext::new("never").await;
    let _operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    let failing = format!("{FAST}, sim.tfjob-operator.dev/exit-code: '3'");
    submit(
        &ctx,
        &job_yaml(
            "nv",
            "",
            &[
                ("PS", 1, "Never", FOREVER),
                ("Worker", 1, "Never", &failing),
            ],
        ),
    )
    .await;
    let job = await_condition(&ctx, "nv", "Failed", secs(30)).await;
    let failed = job
        .status
        .as_ref()
        .unwrap()
        .conditions
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        failed.message.as_deref(),
        Some(
            format!(
                "TFJob {}/nv has failed because 1 Worker replica(s) failed: nv-worker-0 exited \
                 with 3 (Error).",
                ctx.namespace
            )
            .as_str()
        )
    );
    let events = await_events(&ctx, "nv", "the ExitedWithCode event", |e| {
        e.iter().any(|e| e.contains("ExitedWithCode"))
    })
    .await;
    assert!(
        events.contains(&format!(
            "Normal ExitedWithCode: Pod: {}.nv-worker-0 exited with code 3",
            ctx.namespace
        )),
        "{events:?}"
    );
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_succeeded_index_is_not_run_again() {
    let ctx = TestContext::new("succeededindex").await;
    let _operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    submit(
        &ctx,
        &job_yaml(
            "si",
            "  successPolicy: AllWorkers\n",
            &[("Worker", 2, "Never", FOREVER)],
        ),
    )
    .await;
    await_condition(&ctx, "si", "Running", secs(20)).await;
    let pods: Api<Pod> = ctx.api();
    sim_kubelet::terminate(&pods, "si-worker-1", 0, None)
        .await
        .unwrap();
    wait_for(secs(20), "index 1 recorded as completed", || async {
        let job: TFJob = ctx
            .api::<TFJob>()
            .get("si")
            .await
            .map_err(|e| e.to_string())?;
        let completed = job
            .status
            .as_ref()
            .and_then(|s| s.replica_statuses.get("Worker"))
            .and_then(|r| r.completed_indexes.clone());
        if completed.as_deref() == Some("1") {
            Ok(())
        } else {
            Err(format!("{completed:?}"))
        }
    })
    .await;
    pods.delete("si-worker-1", &DeleteParams::default())
        .await
        .unwrap();
    await_deleted(&pods, "si-worker-1", secs(10)).await;
    tokio::time::sleep(secs(2)).await;
    assert_eq!(
        pod_names(&ctx).await,
        ["si-worker-0"],
        "worker 1 already succeeded"
    );
    sim_kubelet::terminate(&pods, "si-worker-0", 0, None)
        .await
        .unwrap();
    await_condition(&ctx, "si", "Succeeded", secs(20)).await;
    ctx.teardown().await;
}
