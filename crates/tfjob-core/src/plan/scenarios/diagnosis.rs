//! Why a job failed or cannot start: the decisive pod in the Failed message, `lastFailure`,
//! and the note and Warning for pods that cannot start.

use k8s_openapi::api::core::v1::{ContainerState, ContainerStateWaiting, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;

fn oom_killed(world: &mut World, pod: &str) {
    world.exit(pod, 137);
    let status = world.pod_mut(pod).status.as_mut().unwrap();
    let container = &mut status.container_statuses.as_mut().unwrap()[0];
    let terminated = container
        .state
        .as_mut()
        .unwrap()
        .terminated
        .as_mut()
        .unwrap();
    terminated.reason = Some("OOMKilled".into());
    terminated.finished_at = Some(Time(t(5)));
}

fn waiting(world: &mut World, pod: &str, reason: &str, message: &str) {
    world.set(pod, "Pending", None, 0);
    let status = world.pod_mut(pod).status.as_mut().unwrap();
    status.container_statuses.as_mut().unwrap()[0].state = Some(ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message: Some(message.into()),
        }),
        ..Default::default()
    });
}

#[test]
fn an_oom_killed_worker_is_named_in_the_failed_message_and_in_last_failure() {
    let mut world = World::new(&mnist("", "Never"));
    world.step(t(0));
    for pod in world.pod_names() {
        world.run(&pod);
    }
    world.step(t(1));
    oom_killed(&mut world, "mnist-worker-1");
    let plan = world.step(t(6));
    let failed = "TFJob ns/mnist has failed because 1 Worker replica(s) failed: \
                  mnist-worker-1 exited with 137 (OOMKilled).";
    assert_eq!(world.last_message(), failed);
    assert!(
        events(&plan).contains(&format!("Normal TFJobFailed: {failed}")),
        "{:?}",
        events(&plan)
    );
    assert_eq!(
        world.replica_statuses()["Worker"]["lastFailure"],
        json!({"pod": "mnist-worker-1", "container": "tensorflow", "exitCode": 137,
               "reason": "OOMKilled", "time": "2027-01-15T08:00:05Z"})
    );
    assert!(world.replica_statuses()["PS"].get("lastFailure").is_none());
}

#[test]
fn a_bad_image_is_told_at_once_once_per_change() {
    let mut world = World::new(&mnist("", "Never"));
    world.step(t(0));
    waiting(
        &mut world,
        "mnist-worker-0",
        "ErrImagePull",
        "rpc error: not found",
    );
    let first = world.step(t(1));
    let note = r#"mnist-worker-0 cannot start: ImagePullBackOff (image "tf")."#;
    assert!(
        world.last_message().ends_with(note),
        "{}",
        world.last_message()
    );
    assert!(world.last_message().starts_with("TFJob mnist is created."));
    let warnings: Vec<_> = first
        .pod_warnings
        .iter()
        .filter(|w| w.reason == "PodCannotStart")
        .collect();
    assert_eq!(warnings.len(), 1, "{:?}", first.pod_warnings);
    assert_eq!(warnings[0].message, format!("TFJob ns/mnist: {note}"));

    // The kubelet's back-off: same reason for the job, the same warning (announced once by
    // the shell), no status write.
    waiting(
        &mut world,
        "mnist-worker-0",
        "ImagePullBackOff",
        "Back-off pulling image",
    );
    let again = world.step(t(2));
    assert!(again.status.is_none(), "{:?}", again.status);
    assert!(
        again
            .pod_warnings
            .iter()
            .any(|w| w.message == warnings[0].message)
    );

    // A second pod with the same cause joins the note.
    waiting(
        &mut world,
        "mnist-worker-1",
        "ImagePullBackOff",
        "Back-off pulling image",
    );
    world.step(t(3));
    assert!(world.last_message().ends_with(
        r#"mnist-worker-0 and 1 other pod(s) cannot start: ImagePullBackOff (image "tf")."#
    ));

    // Fixed: the note goes.
    world.run("mnist-worker-0");
    world.run("mnist-worker-1");
    world.step(t(4));
    assert_eq!(world.last_message(), "TFJob ns/mnist is running.");
}

#[test]
fn unschedulable_pods_carry_the_schedulers_message() {
    let mut world = World::new(&mnist("", "Never"));
    world.step(t(0));
    let message = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.";
    world
        .pod_mut("mnist-ps-0")
        .status
        .as_mut()
        .unwrap()
        .conditions = Some(vec![PodCondition {
        type_: "PodScheduled".into(),
        status: "False".into(),
        reason: Some("Unschedulable".into()),
        message: Some(message.into()),
        ..Default::default()
    }]);
    world.step(t(1));
    assert!(
        world.last_message().ends_with(&format!(
            "mnist-ps-0 cannot start: Unschedulable ({message})."
        )),
        "{}",
        world.last_message()
    );
}

