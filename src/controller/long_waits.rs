//! Long timers, kept compactly.
//!
//! kube-runtime's scheduler keeps a requeue as two copies of the job's `ObjectRef` (name,
//! namespace, resourceVersion and UID strings) in a delay queue and a map: ~760 bytes per job.
//! Jobs hold long timers for hours: a finished job's `ttlSecondsAfterFinished`, a running one's
//! `activeDeadlineSeconds`, a Pending pod's `--pending-threshold`. A wait longer than [`LONG`]
//! is kept here instead, as one namespace/name → deadline entry per job (~130 bytes), and one
//! task triggers each job when its time comes: as punctually as a requeue, since the task looks
//! at least every [`LOOK_EVERY`] (shorter than [`LONG`]) and sleeps until the earliest deadline.
//!
//! The latest pass of a job decides: its wait replaces the one kept, and a pass that waits
//! for nothing (or for a short while, through kube-runtime) drops it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kube::Resource;
use kube_runtime::controller::Action;
use kube_runtime::reflector::ObjectRef;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use super::index::JobKey;

/// Waits longer than this are kept here rather than in kube-runtime's scheduler.
pub const LONG: Duration = Duration::from_secs(60);

/// How long the task sleeps at most: a wait kept here is never due before its next look.
const LOOK_EVERY: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct LongWaits {
    due: Mutex<HashMap<JobKey, Instant>>,
}

impl LongWaits {
    /// What a pass of `key` that wants to run again `after` this long (or on a change only)
    /// returns: kube-runtime's requeue for a short wait; a long one is kept here.
    pub fn action(&self, key: &JobKey, after: Option<Duration>, now: Instant) -> Action {
        let mut due = self.lock();
        match after {
            Some(after) if after > LONG => {
                due.insert(key.clone(), now + after);
                Action::await_change()
            }
            Some(after) => {
                due.remove(key);
                Action::requeue(after)
            }
            None => {
                due.remove(key);
                Action::await_change()
            }
        }
    }

    /// The job is gone.
    pub fn forget(&self, key: &JobKey) {
        self.lock().remove(key);
    }

    /// Takes the jobs whose wait has ended by `now`.
    fn take_due(&self, now: Instant) -> Vec<JobKey> {
        let mut due = self.lock();
        let ended: Vec<JobKey> = due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(key, _)| key.clone())
            .collect();
        for key in &ended {
            due.remove(key);
        }
        if due.is_empty() {
            due.shrink_to_fit(); // a burst of 10,000 waits keeps no table afterwards
        }
        ended
    }

    /// When to look next: the earliest deadline, and no later than [`LOOK_EVERY`] from `now`
    /// (a wait kept after this look ends later than that).
    fn next_look(&self, now: Instant) -> Instant {
        let latest = now + LOOK_EVERY;
        self.lock()
            .values()
            .copied()
            .min()
            .map_or(latest, |at| at.min(latest))
    }

    /// Triggers each job when its wait ends, until the trigger channel closes.
    pub async fn run<K: Resource<DynamicType = ()>>(&self, trigger: UnboundedSender<ObjectRef<K>>) {
        loop {
            tokio::time::sleep_until(self.next_look(Instant::now())).await;
            for (namespace, name) in self.take_due(Instant::now()) {
                if trigger
                    .send(ObjectRef::new(&name).within(&namespace))
                    .is_err()
                {
                    return;
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobKey, Instant>> {
        self.due.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> JobKey {
        ("ns".to_string(), name.to_string())
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn long_waits_are_kept_here_and_short_ones_go_to_kube_runtime() {
        let now = Instant::now();
        let cases = [
            // (wait, action, kept until)
            (None, Action::await_change(), None),
            (Some(secs(5)), Action::requeue(secs(5)), None),
            (Some(LONG), Action::requeue(LONG), None),
            (
                Some(secs(3600)),
                Action::await_change(),
                Some(now + secs(3600)),
            ),
        ];
        for (after, action, kept) in cases {
            let waits = LongWaits::default();
            assert_eq!(waits.action(&key("a"), after, now), action, "{after:?}");
            assert_eq!(waits.lock().get(&key("a")).copied(), kept, "{after:?}");
        }
    }

    #[test]
    fn the_latest_pass_decides() {
        let now = Instant::now();
        let waits = LongWaits::default();
        waits.action(&key("a"), Some(secs(3600)), now);
        waits.action(&key("a"), Some(secs(600)), now);
        assert_eq!(waits.lock()[&key("a")], now + secs(600), "replaced");
        waits.action(&key("a"), Some(secs(5)), now);
        assert!(waits.is_empty(), "a short wait goes to kube-runtime");
        waits.action(&key("a"), Some(secs(600)), now);
        waits.action(&key("a"), None, now);
        assert!(waits.is_empty(), "nothing to wait for");
        waits.action(&key("a"), Some(secs(600)), now);
        waits.forget(&key("a"));
        assert!(waits.is_empty(), "the job is gone");
    }

    #[test]
    fn due_jobs_are_taken_once_and_the_next_look_is_the_earliest_deadline() {
        let now = Instant::now();
        let waits = LongWaits::default();
        assert_eq!(waits.next_look(now), now + LOOK_EVERY, "nothing kept");
        waits.action(&key("a"), Some(secs(100)), now);
        waits.action(&key("b"), Some(secs(70)), now);
        waits.action(&key("c"), Some(secs(7200)), now);
        assert_eq!(waits.next_look(now), now + LOOK_EVERY);
        assert_eq!(waits.next_look(now + secs(60)), now + secs(70));
        assert!(waits.take_due(now + secs(69)).is_empty());
        assert_eq!(waits.take_due(now + secs(70)), vec![key("b")]);
        assert!(waits.take_due(now + secs(70)).is_empty(), "taken once");
        assert_eq!(waits.take_due(now + secs(8000)).len(), 2);
        assert!(waits.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_triggers_a_job_when_its_wait_ends() {
        let waits = std::sync::Arc::new(LongWaits::default());
        let (tx, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<ObjectRef<k8s_openapi::api::core::v1::Pod>>();
        let start = Instant::now();
        waits.action(&key("a"), Some(secs(3600)), start);
        let task = tokio::spawn({
            let waits = waits.clone();
            async move { waits.run(tx).await }
        });
        let job = rx.recv().await.expect("a trigger");
        assert_eq!(
            (job.name.as_str(), job.namespace.as_deref()),
            ("a", Some("ns"))
        );
        let late = Instant::now() - (start + secs(3600));
        assert!(late < Duration::from_millis(10), "triggered {late:?} late");
        task.abort();
    }
}
