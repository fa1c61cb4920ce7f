//! The operator's plain-HTTP endpoints, served with axum:
//!
//! * metrics address: `GET /metrics` (Prometheus text format);
//! * probe address: `GET /healthz` (200 while the process serves HTTP) and `GET /readyz`
//!   (200 when [`Readiness`] says so, else 503 with a one-line reason).
//!
//! When both addresses are equal, all three paths share one listener. Unknown paths get 404 and a
//! known path with another method 405; request bodies over [`MAX_REQUEST_BODY`] get 413 (no
//! endpoint takes a body). Servers stop gracefully when the shutdown future completes.
//!
//! Binding and serving are separate steps ([`OpsServer::bind`], [`OpsServer::serve`]) so a port
//! already in use fails start-up, and so tests can bind port 0 and learn the real address.

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU8, Ordering},
    },
};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use futures::FutureExt;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;

use super::liveness::Liveness;
use super::metrics::Metrics;

/// Largest request body accepted; the endpoints take none, so this only bounds misuse.
pub const MAX_REQUEST_BODY: usize = 4 * 1024;

/// Leader-election state as it matters for readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaderState {
    /// Leader election is off: this replica always reconciles.
    Disabled,
    /// This replica holds the lease and reconciles.
    Leading,
    /// Another replica leads; this one waits to take over.
    Standby,
}

/// Shared readiness flags behind `/readyz`; cheap to clone.
///
/// Ready means: not shutting down, and either standing by for the lease or (leading or running
/// without election and) caches synced. A standby replica reports ready on purpose: with
/// `--leader-elect` and two replicas, a readiness gate on leadership would keep one replica
/// unready forever and stall every rolling update of the Deployment.
#[derive(Debug, Clone)]
pub struct Readiness {
    inner: Arc<ReadinessFlags>,
}

#[derive(Debug)]
struct ReadinessFlags {
    caches_synced: AtomicBool,
    leader: AtomicU8,
    shutting_down: AtomicBool,
    /// 0: no webhook; 1: webhook not ready (no trusted certificate yet); 2: webhook ready.
    webhook: AtomicU8,
    /// The start-up checks cannot reach the apiserver (retrying).
    apiserver_unreachable: AtomicBool,
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl Readiness {
    /// Not ready: caches not synced, leader election disabled.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(ReadinessFlags {
                caches_synced: AtomicBool::new(false),
                leader: AtomicU8::new(encode_leader(LeaderState::Disabled)),
                shutting_down: AtomicBool::new(false),
                webhook: AtomicU8::new(0),
                apiserver_unreachable: AtomicBool::new(false),
            }),
        }
    }

    /// The controller's caches finished their initial list (or were dropped again: pass false).
    pub fn set_caches_synced(&self, synced: bool) {
        self.inner.caches_synced.store(synced, Ordering::Release);
    }

    /// Records the leader-election state.
    pub fn set_leader_state(&self, state: LeaderState) {
        self.inner
            .leader
            .store(encode_leader(state), Ordering::Release);
    }

    /// The process is stopping: report unready from now on so traffic and rollouts move on.
    pub fn set_shutting_down(&self) {
        self.inner.shutting_down.store(true, Ordering::Release);
    }

    /// This replica serves the admission webhook, with (`true`) or without a certificate the
    /// apiserver trusts yet. Once called, readiness requires it on every replica, leader or
    /// standby, since the webhook Service sends calls to any ready replica.
    pub fn set_webhook_ready(&self, ready: bool) {
        self.inner
            .webhook
            .store(if ready { 2 } else { 1 }, Ordering::Release);
    }

    /// The start-up checks cannot reach the apiserver and are retrying (or can again).
    pub fn set_apiserver_unreachable(&self, unreachable: bool) {
        self.inner
            .apiserver_unreachable
            .store(unreachable, Ordering::Release);
    }

    /// `Ok(())` when ready, else the reason `/readyz` reports.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.inner.shutting_down.load(Ordering::Acquire) {
            return Err("shutting down");
        }
        if self.inner.apiserver_unreachable.load(Ordering::Acquire) {
            return Err("cannot reach the apiserver; retrying (see the log)");
        }
        if self.inner.webhook.load(Ordering::Acquire) == 1 {
            return Err("webhook certificate not ready");
        }
        let leader = decode_leader(self.inner.leader.load(Ordering::Acquire));
        if leader == LeaderState::Standby {
            return Ok(());
        }
        if !self.inner.caches_synced.load(Ordering::Acquire) {
            return Err("caches not synced");
        }
        Ok(())
    }
}

