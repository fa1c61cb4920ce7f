//! Tests of the elector against a fake Lease store, in paused time.

use std::sync::{Arc, Mutex};

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Up,
    /// Every request fails at once.
    Failing,
    /// Every request hangs forever.
    Hanging,
}

#[derive(Default)]
struct Apiserver {
    lease: Option<Lease>,
    resource_version: u64,
    writes: usize,
}

/// One candidate's view of a shared fake apiserver, with its own connection health.
#[derive(Clone)]
struct FakeStore {
    server: Arc<Mutex<Apiserver>>,
    mode: Arc<Mutex<Mode>>,
}

impl FakeStore {
    fn new(server: &Arc<Mutex<Apiserver>>) -> Self {
        Self {
            server: Arc::clone(server),
            mode: Arc::new(Mutex::new(Mode::Up)),
        }
    }

    fn set_mode(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
    }

    async fn connection(&self) -> Result<(), LeaderError> {
        let mode = *self.mode.lock().expect("mode");
        match mode {
            Mode::Up => Ok(()),
            Mode::Failing => Err(LeaderError::Api(kube::Error::Service(
                "connection refused".into(),
            ))),
            Mode::Hanging => std::future::pending().await,
        }
    }

    fn write(server: &mut Apiserver, mut lease: Lease) -> Lease {
        server.resource_version += 1;
        server.writes += 1;
        lease.metadata.resource_version = Some(server.resource_version.to_string());
        server.lease = Some(lease.clone());
        lease
    }
}

impl LeaseStore for FakeStore {
    async fn get(&self) -> Result<Option<Lease>, LeaderError> {
        self.connection().await?;
        Ok(self.server.lock().expect("server").lease.clone())
    }

    async fn create(&self, lease: Lease) -> Result<Lease, LeaderError> {
        self.connection().await?;
        let mut server = self.server.lock().expect("server");
        if server.lease.is_some() {
            return Err(LeaderError::Conflict);
        }
        Ok(Self::write(&mut server, lease))
    }

    async fn replace(&self, lease: Lease) -> Result<Lease, LeaderError> {
        self.connection().await?;
        let mut server = self.server.lock().expect("server");
        let current = server
            .lease
            .as_ref()
            .and_then(|l| l.metadata.resource_version.clone());
        if current != lease.metadata.resource_version {
            return Err(LeaderError::Conflict);
        }
        Ok(Self::write(&mut server, lease))
    }

    fn name(&self) -> &str {
        "test-lease"
    }
}

fn apiserver() -> Arc<Mutex<Apiserver>> {
    Arc::new(Mutex::new(Apiserver::default()))
}

fn lease_spec(server: &Arc<Mutex<Apiserver>>) -> LeaseSpec {
    server
        .lock()
        .expect("server")
        .lease
        .as_ref()
        .and_then(|l| l.spec.clone())
        .expect("lease exists")
}

fn candidate(server: &Arc<Mutex<Apiserver>>, id: &str) -> (FakeStore, LeaderHandle) {
    let store = FakeStore::new(server);
    let handle = spawn(store.clone(), id.to_string(), LeaseTimings::default());
    (store, handle)
}

async fn wait_for(rx: &mut watch::Receiver<bool>, value: bool, within: Duration) {
    timeout(within, rx.wait_for(|v| *v == value))
        .await
        .unwrap_or_else(|_| panic!("did not become {value} within {within:?}"))
        .expect("channel open");
}

// All election tests run on Tokio's paused clock: sleeps and timeouts advance instantly and
// deterministically, so the timing assertions are exact rather than flaky.

#[tokio::test(start_paused = true)]
async fn creates_a_missing_lease_and_keeps_renewing_it() {
    let server = apiserver();
    let (_store, a) = candidate(&server, "a");
    let mut rx = a.subscribe();
    wait_for(&mut rx, true, Duration::from_millis(1)).await;
    let spec = lease_spec(&server);
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_duration_seconds, Some(15));
    assert_eq!(spec.lease_transitions, Some(0));
    let first_renewal = spec.renew_time.clone();

    sleep(Duration::from_secs(60)).await;
    assert!(a.is_leading());
    let spec = lease_spec(&server);
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(
        spec.lease_transitions,
        Some(0),
        "renewals are not transitions"
    );
    assert_ne!(spec.renew_time, first_renewal);
    let writes = server.lock().expect("server").writes;
    assert!(
        (29..=31).contains(&writes),
        "one renewal per retry period, got {writes}"
    );
}

