//! Who owns a child, as upstream's controller-ref manager decides it: a job adopts orphans that
//! carry its labels (after `kubectl delete tfjob --cascade=orphan` and a re-create, or children
//! a migration left behind), releases children it controls whose labels name another job, and
//! never touches an object another controller owns; a child name taken by one is reported, not
//! waited on in silence.
//!
//! Adoption first reads the job from the apiserver, not the cache: a deleted or re-created job
//! seen through a stale cache must never adopt. The patches are strategic merges that add or
//! remove one owner reference, conditional on the child's UID, exactly upstream's.

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tfjob_core::api::TFJob;
use tfjob_core::api::naming::{CONTROLLER_NAME, LABEL_JOB_NAME, LABEL_OPERATOR_NAME};
use tfjob_core::plan::children::owner_reference;
use tfjob_core::plan::messages::event_reason;
use tfjob_core::plan::{ChildRef, JobEvent};
use tracing::{info, warn};

use super::context::Context;
use super::index::{ChildFacts, ChildIndex, JobKey};

/// Before a pass: adopts the job's orphans and releases the children it controls whose labels
/// name another job, so the pass sees exactly its own children.
pub async fn claim(ctx: &Context, job: &TFJob, key: &JobKey) {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &key.0);
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &key.0);
    let (pod_orphans, service_orphans) = (ctx.pods.orphans(key), ctx.services.orphans(key));
    if !(pod_orphans.is_empty() && service_orphans.is_empty()) {
        let jobs: Api<TFJob> = Api::namespaced(ctx.client.clone(), &key.0);
        match job_may_adopt(&jobs, job).await {
            Ok(true) => {
                let owner = owner_reference(job);
                record(
                    &ctx.pods,
                    "adopted",
                    adopt(&pods, &pod_orphans, &owner).await,
                );
                record(
                    &ctx.services,
                    "adopted",
                    adopt(&services, &service_orphans, &owner).await,
                );
            }
            Ok(false) => {}
            Err(error) => warn!(%error, "cannot read the TFJob before adopting its orphans"),
        }
    }
    if let Some(uid) = job.uid() {
        record(
            &ctx.pods,
            "released",
            release(&pods, &ctx.pods.to_release(key, &uid), &uid).await,
        );
        record(
            &ctx.services,
            "released",
            release(&services, &ctx.services.to_release(key, &uid), &uid).await,
        );
    }
}

/// Puts the patched children into the cache at once (the watch follows), logging failures (the
/// next pass tries again).
fn record<F: ChildFacts>(
    index: &ChildIndex<F>,
    what: &str,
    results: Vec<Result<F::Object, kube::Error>>,
) {
    for result in results {
        match result {
            Ok(object) => {
                info!(child = %object.name_any(), "{what}");
                index.created(&object);
            }
            Err(error) => warn!(%error, "a child could not be {what}"),
        }
    }
}

/// After creates that found their name taken: the children this job already had are recorded,
/// orphans adopted, and the names other objects hold reported — a Warning event once per child
/// and holder, and a note for the job's condition. Returns the notes.
pub async fn resolve_taken<F: ChildFacts>(
    ctx: &Context,
    job: &TFJob,
    index: &ChildIndex<F>,
    api: &Api<F::Object>,
    kind: &str,
    names: &[String],
    events: &mut Vec<JobEvent>,
) -> Vec<String>
where
    F::Object: Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let (job_name, job_uid) = (job.name_any(), job.uid().unwrap_or_default());
    let mut notes = Vec::new();
    let mut orphans = Vec::new();
    for name in names {
        let object = match api.get_opt(name).await {
            Ok(Some(object)) => object,
            Ok(None) => continue, // gone since: the next pass creates it
            Err(error) => {
                warn!(%error, child = %name, "cannot read a child whose name is taken");
                continue;
            }
        };
        match holder(&object, &job_name, &job_uid) {
            Holder::ThisJob => index.created(&object),
            Holder::Orphan => orphans.push(ChildRef {
                name: name.clone(),
                uid: object.uid(),
            }),
            Holder::Other(who) => {
                let note = taken_note(kind, name, &who);
                if ctx
                    .announced
                    .first_time(&format!("{job_uid}/{kind}/{name}"), "taken", &note)
                {
                    events.push(JobEvent {
                        warning: true,
                        reason: if kind == "pod" {
                            event_reason::FAILED_CREATE_POD
                        } else {
                            event_reason::FAILED_CREATE_SERVICE
                        }
                        .into(),
                        message: note.clone(),
                    });
                }
                notes.push(note);
            }
        }
    }
    if !orphans.is_empty() {
        let jobs: Api<TFJob> =
            Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
        if job_may_adopt(&jobs, job).await.unwrap_or(false) {
            record(
                index,
                "adopted",
                adopt(api, &orphans, &owner_reference(job)).await,
            );
        }
    }
    notes
}

