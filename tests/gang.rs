//! Gang scheduling on the real control plane, with minimal PodGroup CRDs installed by the test
//! (generated from the operator's own PodGroup types).

use test_support as support;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{CustomResourceExt, ResourceExt};
use serde_json::json;
use tokio::sync::OnceCell;

use support::operator::{Operator, await_condition, job_events, sim_kubelet, submit};
use support::*;
use tfjob_core::api::TFJob;
use tfjob_core::api::podgroup::{GangScheduler, scheduler_plugins, volcano};

async fn install_pod_group_crds() {
    static DONE: OnceCell<()> = OnceCell::const_new();
    DONE.get_or_init(|| async {
        let client = client().await;
        install_crd(&client, &volcano::PodGroup::crd()).await;
        install_crd(&client, &scheduler_plugins::PodGroup::crd()).await;
        // A PriorityClass that orders replica types for minResources.
        let classes: Api<PriorityClass> = Api::all(client);
        let high = PriorityClass {
            metadata: ObjectMeta {
                name: Some("tfjob-test-high".into()),
                ..Default::default()
            },
            value: 1000,
            ..Default::default()
        };
        let _ = classes.create(&PostParams::default(), &high).await;
    })
    .await;
}

async fn gang_operator(ctx: &TestContext, gang: GangScheduler) -> Operator {
    install_pod_group_crds().await;
    Operator::start_with(ctx, |settings| settings.plan.gang = Some(gang)).await
}

const FOREVER: &str =
    "sim.tfjob-operator.dev/pending-ms: '0', sim.tfjob-operator.dev/run-forever: 'true'";
const FAST: &str = "sim.tfjob-operator.dev/pending-ms: '0', sim.tfjob-operator.dev/run-ms: '300'";

fn job(name: &str, run_policy: &str, annotations: &str) -> String {
    format!(
        r#"
apiVersion: kubeflow.org/v1
kind: TFJob
metadata: {{name: {name}, annotations: {{team: ml}}}}
spec:
  runPolicy: {run_policy}
  tfReplicaSpecs:
    PS:
      template:
        metadata: {{annotations: {{{annotations}}}}}
        spec:
          containers: [{{name: tensorflow, image: tf, resources: {{requests: {{cpu: "1", memory: 1Gi}}}}}}]
    Worker:
      replicas: 2
      template:
        metadata: {{annotations: {{{annotations}}}}}
        spec:
          priorityClassName: tfjob-test-high
          containers: [{{name: tensorflow, image: tf, resources: {{requests: {{cpu: "2", memory: 4Gi, nvidia.com/gpu: "1"}}, limits: {{nvidia.com/gpu: "1"}}}}}}]
"#
    )
}

async fn pod_group_spec(ctx: &TestContext, name: &str) -> serde_json::Value {
    let api: Api<volcano::PodGroup> = ctx.api();
    let pg = wait_for(secs(20), &format!("PodGroup {name}"), || async {
        api.get_opt(name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "not created".to_string())
    })
    .await;
    serde_json::to_value(&pg.spec).unwrap()
}

