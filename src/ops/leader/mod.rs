//! Leader election on a `coordination.k8s.io/v1` Lease, following client-go's `leaderelection`
//! algorithm, so this operator and a controller-runtime operator (upstream training-operator) on
//! the same Lease name exclude each other.
//!
//! [`LeaderElection::start`] spawns one task that campaigns, then renews; the returned
//! [`LeaderHandle`] exposes leadership as a `watch::Receiver<bool>` and releases the Lease on
//! [`LeaderHandle::release`] (or when dropped). The policy is fail-stop: once leadership is lost,
//! the task does not campaign again; the process is expected to stop its controller and exit.
//!
//! Why not kube-lease-manager (0.13.1): while its renewals fail (apiserver unreachable or slow),
//! its channel keeps reporting `true` after the Lease has expired and another replica has taken
//! over, because it has no renew deadline and renewals are invisible to the caller. Here:
//! * a leader that has not renewed within `renew_deadline` reports `false` at that instant, even
//!   while a request hangs, which is before any standby may take over (`lease_duration` later);
//! * a standby measures expiry from when *it* last saw the Lease change, never from the holder's
//!   `renewTime`, so clock skew between nodes does not matter;
//! * every write is a `replace` carrying the `resourceVersion` just read, so two candidates cannot
//!   both win.

use std::{
    future::Future,
    hash::{BuildHasher, RandomState},
    time::Duration,
};

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::MicroTime,
};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use tokio::{
    sync::{oneshot, watch},
    task::JoinHandle,
    time::{Instant, sleep, sleep_until, timeout, timeout_at},
};
use tracing::{debug, error, info, warn};

/// client-go's jitter factor: candidates wait `retry_period × (1 + rand × 1.2)` between attempts
/// so that they do not hit the apiserver in lockstep.
const JITTER_FACTOR: f64 = 1.2;

/// Field manager recorded on the Lease.
const FIELD_MANAGER: &str = "tfjob-operator";

/// Leader-election timings, with client-go's meaning and controller-runtime's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimings {
    /// How long a standby waits, after last seeing the Lease change, before taking it over.
    pub lease_duration: Duration,
    /// How long the leader may go without a successful renewal before it stops leading.
    pub renew_deadline: Duration,
    /// Wait between attempts to acquire or renew.
    pub retry_period: Duration,
}

