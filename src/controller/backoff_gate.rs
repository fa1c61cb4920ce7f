//! Children's events of a job that is waiting out its error back-off are held until the wait
//! ends, then delivered once. Without this a failing job whose pods keep changing is retried
//! at the pace of its pod events, skipping the back-off (a quota storm); dropping the events
//! instead can lose a wake-up (an event held while the reconcile that ends the back-off is
//! already running, whose success then asks for nothing more).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use kube_runtime::reflector::ObjectRef;
use tokio::sync::mpsc::UnboundedSender;

use super::context::Context;
use super::reconciler::{Object, backoff_key};

pub struct BackoffGate {
    ctx: Arc<Context>,
    /// Jobs with an event held (one delivery per wait, however many events came).
    held: Mutex<HashSet<String>>,
    /// Where held events go when the wait ends: the controller's trigger channel.
    resend: UnboundedSender<ObjectRef<Object>>,
}

impl BackoffGate {
    pub fn new(ctx: Arc<Context>, resend: UnboundedSender<ObjectRef<Object>>) -> Arc<Self> {
        Arc::new(BackoffGate {
            ctx,
            held: Mutex::default(),
            resend,
        })
    }

    /// Whether `job`'s event goes through now; if not, it is sent again when the wait ends
    /// (and judged again then: the wait may have grown).
    pub fn admit(self: &Arc<Self>, job: &ObjectRef<Object>) -> bool {
        let key = backoff_key(job.namespace.as_deref().unwrap_or_default(), &job.name);
        let Some(until) = self.ctx.backoff.waiting_until(&key) else {
            return true;
        };
        if self.lock().insert(key.clone()) {
            let (gate, job) = (self.clone(), job.clone());
            tokio::spawn(async move {
                tokio::time::sleep_until(until.into()).await;
                gate.lock().remove(&key);
                let _ = gate.resend.send(job);
            });
        }
        false
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}