#[tokio::test(start_paused = true)]
async fn standby_waits_while_the_leader_renews() {
    let server = apiserver();
    let (_a_store, a) = candidate(&server, "a");
    wait_for(&mut a.subscribe(), true, Duration::from_millis(1)).await;
    let (_b_store, b) = candidate(&server, "b");
    sleep(Duration::from_secs(120)).await;
    assert!(a.is_leading());
    assert!(!b.is_leading());
}

#[tokio::test(start_paused = true)]
async fn hung_leader_steps_down_before_the_standby_takes_over() {
    let server = apiserver();
    let (a_store, a) = candidate(&server, "a");
    let mut a_rx = a.subscribe();
    wait_for(&mut a_rx, true, Duration::from_millis(1)).await;
    let (_b_store, b) = candidate(&server, "b");
    let mut b_rx = b.subscribe();
    sleep(Duration::from_secs(7)).await;

    // A's requests now hang forever; its last successful renewal was at most 2 s ago.
    a_store.set_mode(Mode::Hanging);
    let cut = Instant::now();
    wait_for(&mut a_rx, false, Duration::from_secs(10)).await;
    let a_lost = Instant::now();
    assert!(
        a_lost - cut <= Duration::from_secs(10),
        "renew deadline bounds the wait"
    );

    wait_for(&mut b_rx, true, Duration::from_secs(30)).await;
    let b_won = Instant::now();
    assert!(
        b_won - a_lost >= Duration::from_secs(3),
        "no overlap: A stopped {:?} before B started",
        b_won - a_lost
    );
    let spec = lease_spec(&server);
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));

    // Fail-stop: A never campaigns again, even once its connection recovers.
    a_store.set_mode(Mode::Up);
    sleep(Duration::from_secs(60)).await;
    assert!(!a.is_leading());
    assert!(b.is_leading());
}

#[tokio::test(start_paused = true)]
async fn failing_renewals_demote_at_the_renew_deadline() {
    let server = apiserver();
    let (store, a) = candidate(&server, "a");
    let mut rx = a.subscribe();
    wait_for(&mut rx, true, Duration::from_millis(1)).await;
    sleep(Duration::from_secs(3)).await;
    let last_write = server.lock().expect("server").writes;
    store.set_mode(Mode::Failing);
    let cut = Instant::now();
    wait_for(&mut rx, false, Duration::from_secs(11)).await;
    let waited = Instant::now() - cut;
    // The last success was 1 s before the cut (renewals at 0, 2 s): demotion at 10 s after it.
    assert_eq!(waited, Duration::from_secs(9), "{waited:?}");
    assert_eq!(server.lock().expect("server").writes, last_write);
}

#[tokio::test(start_paused = true)]
async fn a_stolen_lease_is_noticed_at_the_next_renewal() {
    let server = apiserver();
    let (_store, a) = candidate(&server, "a");
    let mut rx = a.subscribe();
    wait_for(&mut rx, true, Duration::from_millis(1)).await;
    {
        let mut server = server.lock().expect("server");
        let mut lease = server.lease.clone().expect("lease");
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some("intruder".into());
        FakeStore::write(&mut server, lease);
    }
    wait_for(&mut rx, false, Duration::from_secs(3)).await;
    assert_eq!(
        lease_spec(&server).holder_identity.as_deref(),
        Some("intruder"),
        "the loser must not overwrite the new holder"
    );
}

#[tokio::test(start_paused = true)]
async fn release_hands_the_lease_over_at_once() {
    let server = apiserver();
    let (_a_store, a) = candidate(&server, "a");
    let mut a_rx = a.subscribe();
    wait_for(&mut a_rx, true, Duration::from_millis(1)).await;
    let (_b_store, b) = candidate(&server, "b");
    sleep(Duration::from_secs(5)).await;

    let released = Instant::now();
    a.release().await.expect("release");
    assert!(!*a_rx.borrow(), "released means not leading");
    let spec = lease_spec(&server);
    assert_eq!(spec.holder_identity, None);
    assert_eq!(spec.lease_duration_seconds, Some(1));

    wait_for(&mut b.subscribe(), true, Duration::from_secs(5)).await;
    assert!(
        Instant::now() - released < Duration::from_secs(5),
        "B takes over at its next attempt, not after the 15 s lease duration"
    );
    let spec = lease_spec(&server);
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
}