#[test]
fn pods_pending_past_the_threshold_are_told_then() {
    let mut world = World::new(&mnist("", "Never"));
    world.step(t(0));
    for pod in world.pod_names() {
        world.pod_mut(&pod).metadata.creation_timestamp = Some(Time(t(0)));
    }
    let early = world.step(t(100));
    assert_eq!(world.last_message(), "TFJob mnist is created.");
    assert_eq!(early.requeue_after, Some(Duration::from_millis(200_100)));
    assert!(
        early
            .pod_warnings
            .iter()
            .all(|w| w.reason != "PodCannotStart")
    );

    let late = world.step(t(301));
    assert!(
        world
            .last_message()
            .ends_with("mnist-ps-0 and 2 other pod(s) cannot start: Pending for more than 5m."),
        "{}",
        world.last_message()
    );
    assert_eq!(
        late.pod_warnings
            .iter()
            .filter(|w| w.reason == "PodCannotStart")
            .count(),
        1
    );
}

#[test]
fn the_pending_deadline_fails_the_job_and_frees_its_pods() {
    let annotated = mnist("  runPolicy: {cleanPodPolicy: Running}", "Never").replace(
        "metadata: {name: mnist}",
        "metadata: {name: mnist, annotations: {tfjob-operator.dev/pending-deadline: 10m}}",
    );
    let mut world = World::new(&annotated);
    world.step(t(0));
    for pod in world.pod_names() {
        world.pod_mut(&pod).metadata.creation_timestamp = Some(Time(t(0)));
    }
    world.run("mnist-ps-0");
    world.run("mnist-worker-1");
    waiting(
        &mut world,
        "mnist-worker-0",
        "ImagePullBackOff",
        "Back-off pulling image",
    );
    let early = world.step(t(60));
    assert_eq!(early.requeue_after, Some(Duration::from_millis(540_100)));
    assert!(!world.conditions().iter().any(|c| c.starts_with("Failed")));

    let plan = world.step(t(600));
    let message = r#"TFJob ns/mnist has failed because mnist-worker-0 did not start within the pending deadline of 10m: ImagePullBackOff (image "tf")."#;
    assert_eq!(world.last_message(), message);
    assert!(
        events(&plan).contains(&format!("Warning TFJobFailed: {message}")),
        "{:?}",
        events(&plan)
    );
    assert!(plan.create_pods.is_empty());
    // cleanPodPolicy Running: the running and the waiting pods go (their GPUs are free).
    let mut deleted: Vec<&str> = plan.delete_pods.iter().map(|p| p.name.as_str()).collect();
    deleted.sort();
    assert_eq!(deleted, ["mnist-ps-0", "mnist-worker-0", "mnist-worker-1"]);
}

#[test]
fn the_operator_wide_pending_deadline_applies_without_the_annotation() {
    let mut world = World::new(&mnist("", "Never"));
    world.config.pending_deadline = Some(Duration::from_secs(60));
    world.step(t(0));
    for pod in world.pod_names() {
        world.pod_mut(&pod).metadata.creation_timestamp = Some(Time(t(0)));
    }
    world.step(t(61));
    assert_eq!(
        world.last_message(),
        "TFJob ns/mnist has failed because mnist-ps-0 did not start within the pending \
         deadline of 1m: Pending."
    );
}

#[test]
fn a_bad_pending_deadline_annotation_fails_validation_naming_it() {
    let annotated = mnist("", "Never").replace(
        "metadata: {name: mnist}",
        "metadata: {name: mnist, annotations: {tfjob-operator.dev/pending-deadline: soon}}",
    );
    let mut world = World::new(&annotated);
    world.step(t(0));
    assert_eq!(
        world.last_message(),
        "TFJob failed validation because metadata.annotations[tfjob-operator.dev/pending-deadline]: \
         Invalid value: \"soon\": must be a positive duration; write a duration such as 10m or \
         1h30m, or remove the annotation"
    );
}

#[test]
fn ready_counts_running_pods_against_wanted_replicas() {
    let mut world = World::new(&mnist("", "Never"));
    let ready = |world: &World| world.job.status.as_ref().and_then(|s| s.ready.clone());
    world.step(t(0));
    assert_eq!(ready(&world).as_deref(), Some("0/3"));
    world.run("mnist-ps-0");
    world.run("mnist-worker-0");
    world.step(t(1));
    assert_eq!(ready(&world).as_deref(), Some("2/3"));
    world.run("mnist-worker-1");
    world.step(t(2));
    assert_eq!(ready(&world).as_deref(), Some("3/3"));
    // Unchanged counters: no status write for it.
    assert!(world.step(t(3)).status.is_none());
    world.exit("mnist-worker-0", 0);
    world.exit("mnist-worker-1", 0);
    world.step(t(4));
    assert!(
        world
            .conditions()
            .iter()
            .any(|c| c.starts_with("Succeeded"))
    );
    assert_eq!(ready(&world).as_deref(), Some("0/3"));
}
