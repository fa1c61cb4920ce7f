//! Security properties of what ships, checked against the real binary and the sources.
//!
//! - The metrics and health server of the running `tfjob-operator` answers its three paths and
//!   nothing else: any other path is 404, another method 405, a body over the limit 413,
//!   malformed requests 400; the process survives all of it.
//! - No `unsafe` code in the crate: every crate root forbids it, and no source file under
//!   `src/` or `tests/` contains an `unsafe` block, function, impl or attribute.
//!
//! Elsewhere: the least-privilege RBAC and the restricted pod security of the chart and of the
//! kustomize base are proven by `tests/deploy_install.rs` (the operator binary runs under the
//! chart's ServiceAccount identity until a TFJob succeeds, and `kubectl auth can-i` shows it
//! may do nothing else) and `tests/deploy_render.rs` (non-root, read-only root filesystem, no
//! privilege escalation, all capabilities dropped, RuntimeDefault seccomp); licences, bans and
//! sources of the dependencies by `cargo deny` in `hack/test.sh` (see `deny.toml`).

use test_support as support;

use std::path::{Path, PathBuf};

use support::binary::{OperatorBinary, http_raw};
use support::*;
use tfjob_operator::ops::server::MAX_REQUEST_BODY;

/// Other paths 404, other methods 405 (with `Allow`), oversized bodies 413, garbage 400 —
/// on both ports of the running binary, which keeps serving and never panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_and_health_server_exposes_nothing_else() {
    let ctx = TestContext::new("http-surface").await;
    let mut operator = OperatorBinary::start(
        "http-surface",
        &control_plane().kubeconfig,
        &[format!("--namespace={}", ctx.namespace)],
    )
    .await;
    let metrics = operator.metrics.expect("metrics address");
    let probes = operator.probes.expect("probes address");
    assert_ne!(metrics.port(), probes.port(), "two ports, as deployed");
    wait_for(secs(30), "/readyz", || async {
        matches!(operator.readyz().await, Ok((200, _)))
    })
    .await;

    let get = |addr, path: &'static str| async move {
        http_raw(addr, "GET", path, &[], b"")
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .0
    };
    // What is served, and where.
    assert_eq!(get(metrics, "/metrics").await, 200);
    assert_eq!(get(probes, "/healthz").await, 200);
    assert_eq!(get(probes, "/readyz").await, 200);
    assert_eq!(
        get(metrics, "/healthz").await,
        404,
        "probes only on their port"
    );
    assert_eq!(
        get(probes, "/metrics").await,
        404,
        "metrics only on their port"
    );

    // Nothing else: no index, no debug or admin endpoints, no path tricks.
    for path in [
        "/",
        "/metrics/",
        "/metrics/extra",
        "/healthz/",
        "/readyz/x",
        "/debug/pprof/",
        "/debug/vars",
        "/admin",
        "/api/v1/namespaces",
        "/apis/kubeflow.org/v1/tfjobs",
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/metrics/../healthz",
        "//metrics",
        "/METRICS",
        "/livez",
        "/version",
        "/swagger.json",
    ] {
        for addr in [metrics, probes] {
            let (status, _, body) = http_raw(addr, "GET", path, &[], b"")
                .await
                .unwrap_or_else(|e| panic!("GET {path}: {e}"));
            assert_eq!(status, 404, "GET {path} on {addr}: {body}");
            assert!(body.len() < 100, "a 404 says nothing: {body:?}");
        }
    }

    // Only GET (and HEAD) on the served paths.
    for (addr, path) in [
        (metrics, "/metrics"),
        (probes, "/healthz"),
        (probes, "/readyz"),
    ] {
        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            let (status, head, _) = http_raw(addr, method, path, &[], b"{}")
                .await
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            assert_eq!(status, 405, "{method} {path}");
            assert!(
                head.to_ascii_lowercase().contains("allow: get,head"),
                "{method} {path}: {head}"
            );
        }
    }

    // Request bodies are bounded, whatever the path or method; at the limit they pass.
    let big = vec![b'x'; MAX_REQUEST_BODY + 1];
    for (addr, method, path) in [
        (metrics, "POST", "/metrics"),
        (metrics, "GET", "/metrics"),
        (probes, "GET", "/healthz"),
        (probes, "PUT", "/nowhere"),
    ] {
        let (status, _, _) = http_raw(addr, method, path, &[], &big)
            .await
            .unwrap_or_else(|e| panic!("{method} {path} with a large body: {e}"));
        assert_eq!(status, 413, "{method} {path} with {} bytes", big.len());
    }
    let huge = vec![b'x'; 8 << 20];
    let (status, _, _) = http_raw(metrics, "POST", "/metrics", &[], &huge)
        .await
        .expect("an 8 MiB body is refused, not read");
    assert_eq!(status, 413);
    let at_limit = vec![b'x'; MAX_REQUEST_BODY];
    let (status, _, _) = http_raw(probes, "GET", "/healthz", &[], &at_limit)
        .await
        .expect("GET /healthz");
    assert_eq!(status, 200);
    // A chunked body over the limit is cut off too.
    let chunked = format!("{:x}\r\n{}\r\n0\r\n\r\n", big.len(), "x".repeat(big.len()));
    let (status, _, _) = http_raw(
        metrics,
        "POST",
        "/metrics",
        &["transfer-encoding: chunked"],
        chunked.as_bytes(),
    )
    .await
    .expect("chunked POST");
    assert!(matches!(status, 405 | 413), "chunked body: {status}");

    // Garbage on the socket: answered 400 or closed, never a crash.
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..], // a TLS ClientHello
        b"GET / HTTP/9.9\r\n\r\n",
        b"\r\n\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\n\r\n",
    ] {
        for addr in [metrics, probes] {
            let _ = raw_exchange(addr, garbage).await;
        }
    }

    // Still serving, never panicked.
    assert_eq!(get(metrics, "/metrics").await, 200);
    assert_eq!(get(probes, "/healthz").await, 200);
    assert!(operator.is_running(), "{}", operator.log_tail(20));
    assert_eq!(operator.panics(), Vec::<String>::new());
    let status = operator.terminate(secs(20)).await;
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    ctx.teardown().await;
}

