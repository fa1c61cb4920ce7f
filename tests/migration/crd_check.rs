//! The start-up check of the installed CRD: upstream's shape stops the operator with the fix;
//! `--allow-upstream-crd` runs it degraded (gauge 0, one Warning per job, no write loop); the
//! replaced CRD lets it start, and the fields are stored again.

use super::*;

use kube::ResourceExt;
use support::binary::OperatorBinary;
use support::control_plane;
use support::operator::{await_events, job_events, sim_kubelet, submit};
use tfjob_core::api::crd::STORED_FIELDS;

const GAUGE: &str = "tfjob_operator_crd_compatible";
const DROPPED: &str = "TFJobStatusFieldsDropped";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_shaped_crd_stops_the_operator_until_it_is_replaced() {
    let _turn = turn().await;
    let ctx = TestContext::new("crd-check").await;
    install_upstream_crd().await;
    let kubeconfig = &control_plane().kubeconfig;
    let scope = vec![format!("--namespace={}", ctx.namespace)];
    let fix = replace_crd_command().await;

    // 1. It refuses to start, naming every missing field and the command that fixes it.
    let mut refused = OperatorBinary::spawn("upstream-crd", kubeconfig, &scope);
    let status = refused.wait_exit(secs(60)).await;
    let log = refused.log_text();
    assert!(
        !status.success(),
        "it must not run on upstream's CRD:\n{log}"
    );
    assert!(
        log.contains("lacks fields this operator stores"),
        "the reason:\n{log}"
    );
    for field in STORED_FIELDS {
        assert!(log.contains(field.path), "{} named:\n{log}", field.path);
    }
    assert!(log.contains(&fix), "the fix, {fix:?}:\n{log}");
    assert!(log.contains("--allow-upstream-crd"), "the way out:\n{log}");

    // 2. --allow-upstream-crd: it runs, says so, and reports the gauge.
    let mut degraded_args = scope.clone();
    degraded_args.push("--allow-upstream-crd".into());
    let mut degraded = OperatorBinary::start("degraded", kubeconfig, &degraded_args).await;
    wait_for(secs(10), "the warning at start", || async {
        let warned = degraded.log_lines().iter().any(|l| {
            l["level"] == "WARN" && support::binary::message(l).starts_with("--allow-upstream-crd")
        });
        if warned {
            Ok(())
        } else {
            Err(degraded.log_tail(20))
        }
    })
    .await;
    assert_eq!(degraded.scrape().await.sum(GAUGE, &[]), 0.0);

    // A job whose worker completes needs completedIndexes: one Warning, and no write loop.
    let kubelet = sim_kubelet(&ctx);
    submit(&ctx, &chief_and_quick_worker("legacy")).await;
    let job = await_worker_status(&ctx, "legacy", "Worker", (1, None)).await;
    await_events(&ctx, "legacy", "the dropped-fields warning", |events| {
        events
            .iter()
            .any(|e| e.starts_with(&format!("Warning {DROPPED}: ")))
    })
    .await;
    let settled = job.resource_version();
    tokio::time::sleep(secs(3)).await;
    let jobs: Api<TFJob> = ctx.api();
    let later = jobs.get("legacy").await.expect("the job");
    assert_eq!(
        later.resource_version(),
        settled,
        "no status write loop while the CRD drops fields"
    );
    let events = job_events(&ctx, "legacy").await;
    let warnings: Vec<&String> = events.iter().filter(|e| e.contains(DROPPED)).collect();
    assert_eq!(warnings.len(), 1, "once per job: {events:#?}");
    assert!(warnings[0].contains(&fix), "{}", warnings[0]);
    assert!(degraded.terminate(secs(20)).await.success());

    // 3. The CRD replaced: it starts, the gauge says so, and the index is stored.
    install_project_crd().await;
    let mut operator = OperatorBinary::start("compatible", kubeconfig, &scope).await;
    wait_for(secs(30), "the gauge to report a compatible CRD", || async {
        match operator.try_scrape().await.map(|s| s.sum(GAUGE, &[])) {
            Some(1.0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    await_worker_status(&ctx, "legacy", "Worker", (1, Some("0"))).await;
    assert!(operator.terminate(secs(20)).await.success());
    let _ = kubelet.shutdown().await;
    ctx.teardown().await;
}
