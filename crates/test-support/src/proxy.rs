//! A fault-injecting HTTPS proxy on loopback, between the operator binary and kube-apiserver.
//!
//! It terminates TLS with its own self-signed certificate (the kubeconfig it writes trusts
//! that), forwards each request over its own TLS connection to the apiserver (one upstream
//! connection per client connection, like the client's keep-alive), and records every request:
//! when it came, what it was, what the apiserver answered and whether the client got that
//! answer. So a test measures the operator's request rate from outside and knows exactly which
//! writes took effect.
//!
//! Faults ([`Faults`], a probability per request, drawn from a seeded generator): answer 429
//! (with `Retry-After: 1`) or 500 without forwarding; forward and then answer 500 or drop the
//! connection (the write happened, the client cannot know); drop the connection before
//! forwarding; delay before forwarding; cut a watch stream after a while.
//!
//! [`FaultProxy::freeze`] simulates the instant of a crash precisely: from then on nothing new
//! is forwarded and no answer is delivered (watch streams stop too), while requests already at
//! the apiserver complete there. The test then reads the client's in-memory state (its metrics)
//! knowing nothing can change it any more, kills it, and [`FaultProxy::reset`] drops every
//! connection for the next incarnation. The records say which writes were done but never
//! acknowledged ([`Outcome::Withheld`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::control_plane::{ControlPlane, unique_suffix};

type ProxyBody = BoxBody<Bytes, std::io::Error>;

/// Fault probabilities, each per request (0 = never). Decided once per request, in this order:
/// `reject_429`, `reject_500`, `drop_before`, `error_after`, `drop_after`; `delay` is drawn
/// independently. Watches only get the first three, the delay and `cut_watch`.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub reject_429: f64,
    pub reject_500: f64,
    pub drop_before: f64,
    /// Forward, then answer 500 instead of the apiserver's answer.
    pub error_after: f64,
    /// Forward, then close the connection without an answer.
    pub drop_after: f64,
    pub delay: f64,
    pub max_delay: Duration,
    /// A watch stream is cut after a random time up to `max_watch_life`.
    pub cut_watch: f64,
    pub max_watch_life: Duration,
    /// Faults apply only to requests whose method and path contain this (e.g. `"PATCH /api"`).
    pub only: Option<String>,
    /// At most this many faults in all (`None`: unbounded).
    pub budget: Option<usize>,
    /// Requests whose method and path contain this always get 500 (a failure that retrying
    /// does not cure), whatever `only` and `budget` say.
    pub always_500: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Reject429,
    Reject500,
    DropBefore,
    ErrorAfter,
    DropAfter,
    Delay,
    CutWatch,
}

/// What became of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still in progress (or held at the frozen gate before forwarding: never sent).
    Pending,
    /// Answered by the proxy itself (429, 500, dropped): never reached the apiserver.
    NotForwarded,
    /// The apiserver's answer went to the client.
    Delivered,
    /// The apiserver answered, the client got a 500 or a dropped connection instead.
    Hidden,
    /// The apiserver answered while the proxy was frozen: the client never heard back.
    Withheld,
    /// The connection to the apiserver failed.
    UpstreamError,
}

/// One request the client sent.
#[derive(Clone, Debug)]
pub struct Record {
    pub received: Instant,
    pub method: String,
    /// Path and query.
    pub path: String,
    pub watch: bool,
    pub faults: Vec<Fault>,
    /// The apiserver's status code, when it answered.
    pub upstream_status: Option<u16>,
    pub outcome: Outcome,
    /// Sent on to the apiserver (whether or not an answer came back to the proxy: a client
    /// killed meanwhile leaves a forwarded request without one).
    pub forwarded: bool,
    /// When it was sent on (a request held at a frozen gate is sent at the thaw, late).
    pub forwarded_at: Option<Instant>,
    /// The request body (writes only).
    pub body: Option<Bytes>,
    /// The apiserver's answer (writes only).
    pub response: Option<Bytes>,
}

impl Record {
    /// Whether the apiserver carried it out (it answered with a 2xx).
    pub fn took_effect(&self) -> bool {
        self.upstream_status
            .is_some_and(|s| (200..300).contains(&s))
    }

    pub fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS")
    }
}

