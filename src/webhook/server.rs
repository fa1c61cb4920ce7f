//! The HTTPS listener of the admission webhook: TLS (rustls, certificate from
//! [`super::tls::ServingCert`]), HTTP/1.1 (hyper), routes (axum).
//!
//! * `POST /validate-kubeflow-org-v1-tfjob`: the validating review;
//! * `POST /mutate-kubeflow-org-v1-tfjob`: the defaulting review, only when enabled;
//! * anything else: 404 (405 for another method on a known path). Bodies over [`MAX_BODY`] get
//!   413; a body that is not a v1 AdmissionReview gets 400 with the reason.
//!
//! The webhook shares the process with the controller, so what a caller can make it hold is
//! bounded: at most [`MAX_REVIEWS`] reviews are read and decoded at once (the others wait,
//! holding no body), a request not answered within [`REVIEW_TIMEOUT`] (a body sent slowly,
//! or a long wait) gets 408, and at most [`MAX_CONNECTIONS`] connections are open.
//!
//! Binding is separate from serving so a port in use fails start-up. On shutdown the listener
//! closes at once and requests in flight get [`DRAIN_TIMEOUT`] to finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceBuilder;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::{debug, warn};

use super::handler::{self, Endpoint, MUTATE_PATH, Placement, VALIDATE_PATH};

/// Largest AdmissionReview accepted. The apiserver takes objects up to 3 MiB and an UPDATE
/// review carries the object twice (new and old), plus JSON overhead.
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// Reviews read and decoded at once. A review of a 3 MiB TFJob update holds ~8 MiB of body
/// and a few times that decoded; TFJob writes are rare, so four is plenty.
pub const MAX_REVIEWS: usize = 4;
/// Longest a request may take, body and queueing included: the apiserver's default webhook
/// timeout, after which nobody waits for the answer.
pub const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 256;
/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Nor sent its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long requests in flight may take after shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The webhook server could not start or failed while serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} for the admission webhook: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The routes; `defaulting` adds the mutating path.
pub fn router(defaulting: bool, placement: Placement) -> Router {
    let placement = Arc::new(placement);
    let mut router = Router::new().route(
        VALIDATE_PATH,
        post({
            let placement = placement.clone();
            move |body: Bytes| async move { respond(Endpoint::Validate, &body, &placement) }
        }),
    );
    if defaulting {
        router = router.route(
            MUTATE_PATH,
            post(move |body: Bytes| async move { respond(Endpoint::Mutate, &body, &placement) }),
        );
    }
    router.layer(RequestBodyLimitLayer::new(MAX_BODY))
}

fn respond(endpoint: Endpoint, body: &[u8], placement: &Placement) -> Response {
    match handler::review(endpoint, body, placement) {
        Ok(answer) => {
            let response = &answer["response"];
            debug!(
                ?endpoint,
                uid = %response["uid"],
                allowed = %response["allowed"],
                "admission review answered"
            );
            match serde_json::to_vec(&answer) {
                Ok(bytes) => (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    bytes,
                )
                    .into_response(),
                // A JSON value always serialises; answer 500 rather than panic if not.
                Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
            }
        }
        Err(err) => {
            warn!(?endpoint, error = %err, "malformed admission review");
            (StatusCode::BAD_REQUEST, err.to_string()).into_response()
        }
    }
}

/// A bound, not yet serving, webhook listener.
pub struct WebhookServer {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    addr: SocketAddr,
}

impl WebhookServer {
    /// Binds `addr` (port 0: any free port).
    pub async fn bind(
        addr: SocketAddr,
        tls: Arc<ServerConfig>,
        router: Router,
    ) -> Result<WebhookServer, ServeError> {
        let bind_error = |source| ServeError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        Ok(WebhookServer {
            listener,
            acceptor: TlsAcceptor::from(tls),
            router,
            addr,
        })
    }

    /// The bound address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) {
        let graceful = GracefulShutdown::new();
        // Around the whole router, so every connection shares one limit (axum would apply a
        // layer to each route, and to a handler route anew on each request).
        let service = TowerToHyperService::new(
            ServiceBuilder::new()
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    REVIEW_TIMEOUT,
                ))
                .layer(ConcurrencyLimitLayer::new(MAX_REVIEWS))
                .service(self.router),
        );
        let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                permit = connections.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break, // never closed
                },
                () = &mut shutdown => break,
            };
            let (tcp, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: transient, back off briefly.
                        warn!(error = %err, "cannot accept a webhook connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let acceptor = self.acceptor.clone();
            let service = service.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let _permit = permit; // held for the connection's life
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(err)) => {
                        debug!(%peer, error = %err, "webhook TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        debug!(%peer, "webhook TLS handshake timed out");
                        return;
                    }
                };
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT);
                let connection = builder.serve_connection(TokioIo::new(tls), service);
                if let Err(err) = watcher.watch(connection).await {
                    debug!(%peer, error = %err, "webhook connection ended with an error");
                }
            });
        }
        drop(self.listener);
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
            .await
            .is_err()
        {
            warn!("webhook requests still running after {DRAIN_TIMEOUT:?}; closing them");
        }
    }
}
