//! Tests of the metrics: names, labels, pre-registered series and the job-state collector.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

fn metrics() -> Metrics {
    Metrics::new().expect("metrics register")
}

/// The exposition lines for one metric name (samples only, no HELP/TYPE).
fn samples(text: &str, name: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .map(str::to_string)
        .collect()
}

fn encode(m: &Metrics) -> String {
    m.encode().expect("encode")
}

#[test]
fn upstream_job_counters_keep_names_and_labels() {
    let m = metrics();
    m.job_created("team-a");
    m.job_created("team-a");
    m.job_deleted("team-a");
    m.job_succeeded("team-b");
    m.job_failed("team-c");
    m.job_restarted("team-a");
    m.job_restarted("team-a");
    m.job_restarted("team-a");
    let text = encode(&m);
    for (name, value) in [
        ("training_operator_jobs_created_total", 2),
        ("training_operator_jobs_deleted_total", 1),
        ("training_operator_jobs_restarted_total", 3),
    ] {
        assert_eq!(
            samples(&text, name),
            [format!(
                "{name}{{framework=\"tensorflow\",job_namespace=\"team-a\"}} {value}"
            )],
            "{text}"
        );
    }
    assert_eq!(
        samples(&text, "training_operator_jobs_successful_total"),
        [
            "training_operator_jobs_successful_total{framework=\"tensorflow\",job_namespace=\"team-b\"} 1"
        ]
    );
    assert_eq!(
        samples(&text, "training_operator_jobs_failed_total"),
        [
            "training_operator_jobs_failed_total{framework=\"tensorflow\",job_namespace=\"team-c\"} 1"
        ]
    );
    assert!(text.contains("# TYPE training_operator_jobs_created_total counter"));
}

#[test]
fn job_counters_appear_only_after_first_increment() {
    let text = encode(&metrics());
    assert!(samples(&text, "training_operator_jobs_created_total").is_empty());
}

#[test]
fn error_kinds_and_started_watches_are_exported_at_zero() {
    let m = metrics();
    m.declare_reconcile_errors(["child_write", "undecodable"]);
    let text = encode(&m);
    let errors = samples(&text, "tfjob_operator_reconcile_errors_total");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().all(|s| s.ends_with(" 0")), "{errors:?}");
    assert!(samples(&text, "tfjob_operator_watch_restarts_total").is_empty());
    m.watching("tfjobs");
    assert_eq!(
        samples(&encode(&m), "tfjob_operator_watch_restarts_total"),
        ["tfjob_operator_watch_restarts_total{resource=\"tfjobs\"} 0"]
    );
}

#[test]
fn reconcile_metrics() {
    let m = metrics();
    m.declare_reconcile_errors(["child_write", "status_write", "job_delete", "undecodable"]);
    let timer = m.reconcile_timer("ns/job");
    drop(timer);
    m.reconcile_timer("ns/job").discard();
    m.reconcile_error("child_write");
    m.reconcile_error("child_write");
    m.reconcile_error("status_write");
    let text = encode(&m);
    assert_eq!(
        samples(&text, "tfjob_operator_reconcile_total"),
        ["tfjob_operator_reconcile_total 2"]
    );
    assert_eq!(
        samples(&text, "tfjob_operator_reconcile_errors_total"),
        [
            "tfjob_operator_reconcile_errors_total{kind=\"child_write\"} 2",
            "tfjob_operator_reconcile_errors_total{kind=\"job_delete\"} 0",
            "tfjob_operator_reconcile_errors_total{kind=\"status_write\"} 1",
            "tfjob_operator_reconcile_errors_total{kind=\"undecodable\"} 0",
        ]
    );
    // Only the first timer was recorded; the discarded one was not.
    assert_eq!(
        samples(&text, "tfjob_operator_reconcile_duration_seconds_count"),
        ["tfjob_operator_reconcile_duration_seconds_count 1"]
    );
    let buckets = samples(&text, "tfjob_operator_reconcile_duration_seconds_bucket");
    assert_eq!(buckets.len(), RECONCILE_BUCKETS.len() + 1, "{buckets:?}");
    assert!(buckets[0].contains("le=\"0.00005\""), "{}", buckets[0]);
    assert!(buckets[buckets.len() - 2].contains("le=\"10\""));
    assert!(text.contains("# TYPE tfjob_operator_reconcile_duration_seconds histogram"));
}

#[test]
fn child_write_counters() {
    let m = metrics();
    m.pods_created(4);
    m.pods_created(1);
    m.pods_deleted(2);
    m.services_created(3);
    m.services_deleted(1);
    let text = encode(&m);
    assert_eq!(
        samples(&text, "tfjob_operator_pods_created_total"),
        ["tfjob_operator_pods_created_total 5"]
    );
    assert_eq!(
        samples(&text, "tfjob_operator_pods_deleted_total"),
        ["tfjob_operator_pods_deleted_total 2"]
    );
    assert_eq!(
        samples(&text, "tfjob_operator_services_created_total"),
        ["tfjob_operator_services_created_total 3"]
    );
    assert_eq!(
        samples(&text, "tfjob_operator_services_deleted_total"),
        ["tfjob_operator_services_deleted_total 1"]
    );
}