struct Shared {
    upstream: SocketAddr,
    connector: TlsConnector,
    acceptor: TlsAcceptor,
    faults: Mutex<Faults>,
    faults_used: AtomicUsize,
    rng: Mutex<u64>,
    /// `true` while frozen.
    frozen: watch::Sender<bool>,
    /// A freeze armed to start at a given request: (`METHOD path` filter, matches left).
    trip_wire: Mutex<Option<(String, usize)>>,
    /// When the last freeze started.
    frozen_at: Mutex<Option<Instant>>,
    /// Requests whose `METHOD path` contains this are held, unanswered, until healed.
    black_hole: watch::Sender<Option<String>>,
    connections: Mutex<Vec<AbortHandle>>,
    records: Mutex<Vec<Record>>,
    /// Requests forwarded and not yet answered by the apiserver.
    in_flight: AtomicUsize,
    /// While true, every new connection is closed at once: an apiserver that is down.
    down: AtomicBool,
}

/// The running proxy; stops when dropped.
pub struct FaultProxy {
    pub addr: SocketAddr,
    /// A kubeconfig for clients of the proxy (admin token, the proxy's CA).
    pub kubeconfig: PathBuf,
    dir: PathBuf,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `control_plane`'s apiserver; `seed` makes the fault draws repeatable.
    pub async fn start(control_plane: &ControlPlane, seed: u64) -> FaultProxy {
        let kubeconfig = std::fs::read_to_string(&control_plane.kubeconfig).expect("kubeconfig");
        let server = kubeconfig
            .lines()
            .find_map(|l| l.trim().strip_prefix("server:"))
            .map(|s| s.trim().trim_start_matches("https://").to_string())
            .expect("server in kubeconfig");
        let upstream: SocketAddr = server.parse().expect("apiserver address");
        let token = std::fs::read_to_string(control_plane.dir.join("token"))
            .expect("admin token")
            .trim()
            .to_string();

        // Upstream: trust the control plane's CA.
        let ca_pem = std::fs::read_to_string(control_plane.dir.join("pki/ca.crt")).expect("CA");
        let mut roots = rustls::RootCertStore::empty();
        for block in pem::parse_many(ca_pem.as_bytes()).expect("CA PEM") {
            roots
                .add(CertificateDer::from(block.contents().to_vec()))
                .expect("CA certificate");
        }
        let mut client_tls = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client_tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = TlsConnector::from(Arc::new(client_tls));

        // Downstream: a self-signed certificate for 127.0.0.1.
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
                .expect("self-signed certificate");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
        let mut server_tls = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .expect("server TLS config");
        server_tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(server_tls));

        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let dir = std::env::temp_dir().join(format!("tfjob-fault-proxy-{}", unique_suffix()));
        std::fs::create_dir_all(&dir).expect("proxy dir");
        let ca_path = dir.join("proxy-ca.crt");
        std::fs::write(&ca_path, cert.pem()).expect("write the proxy CA");
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_text(addr, &ca_path, &token)).expect("kubeconfig");

        let shared = Arc::new(Shared {
            upstream,
            connector,
            acceptor,
            faults: Mutex::new(Faults::default()),
            faults_used: AtomicUsize::new(0),
            rng: Mutex::new(seed.max(1)),
            frozen: watch::channel(false).0,
            trip_wire: Mutex::new(None),
            frozen_at: Mutex::new(None),
            black_hole: watch::channel(None).0,
            connections: Mutex::new(Vec::new()),
            records: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            down: Default::default(),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        FaultProxy {
            addr,
            kubeconfig,
            dir,
            shared,
            accept,
        }
    }

    /// Replaces the fault settings (for requests from now on).
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = faults;
    }

    /// Plays an apiserver that is down: open connections are dropped and new ones closed at
    /// once, until [`FaultProxy::come_up`].
    pub fn go_down(&self) {
        self.shared.down.store(true, Ordering::SeqCst);
        for connection in lock(&self.shared.connections).drain(..) {
            connection.abort();
        }
    }

    /// Serves connections again after [`FaultProxy::go_down`].
    pub fn come_up(&self) {
        self.shared.down.store(false, Ordering::SeqCst);
    }

    /// Nothing new is forwarded and no answer is delivered from now on.
    pub fn freeze(&self) {
        self.shared.freeze();
    }

    /// Arms a freeze that starts when the `nth` request whose `METHOD path` contains `filter`
    /// arrives (counted from now), before that request is forwarded: a partition that is sure
    /// to catch the client mid-work however fast or loaded the machine is.
    pub fn freeze_at(&self, filter: &str, nth: usize) {
        *lock(&self.shared.trip_wire) = Some((filter.to_string(), nth.max(1)));
    }

    /// When the current (or last) freeze started.
    pub fn frozen_at(&self) -> Option<Instant> {
        *lock(&self.shared.frozen_at)
    }

    /// From now on, requests whose `METHOD path` contains `filter` are accepted and never
    /// answered (not even forwarded) until [`FaultProxy::heal`].
    pub fn black_hole(&self, filter: &str) {
        self.shared
            .black_hole
            .send_replace(Some(filter.to_string()));
    }

    /// Ends the black hole: held requests are forwarded now, new ones pass.
    pub fn heal(&self) {
        self.shared.black_hole.send_replace(None);
    }

    /// Ends a freeze like a healed network partition: requests held at the gate whose client
    /// connection is still open are forwarded now (late); those of clients that went away in
    /// the meantime are never sent.
    pub fn thaw(&self) {
        self.shared.frozen.send_replace(false);
    }

    /// Waits (at most `timeout`) until no forwarded request is waiting for the apiserver;
    /// whether that happened.
    pub async fn await_quiet(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.shared.in_flight.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Drops every connection and opens the gate again.
    pub fn reset(&self) {
        for connection in lock(&self.shared.connections).drain(..) {
            connection.abort();
        }
        // Requests held at the gate never reached the apiserver; nothing answered them.
        for record in lock(&self.shared.records).iter_mut() {
            if record.outcome == Outcome::Pending && !record.forwarded {
                record.outcome = Outcome::NotForwarded;
            }
        }
        self.shared.frozen.send_replace(false);
    }

    /// Every request so far.
    pub fn records(&self) -> Vec<Record> {
        lock(&self.shared.records).clone()
    }

    /// Requests per one-second window between `from` and `to` (by arrival), busiest first.
    pub fn busiest_seconds(&self, from: Instant, to: Instant) -> Vec<usize> {
        let records = self.records();
        let seconds = to.saturating_duration_since(from).as_secs() as usize + 1;
        let mut counts = vec![0usize; seconds];
        for record in records
            .iter()
            .filter(|r| r.received >= from && r.received < to)
        {
            counts[record.received.duration_since(from).as_secs() as usize] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        counts
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for connection in lock(&self.shared.connections).drain(..) {
            connection.abort();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn kubeconfig_text(addr: SocketAddr, ca: &Path, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: proxy\n  cluster:\n    server: https://{addr}\n    certificate-authority: {}\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: proxy\n  context:\n    cluster: proxy\n    user: admin\ncurrent-context: proxy\n",
        ca.display()
    )
}

/// One forwarded request in `Shared::in_flight`, for as long as it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        InFlight(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        if shared.down.load(Ordering::SeqCst) {
            drop(tcp);
            continue;
        }
        let task = tokio::spawn(serve_connection(tcp, shared.clone()));
        let mut connections = lock(&shared.connections);
        connections.retain(|c| !c.is_finished());
        connections.push(task.abort_handle());
    }
}

