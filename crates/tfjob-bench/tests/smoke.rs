//! The benchmark's CI-sized smoke run: `tfjob-bench --smoke` end to end (its own control plane,
//! the Job controller, the operator and the simulated kubelet as processes, the chart), so the
//! benchmark never rots. It checks that every phase produced complete, sane results; it checks
//! no speed: performance targets belong to the benchmark, not to tests.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn num(report: &Value, pointer: &str) -> f64 {
    report
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} missing or not a number in the report"))
}

#[test]
fn smoke_run_produces_a_complete_report_and_chart() {
    let out = std::env::temp_dir().join(format!("tfjob-bench-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let status = Command::new(env!("CARGO_BIN_EXE_tfjob-bench"))
        .arg("--smoke")
        .arg("--out")
        .arg(&out)
        .arg("--logs")
        .arg(out.join("logs"))
        .arg("--operator-bin")
        .arg(test_support::workspace_binary("tfjob-operator"))
        .arg("--sim-kubelet-bin")
        .arg(test_support::workspace_binary("tfjob-sim-kubelet"))
        .status()
        .expect("tfjob-bench runs");
    assert!(
        status.success(),
        "tfjob-bench --smoke failed ({status}); logs in {}",
        out.join("logs").display()
    );

    let text = std::fs::read_to_string(out.join("latest.json")).expect("latest.json written");
    let report: Value = serde_json::from_str(&text).expect("latest.json is JSON");
    let sizes = &report["sizes"];
    let replicas = sizes["replicas"].as_f64().unwrap();
    let jobs = sizes["jobs"].as_f64().unwrap();

    // 1. The bare client created every pod and pair.
    assert_eq!(num(&report, "/bare/pods"), num(&report, "/sizes/bare_pods"));
    assert_eq!(num(&report, "/bare/errors"), 0.0);
    assert!(num(&report, "/bare/pods_per_second") > 0.0);
    assert!(num(&report, "/bare/pair_writes_per_second") > 0.0);

    // 1b. Each kind of request was sent without errors and cost the apiserver CPU; the TFJob
    // writes also on the 1.36.4 CRD apiserver.
    let costs = report["costs"].as_array().expect("costs listed");
    assert_eq!(costs.len(), 13, "{costs:?}");
    for kind in [
        "update Job status",
        "create TFJob (templates preserve-unknown-fields)",
        "patch TFJob status (templates preserve-unknown-fields)",
        "create TFJob (no descriptions)",
        "patch TFJob status (no descriptions)",
        "create TFJob (1.36.4 CRD apiserver)",
        "patch TFJob status (1.36.4 CRD apiserver)",
    ] {
        assert!(
            costs.iter().any(|c| c["kind"] == kind),
            "{kind} in {costs:?}"
        );
    }
    for cost in costs {
        assert_eq!(cost["errors"].as_f64(), Some(0.0), "{cost}");
        assert!(cost["apiserver_cpu_ms"].as_f64().unwrap() > 0.0, "{cost}");
    }

    // 2–3. Every creator created every pod, with positive rates.
    let creators: Vec<&Value> = ["job_controller", "tfjob"]
        .iter()
        .flat_map(|k| report[*k].as_array().expect("creators listed"))
        .collect();
    assert_eq!(
        creators.len(),
        4,
        "2 Job-controller limits, 2 operator modes"
    );
    for creator in &creators {
        let name = creator["name"].as_str().unwrap();
        let expected = creator["jobs"].as_f64().unwrap() * replicas;
        assert_eq!(creator["pods"].as_f64(), Some(expected), "{name}: all pods");
        assert!(creator["pods_per_second"].as_f64().unwrap() > 0.0, "{name}");
        assert!(
            creator["object_writes_per_job"].as_f64().unwrap() > 0.0,
            "{name}"
        );
        assert_eq!(creator["submit_errors"].as_f64(), Some(0.0), "{name}");
        assert!(
            !creator["apiserver_requests"]
                .as_object()
                .unwrap()
                .is_empty(),
            "{name}: apiserver_request_total moved"
        );
    }
    for creator in report["tfjob"].as_array().unwrap() {
        assert_eq!(creator["jobs"].as_f64(), Some(jobs));
        assert_eq!(creator["conflicts"].as_f64(), Some(0.0));
        assert_eq!(creator["reads_after_sync"].as_f64(), Some(0.0));
    }
    let per_job = &report["tfjob"][1];
    assert_eq!(
        per_job["writes_per_job"]["create services"].as_f64(),
        Some(1.0),
        "per-job mode: one Service per job"
    );

    // Every end-to-end creator has a share of its own apiserver-bound cap (the window's
    // requests priced by the cost phase).
    for creator in &creators {
        let window = creator["window_writes_per_job"].as_object().unwrap();
        assert!(window.contains_key("create pods"), "{creator}");
        assert_eq!(
            creator["runs"].as_array().unwrap().len(),
            1,
            "--smoke: 1 repetition"
        );
    }
    let shares: Vec<&Value> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["what"].as_str().unwrap().starts_with("end to end: share"))
        .collect();
    assert_eq!(shares.len(), 2, "a share per operator mode");

    // Backlog: each controller turned every stored parent into pods.
    let backlog = report["backlog"].as_array().expect("the backlog phase ran");
    assert_eq!(
        backlog.len(),
        3,
        "Job controller, operator per-replica and per-job"
    );
    for b in backlog {
        assert_eq!(
            b["pods"].as_f64(),
            Some(num(&report, "/sizes/backlog_jobs") * replicas),
            "{b}"
        );
        assert!(b["pods_per_second"].as_f64().unwrap() > 0.0, "{b}");
        assert!(!b["timeline"]["points"].as_array().unwrap().is_empty());
    }

    // Open loop: every parent at every rate, for both controllers, got all its pods.
    let open = report["open_loop"]
        .as_array()
        .expect("the open-loop phase ran");
    assert_eq!(open.len(), 4, "2 rates × 2 controllers");
    for o in open {
        assert!(o["jobs"].as_f64().unwrap() > 0.0, "{o}");
        assert_eq!(o["complete"], o["jobs"], "{o}");
        assert!(o["p99_ms"].as_f64().unwrap() >= o["p50_ms"].as_f64().unwrap());
        assert!(o["p50_ms"].as_f64().unwrap() > 0.0, "{o}");
    }

    // 3. Latency of every single job was measured.
    for latency in report["latency"].as_array().unwrap() {
        assert_eq!(latency["timeouts"].as_f64(), Some(0.0));
        assert!(latency["p50_ms"].as_f64().unwrap() > 0.0);
        assert!(latency["p99_ms"].as_f64().unwrap() >= latency["p50_ms"].as_f64().unwrap());
    }

    // 4. Every lifecycle reached Succeeded, and its writes and events were counted.
    let lifecycles = report["lifecycle"].as_array().unwrap();
    assert_eq!(lifecycles.len(), 4, "2 modes × (batched, every change)");
    for life in lifecycles {
        assert_eq!(life["succeeded"], life["jobs"], "{life}");
        assert!(
            life["conditions_timed"].as_f64().unwrap() > 0.0,
            "condition delays measured: {life}"
        );
        assert!(
            life["writes_per_job"]["patch tfjobs/status"]
                .as_f64()
                .unwrap()
                > 0.0
        );
        assert!(life["object_writes_per_job"].as_f64().unwrap() > 0.0);
        assert!(life["events_per_job"].as_f64().unwrap() > 0.0);
        assert_eq!(life["conflicts"].as_f64(), Some(0.0));
    }

    // 5–6. Memory, the forced re-list and the no-op reconcile were measured.
    assert!(num(&report, "/memory/idle_rss_kib") > 0.0);
    assert!(num(&report, "/memory/steady_rss_kib") > 0.0);
    assert!(
        num(&report, "/memory/relist_lists") >= 3.0,
        "the re-list happened"
    );
    assert!(num(&report, "/memory/relist_peak_rss_kib") > 0.0);
    assert!(num(&report, "/memory/resync_reconciles") >= num(&report, "/memory/jobs"));
    assert!(num(&report, "/noop/cpu_us_per_reconcile") > 0.0);
    assert_eq!(
        num(&report, "/noop/reconciles"),
        num(&report, "/sizes/micro_jobs") * 3.0
    );

    // 7. Each large job was created completely and its peak RSS read.
    let large = report["large"]["jobs"]
        .as_array()
        .expect("the large phase ran");
    assert_eq!(
        large.len(),
        report["sizes"]["large_jobs"].as_array().unwrap().len()
    );
    for job in large {
        assert!(job["peak_rss_kib"].as_f64().unwrap() > 0.0, "{job}");
        assert!(job["seconds"].as_f64().unwrap() > 0.0, "{job}");
    }
    assert!(
        report["large"]["exponent"]
            .as_f64()
            .is_some_and(f64::is_finite)
    );

    // The targets were evaluated, the table and the chart written.
    assert!(report["targets"].as_array().unwrap().len() >= 20);
    assert!(
        !report["machine"]["kubernetes"].as_str().unwrap().is_empty(),
        "the version read from the apiserver"
    );
    let table = std::fs::read_to_string(out.join("latest.md")).expect("latest.md written");
    assert!(table.contains("| target | wanted | measured | met |"));
    let png = std::fs::read(out.join("pods-over-time.png")).expect("chart written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    for chart in ["backlog-pods-over-time.png", "open-loop-latency.png"] {
        let png = std::fs::read(out.join(chart)).expect("chart written");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{chart}");
    }
    let lines = report["timelines"].as_array().unwrap();
    assert_eq!(lines.len(), 5, "bare, Job controller ×2, operator ×2");

    let _ = std::fs::remove_dir_all(PathBuf::from(&out));
}
