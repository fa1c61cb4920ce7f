//! Kubernetes events about TFJobs, one create each, as core/v1 `Event`s: what upstream's
//! client-go recorder writes, with `source.component=tfjob-controller`, so `kubectl get events
//! --field-selector source=tfjob-controller` keeps finding them (events.k8s.io/v1 refuses a
//! source on create). `events.k8s.io/v1` readers see the same objects, with `reportingController`
//! and `reportingInstance`.
//!
//! kube-runtime's `Recorder` keeps every event it published in the last six minutes, to turn a
//! repeat into a series update, and scans that whole cache under an async lock on every publish.
//! With thousands of jobs that is megabytes of cached events and a scan of all of them per event,
//! on the hot path of every reconcile that creates children. This operator announces each
//! transition once (one event per batch of child writes), so repeats are rare; it writes one
//! event per announcement, without the cache.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event as CoreEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
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
        let api: Api<CoreEvent> = Api::namespaced(self.client.clone(), namespace);
        api.create(
            &PostParams::default(),
            &self.build(event, regarding, Timestamp::now()),
        )
        .await
        .map(|_| ())
    }

    /// The event object, field for field what client-go's recorder writes.
    fn build(&self, event: &Event, regarding: &ObjectReference, now: Timestamp) -> CoreEvent {
        let object = regarding.name.as_deref().unwrap_or(&self.controller);
        CoreEvent {
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            message: event.note.clone(),
            involved_object: regarding.clone(),
            related: event.secondary.clone(),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                // Unique per job and nanosecond, as client-go names them.
                name: Some(format!("{object}.{:x}", now.as_nanosecond())),
                ..Default::default()
            },
            source: Some(EventSource {
                component: Some(self.controller.clone()),
                host: None,
            }),
            reporting_component: Some(self.controller.clone()),
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
    async fn builds_client_gos_event() {
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
            built.reporting_component.as_deref(),
            Some("tfjob-controller")
        );
        assert_eq!(built.reporting_instance.as_deref(), Some("pod-1"));
        assert_eq!(
            built.source.and_then(|s| s.component).as_deref(),
            Some("tfjob-controller")
        );
        assert_eq!(built.message.as_deref(), Some("note"));
        assert_eq!(built.count, Some(1));
        assert_eq!(built.involved_object, regarding);
    }
}
