//! The Kubernetes client: kube's default stack (auth, base URI, TLS, retries, tracing, and our
//! `User-Agent` through [`kube::Config::headers`]) wrapped in two layers of ours, outermost first:
//!
//! 1. [`RateLimitLayer`]: a token bucket (governor) shared by every request of the client,
//!    the equivalent of client-go's `--kube-api-qps`/`--kube-api-burst`; off when qps is 0;
//! 2. [`ApiMetricsLayer`]: counts each request into `tfjob_operator_api_requests_total{verb,code}`;
//! 3. [`RequestTimeoutLayer`]: every request but a watch fails after `--request-timeout` without
//!    an answer (kube sets none of its own: one hung create would hold its job's reconcile, and
//!    enough of them every worker).
//!
//! Our layers sit outside kube's retry layer: a request kube retries (429/503/504) takes one
//! token and is counted once, with its final status.

use std::{
    future::Future,
    num::NonZeroU32,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use anyhow::Context as _;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::{HeaderValue, Method, Request, Response, header::USER_AGENT};
use kube::client::ClientBuilder;
use tower::{Layer, Service};

use super::metrics::Metrics;

/// The User-Agent this operator sends.
pub const USER_AGENT_VALUE: &str = concat!("tfjob-operator/", env!("CARGO_PKG_VERSION"));

/// Client-side request rate limit; `qps <= 0` disables it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub qps: f64,
    /// Requests allowed back to back before `qps` applies (the bucket size).
    pub burst: u32,
}

impl RateLimit {
    /// No client-side limit.
    pub const UNLIMITED: Self = Self { qps: 0.0, burst: 1 };

    /// Whether requests are throttled at all.
    pub fn is_enabled(&self) -> bool {
        self.qps > 0.0
    }
}

/// The client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The rate limit cannot be expressed as a token bucket.
    #[error("invalid API rate limit (qps {qps}, burst {burst}): {reason}")]
    InvalidRateLimit {
        /// Requested qps.
        qps: f64,
        /// Requested burst.
        burst: u32,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// kube could not build its default stack from the configuration (TLS, auth, proxy).
    #[error("cannot build the Kubernetes client: {0}")]
    Kube(#[source] kube::Error),
}

/// The client configuration: `--kubeconfig`, else KUBECONFIG, ~/.kube/config or in-cluster.
pub async fn load_config(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Config> {
    let Some(path) = kubeconfig else {
        return kube::Config::infer()
            .await
            .context("cannot find Kubernetes credentials; set KUBECONFIG or run inside a cluster");
    };
    let file = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("cannot read --kubeconfig {}", path.display()))?;
    kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
        .await
        .with_context(|| format!("cannot use --kubeconfig {}", path.display()))
}

/// Builds the operator's [`kube::Client`] from `config` (see the module docs for the layers).
pub fn build_client(
    config: kube::Config,
    rate_limit: RateLimit,
    timeout: Option<Duration>,
    metrics: &Metrics,
) -> Result<kube::Client, ClientError> {
    let rate_limit = RateLimitLayer::new(rate_limit)?;
    // client-go labels its request counter with the apiserver's host:port.
    let host = config
        .cluster_url
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let builder = ClientBuilder::try_from(with_user_agent(config)).map_err(ClientError::Kube)?;
    Ok(builder
        .with_layer(&RequestTimeoutLayer { timeout })
        .with_layer(&ApiMetricsLayer::new(metrics.clone(), host))
        .with_layer(&rate_limit)
        .build())
}

/// `config` sending `User-Agent: tfjob-operator/<version>` (kube sends none of its own), so
/// apiserver audit logs and per-user-agent metrics can attribute our traffic.
fn with_user_agent(mut config: kube::Config) -> kube::Config {
    config
        .headers
        .push((USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE)));
    config
}

/// Throttles requests through one token bucket shared by every service it layers (and their
/// clones). A request waits in `poll_ready` until a token is free, which back-pressures kube's
/// request buffer the way client-go's rate limiter blocks callers.
#[derive(Clone)]
pub struct RateLimitLayer {
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
}

