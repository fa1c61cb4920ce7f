//! Scenario tests of `plan`: each walks a job through passes on an in-memory world and checks
//! the exact conditions, events, counters, children and timers.

use std::time::Duration;

use serde_json::json;

use super::planner::JobCounter;
use super::{ChildRef, ServiceMode};
use crate::test_fixtures::{EXAMPLES, World, events, t};

const SEED: &str = EXAMPLES[0].1;

/// PS×1 + Worker×2, all `Never`.
fn mnist(extra_spec: &str, worker_policy: &str) -> String {
    format!(
        r#"
metadata: {{name: mnist}}
spec:
{extra_spec}
  tfReplicaSpecs:
    PS:
      template: {{spec: {{containers: [{{name: tensorflow, image: tf}}]}}}}
    Worker:
      replicas: 2
      restartPolicy: {worker_policy}
      template: {{spec: {{containers: [{{name: tensorflow, image: tf}}]}}}}
"#
    )
}

fn chief_job(extra_spec: &str) -> String {
    format!(
        r#"
metadata: {{name: cj}}
spec:
{extra_spec}
  tfReplicaSpecs:
    Chief:
      template: {{spec: {{containers: [{{name: tensorflow, image: tf}}]}}}}
    Worker:
      replicas: 2
      restartPolicy: OnFailure
      template: {{spec: {{containers: [{{name: tensorflow, image: tf}}]}}}}
    PS:
      template: {{spec: {{containers: [{{name: tensorflow, image: tf}}]}}}}
"#
    )
}

