//! The webhook's configuration, Service, flags and RBAC.

use super::*;

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
    assert!(
        flags
            .webhook
            .settings(flags.watch.placement())
            .expect("valid settings")
            .is_some()
    );

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
    // One namespace: by its name label (several: matchExpressions, tested below).
    let expected_selector = json!({ "matchLabels": { "kubernetes.io/metadata.name": "team-a" } });
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
