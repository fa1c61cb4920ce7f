//! Carries out a [`Plan`]: child writes in parallel, one status patch, events, counters.
//!
//! Creation is idempotent (fixed names; AlreadyExists means done) and deletion is conditional on
//! the UID that was observed (NotFound or a UID mismatch means done), so replaying a plan after
//! a crash or a stale cache never duplicates or destroys anything.

use futures::future::join_all;
use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service};
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions,
    PropagationPolicy,
};
use kube::{Resource, ResourceExt};
use kube_runtime::events::{Event, EventType};
use tracing::warn;

use super::adoption;
use super::child_writes::{Deletion, Wording, create_all, delete_all};
use super::context::Context;
use super::error::ReconcileError;
use super::index::{ChildIndex, JobKey};
use super::merge_patch;
use tfjob_core::api::{JobStatus, TFJob};
use tfjob_core::plan::messages::event_reason;
use tfjob_core::plan::observe::PodGroupFacts;
use tfjob_core::plan::{JobEvent, Plan, PodGroupAction};

/// Applies `plan` to `job`, whose status as last written is `current`; `status_urgent` says
/// whether its status change is more than progress held for the batch window.
pub async fn apply(
    ctx: &Context,
    job: &TFJob,
    key: &JobKey,
    current: &JobStatus,
    plan: Plan,
    status_urgent: bool,
) -> Result<(), ReconcileError> {
    let reference = job.object_ref(&());
    let ns = key.0.as_str();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), ns);

    // The PodGroup goes first: the gang scheduler needs it before it sees the pods.
    let mut events = plan.events;
    let pod_group_failure = match (&plan.pod_group, &ctx.pod_groups) {
        (Some(action), Some((index, resource))) => {
            let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, resource);
            apply_pod_group(&api, index, key, action, &mut events).await
        }
        _ => None,
    };

    let plan_creates_nothing = plan.create_pods.is_empty() && plan.create_services.is_empty();
    let creating = (!plan_creates_nothing).then(|| ctx.creating.enter());
    let (created_pods, created_services) = futures::join!(
        create_all(&pods, plan.create_pods, |p| ctx.pods.created(p)),
        create_all(&services, plan.create_services, |s| ctx.services.created(s)),
    );
    drop(creating);
    if let Some(uid) = job.uid()
        && !(plan_creates_nothing)
    {
        let mut notes = adoption::resolve_taken(
            ctx,
            job,
            &ctx.pods,
            &pods,
            "pod",
            &created_pods.taken,
            &mut events,
        )
        .await;
        notes.extend(
            adoption::resolve_taken(
                ctx,
                job,
                &ctx.services,
                &services,
                "service",
                &created_services.taken,
                &mut events,
            )
            .await,
        );
        ctx.conflicts.set(&uid, notes);
    }
    ctx.metrics.pods_created(created_pods.done.len() as u64);
    ctx.metrics
        .services_created(created_services.done.len() as u64);
    let mut child_events: Vec<JobEvent> = created_pods.events(&Wording {
        kind: "pod",
        ok_reason: event_reason::SUCCESSFUL_CREATE_POD,
        failed_reason: event_reason::FAILED_CREATE_POD,
        ok_text: "Created pod",
        failed_text: "Error creating",
        done_word: "created",
    });
    child_events.extend(created_services.events(&Wording {
        kind: "service",
        ok_reason: event_reason::SUCCESSFUL_CREATE_SERVICE,
        failed_reason: event_reason::FAILED_CREATE_SERVICE,
        ok_text: "Created service",
        failed_text: "Error creating",
        done_word: "created",
    }));

    // The status goes before any delete: it records why children go (a counted restart, a
    // finished job), so a failed write or a crash in between never loses that reason, and a
    // job whose end is not stored never has its pods cleaned up.
    if let Some(status) = &plan.status
        && let Err(error) = write_status(ctx, job, current, status).await
    {
        publish(ctx, &reference, &child_events).await;
        return Err(error);
    }

    // Counted only once the status that records the transition is stored.
    for counter in &plan.counters {
        ctx.metrics.count(ns, *counter);
    }

    let (mut deleted_pods, deleted_services, forced) = futures::join!(
        delete_all(&pods, &plan.delete_pods, Deletion::Graceful, |name| ctx
            .pods
            .deleting(key, name)),
        delete_all(
            &services,
            &plan.delete_services,
            Deletion::Graceful,
            |name| ctx.services.deleting(key, name)
        ),
        delete_all(&pods, &plan.force_delete_pods, Deletion::Force, |_| {}),
    );
    deleted_pods.absorb(forced);
    ctx.metrics.pods_deleted(deleted_pods.done.len() as u64);
    ctx.metrics
        .services_deleted(deleted_services.done.len() as u64);
    child_events.extend(deleted_pods.events(&Wording {
        kind: "pod",
        ok_reason: event_reason::SUCCESSFUL_DELETE_POD,
        failed_reason: event_reason::FAILED_DELETE_POD,
        ok_text: "Deleted pod",
        failed_text: "Error deleting",
        done_word: "deleted",
    }));
    child_events.extend(deleted_services.events(&Wording {
        kind: "service",
        ok_reason: event_reason::SUCCESSFUL_DELETE_SERVICE,
        failed_reason: event_reason::FAILED_DELETE_SERVICE,
        ok_text: "Deleted service",
        failed_text: "Error deleting",
        done_word: "deleted",
    }));

    // Events once the status that records their transition is stored: a crash may lose one,
    // never write one twice.
    events.extend(
        plan.pod_warnings
            .iter()
            .filter(|w| ctx.announced.first_time(&w.pod_uid, &w.reason, &w.message))
            .map(|w| JobEvent {
                warning: true,
                reason: w.reason.clone(),
                message: w.message.clone(),
            }),
    );
    events.extend(child_events);
    publish(ctx, &reference, &events).await;

    if plan.delete_job {
        delete_job(ctx, job, &reference).await?;
    }

    let failures: Vec<&String> = [
        &created_pods,
        &created_services,
        &deleted_pods,
        &deleted_services,
    ]
    .into_iter()
    .flat_map(|o| o.failed.iter())
    .chain(pod_group_failure.as_ref())
    .collect();
    let progressed = (plan.status.is_some() && status_urgent)
        || [
            &created_pods,
            &created_services,
            &deleted_pods,
            &deleted_services,
        ]
        .iter()
        .any(|o| !o.done.is_empty());
    match failures.first() {
        None => Ok(()),
        Some(first) => Err(ReconcileError::ChildWrite {
            failed: failures.len(),
            first: (*first).clone(),
            progressed,
        }),
    }
}

