//! A partitioned leader: two operators, each behind its own fault proxy, share a Lease. The
//! leader's proxy is frozen (a network partition: its requests are held, none answered) while
//! it creates a 200-replica job; the standby takes over once the Lease expires; then the
//! partition heals and held requests are delivered late. Fail-stop leadership (the deposed
//! leader exits at its renew deadline) and conditional status writes must mean that nothing
//! the old leader sent takes effect after the new leader's first write.

use super::*;

use k8s_openapi::api::core::v1::Pod;

const REPLICAS: usize = 200;

fn lease_args(ns: &str) -> Vec<String> {
    vec![
        format!("--namespace={ns}"),
        "--leader-elect".into(),
        "--leader-election-id=partition-test".into(),
        format!("--leader-election-namespace={ns}"),
        "--lease-duration=8s".into(),
        "--renew-deadline=6s".into(),
        "--retry-period=1s".into(),
    ]
}

async fn leads(operator: &OperatorBinary) -> bool {
    operator
        .try_scrape()
        .await
        .is_some_and(|s| s.sum("tfjob_operator_is_leader", &[]) == 1.0)
}

async fn pod_count(ctx: &TestContext) -> usize {
    let pods: Api<Pod> = ctx.api();
    pods.list(&ListParams::default())
        .await
        .map(|l| l.items.len())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_writes_nothing_after_its_successor() {
    let _serial = SERIAL.lock().await;
    let ctx = TestContext::new("partition").await;
    let ns = ctx.namespace.clone();
    let pod_history = PodHistory::record(&ctx);
    let _kubelet = sim_kubelet(&ctx);
    let (proxy_a, proxy_b) = (
        FaultProxy::start(control_plane(), 11).await,
        FaultProxy::start(control_plane(), 12).await,
    );
    // Slow pod creates on a's path (up to 300 ms each), so that many are on the wire when the
    // partition starts.
    proxy_a.set_faults(Faults {
        delay: 1.0,
        max_delay: ms(300),
        only: Some(format!("POST /api/v1/namespaces/{ns}/pods")),
        ..Faults::default()
    });
    let args = lease_args(&ns);
    let mut first = OperatorBinary::start("partition-a", &proxy_a.kubeconfig, &args).await;
    wait_for(secs(20), "operator a to lead", || async {
        if leads(&first).await {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    })
    .await;
    let second = OperatorBinary::start("partition-b", &proxy_b.kubeconfig, &args).await;

    // A big job; the partition starts while its children are being created.
    let job: TFJob = serde_json::from_value(json!({
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": "big"},
        "spec": {"tfReplicaSpecs": {"Worker": {
            "replicas": REPLICAS,
            "restartPolicy": "Never",
            "template": {
                "metadata": {"annotations": {"sim.tfjob-operator.dev/run-forever": "true"}},
                "spec": {"containers": [{"name": "tensorflow", "image": "tf"}]}
            }
        }}}
    }))
    .expect("a TFJob");
    // The partition starts at the 8th pod create, before it is forwarded: armed in the proxy
    // itself, so that it catches the leader mid-work however loaded the machine is (a test
    // that polled for the 8th create and then froze could miss a whole batch).
    proxy_a.freeze_at(&format!("POST /api/v1/namespaces/{ns}/pods"), 8);
    ctx.api::<TFJob>()
        .create(&PostParams::default(), &job)
        .await
        .expect("the job");
    let deadline = Instant::now() + secs(60);
    let partitioned = loop {
        if let Some(at) = proxy_a.frozen_at() {
            break at;
        }
        assert!(
            Instant::now() < deadline,
            "operator a did not create 8 pods within 60 s:\n{}",
            first.log_tail(10)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    // Leadership is read from the operators' own metrics (not through the proxy); the old
    // leader keeps believing it leads until its renew deadline, seconds from now.
    assert!(
        leads(&first).await && !leads(&second).await,
        "a still leads when the partition starts:\n{}",
        first.log_tail(10)
    );

    // The old leader gives up at its renew deadline and exits (fail-stop).
    let status = first.wait_exit(secs(20)).await;
    let exited_after = partitioned.elapsed();
    assert_eq!(status.code(), Some(1), "{}", first.log_tail(10));
    assert!(
        first
            .log_text()
            .contains("lost the leader lease; exiting at once"),
        "{}",
        first.log_tail(10)
    );

    // The standby takes over and finishes the job's children.
    wait_for(secs(30), "operator b to lead", || async {
        if leads(&second).await {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    })
    .await;
    let took_over_after = partitioned.elapsed();
    wait_for(secs(90), "all 200 pods", || async {
        match pod_count(&ctx).await {
            n if n == REPLICAS => Ok(()),
            n => Err(format!("{n} pods")),
        }
    })
    .await;

    // Writes the partition caught: sent by the old leader and not answered to it when the
    // network went (held at the gate, on the wire, or answered into the void).
    let held = proxy_a
        .records()
        .iter()
        .filter(|r| r.is_write() && matches!(r.outcome, Outcome::Pending | Outcome::Withheld))
        .count();

    // The partition heals: whatever the old leader's proxy still holds is delivered now.
    proxy_a.thaw();
    tokio::time::sleep(secs(3)).await;
    let first_write_of_b = proxy_b
        .records()
        .into_iter()
        .filter(|r| r.is_write() && r.took_effect() && !r.path.contains("/leases/"))
        .map(|r| r.received)
        .min()
        .expect("the new leader wrote");
    // Late: sent on to the apiserver only after the partition began, and carried out.
    let late: Vec<String> = proxy_a
        .records()
        .into_iter()
        .filter(|r| r.is_write() && r.took_effect())
        .filter(|r| r.forwarded_at.is_some_and(|at| at >= partitioned))
        .map(|r| format!("{} {} → {:?}", r.method, r.path, r.upstream_status))
        .collect();
    eprintln!(
        "partition: the old leader exited {exited_after:?} after the partition, the new one \
         led after {took_over_after:?}; {held} writes of the old leader held by the partition, \
         {} of them took effect late",
        late.len()
    );
    assert!(held > 0, "the partition caught the old leader mid-work");
    assert!(
        late.is_empty(),
        "writes of the deposed leader took effect after the partition (the new leader's first \
         write came {:?} after it): {late:#?}",
        first_write_of_b.saturating_duration_since(partitioned)
    );

    // No pod was created twice, and the status never went back.
    pod_history.assert_no_pod_created_twice();
    let jobs: Api<TFJob> = ctx.api();
    let stored = jobs.get("big").await.expect("the job");
    let conditions = condition_pairs(&stored);
    assert_eq!(
        conditions.first().map(|(t, _)| t.as_str()),
        Some("Created"),
        "{conditions:?}"
    );
    panic_free(&second);
    drop(second);
    ctx.teardown().await;
}
