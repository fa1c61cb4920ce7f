//! Leader election, hand-over and the graceful stop on SIGTERM.

use super::*;

/// `reportingInstance` of the events about TFJob `name` with `reason`, once there is at least one
/// (events are published after the status that records the transition).
async fn event_reporters(ctx: &TestContext, name: &str, reason: &str) -> Vec<String> {
    let events: Api<Event> = ctx.api();
    wait_for(
        secs(10),
        &format!("a {reason} event about {name}"),
        || async {
            let reporters: Vec<String> = events
                .list(&ListParams::default())
                .await
                .expect("list events")
                .items
                .into_iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
                .filter(|e| e.reason.as_deref() == Some(reason))
                .map(|e| e.reporting_instance.unwrap_or_default())
                .collect();
            if reporters.is_empty() {
                Err("none yet".to_string())
            } else {
                Ok(reporters)
            }
        },
    )
    .await
}

async fn lease_holder(ctx: &TestContext, name: &str) -> Option<String> {
    let leases: Api<Lease> = ctx.api();
    leases
        .get_opt(name)
        .await
        .expect("get lease")
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

fn leader_args(ctx: &TestContext, timings: [&str; 3]) -> Vec<String> {
    vec![
        format!("--namespace={}", ctx.namespace),
        "--leader-elect".into(),
        "--leader-election-id=tfjob-operator-test".into(),
        format!("--leader-election-namespace={}", ctx.namespace),
        format!("--lease-duration={}", timings[0]),
        format!("--renew-deadline={}", timings[1]),
        format!("--retry-period={}", timings[2]),
    ]
}

async fn is_leader(operator: &OperatorBinary) -> f64 {
    operator.scrape().await.sum("tfjob_operator_is_leader", &[])
}

/// Two processes on one Lease: only the leader talks to anything but the Lease; a SIGKILLed
/// leader is replaced once its lease expires, and the new leader creates no pod twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_only_the_leader_reconciles_and_a_killed_leader_is_replaced() {
    let _shared = EXCLUSIVE.read().await;
    let ctx = TestContext::new("leader").await;
    let pod_history = PodHistory::record(&ctx);
    let args = leader_args(&ctx, ["3s", "2s", "500ms"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let mut a = start_operator("leader-a", &args, &[("POD_NAME", "op-a")]).await;
    wait_for(secs(20), "op-a to lead and be ready", || async {
        matches!(probe(&a, "/readyz").await, Ok((200, _))) && is_leader(&a).await == 1.0
    })
    .await;
    let b = start_operator("leader-b", &args, &[("POD_NAME", "op-b")]).await;
    wait_for(secs(20), "op-b to stand by", || async {
        b.log_lines()
            .iter()
            .any(|l| message(l) == "waiting for leadership")
    })
    .await;
    assert_eq!(
        probe(&b, "/readyz").await,
        Ok((200, "ok".to_string())),
        "a standby is ready"
    );
    assert_eq!(is_leader(&b).await, 0.0);
    let holder_a = lease_holder(&ctx, "tfjob-operator-test")
        .await
        .expect("a holder");
    assert!(holder_a.starts_with("op-a_"), "{holder_a}");

    create(
        &ctx,
        &ctx.namespace,
        &job("first", &[], json!({}), 2, "Never", ""),
    )
    .await;
    await_job(&ctx, &ctx.namespace, "first", "Created", secs(30)).await;
    wait_for(secs(30), "first's pods", || async {
        pods_in(&ctx, &ctx.namespace).await == ["first-worker-0", "first-worker-1"]
    })
    .await;
    let standby = b.scrape().await;
    assert_eq!(standby.sum("tfjob_operator_reconcile_total", &[]), 0.0);
    assert_eq!(standby.sum("tfjob_operator_pods_created_total", &[]), 0.0);
    for sample in standby.samples("tfjob_operator_api_requests_total") {
        assert_eq!(
            sample.labels["verb"], "get",
            "a standby only reads the Lease: {sample:?}"
        );
    }
    let reporters = event_reporters(&ctx, "first", "SuccessfulCreatePod").await;
    assert!(
        !reporters.is_empty() && reporters.iter().all(|r| r == &holder_a),
        "{reporters:?}"
    );

    // SIGKILL: no release, the standby must wait for the lease to expire.
    a.kill().await;
    let killed = Instant::now();
    create(
        &ctx,
        &ctx.namespace,
        &job("second", &[], json!({}), 2, "Never", ""),
    )
    .await;
    wait_fast(secs(15), "op-b to lead", || async {
        if is_leader(&b).await == 1.0 {
            Ok(())
        } else {
            Err("standby".to_string())
        }
    })
    .await;
    let handover = killed.elapsed();
    await_job(&ctx, &ctx.namespace, "second", "Created", secs(30)).await;
    let reconciling = killed.elapsed();
    wait_for(secs(30), "all four pods", || async {
        pods_in(&ctx, &ctx.namespace).await.len() == 4
    })
    .await;
    let holder_b = lease_holder(&ctx, "tfjob-operator-test")
        .await
        .expect("a holder");
    assert!(holder_b.starts_with("op-b_"), "{holder_b}");
    assert_eq!(
        event_reporters(&ctx, "second", "SuccessfulCreatePod").await,
        [holder_b]
    );
    assert_eq!(probe(&b, "/readyz").await, Ok((200, "ok".to_string())));
    // A standby may take over only once the lease has expired: lease duration after the last
    // renewal it saw, which it sees up to one (jittered) retry period late, then up to one more
    // retry period until its next attempt: 3 s + 2 × 1.1 s at most, plus request time.
    assert!(
        handover >= Duration::from_millis(2000),
        "took over a live lease after {handover:?}"
    );
    assert!(
        handover <= Duration::from_millis(5700),
        "hand-over took {handover:?}"
    );

    pod_history.stop();
    pod_history.assert_no_pod_created_twice();
    let creates = pod_creates(&ctx.namespace);
    assert_eq!(creates.len(), 4, "{creates:?}");
    assert!(
        creates.values().all(|codes| codes == &[201]),
        "no pod create was repeated: {creates:?}"
    );
    eprintln!(
        "leader hand-over after SIGKILL: lease taken over {:.2}s after the kill, second job Created {:.2}s after it",
        handover.as_secs_f64(),
        reconciling.as_secs_f64()
    );
    ctx.teardown().await;
}

/// SIGTERM while a reconcile creates 60 pods: the reconcile finishes, the Lease is handed back
/// (so the standby leads at once, long before the 15 s lease would expire) and the process
/// exits 0 well within a 10 s grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_reconciles_releases_the_lease_and_exits_0() {
    let _shared = EXCLUSIVE.read().await;
    let ctx = TestContext::new("sigterm").await;
    let pod_history = PodHistory::record(&ctx);
    let args = leader_args(&ctx, ["15s", "10s", "1s"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut a = start_operator("sigterm-a", &args, &[("POD_NAME", "op-a")]).await;
    wait_for(secs(20), "op-a to lead and be ready", || async {
        matches!(probe(&a, "/readyz").await, Ok((200, _))) && is_leader(&a).await == 1.0
    })
    .await;
    let b = start_operator("sigterm-b", &args, &[("POD_NAME", "op-b")]).await;
    wait_for(secs(20), "op-b to stand by", || async {
        b.log_lines()
            .iter()
            .any(|l| message(l) == "waiting for leadership")
    })
    .await;
    let holder_a = lease_holder(&ctx, "tfjob-operator-test")
        .await
        .expect("a holder");

    create(
        &ctx,
        &ctx.namespace,
        &job("big", &[], json!({}), 60, "Never", ""),
    )
    .await;
    wait_fast(secs(30), "the first pod", || async {
        if pod_history.names_seen() == 0 {
            Err("no pod yet".to_string())
        } else {
            Ok(())
        }
    })
    .await;
    let terminated = Instant::now();
    let status = a.terminate(secs(10)).await;
    let shutdown = terminated.elapsed();
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        a.log_tail(20)
    );
    let log = a.log_lines();
    for expected in [
        "SIGTERM received; stopping",
        "released the lease",
        "stopped cleanly",
    ] {
        assert!(
            log.iter().any(|l| message(l) == expected),
            "no {expected:?} in:\n{}",
            a.log_tail(20)
        );
    }
    wait_fast(secs(5), "op-b to lead", || async {
        if is_leader(&b).await == 1.0 {
            Ok(())
        } else {
            Err("standby".to_string())
        }
    })
    .await;
    let takeover = terminated.elapsed();
    // The in-flight reconcile created all 60 pods before op-a exited: op-b has none left to create.
    wait_for(secs(30), "60 pods", || async {
        pods_in(&ctx, &ctx.namespace).await.len() == 60
    })
    .await;
    await_job(&ctx, &ctx.namespace, "big", "Created", secs(30)).await;
    wait_for(secs(30), "op-b to reconcile big", || async {
        b.scrape().await.sum("tfjob_operator_reconcile_total", &[]) >= 1.0
    })
    .await;
    let scrape = b.scrape().await;
    assert_eq!(
        scrape.sum("tfjob_operator_pods_created_total", &[]),
        0.0,
        "op-a finished its work"
    );
    let reporters = event_reporters(&ctx, "big", "SuccessfulCreatePod").await;
    assert!(
        !reporters.is_empty() && reporters.iter().all(|r| r == &holder_a),
        "{reporters:?}"
    );
    pod_history.stop();
    pod_history.assert_no_pod_created_twice();
    assert!(
        takeover < secs(5),
        "the standby led {takeover:?} after SIGTERM"
    );
    eprintln!(
        "SIGTERM with 60 pod creations in flight: exit 0 after {:.2}s; standby leading {:.2}s after the signal",
        shutdown.as_secs_f64(),
        takeover.as_secs_f64()
    );
    ctx.teardown().await;
}