fn encode_leader(state: LeaderState) -> u8 {
    match state {
        LeaderState::Disabled => 0,
        LeaderState::Leading => 1,
        LeaderState::Standby => 2,
    }
}

fn decode_leader(value: u8) -> LeaderState {
    match value {
        1 => LeaderState::Leading,
        2 => LeaderState::Standby,
        _ => LeaderState::Disabled,
    }
}

/// The HTTP server could not start or failed while serving.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr} for {purpose}: {source}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// `metrics`, `health probes` or both.
        purpose: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Accepting or serving connections failed.
    #[error("HTTP server on {addr} failed: {source}")]
    Serve {
        /// The bound address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Listeners bound for the metrics and probe endpoints, ready to [`serve`](Self::serve).
#[derive(Debug)]
pub struct OpsServer {
    listeners: Vec<(TcpListener, Router, SocketAddr)>,
    metrics_addr: Option<SocketAddr>,
    probe_addr: Option<SocketAddr>,
}

impl OpsServer {
    /// Binds the enabled addresses (`None` = endpoint disabled); equal addresses share one
    /// listener, except port 0, which gives each endpoint its own free port.
    pub async fn bind(
        metrics_addr: Option<SocketAddr>,
        probe_addr: Option<SocketAddr>,
        metrics: Metrics,
        readiness: Readiness,
        liveness: Liveness,
    ) -> Result<Self, ServerError> {
        let metrics_routes = Router::new()
            .route("/metrics", get(serve_metrics))
            .with_state(metrics);
        let probe_routes = Router::new()
            .route("/healthz", get(healthz).with_state(liveness))
            .route("/readyz", get(readyz).with_state(readiness));

        // (address, routes, purpose, serves /metrics, serves probes)
        let plan: Vec<(SocketAddr, Router, &'static str, bool, bool)> =
            match (metrics_addr, probe_addr) {
                // Port 0 asks for any free port, so two port-0 endpoints get one each.
                (Some(m), Some(p)) if m == p && m.port() != 0 => vec![(
                    m,
                    metrics_routes.merge(probe_routes),
                    "metrics and health probes",
                    true,
                    true,
                )],
                (m, p) => m
                    .map(|m| (m, metrics_routes, "metrics", true, false))
                    .into_iter()
                    .chain(p.map(|p| (p, probe_routes, "health probes", false, true)))
                    .collect(),
            };

        let mut server = Self {
            listeners: Vec::new(),
            metrics_addr: None,
            probe_addr: None,
        };
        for (addr, router, purpose, serves_metrics, serves_probes) in plan {
            let bind_error = |source| ServerError::Bind {
                addr,
                purpose,
                source,
            };
            let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
            let bound = listener.local_addr().map_err(bind_error)?;
            if serves_metrics {
                server.metrics_addr = Some(bound);
            }
            if serves_probes {
                server.probe_addr = Some(bound);
            }
            let router = router.layer(RequestBodyLimitLayer::new(MAX_REQUEST_BODY));
            server.listeners.push((listener, router, bound));
        }
        Ok(server)
    }

    /// Where `/metrics` is served, if enabled (the real port when 0 was requested).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Where `/healthz` and `/readyz` are served, if enabled.
    pub fn probe_addr(&self) -> Option<SocketAddr> {
        self.probe_addr
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests and returns.
    /// Returns at once when both endpoints are disabled.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let shutdown = shutdown.shared();
        let servers = self.listeners.into_iter().map(|(listener, router, addr)| {
            let shutdown = shutdown.clone();
            async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await
                    .map_err(|source| ServerError::Serve { addr, source })
            }
        });
        futures::future::try_join_all(servers).await.map(|_| ())
    }
}

async fn serve_metrics(State(metrics): State<Metrics>) -> Response {
    match metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "cannot encode metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response()
        }
    }
}

async fn healthz(State(liveness): State<Liveness>) -> (StatusCode, String) {
    match liveness.check() {
        Ok(()) => (StatusCode::OK, "ok".into()),
        Err(stalled) => (StatusCode::INTERNAL_SERVER_ERROR, stalled),
    }
}

