//! The cache of the operator's own pods and Services, indexed by job, holding only the facts
//! `plan` needs (a few hundred bytes per child instead of the whole object).
//!
//! It is fed by a label-filtered watcher (list + watch, re-list on 410 Gone) and also by the
//! operator's own writes ("read your writes"): a pod the operator just created is in the index
//! before its watch event arrives, and one it just deleted is marked terminating. That is what
//! keeps a fast second reconcile from creating the same pod twice (a 409) or restarting the same
//! failed pod twice. Stale watch events never roll an entry back: resourceVersions only grow.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Resource;
use kube::ResourceExt;
use kube::api::DynamicObject;
use kube_runtime::watcher;

use tfjob_core::api::Uid;
use tfjob_core::api::naming::LABEL_JOB_NAME;
use tfjob_core::plan::ChildRef;
use tfjob_core::plan::observe::{PodFacts, PodGroupFacts, ServiceFacts};

/// A job's identity within the operator: namespace and name.
pub type JobKey = (String, String);

/// The facts kept per child object, computed from the object.
pub trait ChildFacts: Clone + Send + Sync + 'static {
    type Object: Resource + Clone + Send + Sync + 'static;
    fn of(object: &Self::Object) -> Self;
    fn name(&self) -> &str;
    fn uid(&self) -> Option<&Uid>;
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
    fn name(&self) -> &str {
        &self.name
    }
    fn uid(&self) -> Option<&Uid> {
        self.uid.as_ref()
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
    fn name(&self) -> &str {
        &self.name
    }
    fn uid(&self) -> Option<&Uid> {
        self.uid.as_ref()
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
    fn name(&self) -> &str {
        &self.name
    }
    fn uid(&self) -> Option<&Uid> {
        self.uid.as_ref()
    }
    fn mark_terminating(&mut self) {
        self.terminating = true;
    }
}

#[derive(Clone, Debug)]
struct Entry<F> {
    facts: F,
    /// Hash of the controlling TFJob's UID: 8 bytes instead of a 36-character string per
    /// child, and a collision could only confuse two incarnations of one job name.
    owner: Option<u64>,
    resource_version: u64,
    /// The list (initial or re-list) that last saw this child.
    listed: u32,
}

/// A job's children in a small vector: a job has a handful, and a map's node would cost
/// more than the entries.
type Children<F> = HashMap<JobKey, Vec<Entry<F>>>;

struct State<F> {
    live: Children<F>,
    /// Children controlled by a TFJob other than the one their `job-name` label names, by that
    /// controlling job: (label key, child, owner UID hash). Almost always empty.
    mislabelled: HashMap<JobKey, Vec<(JobKey, ChildRef, u64)>>,
    /// The number of the list in progress; children it does not see are swept at its end.
    listing: Option<u32>,
    /// Jobs whose children the re-list in progress found new or changed: only they are
    /// triggered at its end (a re-list after 410 Gone usually finds nothing new, and
    /// triggering every job again for each child kind tripled the resync).
    relisted: HashSet<JobKey>,
    lists: u32,
    ready: bool,
}

/// Children of every job, by job key and child name.
///
/// A re-list updates the entries in place and sweeps the ones it did not see at `InitDone`,
/// instead of building a second index and swapping it in: memory stays flat during a re-list,
/// and a child the operator creates while it runs is kept.
pub struct ChildIndex<F> {
    state: RwLock<State<F>>,
}

impl<F: ChildFacts> Default for ChildIndex<F> {
    fn default() -> Self {
        ChildIndex {
            state: RwLock::new(State {
                live: HashMap::new(),
                mislabelled: HashMap::new(),
                listing: None,
                relisted: HashSet::new(),
                lists: 0,
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
                state.lists = state.lists.wrapping_add(1);
                state.listing = Some(state.lists);
                vec![]
            }
            // Jobs are triggered once the list is complete.
            watcher::Event::InitApply(object) => {
                let (keys, changed) = state.upsert(object);
                if changed {
                    state.relisted.extend(keys);
                }
                vec![]
            }
            watcher::Event::InitDone => state.sweep(),
            watcher::Event::Apply(object) => state.upsert(object).0,
            watcher::Event::Delete(object) => {
                let Some((key, entry, _)) = entry_of::<F>(object) else {
                    return vec![];
                };
                if let Some(children) = state.live.get_mut(&key) {
                    // Only this incarnation: a re-created child of the same name stays.
                    children.retain(|e| {
                        e.facts.name() != entry.facts.name() || e.facts.uid() != entry.facts.uid()
                    });
                    if children.is_empty() {
                        state.live.remove(&key);
                    }
                }
                state.forget_mislabelled(&key, entry.facts.name());
                vec![key]
            }
        }
    }

    /// The facts of the children of `key` controlled by the job with `owner_uid`.
    pub fn children(&self, key: &JobKey, owner_uid: Option<&str>) -> Vec<F> {
        let owner = owner_uid.map(uid_hash);
        let state = self.read();
        state
            .live
            .get(key)
            .map(|children| {
                children
                    .iter()
                    .filter(|e| owner.is_none() || e.owner == owner)
                    .map(|e| e.facts.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The children of `key` that no controller owns (orphans with the job's labels): the job
    /// adopts them, as upstream's controller-ref manager does.
    pub fn orphans(&self, key: &JobKey) -> Vec<ChildRef> {
        let state = self.read();
        state
            .live
            .get(key)
            .map(|children| {
                children
                    .iter()
                    .filter(|e| e.owner.is_none())
                    .map(|e| ChildRef {
                        name: e.facts.name().to_string(),
                        uid: e.facts.uid().map(ToString::to_string),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The children controlled by the job `key` (with `owner_uid`) whose `job-name` label no
    /// longer names it: the job releases them, as upstream's controller-ref manager does.
    pub fn to_release(&self, key: &JobKey, owner_uid: &str) -> Vec<ChildRef> {
        let owner = uid_hash(owner_uid);
        let state = self.read();
        state
            .mislabelled
            .get(key)
            .map(|children| {
                children
                    .iter()
                    .filter(|(_, _, hash)| *hash == owner)
                    .map(|(_, child, _)| child.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records an object the operator has just created (the apiserver's response).
    pub fn created(&self, object: &F::Object) {
        self.write().upsert(object);
    }

    /// Marks a child the operator has just deleted as terminating.
    pub fn deleting(&self, key: &JobKey, name: &str) {
        let mut state = self.write();
        if let Some(entry) = state
            .live
            .get_mut(key)
            .and_then(|c| c.iter_mut().find(|e| e.facts.name() == name))
        {
            entry.facts.mark_terminating();
        }
    }

    /// Whether the initial list has completed.
    pub fn is_ready(&self) -> bool {
        self.read().ready
    }

    /// Number of children cached.
    pub fn len(&self) -> usize {
        self.read().live.values().map(Vec::len).sum()
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

impl<F: ChildFacts> State<F> {
    /// Inserts or updates a child, unless the cache already holds a newer version of the same
    /// incarnation; returns its job (and the job controlling it, when another). During a list
    /// the child counts as seen by it either way.
    /// Caches `object`; returns the jobs it concerns and whether it was new or changed.
    fn upsert(&mut self, object: &F::Object) -> (Vec<JobKey>, bool) {
        let Some((key, mut entry, controller)) = entry_of::<F>(object) else {
            return (vec![], false);
        };
        let name = entry.facts.name().to_string();
        let child = ChildRef {
            name: name.clone(),
            uid: entry.facts.uid().map(ToString::to_string),
        };
        entry.listed = self.listing.unwrap_or(self.lists);
        let children = self.live.entry(key.clone()).or_default();
        let changed = match children
            .iter_mut()
            .find(|e| e.facts.name() == entry.facts.name())
        {
            Some(cached)
                if cached.facts.uid() == entry.facts.uid()
                    && cached.resource_version > entry.resource_version =>
            {
                cached.listed = entry.listed;
                false
            }
            Some(cached) => {
                let same = cached.facts.uid() == entry.facts.uid()
                    && cached.resource_version == entry.resource_version;
                *cached = entry;
                !same
            }
            None => {
                children.push(entry);
                children.shrink_to_fit();
                true
            }
        };
        self.forget_mislabelled(&key, &name);
        let keys = match controller {
            Some((owner_key, owner)) => {
                self.mislabelled
                    .entry(owner_key.clone())
                    .or_default()
                    .push((key.clone(), child, owner));
                vec![key, owner_key]
            }
            None => vec![key],
        };
        (keys, changed)
    }

    /// Drops the record of child `name` (under label key `key`) as controlled by another job.
    fn forget_mislabelled(&mut self, key: &JobKey, name: &str) {
        if self.mislabelled.is_empty() {
            return;
        }
        self.mislabelled.retain(|_, children| {
            children.retain(|(label, child, _)| !(label == key && child.name == name));
            !children.is_empty()
        });
    }

    /// Ends a list: drops the children it did not see; returns every job, since any of them
    /// may have changed while the watch was down.
    /// Ends a list: drops the children it did not see. Returns the jobs to reconcile: all of
    /// them after the first list, else those whose children it found new, changed or gone.
    fn sweep(&mut self) -> Vec<JobKey> {
        let first = !self.ready;
        let mut touched = std::mem::take(&mut self.relisted);
        if first {
            touched.extend(self.live.keys().cloned());
        }
        if let Some(list) = self.listing.take() {
            self.live.retain(|key, children| {
                let before = children.len();
                children.retain(|e| e.listed == list);
                if children.len() != before {
                    touched.insert(key.clone());
                }
                !children.is_empty()
            });
            self.live.shrink_to_fit();
            let live = &self.live;
            self.mislabelled.retain(|_, children| {
                children.retain(|(label, child, _)| {
                    live.get(label)
                        .is_some_and(|c| c.iter().any(|e| e.facts.name() == child.name))
                });
                !children.is_empty()
            });
        }
        self.ready = true;
        let mut touched: Vec<JobKey> = touched.into_iter().collect();
        touched.sort();
        touched
    }
}

fn uid_hash(uid: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    uid.hash(&mut hasher);
    hasher.finish()
}

/// A TFJob controlling a child whose `job-name` label names another job: its key and UID hash.
type OtherController = (JobKey, u64);

/// The index entry of a child and its job (from the job-name label), and, when a TFJob other
/// than that job controls it, that TFJob.
fn entry_of<F: ChildFacts>(
    object: &F::Object,
) -> Option<(JobKey, Entry<F>, Option<OtherController>)> {
    let job = F::job_of(object)?;
    let namespace = object.namespace().unwrap_or_default();
    let controller = object
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true));
    // Any controller counts: a child another kind of controller owns is not an orphan.
    let owner = controller.map(|o| uid_hash(&o.uid));
    let mislabelled = controller
        .filter(|o| o.kind == "TFJob" && o.name != job)
        .map(|o| ((namespace.clone(), o.name.clone()), uid_hash(&o.uid)));
    let key = (namespace, job);
    let resource_version = object
        .resource_version()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some((
        key,
        Entry {
            facts: F::of(object),
            owner,
            resource_version,
            listed: 0,
        },
        mislabelled,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfjob_core::plan::observe::Phase;

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
    fn the_initial_list_makes_the_index_ready_and_triggers_its_jobs() {
        let index = ChildIndex::<PodFacts>::default();
        index.apply(&watcher::Event::Init);
        index.apply(&watcher::Event::InitApply(pod(
            "j-worker-0",
            "a",
            1,
            "Running",
        )));
        assert!(!index.is_ready());
        assert_eq!(index.apply(&watcher::Event::InitDone), vec![key()]);
        assert!(index.is_ready());
        assert_eq!(
            phases(&index),
            [("j-worker-0".to_string(), Phase::Running, false)]
        );
    }

    #[test]
    fn a_relist_updates_in_place_and_sweeps_what_it_did_not_see() {
        let index = ChildIndex::<PodFacts>::default();
        index.apply(&watcher::Event::Apply(pod("j-worker-0", "a", 1, "Running")));
        index.apply(&watcher::Event::Apply(pod("j-worker-1", "b", 2, "Running")));
        index.apply(&watcher::Event::Init);
        index.apply(&watcher::Event::InitApply(pod(
            "j-worker-1",
            "b",
            3,
            "Succeeded",
        )));
        // Until the list ends, a child it has not reached yet is still there.
        assert_eq!(phases(&index).len(), 2);
        assert_eq!(
            index.apply(&watcher::Event::InitDone),
            vec![key()],
            "the job lost a pod"
        );
        assert_eq!(
            phases(&index),
            [("j-worker-1".to_string(), Phase::Succeeded, false)]
        );
        index.apply(&watcher::Event::Init);
        assert_eq!(index.apply(&watcher::Event::InitDone), vec![key()]);
        assert!(index.is_empty());
    }

    #[test]
    fn a_relist_triggers_only_the_jobs_whose_children_changed() {
        let other = |name: &str, uid: &str, rv: u64| {
            let mut p = pod(name, uid, rv, "Running");
            p.labels_mut().insert(LABEL_JOB_NAME.into(), "other".into());
            p.owner_references_mut().clear();
            p
        };
        let other_key: JobKey = ("ns".into(), "other".into());
        // (the re-list's pods after a first list of j-worker-0 (uid a, rv 1) and other-0 (uid
        // o, rv 2)) → the jobs triggered
        let cases: Vec<(&str, Vec<Pod>, Vec<JobKey>)> = vec![
            (
                "nothing changed",
                vec![
                    pod("j-worker-0", "a", 1, "Running"),
                    other("other-0", "o", 2),
                ],
                vec![],
            ),
            (
                "a pod updated",
                vec![
                    pod("j-worker-0", "a", 5, "Failed"),
                    other("other-0", "o", 2),
                ],
                vec![key()],
            ),
            (
                "a pod re-created under its name",
                vec![
                    pod("j-worker-0", "a2", 6, "Pending"),
                    other("other-0", "o", 2),
                ],
                vec![key()],
            ),
            (
                "a new pod",
                vec![
                    pod("j-worker-0", "a", 1, "Running"),
                    pod("j-worker-1", "b", 7, "Pending"),
                    other("other-0", "o", 2),
                ],
                vec![key()],
            ),
            (
                "a pod gone",
                vec![pod("j-worker-0", "a", 1, "Running")],
                vec![other_key.clone()],
            ),
        ];
        for (case, relist, want) in cases {
            let index = ChildIndex::<PodFacts>::default();
            let first = vec![
                pod("j-worker-0", "a", 1, "Running"),
                other("other-0", "o", 2),
            ];
            assert_eq!(
                list(&index, first),
                vec![key(), other_key.clone()],
                "the first list triggers every job"
            );
            assert_eq!(list(&index, relist), want, "{case}");
        }
    }

    /// A whole list of `pods`; the jobs its end triggers.
    fn list(index: &ChildIndex<PodFacts>, pods: Vec<Pod>) -> Vec<JobKey> {
        index.apply(&watcher::Event::Init);
        for p in pods {
            index.apply(&watcher::Event::InitApply(p));
        }
        index.apply(&watcher::Event::InitDone)
    }

    #[test]
    fn a_child_created_during_a_relist_survives_its_sweep() {
        let index = ChildIndex::<PodFacts>::default();
        index.apply(&watcher::Event::Init);
        index.apply(&watcher::Event::InitDone);
        index.apply(&watcher::Event::Init);
        index.created(&pod("j-worker-0", "a", 5, "Pending"));
        index.apply(&watcher::Event::InitDone);
        assert_eq!(
            phases(&index),
            [("j-worker-0".to_string(), Phase::Pending, false)]
        );
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
