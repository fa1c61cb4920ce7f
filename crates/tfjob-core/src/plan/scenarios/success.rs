//! When a job succeeds or fails: chief vs worker 0 vs all workers, failures under `Never`, masking.

use super::*;

#[test]
fn chief_decides_success_while_workers_still_run() {
    let mut world = World::new(&chief_job(""));
    world.step(t(0));
    let roles: Vec<_> = world
        .pods
        .iter()
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .unwrap()
                .contains_key("training.kubeflow.org/job-role")
        })
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(roles, ["cj-chief-0"], "only the chief has job-role=master");
    for pod in world.pod_names() {
        world.run(&pod);
    }
    world.step(t(1));
    world.exit("cj-worker-0", 0);
    world.step(t(2));
    assert_eq!(
        world.conditions(),
        ["Created=True/TFJobCreated", "Running=True/TFJobRunning"],
        "worker 0 is not the chief"
    );
    world.exit("cj-chief-0", 0);
    let plan = world.step(t(3));
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
        ["Normal TFJobSucceeded: TFJob ns/cj successfully completed."]
    );
}

#[test]
fn worker_0_success_vs_all_workers() {
    let mut world = World::new(&mnist("", "Never"));
    world.step(t(0));
    for pod in world.pod_names() {
        world.run(&pod);
    }
    world.step(t(1));
    world.exit("mnist-worker-0", 0);
    world.step(t(2));
    assert!(
        world
            .conditions()
            .contains(&"Succeeded=True/TFJobSucceeded".to_string())
    );

    let mut world = World::new(&mnist("  successPolicy: AllWorkers", "Never"));
    world.step(t(0));
    for pod in world.pod_names() {
        world.run(&pod);
    }
    world.step(t(1));
    world.exit("mnist-worker-0", 0);
    world.step(t(2));
    assert_eq!(
        world.conditions(),
        ["Created=True/TFJobCreated", "Running=True/TFJobRunning"]
    );
    assert_eq!(
        world.replica_statuses()["Worker"],
        json!({"active": 1, "succeeded": 1, "completedIndexes": "0"})
    );
    world.exit("mnist-worker-1", 0);
    let plan = world.step(t(3));
    assert_eq!(plan.counters, [JobCounter::Succeeded]);
}

#[test]
fn a_failed_pod_under_never_fails_the_job() {
    let mut world = World::new(&mnist("", "Never"));
    world.step(t(0));
    for pod in world.pod_names() {
        world.run(&pod);
    }
    world.step(t(1));
    world.exit("mnist-worker-1", 3);
    let plan = world.step(t(2));
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
            "Normal TFJobFailed: TFJob ns/mnist has failed because 1 Worker replica(s) failed: mnist-worker-1 exited with 3 (Error).",
            "Normal ExitedWithCode: Pod: ns.mnist-worker-1 exited with code 3",
        ]
    );
    assert_eq!(plan.counters, [JobCounter::Failed]);
    assert_eq!(
        world
            .job
            .status
            .as_ref()
            .unwrap()
            .completion_time
            .as_ref()
            .unwrap()
            .0,
        t(2)
    );
    assert!(plan.delete_pods.is_empty() && plan.create_pods.is_empty());
    // Failed is terminal: a later success changes nothing.
    world.exit("mnist-worker-0", 0);
    assert!(world.step(t(3)).is_noop());
}

#[test]
fn a_ps_failure_under_never_fails_the_job_too() {
    let mut world = World::new(&mnist("", "Never"));
    world.step(t(0));
    world.exit("mnist-ps-0", 1);
    let plan = world.step(t(1));
    assert_eq!(
        events(&plan)[0],
        "Normal TFJobFailed: TFJob ns/mnist has failed because 1 PS replica(s) failed: mnist-ps-0 exited with 1 (Error)."
    );
}

#[test]
fn a_running_pod_deleted_under_never_fails_the_job_as_upstream() {
    let mut world = World::new(&mnist("", "Never"));
    world.step(t(0));
    world.run("mnist-worker-1");
    world.start_deleting("mnist-worker-1", t(1));
    let plan = world.step(t(1));
    assert_eq!(
        events(&plan),
        ["Normal TFJobFailed: TFJob ns/mnist has failed because 1 Worker replica(s) failed."]
    );
}

#[test]
fn a_succeeded_index_is_not_run_again() {
    let mut world = World::new(&mnist("  successPolicy: AllWorkers", "Never"));
    world.step(t(0));
    world.exit("mnist-worker-1", 0);
    world.step(t(1));
    assert_eq!(
        world.replica_statuses()["Worker"],
        json!({"succeeded": 1, "completedIndexes": "1"})
    );
    world.remove_pod("mnist-worker-1"); // garbage-collected by the cluster
    let plan = world.step(t(2));
    assert!(plan.create_pods.is_empty(), "worker 1 already succeeded");
    assert_eq!(
        world.replica_statuses()["Worker"],
        json!({"succeeded": 1, "completedIndexes": "1"})
    );
    world.exit("mnist-worker-0", 0);
    let plan = world.step(t(3));
    assert_eq!(plan.counters, [JobCounter::Succeeded]);
}

#[test]
fn restarting_masks_failures_of_other_types() {
    let mut world = World::new(&chief_job(""));
    world.step(t(0));
    for pod in world.pod_names() {
        world.run(&pod);
    }
    world.step(t(1));
    world.set("cj-worker-0", "Failed", Some(1), 0);
    world.exit("cj-ps-0", 1); // Never: would fail the job, but a restart is in progress
    world.step(t(2));
    assert_eq!(
        world.conditions(),
        [
            "Created=True/TFJobCreated",
            "Restarting=True/TFJobRestarting"
        ]
    );
}

#[test]
fn worker_failures_are_ignored_with_dynamic_workers() {
    let mut world = World::new(&mnist("  enableDynamicWorker: true", "Never"));
    world.step(t(0));
    assert!(
        tf_config_of(&world, "mnist-worker-1")
            .unwrap()
            .starts_with(r#"{"cluster":{"worker":{"1":"#)
    );
    world.run("mnist-worker-0");
    world.exit("mnist-worker-1", 1);
    world.step(t(1));
    assert_eq!(
        world.conditions(),
        ["Created=True/TFJobCreated", "Running=True/TFJobRunning"]
    );
}
