//! Suspend and resume.

use super::*;

#[test]
fn suspend_deletes_pods_and_resume_recreates_them() {
    let mut world = World::new(&mnist("  runPolicy: {activeDeadlineSeconds: 100}", "Never"));
    world.step(t(0));
    for pod in world.pod_names() {
        world.run(&pod);
    }
    world.step(t(1));
    world.job.spec.run_policy.as_mut().unwrap().suspend = Some(true);
    let plan = world.step(t(2));
    assert!(world.pod_names().is_empty() && world.service_names().is_empty());
    assert_eq!(
        world.conditions(),
        [
            "Created=True/TFJobCreated",
            "Running=False/TFJobSuspended",
            "Suspended=True/TFJobSuspended"
        ]
    );
    assert_eq!(
        events(&plan),
        ["Normal TFJobSuspended: TFJob mnist is suspended."]
    );
    assert_eq!(world.replica_statuses(), json!({"PS": {}, "Worker": {}}));
    assert_eq!(plan.requeue_after, None, "no deadline while suspended");
    assert!(
        world.step(t(500)).is_noop(),
        "suspended: no event spam, no deadline"
    );

    world.job.spec.run_policy.as_mut().unwrap().suspend = Some(false);
    let plan = world.step(t(600));
    assert_eq!(
        events(&plan),
        ["Normal TFJobResumed: TFJob mnist is resumed."]
    );
    assert_eq!(world.pod_names().len(), 3);
    assert_eq!(
        world
            .job
            .status
            .as_ref()
            .unwrap()
            .start_time
            .as_ref()
            .unwrap()
            .0,
        t(600),
        "deadline restarts"
    );
    assert_eq!(plan.requeue_after, Some(Duration::from_millis(100_100)));
    world.run("mnist-worker-0");
    world.step(t(601));
    assert_eq!(
        world.conditions(),
        [
            "Created=True/TFJobCreated",
            "Suspended=False/TFJobResumed",
            "Running=True/TFJobRunning"
        ]
    );
}

#[test]
fn a_job_created_suspended_has_no_pods_and_no_start_time() {
    let mut world = World::new(&mnist("  runPolicy: {suspend: true}", "Never"));
    world.step(t(0));
    assert!(world.pod_names().is_empty());
    assert_eq!(
        world.conditions(),
        ["Created=True/TFJobCreated", "Suspended=True/TFJobSuspended"]
    );
    assert_eq!(world.job.status.as_ref().unwrap().start_time, None);
}

/// After a preemption (Kueue suspends, then resumes), every replica runs again, including those
/// that had completed: a chief must not wait for peers that never start.
#[test]
fn resume_recreates_every_replica_even_completed_ones() {
    let mut world = World::new(&mnist("", "Never"));
    world.step(t(0));
    for pod in world.pod_names() {
        world.run(&pod);
    }
    world.step(t(1));
    world.exit("mnist-worker-1", 0);
    world.step(t(2));
    assert_eq!(
        world.replica_statuses()["Worker"]["completedIndexes"],
        json!("1")
    );
    world
        .job
        .spec
        .run_policy
        .get_or_insert_with(Default::default)
        .suspend = Some(true);
    world.step(t(3));
    assert!(world.pod_names().is_empty());
    assert_eq!(
        world.replica_statuses()["Worker"].get("completedIndexes"),
        None
    );

    world
        .job
        .spec
        .run_policy
        .get_or_insert_with(Default::default)
        .suspend = Some(false);
    let plan = world.step(t(4));
    let created: Vec<&str> = plan
        .create_pods
        .iter()
        .filter_map(|p| p.metadata.name.as_deref())
        .collect();
    assert_eq!(created, ["mnist-ps-0", "mnist-worker-0", "mnist-worker-1"]);
}
