//! The chart itself: CRD copies, version, lint, values schema and NOTES.

use super::*;

#[test]
fn chart_and_kustomize_crds_equal_the_generated_crd() {
    let generated = std::fs::read_to_string(repo_path("crds/kubeflow.org_tfjobs.yaml"))
        .expect("crds/kubeflow.org_tfjobs.yaml");
    for copy in [
        "deploy/helm/tfjob-operator/crds/kubeflow.org_tfjobs.yaml",
        "deploy/kustomize/base/crds/kubeflow.org_tfjobs.yaml",
    ] {
        let text =
            std::fs::read_to_string(repo_path(copy)).unwrap_or_else(|e| panic!("{copy}: {e}"));
        assert!(
            text == generated,
            "{copy} differs from crds/kubeflow.org_tfjobs.yaml (the CRD generated from the Rust \
             types). Regenerate every copy:\n    cargo xtask gen"
        );
    }
    // Helm sees it as the chart's CRD, and kustomize passes it through unchanged.
    let crd: Value = serde_saphyr::from_str(&generated).expect("the CRD parses");
    let from_helm = helm::render_with_crds(&json!({}));
    assert_eq!(
        get(
            &from_helm,
            "CustomResourceDefinition",
            "tfjobs.kubeflow.org"
        ),
        &crd
    );
    let from_kustomize = kustomize::build("deploy/kustomize/base");
    assert_eq!(
        get(
            &from_kustomize,
            "CustomResourceDefinition",
            "tfjobs.kubeflow.org"
        ),
        &crd
    );
}

#[test]
fn chart_version_follows_the_crate() {
    let chart: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(chart_dir().join("Chart.yaml")).expect("Chart.yaml"),
    )
    .expect("Chart.yaml parses");
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        chart["version"], version,
        "Chart.yaml version = Cargo.toml version"
    );
    assert_eq!(
        chart["appVersion"], version,
        "Chart.yaml appVersion = Cargo.toml version"
    );
    let deployment = get(&helm::render(&json!({})), "Deployment", "tfjob-operator").clone();
    assert_eq!(
        container(&deployment)["image"],
        format!("tfjob-operator:{version}")
    );
}

#[test]
fn helm_lint_passes_for_default_and_non_default_values() {
    for values in [
        json!({}),
        json!({ "namespaces": ["team-a", "team-b"] }),
        json!({ "replicas": 2, "leaderElection": { "enabled": true } }),
        json!({ "gangScheduler": { "name": "volcano" } }),
        json!({ "webhook": { "enabled": true, "defaulting": true } }),
        json!({ "webhook": { "enabled": true, "certificates": { "mode": "cert-manager" } } }),
        json!({
            "serviceMonitor": { "enabled": true },
            "prometheusRule": { "enabled": true },
            "grafanaDashboard": { "enabled": true },
        }),
    ] {
        if let Err(report) = helm::lint(&values) {
            panic!("helm lint --strict with {values} failed:\n{report}");
        }
    }
}

#[test]
fn values_schema_rejects_bad_values_with_helms_message() {
    assert_eq!(helm::validate(&json!({})), Ok(()), "the defaults are valid");
    for (values, message) in [
        (
            json!({ "replicas": 2, "leaderElection": { "enabled": false } }),
            "at '/leaderElection/enabled'",
        ),
        (
            json!({ "webhook": { "failurePolicy": "Never" } }),
            "at '/webhook/failurePolicy'",
        ),
        (
            json!({ "webhook": { "certificates": { "mode": "secret" } } }),
            "at '/webhook/certificates/secretName'",
        ),
        (
            json!({ "webhook": { "timeoutSeconds": 60 } }),
            "at '/webhook/timeoutSeconds'",
        ),
        (json!({ "namespaces": ["Team_A"] }), "at '/namespaces/0'"),
        (json!({ "namespaces": ["a", "a"] }), "at '/namespaces'"),
        (
            json!({ "replica": 2 }),
            "additional properties 'replica' not allowed",
        ),
        (json!({ "serviceMode": "per-pod" }), "at '/serviceMode'"),
        (
            json!({ "logging": { "format": "xml" } }),
            "at '/logging/format'",
        ),
        (
            json!({ "leaderElection": { "leaseDuration": "15" } }),
            "at '/leaderElection/leaseDuration'",
        ),
        (json!({ "concurrency": 0 }), "at '/concurrency': minimum"),
        (
            json!({ "gangScheduler": { "name": "Volcano Scheduler" } }),
            "at '/gangScheduler/name'",
        ),
        (
            json!({ "image": { "repository": "" } }),
            "at '/image/repository'",
        ),
        (
            json!({ "prometheusRule": { "stuckPendingFor": "half an hour" } }),
            "at '/prometheusRule/stuckPendingFor'",
        ),
    ] {
        let error = helm::validate(&values).expect_err(&format!("{values} must be rejected"));
        assert!(
            error.contains(message),
            "{values}: expected {message:?} in:\n{error}"
        );
        // Rendering (what helm install runs) refuses them with the same message.
        let error = helm::template_yaml(&values, false).expect_err(&format!("render {values}"));
        assert!(
            error.contains(message),
            "render {values}: expected {message:?} in:\n{error}"
        );
    }
}

#[test]
fn notes_say_where_it_runs_and_what_it_watches() {
    let notes = helm::notes(&json!({}));
    assert!(
        notes.contains("installed in namespace tfjob-system"),
        "{notes}"
    );
    assert!(notes.contains("in all namespaces"), "{notes}");
    assert!(
        notes.contains("tfjob-operator crd | kubectl apply --server-side --force-conflicts -f -"),
        "CRD upgrade hint: {notes}"
    );
    assert!(
        notes.contains("helm test tfjob-operator -n tfjob-system"),
        "the preflight: {notes}"
    );
    let notes = helm::notes_for(
        &json!({
            "namespaces": ["team-a", "team-b"],
            "replicas": 2,
            "leaderElection": { "enabled": true },
            "prometheusRule": { "enabled": true },
            "webhook": { "enabled": false },
        }),
        &helm::PROMETHEUS_OPERATOR,
    );
    assert!(notes.contains("namespaces team-a, team-b"), "{notes}");
    assert!(notes.contains("2 replicas with leader election"), "{notes}");
    assert!(notes.contains("TFJobOperatorDown"), "{notes}");
    assert!(!notes.contains("Admission webhook"), "{notes}");
    let notes = helm::notes(&json!({}));
    assert!(
        notes.contains("Admission webhook: ValidatingWebhookConfiguration tfjob-operator-validator (failurePolicy Fail)"),
        "{notes}"
    );
}