#[tokio::test(start_paused = true)]
async fn releasing_a_standby_leaves_the_lease_alone() {
    let server = apiserver();
    let (_a_store, a) = candidate(&server, "a");
    wait_for(&mut a.subscribe(), true, Duration::from_millis(1)).await;
    let (_b_store, b) = candidate(&server, "b");
    sleep(Duration::from_secs(3)).await;
    b.release().await.expect("release");
    assert_eq!(lease_spec(&server).holder_identity.as_deref(), Some("a"));
    assert!(a.is_leading());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_releases_the_lease() {
    let server = apiserver();
    let (_store, a) = candidate(&server, "a");
    wait_for(&mut a.subscribe(), true, Duration::from_millis(1)).await;
    drop(a);
    sleep(Duration::from_millis(10)).await;
    assert_eq!(lease_spec(&server).holder_identity, None);
}

#[tokio::test(start_paused = true)]
async fn release_is_bounded_when_the_apiserver_hangs() {
    let server = apiserver();
    let (store, a) = candidate(&server, "a");
    wait_for(&mut a.subscribe(), true, Duration::from_millis(1)).await;
    store.set_mode(Mode::Hanging);
    let err = timeout(Duration::from_secs(11), a.release())
        .await
        .expect("release gives up after the renew deadline")
        .expect_err("release could not reach the apiserver");
    assert!(matches!(err, LeaderError::ReleaseTimedOut), "{err}");
}

#[tokio::test(start_paused = true)]
async fn at_most_one_of_many_candidates_leads() {
    let server = apiserver();
    let candidates: Vec<_> = (0..4)
        .map(|i| candidate(&server, &format!("c{i}")))
        .collect();
    let leaders =
        |c: &[(FakeStore, LeaderHandle)]| c.iter().filter(|(_, h)| h.is_leading()).count();
    for _ in 0..300 {
        sleep(Duration::from_millis(100)).await;
        assert!(leaders(&candidates) <= 1);
    }
    assert_eq!(leaders(&candidates), 1);

    // Cut the leader off; a different candidate takes over, never two at once.
    let leader = candidates
        .iter()
        .position(|(_, h)| h.is_leading())
        .expect("a leader");
    candidates[leader].0.set_mode(Mode::Failing);
    for _ in 0..400 {
        sleep(Duration::from_millis(100)).await;
        assert!(leaders(&candidates) <= 1);
    }
    assert_eq!(leaders(&candidates), 1);
    assert!(!candidates[leader].1.is_leading());
}

#[tokio::test(start_paused = true)]
async fn api_errors_while_campaigning_are_retried() {
    let server = apiserver();
    let store = FakeStore::new(&server);
    store.set_mode(Mode::Failing);
    let a = spawn(store.clone(), "a".into(), LeaseTimings::default());
    sleep(Duration::from_secs(30)).await;
    assert!(!a.is_leading());
    store.set_mode(Mode::Up);
    wait_for(&mut a.subscribe(), true, Duration::from_secs(5)).await;
}

#[test]
fn timing_rules() {
    assert!(LeaseTimings::default().validate().is_ok());
    let secs = Duration::from_secs;
    let with = |lease, renew, retry| LeaseTimings {
        lease_duration: secs(lease),
        renew_deadline: secs(renew),
        retry_period: secs(retry),
    };
    assert!(
        with(10, 10, 2).validate().is_err(),
        "lease must exceed renew deadline"
    );
    assert!(
        with(15, 2, 2).validate().is_err(),
        "renew deadline must exceed 1.2 × retry"
    );
    assert!(
        with(15, 10, 0).validate().is_err(),
        "retry must be positive"
    );
    let short = LeaseTimings {
        lease_duration: Duration::from_millis(900),
        renew_deadline: Duration::from_millis(500),
        retry_period: Duration::from_millis(100),
    };
    assert!(short.validate().is_err(), "the Lease stores whole seconds");
    let fractional = LeaseTimings {
        lease_duration: Duration::from_millis(1500),
        ..short
    };
    assert_eq!(fractional.lease_seconds(), 2, "rounded up, never shortened");
}

#[test]
fn identity_prefers_pod_name_then_hostname() {
    assert_eq!(
        identity_from(Some("op-0".into()), Some("node".into()), 0xabcdef12),
        "op-0_abcdef12"
    );
    assert_eq!(
        identity_from(Some(" ".into()), Some("node".into()), 1),
        "node_00000001"
    );
    assert_eq!(identity_from(None, None, 2), "tfjob-operator_00000002");
    assert_ne!(default_identity(), default_identity(), "random suffix");
}

#[test]
fn jitter_stays_within_client_go_bounds() {
    for _ in 0..1000 {
        let d = jittered(Duration::from_secs(2));
        assert!(
            d >= Duration::from_secs(2) && d <= Duration::from_millis(4400),
            "{d:?}"
        );
    }
}
