//! The reconcile function kube-runtime calls for one TFJob, and its error policy.
//!
//! Observe from the caches (never a GET or LIST), plan, apply. A TFJob that cannot even be
//! decoded gets a Warning event and a Failed condition instead of breaking the watch for
//! every other job.

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;

use jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::core::error_boundary::InvalidObject;
use kube::{Resource, ResourceExt};
use kube_runtime::controller::Action;
use kube_runtime::events::{Event, EventType};
use tracing::{debug, error, instrument, warn};

use super::adoption;
use super::apply::{apply, publish};
use super::cache::CachedJob;
use super::context::Context;
use super::degraded;
use super::error::ReconcileError;
use super::nodes;
use crate::ops::metrics::ReconcileResult;
use tfjob_core::api::TFJob;
use tfjob_core::api::is_managed_by_this_operator;
use tfjob_core::plan::coalesce::{Batching, coalesce, is_urgent};
use tfjob_core::plan::{JobEvent, Observed, plan_resolved, plan_undecodable};

pub type Object = DeserializeGuard<CachedJob>;

/// How soon a job whose child name another object holds looks again.
const BLOCKED_RETRY: std::time::Duration = std::time::Duration::from_secs(10);

#[instrument(skip_all, fields(namespace = %object.namespace().unwrap_or_default(), name = %object.name_any()))]
pub async fn reconcile(object: Arc<Object>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let job_key = backoff_key(&object.namespace().unwrap_or_default(), &object.name_any());
    let timer = ctx.metrics.reconcile_timer(&job_key);
    // A panic (a bug) fails this job's reconcile, not the process: the other jobs go on.
    let result = match AssertUnwindSafe(reconcile_job(&object, &ctx))
        .catch_unwind()
        .await
    {
        Ok(result) => result,
        Err(payload) => Err(contained_panic(&object, &ctx, panic_message(payload)).await),
    };
    // Every success ends the job's back-off, a pass with nothing to do included: its
    // children's events must reach it again (they are held back only while it waits). A pass
    // that only held its status change has not shown that the write works: a job whose status
    // writes keep failing keeps its growing back-off.
    if matches!(
        result,
        Ok(Pass {
            keeps_backoff: false,
            ..
        })
    ) {
        ctx.backoff.succeeded(&job_key);
    }
    timer.finish(match &result {
        Err(_) => ReconcileResult::Error,
        Ok(pass) if pass.requeued => ReconcileResult::RequeueAfter,
        Ok(_) => ReconcileResult::Success,
    });
    result.map(|pass| pass.action)
}

/// How a reconcile ended.
struct Pass {
    action: Action,
    /// It set a timer.
    requeued: bool,
    /// It proved nothing about the job's failure: it held its status change for the batch
    /// window instead of writing it, or it only waited out the back-off.
    keeps_backoff: bool,
}

impl Pass {
    fn done(action: Action, requeued: bool) -> Pass {
        Pass {
            action,
            requeued,
            keeps_backoff: false,
        }
    }
}