impl RateLimitLayer {
    /// A layer for `limit`, or a pass-through layer when the limit is disabled.
    pub fn new(limit: RateLimit) -> Result<Self, ClientError> {
        if !limit.is_enabled() {
            return Ok(Self { limiter: None });
        }
        let invalid = |reason| ClientError::InvalidRateLimit {
            qps: limit.qps,
            burst: limit.burst,
            reason,
        };
        if !limit.qps.is_finite() {
            return Err(invalid("qps must be a finite number"));
        }
        let burst =
            NonZeroU32::new(limit.burst).ok_or_else(|| invalid("burst must be at least 1"))?;
        // One token is added every 1/qps seconds; governor needs that period to be non-zero.
        let period = Duration::try_from_secs_f64(1.0 / limit.qps)
            .map_err(|_| invalid("qps is out of range"))?;
        let quota = Quota::with_period(period)
            .ok_or_else(|| invalid("qps is too large (refill period below 1 ns)"))?
            .allow_burst(burst);
        Ok(Self {
            limiter: Some(Arc::new(RateLimiter::direct(quota))),
        })
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimited {
            inner,
            limiter: self.limiter.clone(),
            waiting: None,
            has_token: false,
        }
    }
}

type TokenWait = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Service produced by [`RateLimitLayer`].
pub struct RateLimited<S> {
    inner: S,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    /// The pending wait for a token, kept across `poll_ready` calls.
    waiting: Option<TokenWait>,
    /// A token was taken for the next `call`.
    has_token: bool,
}

impl<S: Clone> Clone for RateLimited<S> {
    fn clone(&self) -> Self {
        // A clone shares the bucket but not this instance's pending wait or token.
        Self {
            inner: self.inner.clone(),
            limiter: self.limiter.clone(),
            waiting: None,
            has_token: false,
        }
    }
}

impl<S, R> Service<R> for RateLimited<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if let Some(limiter) = &self.limiter
            && !self.has_token
        {
            let wait = self.waiting.get_or_insert_with(|| {
                let limiter = Arc::clone(limiter);
                Box::pin(async move { limiter.until_ready().await })
            });
            ready!(wait.as_mut().poll(cx));
            self.waiting = None;
            self.has_token = true;
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.has_token = false;
        self.inner.call(request)
    }
}

/// Counts every request by verb and response status into [`Metrics::api_request`], and by
/// host, HTTP method and status into client-go's [`Metrics::rest_request`].
#[derive(Clone)]
pub struct ApiMetricsLayer {
    metrics: Metrics,
    host: Arc<str>,
}

impl ApiMetricsLayer {
    /// Counts into `metrics`; `host` is the apiserver's `host:port`.
    pub fn new(metrics: Metrics, host: String) -> Self {
        Self {
            metrics,
            host: host.into(),
        }
    }
}

impl<S> Layer<S> for ApiMetricsLayer {
    type Service = ApiMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ApiMetrics {
            inner,
            metrics: self.metrics.clone(),
            host: self.host.clone(),
        }
    }
}

/// Service produced by [`ApiMetricsLayer`].
#[derive(Clone)]
pub struct ApiMetrics<S> {
    inner: S,
    metrics: Metrics,
    host: Arc<str>,
}

type ResponseFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, RB> Service<Request<B>> for ApiMetrics<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Send + 'static,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = ResponseFuture<Response<RB>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let verb = request_verb(&request);
        let method = http_method(&request);
        let metrics = self.metrics.clone();
        let host = self.host.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            let code = result.as_ref().ok().map(|r| r.status().as_u16());
            metrics.api_request(verb, code);
            metrics.rest_request(&host, method, code);
            result
        })
    }
}

/// Fails a request that has no answer (its response head) within `timeout`; watches, which
/// are long by design, are exempt. `None`: no timeout.
#[derive(Clone, Copy, Debug)]
pub struct RequestTimeoutLayer {
    pub timeout: Option<Duration>,
}

impl<S> Layer<S> for RequestTimeoutLayer {
    type Service = RequestTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestTimeout {
            inner,
            timeout: self.timeout,
        }
    }
}

/// Service produced by [`RequestTimeoutLayer`].
#[derive(Clone)]
pub struct RequestTimeout<S> {
    inner: S,
    timeout: Option<Duration>,
}

/// A request that got no answer in time.
#[derive(Debug, thiserror::Error)]
#[error("no answer from the apiserver within {0:?} (--request-timeout)")]
pub struct TimedOut(pub Duration);

impl<S, B, RB> Service<Request<B>> for RequestTimeout<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
    S::Error: From<TimedOut> + Send + 'static,
    RB: Send + 'static,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = ResponseFuture<Response<RB>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let limit = self.timeout.filter(|_| !is_watch(&request));
        let response = self.inner.call(request);
        Box::pin(async move {
            match limit {
                None => response.await,
                Some(limit) => tokio::time::timeout(limit, response)
                    .await
                    .unwrap_or_else(|_| Err(TimedOut(limit).into())),
            }
        })
    }
}