fn tf_config_of(world: &World, pod: &str) -> Option<String> {
    let pod = world
        .pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(pod))
        .unwrap();
    let container = pod
        .spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .find(|c| c.name == "tensorflow")
        .unwrap();
    container
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == "TF_CONFIG")
        .and_then(|e| e.value.clone())
}

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
            "Normal TFJobFailed: TFJob ns/mnist has failed because 1 Worker replica(s) failed.",
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
        "Normal TFJobFailed: TFJob ns/mnist has failed because 1 PS replica(s) failed."
    );
}

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
            "Warning TFJobRestarting: job mnist is restarting because Worker replica(s) failed.",
        ]
    );
    assert_eq!(plan.counters, [JobCounter::Restarted]);
    assert_eq!(
        world.replica_statuses()["Worker"],
        json!({"active": 1, "failed": 1, "restarts": 3, "restartedPods": ["uid-3"]})
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
        json!({"active": 1, "restarts": 3})
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
        json!({"active": 1, "restarts": 1})
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
            r#"Warning TFJobFailed: job "mnist" is failing because "Worker" replica(s) failed."#,
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

fn finish_with_policy(policy: &str) -> (World, super::Plan) {
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
fn per_job_service_mode_creates_one_service() {
    let mut world = World::new(&mnist("", "Never"));
    world.config.service_mode = ServiceMode::PerJob;
    let plan = world.step(t(0));
    assert_eq!(plan.create_pods.len(), 3);
    assert_eq!(world.service_names(), ["mnist"]);
    assert!(world.step(t(1)).is_noop());
}

#[test]
fn missing_services_are_recreated() {
    let mut world = World::new(&mnist("", "Never"));
    world.step(t(0));
    world
        .services
        .retain(|s| s.metadata.name.as_deref() != Some("mnist-worker-1"));
    let plan = world.step(t(1));
    assert_eq!(plan.create_services.len(), 1);
    assert_eq!(
        plan.create_services[0].metadata.name.as_deref(),
        Some("mnist-worker-1")
    );
}

mod gang {
    use super::*;
    use crate::api::podgroup::GangScheduler;
    use crate::plan::PodGroupAction;

    fn gang_job(extra_spec: &str) -> String {
        format!(
            r#"
metadata: {{name: g, annotations: {{team: ml}}}}
spec:
{extra_spec}
  tfReplicaSpecs:
    PS:
      template: {{spec: {{containers: [{{name: tensorflow, image: tf, resources: {{requests: {{cpu: "1"}}}}}}]}}}}
    Worker:
      replicas: 2
      template: {{spec: {{containers: [{{name: tensorflow, image: tf, resources: {{requests: {{cpu: "2", memory: 1Gi}}}}}}]}}}}
"#
        )
    }

    fn created_spec(plan: &super::super::Plan) -> serde_json::Value {
        match &plan.pod_group {
            Some(PodGroupAction::Create(object)) => object.clone(),
            other => panic!("expected a PodGroup creation, got {other:?}"),
        }
    }

    #[test]
    fn volcano_holds_pods_until_the_pod_group_is_admitted() {
        let mut world = World::new(&gang_job(
            "  runPolicy: {schedulingPolicy: {priorityClass: high}}",
        ));
        world.config.gang = Some(GangScheduler::Volcano);
        let plan = world.step(t(0));
        let object = created_spec(&plan);
        assert_eq!(object["apiVersion"], "scheduling.volcano.sh/v1beta1");
        assert_eq!(object["metadata"]["name"], "g");
        assert_eq!(
            object["metadata"]["annotations"],
            json!({"team": "ml"}),
            "the job's annotations are copied"
        );
        assert_eq!(object["metadata"]["ownerReferences"][0]["kind"], "TFJob");
        assert_eq!(
            object["spec"],
            json!({"minMember": 3, "minResources": {"cpu": "5", "memory": "2Gi"}, "queue": "default", "priorityClassName": "high"})
        );
        assert!(
            plan.create_pods.is_empty() && plan.create_services.is_empty(),
            "pods wait for admission"
        );
        assert_eq!(
            world
                .job
                .status
                .as_ref()
                .unwrap()
                .last_reconcile_time
                .as_ref()
                .unwrap()
                .0,
            t(0)
        );
        assert!(
            world.step(t(1)).is_noop(),
            "no update, no status churn while waiting"
        );

        world.pod_group.as_mut().unwrap().phase = Some("Inqueue".into());
        let plan = world.step(t(2));
        assert_eq!(plan.create_pods.len(), 3);
        let pod = &plan.create_pods[1];
        assert_eq!(
            pod.spec.as_ref().unwrap().scheduler_name.as_deref(),
            Some("volcano")
        );
        let annotations = pod.metadata.annotations.clone().unwrap();
        assert_eq!(annotations["scheduling.k8s.io/group-name"], "g");
        assert_eq!(annotations["volcano.sh/task-spec"], "worker");
        assert_eq!(plan.pod_group, None, "the spec has not changed: no write");

        world
            .job
            .spec
            .tf_replica_specs
            .get_mut("Worker")
            .unwrap()
            .replicas = Some(3);
        let plan = world.step(t(3));
        assert_eq!(
            plan.pod_group,
            Some(PodGroupAction::Update(
                json!({"minMember": 4, "minResources": {"cpu": "7", "memory": "3Gi"}, "queue": "default", "priorityClassName": "high"})
            ))
        );
    }

    #[test]
    fn an_existing_volcano_queue_wins() {
        let mut world = World::new(&gang_job("  runPolicy: {schedulingPolicy: {queue: mine}}"));
        world.config.gang = Some(GangScheduler::Volcano);
        world.step(t(0));
        let pg = world.pod_group.as_mut().unwrap();
        pg.spec["queue"] = json!("assigned-by-admission");
        pg.phase = Some("Running".into());
        let plan = world.step(t(1));
        assert_eq!(plan.pod_group, None);
        assert_eq!(plan.create_pods.len(), 3);
    }

    #[test]
    fn scheduler_plugins_do_not_hold_pods() {
        let mut world = World::new(&gang_job(
            "  runPolicy: {schedulingPolicy: {minAvailable: 2, scheduleTimeoutSeconds: 60}}",
        ));
        world.config.gang = Some(GangScheduler::SchedulerPlugins("coscheduler".into()));
        let plan = world.step(t(0));
        let object = created_spec(&plan);
        assert_eq!(object["apiVersion"], "scheduling.x-k8s.io/v1alpha1");
        assert_eq!(
            object["spec"],
            json!({"minMember": 2, "minResources": {"cpu": "3", "memory": "1Gi"}, "scheduleTimeoutSeconds": 60})
        );
        assert_eq!(plan.create_pods.len(), 3);
        let pod = &plan.create_pods[0];
        assert_eq!(
            pod.spec.as_ref().unwrap().scheduler_name.as_deref(),
            Some("coscheduler")
        );
        assert_eq!(
            pod.metadata.labels.as_ref().unwrap()["scheduling.x-k8s.io/pod-group"],
            "g"
        );
    }

    #[test]
    fn a_foreign_scheduler_name_is_kept_with_a_warning() {
        let yaml = gang_job("").replace(
            "containers: [{name: tensorflow, image: tf, resources: {requests: {cpu: \"1\"}}}]",
            "schedulerName: other, containers: [{name: tensorflow, image: tf}]",
        );
        let mut world = World::new(&yaml);
        world.config.gang = Some(GangScheduler::SchedulerPlugins("coscheduler".into()));
        let plan = world.step(t(0));
        let ps = plan
            .create_pods
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some("g-ps-0"))
            .unwrap();
        assert_eq!(
            ps.spec.as_ref().unwrap().scheduler_name.as_deref(),
            Some("other")
        );
        assert!(events(&plan).contains(
            &"Warning SetPodTemplateSchedulerName: Another scheduler is specified when gang-scheduling is enabled and it will not be overwritten".to_string()
        ));
    }

    #[test]
    fn the_pod_group_is_deleted_once_on_success_and_on_suspend() {
        let mut world = World::new(&gang_job(""));
        world.config.gang = Some(GangScheduler::SchedulerPlugins("coscheduler".into()));
        world.step(t(0));
        world.exit("g-worker-0", 0);
        let plan = world.step(t(1));
        assert!(matches!(plan.pod_group, Some(PodGroupAction::Delete(_))));
        assert!(events(&plan).contains(
            &"Normal JobTerminated: Job has been terminated. Deleting PodGroup".to_string()
        ));
        assert!(world.step(t(2)).is_noop(), "no event spam once it is gone");

        let mut world = World::new(&gang_job(""));
        world.config.gang = Some(GangScheduler::Volcano);
        world.step(t(0));
        world.job.spec.run_policy = Some(crate::api::RunPolicy {
            suspend: Some(true),
            ..Default::default()
        });
        let plan = world.step(t(1));
        assert!(matches!(plan.pod_group, Some(PodGroupAction::Delete(_))));
        world.job.spec.run_policy = Some(crate::api::RunPolicy {
            suspend: Some(false),
            ..Default::default()
        });
        let plan = world.step(t(2));
        assert!(
            matches!(plan.pod_group, Some(PodGroupAction::Create(_))),
            "re-created on resume"
        );
        assert!(
            plan.create_pods.is_empty(),
            "and pods wait for admission again"
        );
    }
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
        [super::PodWarning {
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
