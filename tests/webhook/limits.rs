//! What a caller can make the webhook hold is bounded: at most `MAX_REVIEWS` reviews are read
//! and decoded at once, and a body sent too slowly is cut off with 408 after `REVIEW_TIMEOUT`.

use super::*;

use tfjob_operator::webhook::server::{MAX_REVIEWS, REVIEW_TIMEOUT};

fn client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for der in rustls::pki_types::pem::PemObject::pem_slice_iter(ca_pem.as_bytes()) {
        let der: rustls::pki_types::CertificateDer = der.expect("PEM");
        roots.add(der).expect("a CA");
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// Posts to the validating path: the whole `body` when `announced` is its length, else only
/// `body` of an announced `announced` bytes, then waits. Returns how long the answer took and
/// its status line.
async fn post(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    body: Vec<u8>,
    announced: usize,
) -> (Duration, String) {
    let started = Instant::now();
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let mut stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    let head = format!(
        "POST {VALIDATE_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
         connection: close\r\ncontent-length: {announced}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&body).await.expect("body");
    stream.flush().await.expect("flush");
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply).await;
    let reply = String::from_utf8_lossy(&reply);
    let status = reply.lines().next().unwrap_or("no answer").to_string();
    (started.elapsed(), status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_are_cut_off_and_reviews_in_progress_are_bounded() {
    let ctx = TestContext::new("webhook-limits").await;
    let (running, configs) = webhook_for(&ctx, secs(3600), secs(60), false).await;
    let tls = client_config(&running.ca_pem);
    let review = serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "limits", "kind": {"group": "kubeflow.org", "version": "v1", "kind": "TFJob"},
            "resource": {"group": "kubeflow.org", "version": "v1", "resource": "tfjobs"},
            "namespace": ctx.namespace, "operation": "CREATE", "userInfo": {}, "object": two_chiefs("direct")}
    }))
    .expect("review");
    let slow = || {
        let tls = tls.clone();
        tokio::spawn(post(
            running.addr,
            tls,
            b"{\"apiVersion\"".to_vec(),
            1_000_000,
        ))
    };
    let whole = || post(running.addr, tls.clone(), review.clone(), review.len());

    // One slot short of the limit: a review still gets through at once.
    let mut slow_ones: Vec<_> = (0..MAX_REVIEWS - 1).map(|_| slow()).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (free, status) = whole().await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(free < secs(2), "a free slot answered in {free:?}");

    // Every slot held by a slow body: the next review waits until they are cut off.
    slow_ones.push(slow());
    // Late enough that the held slots free up well before this review's own timeout.
    tokio::time::sleep(secs(2)).await;
    let (waited, status) = whole().await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(
        waited >= REVIEW_TIMEOUT / 2 - secs(1),
        "answered in {waited:?} with all {MAX_REVIEWS} slots held: no limit"
    );
    for slow_one in slow_ones {
        let (held, status) = slow_one.await.expect("slow post");
        assert!(
            status.starts_with("HTTP/1.1 408"),
            "a slow body got {status}"
        );
        assert!(
            held <= REVIEW_TIMEOUT + secs(3),
            "a slow body held its slot for {held:?}"
        );
    }
    eprintln!(
        "webhook limits: with {} slow bodies a review took {free:.2?}; with {MAX_REVIEWS} it \
         waited {waited:.1?}; each slow body got 408 after about {REVIEW_TIMEOUT:?}",
        MAX_REVIEWS - 1
    );
    running.stop().await;
    configs.delete(&ctx).await;
    ctx.teardown().await;
}
