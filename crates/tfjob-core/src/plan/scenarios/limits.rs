//! `backoffLimit` and `activeDeadlineSeconds`, and the clean-up after a limit failure.

use super::*;

#[test]
fn backoff_limit_counts_recreations_under_exit_code() {
    let mut world = World::new(&mnist("  runPolicy: {backoffLimit: 1}", "ExitCode"));
    world.step(t(0));
    world.exit("mnist-worker-0", 137);
    let plan = world.step(t(1));
    assert_eq!(
        plan.delete_pods.len(),
        1,
        "first failure: restart (1 of 1 allowed)"
    );
    world.step(t(2));
    world.exit("mnist-worker-0", 143);
    let plan = world.step(t(3));
    assert_eq!(
        world.conditions(),
        [
            "Created=True/TFJobCreated",
            "Restarting=True/TFJobRestarting",
            "Failed=True/TFJobFailed"
        ]
    );
    assert_eq!(
        events(&plan),
        [
            "Normal TFJobFailed: Job mnist has failed because it has reached the specified backoff limit"
        ]
    );
    assert_eq!(plan.counters, [JobCounter::Failed]);
    assert!(
        plan.delete_pods.is_empty(),
        "cleanPodPolicy None keeps the pods"
    );
}

#[test]
fn backoff_limit_counts_in_place_restarts_under_on_failure() {
    let mut world = World::new(&mnist("  runPolicy: {backoffLimit: 2}", "OnFailure"));
    world.step(t(0));
    world.set("mnist-worker-0", "Running", None, 2);
    assert!(
        world.step(t(1)).counters.is_empty(),
        "2 restarts of 2 allowed"
    );
    world.set("mnist-worker-0", "Running", None, 3);
    let plan = world.step(t(2));
    assert_eq!(
        events(&plan),
        [
            "Normal TFJobFailed: Job mnist has failed because it has reached the specified backoff limit"
        ]
    );
}

#[test]
fn backoff_limit_survives_pod_recreation_under_always() {
    let mut world = World::new(&mnist("  runPolicy: {backoffLimit: 3}", "Always"));
    world.step(t(0));
    // Two in-place restarts, then an eviction: 2 + 1 = 3 restarts, all allowed.
    world.set("mnist-worker-0", "Failed", Some(137), 2);
    world.step(t(1));
    assert_eq!(world.replica_statuses()["Worker"]["restarts"], json!(3));
    world.step(t(2)); // re-created with restartCount 0; the 3 restarts are remembered
    world.set("mnist-worker-0", "Running", None, 1);
    let plan = world.step(t(3));
    assert_eq!(
        events(&plan),
        [
            "Normal TFJobFailed: Job mnist has failed because it has reached the specified backoff limit"
        ]
    );
}

#[test]
fn legacy_backoff_limit_of_the_seed_is_honoured() {
    let mut world = World::new(SEED);
    world.step(t(0));
    world.set("tfjob-test-worker-0", "Running", None, 7);
    let plan = world.step(t(1));
    assert_eq!(
        events(&plan),
        [
            "Normal TFJobFailed: Job tfjob-test has failed because it has reached the specified backoff limit"
        ]
    );
}

#[test]
fn deadline_fires_on_a_quiet_job_by_timer() {
    let mut world = World::new(&mnist("  runPolicy: {activeDeadlineSeconds: 60}", "Never"));
    let plan = world.step(t(0));
    assert_eq!(plan.requeue_after, Some(Duration::from_millis(60_100)));
    for pod in world.pod_names() {
        world.run(&pod);
    }
    let plan = world.step(t(10));
    assert_eq!(plan.requeue_after, Some(Duration::from_millis(50_100)));
    let plan = world.step(t(60));
    assert_eq!(
        events(&plan),
        [
            "Normal TFJobFailed: Job mnist has failed because it was active longer than specified deadline"
        ]
    );
    assert_eq!(
        world.conditions(),
        [
            "Created=True/TFJobCreated",
            "Running=False/TFJobRunning",
            "Failed=True/TFJobFailed"
        ]
    );
    assert!(
        plan.delete_pods.is_empty(),
        "v1.9.4: the limits path honours cleanPodPolicy None"
    );
    assert_eq!(plan.requeue_after, None);
}

#[test]
fn limits_failure_cleans_up_per_policy() {
    let mut world = World::new(&mnist(
        "  runPolicy: {activeDeadlineSeconds: 5, cleanPodPolicy: All}",
        "Never",
    ));
    world.step(t(0));
    let plan = world.step(t(5));
    assert_eq!(plan.delete_pods.len(), 3);
    assert_eq!(plan.delete_services.len(), 3);
}
