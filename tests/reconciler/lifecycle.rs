//! A job's life on the real control plane: the seed example, deletion, hand-offs, invalid jobs, a killed operator, start-up checks.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_example_runs_to_success() {
    let ctx = TestContext::new("seed").await;
    let _operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    let seed = include_str!("../../examples/tfjob-seed.yaml");
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

/// A bug that panics one job's reconcile (injected: the `fault-injection` test hook) fails that
/// reconcile only: the job gets one Warning, is retried with back-off, and every other job goes
/// on. Before, the panic ended the process and the restart hit it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_reconcile_fails_only_its_job() {
    let ctx = TestContext::new("panic").await;
    let operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    let faulty = job_yaml("boom", "", &[("Worker", 1, "Never", FAST)]).replace(
        "metadata: {name: boom}",
        "metadata: {name: boom, annotations: {tfjob-operator.dev/fault: panic}}",
    );
    submit(&ctx, &faulty).await;
    submit(&ctx, &job_yaml("fine", "", &[("Worker", 1, "Never", FAST)])).await;
    await_condition(&ctx, "fine", "Succeeded", secs(30)).await;
    let events = await_events(&ctx, "boom", "the ReconcileError warning", |events| {
        events
            .iter()
            .any(|e| e.starts_with("Warning ReconcileError: "))
    })
    .await;
    assert!(
        events[0].contains("fault injected into the reconcile of boom"),
        "{events:?}"
    );
    // Retried with back-off (several times by now), announced once.
    wait_for(secs(20), "a few retries", || async {
        let scrape = support::prom_text::Scrape::parse(&operator.scrape()).unwrap();
        let errors = scrape.sum(
            "tfjob_operator_reconcile_errors_total",
            &[("kind", "panicked")],
        );
        if errors >= 3.0 {
            Ok(())
        } else {
            Err(format!("{errors} panicked reconciles"))
        }
    })
    .await;
    let events = support::operator::job_events(&ctx, "boom").await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.contains("ReconcileError"))
            .count(),
        1,
        "{events:?}"
    );
    let job: TFJob = ctx.api::<TFJob>().get("boom").await.unwrap();
    assert!(
        job.status.is_none(),
        "nothing written for it: {:?}",
        job.status
    );
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
        allow_upstream_crd: false,
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
