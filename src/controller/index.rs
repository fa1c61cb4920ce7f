//! The cache of the operator's own pods and Services, indexed by job, holding only the facts
//! `plan` needs (a few hundred bytes per child instead of the whole object).
//!
//! It is fed by a label-filtered watcher (list + watch, re-list on 410 Gone) and also by the
//! operator's own writes ("read your writes"): a pod the operator just created is in the index
//! before its watch event arrives, and one it just deleted is marked terminating. That is what
//! keeps a fast second reconcile from creating the same pod twice (a 409) or restarting the same
//! failed pod twice. Stale watch events never roll an entry back: resourceVersions only grow.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Resource;
use kube::ResourceExt;
use kube::api::DynamicObject;
use kube_runtime::watcher;

use crate::api::constants::LABEL_JOB_NAME;
use crate::reconcile::observe::{PodFacts, PodGroupFacts, ServiceFacts};

/// A job's identity within the operator: namespace and name.
pub type JobKey = (String, String);

/// The facts kept per child object, computed from the object.
pub trait ChildFacts: Clone + Send + Sync + 'static {
    type Object: Resource + Clone + Send + Sync + 'static;
    fn of(object: &Self::Object) -> Self;
    fn mark_terminating(&mut self);
    /// The name of the job the child belongs to: its `job-name` label.
    fn job_of(object: &Self::Object) -> Option<String> {
        object.labels().get(LABEL_JOB_NAME).cloned()
    }
}

impl ChildFacts for PodFacts {
    type Object = Pod;
    fn of(object: &Pod) -> Self {
        PodFacts::of(object)
    }
    fn mark_terminating(&mut self) {
        self.terminating = true;
    }
}

/// PodGroups carry no labels of ours (upstream copies only annotations): the controlling
/// TFJob's owner reference names the job.
impl ChildFacts for PodGroupFacts {
    type Object = DynamicObject;
    fn of(object: &DynamicObject) -> Self {
        PodGroupFacts::of(object)
    }
    fn mark_terminating(&mut self) {
        self.terminating = true;
    }
    fn job_of(object: &DynamicObject) -> Option<String> {
        object
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true) && o.kind == "TFJob")
            .map(|o| o.name.clone())
    }
}

impl ChildFacts for ServiceFacts {
    type Object = Service;
    fn of(object: &Service) -> Self {
        ServiceFacts::of(object)
    }
    fn mark_terminating(&mut self) {
        self.terminating = true;
    }
}

#[derive(Clone, Debug)]
struct Entry<F> {
    facts: F,
    uid: Option<String>,
    owner_uid: Option<String>,
    resource_version: u64,
}

type Children<F> = HashMap<JobKey, BTreeMap<String, Entry<F>>>;

struct State<F> {
    live: Children<F>,
    /// Objects of an initial list or re-list in progress; swapped in at `InitDone`.
    relisting: Option<Children<F>>,
    ready: bool,
}

/// Children of every job, by job key and child name.
pub struct ChildIndex<F> {
    state: RwLock<State<F>>,
}

impl<F: ChildFacts> Default for ChildIndex<F> {
    fn default() -> Self {
        ChildIndex {
            state: RwLock::new(State {
                live: HashMap::new(),
                relisting: None,
                ready: false,
            }),
        }
    }
}

impl<F: ChildFacts> ChildIndex<F> {
    /// Applies a watcher event; returns the jobs whose children changed.
    pub fn apply(&self, event: &watcher::Event<F::Object>) -> Vec<JobKey> {
        let mut state = self.write();
        match event {
            watcher::Event::Init => {
                state.relisting = Some(HashMap::new());
                vec![]
            }
            watcher::Event::InitApply(object) => {
                if let Some((key, name, entry)) = entry_of::<F>(object) {
                    let relisting = state.relisting.get_or_insert_with(HashMap::new);
                    relisting.entry(key).or_default().insert(name, entry);
                }
                vec![]
            }
            watcher::Event::InitDone => {
                let fresh = state.relisting.take().unwrap_or_default();
                let old = std::mem::replace(&mut state.live, fresh);
                state.ready = true;
                // Every job whose children may differ from before the re-list.
                let mut touched: Vec<JobKey> =
                    old.into_keys().chain(state.live.keys().cloned()).collect();
                touched.sort();
                touched.dedup();
                touched
            }
            watcher::Event::Apply(object) => match entry_of::<F>(object) {
                Some((key, name, entry)) => {
                    let children = state.live.entry(key.clone()).or_default();
                    let stale = children.get(&name).is_some_and(|e| {
                        e.uid == entry.uid && e.resource_version > entry.resource_version
                    });
                    if !stale {
                        children.insert(name, entry);
                    }
                    vec![key]
                }
                None => vec![],
            },
            watcher::Event::Delete(object) => match entry_of::<F>(object) {
                Some((key, name, entry)) => {
                    if let Some(children) = state.live.get_mut(&key) {
                        // Only this incarnation: a re-created child of the same name stays.
                        if children.get(&name).is_some_and(|e| e.uid == entry.uid) {
                            children.remove(&name);
                        }
                        if children.is_empty() {
                            state.live.remove(&key);
                        }
                    }
                    vec![key]
                }
                None => vec![],
            },
        }
    }

