//! The controller's memories: what it wrote or announced recently, and how often a job's
//! reconcile failed. The planner is stateless; these let the shell avoid repeating itself
//! between a write and the moment its cache shows it.
//!
//! - [`StatusMemo`]: statuses this operator wrote, until the TFJob cache catches up;
//! - [`HeldStatuses`]: status changes held for the batch window, not written yet;
//! - [`Creating`]: how many reconciles are creating children right now;
//! - [`Announced`]: pod warnings already announced (one event per pod and message);
//! - [`UndecodableMemo`]: undecodable TFJobs already marked Failed;
//! - [`ErrorBackoff`]: per-job exponential back-off of failed reconciles;
//! - [`Conflicts`]: child names taken by objects of other controllers, per job.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tfjob_core::api::JobStatus;
use tfjob_core::plan::coalesce::Held;

/// A map by job UID whose entries expire after [`MEMO_TTL`]. Expired entries are swept at
/// most every [`SWEEP_EVERY`] (a sweep on every insert is quadratic when 10,000 jobs write
/// their first status together), and a map that has mostly emptied gives its memory back (a
/// burst of 10,000 entries would otherwise keep its table for the life of the process).
struct Expiring<V> {
    entries: HashMap<String, (V, Instant)>,
    swept: Instant,
}

/// How long a memo entry is kept at most (the cache normally catches up in milliseconds).
const MEMO_TTL: Duration = Duration::from_secs(300);

/// How often expired entries are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Below this many slots a table is not worth shrinking.
const SMALL_TABLE: usize = 256;

impl<V> Default for Expiring<V> {
    fn default() -> Self {
        Expiring {
            entries: HashMap::new(),
            swept: Instant::now(),
        }
    }
}

impl<V> Expiring<V> {
    fn insert(&mut self, key: &str, value: V) {
        let now = Instant::now();
        if now.duration_since(self.swept) >= SWEEP_EVERY {
            self.swept = now;
            self.entries
                .retain(|_, (_, at)| now.duration_since(*at) < MEMO_TTL);
            self.shrink_if_sparse();
        }
        self.entries.insert(key.to_string(), (value, now));
    }

    fn get(&self, key: &str) -> Option<&V> {
        self.entries.get(key).map(|(value, _)| value)
    }

    fn remove(&mut self, key: &str) -> Option<V> {
        let removed = self.entries.remove(key).map(|(value, _)| value);
        if removed.is_some() {
            self.shrink_if_sparse();
        }
        removed
    }

    /// Halves the table once it is less than a quarter full (amortized O(1) per removal).
    fn shrink_if_sparse(&mut self) {
        let (len, capacity) = (self.entries.len(), self.entries.capacity());
        if capacity > SMALL_TABLE && len * 4 < capacity {
            self.entries.shrink_to(len * 2);
        }
    }

    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.entries.capacity()
    }
}

/// The statuses this operator wrote recently, by job UID, with the resourceVersion each write
/// produced. A reconcile that runs before the TFJob cache has caught up with our own write uses
/// the memo instead of the stale cached status, so no transition is applied, counted or
/// announced twice.
#[derive(Default)]
pub struct StatusMemo(Mutex<Expiring<(u64, JobStatus)>>);

impl StatusMemo {
    /// The status to plan from, with the resourceVersion our write got: ours if the cached
    /// object (at `cached_rv`) predates our write.
    pub fn newer_than(&self, uid: &str, cached_rv: u64) -> Option<(u64, JobStatus)> {
        let mut written = self.lock();
        match written.get(uid) {
            Some((rv, status)) if *rv > cached_rv => Some((*rv, status.clone())),
            Some(_) => {
                written.remove(uid); // the cache has caught up
                None
            }
            None => None,
        }
    }

    pub fn remember(&self, uid: &str, rv: u64, status: JobStatus) {
        self.lock().insert(uid, (rv, status));
    }

    pub fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Expiring<(u64, JobStatus)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Status changes held for the batch window (`plan::coalesce`), by job UID. An entry lives
/// one window unless its job goes away first; entries older than [`MEMO_TTL`] are dropped.
#[derive(Default)]
pub struct HeldStatuses(Mutex<Expiring<Held>>);

impl HeldStatuses {
    /// The change held for the job, taken out (the pass holds it again if it still waits).
    pub fn take(&self, uid: &str) -> Option<Held> {
        self.lock().remove(uid)
    }

    pub fn hold(&self, uid: &str, held: Held) {
        self.lock().insert(uid, held);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Expiring<Held>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How many reconciles are creating children at this moment: while any are, a new job's
/// Created status waits a little longer (`plan::coalesce`), so a backlog's pods go first.
#[derive(Default)]
pub struct Creating(std::sync::atomic::AtomicUsize);

impl Creating {
    /// Counts this reconcile as creating until the guard is dropped.
    pub fn enter(&self) -> CreatingGuard<'_> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        CreatingGuard(self)
    }

    pub fn any(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed) > 0
    }
}

pub struct CreatingGuard<'a>(&'a Creating);

