//! Every UID each pod name had in a test's namespace, from a watch. A list at the end cannot show
//! a pod created twice when the first copy was deleted in between; a second UID for one name
//! does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::task::JoinHandle;

use super::TestContext;

/// Pod name → every UID seen with that name.
pub type UidsByName = BTreeMap<String, BTreeSet<String>>;

/// A watch of the namespace's pods, recording from its start until [`PodHistory::stop`] (or
/// drop).
pub struct PodHistory {
    uids: Arc<Mutex<UidsByName>>,
    watch: JoinHandle<()>,
}

impl PodHistory {
    /// Starts watching the pods of `ctx`'s namespace.
    pub fn record(ctx: &TestContext) -> PodHistory {
        let uids = Arc::new(Mutex::new(UidsByName::new()));
        let pods: Api<Pod> = ctx.api();
        let record = uids.clone();
        let watch = tokio::spawn(async move {
            let mut events = watcher(pods, watcher::Config::default())
                .default_backoff()
                .touched_objects()
                .boxed();
            while let Some(event) = events.next().await {
                // A watch error is retried with back-off: keep recording.
                let Ok(pod) = event else { continue };
                record
                    .lock()
                    .expect("lock")
                    .entry(pod.name_any())
                    .or_default()
                    .insert(pod.uid().unwrap_or_default());
            }
        });
        PodHistory { uids, watch }
    }

    /// Ends the watch: what it recorded so far is final.
    pub fn stop(&self) {
        self.watch.abort();
    }

    /// What was recorded so far.
    pub fn uids_by_name(&self) -> UidsByName {
        self.uids.lock().expect("lock").clone()
    }

    /// How many pod names were seen.
    pub fn names_seen(&self) -> usize {
        self.uids.lock().expect("lock").len()
    }

    /// Fails if any pod name was seen with more than one UID: created twice.
    pub fn assert_no_pod_created_twice(&self) {
        let twice: UidsByName = self
            .uids_by_name()
            .into_iter()
            .filter(|(_, uids)| uids.len() > 1)
            .collect();
        assert!(twice.is_empty(), "pods created twice: {twice:?}");
    }
}

impl Drop for PodHistory {
    fn drop(&mut self) {
        // A failed test must not leave the watch running.
        self.watch.abort();
    }
}
