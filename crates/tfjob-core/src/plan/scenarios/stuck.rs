//! Pods stuck Terminating: named past the grace; force-deleted on a lost node when allowed.

use super::*;

/// mnist with every pod running on node-a and worker-1 deleted at `t(10)` (due then).
fn running_with_worker_1_deleting(extra_spec: &str, worker_policy: &str) -> World {
    let mut world = World::new(&mnist(extra_spec, worker_policy));
    world.step(t(0));
    for pod in world.pod_names() {
        world.run(&pod);
        world.pod_mut(&pod).spec.as_mut().unwrap().node_name = Some("node-a".into());
    }
    world.step(t(1));
    world.start_deleting("mnist-worker-1", t(10));
    world
}

#[test]
fn a_pod_stuck_terminating_is_named_once_past_the_grace() {
    let mut world = running_with_worker_1_deleting("", "OnFailure");
    let within = world.step(t(10 + 300));
    assert!(within.pod_warnings.is_empty() && within.force_delete_pods.is_empty());

    let past = world.step(t(10 + 301));
    let stuck = "pod mnist-worker-1 is stuck terminating on node node-a (its deletion was due \
                 at 2027-01-15T08:00:10Z); its replica waits for it";
    assert_eq!(past.pod_warnings.len(), 1);
    assert_eq!(past.pod_warnings[0].reason, "PodStuckTerminating");
    assert_eq!(
        past.pod_warnings[0].message,
        format!("Pod ns/{}", stuck.trim_start_matches("pod "))
    );
    assert!(
        past.force_delete_pods.is_empty(),
        "force deletion is opt-in"
    );
    assert!(
        world.last_message().ends_with(&format!("{stuck}.")),
        "{}",
        world.last_message()
    );
    // The node being lost changes nothing without the flag.
    world.lost_nodes = vec!["node-a".into()];
    assert!(world.step(t(10 + 400)).force_delete_pods.is_empty());
    // Gone: the note goes with it.
    world.remove_pod("mnist-worker-1");
    world.step(t(10 + 401));
    assert!(
        !world.last_message().contains("stuck"),
        "{}",
        world.last_message()
    );
}

#[test]
fn with_force_deletion_a_stuck_pod_on_a_lost_node_is_replaced_as_a_counted_restart() {
    let mut world = running_with_worker_1_deleting("", "OnFailure");
    world.config.force_delete_stuck = true;
    // Its node is fine: only named.
    assert!(world.step(t(10 + 301)).force_delete_pods.is_empty());

    world.lost_nodes = vec!["node-a".into()];
    let plan = world.step(t(10 + 302));
    assert_eq!(
        plan.force_delete_pods,
        [ChildRef {
            name: "mnist-worker-1".into(),
            uid: Some("uid-3".into())
        }]
    );
    assert_eq!(plan.counters, [JobCounter::Restarted]);
    assert_eq!(world.replica_statuses()["Worker"]["restarts"], 1);
    assert_eq!(
        world.replica_statuses()["Worker"]["restartedPods"],
        json!(["uid-3"])
    );
    // Until it is gone it is force-deleted again, never counted twice.
    let again = world.step(t(10 + 303));
    assert_eq!(again.force_delete_pods.len(), 1);
    assert!(again.counters.is_empty());
    assert_eq!(world.replica_statuses()["Worker"]["restarts"], 1);
    // Gone: the replica is created again.
    world.remove_pod("mnist-worker-1");
    let replaced = world.step(t(10 + 304));
    assert_eq!(replaced.create_pods.len(), 1);
    assert_eq!(
        replaced.create_pods[0].metadata.name.as_deref(),
        Some("mnist-worker-1")
    );
}

#[test]
fn a_forced_restart_over_the_backoff_limit_fails_the_job() {
    let mut world = running_with_worker_1_deleting("  backoffLimit: 0", "OnFailure");
    world.config.force_delete_stuck = true;
    world.lost_nodes = vec!["node-a".into()];
    let plan = world.step(t(10 + 301));
    assert!(plan.force_delete_pods.is_empty());
    assert_eq!(
        world.conditions().last().unwrap(),
        "Failed=True/TFJobFailed"
    );
}
