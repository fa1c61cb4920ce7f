//! Restarts under `OnFailure` and `ExitCode`, and pods deleted by hand.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_failure_restarts_in_place_and_succeeds() {
    let ctx = TestContext::new("onfailure").await;
    let _operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    let flaky = format!(
        "{FAST}, sim.tfjob-operator.dev/fail-attempts: '1,2', sim.tfjob-operator.dev/exit-code: '1'"
    );
    submit(
        &ctx,
        &job_yaml(
            "of",
            "  runPolicy: {backoffLimit: 5}\n",
            &[("Worker", 1, "OnFailure", &flaky)],
        ),
    )
    .await;
    let job = await_condition(&ctx, "of", "Succeeded", secs(30)).await;
    assert!(!conditions(&job).iter().any(|c| c.starts_with("Failed")));
    let pods: Api<Pod> = ctx.api();
    let pod = pods.get("of-worker-0").await.unwrap();
    assert_eq!(
        pod.status.unwrap().container_statuses.unwrap()[0].restart_count,
        2,
        "restarted in place twice"
    );
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_code_137_restarts_but_exit_code_1_fails() {
    let ctx = TestContext::new("exitcode").await;
    let _operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    let oom_once = format!(
        "{FAST}, sim.tfjob-operator.dev/fail-attempts: '1', sim.tfjob-operator.dev/reason: OOMKilled"
    );
    submit(
        &ctx,
        &job_yaml("oom", "", &[("Worker", 1, "ExitCode", &oom_once)]),
    )
    .await;
    let job = await_condition(&ctx, "oom", "Succeeded", secs(30)).await;
    assert_eq!(job.status.unwrap().replica_statuses["Worker"].restarts, 1);
    let events = await_events(&ctx, "oom", "the TFJobRestarting event", |e| {
        e.iter().any(|e| e.contains("TFJobRestarting"))
    })
    .await;
    assert!(
        events.contains(
            &"Warning TFJobRestarting: job oom is restarting because Worker replica(s) failed: \
              oom-worker-0 exited with 137 (OOMKilled)."
                .to_string()
        ),
        "{events:?}"
    );

    let exit_1 = format!("{FAST}, sim.tfjob-operator.dev/exit-code: '1'");
    submit(
        &ctx,
        &job_yaml("perm", "", &[("Worker", 1, "ExitCode", &exit_1)]),
    )
    .await;
    let job = await_condition(&ctx, "perm", "Failed", secs(30)).await;
    let status = job.status.unwrap();
    let last = status.conditions.last().unwrap().clone();
    assert_eq!(
        last.message.as_deref(),
        Some(
            r#"job "perm" is failing because "Worker" replica(s) failed: perm-worker-0 exited with 1 (Error)."#
        )
    );
    let failure = status.replica_statuses["Worker"]
        .last_failure
        .clone()
        .unwrap();
    assert_eq!(
        (
            failure.pod.as_str(),
            failure.exit_code,
            failure.reason.as_str()
        ),
        ("perm-worker-0", Some(1), "Error")
    );
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_deleted_by_hand_under_on_failure_is_recreated_without_failing_the_job() {
    let ctx = TestContext::new("handdelete").await;
    let _operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    submit(
        &ctx,
        &job_yaml("hd", "", &[("Worker", 2, "OnFailure", FOREVER)]),
    )
    .await;
    await_condition(&ctx, "hd", "Running", secs(20)).await;
    let pods: Api<Pod> = ctx.api();
    let old_uid = pods.get("hd-worker-1").await.unwrap().uid();
    pods.delete("hd-worker-1", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(secs(20), "a new hd-worker-1", || async {
        match pods.get_opt("hd-worker-1").await {
            Ok(Some(pod)) if pod.uid() != old_uid => Ok(()),
            other => Err(format!("{:?}", other.map(|p| p.map(|p| p.uid())))),
        }
    })
    .await;
    let job: TFJob = ctx.api::<TFJob>().get("hd").await.unwrap();
    assert!(
        !conditions(&job).iter().any(|c| c.starts_with("Failed")),
        "{:?}",
        conditions(&job)
    );
    ctx.teardown().await;
}
