//! Who owns a job's children: orphans are adopted (and then go with the job), and a child name
//! another controller's object holds is reported, not waited on in silence.

use super::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::PostParams;

/// The UID of the controller of `object`, if any.
fn controller_uid<K: kube::Resource>(object: &K) -> Option<String> {
    object
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.clone())
}

/// After `kubectl delete tfjob --cascade=orphan` and a re-create, the new job adopts the pod and
/// Service the old one left (same objects, not new ones), and deleting it garbage-collects them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_adopted_by_a_recreated_job_and_collected_with_it() {
    let ctx = TestContext::new("adopt").await;
    let operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    let yaml = job_yaml("adopt", "", &[("Worker", 1, "Never", FOREVER)]);
    let first = submit(&ctx, &yaml).await;
    await_condition(&ctx, "adopt", "Running", secs(30)).await;
    let pods: Api<Pod> = ctx.api();
    let services: Api<Service> = ctx.api();
    let pod = pods.get("adopt-worker-0").await.expect("the job's pod");
    assert_eq!(controller_uid(&pod), first.uid());

    // Orphan the children: the garbage collector removes the owner references.
    ctx.api::<TFJob>()
        .delete("adopt", &DeleteParams::orphan())
        .await
        .expect("delete with orphan propagation");
    await_deleted(&ctx.api::<TFJob>(), "adopt", secs(30)).await;
    wait_for(secs(60), "the pod and Service to be orphaned", || async {
        let pod = pods
            .get("adopt-worker-0")
            .await
            .map_err(|e| e.to_string())?;
        let service = services
            .get("adopt-worker-0")
            .await
            .map_err(|e| e.to_string())?;
        if pod.owner_references().is_empty() && service.owner_references().is_empty() {
            Ok(())
        } else {
            Err(format!("{:?}", pod.owner_references()))
        }
    })
    .await;

    // The same job again: it adopts them instead of creating new ones.
    let second = submit(&ctx, &yaml).await;
    let adopted = wait_for(secs(30), "the pod and Service to be adopted", || async {
        let pod = pods
            .get("adopt-worker-0")
            .await
            .map_err(|e| e.to_string())?;
        let service = services
            .get("adopt-worker-0")
            .await
            .map_err(|e| e.to_string())?;
        if controller_uid(&pod) == second.uid() && controller_uid(&service) == second.uid() {
            Ok(pod)
        } else {
            Err(format!("pod {:?}", pod.owner_references()))
        }
    })
    .await;
    assert_eq!(
        adopted.uid(),
        pod.uid(),
        "the same pod, adopted, not a new one"
    );
    let owner = &adopted.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.block_owner_deletion),
        ("TFJob", Some(true))
    );
    assert_eq!(
        operator
            .metrics
            .encode()
            .unwrap()
            .matches("tfjob_operator_pods_created_total 1")
            .count(),
        1,
        "one pod created in all (the first job's)"
    );

    // Collected with the job that adopted them.
    ctx.api::<TFJob>()
        .delete("adopt", &DeleteParams::default())
        .await
        .expect("delete the job");
    await_deleted(&pods, "adopt-worker-0", secs(60)).await;
    await_deleted(&services, "adopt-worker-0", secs(60)).await;
    operator.stop().await;
    ctx.teardown().await;
}

/// A pod of the job's name that another controller owns: a Warning event (once) and the
/// Created condition's message name it; once it is gone, the job creates its pod and the note
/// goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_name_held_by_another_controller_is_reported_then_freed() {
    let ctx = TestContext::new("taken").await;
    let operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    let holder: ConfigMap = ctx
        .api()
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "holder"}})).unwrap(),
        )
        .await
        .expect("the holder");
    let pods: Api<Pod> = ctx.api();
    let foreign: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": "taken-worker-0",
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "holder",
                                 "uid": holder.uid(), "controller": true}]
        },
        "spec": {"containers": [{"name": "main", "image": "busybox"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &foreign)
        .await
        .expect("the foreign pod");

    submit(
        &ctx,
        &job_yaml("taken", "", &[("Worker", 1, "Never", FOREVER)]),
    )
    .await;
    let note = "pod taken-worker-0 cannot be created: an object of that name exists, controlled \
                by ConfigMap holder; delete or rename it.";
    let expected_event = format!("Warning FailedCreatePod: {note}");
    await_events(
        &ctx,
        "taken",
        "the FailedCreatePod warning",
        |events: &[String]| events.contains(&expected_event),
    )
    .await;
    let jobs: Api<TFJob> = ctx.api();
    let blocked = wait_for(
        secs(30),
        "the Created condition to name the pod",
        || async {
            let job = jobs.get("taken").await.map_err(|e| e.to_string())?;
            let message = job
                .status
                .as_ref()
                .and_then(|s| s.conditions.last())
                .and_then(|c| c.message.clone())
                .unwrap_or_default();
            if message == format!("TFJob taken is created. Note: {note}") {
                Ok(job)
            } else {
                Err(message)
            }
        },
    )
    .await;
    assert_eq!(conditions(&blocked), ["Created=True/TFJobCreated"]);

    // Freed: the job creates its own pod and the note goes.
    pods.delete("taken-worker-0", &DeleteParams::default())
        .await
        .expect("delete the foreign pod");
    let running = await_condition(&ctx, "taken", "Running", secs(60)).await;
    let pod = pods.get("taken-worker-0").await.expect("the job's pod");
    assert_eq!(controller_uid(&pod), running.uid());
    let created = running
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Created")
        .and_then(|c| c.message.clone());
    assert!(
        !created.clone().unwrap_or_default().contains("Note:")
            || running
                .status
                .as_ref()
                .unwrap()
                .conditions
                .last()
                .map(|c| c.type_.as_str())
                == Some("Running"),
        "{created:?}"
    );
    let events = support::operator::job_events(&ctx, "taken").await;
    assert_eq!(
        events.iter().filter(|e| **e == expected_event).count(),
        1,
        "one Warning, not one per retry: {events:#?}"
    );
    operator.stop().await;
    ctx.teardown().await;
}