impl Default for LeaseTimings {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl LeaseTimings {
    /// Checks client-go's rules: `lease_duration > renew_deadline > 1.2 × retry_period > 0`, and a
    /// lease duration of at least one second (the Lease stores whole seconds).
    pub fn validate(&self) -> Result<(), LeaderError> {
        let invalid = |reason: String| Err(LeaderError::InvalidTimings(reason));
        if self.retry_period.is_zero() {
            return invalid("the retry period must be positive".into());
        }
        if self.lease_duration < Duration::from_secs(1) {
            return invalid(format!(
                "the lease duration ({:?}) must be at least 1s",
                self.lease_duration
            ));
        }
        if self.lease_duration.as_secs() > i32::MAX as u64 {
            return invalid("the lease duration is too long".into());
        }
        if self.lease_duration <= self.renew_deadline {
            return invalid(format!(
                "the lease duration ({:?}) must be longer than the renew deadline ({:?}), or a standby could take over while the leader still believes it leads",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.renew_deadline.as_secs_f64() <= JITTER_FACTOR * self.retry_period.as_secs_f64() {
            return invalid(format!(
                "the renew deadline ({:?}) must be longer than {JITTER_FACTOR} × the retry period ({:?}) to leave room for a retry",
                self.renew_deadline, self.retry_period
            ));
        }
        Ok(())
    }

    /// `leaseDurationSeconds`, rounded up to whole seconds.
    fn lease_seconds(&self) -> i32 {
        let secs =
            self.lease_duration.as_secs() + u64::from(self.lease_duration.subsec_nanos() > 0);
        i32::try_from(secs).unwrap_or(i32::MAX)
    }
}

/// Leader election failed to start, or a Lease request failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The timings break a rule of [`LeaseTimings::validate`].
    #[error("invalid leader-election timings: {0}")]
    InvalidTimings(String),
    /// Another candidate wrote the Lease between our read and our write.
    #[error("the Lease was changed concurrently by another candidate")]
    Conflict,
    /// The Lease request failed (RBAC needs get/create/update on leases in the namespace).
    #[error("Lease request failed: {0}")]
    Api(#[source] kube::Error),
    /// Handing the Lease back did not finish within the renew deadline; standbys take over once
    /// it expires instead.
    #[error("releasing the Lease timed out")]
    ReleaseTimedOut,
    /// The election task panicked or was aborted.
    #[error("the leader-election task ended abnormally: {0}")]
    Task(String),
}

/// Starts leader election.
#[derive(Debug)]
pub struct LeaderElection;

impl LeaderElection {
    /// Spawns the election task on the current Tokio runtime for the Lease
    /// `namespace/lease_name` (created if missing), campaigning as `identity` (see
    /// [`default_identity`]). Fails only on invalid timings; API errors are retried and logged.
    pub fn start(
        client: Client,
        namespace: &str,
        lease_name: &str,
        identity: impl Into<String>,
        timings: LeaseTimings,
    ) -> Result<LeaderHandle, LeaderError> {
        timings.validate()?;
        let store = KubeLeaseStore {
            api: Api::namespaced(client, namespace),
            name: lease_name.to_string(),
        };
        Ok(spawn(store, identity.into(), timings))
    }
}

/// A running election. Dropping it stops the election and releases the Lease in the background;
/// prefer [`release`](Self::release) at shutdown to wait for that.
#[derive(Debug)]
pub struct LeaderHandle {
    identity: String,
    leading: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), LeaderError>>,
}

impl LeaderHandle {
    /// This candidate's identity, as written to `spec.holderIdentity`.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Leadership as a watch channel: `true` while leading. It turns `false` the moment the Lease
    /// is seen taken by another holder or the renew deadline passes, and stays `false` afterwards
    /// (fail-stop). A closed channel also means not leading.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Whether this candidate leads right now.
    pub fn is_leading(&self) -> bool {
        *self.leading.borrow()
    }

    /// Stops campaigning or renewing and, if leading, hands the Lease back (holder cleared,
    /// duration 1 s) so a standby takes over at its next attempt instead of after
    /// `lease_duration`. Call after the controller has stopped reconciling.
    pub async fn release(mut self) -> Result<(), LeaderError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .map_err(|e| LeaderError::Task(e.to_string()))?
    }
}

/// `POD_NAME` (or upstream's `MY_POD_NAME`), else the host name, plus `_` and a random suffix so
/// that a restarted pod with the same name is a new candidate (as controller-runtime does).
pub fn default_identity() -> String {
    let env = |key| std::env::var(key).ok();
    let host = hostname::get().ok().and_then(|h| h.into_string().ok());
    identity_from(
        env("POD_NAME").or_else(|| env("MY_POD_NAME")),
        host,
        random_u64(),
    )
}

fn identity_from(pod_name: Option<String>, host: Option<String>, random: u64) -> String {
    let base = [pod_name, host]
        .into_iter()
        .flatten()
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "tfjob-operator".to_string());
    format!("{base}_{:08x}", random as u32)
}

/// Per-process random keys (seeded from the OS) hashed with a fresh state each call; enough for
/// identity suffixes and jitter without a dedicated RNG dependency.
fn random_u64() -> u64 {
    RandomState::new().hash_one(std::time::SystemTime::now())
}

fn jittered(period: Duration) -> Duration {
    let unit = (random_u64() >> 11) as f64 / (1u64 << 53) as f64;
    period.mul_f64(1.0 + unit * JITTER_FACTOR)
}

/// The three Lease calls the algorithm needs; a trait so tests can play the apiserver.
pub(crate) trait LeaseStore: Send + Sync + 'static {
    /// The Lease, or `None` if it does not exist.
    fn get(&self) -> impl Future<Output = Result<Option<Lease>, LeaderError>> + Send;
    /// Creates the Lease; [`LeaderError::Conflict`] if it already exists.
    fn create(&self, lease: Lease) -> impl Future<Output = Result<Lease, LeaderError>> + Send;
    /// Replaces the Lease; [`LeaderError::Conflict`] if its `resourceVersion` is stale.
    fn replace(&self, lease: Lease) -> impl Future<Output = Result<Lease, LeaderError>> + Send;
    /// The Lease's name.
    fn name(&self) -> &str;
}

