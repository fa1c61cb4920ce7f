//! Back-off, deadline, TTL and clean-up policies.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_limit_is_reached_under_every_restart_policy() {
    let ctx = TestContext::new("backoff").await;
    let _operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    let always_failing = format!("{FAST}, sim.tfjob-operator.dev/exit-code: '137'");
    for policy in ["Always", "OnFailure", "ExitCode"] {
        let name = format!("bo-{}", policy.to_lowercase());
        submit(
            &ctx,
            &job_yaml(
                &name,
                "  runPolicy: {backoffLimit: 2}\n",
                &[("Worker", 1, policy, &always_failing)],
            ),
        )
        .await;
    }
    for policy in ["Always", "OnFailure", "ExitCode"] {
        let name = format!("bo-{}", policy.to_lowercase());
        let job = await_condition(&ctx, &name, "Failed", secs(40)).await;
        let last = job
            .status
            .clone()
            .unwrap()
            .conditions
            .last()
            .unwrap()
            .clone();
        assert_eq!(
            last.message.as_deref(),
            Some(
                format!("Job {name} has failed because it has reached the specified backoff limit")
                    .as_str()
            ),
            "{policy}"
        );
    }
    // Under Never the first failure already fails the job.
    submit(
        &ctx,
        &job_yaml(
            "bo-never",
            "  runPolicy: {backoffLimit: 2}\n",
            &[("Worker", 1, "Never", &always_failing)],
        ),
    )
    .await;
    await_condition(&ctx, "bo-never", "Failed", secs(30)).await;
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_fires_on_a_quiet_job() {
    let ctx = TestContext::new("deadline").await;
    let _operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    submit(
        &ctx,
        &job_yaml(
            "dl",
            "  runPolicy: {activeDeadlineSeconds: 3, cleanPodPolicy: All}\n",
            &[("Worker", 1, "Never", FOREVER)],
        ),
    )
    .await;
    await_condition(&ctx, "dl", "Running", secs(20)).await;
    // Nothing changes any more: only the operator's timer can fail the job.
    let job = await_condition(&ctx, "dl", "Failed", secs(10)).await;
    assert_eq!(
        job.status
            .unwrap()
            .conditions
            .last()
            .unwrap()
            .message
            .as_deref(),
        Some("Job dl has failed because it was active longer than specified deadline")
    );
    wait_pods(&ctx, &[]).await;
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_deletes_the_finished_job() {
    let ctx = TestContext::new("ttl").await;
    let _operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    submit(
        &ctx,
        &job_yaml(
            "ttl",
            "  runPolicy: {ttlSecondsAfterFinished: 2}\n",
            &[("Worker", 1, "Never", FAST)],
        ),
    )
    .await;
    await_condition(&ctx, "ttl", "Succeeded", secs(20)).await;
    await_deleted(&ctx.api::<TFJob>(), "ttl", secs(10)).await;
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_pod_policies() {
    let ctx = TestContext::new("cleanpod").await;
    let _operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    for policy in ["None", "Running", "All"] {
        let name = format!("cp-{}", policy.to_lowercase());
        let spec = format!("  runPolicy: {{cleanPodPolicy: {policy}}}\n");
        submit(
            &ctx,
            &job_yaml(
                &name,
                &spec,
                &[("PS", 1, "Never", FOREVER), ("Worker", 1, "Never", FAST)],
            ),
        )
        .await;
        await_condition(&ctx, &name, "Succeeded", secs(30)).await;
    }
    wait_for(secs(20), "clean-up per policy", || async {
        let pods = pod_names(&ctx).await;
        let services = service_names(&ctx).await;
        let expected_pods = ["cp-none-ps-0", "cp-none-worker-0", "cp-running-worker-0"];
        let expected_services = ["cp-none-ps-0", "cp-none-worker-0", "cp-running-worker-0"];
        if pods == expected_pods && services == expected_services {
            Ok(())
        } else {
            Err(format!("pods {pods:?} services {services:?}"))
        }
    })
    .await;
    ctx.teardown().await;
}
