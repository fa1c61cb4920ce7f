//! The TFJob lifecycle on the real control plane: the operator and the simulated kubelet run
//! in-process, one namespace per test.

use test_support as support;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};

use support::operator::{Operator, await_condition, await_events, conditions, sim_kubelet, submit};
use support::pod_history::PodHistory;
use support::*;
use tfjob_core::api::TFJob;

/// A TFJob with `PS` and `Worker` replicas whose pods behave per `annotations` (the simulated
/// kubelet's `sim.tfjob-operator.dev/*` keys).
fn job_yaml(name: &str, spec_extra: &str, replicas: &[(&str, i32, &str, &str)]) -> String {
    let mut yaml = format!(
        "apiVersion: kubeflow.org/v1\nkind: TFJob\nmetadata: {{name: {name}}}\nspec:\n{spec_extra}  tfReplicaSpecs:\n"
    );
    for (replica_type, count, policy, annotations) in replicas {
        yaml.push_str(&format!(
            "    {replica_type}:\n      replicas: {count}\n      restartPolicy: {policy}\n      template:\n        metadata:\n          annotations: {{{annotations}}}\n        spec:\n          containers: [{{name: tensorflow, image: tf}}]\n"
        ));
    }
    yaml
}

const FAST: &str = "sim.tfjob-operator.dev/pending-ms: '0', sim.tfjob-operator.dev/run-ms: '300'";
const FOREVER: &str =
    "sim.tfjob-operator.dev/pending-ms: '0', sim.tfjob-operator.dev/run-forever: 'true'";

async fn pod_names(ctx: &TestContext) -> Vec<String> {
    let pods: Api<Pod> = ctx.api();
    let mut names: Vec<String> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    names.sort();
    names
}

async fn service_names(ctx: &TestContext) -> Vec<String> {
    let services: Api<Service> = ctx.api();
    let mut names: Vec<String> = services
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|s| s.name_any())
        .collect();
    names.sort();
    names
}

