//! A job's life from the seed example on: creation, success, scaling, hand-offs, invalid specs, pod warnings.

use super::*;

#[test]
fn seed_example_first_pass_creates_everything_once() {
    let mut world = World::new(SEED);
    let plan = world.step(t(0));
    assert_eq!(
        world.pod_names(),
        ["tfjob-test-ps-0", "tfjob-test-worker-0"]
    );
    assert_eq!(
        world.service_names(),
        ["tfjob-test-ps-0", "tfjob-test-worker-0"]
    );
    assert_eq!(world.conditions(), ["Created=True/TFJobCreated"]);
    assert_eq!(plan.counters, [JobCounter::Created]);
    assert_eq!(
        events(&plan),
        [
            "Warning SetPodTemplateRestartPolicy: Restart policy in pod template will be overwritten by restart policy in replica spec"
        ]
    );
    let status = world.job.status.clone().unwrap();
    assert_eq!(
        status.conditions[0].message.as_deref(),
        Some("TFJob tfjob-test is created.")
    );
    assert_eq!(status.start_time.unwrap().0, t(0));
    assert_eq!(world.replica_statuses(), json!({"PS": {}, "Worker": {}}));
    assert_eq!(plan.requeue_after, None);
    assert_eq!(
        tf_config_of(&world, "tfjob-test-worker-0").as_deref(),
        Some(
            r#"{"cluster":{"ps":["tfjob-test-ps-0.ns.svc:2222"],"worker":["tfjob-test-worker-0.ns.svc:2222"]},"task":{"type":"worker","index":0},"environment":"cloud"}"#
        )
    );
    // The replica restartPolicy (default Never) replaces the template's OnFailure.
    let pod = &world.pods[0];
    assert_eq!(
        pod.spec.as_ref().unwrap().restart_policy.as_deref(),
        Some("Never")
    );

    // Nothing changed: the next pass does nothing at all.
    assert!(world.step(t(1)).is_noop());
}

#[test]
fn seed_example_runs_and_succeeds_when_worker_0_exits_0() {
    let mut world = World::new(SEED);
    world.step(t(0));
    world.run("tfjob-test-ps-0");
    world.run("tfjob-test-worker-0");
    let plan = world.step(t(5));
    assert_eq!(
        world.conditions(),
        ["Created=True/TFJobCreated", "Running=True/TFJobRunning"]
    );
    assert_eq!(
        world.job.status.as_ref().unwrap().conditions[1]
            .message
            .as_deref(),
        Some("TFJob ns/tfjob-test is running.")
    );
    assert_eq!(
        world.replica_statuses(),
        json!({"PS": {"active": 1}, "Worker": {"active": 1}})
    );
    assert!(plan.events.is_empty() && plan.counters.is_empty());

    world.exit("tfjob-test-worker-0", 0);
    let plan = world.step(t(9));
    assert_eq!(
        world.conditions(),
        [
            "Created=True/TFJobCreated",
            "Running=False/TFJobRunning",
            "Succeeded=True/TFJobSucceeded"
        ]
    );
    assert_eq!(
        events(&plan),
        ["Normal TFJobSucceeded: TFJob ns/tfjob-test successfully completed."]
    );
    assert_eq!(plan.counters, [JobCounter::Succeeded]);
    let status = world.job.status.clone().unwrap();
    assert_eq!(status.completion_time.unwrap().0, t(9));
    // Finished: active counts fold into succeeded, as upstream's finished branch does.
    assert_eq!(
        world.replica_statuses(),
        json!({"PS": {"succeeded": 1}, "Worker": {"succeeded": 1, "completedIndexes": "0"}})
    );
    // cleanPodPolicy defaults to None: the PS keeps running.
    assert!(plan.delete_pods.is_empty());
    assert!(world.step(t(10)).is_noop(), "success is reported once");
}

#[test]
fn single_replica_jobs_get_no_tf_config() {
    let mut world = World::new(
        "metadata: {name: one}\nspec:\n  tfReplicaSpecs:\n    Worker: {template: {spec: {containers: [{name: tensorflow, image: tf}]}}}\n",
    );
    world.step(t(0));
    assert_eq!(tf_config_of(&world, "one-worker-0"), None);
}

#[test]
fn scale_up_and_down_by_editing_replicas() {
    let mut world = World::new(&mnist("", "Never"));
    world.step(t(0));
    world
        .job
        .spec
        .tf_replica_specs
        .get_mut("Worker")
        .unwrap()
        .replicas = Some(3);
    let plan = world.step(t(1));
    assert_eq!(plan.create_pods.len(), 1);
    assert_eq!(
        world.pod_names(),
        [
            "mnist-ps-0",
            "mnist-worker-0",
            "mnist-worker-1",
            "mnist-worker-2"
        ]
    );
    assert!(
        tf_config_of(&world, "mnist-worker-2")
            .unwrap()
            .contains("mnist-worker-2.ns.svc:2222")
    );
    world
        .job
        .spec
        .tf_replica_specs
        .get_mut("Worker")
        .unwrap()
        .replicas = Some(1);
    let plan = world.step(t(2));
    let deleted: Vec<&str> = plan.delete_pods.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(deleted, ["mnist-worker-1", "mnist-worker-2"]);
    assert_eq!(world.service_names(), ["mnist-ps-0", "mnist-worker-0"]);
}