async fn readyz(State(readiness): State<Readiness>) -> (StatusCode, &'static str) {
    match readiness.check() {
        Ok(()) => (StatusCode::OK, "ok"),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
        sync::oneshot,
        task::JoinHandle,
    };

    use super::*;

    struct Reply {
        status: u16,
        headers: String,
        body: String,
    }

    /// Sends one raw HTTP/1.1 request (with `Connection: close`) and parses the reply.
    async fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Reply {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.expect("write head");
        // The server may answer 413 and close before reading a large body; ignore write errors.
        let _ = stream.write_all(body).await;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read reply");
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").expect("reply has a head");
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        Reply {
            status,
            headers: head.to_ascii_lowercase(),
            body: body.to_string(),
        }
    }

    struct Running {
        metrics_addr: Option<SocketAddr>,
        probe_addr: Option<SocketAddr>,
        stop: oneshot::Sender<()>,
        task: JoinHandle<Result<(), ServerError>>,
    }

    async fn start(
        metrics_addr: Option<&str>,
        probe_addr: Option<&str>,
        readiness: Readiness,
    ) -> Running {
        let metrics = Metrics::new().expect("metrics");
        metrics.pods_created(7);
        let parse = |a: &str| a.parse::<SocketAddr>().expect("addr");
        let server = OpsServer::bind(
            metrics_addr.map(parse),
            probe_addr.map(parse),
            metrics.clone(),
            readiness,
            Liveness::new(metrics, None),
        )
        .await
        .expect("bind");
        let (stop, stopped) = oneshot::channel::<()>();
        let (metrics_addr, probe_addr) = (server.metrics_addr(), server.probe_addr());
        let task = tokio::spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        Running {
            metrics_addr,
            probe_addr,
            stop,
            task,
        }
    }

    async fn stop(running: Running) {
        let _ = running.stop.send(());
        tokio::time::timeout(Duration::from_secs(5), running.task)
            .await
            .expect("server stops promptly")
            .expect("task")
            .expect("serve");
    }

    #[tokio::test]
    async fn separate_listeners_serve_their_own_paths() {
        let running = start(Some("127.0.0.1:0"), Some("127.0.0.1:0"), Readiness::new()).await;
        let metrics = running.metrics_addr.expect("metrics enabled");
        let probes = running.probe_addr.expect("probes enabled");
        assert_ne!(metrics, probes);

        let reply = request(metrics, "GET", "/metrics", b"").await;
        assert_eq!(reply.status, 200);
        assert!(
            reply
                .headers
                .contains("content-type: text/plain; version=0.0.4"),
            "{}",
            reply.headers
        );
        assert!(
            reply.body.contains("tfjob_operator_pods_created_total 7"),
            "{}",
            reply.body
        );

        assert_eq!(request(probes, "GET", "/healthz", b"").await.status, 200);
        // Each listener serves only its own paths.
        assert_eq!(request(metrics, "GET", "/healthz", b"").await.status, 404);
        assert_eq!(request(probes, "GET", "/metrics", b"").await.status, 404);
        stop(running).await;
    }

    #[tokio::test]
    async fn equal_addresses_share_one_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("probe free port");
        let addr = listener.local_addr().expect("addr").to_string();
        drop(listener);
        let running = start(Some(&addr), Some(&addr), Readiness::new()).await;
        assert_eq!(running.metrics_addr, running.probe_addr);
        let addr = running.metrics_addr.expect("enabled");
        assert_eq!(request(addr, "GET", "/metrics", b"").await.status, 200);
        assert_eq!(request(addr, "GET", "/healthz", b"").await.status, 200);
        stop(running).await;
    }

    #[tokio::test]
    async fn readyz_follows_the_readiness_flags() {
        let readiness = Readiness::new();
        let running = start(None, Some("127.0.0.1:0"), readiness.clone()).await;
        let probes = running.probe_addr.expect("probes");
        assert_eq!(running.metrics_addr, None);

        let reply = request(probes, "GET", "/readyz", b"").await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (503, "caches not synced")
        );

        readiness.set_caches_synced(true);
        let reply = request(probes, "GET", "/readyz", b"").await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "ok"));

        readiness.set_shutting_down();
        let reply = request(probes, "GET", "/readyz", b"").await;
        assert_eq!((reply.status, reply.body.as_str()), (503, "shutting down"));
        // Liveness does not depend on readiness.
        assert_eq!(request(probes, "GET", "/healthz", b"").await.status, 200);
        stop(running).await;
    }

    #[test]
    fn readiness_rules() {
        let r = Readiness::new();
        assert_eq!(r.check(), Err("caches not synced"));
        r.set_leader_state(LeaderState::Standby);
        assert_eq!(r.check(), Ok(()), "a standby replica is ready");
        r.set_leader_state(LeaderState::Leading);
        assert_eq!(r.check(), Err("caches not synced"));
        r.set_caches_synced(true);
        assert_eq!(r.check(), Ok(()));
        r.set_leader_state(LeaderState::Disabled);
        assert_eq!(r.check(), Ok(()));
        r.set_caches_synced(false);
        assert_eq!(r.check(), Err("caches not synced"));
        r.set_apiserver_unreachable(true);
        assert_eq!(
            r.check(),
            Err("cannot reach the apiserver; retrying (see the log)")
        );
        r.set_apiserver_unreachable(false);
        r.set_shutting_down();
        r.set_leader_state(LeaderState::Standby);
        assert_eq!(r.check(), Err("shutting down"));
    }

    #[test]
    fn a_webhook_must_be_ready_on_every_replica() {
        let r = Readiness::new();
        r.set_caches_synced(true);
        r.set_webhook_ready(false);
        assert_eq!(r.check(), Err("webhook certificate not ready"));
        r.set_leader_state(LeaderState::Standby);
        assert_eq!(
            r.check(),
            Err("webhook certificate not ready"),
            "a standby replica serves the webhook too"
        );
        r.set_webhook_ready(true);
        assert_eq!(r.check(), Ok(()));
    }

    #[tokio::test]
    async fn unknown_paths_methods_and_large_bodies_are_refused() {
        let running = start(Some("127.0.0.1:0"), Some("127.0.0.1:0"), Readiness::new()).await;
        let metrics = running.metrics_addr.expect("metrics");
        let probes = running.probe_addr.expect("probes");

        assert_eq!(request(metrics, "GET", "/", b"").await.status, 404);
        assert_eq!(
            request(metrics, "GET", "/metrics/extra", b"").await.status,
            404
        );
        assert_eq!(request(probes, "GET", "/livez", b"").await.status, 404);

        let reply = request(metrics, "POST", "/metrics", b"x").await;
        assert_eq!(reply.status, 405);
        assert!(
            reply.headers.contains("allow: get,head"),
            "{}",
            reply.headers
        );

        let big = vec![b'x'; MAX_REQUEST_BODY + 1];
        assert_eq!(request(metrics, "POST", "/metrics", &big).await.status, 413);
        assert_eq!(request(probes, "GET", "/healthz", &big).await.status, 413);
        assert_eq!(request(probes, "PUT", "/nowhere", &big).await.status, 413);
        // A body within the limit is accepted (and ignored).
        let small = vec![b'x'; MAX_REQUEST_BODY];
        assert_eq!(request(probes, "GET", "/healthz", &small).await.status, 200);
        stop(running).await;
    }

    #[tokio::test]
    async fn bind_conflict_is_reported_with_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let err = OpsServer::bind(
            Some(addr),
            None,
            Metrics::new().expect("metrics"),
            Readiness::new(),
            Liveness::new(Metrics::new().expect("metrics"), None),
        )
        .await
        .expect_err("address in use");
        let message = err.to_string();
        assert!(
            message.contains(&addr.to_string()) && message.contains("metrics"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn graceful_shutdown_stops_accepting() {
        let running = start(Some("127.0.0.1:0"), None, Readiness::new()).await;
        let addr = running.metrics_addr.expect("metrics");
        assert_eq!(request(addr, "GET", "/metrics", b"").await.status, 200);
        stop(running).await;
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "listener closed after shutdown"
        );
    }

    #[tokio::test]
    async fn nothing_enabled_serves_nothing() {
        let server = OpsServer::bind(
            None,
            None,
            Metrics::new().expect("metrics"),
            Readiness::new(),
            Liveness::new(Metrics::new().expect("metrics"), None),
        )
        .await
        .expect("bind");
        tokio::time::timeout(Duration::from_secs(1), server.serve(std::future::pending()))
            .await
            .expect("returns at once")
            .expect("ok");
    }
}
