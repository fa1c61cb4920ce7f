//! The chart's install-time options, each rendered by the real Helm engine: image reference,
//! probes, PodDisruptionBudget, NetworkPolicy, topology spread, extra volumes and objects, user
//! roles, the ServiceMonitor's options and its absence without the Prometheus Operator, leader
//! election by default, and the chart as a subchart with `global` values.

use super::*;

fn deployment(values: &Value) -> Value {
    get(&helm::render(values), "Deployment", "tfjob-operator").clone()
}

#[test]
fn image_reference_from_registry_repository_tag_and_digest() {
    let digest = format!("sha256:{}", "ab".repeat(32));
    let version = env!("CARGO_PKG_VERSION");
    for (image, expected) in [
        (json!({}), format!("tfjob-operator:{version}")),
        (
            json!({ "registry": "registry.example.com:5000/ml" }),
            format!("registry.example.com:5000/ml/tfjob-operator:{version}"),
        ),
        (
            json!({ "registry": "ghcr.io", "repository": "acme/tfjob-operator", "tag": "v1" }),
            "ghcr.io/acme/tfjob-operator:v1".to_string(),
        ),
        (
            json!({ "registry": "ghcr.io", "digest": digest }),
            format!("ghcr.io/tfjob-operator:{version}@{digest}"),
        ),
    ] {
        let d = deployment(&json!({ "image": image }));
        assert_eq!(container(&d)["image"], expected, "image values {image}");
    }
    for bad in [
        json!({ "image": { "digest": "latest" } }),
        json!({ "image": { "registry": "ghcr.io/" } }),
    ] {
        assert!(helm::validate(&bad).is_err(), "{bad} is refused");
    }
}

#[test]
fn leader_election_is_on_by_default_and_safe_with_one_replica() {
    let d = deployment(&json!({}));
    assert_eq!(d["spec"]["replicas"], 1);
    assert!(
        args(&d).contains(&"--leader-elect=true".to_string()),
        "{:?}",
        args(&d)
    );
    // With the Lease, the new pod may start before the old one stops.
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    let objs = helm::render(&json!({}));
    get(&objs, "Role", "tfjob-operator-leader-election");
}

