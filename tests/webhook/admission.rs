//! What the webhook admits and denies through kubectl, and what happens when it is down.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_rejects_each_bad_tfjob_with_the_exact_message() {
    let ctx = TestContext::new("webhook-bad").await;
    let (webhook, configs) = webhook_for(&ctx, secs(3600), secs(600), false).await;
    let containers = |c: Value| json!({"spec": {"containers": c}});
    let long = "a".repeat(55);
    let dns_1035 = "should match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
    let cases: Vec<(Value, String)> = vec![
        (job("1job"), format!("metadata.name: Invalid value: \"1job\": {dns_1035}")),
        (job("my.job"), format!("metadata.name: Invalid value: \"my.job\": {dns_1035}")),
        (job(&long), format!("metadata.name: Invalid value: \"{long}\": child name \"{long}-worker-1\" would be 64 characters, more than the 63 a Service name allows; shorten the TFJob name by at least 1 characters")),
        (job_with("managed", json!({"spec": {"runPolicy": {"managedBy": "me"}}})),
         r#"spec.runPolicy.managedBy: Unsupported value: "me": supported values: "kubeflow.org/training-operator", "kueue.x-k8s.io/multikueue""#.into()),
        (job_with("empty", json!({"spec": {"tfReplicaSpecs": {"PS": null, "Worker": null}}})),
         "spec.tfReplicaSpecs: Required value: must be required".into()),
        (job_with("no-containers", json!({"spec": {"tfReplicaSpecs": {"Worker": {"template": containers(json!([]))}}}})),
         "[spec.tfReplicaSpecs[Worker].template.spec.containers: Required value: must be specified, spec.tfReplicaSpecs[Worker].template.spec.containers: Required value: must have at least one container with name tensorflow]".into()),
        (job_with("no-image", json!({"spec": {"tfReplicaSpecs": {"Worker": {"template": containers(json!([{"name": "tensorflow"}]))}}}})),
         "spec.tfReplicaSpecs[Worker].template.spec.containers[0].image: Required value: must be required".into()),
        (job_with("no-tensorflow", json!({"spec": {"tfReplicaSpecs": {"Worker": {"template": containers(json!([{"name": "main", "image": "tf"}]))}}}})),
         "spec.tfReplicaSpecs[Worker].template.spec.containers: Required value: must have at least one container with name tensorflow".into()),
        (two_chiefs("chiefs"), TWO_CHIEFS.into()),
        (job_with("duplicate", json!({"spec": {"tfReplicaSpecs": {"worker": {"template": containers(json!([{"name": "tensorflow", "image": "tf"}]))}}}})),
         r#"spec.tfReplicaSpecs[worker]: Duplicate value: "worker": same replica type as "Worker" (keys are case-insensitive); merge them into one"#.into()),
        (job_with("unknown", json!({"spec": {"tfReplicaSpecs": {"Foo": {"template": containers(json!([{"name": "tensorflow", "image": "tf"}]))}}}})),
         r#"spec.tfReplicaSpecs[Foo]: Unsupported value: "Foo": supported values: "Chief", "Evaluator", "Master", "PS", "Worker""#.into()),
        (job_with("negative", json!({"spec": {"tfReplicaSpecs": {"Worker": {"replicas": -1}}}})),
         "spec.tfReplicaSpecs[Worker].replicas: Invalid value: -1: must be greater than or equal to 0".into()),
        (job_with("huge", json!({"spec": {"tfReplicaSpecs": {"Worker": {"replicas": 20000}}}})),
         "spec.tfReplicaSpecs[Worker].replicas: Invalid value: 20000: must be no more than 10000".into()),
        (job_with("restart", json!({"spec": {"tfReplicaSpecs": {"Worker": {"restartPolicy": "Sometimes"}}}})),
         r#"spec.tfReplicaSpecs[Worker].restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never", "ExitCode""#.into()),
        (job_with("success", json!({"spec": {"successPolicy": "AnyWorker"}})),
         r#"spec.successPolicy: Unsupported value: "AnyWorker": supported values: "", "AllWorkers""#.into()),
        (job_with("clean", json!({"spec": {"runPolicy": {"cleanPodPolicy": "all"}}})),
         r#"spec.runPolicy.cleanPodPolicy: Unsupported value: "all": supported values: "None", "Running", "All""#.into()),
        (job_with("legacy-clean", json!({"spec": {"cleanPodPolicy": "Some"}})),
         r#"spec.cleanPodPolicy: Unsupported value: "Some": supported values: "None", "Running", "All""#.into()),
        (job_with("limits", json!({"spec": {"runPolicy": {"backoffLimit": -1, "ttlSecondsAfterFinished": -5, "activeDeadlineSeconds": 0,
            "schedulingPolicy": {"minAvailable": -2, "scheduleTimeoutSeconds": -3}}}})),
         "[spec.runPolicy.backoffLimit: Invalid value: -1: must be greater than or equal to 0, spec.runPolicy.ttlSecondsAfterFinished: Invalid value: -5: must be greater than or equal to 0, spec.runPolicy.activeDeadlineSeconds: Invalid value: 0: must be greater than 0; remove the field for no deadline, spec.runPolicy.schedulingPolicy.minAvailable: Invalid value: -2: must be greater than or equal to 0, spec.runPolicy.schedulingPolicy.scheduleTimeoutSeconds: Invalid value: -3: must be greater than or equal to 0]".into()),
        (job_with("legacy", json!({"spec": {"backoffLimit": 6, "activeDeadlineSeconds": -1, "runPolicy": {"backoffLimit": 3}}})),
         "[spec.activeDeadlineSeconds: Invalid value: -1: must be greater than 0; remove the field for no deadline, spec.backoffLimit: Invalid value: 6: conflicts with spec.runPolicy.backoffLimit (3); remove the legacy spec.backoffLimit and keep spec.runPolicy.backoffLimit]".into()),
    ];
    // kubectl takes a while to start; four at a time keeps the two cores busy.
    let results: Vec<(Value, String, Output)> =
        futures::StreamExt::collect(futures::StreamExt::buffered(
            futures::stream::iter(cases.into_iter().map(|(object, message)| {
                let ctx = &ctx;
                async move {
                    let output = apply(ctx, &object).await;
                    (object, message, output)
                }
            })),
            4,
        ))
        .await;
    for (object, message, output) in &results {
        let name = &object["metadata"]["name"];
        assert_eq!(
            output.code, 1,
            "{name}: kubectl should fail; stdout {:?}",
            output.stdout
        );
        assert_eq!(output.stdout, "", "{name}");
        // Upstream's rules deny with upstream's exact text; what to change arrives as warnings.
        let hints: Vec<String> = match name.as_str().unwrap_or_default() {
            "empty" => vec!["spec.tfReplicaSpecs: add at least one replica type, e.g. a Worker with a container named tensorflow".into()],
            "no-containers" => vec![
                "spec.tfReplicaSpecs[Worker].template.spec.containers: add a container named tensorflow with an image".into(),
                "spec.tfReplicaSpecs[Worker].template.spec.containers: rename the training container to tensorflow".into(),
            ],
            "no-image" => vec!["spec.tfReplicaSpecs[Worker].template.spec.containers[0].image: set the container image".into()],
            "no-tensorflow" => vec!["spec.tfReplicaSpecs[Worker].template.spec.containers: rename the training container to tensorflow".into()],
            "chiefs" => vec![TWO_CHIEFS_HINT.into()],
            _ => vec![],
        };
        assert_eq!(
            output.stderr,
            denied_create_with_hints(message, &hints),
            "{name}"
        );
    }
    let stored = ctx
        .api::<TFJob>()
        .list(&Default::default())
        .await
        .expect("list");
    assert!(stored.items.is_empty(), "nothing bad was stored");
    webhook.stop().await;
    configs.delete(&ctx).await;
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_tfjobs_pass_and_updates_keep_managed_by_and_queue() {
    let ctx = TestContext::new("webhook-good").await;
    let (webhook, configs) = webhook_for(&ctx, secs(3600), secs(600), false).await;

    // Every example, the seed's legacy layout included, is admitted.
    let examples = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
        .expect("examples")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect::<BTreeSet<_>>();
    assert!(examples.len() >= 7, "{examples:?}");
    for path in &examples {
        let yaml = std::fs::read_to_string(path).expect("read example");
        let output = kubectl(&ctx, &["apply", "-f", "-"], &yaml).await;
        assert_eq!(
            (output.code, output.stderr.as_str()),
            (0, ""),
            "{}",
            path.display()
        );
        assert!(
            output.stdout.ends_with(" created\n"),
            "{}: {}",
            path.display(),
            output.stdout
        );
    }

    // UPDATE: the queue and managedBy are immutable; scaling is allowed.
    let original = job_with(
        "updated",
        json!({"spec": {"runPolicy": {"schedulingPolicy": {"queue": "a"}}}}),
    );
    let output = apply(&ctx, &original).await;
    assert_eq!(
        output.stdout, "tfjob.kubeflow.org/updated created\n",
        "{}",
        output.stderr
    );
    let scaled = job_with(
        "updated",
        json!({"spec": {"runPolicy": {"schedulingPolicy": {"queue": "a"}},
        "tfReplicaSpecs": {"Worker": {"replicas": 4}}}}),
    );
    let output = apply(&ctx, &scaled).await;
    assert_eq!(
        output.stdout, "tfjob.kubeflow.org/updated configured\n",
        "{}",
        output.stderr
    );

    for (change, message) in [
        (
            json!({"spec": {"runPolicy": {"schedulingPolicy": {"queue": "b"}}}}),
            r#"spec.runPolicy.schedulingPolicy.queue: Invalid value: "b": field is immutable"#,
        ),
        (
            json!({"spec": {"runPolicy": {"managedBy": "kueue.x-k8s.io/multikueue"}}}),
            r#"spec.runPolicy.managedBy: Invalid value: "kueue.x-k8s.io/multikueue": field is immutable"#,
        ),
    ] {
        let mut changed = scaled.clone();
        json_patch::merge(&mut changed, &change);
        let output = apply(&ctx, &changed).await;
        assert_eq!(output.code, 1, "{}", output.stdout);
        // The hint (what to keep) arrives as a warning line before the error.
        assert!(
            output.stderr.starts_with("Warning: spec.runPolicy.")
                && output
                    .stderr
                    .contains("or delete and re-create the TFJob\n"),
            "{}",
            output.stderr
        );
        let error = output
            .stderr
            .split_once("\nError from server")
            .map(|(_, rest)| format!("Error from server{rest}"))
            .unwrap_or_default();
        assert!(
            error.starts_with("Error from server (Forbidden): error when applying patch:\n"),
            "{}",
            output.stderr
        );
        assert!(
            output.stderr.ends_with(&format!(
                "for: \"STDIN\": error when patching \"STDIN\": admission webhook \"{VALIDATING_WEBHOOK_NAME}\" denied the request: {message}\n"
            )),
            "{}",
            output.stderr
        );
    }
    let stored = ctx.api::<TFJob>().get("updated").await.expect("get");
    let policy = stored.spec.run_policy.expect("runPolicy");
    assert_eq!(
        policy.scheduling_policy.and_then(|s| s.queue).as_deref(),
        Some("a")
    );
    assert_eq!(policy.managed_by, None);
    webhook.stop().await;
    configs.delete(&ctx).await;
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_webhook_down_the_failure_policy_decides() {
    let ctx = TestContext::new("webhook-down").await;
    let (webhook, configs) = webhook_for(&ctx, secs(3600), secs(600), false).await;
    let port = webhook.addr.port();
    webhook.stop().await;
    // Nothing listens on the port any more.
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());

    // Fail: refused, with the reason.
    let output = apply(&ctx, &job("refused")).await;
    assert_eq!(output.code, 1, "{}", output.stdout);
    assert_eq!(
        output.stderr,
        format!(
            "Error from server (InternalError): error when creating \"STDIN\": Internal error \
             occurred: failed calling webhook \"{VALIDATING_WEBHOOK_NAME}\": Post \
             \"https://127.0.0.1:{port}{VALIDATE_PATH}?timeout=10s\": dial tcp 127.0.0.1:{port}: \
             connect: connection refused\n"
        )
    );

    // Ignore: admitted, even what the webhook would have rejected.
    configs.update(&ctx, port, "Ignore").await;
    wait_for(
        secs(20),
        "the apiserver to ignore the unreachable webhook",
        || async { dry_run(&ctx, &two_chiefs("probe")).await },
    )
    .await;
    for object in [job("admitted"), two_chiefs("unchecked")] {
        let output = apply(&ctx, &object).await;
        assert_eq!((output.code, output.stderr.as_str()), (0, ""), "{object}");
    }
    configs.delete(&ctx).await;
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_defaulting_webhook_normalises_the_seed_layout() {
    let ctx = TestContext::new("webhook-defaulting").await;
    let (webhook, configs) = webhook_for(&ctx, secs(3600), secs(600), true).await;
    let seed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/tfjob-seed.yaml"
    ))
    .expect("seed");
    wait_for(
        secs(20),
        "the MutatingWebhookConfiguration to trust the CA too",
        || async {
            let resource = ApiResource::erase::<MutatingWebhookConfiguration>(&());
            Api::<DynamicObject>::all_with(ctx.client.clone(), &resource)
                .get(&configs.mutating)
                .await
                .is_ok_and(|config| ca_bundle::trusts(&config, &webhook.ca_pem))
        },
    )
    .await;
    let output = kubectl(&ctx, &["apply", "-f", "-"], &seed).await;
    assert_eq!(
        output.stdout, "tfjob.kubeflow.org/tfjob-test created\n",
        "{}",
        output.stderr
    );
    let stored: Value =
        serde_json::to_value(ctx.api::<TFJob>().get("tfjob-test").await.expect("get"))
            .expect("json");
    let spec = &stored["spec"];
    assert_eq!(
        spec["tfReplicaSpecs"]
            .as_object()
            .expect("map")
            .keys()
            .collect::<Vec<_>>(),
        ["PS", "Worker"],
        "Ps became PS"
    );
    assert_eq!(spec["runPolicy"]["backoffLimit"], 6);
    assert_eq!(spec.get("backoffLimit"), None, "moved, not copied");
    assert_eq!(
        spec["tfReplicaSpecs"]["PS"]["replicas"], 1,
        "no defaults persisted beyond the seed's own"
    );
    assert_eq!(
        spec["tfReplicaSpecs"]["PS"].get("restartPolicy"),
        None,
        "no defaults persisted"
    );
    webhook.stop().await;
    configs.delete(&ctx).await;
    ctx.teardown().await;
}