impl Drop for CreatingGuard<'_> {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The pod warnings already announced, by pod UID and reason: an unhealthy pod gets one event
/// per distinct message of each reason, not one per reconcile (upstream's event spam); two
/// reasons about one pod (an ImagePullBackOff and the job's PodCannotStart) do not take turns.
#[derive(Default)]
pub struct Announced(Mutex<HashMap<String, String>>);

impl Announced {
    /// Bounds the memory of pods that are long gone.
    const MAX: usize = 50_000;

    /// Whether `message` is new for `pod_uid` and `reason` (and remembers it).
    pub fn first_time(&self, pod_uid: &str, reason: &str, message: &str) -> bool {
        let key = format!("{pod_uid}/{reason}");
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.get(&key).is_some_and(|m| m == message) {
            return false;
        }
        if seen.len() >= Self::MAX {
            seen.clear();
        }
        seen.insert(key, message.to_string());
        true
    }
}

/// Per-job exponential back-off for failed reconciles (kube-runtime's `error_policy` is not
/// told about successes, so the count is kept here and reset on success), and until when a
/// job waits: events of its children do not cut the wait short (a failing job whose pods
/// change would otherwise retry at the pace of its pod events).
pub struct ErrorBackoff {
    /// Failures in a row, until when the job waits, and the spec generation the last failing
    /// pass saw.
    failures: Mutex<HashMap<String, Failures>>,
    /// Retry at once (fault injection only: proves the tests can tell back-off from none).
    disabled: bool,
}

impl Default for ErrorBackoff {
    fn default() -> Self {
        ErrorBackoff {
            failures: Mutex::default(),
            disabled: backoff_disabled_by_fault_injection(),
        }
    }
}

#[cfg(feature = "fault-injection")]
fn backoff_disabled_by_fault_injection() -> bool {
    std::env::var_os("TFJOB_FAULT_NO_BACKOFF").is_some_and(|v| v == "1")
}

#[cfg(not(feature = "fault-injection"))]
fn backoff_disabled_by_fault_injection() -> bool {
    false
}

struct Failures {
    count: u32,
    until: Instant,
    generation: Option<i64>,
}

impl ErrorBackoff {
    const BASE: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(300);

    /// Records a failure of `key`, whose failing pass saw spec `generation`; returns how long
    /// to wait before retrying.
    pub fn failed(&self, key: &str, generation: Option<i64>) -> Duration {
        if self.disabled {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut failures = self.lock();
        let entry = failures.entry(key.to_string()).or_insert(Failures {
            count: 0,
            until: now,
            generation,
        });
        entry.count = entry.count.saturating_add(1);
        let wait = Self::BASE
            .saturating_mul(1u32 << (entry.count - 1).min(20))
            .min(Self::MAX);
        entry.until = now + wait;
        entry.generation = generation;
        wait
    }

    pub fn succeeded(&self, key: &str) {
        let mut failures = self.lock();
        if !failures.is_empty() {
            failures.remove(key);
        }
    }

    /// Until when `key` waits out its back-off, if it is waiting now.
    pub fn waiting_until(&self, key: &str) -> Option<Instant> {
        self.lock()
            .get(key)
            .map(|f| f.until)
            .filter(|until| Instant::now() < *until)
    }

    /// Until when `key` waits, if it is waiting and its spec is still the `generation` its last
    /// failing pass saw: a pass that only a status change (our own write's echo) or a metadata
    /// change started waits too; a changed spec (a user's suspend, new replicas) is acted on.
    pub fn waiting_for_spec(&self, key: &str, generation: Option<i64>) -> Option<Instant> {
        self.lock()
            .get(key)
            .filter(|f| f.generation == generation && Instant::now() < f.until)
            .map(|f| f.until)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Remembers which undecodable objects were already reported, by UID and resourceVersion, so a
/// broken object is marked once, not on every watch event our own write causes.
#[derive(Default)]
pub struct UndecodableMemo(Mutex<HashMap<String, String>>);

impl UndecodableMemo {
    pub fn seen(&self, uid: &str, rv: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)
            .is_some_and(|r| r == rv)
    }
    pub fn remember(&self, uid: &str, rv: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid.into(), rv.into());
    }
}

/// Children a job cannot create because an object of the same name belongs to someone else,
/// by job UID: what the job's condition message names until the name is free.
#[derive(Default)]
pub struct Conflicts(Mutex<HashMap<String, Vec<String>>>);

impl Conflicts {
    /// The notes for job `uid` (empty when nothing blocks it).
    pub fn notes(&self, uid: &str) -> Vec<String> {
        self.lock().get(uid).cloned().unwrap_or_default()
    }

