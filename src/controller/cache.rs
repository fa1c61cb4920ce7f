//! The TFJob as the operator caches it.
//!
//! A realistic TFJob's two pod templates take about 35 KB of heap as k8s-openapi types (every
//! optional field is inline) for 3 KB of JSON, and resolving the spec (validation, defaults)
//! used to copy them on every reconcile. The cache resolves each version of a job once, when its
//! watch event arrives, keeps the templates compact inside the resolved spec, and drops the
//! replica specs, labels, managedFields and the last-applied annotation from the cached object.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::{Deserialize, Deserializer};

use tfjob_core::api::{EffectiveSpec, TFJob, ValidationError};

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

#[derive(Clone, Debug)]
pub struct CachedJob {
    /// The TFJob without its replica specs and labels: `plan` reads its name, UID, annotations,
    /// status and policies.
    pub job: TFJob,
    /// The spec resolved from the complete object, templates included.
    pub spec: Result<EffectiveSpec, ValidationError>,
}

impl From<TFJob> for CachedJob {
    fn from(mut job: TFJob) -> Self {
        let spec = EffectiveSpec::resolve(&job);
        // `spec` holds everything `plan` needs from them, and a map node costs ~700 bytes.
        job.spec.tf_replica_specs = Default::default();
        job.metadata.managed_fields = None;
        // The watch selects jobs by label on the server; nothing here reads them.
        job.metadata.labels = None;
        if let Some(annotations) = job.metadata.annotations.as_mut() {
            annotations.remove(LAST_APPLIED);
        }
        CachedJob { job, spec }
    }
}

impl<'de> Deserialize<'de> for CachedJob {
    /// A job that does not decode (a value the schema allows but the types do not, such as
    /// `replicas: 4294967296`) fails with the path of the field, which the Failed condition
    /// and the Warning event then name.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_path_to_error::deserialize::<_, TFJob>(deserializer)
            .map(CachedJob::from)
            .map_err(|error| {
                let path = field_path(error.path());
                let inner = error.into_inner();
                if path.is_empty() {
                    inner
                } else {
                    serde::de::Error::custom(format_args!("{path}: {inner}"))
                }
            })
    }
}

/// `path` the way validation names fields: `spec.tfReplicaSpecs[Worker].replicas`.
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    let mut replica_key_next = false;
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } if replica_key_next => out.push_str(&format!("[{key}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
        replica_key_next = matches!(segment, Segment::Map { key } if key == "tfReplicaSpecs");
    }
    out
}

impl Resource for CachedJob {
    type DynamicType = ();
    type Scope = <TFJob as Resource>::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        TFJob::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        TFJob::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        TFJob::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        TFJob::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.job.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.job.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfjob_core::api::ReplicaType;

    #[test]
    fn caches_the_resolved_spec_without_replica_specs_labels_or_managed_fields() {
        let cached: CachedJob = serde_json::from_value(serde_json::json!({
            "apiVersion": "kubeflow.org/v1", "kind": "TFJob",
            "metadata": {"name": "j", "namespace": "ns", "labels": {"team": "a"},
                         "annotations": {LAST_APPLIED: "{}", "keep": "me"},
                         "managedFields": [{"manager": "kubectl"}]},
            "spec": {"tfReplicaSpecs": {"Worker": {"replicas": 2, "template": {"spec": {"containers": [{"name": "tensorflow", "image": "tf"}]}}}}}
        }))
        .unwrap();
        assert!(cached.job.metadata.managed_fields.is_none());
        assert!(cached.job.metadata.labels.is_none());
        assert_eq!(
            cached.job.metadata.annotations,
            Some([("keep".to_string(), "me".to_string())].into())
        );
        assert!(cached.job.spec.tf_replica_specs.is_empty());
        let spec = cached.spec.unwrap();
        let worker = &spec.replicas[&ReplicaType::Worker];
        assert_eq!(worker.replicas, 2);
        assert_eq!(
            worker.template.get().spec.unwrap().containers[0]
                .image
                .as_deref(),
            Some("tf")
        );
    }

    #[test]
    fn an_invalid_job_keeps_its_validation_error() {
        let cached: CachedJob = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "j", "namespace": "ns"},
            "spec": {"tfReplicaSpecs": {"Worker": {"template": {"spec": {"containers": [{"name": "other", "image": "tf"}]}}}}}
        }))
        .unwrap();
        assert!(cached.spec.is_err());
    }

    #[test]
    fn an_undecodable_job_names_the_field() {
        let error = serde_json::from_value::<CachedJob>(serde_json::json!({
            "metadata": {"name": "j", "namespace": "ns"},
            "spec": {"tfReplicaSpecs": {"Worker": {"replicas": 4294967296u64}}}
        }))
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("spec.tfReplicaSpecs[Worker].replicas: "),
            "{error}"
        );
    }
}