/// Creates, updates or deletes the job's PodGroup; returns the error text if it failed.
async fn apply_pod_group(
    api: &Api<DynamicObject>,
    index: &ChildIndex<PodGroupFacts>,
    key: &JobKey,
    action: &PodGroupAction,
    events: &mut Vec<JobEvent>,
) -> Option<String> {
    let result = match action {
        PodGroupAction::Create(object) => {
            match serde_json::from_value::<DynamicObject>(object.clone()) {
                Ok(object) => match api.create(&PostParams::default(), &object).await {
                    Ok(created) => {
                        index.created(&created);
                        Ok(())
                    }
                    Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(()),
                    Err(error) => Err(format!("Error creating PodGroup: {error}")),
                },
                Err(error) => Err(format!("Error creating PodGroup: {error}")),
            }
        }
        PodGroupAction::Update(spec) => {
            let patch = serde_json::json!({ "spec": spec });
            match api
                .patch(&key.1, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(updated) => {
                    index.created(&updated);
                    Ok(())
                }
                Err(error) => Err(format!("Error updating PodGroup: {error}")),
            }
        }
        PodGroupAction::Delete(child) => {
            let params = DeleteParams {
                preconditions: child.uid.clone().map(|uid| Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(&child.name, &params).await {
                Ok(_) => {
                    index.deleting(key, &child.name);
                    events.push(JobEvent {
                        warning: false,
                        reason: event_reason::SUCCESSFUL_DELETE_POD_GROUP.into(),
                        message: format!("Deleted PodGroup: {}", child.name),
                    });
                    Ok(())
                }
                Err(kube::Error::Api(status)) if status.is_not_found() || status.is_conflict() => {
                    Ok(())
                }
                Err(error) => {
                    events.push(JobEvent {
                        warning: true,
                        reason: event_reason::FAILED_DELETE_POD_GROUP.into(),
                        message: format!("Error deleting: {error}"),
                    });
                    Err(format!("Error deleting PodGroup: {error}"))
                }
            }
        }
    };
    result.err()
}

async fn write_status(
    ctx: &Context,
    job: &TFJob,
    current: &JobStatus,
    status: &JobStatus,
) -> Result<(), ReconcileError> {
    let api: Api<TFJob> = Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let old = serde_json::to_value(current).unwrap_or_default();
    let new = serde_json::to_value(status).unwrap_or_default();
    // Conditional on the version the plan was made from: a status computed from a stale view
    // (another writer since, or this replica deposed while its request was in flight) is
    // refused with 409 instead of overwriting a newer one. The job is then planned again from
    // the fresh object the watch delivers.
    let patch = serde_json::json!({
        "metadata": { "resourceVersion": job.resource_version() },
        "status": merge_patch::diff(&old, &new),
    });
    let written = match api
        .patch_status(
            &job.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(written) => written,
        Err(kube::Error::Api(status)) if status.is_conflict() => {
            if let Some(uid) = job.uid() {
                ctx.statuses.forget(&uid);
            }
            return Err(ReconcileError::StatusConflict);
        }
        Err(error) => return Err(ReconcileError::StatusWrite(error)),
    };
    if let (Some(uid), Some(rv)) = (
        written.uid(),
        written.resource_version().and_then(|v| v.parse().ok()),
    ) {
        ctx.statuses.remember(&uid, rv, status.clone());
    }
    Ok(())
}

async fn delete_job(
    ctx: &Context,
    job: &TFJob,
    reference: &ObjectReference,
) -> Result<(), ReconcileError> {
    let api: Api<TFJob> = Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: job.uid().map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..Default::default()
    };
    let name = job.name_any();
    match api.delete(&name, &params).await {
        Ok(_) => {
            ctx.metrics
                .job_deleted(&job.namespace().unwrap_or_default());
            let event = JobEvent {
                warning: false,
                reason: event_reason::SUCCESSFUL_DELETE_JOB.into(),
                message: format!("Deleted job: {name}"),
            };
            publish(ctx, reference, &[event]).await;
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.is_not_found() || status.is_conflict() => Ok(()),
        Err(error) => {
            let event = JobEvent {
                warning: true,
                reason: event_reason::FAILED_DELETE_JOB.into(),
                message: format!("Error deleting: {error}"),
            };
            publish(ctx, reference, &[event]).await;
            Err(ReconcileError::JobDelete(error))
        }
    }
}

/// Publishes events; a failure to record one is logged, never fatal.
pub(super) async fn publish(ctx: &Context, reference: &ObjectReference, events: &[JobEvent]) {
    let results = join_all(events.iter().map(|e| {
        let event = Event {
            type_: if e.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: e.reason.clone(),
            // events.k8s.io caps notes at 1 kB.
            note: Some(truncate(&e.message, 1024)),
            action: e.reason.clone(),
            secondary: None,
        };
        async move { ctx.recorder.publish(&event, reference).await }
    }))
    .await;
    for error in results.into_iter().filter_map(Result::err) {
        warn!(%error, "cannot record event");
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_event_notes_are_truncated_on_a_char_boundary() {
        assert_eq!(truncate("short", 1024), "short");
        let long = "é".repeat(600);
        let cut = truncate(&long, 1024);
        assert!(cut.len() <= 1024 && cut.ends_with("..."));
    }
}
