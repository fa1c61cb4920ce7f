//! Requests that are accepted and never answered: the fault proxy black-holes every status
//! write of one job. With `--request-timeout` each of them fails in time, so that job's
//! reconciles are retried with back-off while the other jobs run to the end; once the proxy
//! heals, the job catches up within one timeout; and a SIGTERM with a request hanging exits
//! after the 10 s drain limit, inside a pod's default 30 s grace period.

use super::*;

use support::operator::{submit, workers_job};

/// A job whose one worker runs `run_ms` and succeeds.
fn quick_job(name: &str, run_ms: u64) -> String {
    workers_job(
        name,
        1,
        &[("pending-ms", "0"), ("run-ms", &run_ms.to_string())],
    )
}

async fn conditions_of(ctx: &TestContext, name: &str) -> Vec<(String, String)> {
    let jobs: Api<TFJob> = ctx.api();
    jobs.get(name)
        .await
        .map(|j| condition_pairs(&j))
        .unwrap_or_default()
}

async fn await_condition_type(ctx: &TestContext, name: &str, type_: &str, within: Duration) {
    wait_for(within, &format!("{name} to be {type_}"), || async {
        let conditions = conditions_of(ctx, name).await;
        if conditions.iter().any(|(t, s)| t == type_ && s == "True") {
            Ok(())
        } else {
            Err(format!("{conditions:?}"))
        }
    })
    .await;
}

/// Run beside the other waiting faults (`waiting.rs`).
pub(crate) async fn a_black_holed_job_holds_up_nothing_else_and_recovers() {
    // The operator's defaults: --request-timeout=30s, and 10 s to drain on a stop.
    const TIMEOUT: Duration = Duration::from_secs(30);
    const DRAIN_LIMIT: Duration = Duration::from_secs(10);
    const HOLE: Duration = Duration::from_secs(120);
    let ctx = TestContext::new("black-hole").await;
    let ns = ctx.namespace.clone();
    let _kubelet = sim_kubelet(&ctx);
    let proxy = FaultProxy::start(control_plane(), 21).await;
    let stuck_status = format!("/namespaces/{ns}/tfjobs/stuck/status");
    proxy.black_hole(&stuck_status);
    let holed = Instant::now();
    let args = vec![format!("--namespace={ns}")];
    let mut operator = OperatorBinary::start("black-hole", &proxy.kubeconfig, &args).await;

    // The other jobs run to the end while every status write of `stuck` hangs.
    submit(&ctx, &quick_job("stuck", 2000)).await;
    let others: Vec<String> = (0..6).map(|i| format!("other-{i}")).collect();
    for name in &others {
        submit(&ctx, &quick_job(name, 500)).await;
    }
    for name in &others {
        await_condition_type(&ctx, name, "Succeeded", secs(60)).await;
    }
    let others_done = holed.elapsed();
    assert!(
        conditions_of(&ctx, "stuck").await.is_empty(),
        "no status write of stuck got through"
    );
    let timed_out = wait_for(
        TIMEOUT + secs(15),
        "a status write of stuck to time out",
        || async {
            let errors = operator.scrape().await.sum(
                "tfjob_operator_api_requests_total",
                &[("verb", "patch_status"), ("code", "error")],
            );
            if errors >= 1.0 {
                Ok(errors)
            } else {
                Err(operator
                    .scrape()
                    .await
                    .series("tfjob_operator_api_requests_total")
                    .join("\n"))
            }
        },
    )
    .await;

    // Healed: the job catches up.
    tokio::time::sleep(HOLE.saturating_sub(holed.elapsed())).await;
    proxy.heal();
    let healed = Instant::now();
    await_condition_type(&ctx, "stuck", "Created", secs(60)).await;
    let recovered = healed.elapsed();
    await_condition_type(&ctx, "stuck", "Succeeded", secs(60)).await;

    // A SIGTERM while a request hangs: the drain is abandoned after its limit, well inside
    // a pod's default 30 s termination grace period.
    submit(&ctx, &quick_job("last", 300)).await;
    proxy.black_hole(&format!("/namespaces/{ns}/tfjobs/last/status"));
    tokio::time::sleep(secs(2)).await;
    let terminated = Instant::now();
    let status = operator.terminate(secs(30)).await;
    let stopped_in = terminated.elapsed();
    eprintln!(
        "black hole: {} other jobs succeeded {others_done:?} into it; {timed_out} status writes \
         timed out; healed after {HOLE:?}, the job had its status {recovered:?} later; SIGTERM \
         with a hung request exited in {stopped_in:?}",
        others.len()
    );
    assert!(
        recovered <= TIMEOUT,
        "recovered {recovered:?} after the heal (one --request-timeout at most)"
    );
    assert!(status.success(), "{status}: {}", operator.log_tail(10));
    assert!(
        stopped_in <= DRAIN_LIMIT + secs(5),
        "exited {stopped_in:?} after SIGTERM"
    );
    panic_free(&operator);
    proxy.heal();
    ctx.teardown().await;
}

/// With no request timeout (`--request-timeout=0s`) a black-holed write hangs its reconcile
/// for ever; the liveness probe notices: work is pending and nothing finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_queue_fails_the_liveness_probe() {
    const STALL: Duration = Duration::from_secs(5);
    let _serial = SERIAL.lock().await;
    let ctx = TestContext::new("stall").await;
    let ns = ctx.namespace.clone();
    let proxy = FaultProxy::start(control_plane(), 22).await;
    let args = vec![
        format!("--namespace={ns}"),
        "--request-timeout=0s".into(),
        format!("--stall-timeout={}s", STALL.as_secs()),
    ];
    let operator = OperatorBinary::start("stall", &proxy.kubeconfig, &args).await;
    let healthz = || async {
        let probes = operator.probes.expect("probes");
        support::binary::http(probes, "GET", "/healthz", "").await
    };
    wait_for(secs(30), "the caches to sync", || async {
        matches!(operator.readyz().await, Ok((200, _)))
    })
    .await;
    assert_eq!(healthz().await.unwrap().0, 200, "idle is alive");
    proxy.black_hole(&format!("/namespaces/{ns}/"));
    let holed = Instant::now();
    submit(&ctx, &quick_job("hangs", 500)).await;
    let (code, body) = wait_for(secs(30), "/healthz to fail", || async {
        match healthz().await {
            Ok((500, body)) => Ok((500, body)),
            other => Err(format!(
                "{other:?}; {:?}",
                operator
                    .scrape()
                    .await
                    .series("controller_runtime_active_workers")
            )),
        }
    })
    .await;
    let noticed = holed.elapsed();
    eprintln!("stalled queue: /healthz {code} after {noticed:.1?}: {body}");
    assert!(body.starts_with("stalled: "), "{body}");
    assert!(
        noticed >= STALL,
        "failed after {noticed:?}, before the stall timeout"
    );
    proxy.heal();
    wait_for(
        secs(30),
        "/healthz to recover once work finishes",
        || async { matches!(healthz().await, Ok((200, _))) },
    )
    .await;
    panic_free(&operator);
    ctx.teardown().await;
}
