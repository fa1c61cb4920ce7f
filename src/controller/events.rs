//! Kubernetes events about TFJobs (`events.k8s.io/v1`), one create each.
//!
//! kube-runtime's `Recorder` keeps every event it published in the last six minutes, to turn a
//! repeat into a series update, and scans that whole cache under an async lock on every publish.
//! With thousands of jobs that is megabytes of cached events and a scan of all of them per event,
//! on the hot path of every reconcile that creates children. This operator announces each
//! transition once (one event per batch of child writes), so repeats are rare; it writes the
//! same event the `Recorder` would, without the cache.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use kube_runtime::events::{Event, EventType};

pub struct EventRecorder {
    client: Client,
    controller: String,
    instance: String,
}

impl EventRecorder {
    /// Events reported by `controller`, instance `instance` (the pod name).
    pub fn new(client: Client, controller: &str, instance: &str) -> Self {
        EventRecorder {
            client,
            controller: controller.into(),
            instance: instance.into(),
        }
    }

    /// Writes `event` about `regarding`, in its namespace.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        api.create(
            &PostParams::default(),
            &self.build(event, regarding, Timestamp::now()),
        )
        .await
        .map(|_| ())
    }

    /// The event object, field for field what kube-runtime's `Recorder` writes.
    fn build(&self, event: &Event, regarding: &ObjectReference, now: Timestamp) -> K8sEvent {
        let object = regarding.name.as_deref().unwrap_or(&self.controller);
        K8sEvent {
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            note: event.note.clone(),
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                // Unique per job and nanosecond, as the Recorder names them.
                name: Some(format!("{object}.{:x}", now.as_nanosecond())),
                ..Default::default()
            },
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            type_: Some(
                match event.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn builds_the_recorders_event() {
        let client = Client::new(
            tower::service_fn(|_: http::Request<kube::client::Body>| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
            }),
            "default",
        );
        let recorder = EventRecorder::new(client, "tfjob-controller", "pod-1");
        let regarding = ObjectReference {
            name: Some("j".into()),
            namespace: Some("ns".into()),
            ..Default::default()
        };
        let event = Event {
            type_: EventType::Warning,
            reason: "Restarting".into(),
            note: Some("note".into()),
            action: "Restarting".into(),
            secondary: None,
        };
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let built = recorder.build(&event, &regarding, now);
        assert_eq!(built.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(
            built.metadata.name,
            Some(format!("j.{:x}", now.as_nanosecond()))
        );
        assert_eq!(built.type_.as_deref(), Some("Warning"));
        assert_eq!(
            built.reporting_controller.as_deref(),
            Some("tfjob-controller")
        );
        assert_eq!(built.reporting_instance.as_deref(), Some("pod-1"));
        assert_eq!(built.regarding, Some(regarding));
    }
}