    /// The facts of the children of `key` controlled by the job with `owner_uid`.
    pub fn children(&self, key: &JobKey, owner_uid: Option<&str>) -> Vec<F> {
        let state = self.read();
        state
            .live
            .get(key)
            .map(|children| {
                children
                    .values()
                    .filter(|e| owner_uid.is_none() || e.owner_uid.as_deref() == owner_uid)
                    .map(|e| e.facts.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records an object the operator has just created (the apiserver's response).
    pub fn created(&self, object: &F::Object) {
        self.apply(&watcher::Event::Apply(object.clone()));
    }

    /// Marks a child the operator has just deleted as terminating.
    pub fn deleting(&self, key: &JobKey, name: &str) {
        let mut state = self.write();
        if let Some(entry) = state.live.get_mut(key).and_then(|c| c.get_mut(name)) {
            entry.facts.mark_terminating();
        }
    }

    /// Whether the initial list has completed.
    pub fn is_ready(&self) -> bool {
        self.read().ready
    }

    /// Number of children cached.
    pub fn len(&self) -> usize {
        self.read().live.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State<F>> {
        // A panic while holding the lock cannot leave the maps half-updated in a harmful way.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State<F>> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The index entry of a child: its job (from the job-name label), name and facts.
fn entry_of<F: ChildFacts>(object: &F::Object) -> Option<(JobKey, String, Entry<F>)> {
    let job = F::job_of(object)?;
    let key = (object.namespace().unwrap_or_default(), job);
    let owner_uid = object
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true) && o.kind == "TFJob")
        .map(|o| o.uid.clone());
    let resource_version = object
        .resource_version()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some((
        key,
        object.name_any(),
        Entry {
            facts: F::of(object),
            uid: object.uid(),
            owner_uid,
            resource_version,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::observe::Phase;

    fn pod(name: &str, uid: &str, rv: u64, phase: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": rv.to_string(),
                         "labels": {"training.kubeflow.org/job-name": "j", "training.kubeflow.org/replica-type": "worker",
                                    "training.kubeflow.org/replica-index": "0"},
                         "ownerReferences": [{"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "name": "j", "uid": "job-1", "controller": true}]},
            "status": {"phase": phase}
        }))
        .unwrap()
    }

    fn key() -> JobKey {
        ("ns".into(), "j".into())
    }

    fn phases(index: &ChildIndex<PodFacts>) -> Vec<(String, Phase, bool)> {
        index
            .children(&key(), Some("job-1"))
            .into_iter()
            .map(|f| (f.name, f.phase, f.terminating))
            .collect()
    }

    #[test]
    fn initial_list_becomes_visible_at_init_done() {
        let index = ChildIndex::<PodFacts>::default();
        index.apply(&watcher::Event::Init);
        index.apply(&watcher::Event::InitApply(pod(
            "j-worker-0",
            "a",
            1,
            "Running",
        )));
        assert!(!index.is_ready());
        assert!(phases(&index).is_empty());
        assert_eq!(index.apply(&watcher::Event::InitDone), vec![key()]);
        assert!(index.is_ready());
        assert_eq!(
            phases(&index),
            [("j-worker-0".to_string(), Phase::Running, false)]
        );
    }

    #[test]
    fn a_relist_replaces_everything_and_touches_old_and_new_jobs() {
        let index = ChildIndex::<PodFacts>::default();
        index.apply(&watcher::Event::Apply(pod("j-worker-0", "a", 1, "Running")));
        index.apply(&watcher::Event::Init);
        assert_eq!(
            index.apply(&watcher::Event::InitDone),
            vec![key()],
            "the job lost its pod"
        );
        assert!(phases(&index).is_empty());
    }

    #[test]
    fn own_writes_are_visible_at_once_and_stale_events_do_not_roll_back() {
        let index = ChildIndex::<PodFacts>::default();
        index.created(&pod("j-worker-0", "a", 5, "Pending"));
        assert_eq!(
            phases(&index),
            [("j-worker-0".to_string(), Phase::Pending, false)]
        );
        index.apply(&watcher::Event::Apply(pod("j-worker-0", "a", 7, "Running")));
        index.apply(&watcher::Event::Apply(pod("j-worker-0", "a", 6, "Pending")));
        assert_eq!(
            phases(&index),
            [("j-worker-0".to_string(), Phase::Running, false)]
        );
        index.deleting(&key(), "j-worker-0");
        assert_eq!(
            phases(&index),
            [("j-worker-0".to_string(), Phase::Running, true)]
        );
    }

    #[test]
    fn deleting_an_old_incarnation_keeps_the_new_one() {
        let index = ChildIndex::<PodFacts>::default();
        index.apply(&watcher::Event::Apply(pod(
            "j-worker-0",
            "new",
            9,
            "Pending",
        )));
        index.apply(&watcher::Event::Delete(pod(
            "j-worker-0",
            "old",
            8,
            "Failed",
        )));
        assert_eq!(phases(&index).len(), 1);
        index.apply(&watcher::Event::Delete(pod(
            "j-worker-0",
            "new",
            10,
            "Pending",
        )));
        assert!(phases(&index).is_empty());
        assert!(index.is_empty());
    }

    #[test]
    fn children_of_another_owner_are_filtered_out() {
        let index = ChildIndex::<PodFacts>::default();
        index.apply(&watcher::Event::Apply(pod("j-worker-0", "a", 1, "Running")));
        assert!(index.children(&key(), Some("another-job-uid")).is_empty());
        assert_eq!(index.children(&key(), Some("job-1")).len(), 1);
    }
}
