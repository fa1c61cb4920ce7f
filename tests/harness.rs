//! The test harness itself, on the real local control plane: CRD installation, namespace
//! isolation, garbage collection, test identities and the audit log.

use test_support as support;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, PodSpec};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Resource, ResourceExt};
use support::*;

const TFJOB: &str = r#"
apiVersion: kubeflow.org/v1
kind: TFJob
metadata:
  name: mnist
spec:
  tfReplicaSpecs:
    Worker:
      replicas: 2
      restartPolicy: OnFailure
      template:
        spec:
          containers:
            - name: tensorflow
              image: tensorflow/tensorflow:2.15.0
"#;

fn tfjob_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubeflow.org", "v1", "TFJob"),
        "tfjobs",
    )
}

fn config_map(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
        ..ConfigMap::default()
    }
}

fn pod(name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".into(),
                image: Some("busybox:1.36".into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

#[tokio::test]
async fn tfjob_crd_is_established_and_tfjobs_can_be_created_and_listed() {
    let ctx = TestContext::new("crd-install").await;
    let crd = Api::<CustomResourceDefinition>::all(ctx.client.clone())
        .get("tfjobs.kubeflow.org")
        .await
        .expect("the TFJob CRD is installed");
    let established = crd
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .any(|c| c.type_ == "Established" && c.status == "True");
    assert!(established, "the TFJob CRD is Established");

    let created = ctx.apply_yaml(TFJOB).await;
    assert_eq!(created.namespace().as_deref(), Some(ctx.namespace.as_str()));

    let tfjobs: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &ctx.namespace, &tfjob_resource());
    let names: Vec<String> = tfjobs
        .list(&ListParams::default())
        .await
        .expect("listing TFJobs works")
        .into_iter()
        .map(|j| j.name_any())
        .collect();
    assert_eq!(names, vec!["mnist".to_string()]);
    let job = tfjobs
        .get("mnist")
        .await
        .expect("the TFJob can be read back");
    assert_eq!(job.data["spec"]["tfReplicaSpecs"]["Worker"]["replicas"], 2);
    ctx.teardown().await;
}

#[tokio::test]
async fn objects_in_one_test_namespace_are_invisible_from_another() {
    let a = TestContext::new("isolation-a").await;
    let b = TestContext::new("isolation-b").await;
    assert_ne!(a.namespace, b.namespace);

    a.apply(&config_map("only-in-a")).await;
    let in_a: Vec<String> = a
        .api::<ConfigMap>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name_any())
        .collect();
    let in_b: Vec<String> = b
        .api::<ConfigMap>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name_any())
        .collect();
    assert!(in_a.contains(&"only-in-a".to_string()), "{in_a:?}");
    assert!(!in_b.contains(&"only-in-a".to_string()), "{in_b:?}");
    assert!(
        b.api::<ConfigMap>()
            .get_opt("only-in-a")
            .await
            .unwrap()
            .is_none()
    );
    a.teardown().await;
    b.teardown().await;
}

#[tokio::test]
async fn garbage_collector_deletes_a_pod_whose_owner_is_deleted() {
    let ctx = TestContext::new("gc").await;
    let owner = ctx.apply(&config_map("owner")).await;
    let mut child = pod("owned-pod");
    child.metadata.owner_references = Some(vec![OwnerReference {
        api_version: ConfigMap::api_version(&()).into(),
        kind: ConfigMap::kind(&()).into(),
        name: owner.name_any(),
        uid: owner.uid().expect("created objects have a uid"),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    let pods: Api<Pod> = ctx.api();
    pods.create(&PostParams::default(), &child).await.unwrap();

    ctx.api::<ConfigMap>()
        .delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    await_deleted(&pods, "owned-pod", secs(30)).await;
    ctx.teardown().await;
}

#[tokio::test]
async fn extra_tokens_authenticate_as_a_service_account_under_rbac() {
    let ctx = TestContext::new("identity").await;
    let cp = control_plane();
    let token = cp
        .operator_token()
        .expect("the harness registers an operator token");
    let as_operator = cp.client_with_token(&token).await;
    let err = Api::<Pod>::namespaced(as_operator, &ctx.namespace)
        .list(&ListParams::default())
        .await
        .expect_err("RBAC grants the service account nothing yet");
    match err {
        kube::Error::Api(s) => {
            assert!(s.is_forbidden(), "{s:?}");
            assert!(
                s.message
                    .contains("system:serviceaccount:tfjob-system:tfjob-operator"),
                "{}",
                s.message
            );
        }
        other => panic!("expected 403 Forbidden, got {other}"),
    }
    ctx.teardown().await;
}

#[tokio::test]
async fn audit_log_records_pod_creation() {
    let ctx = TestContext::new("audit").await;
    ctx.api::<Pod>()
        .create(&PostParams::default(), &pod("audited"))
        .await
        .unwrap();
    let log = control_plane().audit_log();
    let needle = format!("/api/v1/namespaces/{}/pods", ctx.namespace);
    wait_for(secs(10), "the pod create in the audit log", || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines().any(|l| {
            l.contains(&needle)
                && l.contains("\"verb\":\"create\"")
                && l.contains("\"name\":\"audited\"")
        })
    })
    .await;
    ctx.teardown().await;
}

#[tokio::test]
#[should_panic(expected = "waiting for the impossible; last seen: still 42")]
async fn wait_for_names_what_it_waited_for_and_the_last_state() {
    wait_for(
        std::time::Duration::from_millis(250),
        "the impossible",
        || async { Err::<(), _>("still 42") },
    )
    .await;
}