/// Whether `job` may adopt: it still exists with the same UID and is not being deleted, as the
/// apiserver (not the cache) says.
pub async fn job_may_adopt(api: &Api<TFJob>, job: &TFJob) -> Result<bool, kube::Error> {
    let fresh = api.get_opt(&job.name_any()).await?;
    Ok(fresh.is_some_and(|fresh| {
        fresh.uid() == job.uid() && fresh.metadata.deletion_timestamp.is_none()
    }))
}

/// Makes `owner` the controller of each orphan; the results in order.
pub async fn adopt<K>(
    api: &Api<K>,
    orphans: &[ChildRef],
    owner: &OwnerReference,
) -> Vec<Result<K, kube::Error>>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    patch_each(
        api,
        orphans,
        |child| json!({"metadata": {"ownerReferences": [owner], "uid": child.uid}}),
    )
    .await
}

/// Removes the owner reference of the job with `owner_uid` from each child.
pub async fn release<K>(
    api: &Api<K>,
    children: &[ChildRef],
    owner_uid: &str,
) -> Vec<Result<K, kube::Error>>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    patch_each(api, children, |child| {
        json!({"metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
            "uid": child.uid,
        }})
    })
    .await
}

/// One strategic-merge patch per child, guarded by its UID (a child deleted and re-created
/// under the same name in between is left alone: the apiserver answers 409).
async fn patch_each<K>(
    api: &Api<K>,
    children: &[ChildRef],
    patch_for: impl Fn(&ChildRef) -> serde_json::Value,
) -> Vec<Result<K, kube::Error>>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let mut results = Vec::new();
    for child in children {
        let patch = patch_for(child);
        results.push(
            api.patch(
                &child.name,
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await,
        );
    }
    results
}

/// Who holds the name of a child the job could not create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// This job (the cache had not caught up with its own write).
    ThisJob,
    /// Nobody, and it carries this job's labels: the job adopts it.
    Orphan,
    /// Something else; the description says what.
    Other(String),
}

/// Who holds `object`, a would-be child of the job `job_name` with `job_uid`.
pub fn holder<K: Resource>(object: &K, job_name: &str, job_uid: &str) -> Holder {
    let controller = object
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true));
    match controller {
        Some(owner) if owner.uid == job_uid => Holder::ThisJob,
        Some(owner) => Holder::Other(format!("controlled by {} {}", owner.kind, owner.name)),
        None => {
            let labels = object.labels();
            let ours = labels.get(LABEL_JOB_NAME).is_some_and(|n| n == job_name)
                && labels
                    .get(LABEL_OPERATOR_NAME)
                    .is_some_and(|n| n == CONTROLLER_NAME);
            if ours {
                Holder::Orphan
            } else {
                Holder::Other("not labelled as a child of this TFJob".into())
            }
        }
    }
}

/// The note a job's condition carries while `kind` `name` is taken.
pub fn taken_note(kind: &str, name: &str, holder: &str) -> String {
    format!(
        "{kind} {name} cannot be created: an object of that name exists, {holder}; delete or \
         rename it."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    fn pod(labels: serde_json::Value, owner: Option<(&str, &str, &str)>) -> Pod {
        let owners: Vec<serde_json::Value> = owner
            .into_iter()
            .map(|(kind, name, uid)| {
                json!({"apiVersion": "v1", "kind": kind, "name": name, "uid": uid, "controller": true})
            })
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": "j-worker-0", "labels": labels, "ownerReferences": owners}
        }))
        .unwrap()
    }

    #[test]
    fn who_holds_a_child_name() {
        let ours = json!({"training.kubeflow.org/job-name": "j", "training.kubeflow.org/operator-name": "tfjob-controller"});
        let cases = [
            (
                pod(ours.clone(), Some(("TFJob", "j", "uid-j"))),
                Holder::ThisJob,
            ),
            (pod(ours.clone(), None), Holder::Orphan),
            (
                pod(ours.clone(), Some(("TFJob", "j", "uid-old"))),
                Holder::Other("controlled by TFJob j".into()),
            ),
            (
                pod(json!({"app": "x"}), Some(("ReplicaSet", "web-5d8f", "rs"))),
                Holder::Other("controlled by ReplicaSet web-5d8f".into()),
            ),
            (
                pod(json!({"app": "x"}), None),
                Holder::Other("not labelled as a child of this TFJob".into()),
            ),
        ];
        for (object, want) in cases {
            assert_eq!(holder(&object, "j", "uid-j"), want, "{:?}", object.metadata);
        }
        assert_eq!(
            taken_note("pod", "j-worker-0", "controlled by ReplicaSet web"),
            "pod j-worker-0 cannot be created: an object of that name exists, controlled by \
             ReplicaSet web; delete or rename it."
        );
    }
}
