//! Feeds kube-runtime's reflector store from the TFJob watch, applying re-lists in place.
//!
//! kube-runtime's `reflector` collects a re-list (after 410 Gone or a restarted apiserver) in a
//! second map and swaps it in at the end, so for a while every cached job exists twice. Here a
//! re-list updates the store object by object and, at its end, deletes the jobs it did not see:
//! memory stays flat, and the store is never older than before the re-list began. The initial
//! list goes through the writer unchanged, which is what makes the store ready.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use kube::Resource;
use kube_runtime::reflector::Store;
use kube_runtime::reflector::store::Writer;
use kube_runtime::watcher::Event;

pub struct InPlaceWriter<K: Resource<DynamicType = ()> + Clone + 'static> {
    writer: Writer<K>,
    /// Whether the initial list has completed.
    synced: bool,
    /// Jobs seen by the re-list in progress, by a hash of namespace and name.
    seen: Option<HashSet<u64>>,
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> InPlaceWriter<K> {
    pub fn new(writer: Writer<K>) -> Self {
        InPlaceWriter {
            writer,
            synced: false,
            seen: None,
        }
    }

    pub fn reader(&self) -> Store<K> {
        self.writer.as_reader()
    }

    pub fn apply(&mut self, event: &Event<K>) {
        if !self.synced {
            self.synced = matches!(event, Event::InitDone);
            self.writer.apply_watcher_event(event);
            return;
        }
        match event {
            Event::Init => self.seen = Some(HashSet::new()),
            Event::InitApply(object) => {
                self.seen
                    .get_or_insert_with(HashSet::new)
                    .insert(key_hash(object));
                self.writer
                    .apply_watcher_event(&Event::Apply(object.clone()));
            }
            Event::InitDone => {
                let seen = self.seen.take().unwrap_or_default();
                for gone in self
                    .writer
                    .as_reader()
                    .state()
                    .into_iter()
                    .filter(|job| !seen.contains(&key_hash(job.as_ref())))
                {
                    self.writer
                        .apply_watcher_event(&Event::Delete(gone.as_ref().clone()));
                }
            }
            Event::Apply(_) | Event::Delete(_) => self.writer.apply_watcher_event(event),
        }
    }
}

/// A collision could only keep a job deleted during the watch outage until its next event.
fn key_hash<K: Resource>(object: &K) -> u64 {
    let mut hasher = DefaultHasher::new();
    object.meta().namespace.hash(&mut hasher);
    object.meta().name.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube_runtime::reflector::store;

    fn object(name: &str, version: &str) -> ConfigMap {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": version}
        }))
        .unwrap()
    }

    fn names(store: &Store<ConfigMap>) -> Vec<(String, String)> {
        let mut names: Vec<_> = store
            .state()
            .iter()
            .map(|o| {
                (
                    o.metadata.name.clone().unwrap(),
                    o.metadata.resource_version.clone().unwrap(),
                )
            })
            .collect();
        names.sort();
        names
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn a_relist_updates_in_place_and_deletes_what_it_did_not_see() {
        let (reader, writer) = store::<ConfigMap>();
        let mut writer = InPlaceWriter::new(writer);
        writer.apply(&Event::Init);
        writer.apply(&Event::InitApply(object("a", "1")));
        writer.apply(&Event::InitApply(object("b", "1")));
        writer.apply(&Event::InitDone);
        reader.wait_until_ready().await.unwrap();
        assert_eq!(names(&reader), pairs(&[("a", "1"), ("b", "1")]));

        writer.apply(&Event::Init);
        writer.apply(&Event::InitApply(object("b", "2")));
        // Mid re-list: b is already updated, a (not reached yet) is still there.
        assert_eq!(names(&reader), pairs(&[("a", "1"), ("b", "2")]));
        writer.apply(&Event::InitApply(object("c", "2")));
        writer.apply(&Event::InitDone);
        assert_eq!(names(&reader), pairs(&[("b", "2"), ("c", "2")]));

        writer.apply(&Event::Apply(object("d", "3")));
        writer.apply(&Event::Delete(object("b", "3")));
        assert_eq!(names(&reader), pairs(&[("c", "2"), ("d", "3")]));
    }
}
