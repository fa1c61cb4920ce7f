//! Self-signed serving certificates: both replicas' CAs trusted, rotation under load.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_each_publish_their_ca_and_both_are_trusted() {
    let ctx = TestContext::new("webhook-replicas").await;
    let (first, configs) = webhook_for(&ctx, secs(3600), secs(600), false).await;
    let second = serve(start_webhook(&ctx, &configs, secs(3600), secs(600), false).await);
    await_trusted(&ctx, &configs, &second.ca_pem).await;
    assert!(
        ca_bundle::trusts(&configs.validating_object(&ctx).await, &first.ca_pem),
        "the second replica kept the first one's CA"
    );
    // Point the configuration at the second replica: its certificate is trusted as well.
    configs.update(&ctx, second.addr.port(), "Fail").await;
    let expected =
        format!("admission webhook \"{VALIDATING_WEBHOOK_NAME}\" denied the request: {TWO_CHIEFS}");
    first.stop().await;
    wait_for(
        secs(20),
        "the apiserver to call the second replica",
        || async {
            match dry_run(&ctx, &two_chiefs("probe")).await {
                Err(message) if message == expected => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    second.stop().await;
    configs.delete(&ctx).await;
    ctx.teardown().await;
}

/// One AdmissionReview posted on a fresh TLS connection that trusts exactly the caBundle of the
/// configuration and checks name and validity as the apiserver does; returns the served cert.
async fn post_review(
    addr: SocketAddr,
    bundle: &rustls::RootCertStore,
    body: &[u8],
) -> Result<Vec<u8>, String> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(bundle.clone())
    .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
    let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let cert = stream
        .get_ref()
        .1
        .peer_certificates()
        .ok_or("no certificate")?[0]
        .to_vec();
    let head = format!(
        "POST {VALIDATE_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.write_all(body).await.map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .await
        .map_err(|e| e.to_string())?;
    let reply = String::from_utf8_lossy(&reply);
    if !reply.starts_with("HTTP/1.1 200") || !reply.contains(r#""allowed":false"#) {
        return Err(format!("unexpected reply: {reply}"));
    }
    Ok(cert)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_certificates_rotate_under_load_without_a_failed_admission() {
    let ctx = TestContext::new("webhook-rotation").await;
    // Three-second certificates, replaced two seconds before they expire: a new one about every
    // second. Without rotation they would expire three seconds in and every handshake would fail.
    let (running, configs) = webhook_for(&ctx, secs(3), secs(2), false).await;
    let bundle_before =
        configs.validating_object(&ctx).await.data["webhooks"][0]["clientConfig"]["caBundle"]
            .clone();

    // The client side of the direct posts trusts exactly what the apiserver trusts.
    let mut roots = rustls::RootCertStore::empty();
    let k8s_openapi::ByteString(pem) =
        serde_json::from_value(bundle_before.clone()).expect("caBundle");
    for der in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        let der: rustls::pki_types::CertificateDer = der.expect("PEM");
        roots.add(der).expect("a CA");
    }
    let review = serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "rotation", "kind": {"group": "kubeflow.org", "version": "v1", "kind": "TFJob"},
            "resource": {"group": "kubeflow.org", "version": "v1", "resource": "tfjobs"},
            "namespace": ctx.namespace, "operation": "CREATE", "userInfo": {}, "object": two_chiefs("direct")}
    }))
    .expect("review");

    let hammer_for = Duration::from_secs(7);
    let started = Instant::now();
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let admissions = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(std::sync::Mutex::new(BTreeSet::<Vec<u8>>::new()));
    let mut tasks = Vec::new();
    // Through the apiserver: good jobs are created, bad ones denied by the webhook (dry run).
    for worker in 0..3 {
        let (ctx_client, namespace) = (ctx.client.clone(), ctx.namespace.clone());
        let (failures, admissions) = (failures.clone(), admissions.clone());
        tasks.push(tokio::spawn(async move {
            let api: Api<TFJob> = Api::namespaced(ctx_client, &namespace);
            let expected = format!(
                "admission webhook \"{VALIDATING_WEBHOOK_NAME}\" denied the request: {TWO_CHIEFS}"
            );
            let mut n = 0;
            while started.elapsed() < hammer_for {
                n += 1;
                let good: TFJob =
                    serde_json::from_value(job(&format!("load-{worker}-{n}"))).expect("job");
                if let Err(e) = api.create(&PostParams::default(), &good).await {
                    failures
                        .lock()
                        .expect("lock")
                        .push(format!("create {worker}-{n}: {e}"));
                }
                let bad: TFJob = serde_json::from_value(two_chiefs("bad")).expect("job");
                let dry = PostParams {
                    dry_run: true,
                    ..Default::default()
                };
                match api.create(&dry, &bad).await {
                    Err(kube::Error::Api(status))
                        if status.message == expected && status.code == 403 => {}
                    other => failures
                        .lock()
                        .expect("lock")
                        .push(format!("bad {worker}-{n}: {other:?}")),
                }
                admissions.fetch_add(2, Ordering::Relaxed);
            }
        }));
    }
    // Directly, each on a new connection: every handshake sees the current certificate.
    for _ in 0..2 {
        let (failures, admissions, served) = (failures.clone(), admissions.clone(), served.clone());
        let (roots, review, addr) = (roots.clone(), review.clone(), running.addr);
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < hammer_for {
                match post_review(addr, &roots, &review).await {
                    Ok(cert) => {
                        served.lock().expect("lock").insert(cert);
                        admissions.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => failures.lock().expect("lock").push(format!("direct: {e}")),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("load task");
    }
    let failures = failures.lock().expect("lock").clone();
    let served = served.lock().expect("lock").len();
    let admissions = admissions.load(Ordering::Relaxed);
    eprintln!(
        "rotation under load: {admissions} admissions, {served} serving certificates, {} failures",
        failures.len()
    );
    assert_eq!(failures, Vec::<String>::new());
    assert!(
        served >= 4,
        "only {served} certificates were served in {hammer_for:?}"
    );
    assert!(admissions >= 100, "only {admissions} admissions");
    // The CA did not change, so the caBundle did not either.
    let bundle_after =
        configs.validating_object(&ctx).await.data["webhooks"][0]["clientConfig"]["caBundle"]
            .clone();
    assert_eq!(bundle_before, bundle_after);
    running.stop().await;
    configs.delete(&ctx).await;
    ctx.teardown().await;
}
