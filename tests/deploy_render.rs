//! The Helm chart and the kustomize trees under `deploy/`, rendered by the real engines (Helm 4
//! through hack/helm/helm.py, kubectl's kustomize) and checked object by object: least-privilege
//! RBAC, the restricted pod, flags the operator accepts, monitoring on real metric names, the
//! values schema, chart ↔ kustomize equality, the CRD copies, and the Dockerfile. No cluster.

use test_support::deploy;

use std::collections::BTreeSet;

use clap::Parser;
use serde_json::{Value, json};

use deploy::objects::{self, all, args, container, get, ids, normalised, one, rules};
use deploy::{NAMESPACE, chart_dir, helm, kustomize, repo_path};
use tfjob_operator::config::RunArgs;
use tfjob_operator::ops::Metrics;

/// The operator's rules in each namespace it watches (see "tfjob-operator.rules").
const OPERATOR_RULES: &[&str] = &[
    "core/pods: create,delete,get,list,patch,watch",
    "core/services: create,delete,get,list,patch,watch",
    "events.k8s.io/events: create,patch",
    "kubeflow.org/tfjobs: delete,list,watch",
    "kubeflow.org/tfjobs/status: patch",
];

const LEASE: &str = "1ca428e5.training-operator.kubeflow.org";

fn sorted(lines: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Invariants of every render: no wildcard, no secrets, no verbs outside what the operator
/// uses, no non-resource URLs.
fn assert_least_privilege(objs: &[Value]) {
    let allowed_verbs = [
        "create", "delete", "get", "list", "patch", "update", "watch",
    ];
    for role in objs
        .iter()
        .filter(|o| matches!(objects::kind(o), "Role" | "ClusterRole"))
    {
        for rule in role["rules"].as_array().expect("rules") {
            let id = objects::id(role);
            assert!(rule.get("nonResourceURLs").is_none(), "{id}: {rule}");
            for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                assert!(
                    !objects::strings(&rule[field])
                        .iter()
                        .any(|s| s.contains('*')),
                    "{id} has a wildcard in {field}: {rule}"
                );
            }
            assert!(
                !objects::strings(&rule["resources"])
                    .iter()
                    .any(|r| r.starts_with("secrets")),
                "{id} grants secrets: {rule}"
            );
            for verb in objects::strings(&rule["verbs"]) {
                assert!(allowed_verbs.contains(&verb.as_str()), "{id}: verb {verb}");
            }
            // update exists only for the one Lease, by name.
            if objects::strings(&rule["verbs"]).contains(&"update".to_string()) {
                assert_eq!(
                    objects::strings(&rule["resources"]),
                    ["leases"],
                    "{id}: {rule}"
                );
                assert_eq!(
                    objects::strings(&rule["resourceNames"]).len(),
                    1,
                    "{id}: {rule}"
                );
            }
        }
    }
}

/// The Deployment's flags, parsed and validated by the operator's own command line.
fn parse_flags(deployment: &Value) -> RunArgs {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }
    let flags = args(deployment);
    let cli =
        Cli::try_parse_from(std::iter::once("tfjob-operator".to_string()).chain(flags.clone()))
            .unwrap_or_else(|e| {
                panic!("the operator rejects the Deployment's args {flags:?}:\n{e}")
            });
    cli.run
        .validate()
        .unwrap_or_else(|e| panic!("the operator rejects the Deployment's args {flags:?}: {e}"));
    cli.run
}

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
fn default_render_is_cluster_wide_with_exactly_the_operators_rules() {
    let objs = helm::render(&json!({}));
    assert_eq!(
        ids(&objs),
        [
            "ClusterRole tfjob-operator",
            "ClusterRoleBinding tfjob-operator",
            "Deployment tfjob-system/tfjob-operator",
            "Service tfjob-system/tfjob-operator-metrics",
            "ServiceAccount tfjob-system/tfjob-operator",
        ]
    );
    assert_least_privilege(&objs);
    assert_eq!(rules(one(&objs, "ClusterRole")), sorted(OPERATOR_RULES));
    let binding = one(&objs, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], "tfjob-operator");
    assert_eq!(
        binding["subjects"],
        json!([{ "kind": "ServiceAccount", "name": "tfjob-operator", "namespace": NAMESPACE }])
    );
    let deployment = one(&objs, "Deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        "tfjob-operator"
    );
    let flags = parse_flags(deployment);
    assert!(
        flags.watch.namespaces.is_empty(),
        "all namespaces by default"
    );
    assert!(!flags.leader.leader_elect);
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(
        deployment["spec"]["strategy"]["type"], "Recreate",
        "no overlap without a Lease"
    );

    // The metrics Service: scrape annotations, the container's metrics port.
    let service = one(&objs, "Service");
    let annotations = &service["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    assert_eq!(annotations["prometheus.io/port"], "8080");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
    assert_eq!(
        service["spec"]["selector"], deployment["spec"]["selector"]["matchLabels"],
        "the Service selects the operator's pods"
    );
}

