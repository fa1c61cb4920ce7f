//! The simulated kubelet on the real local control plane: every behaviour a test or the
//! benchmark relies on, through the watch loop and through the direct helpers.

use test_support as support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Node, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher;
use sim_kubelet::{
    self, SimKubelet, SimKubeletConfig, behaviour::*, restart_in_place, set_running, terminate,
};
use support::*;

fn pod(name: &str, restart_policy: &str, annotations: &[(&str, &str)]) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([(
                "app".to_string(),
                "sim-test".to_string(),
            )])),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some(restart_policy.into()),
            containers: vec![Container {
                name: "tensorflow".into(),
                image: Some("tensorflow/tensorflow:2.15.0".into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

/// A simulated kubelet for this test's namespace only, so parallel tests don't interfere.
fn sim(ctx: &TestContext) -> SimKubelet {
    SimKubelet::spawn(
        ctx.client.clone(),
        SimKubeletConfig {
            namespace: Some(ctx.namespace.clone()),
            ..SimKubeletConfig::default()
        },
    )
}

async fn create(ctx: &TestContext, pod: &Pod) {
    ctx.api::<Pod>()
        .create(&PostParams::default(), pod)
        .await
        .unwrap_or_else(|e| panic!("creating pod failed: {e}"));
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn container(pod: &Pod) -> &ContainerStatus {
    &pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .expect("containerStatuses")[0]
}

fn terminated(pod: &Pod) -> (i32, String) {
    let t = container(pod)
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("a terminated container");
    (t.exit_code, t.reason.clone().unwrap_or_default())
}

fn condition(pod: &Pod, type_: &str) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

async fn await_phase(ctx: &TestContext, name: &str, wanted: &str) -> Pod {
    await_object(
        &ctx.api::<Pod>(),
        name,
        secs(20),
        &format!("pod {name} to be {wanted}"),
        |p| phase(p) == wanted,
    )
    .await
}

#[tokio::test]
async fn a_pod_is_bound_runs_and_succeeds_with_a_realistic_status() {
    let ctx = TestContext::new("sim-success").await;
    let _sim = sim(&ctx);
    create(&ctx, &pod("ok", "Never", &[(RUN_MS, "300")])).await;

    let running = await_phase(&ctx, "ok", "Running").await;
    let spec = running.spec.as_ref().unwrap();
    assert_eq!(spec.node_name.as_deref(), Some(sim_kubelet::DEFAULT_NODE));
    for type_ in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
        assert_eq!(
            condition(&running, type_),
            "True",
            "{type_} in {}",
            describe(&running)
        );
    }
    let status = running.status.as_ref().unwrap();
    assert_eq!(
        status.host_ip.as_deref(),
        Some(sim_kubelet::DEFAULT_NODE_IP)
    );
    assert!(
        status
            .pod_ip
            .as_deref()
            .is_some_and(|ip| ip.starts_with("10.244."))
    );
    assert!(status.start_time.is_some());
    let c = container(&running);
    assert!(c.ready && c.started == Some(true));
    assert!(
        c.container_id
            .as_deref()
            .is_some_and(|id| id.starts_with("containerd://"))
    );
    assert!(
        c.image_id.starts_with("tensorflow/tensorflow@sha256:"),
        "{}",
        c.image_id
    );
    assert!(
        c.state
            .as_ref()
            .unwrap()
            .running
            .as_ref()
            .unwrap()
            .started_at
            .is_some()
    );

    let done = await_phase(&ctx, "ok", "Succeeded").await;
    assert_eq!(terminated(&done), (0, "Completed".to_string()));
    assert_eq!(condition(&done, "Ready"), "False");
    assert_eq!(container(&done).restart_count, 0);

    let node = Api::<Node>::all(ctx.client.clone())
        .get(sim_kubelet::DEFAULT_NODE)
        .await
        .expect("the simulated node exists");
    assert_eq!(
        node.metadata.labels.unwrap()["kubernetes.io/hostname"],
        sim_kubelet::DEFAULT_NODE
    );
    ctx.teardown().await;
}

#[tokio::test]
async fn a_failing_container_fails_the_pod_with_its_exit_code_and_reason() {
    let ctx = TestContext::new("sim-failure").await;
    let _sim = sim(&ctx);
    create(
        &ctx,
        &pod("exit3", "Never", &[(RUN_MS, "200"), (EXIT_CODE, "3")]),
    )
    .await;
    create(
        &ctx,
        &pod("oom", "Never", &[(RUN_MS, "200"), (REASON, "OOMKilled")]),
    )
    .await;

    let failed = await_phase(&ctx, "exit3", "Failed").await;
    assert_eq!(terminated(&failed), (3, "Error".to_string()));
    let oom = await_phase(&ctx, "oom", "Failed").await;
    assert_eq!(terminated(&oom), (137, "OOMKilled".to_string()));
    ctx.teardown().await;
}

#[tokio::test]
async fn on_failure_restarts_in_place_counting_restarts_until_an_attempt_succeeds() {
    let ctx = TestContext::new("sim-restart").await;
    let _sim = sim(&ctx);
    let annotations = [(RUN_MS, "400"), (EXIT_CODE, "2"), (FAIL_ATTEMPTS, "1,2")];
    create(&ctx, &pod("flaky", "OnFailure", &annotations)).await;

    let pods = ctx.api::<Pod>();
    let after_first = await_object(
        &pods,
        "flaky",
        secs(20),
        "the first in-place restart",
        |p| phase(p) == "Running" && container(p).restart_count == 1,
    )
    .await;
    let last = container(&after_first)
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("lastState.terminated after a restart");
    assert_eq!((last.exit_code, last.reason.as_deref()), (2, Some("Error")));
    assert!(
        container(&after_first)
            .state
            .as_ref()
            .unwrap()
            .running
            .is_some()
    );

    let done = await_phase(&ctx, "flaky", "Succeeded").await;
    assert_eq!(container(&done).restart_count, 2, "{}", describe(&done));
    assert_eq!(terminated(&done), (0, "Completed".to_string()));
    ctx.teardown().await;
}

#[tokio::test]
async fn attempts_continue_across_pod_incarnations_with_the_same_name() {
    let ctx = TestContext::new("sim-incarnations").await;
    let _sim = sim(&ctx);
    let p = pod("retry", "Never", &[(RUN_MS, "100"), (FAIL_ATTEMPTS, "1")]);
    create(&ctx, &p).await;
    let first = await_phase(&ctx, "retry", "Failed").await;
    assert_eq!(terminated(&first).0, 1);

    // What an operator does under restartPolicy ExitCode/Never: delete and re-create.
    let pods = ctx.api::<Pod>();
    pods.delete("retry", &DeleteParams::default())
        .await
        .unwrap();
    await_deleted(&pods, "retry", secs(20)).await;
    create(&ctx, &p).await;
    let second = await_phase(&ctx, "retry", "Succeeded").await;
    assert_ne!(second.metadata.uid, first.metadata.uid);
    assert_eq!(terminated(&second).0, 0);
    ctx.teardown().await;
}

#[tokio::test]
async fn a_running_pod_deleted_gracefully_is_sigtermed_and_disappears() {
    let ctx = TestContext::new("sim-delete").await;
    let _sim = sim(&ctx);
    create(&ctx, &pod("forever", "Always", &[(RUN_FOREVER, "true")])).await;
    await_phase(&ctx, "forever", "Running").await;

    // Record every state the pod passes through until it is gone.
    let pods = ctx.api::<Pod>();
    let seen = Arc::new(Mutex::new(Vec::<Pod>::new()));
    let recorder = {
        let (pods, seen) = (pods.clone(), seen.clone());
        tokio::spawn(async move {
            let mut stream = watcher::watch_object(pods, "forever").boxed();
            while let Some(Ok(Some(p))) = stream.next().await {
                seen.lock().unwrap().push(p);
            }
        })
    };
    wait_for(secs(5), "the recorder to see the pod", || async {
        !seen.lock().unwrap().is_empty()
    })
    .await;

    // The default grace period (30 s) would keep a kubelet-less pod Terminating forever.
    pods.delete("forever", &DeleteParams::default())
        .await
        .unwrap();
    await_deleted(&pods, "forever", secs(20)).await;
    tokio::time::timeout(secs(5), recorder).await.ok();

    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let killed = seen
        .iter()
        .find(|p| p.metadata.deletion_timestamp.is_some() && phase(p) == "Failed")
        .unwrap_or_else(|| {
            panic!(
                "a terminated status before the pod vanished; saw {} states",
                seen.len()
            )
        });
    assert_eq!(terminated(killed).0, 143, "SIGTERM exit code");
    ctx.teardown().await;
}

#[tokio::test]
async fn a_label_selector_limits_which_pods_are_simulated() {
    let ctx = TestContext::new("sim-selector").await;
    let _sim = SimKubelet::spawn(
        ctx.client.clone(),
        SimKubeletConfig {
            namespace: Some(ctx.namespace.clone()),
            label_selector: Some("sim=yes".into()),
            ..SimKubeletConfig::default()
        },
    );
    let mut chosen = pod("chosen", "Never", &[(RUN_MS, "100")]);
    chosen
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("sim".into(), "yes".into());
    create(&ctx, &pod("ignored", "Never", &[(RUN_MS, "100")])).await;
    create(&ctx, &chosen).await;

    await_phase(&ctx, "chosen", "Succeeded").await;
    let ignored = ctx.api::<Pod>().get("ignored").await.unwrap();
    assert_eq!(
        ignored.spec.as_ref().unwrap().node_name,
        None,
        "the unselected pod is not bound"
    );
    assert_eq!(phase(&ignored), "Pending");
    ctx.teardown().await;
}

#[tokio::test]
async fn direct_helpers_drive_a_pod_without_the_watch_loop() {
    let ctx = TestContext::new("sim-direct").await;
    let pods = ctx.api::<Pod>();
    create(&ctx, &pod("driven", "OnFailure", &[])).await;

    let running = set_running(&pods, "driven").await.expect("set_running");
    assert_eq!(phase(&running), "Running");
    assert_eq!(
        running.spec.as_ref().unwrap().node_name.as_deref(),
        Some(sim_kubelet::DEFAULT_NODE)
    );
    assert!(container(&running).ready);

    let restarted = restart_in_place(&pods, "driven", 1, None)
        .await
        .expect("restart_in_place");
    assert_eq!(phase(&restarted), "Running");
    assert_eq!(container(&restarted).restart_count, 1);
    let last = container(&restarted)
        .last_state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));

    let done = terminate(&pods, "driven", 137, Some("OOMKilled"))
        .await
        .expect("terminate");
    assert_eq!(phase(&done), "Failed");
    assert_eq!(terminated(&done), (137, "OOMKilled".to_string()));
    assert_eq!(container(&done).restart_count, 1);
    ctx.teardown().await;
}

#[tokio::test]
async fn many_pods_are_all_driven_to_completion() {
    const PODS: usize = 150;
    let ctx = TestContext::new("sim-many").await;
    let _sim = sim(&ctx);
    let api = ctx.api::<Pod>();
    futures::stream::iter(0..PODS)
        .for_each_concurrent(16, |i| {
            let api = api.clone();
            async move {
                let p = pod(
                    &format!("p{i}"),
                    "Never",
                    &[(PENDING_MS, "10"), (RUN_MS, "50")],
                );
                api.create(&PostParams::default(), &p).await.unwrap();
            }
        })
        .await;
    wait_for(secs(60), &format!("all {PODS} pods to succeed"), || async {
        let list = api
            .list(&Default::default())
            .await
            .map_err(|e| e.to_string())?;
        let done = list
            .items
            .iter()
            .filter(|p| phase(p) == "Succeeded")
            .count();
        if done == PODS {
            Ok(())
        } else {
            Err(format!("{done}/{PODS} succeeded"))
        }
    })
    .await;
    ctx.teardown().await;
}
