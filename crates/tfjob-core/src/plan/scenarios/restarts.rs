//! Failed pods under `OnFailure`, `Always` and `ExitCode`: restarts, their counts, deleted pods.

use super::*;

#[test]
fn on_failure_restarts_a_failed_pod_then_running_replaces_restarting() {
    let mut world = World::new(&mnist("", "OnFailure"));
    world.step(t(0));
    for pod in world.pod_names() {
        world.run(&pod);
    }
    world.step(t(1));
    // Evicted: phase Failed even under OnFailure, after 2 in-place restarts.
    world.set("mnist-worker-1", "Failed", Some(137), 2);
    let plan = world.step(t(2));
    assert_eq!(
        plan.delete_pods,
        [ChildRef {
            name: "mnist-worker-1".into(),
            uid: Some("uid-3".into())
        }]
    );
    assert_eq!(
        world.conditions(),
        [
            "Created=True/TFJobCreated",
            "Restarting=True/TFJobRestarting"
        ]
    );
    assert_eq!(
        events(&plan),
        [
            "Normal ExitedWithCode: Pod: ns.mnist-worker-1 exited with code 137",
            "Warning TFJobRestarting: job mnist is restarting because Worker replica(s) failed: mnist-worker-1 exited with 137 (Error).",
        ]
    );
    assert_eq!(plan.counters, [JobCounter::Restarted]);
    assert_eq!(
        world.replica_statuses()["Worker"],
        json!({"active": 1, "failed": 1, "restarts": 3, "restartedPods": ["uid-3"],
               "lastFailure": {"container": "tensorflow", "exitCode": 137,
                               "pod": "mnist-worker-1", "reason": "Error"}})
    );

    // The pod is gone: the next pass re-creates it; worker 0 still runs, so Running is back.
    let plan = world.step(t(3));
    assert_eq!(plan.create_pods.len(), 1);
    assert_eq!(
        plan.create_pods[0].metadata.name.as_deref(),
        Some("mnist-worker-1")
    );
    assert_eq!(
        world.conditions(),
        ["Created=True/TFJobCreated", "Running=True/TFJobRunning"]
    );
    assert!(plan.counters.is_empty(), "one restart counted once");
    assert_eq!(
        world.replica_statuses()["Worker"],
        json!({"active": 1, "restarts": 3,
               "lastFailure": {"container": "tensorflow", "exitCode": 137,
                               "pod": "mnist-worker-1", "reason": "Error"}})
    );
}

#[test]
fn a_restart_whose_delete_failed_is_not_counted_again() {
    let mut world = World::new(&mnist("", "OnFailure"));
    world.step(t(0));
    for pod in world.pod_names() {
        world.run(&pod);
    }
    world.step(t(1));
    world.set("mnist-worker-1", "Failed", Some(137), 0);
    // The status that counts the restart is stored, then the delete fails (or the operator
    // dies before it): the pod is still there, failed.
    let plan = world.plan(t(2));
    assert_eq!(plan.counters, [JobCounter::Restarted]);
    world.job.status = plan.status;
    assert_eq!(world.replica_statuses()["Worker"]["restarts"], json!(1));

    let retry = world.step(t(3));
    assert_eq!(
        retry.delete_pods,
        [ChildRef {
            name: "mnist-worker-1".into(),
            uid: Some("uid-3".into())
        }],
        "the delete is retried"
    );
    assert!(
        retry.counters.is_empty(),
        "the restart is not counted again"
    );
    assert!(events(&retry).is_empty(), "{:?}", events(&retry));
    assert_eq!(world.replica_statuses()["Worker"]["restarts"], json!(1));

    // Once the pod is gone its UID is forgotten.
    world.step(t(4));
    assert_eq!(
        world.replica_statuses()["Worker"],
        json!({"active": 1, "restarts": 1, "lastFailure": {"container": "tensorflow", "exitCode": 137, "pod": "mnist-worker-1", "reason": "Error"}})
    );
}

#[test]
fn exit_code_137_restarts_and_exit_code_1_fails() {
    let mut world = World::new(&mnist("", "ExitCode"));
    world.step(t(0));
    for pod in world.pod_names() {
        world.run(&pod);
    }
    world.step(t(1));
    world.exit("mnist-worker-1", 137);
    let plan = world.step(t(2));
    assert_eq!(plan.delete_pods.len(), 1);
    assert_eq!(
        world.conditions(),
        [
            "Created=True/TFJobCreated",
            "Restarting=True/TFJobRestarting"
        ]
    );

    world.step(t(3)); // re-created
    world.run("mnist-worker-1");
    world.step(t(4));
    world.exit("mnist-worker-1", 1);
    let plan = world.step(t(5));
    assert_eq!(
        world.conditions(),
        [
            "Created=True/TFJobCreated",
            "Running=False/TFJobRunning",
            "Failed=True/TFJobFailed"
        ]
    );
    assert_eq!(
        events(&plan),
        [
            "Normal ExitedWithCode: Pod: ns.mnist-worker-1 exited with code 1",
            r#"Warning TFJobFailed: job "mnist" is failing because "Worker" replica(s) failed: mnist-worker-1 exited with 1 (Error)."#,
        ]
    );
    assert_eq!(
        plan.counters,
        [JobCounter::Failed],
        "one failure, counted once"
    );
    assert!(
        plan.delete_pods.is_empty(),
        "the failed pod is kept for debugging"
    );
}

#[test]
fn exit_code_without_a_terminated_container_is_retried() {
    let mut world = World::new(&mnist("", "ExitCode"));
    world.step(t(0));
    world.set("mnist-worker-0", "Failed", None, 0);
    let plan = world.step(t(1));
    assert_eq!(plan.delete_pods.len(), 1);
    assert_eq!(
        events(&plan),
        ["Warning TFJobRestarting: job mnist is restarting because Worker replica(s) failed."]
    );
}

#[test]
fn a_pod_deleted_by_hand_under_on_failure_restarts_without_failing_the_job() {
    let mut world = World::new(&mnist("", "OnFailure"));
    world.step(t(0));
    for pod in world.pod_names() {
        world.run(&pod);
    }
    world.step(t(1));
    world.start_deleting("mnist-worker-1", t(2));
    let plan = world.step(t(2));
    assert_eq!(
        world.conditions(),
        ["Created=True/TFJobCreated", "Running=True/TFJobRunning"]
    );
    assert!(plan.delete_pods.is_empty() && plan.create_pods.is_empty());
    assert_eq!(world.replica_statuses()["Worker"], json!({"active": 1}));
    world.remove_pod("mnist-worker-1");
    let plan = world.step(t(3));
    assert_eq!(
        plan.create_pods[0].metadata.name.as_deref(),
        Some("mnist-worker-1")
    );
    assert_eq!(
        world.conditions(),
        ["Created=True/TFJobCreated", "Running=True/TFJobRunning"]
    );
}
