//! An apiserver restart with etcd compacted just before.

use super::*;

const CONTROL_PLANE_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/hack/control-plane.sh");

/// Jobs submitted before, during and after a kube-apiserver restart; see the module docs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_converge_across_an_apiserver_restart_and_etcd_compaction() {
    const PER_PHASE: usize = 20;
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let ctx = TestContext::new("apiserver-restart").await;
    let ns = ctx.namespace.clone();
    let pod_history = PodHistory::record(&ctx);
    let _kubelet = sim_kubelet(&ctx);
    let mut rng = Rng(0x5eed_0002);
    let mut phase = |label: &str| -> Vec<Scripted> {
        (0..PER_PHASE)
            .map(|i| script(format!("{label}-{i:02}"), &mut rng))
            .collect()
    };
    let (before, during, after) = (phase("before"), phase("during"), phase("after"));

    // Through a proxy without faults: it records what the operator sent and how it ended.
    let proxy = FaultProxy::start(control_plane(), 2).await;
    let mut operator = OperatorBinary::start(
        "apiserver-restart",
        &proxy.kubeconfig,
        &[format!("--namespace={ns}")],
    )
    .await;
    for s in &before {
        submit(&ctx, s).await;
    }
    // Some of them have pods running when the apiserver goes away.
    tokio::time::sleep(secs(1)).await;
    let restarts_before = operator
        .scrape()
        .await
        .sum("tfjob_operator_watch_restarts_total", &[]);

    // Compact etcd, then restart the apiserver: its watch caches start empty at the current
    // revision, and every watch resuming from an older resourceVersion gets 410 Gone.
    let dir = control_plane().dir.clone();
    bump_and_compact(etcd_endpoint(&dir)).await;
    let restart = tokio::process::Command::new(CONTROL_PLANE_SCRIPT)
        .arg("restart-apiserver")
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run control-plane.sh restart-apiserver");
    let restarting = Instant::now();
    // One a second until one meets the apiserver away (its graceful shutdown serves a while),
    // then the rest as it comes back, its watch caches still filling.
    let mut refused = 0;
    for s in &during {
        refused += submit_with_retry(&ctx, s).await;
        tokio::time::sleep(if refused == 0 { secs(1) } else { ms(100) }).await;
    }
    let output = restart.wait_with_output().await.expect("restart-apiserver");
    assert!(
        output.status.success(),
        "restart-apiserver failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let restarted_in = restarting.elapsed();
    assert!(
        refused > 0,
        "no submission met the apiserver away: the restart was over before the jobs meant to \
         be submitted during it"
    );
    assert!(
        operator.is_running(),
        "the operator exited during the restart:\n{}",
        operator.log_tail(30)
    );
    for s in &after {
        submit(&ctx, s).await;
    }

    let scripts: Vec<Scripted> = [before, during, after].concat();
    let jobs = await_all_finished(&ctx, &scripts, secs(120)).await;
    let converged_at = started.elapsed();
    tokio::time::sleep(secs(1)).await;
    pod_history.stop();

    assert!(
        operator.is_running(),
        "the operator exited:\n{}",
        operator.log_tail(30)
    );
    panic_free(&operator);
    let restarts = operator
        .scrape()
        .await
        .sum("tfjob_operator_watch_restarts_total", &[])
        - restarts_before;
    assert!(
        restarts >= 1.0,
        "the restart ended no watch with an error (tfjob_operator_watch_restarts_total unchanged): the test did not disturb the operator"
    );
    let records = proxy.records();
    let (problems, canonical) = end_state_problems(&scripts, &jobs);
    assert!(
        problems.is_empty(),
        "{} of {} jobs differ from their script:\n{}",
        problems.len(),
        scripts.len(),
        explain(&records, &problems, started)
    );
    let (problems, never_created) = duplicate_problems(&ns, &scripts, &pod_history, &records);
    assert!(
        problems.is_empty(),
        "children created other than once:\n{}",
        explain(&records, &problems, started)
    );
    operator.terminate(secs(30)).await;
    eprintln!(
        "apiserver restart: {} jobs (before/during/after; {refused} submissions refused while \
         it was away), apiserver back after {:.1}s, \
         {restarts} watch restarts, all finished at {:.1}s; {canonical} jobs with conditions \
         Created, Running, end; children never created: {never_created:?}",
        scripts.len(),
        restarted_in.as_secs_f64(),
        converged_at.as_secs_f64()
    );
    ctx.teardown().await;
}