#[test]
fn jobs_managed_by_multikueue_are_left_alone() {
    let world = World::new(&mnist(
        "  runPolicy: {managedBy: kueue.x-k8s.io/multikueue}",
        "Never",
    ));
    assert!(world.plan(t(0)).is_noop());
}

#[test]
fn jobs_being_deleted_are_left_to_garbage_collection() {
    let mut world = World::new(&mnist("", "Never"));
    world.job.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t(0)));
    assert!(world.plan(t(0)).is_noop());
}

/// 2,500 workers of a long-named job in the standard TF_CONFIG form: every pod's TF_CONFIG
/// would be over Linux's 128 KiB limit for one environment variable, so the job fails at
/// once, creating nothing, instead of creating thousands of pods that all fail at exec.
#[test]
fn a_tf_config_no_pod_could_start_with_fails_the_job_before_any_pod() {
    let long_name = "a-rather-long-job-name-for-a-large-training-run";
    let yaml = mnist("", "Never")
        .replace("replicas: 2", "replicas: 2500")
        .replace("name: mnist", &format!("name: {long_name}"));
    let mut world = World::new(&yaml);
    let plan = world.step(t(0));
    assert!(plan.create_pods.is_empty() && plan.create_services.is_empty());
    assert_eq!(
        world.conditions(),
        [
            "Created=True/TFJobCreated",
            "Failed=True/TFJobFailedValidation"
        ]
    );
    let message = world.job.status.as_ref().unwrap().conditions[1]
        .message
        .clone()
        .unwrap();
    assert!(
        message.starts_with(
            "TFJob failed validation because spec.tfReplicaSpecs: Forbidden: TF_CONFIG would be "
        ) && message.contains("enableDynamicWorker: true"),
        "{message}"
    );
}

#[test]
fn invalid_jobs_fail_with_a_message_naming_the_field_and_nothing_else() {
    let mut world = World::new(&mnist("", "Sometimes"));
    let plan = world.step(t(0));
    assert!(plan.create_pods.is_empty() && plan.create_services.is_empty());
    assert_eq!(
        world.conditions(),
        [
            "Created=True/TFJobCreated",
            "Failed=True/TFJobFailedValidation"
        ]
    );
    let expected = r#"TFJob failed validation because spec.tfReplicaSpecs[Worker].restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never", "ExitCode""#;
    assert_eq!(
        world.job.status.as_ref().unwrap().conditions[1]
            .message
            .as_deref(),
        Some(expected)
    );
    assert_eq!(
        events(&plan),
        [format!("Warning TFJobFailedValidation: {expected}")]
    );
    assert_eq!(plan.counters, [JobCounter::Created, JobCounter::Failed]);
    assert!(world.step(t(1)).is_noop());

    // Where upstream's text does not say what to change, the condition adds the hint.
    let mut world = World::new(
        &mnist("", "Never").replace("name: tensorflow, image: tf", "name: main, image: tf"),
    );
    world.step(t(0));
    let message = world.job.status.as_ref().unwrap().conditions[1]
        .message
        .clone()
        .unwrap();
    assert!(
        message.contains(
            "Required value: must have at least one container with name tensorflow; rename the \
             training container to tensorflow"
        ),
        "{message}"
    );
}

#[test]
fn replica_types_removed_from_the_spec_are_scaled_to_zero() {
    let mut world = World::new(&mnist("", "Never"));
    world.step(t(0));
    world.job.spec.tf_replica_specs.remove("PS");
    let plan = world.step(t(1));
    assert_eq!(
        plan.delete_pods
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["mnist-ps-0"]
    );
    assert_eq!(world.service_names(), ["mnist-worker-0", "mnist-worker-1"]);
}

#[test]
fn unhealthy_pods_are_reported_as_pod_warnings() {
    let mut world = World::new(&mnist("", "OnFailure"));
    world.step(t(0));
    world.pod_mut("mnist-worker-0").status = serde_json::from_value(json!({
        "phase": "Running",
        "containerStatuses": [{"name": "tensorflow", "image": "tf", "imageID": "", "ready": false, "restartCount": 2,
                               "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}}}]
    }))
    .unwrap();
    let plan = world.plan(t(1));
    assert_eq!(
        plan.pod_warnings,
        [crate::plan::PodWarning {
            pod_uid: "uid-2".into(),
            reason: "CrashLoopBackOff".into(),
            message: "Error pod mnist-worker-0 container tensorflow waiting message: back-off 20s"
                .into(),
        }]
    );
    assert!(
        plan.events.is_empty(),
        "announced by the shell, once per message"
    );
}

/// What the shell reports (a child name taken by another controller's object) shows in the
/// current condition's message while it lasts, and goes away with it.
#[test]
fn notes_from_the_shell_annotate_the_current_condition_while_they_last() {
    let mut world = World::new(&mnist("", "Never"));
    world.notes = vec!["pod mnist-worker-1 cannot be created: taken.".into()];
    world.step(t(0));
    let message = |world: &World| {
        world
            .job
            .status
            .as_ref()
            .unwrap()
            .conditions
            .last()
            .unwrap()
            .message
            .clone()
            .unwrap()
    };
    assert_eq!(
        message(&world),
        "TFJob mnist is created. Note: pod mnist-worker-1 cannot be created: taken."
    );
    assert_eq!(world.conditions(), ["Created=True/TFJobCreated"]);
    world.notes.clear();
    world.step(t(1));
    assert_eq!(message(&world), "TFJob mnist is created.");
}