/// A watch: kube's `watch` operation, or `watch=true`/`watch=1` in the query.
fn is_watch<B>(request: &Request<B>) -> bool {
    request_verb(request) == "watch"
        || request
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"))
}

/// The request's HTTP method, as client-go labels it.
fn http_method<B>(request: &Request<B>) -> &'static str {
    match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        _ => "OTHER",
    }
}

/// kube tags each request with its operation name (`get`, `list`, `watch`, `patch_status`, …) as
/// a `&'static str` extension; requests built by hand fall back to the HTTP method.
fn request_verb<B>(request: &Request<B>) -> &'static str {
    match request.extensions().get::<&'static str>() {
        Some(verb) => verb,
        None => http_method(request),
    }
}

#[cfg(test)]
mod tests {
    use std::{convert::Infallible, time::Instant};

    use k8s_openapi::api::core::v1::Pod;
    use kube::Api;
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
        sync::mpsc,
    };
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    use super::*;

    fn limited(qps: f64, burst: u32) -> RateLimitLayer {
        RateLimitLayer::new(RateLimit { qps, burst }).expect("valid limit")
    }

    async fn drive<S: Service<(), Error = Infallible>>(svc: &mut S, n: usize) {
        for _ in 0..n {
            svc.ready().await.expect("ready").call(()).await.ok();
        }
    }

    fn noop() -> impl Service<(), Response = (), Error = Infallible, Future: Send> + Clone {
        service_fn(|()| async { Ok::<_, Infallible>(()) })
    }

    // Timing tests use real time (governor has its own clock). Lower bounds prove throttling;
    // the upper bounds are loose so a loaded CI machine does not make them flaky.

    #[tokio::test]
    async fn burst_passes_immediately_then_requests_follow_qps() {
        let mut svc = ServiceBuilder::new()
            .layer(limited(20.0, 5))
            .service(noop());
        let start = Instant::now();
        drive(&mut svc, 5).await;
        assert!(
            start.elapsed() < Duration::from_millis(200),
            "burst of 5 is free"
        );
        drive(&mut svc, 20).await;
        // 20 more requests at 20 qps need ~1 s of refills.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    }

    #[tokio::test]
    async fn bucket_is_shared_by_clones_and_concurrent_callers() {
        let layer = limited(50.0, 1);
        let svc = ServiceBuilder::new().layer(layer).service(noop());
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let mut svc = svc.clone();
                tokio::spawn(async move { drive(&mut svc, 10).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        // 40 requests, burst 1, 50 qps: ~0.78 s in total, not ~0.18 s per independent bucket.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(700), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    }

    #[tokio::test]
    async fn disabled_limit_does_not_throttle() {
        let mut svc = ServiceBuilder::new()
            .layer(RateLimitLayer::new(RateLimit::UNLIMITED).expect("unlimited"))
            .service(noop());
        let start = Instant::now();
        drive(&mut svc, 10_000).await;
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn invalid_limits_are_rejected() {
        for (qps, burst) in [(10.0, 0), (f64::INFINITY, 1), (1e12, 1)] {
            assert!(
                RateLimitLayer::new(RateLimit { qps, burst }).is_err(),
                "qps {qps} burst {burst}"
            );
        }
        assert!(RateLimitLayer::new(RateLimit { qps: 0.5, burst: 1 }).is_ok());
    }

    #[tokio::test]
    async fn metrics_layer_counts_verb_and_status() {
        let metrics = Metrics::new().expect("metrics");
        let inner = service_fn(|req: Request<()>| async move {
            match req.uri().path() {
                "/fail" => Err("connection reset"),
                "/missing" => Ok(Response::builder().status(404).body(()).expect("response")),
                _ => Ok(Response::new(())),
            }
        });
        let mut svc = ApiMetricsLayer::new(metrics.clone(), "127.0.0.1:6443".into()).layer(inner);
        let mut tagged = Request::get("/ok").body(()).expect("request");
        tagged.extensions_mut().insert("list");
        for request in [
            tagged,
            Request::get("/missing").body(()).expect("request"),
            Request::post("/fail").body(()).expect("request"),
        ] {
            let _ = svc.ready().await.expect("ready").call(request).await;
        }
        let text = metrics.encode().expect("encode");
        for line in [
            "tfjob_operator_api_requests_total{code=\"200\",verb=\"list\"} 1",
            "tfjob_operator_api_requests_total{code=\"404\",verb=\"GET\"} 1",
            "tfjob_operator_api_requests_total{code=\"error\",verb=\"POST\"} 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    /// A one-shot HTTP/1.1 server that answers every request with `status` and a Status body,
    /// and reports each request head it received.
    async fn fake_apiserver(status: u16) -> (String, mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
                    let body = format!(
                        r#"{{"kind":"Status","apiVersion":"v1","status":"Failure","message":"nope","reason":"NotFound","code":{status}}}"#
                    );
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        (url, rx)
    }

    /// An apiserver that accepts connections and never answers (a black hole).
    async fn silent_apiserver() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        url
    }

    #[tokio::test]
    async fn a_request_without_an_answer_fails_after_the_timeout() {
        let url = silent_apiserver().await;
        let metrics = Metrics::new().expect("metrics");
        let config = kube::Config::new(url.parse().expect("url"));
        let timeout = Duration::from_millis(300);
        let client =
            build_client(config, RateLimit::UNLIMITED, Some(timeout), &metrics).expect("client");
        let pods: Api<Pod> = Api::namespaced(client, "team-a");
        let start = Instant::now();
        let err = pods.get("any").await.expect_err("no answer");
        let elapsed = start.elapsed();
        assert!(err.to_string().contains("--request-timeout"), "{err}");
        assert!(
            elapsed >= timeout && elapsed < Duration::from_secs(5),
            "{elapsed:?}"
        );
        let text = metrics.encode().expect("encode");
        assert!(
            text.contains("tfjob_operator_api_requests_total{code=\"error\",verb=\"get\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn watches_are_exempt_from_the_timeout() {
        let request = |uri: &str, verb: Option<&'static str>| {
            let mut request = Request::get(uri).body(()).expect("request");
            if let Some(verb) = verb {
                request.extensions_mut().insert(verb);
            }
            request
        };
        let cases = [
            ("/api/v1/pods?watch=true&resourceVersion=1", None, true),
            ("/api/v1/pods?resourceVersion=1&watch=1", None, true),
            ("/api/v1/pods", Some("watch"), true),
            ("/api/v1/pods?watch=false", None, false),
            (
                "/api/v1/pods?labelSelector=watch%3Dtrue",
                Some("list"),
                false,
            ),
            ("/api/v1/namespaces/a/pods/p", Some("get"), false),
        ];
        for (uri, verb, watch) in cases {
            assert_eq!(is_watch(&request(uri, verb)), watch, "{uri} {verb:?}");
        }
    }

    #[tokio::test]
    async fn built_client_is_rate_limited() {
        let (url, _heads) = fake_apiserver(404).await;
        let metrics = Metrics::new().expect("metrics");
        let config = kube::Config::new(url.parse().expect("url"));
        let client = build_client(
            config,
            RateLimit {
                qps: 10.0,
                burst: 1,
            },
            None,
            &metrics,
        )
        .expect("client");
        let pods: Api<Pod> = Api::namespaced(client, "team-a");
        let start = Instant::now();
        for _ in 0..6 {
            let _ = pods.get("missing").await;
        }
        // One token at once, then one every 100 ms.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(450), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
        let text = metrics.encode().expect("encode");
        assert!(
            text.contains("tfjob_operator_api_requests_total{code=\"404\",verb=\"get\"} 6"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn built_client_sends_user_agent_and_counts_requests() {
        let (url, mut heads) = fake_apiserver(404).await;
        let metrics = Metrics::new().expect("metrics");
        let config = kube::Config::new(url.parse().expect("url"));
        let client = build_client(
            config,
            RateLimit {
                qps: 100.0,
                burst: 10,
            },
            None,
            &metrics,
        )
        .expect("client");

        let pods: Api<Pod> = Api::namespaced(client, "team-a");
        let err = pods.get("missing").await.expect_err("404");
        assert!(
            matches!(err, kube::Error::Api(ref s) if s.code == 404),
            "{err:?}"
        );

        let head = heads.recv().await.expect("request reached the server");
        assert!(
            head.starts_with("GET /api/v1/namespaces/team-a/pods/missing"),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase().contains(&format!(
                "user-agent: {}",
                USER_AGENT_VALUE.to_ascii_lowercase()
            )),
            "{head}"
        );
        let text = metrics.encode().expect("encode");
        assert!(
            text.contains("tfjob_operator_api_requests_total{code=\"404\",verb=\"get\"} 1"),
            "{text}"
        );
    }
}