/// The upstream connection of one client connection, opened on first use.
type Upstream =
    Arc<tokio::sync::Mutex<Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>>>;

/// Aborts the upstream connection's driver when the client connection goes away.
struct AbortOnDrop(Option<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

async fn serve_connection(tcp: TcpStream, shared: Arc<Shared>) {
    let Ok(tls) = shared.acceptor.accept(tcp).await else {
        return;
    };
    let upstream: Upstream = Arc::default();
    let driver = Arc::new(Mutex::new(AbortOnDrop(None)));
    let service = service_fn(move |request| {
        let (shared, upstream, driver) = (shared.clone(), upstream.clone(), driver.clone());
        async move { handle(shared, upstream, driver, request).await }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), service)
        .await;
}

/// Why the proxy closes the client connection without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

async fn handle(
    shared: Arc<Shared>,
    upstream: Upstream,
    driver: Arc<Mutex<AbortOnDrop>>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Dropped> {
    let received = Instant::now();
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let method = parts.method.to_string();
    let watch = path.contains("watch=true") || path.contains("watch=1");
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let write = !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS");
    let faults = shared.draw(&method, &path, watch);
    let index = {
        let mut records = lock(&shared.records);
        records.push(Record {
            received,
            method: method.clone(),
            path: path.clone(),
            watch,
            faults: faults.clone(),
            upstream_status: None,
            outcome: Outcome::Pending,
            forwarded: false,
            forwarded_at: None,
            body: write.then(|| body.clone()),
            response: None,
        });
        records.len() - 1
    };
    let set = |f: &dyn Fn(&mut Record)| f(&mut lock(&shared.records)[index]);
    shared.trip(&format!("{method} {path}"));

    if let Some(fault @ (Fault::Reject429 | Fault::Reject500)) = faults.first().copied() {
        set(&|r| r.outcome = Outcome::NotForwarded);
        let code = if fault == Fault::Reject429 { 429 } else { 500 };
        return Ok(status_response(code, "injected by the fault proxy"));
    }
    if faults.first() == Some(&Fault::DropBefore) {
        set(&|r| r.outcome = Outcome::NotForwarded);
        return Err(Dropped);
    }
    if faults.contains(&Fault::Delay) {
        let max = lock(&shared.faults).max_delay.as_millis() as u64;
        let ms = shared.next() % max.max(1);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    shared.wait_open().await; // frozen: never forwarded (reset() marks it NotForwarded)
    shared
        .wait_out_black_hole(&format!("{method} {path}"))
        .await;

    // Forward.
    let mut builder = Request::builder().method(parts.method).uri(path.as_str());
    for (name, value) in parts.headers.iter() {
        if name != hyper::header::HOST {
            builder = builder.header(name, value);
        }
    }
    let forward = builder
        .header(hyper::header::HOST, shared.upstream.to_string())
        .body(Full::new(body))
        .map_err(|_| Dropped)?;
    // Counted until answered, or until this future is dropped (its client went away).
    let in_flight = InFlight::enter(&shared.in_flight);
    let now = Instant::now();
    set(&|r| {
        r.forwarded = true;
        r.forwarded_at = Some(now);
    });
    let answer = async {
        let mut sender = upstream.lock().await;
        if sender.as_ref().is_none_or(|s| s.is_closed()) {
            let (new, task) = connect(&shared).await.ok_or(Dropped)?;
            lock(&driver).0 = Some(task);
            *sender = Some(new);
        }
        let sender = sender.as_mut().ok_or(Dropped)?;
        sender.ready().await.map_err(|_| Dropped)?;
        sender.send_request(forward).await.map_err(|_| Dropped)
    }
    .await;
    let response = match answer {
        Ok(response) => response,
        Err(dropped) => {
            drop(in_flight);
            set(&|r| r.outcome = Outcome::UpstreamError);
            return Err(dropped);
        }
    };
    let status = response.status().as_u16();
    let (head, upstream_body) = response.into_parts();

    if watch {
        drop(in_flight);
        set(&|r| r.upstream_status = Some(status));
        if *shared.frozen.borrow() {
            set(&|r| r.outcome = Outcome::Withheld);
            std::future::pending::<()>().await;
        }
        set(&|r| r.outcome = Outcome::Delivered);
        let cut_after = faults.contains(&Fault::CutWatch).then(|| {
            let max = lock(&shared.faults).max_watch_life.as_millis() as u64;
            Duration::from_millis(shared.next() % max.max(1))
        });
        let body = gated_stream(upstream_body, shared.clone(), cut_after);
        return Ok(Response::from_parts(head, body));
    }

    let collected = upstream_body.collect().await;
    drop(in_flight);
    let Ok(collected) = collected else {
        set(&|r| r.outcome = Outcome::UpstreamError);
        return Err(Dropped);
    };
    let bytes = collected.to_bytes();
    set(&|r| {
        r.upstream_status = Some(status);
        if write {
            r.response = Some(bytes.clone());
        }
    });
    if faults.contains(&Fault::ErrorAfter) {
        set(&|r| r.outcome = Outcome::Hidden);
        return Ok(status_response(
            500,
            "injected by the fault proxy after the request",
        ));
    }
    if faults.contains(&Fault::DropAfter) {
        set(&|r| r.outcome = Outcome::Hidden);
        return Err(Dropped);
    }
    if *shared.frozen.borrow() {
        set(&|r| r.outcome = Outcome::Withheld);
        std::future::pending::<()>().await;
    }
    set(&|r| r.outcome = Outcome::Delivered);
    let body = Full::new(bytes).map_err(|never| match never {}).boxed();
    Ok(Response::from_parts(head, body))
}

/// The frames of a watch answer, as long as the proxy is not frozen; optionally cut (an error
/// ends the stream and the connection) after `cut_after`.
fn gated_stream(body: Incoming, shared: Arc<Shared>, cut_after: Option<Duration>) -> ProxyBody {
    let deadline = cut_after.map(|d| tokio::time::Instant::now() + d);
    let frames = futures::stream::unfold(Some((body, shared)), move |state| async move {
        let (mut body, shared) = state?;
        let next = async {
            shared.wait_open().await;
            body.frame().await
        };
        let frame = match deadline {
            Some(at) => tokio::time::timeout_at(at, next).await.map_err(|_| ()),
            None => Ok(next.await),
        };
        match frame {
            Ok(Some(Ok(frame))) => Some((Ok(frame), Some((body, shared)))),
            Ok(None) => None,
            Ok(Some(Err(_))) | Err(()) => Some((
                Err::<Frame<Bytes>, _>(std::io::Error::other("watch cut by the fault proxy")),
                None,
            )),
        }
    });
    StreamBody::new(frames).boxed()
}

fn status_response(code: u16, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": if code == 429 { "TooManyRequests" } else { "InternalError" },
        "code": code,
    })
    .to_string();
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = StatusCode::from_u16(code).expect("status code");
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        "application/json".parse().expect("header"),
    );
    if code == 429 {
        headers.insert(hyper::header::RETRY_AFTER, "1".parse().expect("header"));
    }
    response
}