/// Writes raw bytes and reads whatever comes back within 5 s.
async fn raw_exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(bytes).await?;
        stream.shutdown().await?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await?;
        Ok::<_, std::io::Error>(reply)
    };
    match tokio::time::timeout(secs(5), exchange).await {
        Ok(Ok(reply)) => reply,
        _ => Vec::new(),
    }
}

/// Every package of the workspace forbids `unsafe` (the workspace lint, which each member
/// inherits), and no Rust file in the repository uses it.
#[test]
fn no_unsafe_code_anywhere_in_the_workspace() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    assert!(
        workspace.contains("[workspace.lints.rust]\n# No `unsafe` anywhere")
            && workspace.contains("unsafe_code = \"forbid\""),
        "the workspace must forbid unsafe code"
    );
    let mut manifests = vec![root.join("Cargo.toml")];
    for entry in std::fs::read_dir(root.join("crates")).expect("crates/") {
        manifests.push(entry.expect("entry").path().join("Cargo.toml"));
    }
    for manifest in &manifests {
        let text = std::fs::read_to_string(manifest).expect("member manifest");
        assert!(
            text.contains("[lints]\nworkspace = true"),
            "{} must inherit the workspace lints",
            manifest.display()
        );
    }

    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    rust_files(&root.join("crates"), &mut files);
    assert!(files.len() > 50, "found the sources: {}", files.len());
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("source file");
        for (n, line) in text.lines().enumerate() {
            let tokens = tokens(line);
            let uses_unsafe = tokens.iter().enumerate().any(|(i, t)| {
                t == "unsafe"
                    && tokens.get(i + 1).is_none_or(|next| {
                        ["{", "fn", "impl", "extern", "trait", "("].contains(&next.as_str())
                    })
            });
            if uses_unsafe {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "unsafe code:\n{}", found.join("\n"));
}

/// The code tokens of one line: identifiers and single punctuation characters, without string
/// literals and `//` comments.
fn tokens(line: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut chars = line.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
        match c {
            '"' => in_string = true,
            '/' if chars.peek() == Some(&'/') => break,
            c if c.is_whitespace() => {}
            c => tokens.push(c.to_string()),
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    tokens
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
