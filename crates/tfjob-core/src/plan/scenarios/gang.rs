//! Gang scheduling: PodGroups, admission, schedulers, deletion.

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

fn created_spec(plan: &crate::plan::Plan) -> serde_json::Value {
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
    assert!(
        events(&plan).contains(
            &"Normal JobTerminated: Job has been terminated. Deleting PodGroup".to_string()
        )
    );
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