struct KubeLeaseStore {
    api: Api<Lease>,
    name: String,
}

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    }
}

impl LeaseStore for KubeLeaseStore {
    async fn get(&self) -> Result<Option<Lease>, LeaderError> {
        self.api.get_opt(&self.name).await.map_err(LeaderError::Api)
    }

    async fn create(&self, lease: Lease) -> Result<Lease, LeaderError> {
        self.api
            .create(&post_params(), &lease)
            .await
            .map_err(|e| match e {
                kube::Error::Api(s) if s.is_already_exists() => LeaderError::Conflict,
                e => LeaderError::Api(e),
            })
    }

    async fn replace(&self, lease: Lease) -> Result<Lease, LeaderError> {
        self.api
            .replace(&self.name, &post_params(), &lease)
            .await
            .map_err(|e| match e {
                kube::Error::Api(s) if s.is_conflict() => LeaderError::Conflict,
                e => LeaderError::Api(e),
            })
    }

    fn name(&self) -> &str {
        &self.name
    }
}

fn spawn<S: LeaseStore>(store: S, identity: String, timings: LeaseTimings) -> LeaderHandle {
    let (leading_tx, leading) = watch::channel(false);
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(campaign(
        store,
        identity.clone(),
        timings,
        leading_tx,
        stopped,
    ));
    LeaderHandle {
        identity,
        leading,
        stop: Some(stop),
        task,
    }
}

/// The last Lease spec seen and when (by our clock) it was first seen in that form.
struct Observed {
    spec: LeaseSpec,
    at: Instant,
}

/// Outcome of one acquire-or-renew attempt that reached the apiserver.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    /// We hold the Lease (acquired or renewed).
    Leading,
    /// Someone else holds an unexpired Lease.
    HeldBy(String),
}

/// The election task: campaign until leading, renew until lost or stopped; release on stop.
async fn campaign<S: LeaseStore>(
    store: S,
    identity: String,
    timings: LeaseTimings,
    leading: watch::Sender<bool>,
    mut stop: oneshot::Receiver<()>,
) -> Result<(), LeaderError> {
    let lease = store.name().to_string();
    let mut observed = None;

    // Campaign. Each attempt is bounded so a hung request cannot wedge the loop.
    let mut last_renewal = loop {
        let started = Instant::now();
        tokio::select! {
            biased;
            _ = &mut stop => return Ok(()),
            result = timeout(timings.renew_deadline, try_acquire_or_renew(&store, &identity, &timings, &mut observed)) => {
                match result {
                    Ok(Ok(Attempt::Leading)) => break started,
                    Ok(Ok(Attempt::HeldBy(holder))) => debug!(%lease, %holder, "lease held by another candidate"),
                    Ok(Err(LeaderError::Conflict)) => debug!(%lease, "lost a race for the lease; retrying"),
                    Ok(Err(err)) => warn!(%lease, error = %err, "cannot acquire the lease; retrying"),
                    Err(_) => warn!(%lease, "acquiring the lease timed out; retrying"),
                }
            }
        }
        tokio::select! {
            biased;
            _ = &mut stop => return Ok(()),
            _ = sleep(jittered(timings.retry_period)) => {}
        }
    };
    leading.send_replace(true);
    info!(%lease, %identity, "acquired the lease; leading");

    // Lead. `deadline` is measured from the start of the last successful attempt, which is no
    // later than the moment a standby saw that write, so we stop leading before anyone may start.
    let reason = loop {
        let deadline = last_renewal + timings.renew_deadline;
        // Wake at the deadline at the latest: fast-failing requests must not postpone demotion.
        let next_attempt = (Instant::now() + timings.retry_period).min(deadline);
        tokio::select! {
            biased;
            _ = &mut stop => return step_down(&store, &identity, &timings, &leading).await,
            _ = sleep_until(next_attempt) => {}
        }
        let started = Instant::now();
        if started >= deadline {
            break format!(
                "no successful renewal within the renew deadline ({:?})",
                timings.renew_deadline
            );
        }
        tokio::select! {
            biased;
            _ = &mut stop => return step_down(&store, &identity, &timings, &leading).await,
            result = timeout_at(deadline, try_acquire_or_renew(&store, &identity, &timings, &mut observed)) => {
                match result {
                    Ok(Ok(Attempt::Leading)) => last_renewal = started,
                    Ok(Ok(Attempt::HeldBy(holder))) => break format!("the lease is now held by {holder}"),
                    Ok(Err(err)) => warn!(%lease, error = %err, "renewing the lease failed; retrying until the renew deadline"),
                    Err(_) => break format!("no successful renewal within the renew deadline ({:?})", timings.renew_deadline),
                }
            }
        }
    };
    leading.send_replace(false);
    error!(%lease, %identity, %reason, "lost leadership");
    Ok(())
}