async fn connect(
    shared: &Shared,
) -> Option<(
    hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    JoinHandle<()>,
)> {
    let tcp = TcpStream::connect(shared.upstream).await.ok()?;
    let name = ServerName::IpAddress(IpAddr::from(Ipv4Addr::LOCALHOST).into());
    let tls = shared.connector.connect(name, tcp).await.ok()?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .ok()?;
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    Some((sender, task))
}

impl Shared {
    /// xorshift64*: repeatable per seed, no dependency.
    fn next(&self) -> u64 {
        let mut state = lock(&self.rng);
        let mut x = *state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn chance(&self, p: f64) -> bool {
        p > 0.0 && (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// The faults for one request (the first decides how it is answered; `Delay` and
    /// `CutWatch` come on top).
    fn draw(&self, method: &str, path: &str, watch: bool) -> Vec<Fault> {
        let faults = lock(&self.faults).clone();
        if faults
            .always_500
            .as_deref()
            .is_some_and(|always| format!("{method} {path}").contains(always))
        {
            return vec![Fault::Reject500];
        }
        if faults
            .only
            .as_deref()
            .is_some_and(|only| !format!("{method} {path}").contains(only))
        {
            return vec![];
        }
        if faults
            .budget
            .is_some_and(|b| self.faults_used.load(Ordering::SeqCst) >= b)
        {
            return vec![];
        }
        let mut drawn = Vec::new();
        let main = [
            (faults.reject_429, Fault::Reject429, true),
            (faults.reject_500, Fault::Reject500, true),
            (faults.drop_before, Fault::DropBefore, true),
            (faults.error_after, Fault::ErrorAfter, false),
            (faults.drop_after, Fault::DropAfter, false),
        ];
        let roll = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        let mut acc = 0.0;
        for (p, fault, for_watches) in main {
            if !watch || for_watches {
                acc += p;
                if roll < acc {
                    drawn.push(fault);
                    break;
                }
            }
        }
        if self.chance(faults.delay) {
            drawn.push(Fault::Delay);
        }
        if watch && self.chance(faults.cut_watch) {
            drawn.push(Fault::CutWatch);
        }
        if !drawn.is_empty() {
            self.faults_used.fetch_add(1, Ordering::SeqCst);
        }
        drawn
    }

    /// Holds a request while a black hole covers it.
    async fn wait_out_black_hole(&self, request: &str) {
        let mut hole = self.black_hole.subscribe();
        let _ = hole
            .wait_for(|filter| !filter.as_deref().is_some_and(|f| request.contains(f)))
            .await;
    }

    fn freeze(&self) {
        *lock(&self.frozen_at) = Some(Instant::now());
        self.frozen.send_replace(true);
    }

    /// Counts a request against the armed trip wire; freezes when it is the one.
    fn trip(&self, request: &str) {
        let mut wire = lock(&self.trip_wire);
        let Some((filter, left)) = wire.as_mut() else {
            return;
        };
        if !request.contains(filter.as_str()) {
            return;
        }
        *left -= 1;
        if *left == 0 {
            *wire = None;
            self.freeze();
        }
    }

    async fn wait_open(&self) {
        let mut frozen = self.frozen.subscribe();
        let _ = frozen.wait_for(|f| !*f).await;
    }
}