#[test]
fn watch_api_leader_and_build_info() {
    let m = metrics();
    m.watch_restarted("pods");
    m.watch_restarted("pods");
    m.api_request("list", Some(200));
    m.api_request("create", Some(409));
    m.api_request("create", Some(409));
    m.api_request("watch", None);
    let text = encode(&m);
    assert_eq!(
        samples(&text, "tfjob_operator_watch_restarts_total"),
        ["tfjob_operator_watch_restarts_total{resource=\"pods\"} 2"]
    );
    assert_eq!(
        samples(&text, "tfjob_operator_api_requests_total"),
        [
            "tfjob_operator_api_requests_total{code=\"200\",verb=\"list\"} 1",
            "tfjob_operator_api_requests_total{code=\"409\",verb=\"create\"} 2",
            "tfjob_operator_api_requests_total{code=\"error\",verb=\"watch\"} 1",
        ]
    );
    assert_eq!(
        samples(&text, "tfjob_operator_is_leader"),
        ["tfjob_operator_is_leader 0"]
    );
    m.set_leader(true);
    assert_eq!(
        samples(&encode(&m), "tfjob_operator_is_leader"),
        ["tfjob_operator_is_leader 1"]
    );
    m.set_leader(false);
    assert_eq!(
        samples(&encode(&m), "tfjob_operator_is_leader"),
        ["tfjob_operator_is_leader 0"]
    );
    assert_eq!(
        samples(&text, "tfjob_operator_build_info"),
        [format!(
            "tfjob_operator_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )]
    );
}

#[test]
fn job_state_gauge_is_computed_at_scrape_time_and_reset() {
    let m = metrics();
    assert!(
        samples(&encode(&m), "tfjob_operator_jobs").is_empty(),
        "no source, no series"
    );

    let jobs = Arc::new(Mutex::new(vec![
        sample("a", "Running", None),
        sample("a", "Running", None),
        sample("a", "Pending", Some(600.0)),
        sample("b", "Succeeded", None),
    ]));
    let calls = Arc::new(AtomicUsize::new(0));
    let (source_jobs, source_calls) = (Arc::clone(&jobs), Arc::clone(&calls));
    m.set_job_state_source(move || {
        source_calls.fetch_add(1, Ordering::SeqCst);
        source_jobs.lock().expect("jobs").clone()
    });

    let text = encode(&m);
    assert_eq!(
        samples(&text, "tfjob_operator_jobs"),
        [
            "tfjob_operator_jobs{job_namespace=\"a\",state=\"Pending\"} 1",
            "tfjob_operator_jobs{job_namespace=\"a\",state=\"Running\"} 2",
            "tfjob_operator_jobs{job_namespace=\"b\",state=\"Succeeded\"} 1",
        ]
    );
    assert!(text.contains("# TYPE tfjob_operator_jobs gauge"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The oldest waiting job's age: namespace a's Pending job, created 600 s ago.
    let oldest = samples(&text, "tfjob_operator_oldest_waiting_job_seconds");
    assert_eq!(oldest.len(), 1, "{oldest:?}");
    let age: f64 = oldest[0]
        .strip_prefix("tfjob_operator_oldest_waiting_job_seconds{job_namespace=\"a\"} ")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{oldest:?}"));
    assert!((599.0..700.0).contains(&age), "{age}");

    // Namespace b's job is gone and a's jobs moved on: stale series must vanish.
    *jobs.lock().expect("jobs") = vec![sample("a", "Succeeded", None)];
    assert_eq!(
        samples(&encode(&m), "tfjob_operator_jobs"),
        ["tfjob_operator_jobs{job_namespace=\"a\",state=\"Succeeded\"} 1"]
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(
        samples(&encode(&m), "tfjob_operator_oldest_waiting_job_seconds").is_empty(),
        "no series once nothing waits"
    );
}

/// A namespace's job counters exist at 0 from the first scrape that sees one of its jobs, so
/// that its first failure is an increase (a series born at 1 shows none).
#[test]
fn job_counters_start_at_zero_for_every_namespace_with_jobs() {
    let m = metrics();
    m.set_job_state_source(|| vec![sample("team-a", "Created", None)]);
    let _ = encode(&m);
    let text = encode(&m);
    for name in [
        "training_operator_jobs_failed_total",
        "training_operator_jobs_successful_total",
        "training_operator_jobs_restarted_total",
        "training_operator_jobs_created_total",
        "training_operator_jobs_deleted_total",
    ] {
        assert_eq!(
            samples(&text, name),
            [format!(
                "{name}{{framework=\"tensorflow\",job_namespace=\"team-a\"}} 0"
            )],
            "{name}"
        );
    }
    m.job_failed("team-a");
    assert_eq!(
        samples(&encode(&m), "training_operator_jobs_failed_total"),
        [
            "training_operator_jobs_failed_total{framework=\"tensorflow\",job_namespace=\"team-a\"} 1"
        ]
    );
}

/// A job as the scrape-time source reports it; `waiting_for` seconds before now, when waiting.
fn sample(namespace: &str, state: &str, waiting_for: Option<f64>) -> JobSample {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    JobSample {
        namespace: namespace.into(),
        state: state.into(),
        waiting_since: waiting_for.map(|ago| now - ago),
    }
}

#[test]
fn clones_share_one_registry() {
    let m = metrics();
    let clone = m.clone();
    clone.pods_created(1);
    assert_eq!(
        samples(&encode(&m), "tfjob_operator_pods_created_total"),
        ["tfjob_operator_pods_created_total 1"]
    );
}

#[test]
fn instances_are_independent() {
    let (a, b) = (metrics(), metrics());
    a.pods_created(1);
    assert_eq!(
        samples(&encode(&b), "tfjob_operator_pods_created_total"),
        ["tfjob_operator_pods_created_total 0"]
    );
}
