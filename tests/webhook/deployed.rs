//! The webhook as deployed: the RBAC it needs, and the binary serving it from its flags.

use super::*;

/// A client acting as the operator's ServiceAccount (impersonated by the admin, so it works on
/// any control plane), with exactly the rights RBAC grants that identity.
async fn operator_client() -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(&control_plane().kubeconfig)
        .expect("the admin kubeconfig");
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("a client config");
    config.auth_info.impersonate = Some("system:serviceaccount:tfjob-system:tfjob-operator".into());
    config.auth_info.impersonate_groups = Some(vec![
        "system:serviceaccounts".into(),
        "system:serviceaccounts:tfjob-system".into(),
        "system:authenticated".into(),
    ]);
    kube::Client::try_from(config).expect("a client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployed_rbac_is_all_the_self_signed_mode_needs() {
    // The webhook objects as installed (the standalone kustomize overlay, equal to the chart's,
    // a render test checks): the configuration, narrowed to this test's namespace, and the
    // ClusterRole with its binding.
    let ctx = TestContext::new("webhook-rbac").await;
    let installed = test_support::deploy::kustomize::build("deploy/kustomize/overlays/standalone");
    let object = |kind: &str, name: &str| -> Value {
        installed
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("the install has {kind} {name}"))
            .clone()
    };
    let mut config = object("ValidatingWebhookConfiguration", "tfjob-operator-validator");
    config["webhooks"][0]["namespaceSelector"] =
        json!({"matchLabels": {SCOPE_LABEL: ctx.namespace}});
    let config_name = config["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    ctx.apply_yaml(&config.to_string()).await;
    ctx.apply_yaml(&object("ClusterRole", "tfjob-operator-webhook").to_string())
        .await;
    ctx.apply_yaml(&object("ClusterRoleBinding", "tfjob-operator-webhook").to_string())
        .await;

    // The webhook as the operator runs it, with the operator's identity.
    let operator = operator_client().await;
    let configs = Configs {
        validating: config_name.clone(),
        mutating: "tfjob-operator-defaulter".into(),
    };
    init_test_logging();
    let settings = WebhookSettings {
        bind: "127.0.0.1:0".parse().expect("addr"),
        certs: CertSource::SelfSigned(SelfSignedSettings {
            names: SubjectNames::for_service("tfjob-operator-webhook", "tfjob-system", &[]),
            validity: secs(3600),
            rotate_before: secs(600),
            instance: "rbac".into(),
            validating_config: configs.validating.clone(),
            mutating_config: configs.mutating.clone(),
            resync_interval: Duration::from_secs(1),
        }),
        defaulting: false,
        placement: Default::default(),
    };
    let readiness = Readiness::new();
    readiness.set_caches_synced(true);
    let webhook = Webhook::start(settings, Some(operator.clone()), readiness.clone())
        .await
        .expect("the webhook starts");
    let running = serve(webhook);
    await_trusted(&ctx, &configs, &running.ca_pem).await;
    wait_for(secs(10), "the replica to report ready", || async {
        readiness.check()
    })
    .await;

    // Nothing beyond that one object: another configuration, Secrets.
    let other =
        ca_bundle::CaBundlePublisher::new(operator.clone(), "someone-else".into(), "x".into());
    let err = other
        .publish(&running.ca_pem, "rbac", 0)
        .await
        .expect_err("another configuration is out of reach");
    assert!(err.to_string().contains("forbidden"), "{err}");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(operator, "tfjob-system");
    match secrets.list(&Default::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403),
        other => panic!("secrets must be forbidden: {other:?}"),
    }
    running.stop().await;
    for (kind, name) in [
        ("ClusterRoleBinding", "tfjob-operator-webhook"),
        ("ClusterRole", "tfjob-operator-webhook"),
    ] {
        let resource = match kind {
            "ClusterRole" => ApiResource::erase::<k8s_openapi::api::rbac::v1::ClusterRole>(&()),
            _ => ApiResource::erase::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>(&()),
        };
        let _ = Api::<DynamicObject>::all_with(ctx.client.clone(), &resource)
            .delete(name, &DeleteParams::default())
            .await;
    }
    configs.delete(&ctx).await;
    ctx.teardown().await;
}

/// A free loopback port (bound and released; the race with other processes is harmless here).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_binary_serves_the_webhook_from_its_flags() {
    let ctx = TestContext::new("webhook-binary").await;
    let configs = Configs::named();
    let (port, probes) = (free_port(), free_port());
    configs.create(&ctx, port, "Fail", false).await;
    let mut operator = tokio::process::Command::new(env!("CARGO_BIN_EXE_tfjob-operator"))
        .args([
            &format!("--namespace={}", ctx.namespace),
            "--metrics-bind-address=0",
            &format!("--health-probe-bind-address=127.0.0.1:{probes}"),
            "--webhook-enabled",
            &format!("--webhook-server-port={port}"),
            "--webhook-cert-extra-sans=127.0.0.1",
            &format!("--validating-webhook-config-name={}", configs.validating),
            &format!("--mutating-webhook-config-name={}", configs.mutating),
        ])
        .env("KUBECONFIG", &control_plane().kubeconfig)
        .env("POD_NAME", "operator-binary")
        .env("POD_NAMESPACE", "default")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the operator binary");

    // It publishes its CA, the apiserver calls it, and only then is it ready.
    await_enforced(&ctx).await;
    let output = apply(&ctx, &two_chiefs("chiefs")).await;
    assert_eq!(
        output.stderr,
        denied_create_with_hints(TWO_CHIEFS, &[TWO_CHIEFS_HINT.into()])
    );
    wait_for(secs(10), "/readyz to answer 200", || async {
        let mut stream = TcpStream::connect(("127.0.0.1", probes))
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut reply = String::new();
        stream
            .read_to_string(&mut reply)
            .await
            .map_err(|e| e.to_string())?;
        if reply.starts_with("HTTP/1.1 200") {
            Ok(())
        } else {
            Err(reply)
        }
    })
    .await;

    // SIGTERM: it stops cleanly, and the port is closed.
    let pid = operator.id().expect("a pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(secs(30), operator.wait())
        .await
        .expect("the operator stops within 30 s")
        .expect("its status");
    assert!(status.success(), "{status}");
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
    configs.delete(&ctx).await;
    ctx.teardown().await;
}
