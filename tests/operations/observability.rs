//! Every metric after a scripted lifecycle, and the JSON log format.

use super::*;

/// A scripted lifecycle, then every metric of docs/metrics.md's table scraped over HTTP from the
/// running binary with its exact value: one job succeeds, one fails, one restarts once (exit
/// code 137 under `ExitCode`), one succeeds and is deleted by its TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_has_the_right_value_after_a_scripted_lifecycle() {
    let _shared = EXCLUSIVE.read().await;
    let ctx = TestContext::new("metrics").await;
    let ns = ctx.namespace.as_str();
    let operator = start_operator("metrics", &[&format!("--namespace={ns}")], &[]).await;
    let _kubelet = sim_kubelet(&ctx);
    let exit_3 = format!("{FAST}, sim.tfjob-operator.dev/exit-code: '3'");
    let oom_once = format!(
        "{FAST}, sim.tfjob-operator.dev/fail-attempts: '1', sim.tfjob-operator.dev/reason: OOMKilled"
    );
    create(&ctx, ns, &job("ok", &[], json!({}), 1, "Never", FAST)).await;
    create(&ctx, ns, &job("bad", &[], json!({}), 1, "Never", &exit_3)).await;
    create(
        &ctx,
        ns,
        &job("flaky", &[], json!({}), 1, "ExitCode", &oom_once),
    )
    .await;
    create(
        &ctx,
        ns,
        &job(
            "ttl",
            &[],
            json!({"ttlSecondsAfterFinished": 1}),
            1,
            "Never",
            FAST,
        ),
    )
    .await;
    await_job(&ctx, ns, "ok", "Succeeded", secs(30)).await;
    await_job(&ctx, ns, "bad", "Failed", secs(30)).await;
    let flaky = await_job(&ctx, ns, "flaky", "Succeeded", secs(30)).await;
    assert_eq!(
        flaky.status.expect("status").replica_statuses["Worker"].restarts,
        1
    );
    await_deleted(&ctx.api::<TFJob>(), "ttl", secs(30)).await;

    let job_labels = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        let mut labels = vec![("job_namespace", ns), ("framework", "tensorflow")];
        labels.extend_from_slice(extra);
        labels
    };
    let expected: Vec<Expected> = vec![
        ("training_operator_jobs_created_total", job_labels(&[]), 4.0),
        (
            "training_operator_jobs_successful_total",
            job_labels(&[]),
            3.0,
        ),
        ("training_operator_jobs_failed_total", job_labels(&[]), 1.0),
        (
            "training_operator_jobs_restarted_total",
            job_labels(&[]),
            1.0,
        ),
        ("training_operator_jobs_deleted_total", job_labels(&[]), 1.0),
        // One pod per job plus flaky's replacement; flaky's failed pod deleted; one Service each.
        ("tfjob_operator_pods_created_total", vec![], 5.0),
        ("tfjob_operator_pods_deleted_total", vec![], 1.0),
        ("tfjob_operator_services_created_total", vec![], 4.0),
        ("tfjob_operator_services_deleted_total", vec![], 0.0),
        (
            "tfjob_operator_jobs",
            vec![("job_namespace", ns), ("state", "Succeeded")],
            2.0,
        ),
        (
            "tfjob_operator_jobs",
            vec![("job_namespace", ns), ("state", "Failed")],
            1.0,
        ),
        ("tfjob_operator_jobs", vec![], 3.0),
        ("tfjob_operator_is_leader", vec![], 1.0),
        (
            "tfjob_operator_build_info",
            vec![("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        ),
        ("tfjob_operator_reconcile_errors_total", vec![], 0.0),
        ("tfjob_operator_watch_restarts_total", vec![], 0.0),
        // The initial lists of TFJobs, pods and Services (one page each) and the CRD probe.
        (
            "tfjob_operator_api_requests_total",
            vec![("verb", "list"), ("code", "200")],
            3.0,
        ),
        (
            "tfjob_operator_api_requests_total",
            vec![("verb", "list_metadata"), ("code", "200")],
            1.0,
        ),
    ];
    let scrape = wait_for(secs(30), "the expected metric values", || async {
        let scrape = operator.scrape().await;
        let wrong: Vec<String> = expected
            .iter()
            .filter(|(name, labels, value)| sample(&scrape, name, labels) != Some(*value))
            .map(|(name, labels, value)| {
                format!(
                    "{name}{labels:?}: want {value}, got {:?}",
                    sample(&scrape, name, labels)
                )
            })
            .collect();
        if wrong.is_empty() {
            Ok(scrape)
        } else {
            Err(wrong.join("; "))
        }
    })
    .await;

    // The allocator is jemalloc (src/main.rs): its live heap and resident pages are exported.
    let heap = |state| sample(&scrape, "tfjob_operator_heap_bytes", &[("state", state)]);
    let (allocated, resident) = (heap("allocated"), heap("resident"));
    assert!(
        allocated.is_some_and(|a| a > 0.0) && resident >= allocated,
        "tfjob_operator_heap_bytes: allocated {allocated:?}, resident {resident:?}"
    );

    // Labelled families are exported before their first increment, at 0, for every known label.
    for kind in ["child_write", "status_write", "job_delete", "undecodable"] {
        assert_eq!(
            sample(
                &scrape,
                "tfjob_operator_reconcile_errors_total",
                &[("kind", kind)]
            ),
            Some(0.0)
        );
    }
    for resource in ["tfjobs", "pods", "services"] {
        assert_eq!(
            sample(
                &scrape,
                "tfjob_operator_watch_restarts_total",
                &[("resource", resource)]
            ),
            Some(0.0)
        );
    }
    let reconciles = scrape.sum("tfjob_operator_reconcile_total", &[]);
    assert!(reconciles >= 4.0, "{reconciles} reconciles");
    let observed = scrape.sum("tfjob_operator_reconcile_duration_seconds_count", &[]);
    assert!(
        observed >= 4.0 && observed <= reconciles,
        "{observed} durations for {reconciles} reconciles"
    );
    assert_eq!(
        sample(
            &scrape,
            "tfjob_operator_reconcile_duration_seconds_bucket",
            &[("le", "+Inf")]
        ),
        Some(observed)
    );
    assert!(scrape.sum("tfjob_operator_reconcile_duration_seconds_sum", &[]) > 0.0);
    // Writes by verb, each counted once with its status code: pods and Services created (plus
    // events), flaky's pod and the TTL'd job deleted, statuses patched.
    let api = |verb: &str, code: &str| {
        scrape.sum(
            "tfjob_operator_api_requests_total",
            &[("verb", verb), ("code", code)],
        )
    };
    assert!(
        api("create", "201") >= 9.0,
        "{:?}",
        scrape.series("tfjob_operator_api_requests_total")
    );
    assert_eq!(
        api("delete", "200"),
        2.0,
        "{:?}",
        scrape.series("tfjob_operator_api_requests_total")
    );
    assert!(api("watch", "200") >= 3.0);
    assert!(
        api("patch_status", "200") >= 4.0,
        "{:?}",
        scrape.series("tfjob_operator_api_requests_total")
    );
    // controller-runtime's and client-go's names, for dashboards built for upstream.
    let runtime = |name: &str, labels: &[(&str, &str)]| {
        let mut all = vec![("controller", "tfjob-controller")];
        all.extend_from_slice(labels);
        scrape.sum(name, &all)
    };
    // Counted when they end; a reconcile may be running at the scrape.
    let active = runtime("controller_runtime_active_workers", &[]);
    assert_eq!(
        runtime("controller_runtime_reconcile_total", &[]) + active,
        reconciles,
        "every reconcile, by result: {:?}",
        scrape.series("controller_runtime_reconcile_total")
    );
    assert_eq!(
        runtime("controller_runtime_reconcile_total", &[("result", "error")]),
        0.0
    );
    assert!(
        runtime(
            "controller_runtime_reconcile_total",
            &[("result", "success")]
        ) >= 4.0
    );
    assert!(
        runtime(
            "controller_runtime_reconcile_total",
            &[("result", "requeue_after")]
        ) >= 1.0,
        "the TTL job set a timer"
    );
    assert_eq!(
        runtime("controller_runtime_reconcile_errors_total", &[]),
        0.0
    );
    assert_eq!(
        runtime("controller_runtime_reconcile_time_seconds_count", &[]),
        observed
    );
    assert_eq!(
        runtime("controller_runtime_max_concurrent_reconciles", &[]),
        32.0
    );
    let queue = |name: &str| scrape.sum(name, &[("name", "tfjob-controller")]);
    let adds = queue("workqueue_adds_total");
    assert!(
        adds >= 4.0 && adds <= reconciles,
        "{adds} adds, {reconciles} reconciles"
    );
    assert_eq!(queue("workqueue_depth"), 0.0, "nothing left waiting");
    assert!(queue("workqueue_queue_duration_seconds_count") >= 4.0);
    assert_eq!(queue("workqueue_work_duration_seconds_count"), observed);
    assert_eq!(queue("workqueue_retries_total"), 0.0);
    assert_eq!(
        scrape.sum("rest_client_requests_total", &[]),
        scrape.sum("tfjob_operator_api_requests_total", &[]),
        "client-go's request counter counts the same requests"
    );
    assert_eq!(
        scrape.sum(
            "rest_client_requests_total",
            &[("method", "POST"), ("code", "201")]
        ),
        api("create", "201")
    );
    assert!(scrape.sum("process_resident_memory_bytes", &[]) > 0.0);
    // Whole seconds in the prometheus crate: a short run may still show 0.
    assert!(!scrape.series("process_cpu_seconds_total").is_empty());
    assert!(scrape.sum("process_start_time_seconds", &[]) > 0.0);
    assert!(
        scrape.series("leader_election_master_status").is_empty(),
        "no Lease without --leader-elect"
    );
    // Core/v1 clients find the events by their source, as they find upstream's.
    let by_source: Api<k8s_openapi::api::core::v1::Event> = ctx.api();
    let sourced = by_source
        .list(&ListParams::default().fields("source=tfjob-controller"))
        .await
        .expect("list events by source");
    assert!(
        sourced.items.len() >= 4,
        "events with source tfjob-controller: {}",
        sourced.items.len()
    );

    // The same writes from the apiserver's side: the counters match the audit log.
    let writes = operator_writes(ns);
    let count = |verb: &str, resource: &str| {
        writes
            .iter()
            .filter(|w| w.0 == verb && w.1 == resource && w.2.is_empty())
            .count() as f64
    };
    assert_eq!(count("create", "pods"), 5.0, "{writes:?}");
    assert_eq!(count("delete", "pods"), 1.0, "{writes:?}");
    assert_eq!(count("create", "services"), 4.0, "{writes:?}");
    assert_eq!(count("delete", "tfjobs"), 1.0, "{writes:?}");
    ctx.teardown().await;
}

/// `--log-format json --log-level tfjob_operator=debug`: one flat JSON object per line; lines of
/// a reconcile carry the job's `namespace` and `name`; a failed reconcile is a warning naming
/// the job, the error and the retry delay (docs/operations.md, "Reading the logs").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_namespace_and_name_on_reconcile_lines() {
    let _shared = EXCLUSIVE.read().await;
    let ctx = TestContext::new("logs").await;
    let ns = ctx.namespace.as_str();
    let mut operator = start_operator(
        "logs",
        // JSON logs: OperatorBinary always passes --log-format=json.
        &[
            &format!("--namespace={ns}"),
            "--log-level=tfjob_operator=debug",
        ],
        &[],
    )
    .await;
    create(&ctx, ns, &job("good", &[], json!({}), 1, "Never", "")).await;
    // The apiserver rejects this job's pod (an environment variable name cannot start with a
    // digit), so its reconcile fails and is retried.
    let mut bad =
        serde_json::to_value(job("bad-env", &[], json!({}), 1, "Never", "")).expect("json");
    bad["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "1BAD", "value": "x"}]);
    create(&ctx, ns, &serde_json::from_value(bad).expect("a TFJob")).await;
    await_job(&ctx, ns, "good", "Created", secs(30)).await;
    wait_for(secs(30), "a failed reconcile of bad-env", || async {
        operator
            .log_lines()
            .iter()
            .any(|l| message(l) == "reconcile failed")
    })
    .await;
    assert!(operator.terminate(secs(10)).await.success());

    let text = operator.log_text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for line in &lines {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(line[key].is_string(), "no {key} in {line}");
        }
        let in_reconcile = line["spans"]
            .as_array()
            .is_some_and(|spans| spans.iter().any(|s| s == "reconcile"));
        if in_reconcile {
            assert_eq!(line["namespace"], ns, "{line}");
            assert!(line["name"].is_string(), "{line}");
        }
    }
    let plan = lines
        .iter()
        .find(|l| message(l) == "applying plan" && l["name"] == "good")
        .unwrap_or_else(|| panic!("no plan logged for good:\n{text}"));
    assert_eq!(plan["level"], "DEBUG");
    assert_eq!(plan["namespace"], ns);
    assert_eq!(plan["create_pods"], 1);
    // The children go first; the Created status follows within the status batch window.
    assert_eq!(plan["status"], false);
    assert!(
        lines
            .iter()
            .any(|l| message(l) == "applying plan" && l["name"] == "good" && l["status"] == true),
        "a later plan writes good's status:\n{text}"
    );
    let failed = lines
        .iter()
        .find(|l| message(l) == "reconcile failed")
        .expect("a failed reconcile");
    assert_eq!(failed["level"], "WARN");
    assert_eq!(failed["job"], format!("{ns}/bad-env"), "{failed}");
    assert!(
        failed["error"].as_str().is_some_and(|e| e.contains("1BAD")),
        "{failed}"
    );
    assert!(failed["retry_in"].is_string(), "{failed}");
    assert_eq!(lines.last().map(message), Some("stopped cleanly"));
    ctx.teardown().await;
}
