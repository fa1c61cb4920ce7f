//! What every phase shares: the control plane, a client, the audit log, the binaries, and the
//! bookkeeping that turns audit entries into rates, per-job write counts and timelines.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::Resource;
use kube::api::{Api, PostParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::audit::{Agent, AuditLog, Entry};
use crate::cluster::ControlPlane;
use crate::report::Sizes;

pub struct Binaries {
    pub operator: PathBuf,
    pub sim_kubelet: PathBuf,
    pub kcm: PathBuf,
}

pub struct Run {
    pub cp: ControlPlane,
    pub client: kube::Client,
    pub audit: AuditLog,
    pub bins: Binaries,
    /// Where process logs go.
    pub logs: PathBuf,
    pub sizes: Sizes,
}

/// Writes by one agent in one namespace, sorted out.
#[derive(Default, Debug)]
pub struct Accounting {
    pub writes: BTreeMap<String, usize>,
    /// Pods, Services, TFJobs, Jobs (including their status subresource).
    pub object_writes: usize,
    pub events: usize,
    pub conflicts: usize,
    pub reads_after: usize,
}

impl Accounting {
    pub fn per_job(&self, jobs: usize) -> BTreeMap<String, f64> {
        self.writes
            .iter()
            .map(|(k, v)| (k.clone(), *v as f64 / jobs.max(1) as f64))
            .collect()
    }
}

pub fn is_object(entry: &Entry) -> bool {
    matches!(
        entry.resource.as_str(),
        "pods" | "services" | "tfjobs" | "jobs"
    ) && matches!(entry.subresource.as_str(), "" | "status")
}

impl Run {
    /// Creates `objects` with `concurrency` requests in flight; returns how many failed.
    pub async fn create_all<K>(&self, api: &Api<K>, objects: Vec<K>) -> usize
    where
        K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
    {
        let params = PostParams::default();
        let results: Vec<bool> = futures::stream::iter(objects)
            .map(|o| {
                let (api, params) = (api.clone(), params.clone());
                async move { api.create(&params, &o).await.is_ok() }
            })
            .buffer_unordered(self.sizes.concurrency.max(1))
            .collect()
            .await;
        results.iter().filter(|ok| !**ok).count()
    }

    /// Creates `objects` on a fixed schedule, `rate` per second, each create its own task so a
    /// slow answer never delays the next one (an open loop); returns how many failed.
    pub async fn create_paced<K>(&self, api: &Api<K>, objects: Vec<K>, rate: f64) -> usize
    where
        K: Resource
            + Clone
            + Serialize
            + DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1e-3)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut creates = Vec::with_capacity(objects.len());
        for object in objects {
            ticks.tick().await;
            let api = api.clone();
            creates.push(tokio::spawn(async move {
                api.create(&PostParams::default(), &object).await.is_ok()
            }));
        }
        let mut failed = 0;
        for create in creates {
            if !create.await.unwrap_or(false) {
                failed += 1;
            }
        }
        failed
    }

    /// Polls the audit log until `matches` has matched `expected` new entries, or `timeout`.
    pub async fn wait_count(
        &mut self,
        timeout: Duration,
        expected: usize,
        matches: impl Fn(&Entry) -> bool,
    ) -> bool {
        let started = Instant::now();
        let mut seen = self.audit.entries.len();
        let mut count = 0;
        loop {
            self.audit.poll();
            count += self.audit.entries[seen..]
                .iter()
                .filter(|e| matches(e))
                .count();
            seen = self.audit.entries.len();
            if count >= expected {
                return true;
            }
            if started.elapsed() > timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until `agent` has made no request in `namespace` for `idle` (at most `timeout`).
    pub async fn quiet(
        &mut self,
        namespace: &str,
        agent: Agent,
        idle: Duration,
        timeout: Duration,
    ) {
        let started = Instant::now();
        let mut last_activity = Instant::now();
        let mut seen = self.audit.entries.len();
        while started.elapsed() < timeout {
            self.audit.poll();
            if self.audit.entries[seen..]
                .iter()
                .any(|e| e.agent == agent && e.namespace == namespace)
            {
                last_activity = Instant::now();
            }
            seen = self.audit.entries.len();
            if last_activity.elapsed() >= idle {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The writes, events, conflicts and reads (after `ready_at`) of `agent` in `namespace`.
    pub fn accounting(&self, namespace: &str, agent: Agent, ready_at: f64) -> Accounting {
        let mut acc = Accounting::default();
        for e in self
            .audit
            .in_namespace(namespace)
            .filter(|e| e.agent == agent)
        {
            if e.code == 409 {
                acc.conflicts += 1;
            }
            if e.is_read() && e.received > ready_at {
                acc.reads_after += 1;
            }
            if !e.is_write() {
                continue;
            }
            *acc.writes.entry(e.kind()).or_default() += 1;
            if e.resource == "events" {
                acc.events += 1;
            } else if is_object(e) {
                acc.object_writes += 1;
            }
        }
        acc
    }

    /// First request received in `namespace` by `submitter` (the first job submitted).
    pub fn first_submit(&self, namespace: &str, submitter: Agent) -> Option<f64> {
        self.audit
            .in_namespace(namespace)
            .filter(|e| e.agent == submitter && e.verb == "create")
            .map(|e| e.received)
            .min_by(f64::total_cmp)
    }

    /// Completion times of the pods `creator` created in `namespace`, sorted.
    pub fn pod_times(&self, namespace: &str, creator: Agent) -> Vec<f64> {
        let mut times: Vec<f64> = self
            .audit
            .in_namespace(namespace)
            .filter(|e| e.agent == creator && e.created("pods"))
            .map(|e| e.done)
            .collect();
        times.sort_by(f64::total_cmp);
        times
    }

    /// Every write in `namespace` by `agents` received within `[from, to]`, by kind, per job:
    /// what a throughput window costs the apiserver (the parents submitted included).
    pub fn window_writes_per_job(
        &self,
        namespace: &str,
        agents: &[Agent],
        (from, to): (f64, f64),
        jobs: usize,
    ) -> BTreeMap<String, f64> {
        let mut writes = BTreeMap::new();
        for e in self.audit.in_namespace(namespace) {
            if agents.contains(&e.agent) && e.is_write() && e.received >= from && e.received <= to {
                *writes.entry(e.kind()).or_default() += 1.0 / jobs.max(1) as f64;
            }
        }
        writes
    }

    /// Object writes by `creator` in `namespace` completed within `[from, to]`.
    pub fn object_writes_between(
        &self,
        namespace: &str,
        creator: Agent,
        from: f64,
        to: f64,
    ) -> usize {
        self.audit
            .in_namespace(namespace)
            .filter(|e| e.agent == creator && e.is_write() && is_object(e))
            .filter(|e| e.done >= from && e.done <= to)
            .count()
    }
}

/// The run whose `key` is the median of `runs` (the lower middle one for an even count),
/// with every run's key in run order.
pub fn median_run<T>(runs: Vec<T>, key: impl Fn(&T) -> f64) -> Option<(T, Vec<f64>)> {
    let keys: Vec<f64> = runs.iter().map(&key).collect();
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|a, b| keys[*a].total_cmp(&keys[*b]));
    let middle = *order.get(order.len().saturating_sub(1) / 2)?;
    let chosen = runs.into_iter().nth(middle)?;
    Some((chosen, keys))
}

/// Pods created over time, at most ~400 points.
pub fn timeline(t0: f64, times: &[f64]) -> Vec<(f64, usize)> {
    let step = times.len().div_ceil(400).max(1);
    let mut points = vec![(0.0, 0)];
    for (i, t) in times.iter().enumerate() {
        if (i + 1) % step == 0 || i + 1 == times.len() {
            points.push(((t - t0).max(0.0), i + 1));
        }
    }
    points
}

/// The `q` quantile (0..=1) of sorted `values`, nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&values, 0.5), 50.0);
        assert_eq!(quantile(&values, 0.99), 99.0);
        assert_eq!(quantile(&values, 1.0), 100.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }

    #[test]
    fn the_median_run_is_chosen_by_its_key() {
        let cases: [(&[f64], Option<f64>); 4] = [
            (&[3.0, 1.0, 2.0], Some(2.0)),
            (&[5.0], Some(5.0)),
            (&[4.0, 1.0], Some(1.0)),
            (&[], None),
        ];
        for (runs, want) in cases {
            let got = median_run(runs.to_vec(), |v| *v).map(|(v, keys)| {
                assert_eq!(keys, runs, "keys in run order");
                v
            });
            assert_eq!(got, want, "{runs:?}");
        }
    }

    #[test]
    fn timelines_start_at_zero_and_end_with_the_total() {
        let times: Vec<f64> = (0..1000).map(|i| 10.0 + f64::from(i) / 100.0).collect();
        let points = timeline(10.0, &times);
        assert_eq!(points[0], (0.0, 0));
        assert_eq!(points.last().unwrap().1, 1000);
        assert!(points.len() <= 402);
    }
}
