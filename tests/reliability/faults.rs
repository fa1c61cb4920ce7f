//! Injected API faults (429, 500, dropped connections, delays, cut watches) without a hot loop.
//!
//! Transient faults cannot tell back-off from none (most retries succeed either way), so one
//! job's status writes fail every time: with back-off its attempts grow with the logarithm of
//! the time, without it they grow with the time. `the_hot_loop_check_catches_a_missing_backoff`
//! runs that job with the back-off switched off (fault injection) and checks the assertion
//! fails then.

use super::*;

/// A job whose every status write fails (500 from the proxy).
const BLOCKED: &str = "blocked";

fn blocked_job() -> Scripted {
    scripted(
        BLOCKED.into(),
        "status writes always fail",
        "None",
        vec![replica("Worker", 1, "Never", forever())],
        End::Succeeded,
        None,
    )
}

/// Status write attempts for `job` in `records`.
fn status_attempts(records: &[Record], ns: &str, job: &str) -> usize {
    let path = format!("/namespaces/{ns}/tfjobs/{job}/status");
    records
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.contains(&path))
        .count()
}

/// With the per-job back-off (0.5 s doubling), a job failing for `window` is tried about
/// log2(window / 0.5 s) + 1 times, plus a few passes its own watch events start; a loop
/// without back-off tries it every few milliseconds.
fn check_no_hot_loop(attempts: usize, window: Duration) -> Result<(), String> {
    let bound = (window.as_secs_f64() / 0.5).log2().ceil() as usize + 6;
    if attempts <= bound {
        Ok(())
    } else {
        Err(format!(
            "{attempts} status writes of a job that always fails in {window:.0?}, at most              {bound} with back-off: a hot loop"
        ))
    }
}

/// Jobs through 429/500/drops/delays/cut watches; see the module docs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_converge_through_injected_api_faults_without_a_hot_loop() {
    const JOBS: usize = 60;
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let ctx = TestContext::new("api-faults").await;
    let ns = ctx.namespace.clone();
    let pod_history = PodHistory::record(&ctx);
    let _kubelet = sim_kubelet(&ctx);
    let mut rng = Rng(0x5eed_0003);
    let scripts: Vec<Scripted> = (0..JOBS)
        .map(|i| script(format!("faults-{i:02}"), &mut rng))
        .collect();

    let proxy = FaultProxy::start(control_plane(), 3).await;
    proxy.set_faults(Faults {
        always_500: Some(format!("/namespaces/{ns}/tfjobs/{BLOCKED}/status")),
        reject_429: 0.10,
        reject_500: 0.10,
        drop_before: 0.05,
        error_after: 0.05,
        drop_after: 0.05,
        delay: 0.15,
        max_delay: ms(500),
        cut_watch: 0.20,
        max_watch_life: secs(3),
        ..Faults::default()
    });
    let faults_from = Instant::now();
    let operator = OperatorBinary::start(
        "api-faults",
        &proxy.kubeconfig,
        &[format!("--namespace={ns}")],
    )
    .await;
    submit(&ctx, &blocked_job()).await;
    for s in &scripts {
        submit(&ctx, s).await;
    }
    let jobs = await_all_finished(&ctx, &scripts, secs(120)).await;
    let faults_to = Instant::now();
    let blocked = status_attempts(&proxy.records(), &ns, BLOCKED);
    let converged_at = started.elapsed();
    // Faults go on with nothing left to do: only watches (cut, re-opened) should be seen.
    tokio::time::sleep(secs(5)).await;
    let idle_to = Instant::now();
    proxy.set_faults(Faults::default());
    tokio::time::sleep(secs(1)).await;
    pod_history.stop();
    panic_free(&operator);

    let records = proxy.records();
    let (problems, canonical) = end_state_problems(&scripts, &jobs);
    // The blocked job's children are created once too.
    let all: Vec<Scripted> = scripts.iter().cloned().chain([blocked_job()]).collect();
    let (duplicates, never_created) = duplicate_problems(&ns, &all, &pod_history, &records);
    let during = |r: &&Record| r.received >= faults_from && r.received < faults_to;
    let faulted = records
        .iter()
        .filter(during)
        .filter(|r| !r.faults.is_empty())
        .count();
    let attempts = records
        .iter()
        .filter(during)
        .filter(|r| r.is_write())
        .count();
    let effective = records
        .iter()
        .filter(during)
        .filter(|r| r.is_write() && r.took_effect())
        .count();
    let busiest = proxy.busiest_seconds(faults_from, faults_to);
    let idle: Vec<String> = records
        .iter()
        .filter(|r| r.received >= faults_to && r.received < idle_to)
        .filter(|r| !r.path.contains(&format!("/tfjobs/{BLOCKED}")))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let seconds = faults_to.duration_since(faults_from).as_secs_f64();
    eprintln!(
        "api faults: {JOBS} jobs finished at {:.1}s; {} requests in {seconds:.1}s, {faulted} \
         with a fault; {attempts} write attempts for {effective} writes that took effect; \
         busiest seconds {:?}; {} requests in the 5 idle seconds; {canonical} jobs with \
         conditions Created, Running, end; children never created: {never_created:?}; \
         {blocked} status writes of the job whose writes always fail",
        converged_at.as_secs_f64(),
        records.iter().filter(during).count(),
        &busiest[..busiest.len().min(5)],
        idle.len()
    );
    assert!(
        problems.is_empty(),
        "{} of {JOBS} jobs differ from their script:\n{}",
        problems.len(),
        explain(&records, &problems, started)
    );
    assert!(
        duplicates.is_empty(),
        "children created other than once:\n{}",
        explain(&records, &duplicates, started)
    );

    // No hot loop. Every write that failed is tried again, and a fault may hide a success (the
    // retry then meets AlreadyExists or NotFound): with 35 % of requests failing, about 1.5
    // attempts per write that took effect are expected; a retry without back-off on a failing
    // job would multiply that.
    assert!(
        attempts as f64 <= 2.5 * effective as f64,
        "{attempts} write attempts for {effective} writes that took effect: retries without back-off"
    );
    // The busiest second. The operator has no client-side rate limit (--kube-api-qps 0), so
    // its first wave for the 60 jobs submitted at once (about 5 creates and a status patch
    // each: ~350 writes) goes out as fast as the apiserver completes them (~100-170/s on this
    // 2-core machine). Even a fast apiserver cannot see more than that whole wave in one
    // second; faults answered by the proxy itself cost nothing, so a retry loop without
    // back-off would go far beyond it. Above 400 requests in a second is a loop, not work.
    assert!(
        busiest.first().copied().unwrap_or(0) <= 400,
        "{} requests in the busiest second: a hot loop",
        busiest[0]
    );
    // The job whose writes always fail is retried with back-off, not in a loop.
    let window = faults_to.duration_since(faults_from);
    if let Err(hot_loop) = check_no_hot_loop(blocked, window) {
        panic!("{hot_loop}");
    }
    // Nothing left to do: at most the three watches re-opened after cuts (20 % of watches cut
    // within 3 s) and their re-lists.
    assert!(
        idle.len() <= 30,
        "{} requests in 5 s with every job finished: {idle:#?}",
        idle.len()
    );
    ctx.teardown().await;
}

