//! The Deployment: security context, probes, and every flag value reaching the operator.

use super::*;

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
    assert_eq!(
        ports,
        [
            ("metrics".into(), 8080),
            ("health".into(), 8081),
            ("webhook".into(), 9443)
        ]
    );
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
        "leaderElection": { "enabled": false },
        "extraArgs": ["--leader-elect=true", "--retry-period=1s"],
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
    assert_eq!(
        flags.logging.log_level.as_deref(),
        Some("tfjob_operator=debug")
    );
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
    let service = get(&objs, "Service", "tfjob-operator-metrics");
    assert_eq!(
        service["metadata"]["annotations"]["prometheus.io/port"],
        "9090"
    );
    assert_eq!(service["spec"]["ports"][0]["port"], 9090);
}
