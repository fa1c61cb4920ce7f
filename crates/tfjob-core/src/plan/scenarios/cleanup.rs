//! `cleanPodPolicy` and `ttlSecondsAfterFinished` on finished jobs.

use super::*;

#[test]
fn ttl_deletes_the_job_by_timer() {
    let mut world = World::new(&mnist(
        "  runPolicy: {ttlSecondsAfterFinished: 30}",
        "Never",
    ));
    world.step(t(0));
    world.exit("mnist-worker-0", 0);
    let plan = world.step(t(10));
    assert_eq!(plan.counters, [JobCounter::Succeeded]);
    assert_eq!(plan.requeue_after, Some(Duration::from_millis(30_100)));
    assert!(!plan.delete_job);
    let plan = world.step(t(25));
    assert_eq!(plan.requeue_after, Some(Duration::from_millis(15_100)));
    let plan = world.step(t(40));
    assert!(plan.delete_job);
}

#[test]
fn ttl_also_expires_finished_jobs_that_are_suspended() {
    let mut world = World::new(&mnist(
        "  runPolicy: {ttlSecondsAfterFinished: 10}",
        "Never",
    ));
    world.step(t(0));
    world.exit("mnist-worker-0", 0);
    world.step(t(1));
    world.job.spec.run_policy.as_mut().unwrap().suspend = Some(true);
    assert_eq!(
        world.step(t(5)).requeue_after,
        Some(Duration::from_millis(6_100))
    );
    assert!(
        world.step(t(11)).delete_job,
        "upstream skipped TTL for suspended jobs and requeued forever"
    );
}

fn finish_with_policy(policy: &str) -> (World, crate::plan::Plan) {
    let mut world = World::new(&mnist(
        &format!("  runPolicy: {{cleanPodPolicy: {policy}}}"),
        "Never",
    ));
    world.step(t(0));
    world.run("mnist-ps-0");
    world.run("mnist-worker-1");
    world.exit("mnist-worker-0", 0);
    let plan = world.step(t(1));
    (world, plan)
}

#[test]
fn clean_pod_policy_none_keeps_everything() {
    let (world, plan) = finish_with_policy("None");
    assert!(plan.delete_pods.is_empty() && plan.delete_services.is_empty());
    assert_eq!(world.pod_names().len(), 3);
}

#[test]
fn clean_pod_policy_running_deletes_running_pods_and_their_services() {
    let (world, plan) = finish_with_policy("Running");
    let deleted: Vec<&str> = plan.delete_pods.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(deleted, ["mnist-ps-0", "mnist-worker-1"]);
    assert_eq!(world.pod_names(), ["mnist-worker-0"]);
    assert_eq!(world.service_names(), ["mnist-worker-0"]);
}

#[test]
fn clean_pod_policy_all_deletes_every_pod_and_service() {
    let (mut world, plan) = finish_with_policy("All");
    assert_eq!(plan.delete_pods.len(), 3);
    assert!(world.pod_names().is_empty() && world.service_names().is_empty());
    assert!(world.step(t(2)).is_noop(), "clean-up is idempotent");
}
