//! A pod template kept as its JSON text, deflated.
//!
//! k8s-openapi's types inline every optional field, so a typed `PodTemplateSpec` of a realistic
//! training pod (1.4 KB of JSON) takes about 17 KB of heap and about as long to clone as to parse.
//! The operator reads a template only to build a child, which is rare next to the reconciles that
//! change nothing, so the resolved spec holds templates as shared, deflated JSON (945 bytes of a
//! benchmark template keep in 480; a third of what a cached job costs) and decodes one when a
//! child is built.

use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::PodTemplateSpec;

#[derive(Clone, PartialEq, Eq)]
pub struct CompactTemplate(Arc<[u8]>);

/// Deflate level: 6 (zlib's default) takes ~20 µs for a template, once per job version.
const LEVEL: u8 = 6;

impl CompactTemplate {
    pub fn new(template: &PodTemplateSpec) -> CompactTemplate {
        // Serializing k8s-openapi types cannot fail (string keys, no non-finite floats).
        let text = serde_json::to_vec(template).unwrap_or_default();
        CompactTemplate(miniz_oxide::deflate::compress_to_vec(&text, LEVEL).into())
    }

    /// The typed template. The text came from a typed template and was deflated here, so it
    /// always inflates and decodes.
    pub fn get(&self) -> PodTemplateSpec {
        serde_json::from_slice(&self.text()).unwrap_or_default()
    }

    /// The template's JSON text.
    pub fn text(&self) -> Vec<u8> {
        miniz_oxide::inflate::decompress_to_vec(&self.0).unwrap_or_default()
    }

    /// Shares the text of `other` when equal (a job's replica types often have one template).
    pub fn dedup(&mut self, other: &CompactTemplate) {
        if self.0 == other.0 {
            self.0 = other.0.clone();
        }
    }
}

impl From<PodTemplateSpec> for CompactTemplate {
    fn from(template: PodTemplateSpec) -> Self {
        CompactTemplate::new(&template)
    }
}

impl fmt::Debug for CompactTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_shares_equal_text() {
        let template: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "tensorflow", "image": "tf"}]}
        }))
        .unwrap();
        let a = CompactTemplate::new(&template);
        assert_eq!(a.get(), template);
        let mut b = CompactTemplate::new(&template);
        b.dedup(&a);
        assert!(Arc::ptr_eq(&a.0, &b.0));
    }

    #[test]
    fn a_training_template_keeps_in_less_than_60_percent_of_its_text() {
        let template: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "spec": {"containers": [{
                "name": "tensorflow", "image": "registry.example.com/ml/tf-mnist:2.15.0",
                "command": ["python", "/opt/model/train.py"],
                "args": ["--epochs=10", "--batch-size=128", "--data-dir=/data/mnist"],
                "env": [{"name": "OMP_NUM_THREADS", "value": "4"},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
                "resources": {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}},
                "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true},
                                 {"name": "models", "mountPath": "/models"}]}],
                "volumes": [{"name": "data", "emptyDir": {}}, {"name": "models", "emptyDir": {}}]}
        }))
        .unwrap();
        let compact = CompactTemplate::new(&template);
        let text = serde_json::to_vec(&template).unwrap();
        assert_eq!(compact.text(), text);
        assert_eq!(compact.get(), template);
        assert!(
            compact.0.len() * 10 < text.len() * 6,
            "{} bytes kept for {} of text",
            compact.0.len(),
            text.len()
        );
    }
}