/// One reconcile.
async fn reconcile_job(object: &Object, ctx: &Context) -> Result<Pass, ReconcileError> {
    let cached = match &object.0 {
        Ok(cached) => cached,
        Err(invalid) => {
            return mark_undecodable(invalid, ctx)
                .await
                .map(|a| Pass::done(a, false));
        }
    };
    let job = &cached.job;
    // A job waiting out its back-off is started again by its own watch events, our status
    // write's echo among them (the pass that failed wrote it). Only a changed spec or a
    // deletion is acted on before the wait ends; anything else waits with it.
    let waiting = ctx.backoff.waiting_for_spec(
        &backoff_key(&job.namespace().unwrap_or_default(), &job.name_any()),
        job.metadata.generation,
    );
    if let Some(until) = waiting
        && job.metadata.deletion_timestamp.is_none()
    {
        let left = until.saturating_duration_since(std::time::Instant::now());
        return Ok(Pass {
            action: Action::requeue(left),
            requeued: true,
            keeps_backoff: true,
        });
    }
    #[cfg(feature = "fault-injection")]
    if job
        .annotations()
        .get("tfjob-operator.dev/fault")
        .map(String::as_str)
        == Some("panic")
    {
        panic!("fault injected into the reconcile of {}", job.name_any());
    }
    let key = (job.namespace().unwrap_or_default(), job.name_any());
    let uid = job.uid();

    // Plan from our own last write if the cache has not caught up with it yet.
    let cached_rv = job
        .resource_version()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let job: Cow<'_, TFJob> = match uid
        .as_deref()
        .and_then(|uid| ctx.statuses.newer_than(uid, cached_rv))
    {
        Some((rv, status)) => {
            let mut newer = job.clone();
            newer.status = Some(status);
            // The status write is conditional on this version: the one our write produced.
            newer.metadata.resource_version = Some(rv.to_string());
            Cow::Owned(newer)
        }
        None => Cow::Borrowed(job),
    };

    if job.metadata.deletion_timestamp.is_none() && is_managed_by_this_operator(&job) {
        adoption::claim(ctx, &job, &key).await;
    }
    let pods = ctx.pods.children(&key, uid.as_deref());
    let services = ctx.services.children(&key, uid.as_deref());
    let notes = uid
        .as_deref()
        .map(|uid| ctx.conflicts.notes(uid))
        .unwrap_or_default();
    let pod_group = ctx.pod_groups.as_ref().and_then(|(index, _)| {
        index
            .children(&key, uid.as_deref())
            .into_iter()
            .find(|pg| pg.name == key.1)
    });
    let priority_classes = ctx
        .pod_groups
        .as_ref()
        .map(|_| ctx.priority_classes.snapshot());
    let now = Timestamp::now();
    let lost_nodes = nodes::lost_nodes(ctx, &pods, now).await;
    let observed = Observed {
        pods: &pods,
        services: &services,
        pod_group: pod_group.as_ref(),
        priority_classes: priority_classes.as_ref(),
        notes: &notes,
        lost_nodes: &lost_nodes,
    };
    // A change held for the batch window is planned from, as if it had been written.
    let held = uid.as_deref().and_then(|uid| ctx.held.take(uid));
    let planning: Cow<'_, TFJob> = match &held {
        Some(held) => {
            let mut planning = job.as_ref().clone();
            planning.status = Some(held.status.clone());
            Cow::Owned(planning)
        }
        None => Cow::Borrowed(job.as_ref()),
    };
    let mut plan = plan_resolved(&planning, &cached.spec, &observed, now, &ctx.plan_config);
    let current = job.status.clone().unwrap_or_default();
    if let Some(fix) = &ctx.degraded_fix
        && degraded::fit_to_upstream_crd(&mut plan, &current)
        && uid.as_deref().is_some_and(|uid| {
            ctx.announced
                .first_time(uid, degraded::REASON, degraded::REASON)
        })
    {
        plan.events.push(degraded::warning(fix));
    }
    let batching = Batching {
        now,
        window: ctx.plan_config.status_batch_window,
        others_creating: ctx.creating.any(),
    };
    let still_held = coalesce(&mut plan, &current, held, batching);
    let holding = still_held.is_some();
    if let (Some(still_held), Some(uid)) = (still_held, uid.as_deref()) {
        ctx.held.hold(uid, still_held);
    }
    let requeue_after = plan.requeue_after;
    let requeued = requeue_after.is_some();
    let action = ctx
        .long_waits
        .action(&key, requeue_after, tokio::time::Instant::now());
    if plan.is_noop() {
        return Ok(Pass {
            action,
            requeued,
            keeps_backoff: holding,
        });
    }
    debug!(
        create_pods = plan.create_pods.len(),
        delete_pods = plan.delete_pods.len(),
        create_services = plan.create_services.len(),
        delete_services = plan.delete_services.len(),
        status = plan.status.is_some(),
        "applying plan"
    );
    // Held progress written at the end of its window is not progress against a failure:
    // a pass whose creates fail keeps its back-off even when it writes it.
    let urgent = plan
        .status
        .as_ref()
        .is_some_and(|planned| is_urgent(&current, planned, &plan, &plan.counters));
    apply(ctx, &job, &key, &current, plan, urgent).await?;
    // A child name another object holds: look again soon (it is not watched), to report it in
    // the condition and to create the child once the name is free.
    let blocked = uid
        .as_deref()
        .is_some_and(|uid| !ctx.conflicts.notes(uid).is_empty());
    if blocked {
        let soon = requeue_after.map_or(BLOCKED_RETRY, |after| after.min(BLOCKED_RETRY));
        return Ok(Pass {
            action: Action::requeue(soon),
            requeued: true,
            keeps_backoff: holding,
        });
    }
    Ok(Pass {
        action,
        requeued,
        keeps_backoff: holding,
    })
}