#[test]
fn deployment_runs_restricted_with_probes_and_the_downward_api() {
    let objs = helm::render(&json!({}));
    let deployment = one(&objs, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let c = container(deployment);

    // Restricted Pod Security Standard.
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));

    // Probes on the ports the flags bind.
    let flags = parse_flags(deployment);
    assert_eq!(
        flags.servers.metrics_bind_address.to_string(),
        "0.0.0.0:8080"
    );
    assert_eq!(
        flags.servers.health_probe_bind_address.to_string(),
        "0.0.0.0:8081"
    );
    let ports: Vec<(String, i64)> = c["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").into(),
                p["containerPort"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(ports, [("metrics".into(), 8080), ("health".into(), 8081)]);
    assert_eq!(
        c["livenessProbe"]["httpGet"],
        json!({ "path": "/healthz", "port": "health" })
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"],
        json!({ "path": "/readyz", "port": "health" })
    );

    // Requests and a memory limit (no CPU limit: throttling only slows reconciles down).
    let resources = &c["resources"];
    for key in ["requests.cpu", "requests.memory", "limits.memory"] {
        let (a, b) = key.split_once('.').expect("key");
        assert!(
            resources[a][b].is_string(),
            "resources.{key} is set: {resources}"
        );
    }

    // POD_NAME and POD_NAMESPACE from the downward API.
    let env = &c["env"];
    assert_eq!(
        env,
        &json!([
            { "name": "POD_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } },
            { "name": "POD_NAMESPACE", "valueFrom": { "fieldRef": { "fieldPath": "metadata.namespace" } } },
        ])
    );
}

#[test]
fn every_flag_value_reaches_the_operator() {
    let objs = helm::render(&json!({
        "jobSelector": "shard in (a,b)",
        "concurrency": 4,
        "kubeApi": { "qps": 20.5, "burst": 40 },
        "watchTimeoutSeconds": 120,
        "listPageSize": 1000000,
        "serviceMode": "per-job",
        "clusterDomain": "cluster.local",
        "logging": { "level": "tfjob_operator=debug", "format": "text" },
        "metrics": { "port": 9090 },
        "healthProbe": { "port": 9091 },
        "extraArgs": ["--retry-period=1s"],
        "extraEnv": [{ "name": "RUST_BACKTRACE", "value": "1" }],
    }));
    let deployment = one(&objs, "Deployment");
    let flags = parse_flags(deployment);
    assert_eq!(
        flags.watch.job_selector.map(|s| s.to_string()).as_deref(),
        Some("shard in (a,b)")
    );
    assert_eq!(flags.watch.concurrency, 4);
    assert_eq!(
        (flags.client.kube_api_qps, flags.client.kube_api_burst),
        (20.5, 40)
    );
    assert_eq!(flags.watch.watch_timeout_seconds, 120);
    assert_eq!(
        flags.watch.list_page_size, 1_000_000,
        "large numbers are not rendered as 1e+06"
    );
    assert_eq!(
        flags.servers.metrics_bind_address.to_string(),
        "0.0.0.0:9090"
    );
    assert_eq!(
        flags.servers.health_probe_bind_address.to_string(),
        "0.0.0.0:9091"
    );
    assert_eq!(flags.logging.log_level, "tfjob_operator=debug");
    assert_eq!(flags.leader.retry_period, std::time::Duration::from_secs(1));
    let env = &container(deployment)["env"];
    assert!(
        env.as_array()
            .expect("env")
            .contains(&json!({ "name": "CUSTOM_CLUSTER_DOMAIN", "value": "cluster.local" }))
    );
    assert!(
        env.as_array()
            .expect("env")
            .contains(&json!({ "name": "RUST_BACKTRACE", "value": "1" }))
    );
    let service = one(&objs, "Service");
    assert_eq!(
        service["metadata"]["annotations"]["prometheus.io/port"],
        "9090"
    );
    assert_eq!(service["spec"]["ports"][0]["port"], 9090);
}

#[test]
fn rbac_and_service_account_can_be_brought_along() {
    let objs = helm::render(&json!({
        "rbac": { "create": false },
        "serviceAccount": { "create": false, "name": "platform-operator" },
        "leaderElection": { "enabled": true },
    }));
    assert_eq!(
        ids(&objs),
        [
            "Deployment tfjob-system/tfjob-operator",
            "Service tfjob-system/tfjob-operator-metrics",
        ]
    );
    let pod = &one(&objs, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "platform-operator");
}

#[test]
fn namespaced_mode_grants_roles_only_in_the_listed_namespaces() {
    let objs = helm::render(&json!({ "namespaces": ["team-a", "team-b"] }));
    assert_least_privilege(&objs);
    assert!(all(&objs, "ClusterRole").is_empty() && all(&objs, "ClusterRoleBinding").is_empty());
    for ns in ["team-a", "team-b"] {
        let role = objs
            .iter()
            .find(|o| objects::kind(o) == "Role" && objects::namespace(o) == ns)
            .unwrap_or_else(|| panic!("a Role in {ns}: {:?}", ids(&objs)));
        assert_eq!(rules(role), sorted(OPERATOR_RULES));
        let binding = objs
            .iter()
            .find(|o| objects::kind(o) == "RoleBinding" && objects::namespace(o) == ns)
            .unwrap_or_else(|| panic!("a RoleBinding in {ns}"));
        assert_eq!(binding["roleRef"]["kind"], "Role");
        assert_eq!(
            binding["subjects"][0]["namespace"], NAMESPACE,
            "the SA stays in the release namespace"
        );
    }
    assert_eq!(
        all(&objs, "Role").len(),
        2,
        "no other Role: {:?}",
        ids(&objs)
    );
    let flags = parse_flags(one(&objs, "Deployment"));
    assert_eq!(flags.watch.namespaces, ["team-a", "team-b"]);
}

#[test]
fn leader_election_adds_a_role_for_one_lease_and_rolls_pods_one_by_one() {
    let objs = helm::render(&json!({ "replicas": 2, "leaderElection": { "enabled": true } }));
    assert_least_privilege(&objs);
    let role = get(&objs, "Role", "tfjob-operator-leader-election");
    assert_eq!(objects::namespace(role), NAMESPACE);
    assert_eq!(
        rules(role),
        sorted(&[
            "coordination.k8s.io/leases: create",
            &format!("coordination.k8s.io/leases: get,update names={LEASE}"),
        ])
    );
    let binding = get(&objs, "RoleBinding", "tfjob-operator-leader-election");
    assert_eq!(binding["subjects"][0]["name"], "tfjob-operator");
    let deployment = one(&objs, "Deployment");
    let flags = parse_flags(deployment);
    assert!(flags.leader.leader_elect);
    assert_eq!(flags.leader.leader_election_id, LEASE);
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(
        deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );
    assert!(
        deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"].is_object(),
        "replicas prefer different nodes"
    );
    // Without leader election there is no Lease access at all.
    let objs = helm::render(&json!({}));
    assert!(all(&objs, "Role").is_empty(), "{:?}", ids(&objs));
}

#[test]
fn gang_scheduler_adds_podgroup_and_priority_class_rules() {
    let podgroups = |group: &str| format!("{group}/podgroups: create,delete,get,list,patch,watch");
    let priority_classes = "scheduling.k8s.io/priorityclasses: list,watch";
    for (name, group) in [
        ("volcano", "scheduling.volcano.sh"),
        ("scheduler-plugins-scheduler", "scheduling.x-k8s.io"),
    ] {
        // All namespaces: one ClusterRole with PodGroups of that group and PriorityClasses.
        let objs = helm::render(&json!({ "gangScheduler": { "name": name } }));
        assert_least_privilege(&objs);
        let mut expected = sorted(OPERATOR_RULES);
        expected.push(podgroups(group));
        expected.push(priority_classes.to_string());
        expected.sort();
        assert_eq!(
            rules(one(&objs, "ClusterRole")),
            expected,
            "gang scheduler {name}"
        );
        assert_eq!(
            parse_flags(one(&objs, "Deployment"))
                .watch
                .gang_scheduler_name,
            name
        );

        // Listed namespaces: PodGroups in each Role; PriorityClasses (cluster-scoped) alone in
        // a ClusterRole.
        let objs =
            helm::render(&json!({ "gangScheduler": { "name": name }, "namespaces": ["team-a"] }));
        assert_least_privilege(&objs);
        let mut expected = sorted(OPERATOR_RULES);
        expected.push(podgroups(group));
        expected.sort();
        assert_eq!(
            rules(one(&objs, "Role")),
            expected,
            "namespaced, gang scheduler {name}"
        );
        let cluster_role = get(&objs, "ClusterRole", "tfjob-operator-cluster-scoped");
        assert_eq!(rules(cluster_role), [priority_classes]);
        let binding = get(&objs, "ClusterRoleBinding", "tfjob-operator-cluster-scoped");
        assert_eq!(binding["subjects"][0]["name"], "tfjob-operator");
    }
    // Without gang scheduling, neither.
    let objs = helm::render(&json!({ "namespaces": ["team-a"] }));
    assert!(all(&objs, "ClusterRole").is_empty(), "{:?}", ids(&objs));
}

/// Every metric name the operator exports (each metric touched once so that labelled ones
/// appear), with the histogram's series suffixes.
fn operator_metric_names() -> BTreeSet<String> {
    let metrics = Metrics::new().expect("metrics");
    metrics.job_created("ns");
    metrics.job_deleted("ns");
    metrics.job_succeeded("ns");
    metrics.job_failed("ns");
    metrics.job_restarted("ns");
    drop(metrics.reconcile_timer());
    metrics.reconcile_error("child_write");
    metrics.pods_created(1);
    metrics.pods_deleted(1);
    metrics.services_created(1);
    metrics.services_deleted(1);
    metrics.watch_restarted("pods");
    metrics.api_request("list", Some(200));
    metrics.set_leader(true);
    metrics.set_job_state_source(|| vec![("ns".to_string(), "Running".to_string())]);
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
    let objs = helm::render(&json!({
        "serviceMonitor": { "enabled": true },
        "prometheusRule": { "enabled": true },
        "grafanaDashboard": { "enabled": true },
    }));

    // ServiceMonitor → the metrics Service, by its labels and port name.
    let monitor = one(&objs, "ServiceMonitor");
    let service = one(&objs, "Service");
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

    // PrometheusRule: the four alerts, on metrics that exist.
    let rule = one(&objs, "PrometheusRule");
    let alerts = rule["spec"]["groups"][0]["rules"]
        .as_array()
        .expect("rules");
    let names: Vec<&str> = alerts.iter().filter_map(|a| a["alert"].as_str()).collect();
    assert_eq!(
        names,
        [
            "TFJobOperatorDown",
            "TFJobOperatorReconcileErrors",
            "TFJobsFailing",
            "TFJobsStuckPending"
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
    assert!(
        alerts[0]["expr"]
            .as_str()
            .unwrap_or("")
            .starts_with("absent(up{")
    );
    assert!(
        alerts[1]["expr"]
            .as_str()
            .unwrap_or("")
            .contains("tfjob_operator_reconcile_errors_total")
    );
    assert!(
        alerts[2]["expr"]
            .as_str()
            .unwrap_or("")
            .contains("training_operator_jobs_failed_total")
    );
    assert!(
        alerts[3]["expr"]
            .as_str()
            .unwrap_or("")
            .contains(r#"state=~"Pending|Created""#)
    );

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
    // Every metric the operator exports is on the dashboard (histogram through _bucket).
    let missing: Vec<&String> = known
        .iter()
        .filter(|m| !queried.contains(*m) && !m.ends_with("_sum") && !m.ends_with("_count"))
        .filter(|m| !(m.ends_with("_seconds") && queried.contains(&format!("{m}_bucket"))))
        .collect();
    assert!(
        missing.is_empty(),
        "metrics not on the dashboard: {missing:?}"
    );
}

/// The container port named `name`.
fn container_port(deployment: &Value, name: &str) -> i64 {
    container(deployment)["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_i64())
        .unwrap_or_else(|| panic!("no container port {name}"))
}

#[test]
fn webhook_renders_its_configuration_service_flags_and_only_the_rbac_it_needs() {
    use tfjob_operator::config::WebhookCertMode;

    // Self-signed (the default mode): the operator publishes its CA itself.
    let objs = helm::render(&json!({ "webhook": { "enabled": true } }));
    assert_least_privilege(&objs);
    let config = get(
        &objs,
        "ValidatingWebhookConfiguration",
        "tfjob-operator-validator",
    );
    let hooks = config["webhooks"].as_array().expect("webhooks");
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    assert_eq!(
        hook["name"],
        "validator.tfjob.training-operator.kubeflow.org"
    );
    assert_eq!(hook["failurePolicy"], "Fail");
    assert_eq!(hook["sideEffects"], "None");
    assert_eq!(hook["admissionReviewVersions"], json!(["v1"]));
    assert_eq!(hook["timeoutSeconds"], 10);
    assert_eq!(hook["namespaceSelector"], json!({}));
    assert_eq!(
        hook["rules"],
        json!([{ "apiGroups": ["kubeflow.org"], "apiVersions": ["v1"],
                 "operations": ["CREATE", "UPDATE"], "resources": ["tfjobs"], "scope": "Namespaced" }])
    );
    assert_eq!(
        hook["clientConfig"],
        json!({ "service": { "name": "tfjob-operator-webhook", "namespace": NAMESPACE,
                             "path": "/validate-kubeflow-org-v1-tfjob", "port": 443 } }),
        "no caBundle: the operator adds its CA"
    );

    let deployment = one(&objs, "Deployment");
    let service = get(&objs, "Service", "tfjob-operator-webhook");
    assert_eq!(service["spec"]["ports"][0]["port"], 443);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "webhook");
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(container_port(deployment, "webhook"), 9443);

    // The operator accepts the flags, and they name the objects the chart made.
    let flags = parse_flags(deployment);
    assert!(flags.webhook.webhook_enabled && !flags.webhook.webhook_defaulting);
    assert_eq!(flags.webhook.webhook_server_port, 9443);
    assert_eq!(flags.webhook.webhook_service_name, objects::name(service));
    assert_eq!(
        flags.webhook.validating_webhook_config_name,
        objects::name(config)
    );
    assert_eq!(flags.webhook.webhook_cert_mode, WebhookCertMode::SelfSigned);
    assert!(flags.webhook.settings().expect("valid settings").is_some());

    // RBAC: get and patch of that one configuration, nothing else (no Secrets).
    let role = get(&objs, "ClusterRole", "tfjob-operator-webhook");
    assert_eq!(
        rules(role),
        [
            "admissionregistration.k8s.io/validatingwebhookconfigurations: get,patch names=tfjob-operator-validator"
        ]
    );
    let binding = get(&objs, "ClusterRoleBinding", "tfjob-operator-webhook");
    assert_eq!(binding["roleRef"]["name"], "tfjob-operator-webhook");
    assert_eq!(
        binding["subjects"],
        json!([{ "kind": "ServiceAccount", "name": "tfjob-operator", "namespace": NAMESPACE }])
    );

    // cert-manager, defaulting, watched namespaces, Ignore: a cert-manager CA signs the serving
    // certificate, the Secret is mounted where the flag points, the operator needs no RBAC.
    let objs = helm::render(&json!({
        "namespaces": ["team-a"],
        "webhook": { "enabled": true, "defaulting": true, "failurePolicy": "Ignore",
                     "timeoutSeconds": 5, "certificates": { "mode": "cert-manager" } },
    }));
    assert_least_privilege(&objs);
    assert!(
        !ids(&objs)
            .iter()
            .any(|id| id.contains("tfjob-operator-webhook") && id.starts_with("Cluster")),
        "no webhook RBAC without self-signed certificates: {:?}",
        ids(&objs)
    );
    let certificate = get(&objs, "Certificate", "tfjob-operator-webhook");
    assert_eq!(
        certificate["spec"]["dnsNames"][0],
        "tfjob-operator-webhook.tfjob-system.svc"
    );
    assert_eq!(
        certificate["spec"]["issuerRef"]["name"],
        "tfjob-operator-webhook-ca"
    );
    assert_eq!(
        get(&objs, "Certificate", "tfjob-operator-webhook-ca")["spec"]["isCA"],
        true
    );
    let deployment = one(&objs, "Deployment");
    let flags = parse_flags(deployment);
    assert_eq!(flags.webhook.webhook_cert_mode, WebhookCertMode::Provided);
    assert!(flags.webhook.webhook_defaulting);
    let mount = &container(deployment)["volumeMounts"][0];
    assert_eq!(
        mount["mountPath"].as_str(),
        flags.webhook.webhook_cert_dir.to_str()
    );
    let volume = &deployment["spec"]["template"]["spec"]["volumes"][0];
    assert_eq!(volume["name"], mount["name"]);
    assert_eq!(
        volume["secret"]["secretName"],
        certificate["spec"]["secretName"]
    );
    let expected_selector = json!({ "matchExpressions": [{
        "key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a"] }] });
    for (kind, name, path) in [
        (
            "ValidatingWebhookConfiguration",
            "tfjob-operator-validator",
            "/validate-kubeflow-org-v1-tfjob",
        ),
        (
            "MutatingWebhookConfiguration",
            "tfjob-operator-defaulter",
            "/mutate-kubeflow-org-v1-tfjob",
        ),
    ] {
        let config = get(&objs, kind, name);
        assert_eq!(
            config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            format!("{NAMESPACE}/tfjob-operator-webhook"),
            "{kind}: the CA of the serving Certificate"
        );
        let hook = &config["webhooks"][0];
        assert_eq!(hook["clientConfig"]["service"]["path"], path);
        assert_eq!(hook["failurePolicy"], "Ignore");
        assert_eq!(hook["timeoutSeconds"], 5);
        assert_eq!(hook["namespaceSelector"], expected_selector);
    }
    assert_eq!(
        get(
            &objs,
            "MutatingWebhookConfiguration",
            "tfjob-operator-defaulter"
        )["webhooks"][0]["reinvocationPolicy"],
        "Never"
    );
    assert_eq!(
        flags.webhook.mutating_webhook_config_name,
        "tfjob-operator-defaulter"
    );

    // A Secret of your own, trusted through the caBundle you give.
    let objs = helm::render(&json!({ "webhook": { "enabled": true, "certificates": {
        "mode": "secret", "secretName": "my-tls", "caBundle": "Q0E=" } } }));
    let config = get(
        &objs,
        "ValidatingWebhookConfiguration",
        "tfjob-operator-validator",
    );
    assert_eq!(config["webhooks"][0]["clientConfig"]["caBundle"], "Q0E=");
    let deployment = one(&objs, "Deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"],
        "my-tls"
    );
    assert!(!ids(&objs).iter().any(|id| id.starts_with("Certificate")));
}

#[test]
fn values_schema_rejects_bad_values_with_helms_message() {
    assert_eq!(helm::validate(&json!({})), Ok(()), "the defaults are valid");
    for (values, message) in [
        (json!({ "replicas": 2 }), "at '/leaderElection/enabled'"),
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
fn every_kustomize_tree_builds() {
    for tree in kustomize::TREES {
        let objs = kustomize::build(tree);
        assert_least_privilege(&objs);
        parse_flags(one(&objs, "Deployment"));
        for obj in &objs {
            if !matches!(
                objects::kind(obj),
                "Namespace"
                    | "CustomResourceDefinition"
                    | "ClusterRole"
                    | "ClusterRoleBinding"
                    | "ValidatingWebhookConfiguration"
                    | "MutatingWebhookConfiguration"
            ) {
                assert_eq!(
                    objects::namespace(obj),
                    NAMESPACE,
                    "{tree}: {}",
                    objects::id(obj)
                );
            }
        }
    }
}

/// The kustomize tree's objects equal the chart's rendered with `values`, after dropping
/// Helm-only labels and sorting flags; kustomize adds only the Namespace (Helm's
/// `--create-namespace`).
fn assert_same_objects(tree: &str, values: Value) {
    let mut from_kustomize = kustomize::build(tree);
    from_kustomize.retain(|o| objects::kind(o) != "Namespace");
    let from_helm = helm::render_with_crds(&values);
    assert_eq!(
        ids(&from_kustomize),
        ids(&from_helm),
        "{tree} vs the chart with {values}"
    );
    for helm_obj in &from_helm {
        let id = objects::id(helm_obj);
        let kustomize_obj = from_kustomize
            .iter()
            .find(|o| objects::id(o) == id)
            .expect("same ids");
        let (h, k) = (normalised(helm_obj), normalised(kustomize_obj));
        if let Some(difference) = objects::first_difference(&id, &h, &k) {
            panic!(
                "{tree} differs from the chart with {values}: {difference} (chart != kustomize)"
            );
        }
    }
}

#[test]
fn kustomize_trees_match_the_chart() {
    assert_same_objects("deploy/kustomize/base", json!({}));
    assert_same_objects("deploy/kustomize/overlays/cluster-wide", json!({}));
    assert_same_objects(
        "deploy/kustomize/overlays/single-namespace",
        json!({ "namespaces": [NAMESPACE] }),
    );
    assert_same_objects(
        "deploy/kustomize/overlays/leader-election",
        json!({ "replicas": 2, "leaderElection": { "enabled": true } }),
    );
    assert_same_objects(
        "deploy/kustomize/overlays/webhook",
        json!({ "webhook": { "enabled": true } }),
    );
    let base = kustomize::build("deploy/kustomize/base");
    let namespace = one(&base, "Namespace");
    assert_eq!(objects::name(namespace), NAMESPACE);
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
        notes.contains("kubectl apply --server-side -f"),
        "CRD upgrade hint: {notes}"
    );
    let notes = helm::notes(&json!({
        "namespaces": ["team-a", "team-b"],
        "replicas": 2,
        "leaderElection": { "enabled": true },
        "prometheusRule": { "enabled": true },
    }));
    assert!(notes.contains("namespaces team-a, team-b"), "{notes}");
    assert!(notes.contains("2 replicas with leader election"), "{notes}");
    assert!(notes.contains("TFJobOperatorDown"), "{notes}");
    assert!(!notes.contains("Admission webhook"), "{notes}");
    let notes = helm::notes(&json!({ "webhook": { "enabled": true } }));
    assert!(
        notes.contains("Admission webhook: ValidatingWebhookConfiguration tfjob-operator-validator (failurePolicy Fail)"),
        "{notes}"
    );
}

/// The Dockerfile cannot be built here (no container engine). What can be checked: it copies
/// every source file the tested binary is compiled from (cargo's dep-info of that very
/// binary), builds it with `--locked` (what hack/test.sh's cargo commands use) as the binary the
/// tests run, and runs it as the non-root user the chart's pod security context requires.
#[test]
fn dockerfile_builds_the_tested_binary_as_non_root() {
    let dockerfile = std::fs::read_to_string(repo_path("Dockerfile")).expect("Dockerfile");
    let lines: Vec<&str> = dockerfile.lines().map(str::trim).collect();

    // The build command, and the binary it names exists.
    assert!(
        dockerfile.contains("cargo build --release --locked --bin tfjob-operator"),
        "the Dockerfile builds with: cargo build --release --locked --bin tfjob-operator"
    );
    let manifest = std::fs::read_to_string(repo_path("Cargo.toml")).expect("Cargo.toml");
    assert!(manifest.contains("name = \"tfjob-operator\"\npath = \"src/main.rs\""));

    // The builder's Rust is at least the crate's rust-version.
    let rust_version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("Cargo.toml has rust-version");
    let builder = lines
        .iter()
        .find_map(|l| l.strip_prefix("FROM docker.io/library/rust:"))
        .expect("a rust builder stage");
    let minor = |v: &str| -> u32 {
        v.split('.')
            .nth(1)
            .and_then(|m| m.split('-').next())
            .and_then(|m| m.parse().ok())
            .unwrap_or(0)
    };
    assert!(
        minor(builder) >= minor(rust_version),
        "builder rust:{builder} < rust-version {rust_version}"
    );

    // Every file the binary is compiled from is in the build context and copied.
    let copied: Vec<String> = lines
        .iter()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from="))
        .flat_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().skip(1).collect();
            parts[..parts.len() - 1]
                .iter()
                .map(|p| p.trim_end_matches('/').to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let sources = binary_sources();
    assert!(sources.contains("src/main.rs"), "{sources:?}");
    for required in ["Cargo.toml", "Cargo.lock"]
        .into_iter()
        .chain(sources.iter().map(String::as_str))
    {
        assert!(
            copied
                .iter()
                .any(|c| required == c || required.starts_with(&format!("{c}/"))),
            "the Dockerfile does not COPY {required} (copies {copied:?})"
        );
    }
    let ignore = std::fs::read_to_string(repo_path(".dockerignore")).expect(".dockerignore");
    for path in &copied {
        assert!(
            ignore
                .lines()
                .any(|l| l.trim_end_matches('/') == format!("!{path}")),
            ".dockerignore lets {path} in"
        );
    }

    // Non-root, numerically (the kubelet can only verify runAsNonRoot on a numeric user), the
    // chart's runAsUser, and the binary as entrypoint (the chart passes args only).
    let runtime = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("FROM "))
        .expect("a runtime stage");
    assert!(
        runtime.contains("distroless") && runtime.ends_with(":nonroot"),
        "{runtime}"
    );
    let deployment = get(&helm::render(&json!({})), "Deployment", "tfjob-operator").clone();
    let uid = deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"].clone();
    assert!(
        lines.contains(&format!("USER {uid}:{uid}").as_str()),
        "USER {uid}:{uid}"
    );
    assert!(
        container(&deployment).get("command").is_none(),
        "the image's entrypoint runs"
    );
    assert!(lines.contains(&r#"ENTRYPOINT ["/usr/local/bin/tfjob-operator"]"#));
}

/// The repository files the operator binary is compiled from, from rustc's dep-info of the
/// binary and of the (non-test) library it links, which `cargo test` builds for
/// `CARGO_BIN_EXE_tfjob-operator`. The library's dep-info is the one whose hash matches a
/// `libtfjob_operator-HASH.rlib` (the test build of the library has no rlib).
fn binary_sources() -> BTreeSet<String> {
    let deps = std::path::Path::new(env!("CARGO_BIN_EXE_tfjob-operator"))
        .parent()
        .expect("the binary's directory")
        .join("deps");
    let root = format!("{}/", env!("CARGO_MANIFEST_DIR"));
    let read = |name: &str| std::fs::read_to_string(deps.join(name)).unwrap_or_default();
    let files = |text: &str| -> Vec<String> {
        // `target: dependency...` lines; `# env-dep:` comments are not files.
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(": ").map(|(_, deps)| deps))
            .flat_map(str::split_whitespace)
            .map(|f| f.strip_prefix(&root).unwrap_or(f).to_string())
            .filter(|f| !f.starts_with('/'))
            .collect()
    };
    let mut sources = BTreeSet::new();
    let entries = std::fs::read_dir(&deps)
        .unwrap_or_else(|e| panic!("cargo's deps directory {}: {e}", deps.display()));
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // The operator's library and the workspace crates it links.
        let library = ["tfjob_operator", "tfjob_core"]
            .into_iter()
            .find_map(|crate_name| {
                let hash = name
                    .strip_prefix(&format!("lib{crate_name}-"))?
                    .strip_suffix(".rlib")?;
                Some(format!("{crate_name}-{hash}.d"))
            });
        if let Some(dep_info) = library {
            sources.extend(files(&read(&dep_info)));
        } else if name.starts_with("tfjob_operator-") && name.ends_with(".d") {
            let text = read(&name);
            if files(&text).iter().any(|f| f == "src/main.rs") {
                sources.extend(files(&text));
            }
        }
    }
    assert!(
        sources.contains("src/main.rs")
            && sources.contains("src/lib.rs")
            && sources.contains("crates/tfjob-core/src/lib.rs"),
        "no dep-info of the operator binary and its library in {}: {sources:?}",
        deps.display()
    );
    sources
}
