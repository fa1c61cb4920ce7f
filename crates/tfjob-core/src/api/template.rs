//! A pod template kept as its JSON text.
//!
//! k8s-openapi's types inline every optional field, so a typed `PodTemplateSpec` of a realistic
//! training pod (1.4 KB of JSON) takes about 17 KB of heap and about as long to clone as to parse.
//! The operator reads a template only to build a child, which is rare next to the reconciles that
//! change nothing, so the resolved spec holds templates as shared JSON and decodes one when a
//! child is built.

use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::PodTemplateSpec;

#[derive(Clone, PartialEq, Eq)]
pub struct CompactTemplate(Arc<str>);

impl CompactTemplate {
    pub fn new(template: &PodTemplateSpec) -> CompactTemplate {
        // Serializing k8s-openapi types cannot fail (string keys, no non-finite floats).
        CompactTemplate(serde_json::to_string(template).unwrap_or_default().into())
    }

    /// The typed template. The text came from a typed template, so it always decodes.
    pub fn get(&self) -> PodTemplateSpec {
        serde_json::from_str(&self.0).unwrap_or_default()
    }

    /// Shares the text of `other` when equal (a job's replica types often have one template).
    pub fn dedup(&mut self, other: &CompactTemplate) {
        if self.0 == other.0 {
            self.0 = other.0.clone();
        }
    }

    pub fn json(&self) -> &str {
        &self.0
    }
}

impl From<PodTemplateSpec> for CompactTemplate {
    fn from(template: PodTemplateSpec) -> Self {
        CompactTemplate::new(&template)
    }
}

impl fmt::Debug for CompactTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
}