/// The error for a reconcile that panicked, with one Warning event on the job (per job and
/// process) so that its owner sees it without reading the operator's logs.
async fn contained_panic(object: &Object, ctx: &Context, message: String) -> ReconcileError {
    error!(%message, "reconcile panicked; the job is retried with back-off");
    if let Ok(cached) = &object.0
        && let Some(uid) = cached.job.uid()
        && ctx.announced.first_time(&uid, PANIC_REASON, PANIC_REASON)
    {
        let event = JobEvent {
            warning: true,
            reason: PANIC_REASON.into(),
            message: format!(
                "the operator hit a bug reconciling this job ({message}); it retries with \
                 back-off. Please report it with the TFJob's spec"
            ),
        };
        publish(ctx, &cached.job.object_ref(&()), &[event]).await;
    }
    ReconcileError::Panicked(message)
}

/// What a panic said (`panic!` carries a `&str` or a `String`).
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map_or_else(|| "a panic without a message".into(), |s| s.to_string()),
    }
}

/// The reason of the Warning a job gets when its reconcile panicked.
const PANIC_REASON: &str = "ReconcileError";

pub fn error_policy(object: Arc<Object>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error(error.kind());
    let key = backoff_key(&object.namespace().unwrap_or_default(), &object.name_any());
    if error.progressed() {
        ctx.backoff.succeeded(&key);
    }
    let retry = ctx.backoff.failed(&key, object.meta().generation);
    warn!(job = %key, %error, retry_in = ?retry, "reconcile failed");
    Action::requeue(retry)
}

pub(super) fn backoff_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

async fn mark_undecodable(
    invalid: &InvalidObject,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let meta = &invalid.metadata;
    let (Some(name), Some(namespace), Some(uid)) = (&meta.name, &meta.namespace, &meta.uid) else {
        return Ok(Action::await_change());
    };
    let rv = meta.resource_version.clone().unwrap_or_default();
    if ctx.undecodable.seen(uid, &rv) {
        return Ok(Action::await_change());
    }
    warn!(%namespace, %name, error = %invalid.error, "TFJob cannot be decoded");
    let plan = plan_undecodable(
        namespace,
        name,
        &invalid.error.to_string(),
        Timestamp::now(),
    );
    let patch = serde_json::json!({ "status": plan.status });
    // Untyped: the answer is the same object, which does not decode as a TFJob either.
    let api: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        namespace,
        &ApiResource::erase::<TFJob>(&()),
    );
    let written = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(ReconcileError::Undecodable)?;
    // The status write changed the resourceVersion: remember the new one.
    let written_rv = written
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    ctx.undecodable.remember(uid, &written_rv);
    let reference = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some(TFJob::api_version(&()).into()),
        kind: Some(TFJob::kind(&()).into()),
        name: Some(name.clone()),
        namespace: Some(namespace.clone()),
        uid: Some(uid.clone()),
        ..Default::default()
    };
    for event in &plan.events {
        let event = Event {
            type_: if event.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: event.reason.clone(),
            note: Some(event.message.chars().take(1000).collect()),
            action: event.reason.clone(),
            secondary: None,
        };
        if let Err(error) = ctx.recorder.publish(&event, &reference).await {
            warn!(%error, "cannot record event");
        }
    }
    for counter in &plan.counters {
        ctx.metrics.count(namespace, *counter);
    }
    Ok(Action::await_change())
}
