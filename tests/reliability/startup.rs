//! The environment the operator starts in or runs on changes under it: the apiserver is down
//! when it starts (a cluster coming up, a control-plane upgrade), or the TFJob CRD is deleted
//! and installed again. It waits, says why on `/readyz`, and carries on; it never exits.

use super::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::DeleteParams;
use support::operator::{submit, workers_job};

fn one_worker(name: &str) -> String {
    workers_job(name, 1, &[])
}

async fn await_created(ctx: &TestContext, name: &str, within: Duration) {
    let jobs: Api<TFJob> = ctx.api();
    wait_for(within, &format!("{name} to be Created"), || async {
        let job = jobs.get(name).await.map_err(|e| e.to_string())?;
        if condition_pairs(&job).iter().any(|(t, _)| t == "Created") {
            Ok(())
        } else {
            Err(format!("{:?}", condition_pairs(&job)))
        }
    })
    .await;
}

/// Run beside the other waiting faults (`waiting.rs`).
pub(crate) async fn an_apiserver_down_at_start_is_waited_for_not_exited_on() {
    const DOWN: Duration = Duration::from_secs(60);
    let ctx = TestContext::new("start-down").await;
    let proxy = FaultProxy::start(control_plane(), 41).await;
    proxy.go_down();
    let mut operator = OperatorBinary::start(
        "start-down",
        &proxy.kubeconfig,
        &[format!("--namespace={}", ctx.namespace)],
    )
    .await;
    let down_since = Instant::now();
    let (code, reason) = wait_for(secs(10), "/readyz to say why", || async {
        match operator.readyz().await {
            Ok((503, body)) if body.contains("cannot reach the apiserver") => Ok((503, body)),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    tokio::time::sleep(DOWN.saturating_sub(down_since.elapsed())).await;
    assert!(operator.is_running(), "exited: {}", operator.log_tail(20));
    proxy.come_up();
    let up = Instant::now();
    wait_for(secs(30), "ready after the apiserver returns", || async {
        matches!(operator.readyz().await, Ok((200, _)))
    })
    .await;
    let ready_in = up.elapsed();
    submit(&ctx, &one_worker("after")).await;
    await_created(&ctx, "after", secs(30)).await;
    eprintln!(
        "apiserver down {DOWN:?} at start: /readyz {code} {reason:?} meanwhile; ready {ready_in:.1?} \
         after it returned; no exit"
    );
    assert!(
        ready_in <= secs(15),
        "ready {ready_in:?} after the apiserver returned"
    );
    assert!(operator.is_running());
    panic_free(&operator);
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_deleted_and_installed_again_is_picked_up() {
    let _serial = SERIAL.lock().await;
    let ctx = TestContext::new("crd-again").await;
    let operator = OperatorBinary::start(
        "crd-again",
        &control_plane().kubeconfig,
        &[format!("--namespace={}", ctx.namespace)],
    )
    .await;
    submit(&ctx, &one_worker("before")).await;
    await_created(&ctx, "before", secs(30)).await;

    let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    let installed = crds.get("tfjobs.kubeflow.org").await.unwrap();
    crds.delete("tfjobs.kubeflow.org", &DeleteParams::default())
        .await
        .unwrap();
    let deleted = Instant::now();
    wait_for(secs(60), "the CRD to be gone", || async {
        crds.get_opt("tfjobs.kubeflow.org")
            .await
            .map(|c| c.is_none())
            .unwrap_or(false)
    })
    .await;
    let gone_in = deleted.elapsed();
    let mut again = installed.clone();
    again.metadata = kube::api::ObjectMeta {
        name: installed.metadata.name.clone(),
        ..Default::default()
    };
    again.status = None;
    install_crd(&ctx.client, &again).await;
    let reinstalled = Instant::now();
    submit(&ctx, &one_worker("after")).await;
    await_created(&ctx, "after", secs(30)).await;
    let picked_up = reinstalled.elapsed();
    eprintln!(
        "CRD deleted (gone after {gone_in:.1?}) and installed again: a new job Created \
         {picked_up:.1?} later"
    );
    assert!(picked_up <= secs(30));
    assert!(operator.pid().is_some());
    panic_free(&operator);
    ctx.teardown().await;
}