async fn pods(ctx: &TestContext) -> Vec<Pod> {
    ctx.api::<Pod>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volcano_pod_group_holds_pods_until_inqueue() {
    let ctx = TestContext::new("volcano").await;
    let _operator = gang_operator(&ctx, GangScheduler::Volcano).await;
    let _kubelet = sim_kubelet(&ctx);
    submit(
        &ctx,
        &job(
            "vj",
            "{schedulingPolicy: {queue: research, priorityClass: tfjob-test-high}}",
            FOREVER,
        ),
    )
    .await;

    // Workers first (higher priority): minResources covers all 3 pods here.
    let spec = pod_group_spec(&ctx, "vj").await;
    assert_eq!(
        spec,
        json!({"minMember": 3, "queue": "research", "priorityClassName": "tfjob-test-high",
               "minResources": {"cpu": "5", "memory": "9Gi", "nvidia.com/gpu": "2"}})
    );
    let pg: volcano::PodGroup = ctx.api::<volcano::PodGroup>().get("vj").await.unwrap();
    assert_eq!(pg.annotations().get("team").map(String::as_str), Some("ml"));
    assert_eq!(pg.owner_references()[0].kind, "TFJob");

    // Not admitted: no pods, lastReconcileTime set.
    let job_api: Api<TFJob> = ctx.api();
    wait_for(secs(10), "lastReconcileTime", || async {
        let job = job_api.get("vj").await.map_err(|e| e.to_string())?;
        job.status
            .and_then(|s| s.last_reconcile_time)
            .ok_or_else(|| "unset".to_string())
    })
    .await;
    tokio::time::sleep(secs(1)).await;
    assert!(
        pods(&ctx).await.is_empty(),
        "pods are held until the PodGroup is admitted"
    );

    let groups: Api<volcano::PodGroup> = ctx.api();
    groups
        .patch_status(
            "vj",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Inqueue"}})),
        )
        .await
        .unwrap();
    let created = wait_for(secs(20), "pods after admission", || async {
        let pods = pods(&ctx).await;
        if pods.len() == 3 {
            Ok(pods)
        } else {
            Err(format!("{} pods", pods.len()))
        }
    })
    .await;
    for pod in &created {
        assert_eq!(
            pod.spec.as_ref().unwrap().scheduler_name.as_deref(),
            Some("volcano")
        );
        let annotations = pod.annotations();
        assert_eq!(annotations["scheduling.k8s.io/group-name"], "vj");
        let task = &pod.labels()["training.kubeflow.org/replica-type"];
        assert_eq!(&annotations["volcano.sh/task-spec"], task);
    }
    await_condition(&ctx, "vj", "Running", secs(20)).await;

    // Suspend removes the PodGroup; resume re-creates it and holds the pods again.
    job_api
        .patch(
            "vj",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"runPolicy": {"suspend": true}}})),
        )
        .await
        .unwrap();
    await_deleted(&groups, "vj", secs(20)).await;
    wait_for(secs(10), "the PodGroup deletion events", || async {
        let events = job_events(&ctx, "vj").await;
        let wanted = [
            "Normal JobTerminated: Job has been terminated. Deleting PodGroup",
            "Normal SuccessfulDeletePodGroup: Deleted PodGroup: vj",
        ];
        if wanted.iter().all(|w| events.iter().any(|e| e == w)) {
            Ok(())
        } else {
            Err(format!("{events:?}"))
        }
    })
    .await;
    wait_for(secs(20), "pods deleted on suspend", || async {
        let n = pods(&ctx).await.len();
        if n == 0 {
            Ok(())
        } else {
            Err(format!("{n} pods"))
        }
    })
    .await;
    job_api
        .patch(
            "vj",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"runPolicy": {"suspend": false}}})),
        )
        .await
        .unwrap();
    pod_group_spec(&ctx, "vj").await;
    tokio::time::sleep(secs(1)).await;
    assert!(
        pods(&ctx).await.is_empty(),
        "held again until the new PodGroup is admitted"
    );
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volcano_pod_group_is_removed_on_success_and_defaults_apply() {
    let ctx = TestContext::new("volcano-success").await;
    let _operator = gang_operator(&ctx, GangScheduler::Volcano).await;
    let _kubelet = sim_kubelet(&ctx);
    submit(
        &ctx,
        &job("vs", "{schedulingPolicy: {minAvailable: 1}}", FAST),
    )
    .await;
    // minAvailable 1: only the first (highest-priority) pod's requests count; queue defaults.
    let spec = pod_group_spec(&ctx, "vs").await;
    assert_eq!(
        spec,
        json!({"minMember": 1, "queue": "default", "minResources": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}})
    );
    let groups: Api<volcano::PodGroup> = ctx.api();
    groups
        .patch_status(
            "vs",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running"}})),
        )
        .await
        .unwrap();
    await_condition(&ctx, "vs", "Succeeded", secs(30)).await;
    await_deleted(&groups, "vs", secs(20)).await;
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_plugins_pod_group_does_not_hold_pods() {
    let ctx = TestContext::new("coscheduling").await;
    let _operator = gang_operator(
        &ctx,
        GangScheduler::SchedulerPlugins("scheduler-plugins-scheduler".into()),
    )
    .await;
    submit(
        &ctx,
        &job(
            "sp",
            "{schedulingPolicy: {scheduleTimeoutSeconds: 120}}",
            FOREVER,
        ),
    )
    .await;
    let api: Api<scheduler_plugins::PodGroup> = ctx.api();
    let pg = wait_for(secs(20), "PodGroup sp", || async {
        api.get_opt("sp")
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "not created".to_string())
    })
    .await;
    assert_eq!(
        serde_json::to_value(&pg.spec).unwrap(),
        json!({"minMember": 3, "scheduleTimeoutSeconds": 120, "minResources": {"cpu": "5", "memory": "9Gi", "nvidia.com/gpu": "2"}})
    );
    let created = wait_for(secs(20), "pods without admission", || async {
        let pods = pods(&ctx).await;
        if pods.len() == 3 {
            Ok(pods)
        } else {
            Err(format!("{} pods", pods.len()))
        }
    })
    .await;
    for pod in &created {
        assert_eq!(
            pod.spec.as_ref().unwrap().scheduler_name.as_deref(),
            Some("scheduler-plugins-scheduler")
        );
        assert_eq!(pod.labels()["scheduling.x-k8s.io/pod-group"], "sp");
    }
    // The PodGroup is written once: its resourceVersion does not move while the job runs.
    let before = api.get("sp").await.unwrap().resource_version();
    tokio::time::sleep(secs(2)).await;
    assert_eq!(
        api.get("sp").await.unwrap().resource_version(),
        before,
        "no update when nothing changed"
    );
    ctx.teardown().await;
}