/// Reports not-leading, then hands the Lease back (bounded, so shutdown cannot hang).
async fn step_down<S: LeaseStore>(
    store: &S,
    identity: &str,
    timings: &LeaseTimings,
    leading: &watch::Sender<bool>,
) -> Result<(), LeaderError> {
    leading.send_replace(false);
    match timeout(timings.renew_deadline, release(store, identity)).await {
        Ok(result) => {
            if result.is_ok() {
                info!(lease = store.name(), %identity, "released the lease");
            }
            result
        }
        Err(_) => Err(LeaderError::ReleaseTimedOut),
    }
}

/// One round of client-go's `tryAcquireOrRenew`.
async fn try_acquire_or_renew<S: LeaseStore>(
    store: &S,
    identity: &str,
    timings: &LeaseTimings,
    observed: &mut Option<Observed>,
) -> Result<Attempt, LeaderError> {
    let now = Instant::now();
    let wall = MicroTime(jiff::Timestamp::now());

    let Some(mut current) = store.get().await? else {
        let spec = LeaseSpec {
            holder_identity: Some(identity.to_string()),
            lease_duration_seconds: Some(timings.lease_seconds()),
            acquire_time: Some(wall.clone()),
            renew_time: Some(wall),
            lease_transitions: Some(0),
            ..LeaseSpec::default()
        };
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(store.name().to_string()),
                ..ObjectMeta::default()
            },
            spec: Some(spec.clone()),
        };
        store.create(lease).await?;
        *observed = Some(Observed { spec, at: now });
        return Ok(Attempt::Leading);
    };

    let spec = current.spec.clone().unwrap_or_default();
    // Expiry is judged by how long the record has been unchanged on our clock (skew-free).
    if observed.as_ref().is_none_or(|o| o.spec != spec) {
        *observed = Some(Observed {
            spec: spec.clone(),
            at: now,
        });
    }
    let seen_at = observed.as_ref().map_or(now, |o| o.at);

    let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty());
    let held_by_us = holder == Some(identity);
    if let Some(holder) = holder
        && !held_by_us
    {
        let valid_for = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        );
        if seen_at + valid_for > now {
            return Ok(Attempt::HeldBy(holder.to_string()));
        }
    }

    let transitions = spec.lease_transitions.unwrap_or(0);
    let renewed = LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(timings.lease_seconds()),
        acquire_time: if held_by_us {
            spec.acquire_time.clone()
        } else {
            Some(wall.clone())
        },
        renew_time: Some(wall),
        lease_transitions: Some(if held_by_us {
            transitions
        } else {
            transitions.saturating_add(1)
        }),
        ..spec
    };
    // `current` keeps the resourceVersion we read: the replace fails if anyone wrote since.
    current.spec = Some(renewed);
    let written = store.replace(current).await?;
    *observed = Some(Observed {
        spec: written.spec.unwrap_or_default(),
        at: now,
    });
    Ok(Attempt::Leading)
}

/// client-go's `release`: clear the holder if it is still us, with a 1 s duration so standbys
/// see it free at once. A Lease now held by someone else is left alone.
async fn release<S: LeaseStore>(store: &S, identity: &str) -> Result<(), LeaderError> {
    let Some(mut lease) = store.get().await? else {
        return Ok(());
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(identity) {
        return Ok(());
    }
    let now = MicroTime(jiff::Timestamp::now());
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.acquire_time = Some(now.clone());
    spec.renew_time = Some(now);
    store.replace(lease).await.map(drop)
}

#[cfg(test)]
mod tests;
