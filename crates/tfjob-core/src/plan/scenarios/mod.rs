//! Scenario tests of `plan`, split by topic: each walks a job through passes on an in-memory
//! [`World`] and checks the exact conditions, events, counters, children and timers. They sit
//! above the rule tables in `plan/rules` and check that the orchestration ties them together.

mod batching;
mod cleanup;
mod diagnosis;
mod gang;
mod large;
mod lifecycle;
mod limits;
mod restarts;
mod services;
mod stuck;
mod success;
mod suspend;
mod world;

pub use std::time::Duration;

pub use serde_json::json;

pub use crate::api::ServiceMode;
pub use crate::plan::{ChildRef, JobCounter};
pub use crate::test_fixtures::{EXAMPLES, t};
pub use world::{World, events};

pub const SEED: &str = EXAMPLES[0].1;

/// PS×1 + Worker×2, all `Never`.
pub fn mnist(extra_spec: &str, worker_policy: &str) -> String {
    format!(
        r#"
metadata: {{name: mnist}}
spec:
{extra_spec}
  tfReplicaSpecs:
    PS:
      template: {{spec: {{containers: [{{name: tensorflow, image: tf}}]}}}}
    Worker:
      replicas: 2
      restartPolicy: {worker_policy}
      template: {{spec: {{containers: [{{name: tensorflow, image: tf}}]}}}}
"#
    )
}

pub fn chief_job(extra_spec: &str) -> String {
    format!(
        r#"
metadata: {{name: cj}}
spec:
{extra_spec}
  tfReplicaSpecs:
    Chief:
      template: {{spec: {{containers: [{{name: tensorflow, image: tf}}]}}}}
    Worker:
      replicas: 2
      restartPolicy: OnFailure
      template: {{spec: {{containers: [{{name: tensorflow, image: tf}}]}}}}
    PS:
      template: {{spec: {{containers: [{{name: tensorflow, image: tf}}]}}}}
"#
    )
}

pub fn tf_config_of(world: &World, pod: &str) -> Option<String> {
    let pod = world
        .pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(pod))
        .unwrap();
    let container = pod
        .spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .find(|c| c.name == "tensorflow")
        .unwrap();
    container
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == "TF_CONFIG")
        .and_then(|e| e.value.clone())
}