#[test]
fn probes_are_configurable() {
    let d = deployment(&json!({}));
    let c = container(&d);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["startupProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["startupProbe"]["failureThreshold"], 30);
    assert!(
        c["livenessProbe"].get("enabled").is_none(),
        "no values key leaks into the probe"
    );

    let d = deployment(&json!({
        "livenessProbe": { "periodSeconds": 7, "failureThreshold": 5 },
        "startupProbe": { "enabled": false },
    }));
    let c = container(&d);
    assert_eq!(c["livenessProbe"]["periodSeconds"], 7);
    assert_eq!(c["livenessProbe"]["failureThreshold"], 5);
    assert!(
        c.get("startupProbe").is_none(),
        "startupProbe.enabled=false drops it"
    );
    assert!(helm::validate(&json!({ "readinessProbe": { "periodSeconds": 0 } })).is_err());
}

#[test]
fn pod_disruption_budget() {
    assert!(
        all(&helm::render(&json!({})), "PodDisruptionBudget").is_empty(),
        "off by default"
    );
    let objs = helm::render(&json!({ "podDisruptionBudget": { "enabled": true } }));
    let pdb = one(&objs, "PodDisruptionBudget");
    // Kubernetes 1.20 (what the tests render for) has only policy/v1beta1.
    assert_eq!(pdb["apiVersion"], "policy/v1beta1");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert!(pdb["spec"].get("minAvailable").is_none());
    let selector = &pdb["spec"]["selector"]["matchLabels"];
    let d = get(&objs, "Deployment", "tfjob-operator");
    assert_eq!(
        selector, &d["spec"]["selector"]["matchLabels"],
        "selects the operator's pods"
    );

    let objs = helm::render(&json!({
        "replicas": 2,
        "podDisruptionBudget": { "enabled": true, "minAvailable": "50%" },
    }));
    let pdb = one(&objs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"], "50%");
    assert!(
        pdb["spec"].get("maxUnavailable").is_none(),
        "one of the two"
    );
}

#[test]
fn network_policy() {
    assert!(
        all(&helm::render(&json!({})), "NetworkPolicy").is_empty(),
        "off by default"
    );
    let objs = helm::render(&json!({ "networkPolicy": { "enabled": true } }));
    let policy = one(&objs, "NetworkPolicy");
    let d = get(&objs, "Deployment", "tfjob-operator");
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"],
        d["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    let ingress = policy["spec"]["ingress"].as_array().expect("ingress");
    let ports: Vec<&Value> = ingress.iter().map(|r| &r["ports"][0]["port"]).collect();
    assert_eq!(
        ports,
        [&json!(9443), &json!(8080)],
        "webhook and metrics ports"
    );
    assert!(
        ingress[0].get("from").is_none(),
        "the apiserver may call the webhook from anywhere"
    );
    assert_eq!(
        ingress[1]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "prometheus"
    );
    let egress = policy["spec"]["egress"].as_array().expect("egress");
    assert_eq!(
        egress[0]["ports"],
        json!([
            { "port": 443, "protocol": "TCP" },
            { "port": 6443, "protocol": "TCP" }
        ])
    );
    assert_eq!(
        egress[1]["ports"][0],
        json!({ "port": 53, "protocol": "UDP" })
    );
    assert_eq!(
        egress[1]["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "kube-system"
    );

    // Narrowed: the control plane's addresses, no webhook.
    let objs = helm::render(&json!({
        "webhook": { "enabled": false },
        "networkPolicy": {
            "enabled": true,
            "metricsFrom": [{ "ipBlock": { "cidr": "10.0.0.0/8" } }],
            "apiServer": { "ports": [6443], "cidrs": ["192.0.2.10/32"] },
        },
    }));
    let policy = one(&objs, "NetworkPolicy");
    let ingress = policy["spec"]["ingress"].as_array().expect("ingress");
    assert_eq!(ingress.len(), 1, "no webhook rule without the webhook");
    assert_eq!(ingress[0]["from"][0]["ipBlock"]["cidr"], "10.0.0.0/8");
    assert_eq!(
        policy["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"],
        "192.0.2.10/32"
    );
}

#[test]
fn topology_spread_constraints_select_the_operators_pods_by_default() {
    let d = deployment(&json!({
        "topologySpreadConstraints": [
            { "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway" },
            { "maxSkew": 2, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
              "labelSelector": { "matchLabels": { "team": "ml" } } },
        ],
    }));
    let constraints = d["spec"]["template"]["spec"]["topologySpreadConstraints"]
        .as_array()
        .expect("constraints");
    assert_eq!(constraints.len(), 2);
    assert_eq!(constraints[0]["topologyKey"], "topology.kubernetes.io/zone");
    assert_eq!(
        constraints[0]["labelSelector"]["matchLabels"],
        d["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(constraints[1]["labelSelector"]["matchLabels"]["team"], "ml");
    assert!(helm::validate(&json!({ "topologySpreadConstraints": [{ "maxSkew": 1 }] })).is_err());
}

#[test]
fn extra_volumes_mounts_and_objects() {
    // With cert-manager certificates the chart mounts a volume of its own: both lists merge.
    let objs = helm::render(&json!({
        "webhook": { "certificates": { "mode": "cert-manager" } },
        "extraVolumes": [{ "name": "ca", "configMap": { "name": "corporate-ca" } }],
        "extraVolumeMounts": [{ "name": "ca", "mountPath": "/etc/corporate-ca", "readOnly": true }],
        "extraObjects": [
            { "apiVersion": "v1", "kind": "ConfigMap",
              "metadata": { "name": "{{ .Release.Name }}-extra" }, "data": { "a": "b" } },
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: extra-secret\n  namespace: {{ .Release.Namespace }}\nstringData:\n  k: v\n",
        ],
    }));
    let d = get(&objs, "Deployment", "tfjob-operator");
    let volumes: Vec<&str> = d["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(volumes, ["webhook-cert", "ca"]);
    let mounts: Vec<&str> = container(d)["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter_map(|v| v["mountPath"].as_str())
        .collect();
    assert_eq!(mounts.len(), 2);
    assert_eq!(mounts[1], "/etc/corporate-ca");
    assert_eq!(
        get(&objs, "ConfigMap", "tfjob-operator-extra")["data"]["a"],
        "b"
    );
    assert_eq!(
        get(&objs, "Secret", "extra-secret")["metadata"]["namespace"],
        NAMESPACE
    );
}

#[test]
fn user_roles_aggregate_into_kubernetes_and_kubeflow_roles() {
    let objs = helm::render(&json!({}));
    for (suffix, role) in [("view", "view"), ("edit", "edit"), ("admin", "admin")] {
        let name = format!("tfjob-operator-tfjobs-{suffix}");
        let labels = &get(&objs, "ClusterRole", &name)["metadata"]["labels"];
        assert_eq!(
            labels[format!("rbac.authorization.k8s.io/aggregate-to-{role}")],
            "true"
        );
        assert_eq!(
            labels[format!("rbac.authorization.kubeflow.org/aggregate-to-kubeflow-{role}")],
            "true"
        );
    }
    let edit = get(&objs, "ClusterRole", "tfjob-operator-tfjobs-edit");
    assert!(
        rules(edit).contains(
            &"kubeflow.org/tfjobs: create,delete,deletecollection,get,list,patch,update,watch"
                .to_string()
        )
    );
    let view = get(&objs, "ClusterRole", "tfjob-operator-tfjobs-view");
    assert_eq!(
        rules(view),
        [
            "kubeflow.org/tfjobs/status: get,list,watch",
            "kubeflow.org/tfjobs: get,list,watch"
        ]
    );
    let without = helm::render(&json!({ "rbac": { "aggregateToDefaultRoles": false } }));
    assert!(
        !without
            .iter()
            .any(|o| objects::name(o).contains("-tfjobs-"))
    );
}

#[test]
fn service_monitor_options_and_no_failure_without_the_prometheus_operator() {
    let values = json!({
        "serviceMonitor": {
            "enabled": true,
            "namespace": "monitoring",
            "relabelings": [{ "targetLabel": "team", "replacement": "ml" }],
            "metricRelabelings": [{ "sourceLabels": ["__name__"], "regex": "go_.*", "action": "drop" }],
        },
        "prometheusRule": { "enabled": true },
    });
    let objs = helm::render_for(&values, &helm::PROMETHEUS_OPERATOR);
    let monitor = one(&objs, "ServiceMonitor");
    assert_eq!(monitor["metadata"]["namespace"], "monitoring");
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"],
        json!([NAMESPACE])
    );
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["relabelings"][0]["targetLabel"], "team");
    assert_eq!(endpoint["metricRelabelings"][0]["action"], "drop");
    one(&objs, "PrometheusRule");
    // In the Service's own namespace it needs no namespaceSelector.
    let objs = helm::render_for(
        &json!({ "serviceMonitor": { "enabled": true } }),
        &helm::PROMETHEUS_OPERATOR,
    );
    assert!(
        one(&objs, "ServiceMonitor")["spec"]
            .get("namespaceSelector")
            .is_none()
    );

    // A cluster without the monitoring.coreos.com CRDs: nothing that would fail the install,
    // and NOTES says why.
    let objs = helm::render(&values);
    assert!(all(&objs, "ServiceMonitor").is_empty() && all(&objs, "PrometheusRule").is_empty());
    let notes = helm::notes(&values);
    assert!(
        notes
            .contains("serviceMonitor.enabled is true, but this cluster has no ServiceMonitor CRD"),
        "{notes}"
    );
    assert!(
        notes
            .contains("prometheusRule.enabled is true, but this cluster has no PrometheusRule CRD")
    );
    let notes = helm::notes_for(&values, &helm::PROMETHEUS_OPERATOR);
    assert!(!notes.contains("WARNING"), "{notes}");
}

#[test]
fn chart_metadata_for_users() {
    let chart: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(chart_dir().join("Chart.yaml")).expect("Chart.yaml"),
    )
    .expect("Chart.yaml parses");
    let source = env!("CARGO_PKG_REPOSITORY");
    assert_eq!(chart["home"], source);
    assert_eq!(chart["sources"][0], source);
    assert!(chart["maintainers"][0]["name"].is_string());
    // The oldest Kubernetes the tests run the operator on.
    assert_eq!(chart["kubeVersion"], ">=1.20.0-0");
}

/// As a dependency of another chart, whose `global` values Helm passes down: the strict
/// values schema must allow them.
#[test]
fn the_chart_works_as_a_subchart_with_global_values() {
    let parent = repo_path("target/helm-parent");
    let _ = std::fs::remove_dir_all(&parent);
    std::fs::create_dir_all(parent.join("charts")).expect("the parent chart");
    std::fs::write(
        parent.join("Chart.yaml"),
        "apiVersion: v2\nname: ml-platform\nversion: 1.0.0\ndependencies:\n  - name: tfjob-operator\n    version: \">=0.0.0-0\"\n",
    )
    .expect("Chart.yaml");
    copy_dir(&chart_dir(), &parent.join("charts/tfjob-operator"));
    let objs = helm::render_chart(
        &parent,
        &json!({
            "global": { "imageRegistry": "registry.example.com", "storageClass": "fast" },
            "tfjob-operator": { "image": { "registry": "registry.example.com" } },
        }),
    )
    .unwrap_or_else(|e| panic!("the parent chart with global values does not render:\n{e}"));
    let d = objs
        .iter()
        .find(|o| objects::kind(o) == "Deployment")
        .expect("the subchart's Deployment");
    assert!(
        container(d)["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("registry.example.com/")),
        "{}",
        container(d)["image"]
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("a directory");
    for entry in std::fs::read_dir(from).expect("read the chart").flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a chart file");
        }
    }
}

#[test]
fn webhook_reviews_the_watched_namespaces_only() {
    let selector = |values: Value| {
        let objs = helm::render(&values);
        get(
            &objs,
            "ValidatingWebhookConfiguration",
            "tfjob-operator-validator",
        )["webhooks"][0]["namespaceSelector"]
            .clone()
    };
    assert_eq!(selector(json!({})), json!({}));
    // One namespace by its name label (what kustomize's namespace transformer can also set),
    // several by set membership.
    assert_eq!(
        selector(json!({ "namespaces": ["team-a"] })),
        json!({ "matchLabels": { "kubernetes.io/metadata.name": "team-a" } })
    );
    assert_eq!(
        selector(json!({ "namespaces": ["team-a", "team-b"] })),
        json!({ "matchExpressions": [{
            "key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a", "team-b"] }] })
    );
}