    /// Replaces what blocks job `uid`.
    pub fn set(&self, uid: &str, notes: Vec<String>) {
        let mut conflicts = self.lock();
        if notes.is_empty() {
            conflicts.remove(uid);
        } else {
            conflicts.insert(uid.to_string(), notes);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<String>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_entries_gives_its_memory_back_once_taken() {
        let mut map = Expiring::<u64>::default();
        for i in 0..10_000u64 {
            map.insert(&format!("uid-{i}"), i);
        }
        let full = map.capacity();
        for i in 0..10_000u64 {
            assert_eq!(map.remove(&format!("uid-{i}")), Some(i));
        }
        assert!(full >= 10_000);
        assert!(
            map.capacity() <= SMALL_TABLE,
            "{} slots left of {full}",
            map.capacity()
        );
        map.insert("again", 1);
        assert_eq!(map.get("again"), Some(&1));
    }

    #[test]
    fn memo_serves_our_status_until_the_cache_catches_up() {
        let memo = StatusMemo::default();
        let status = JobStatus {
            completion_time: None,
            ..Default::default()
        };
        memo.remember("uid", 10, status.clone());
        assert_eq!(memo.newer_than("uid", 9), Some((10, status)));
        assert_eq!(memo.newer_than("uid", 10), None);
        assert_eq!(memo.newer_than("uid", 9), None, "forgotten once caught up");
    }

    #[test]
    fn pod_warnings_are_announced_once_per_message() {
        let announced = Announced::default();
        // (pod, reason, message) → announced
        let steps = [
            ("pod-a", "CrashLoopBackOff", "back-off 10s", true),
            ("pod-a", "CrashLoopBackOff", "back-off 10s", false),
            ("pod-a", "CrashLoopBackOff", "back-off 20s", true),
            ("pod-b", "CrashLoopBackOff", "back-off 10s", true),
            // two reasons about one pod, every pass: each once
            (
                "pod-c",
                "ImagePullBackOff",
                "waiting: Back-off pulling",
                true,
            ),
            ("pod-c", "PodCannotStart", "pod-c cannot start", true),
            (
                "pod-c",
                "ImagePullBackOff",
                "waiting: Back-off pulling",
                false,
            ),
            ("pod-c", "PodCannotStart", "pod-c cannot start", false),
        ];
        for (pod, reason, message, want) in steps {
            assert_eq!(
                announced.first_time(pod, reason, message),
                want,
                "{pod} {reason} {message}"
            );
        }
    }

    #[test]
    fn backoff_doubles_up_to_five_minutes_and_resets_on_success() {
        let backoff = ErrorBackoff::default();
        assert_eq!(backoff.failed("a", None), Duration::from_millis(500));
        assert_eq!(backoff.failed("a", None), Duration::from_secs(1));
        assert_eq!(backoff.failed("a", None), Duration::from_secs(2));
        for _ in 0..30 {
            backoff.failed("a", None);
        }
        assert_eq!(backoff.failed("a", None), Duration::from_secs(300));
        backoff.succeeded("a");
        assert_eq!(backoff.failed("a", None), Duration::from_millis(500));
    }

    #[test]
    fn a_job_waits_out_its_backoff_until_it_succeeds() {
        let backoff = ErrorBackoff::default();
        assert_eq!(backoff.waiting_until("a"), None, "never failed");
        let before = Instant::now();
        backoff.failed("a", None);
        let until = backoff.waiting_until("a").expect("waiting");
        assert!(until >= before + Duration::from_millis(500));
        assert_eq!(backoff.waiting_until("b"), None);
        backoff.succeeded("a");
        assert_eq!(backoff.waiting_until("a"), None);
        let backoff = ErrorBackoff::default();
        backoff.failed("c", None);
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(
            backoff.waiting_until("c"),
            None,
            "the wait is over after 500 ms"
        );
    }

    #[test]
    fn only_a_changed_spec_cuts_the_wait_short() {
        let backoff = ErrorBackoff::default();
        backoff.failed("a", Some(3));
        // (generation the pass sees) → waits
        let cases = [(Some(3), true), (Some(4), false), (None, false)];
        for (generation, waits) in cases {
            assert_eq!(
                backoff.waiting_for_spec("a", generation).is_some(),
                waits,
                "{generation:?}"
            );
        }
        assert_eq!(backoff.waiting_for_spec("b", Some(3)), None, "never failed");
        backoff.succeeded("a");
        assert_eq!(backoff.waiting_for_spec("a", Some(3)), None);
    }
}

#[cfg(test)]
mod creating_tests {
    use super::*;

    #[test]
    fn creating_counts_the_guards_alive() {
        let creating = Creating::default();
        assert!(!creating.any());
        let first = creating.enter();
        let second = creating.enter();
        assert!(creating.any());
        drop(first);
        assert!(creating.any());
        drop(second);
        assert!(!creating.any());
    }
}
