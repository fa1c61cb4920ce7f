//! ServiceMonitor, PrometheusRule and dashboard use the operator's metric names.

use super::*;

/// Every metric name the operator exports (each metric touched once so that labelled ones
/// appear), with the histogram's series suffixes.
fn operator_metric_names() -> BTreeSet<String> {
    let metrics = Metrics::new().expect("metrics");
    metrics.job_created("ns");
    metrics.job_deleted("ns");
    metrics.job_succeeded("ns");
    metrics.job_failed("ns");
    metrics.job_restarted("ns");
    drop(metrics.reconcile_timer("ns/job"));
    metrics.reconcile_error("child_write");
    metrics.pods_created(1);
    metrics.pods_deleted(1);
    metrics.services_created(1);
    metrics.services_deleted(1);
    metrics.watch_restarted("pods");
    metrics.api_request("list", Some(200));
    metrics.set_leader(true);
    metrics.set_lease_status("tfjob-operator.kubeflow.org", true);
    metrics.rest_request("127.0.0.1:6443", "GET", Some(200));
    metrics.reconcile_queued("ns/job");
    metrics.set_job_state_source(|| {
        vec![tfjob_operator::ops::JobSample {
            namespace: "ns".into(),
            state: "Created".into(),
            waiting_since: Some(0.0),
        }]
    });
    let text = metrics.encode().expect("metrics encode");
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            names.insert(name.to_string());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    names
}

/// The operator's metric names used in a PromQL expression.
fn metrics_used(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("training_operator_") || w.starts_with("tfjob_operator_"))
        .map(String::from)
        .collect()
}

#[test]
fn monitoring_objects_use_the_operators_metric_names() {
    let known = operator_metric_names();
    assert!(
        known.contains("training_operator_jobs_failed_total"),
        "{known:?}"
    );
    let objs = helm::render_for(
        &json!({
            "serviceMonitor": { "enabled": true },
            "prometheusRule": { "enabled": true },
            "grafanaDashboard": { "enabled": true },
        }),
        &helm::PROMETHEUS_OPERATOR,
    );

    // ServiceMonitor → the metrics Service, by its labels and port name.
    let monitor = one(&objs, "ServiceMonitor");
    let service = get(&objs, "Service", "tfjob-operator-metrics");
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("selector")
    {
        assert_eq!(
            &service["metadata"]["labels"][key], value,
            "ServiceMonitor selects the Service by {key}"
        );
    }
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");

    // PrometheusRule: the seven alerts, on metrics that exist.
    let rule = one(&objs, "PrometheusRule");
    let alerts = rule["spec"]["groups"][0]["rules"]
        .as_array()
        .expect("rules");
    let names: Vec<&str> = alerts.iter().filter_map(|a| a["alert"].as_str()).collect();
    assert_eq!(
        names,
        [
            "TFJobOperatorDown",
            "TFJobOperatorNoLeader",
            "TFJobOperatorReconcileErrors",
            "TFJobOperatorAPIErrors",
            "TFJobOperatorAPIThrottled",
            "TFJobsFailing",
            "TFJobsStuckPending",
        ]
    );
    let selector = r#"namespace="tfjob-system",service="tfjob-operator-metrics""#;
    for alert in alerts {
        let expr = alert["expr"].as_str().expect("expr");
        assert!(
            expr.contains(selector),
            "{} selects the operator's series: {expr}",
            alert["alert"]
        );
        for metric in metrics_used(expr) {
            assert!(
                known.contains(&metric),
                "{}: unknown metric {metric}",
                alert["alert"]
            );
        }
        assert!(alert["annotations"]["description"].is_string());
        assert!(alert["labels"]["severity"].is_string());
    }
    for (alert, expr) in alerts.iter().zip([
        "absent(up{",
        "tfjob_operator_is_leader",
        "tfjob_operator_reconcile_errors_total",
        r#"code=~"5..|error""#,
        r#"code="429""#,
        "training_operator_jobs_failed_total",
        "tfjob_operator_oldest_waiting_job_seconds",
    ]) {
        assert!(
            alert["expr"].as_str().unwrap_or("").contains(expr),
            "{}: {}",
            alert["alert"],
            alert["expr"]
        );
    }

    // The dashboard: valid JSON whose every query uses existing metrics.
    let config_map = one(&objs, "ConfigMap");
    assert_eq!(config_map["metadata"]["labels"]["grafana_dashboard"], "1");
    let dashboard: Value = serde_json::from_str(
        config_map["data"]["tfjob-operator.json"]
            .as_str()
            .expect("dashboard JSON"),
    )
    .expect("the dashboard is JSON");
    let mut queried = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {} has queries", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().expect("expr");
            let used = metrics_used(expr);
            assert!(
                !used.is_empty(),
                "panel {}: {expr} uses an operator metric",
                panel["title"]
            );
            for metric in used {
                assert!(
                    known.contains(&metric),
                    "panel {}: unknown metric {metric}",
                    panel["title"]
                );
                queried.insert(metric);
            }
        }
    }
    // Every metric of the operator's own families is on the dashboard (histogram through
    // _bucket); the controller-runtime, client-go and process names are served for dashboards
    // built for upstream, not for this one.
    let missing: Vec<&String> = known
        .iter()
        .filter(|m| m.starts_with("training_operator_") || m.starts_with("tfjob_operator_"))
        .filter(|m| !queried.contains(*m) && !m.ends_with("_sum") && !m.ends_with("_count"))
        .filter(|m| !(m.ends_with("_seconds") && queried.contains(&format!("{m}_bucket"))))
        .collect();
    assert!(
        missing.is_empty(),
        "metrics not on the dashboard: {missing:?}"
    );
}