/// The negative control of the hot-loop check: the same always-failing job for 20 s, once
/// with the operator's back-off and once with it switched off (fault injection). The check
/// passes the first and must fail the second, or it proves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hot_loop_check_catches_a_missing_backoff() {
    const WINDOW: Duration = Duration::from_secs(12);
    let _serial = SERIAL.lock().await;
    let mut report = Vec::new();
    for backoff in [true, false] {
        let ctx = TestContext::new("hot-loop").await;
        let ns = ctx.namespace.clone();
        let _kubelet = sim_kubelet(&ctx);
        let proxy = FaultProxy::start(control_plane(), 4).await;
        proxy.set_faults(Faults {
            always_500: Some(format!("/namespaces/{ns}/tfjobs/{BLOCKED}/status")),
            ..Faults::default()
        });
        let env: &[(&str, &str)] = if backoff {
            &[]
        } else {
            &[("TFJOB_FAULT_NO_BACKOFF", "1")]
        };
        // Every status change written at once: the batch window would pace even an operator
        // without back-off, hiding the loop this control must show.
        let operator = OperatorBinary::start_with_env(
            "hot-loop",
            &proxy.kubeconfig,
            &[
                format!("--namespace={ns}"),
                "--status-batch-window=0s".into(),
            ],
            env,
        )
        .await;
        submit(&ctx, &blocked_job()).await;
        tokio::time::sleep(WINDOW).await;
        let attempts = status_attempts(&proxy.records(), &ns, BLOCKED);
        let verdict = check_no_hot_loop(attempts, WINDOW);
        report.push(format!(
            "back-off {}: {attempts} attempts in {WINDOW:?}",
            if backoff { "on" } else { "off" }
        ));
        if backoff {
            assert!(verdict.is_ok(), "with back-off: {verdict:?}");
        } else {
            assert!(
                verdict.is_err(),
                "with the back-off switched off the check still passes ({attempts} attempts): \
                 it cannot see a hot loop"
            );
        }
        panic_free(&operator);
        drop(operator);
        ctx.teardown().await;
    }
    eprintln!("hot-loop check: {}", report.join("; "));
}