async fn wait_pods(ctx: &TestContext, expected: &[&str]) {
    wait_for(secs(30), &format!("pods {expected:?}"), || async {
        let names = pod_names(ctx).await;
        if names == expected {
            Ok(())
        } else {
            Err(format!("{names:?}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_example_runs_to_success() {
    let ctx = TestContext::new("seed").await;
    let _operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    let seed = include_str!("../examples/tfjob-seed.yaml");
    submit(&ctx, seed).await;
    let job = await_condition(&ctx, "tfjob-test", "Succeeded", secs(30)).await;
    assert_eq!(
        conditions(&job),
        [
            "Created=True/TFJobCreated",
            "Running=False/TFJobRunning",
            "Succeeded=True/TFJobSucceeded"
        ]
    );
    let status = job.status.clone().unwrap();
    assert_eq!(status.replica_statuses["PS"].succeeded, 1);
    assert_eq!(status.replica_statuses["Worker"].succeeded, 1);
    assert!(status.start_time.is_some() && status.completion_time.is_some());
    // Spec untouched: keys as written, legacy field kept, no defaults persisted.
    assert!(job.spec.tf_replica_specs.contains_key("Ps"));
    assert_eq!(job.spec.backoff_limit, Some(6));
    assert_eq!(job.spec.tf_replica_specs["Ps"].restart_policy, None);

    let pods: Api<Pod> = ctx.api();
    let worker = pods.get("tfjob-test-worker-0").await.unwrap();
    let env = worker.spec.unwrap().containers[0].env.clone().unwrap();
    assert_eq!(
        env[0].value.as_deref().unwrap(),
        format!(
            r#"{{"cluster":{{"ps":["tfjob-test-ps-0.{ns}.svc:2222"],"worker":["tfjob-test-worker-0.{ns}.svc:2222"]}},"task":{{"type":"worker","index":0}},"environment":"cloud"}}"#,
            ns = ctx.namespace
        )
    );
    assert_eq!(
        worker.metadata.labels.unwrap()["training.kubeflow.org/job-role"],
        "master"
    );
    assert_eq!(
        service_names(&ctx).await,
        ["tfjob-test-ps-0", "tfjob-test-worker-0"]
    );
    let events = await_events(&ctx, "tfjob-test", "the TFJobSucceeded event", |e| {
        e.iter().any(|e| e.contains("TFJobSucceeded"))
    })
    .await;
    assert!(
        events.contains(
            &"Normal SuccessfulCreatePod: Created pod: tfjob-test-ps-0, tfjob-test-worker-0"
                .to_string()
        ),
        "{events:?}"
    );
    assert!(
        events.contains(&format!(
            "Normal TFJobSucceeded: TFJob {}/tfjob-test successfully completed.",
            ctx.namespace
        )),
        "{events:?}"
    );
    assert!(events.len() <= 6, "events once per transition: {events:?}");
    ctx.teardown().await;
}

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
                "TFJob {}/nv has failed because 1 Worker replica(s) failed.",
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
            &"Warning TFJobRestarting: job oom is restarting because Worker replica(s) failed."
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
    let last = job.status.unwrap().conditions.last().unwrap().clone();
    assert_eq!(
        last.message.as_deref(),
        Some(r#"job "perm" is failing because "Worker" replica(s) failed."#)
    );
    ctx.teardown().await;
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_managed_by_kueue_are_ignored() {
    let ctx = TestContext::new("managedby").await;
    let _operator = Operator::start(&ctx).await;
    submit(
        &ctx,
        &job_yaml(
            "mk",
            "  runPolicy: {managedBy: kueue.x-k8s.io/multikueue}\n",
            &[("Worker", 1, "Never", FAST)],
        ),
    )
    .await;
    submit(
        &ctx,
        &job_yaml("ours", "", &[("Worker", 1, "Never", FOREVER)]),
    )
    .await;
    wait_pods(&ctx, &["ours-worker-0"]).await;
    let job: TFJob = ctx.api::<TFJob>().get("mk").await.unwrap();
    assert!(job.status.is_none(), "no status written: {:?}", job.status);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_jobs_are_failed_with_the_field_named() {
    let ctx = TestContext::new("invalid").await;
    let _operator = Operator::start(&ctx).await;
    submit(
        &ctx,
        &job_yaml("bad", "", &[("Worker", 1, "Sometimes", FAST)]),
    )
    .await;
    let job = await_condition(&ctx, "bad", "Failed", secs(20)).await;
    let message = job
        .status
        .unwrap()
        .conditions
        .last()
        .unwrap()
        .message
        .clone()
        .unwrap();
    assert!(
        message.contains(
            "spec.tfReplicaSpecs[Worker].restartPolicy: Unsupported value: \"Sometimes\""
        ),
        "{message}"
    );
    let events = await_events(&ctx, "bad", "the TFJobFailedValidation event", |e| {
        e.iter().any(|e| e.contains("TFJobFailedValidation"))
    })
    .await;
    assert!(
        events.iter().any(
            |e| e.starts_with("Warning TFJobFailedValidation: ") && e.contains("restartPolicy")
        ),
        "{events:?}"
    );
    assert!(pod_names(&ctx).await.is_empty());
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_job_removes_its_children() {
    let ctx = TestContext::new("gc").await;
    let _operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    submit(
        &ctx,
        &job_yaml(
            "gc",
            "",
            &[("PS", 1, "Never", FOREVER), ("Worker", 2, "Never", FOREVER)],
        ),
    )
    .await;
    wait_pods(&ctx, &["gc-ps-0", "gc-worker-0", "gc-worker-1"]).await;
    ctx.api::<TFJob>()
        .delete("gc", &DeleteParams::default())
        .await
        .unwrap();
    // The garbage collector notices a CRD's owners within ~30 s of the CRD appearing.
    wait_for(secs(60), "children garbage-collected", || async {
        let (pods, services) = (pod_names(&ctx).await, service_names(&ctx).await);
        if pods.is_empty() && services.is_empty() {
            Ok(())
        } else {
            Err(format!("{pods:?} {services:?}"))
        }
    })
    .await;
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_mid_creation_creates_no_duplicates() {
    let ctx = TestContext::new("restart").await;
    let pod_history = PodHistory::record(&ctx);
    let operator = Operator::start(&ctx).await;
    submit(
        &ctx,
        &job_yaml(
            "big",
            "",
            &[
                ("PS", 2, "Never", FOREVER),
                ("Worker", 60, "Never", FOREVER),
            ],
        ),
    )
    .await;
    // Kill as soon as creation has started, then start a fresh operator (fresh caches).
    wait_for(secs(20), "the first pods", || async {
        let n = pod_history.names_seen();
        if n > 0 {
            Ok(())
        } else {
            Err("no pod yet".to_string())
        }
    })
    .await;
    drop(operator);
    let _operator = Operator::start(&ctx).await;
    wait_for(secs(60), "all 62 pods", || async {
        let n = pod_names(&ctx).await.len();
        if n == 62 {
            Ok(())
        } else {
            Err(format!("{n} pods"))
        }
    })
    .await;
    tokio::time::sleep(secs(2)).await;
    pod_history.stop();
    assert_eq!(pod_history.names_seen(), 62);
    pod_history.assert_no_pod_created_twice();
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gang_scheduling_without_the_pod_group_crd_fails_at_start_with_the_fix() {
    use tfjob_core::api::podgroup::GangScheduler;
    use tfjob_operator::controller::{self, Settings};
    let ctx = TestContext::new("nopodgroupcrd").await;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(ctx.client.clone());
    assert!(
        crds.get_opt("podgroups.scheduling.volcano.sh")
            .await
            .unwrap()
            .is_none(),
        "this test needs a control plane without the Volcano PodGroup CRD (tests/gang.rs installs it); \
         run it against its own control plane (unset TFJOB_TEST_CONTROL_PLANE)"
    );
    let settings = Settings {
        namespaces: vec![ctx.namespace.clone()],
        job_selector: None,
        concurrency: 1,
        watch_timeout_seconds: 60,
        list_page_size: 100,
        plan: tfjob_core::plan::PlanConfig {
            gang: Some(GangScheduler::Volcano),
            ..Default::default()
        },
        instance: "test".into(),
    };
    let metrics = tfjob_operator::ops::Metrics::new().unwrap();
    let error = controller::run(
        ctx.client.clone(),
        settings,
        metrics,
        tfjob_operator::ops::Readiness::new(),
        futures::future::pending(),
    )
    .await
    .expect_err("start-up must fail");
    assert_eq!(
        error.to_string(),
        "gang scheduling with \"volcano\" needs the PodGroup CRD (scheduling.volcano.sh/v1beta1), which is not installed; \
         install the scheduler's CRDs or unset --gang-scheduler-name"
    );
    ctx.teardown().await;
}
