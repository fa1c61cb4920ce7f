//! RFC 7386 JSON merge patches computed from two versions of a document.
//!
//! Status is written as a merge patch of the whole status with `null` for every field that
//! disappeared: no resourceVersion precondition, so never a 409, and the stored status ends up
//! exactly equal to the computed one.

use serde_json::{Map, Value};

/// The merge patch that turns `old` into `new`.
pub fn diff(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for (key, new_value) in new {
                match old.get(key) {
                    Some(old_value) if old_value == new_value => {}
                    Some(old_value) => {
                        patch.insert(key.clone(), diff(old_value, new_value));
                    }
                    None => {
                        patch.insert(key.clone(), new_value.clone());
                    }
                }
            }
            for key in old.keys().filter(|k| !new.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            Value::Object(patch)
        }
        _ => new.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Applies a merge patch (RFC 7386) to check that `diff` round-trips.
    fn apply(target: &Value, patch: &Value) -> Value {
        match (target, patch) {
            (Value::Object(target), Value::Object(patch)) => {
                let mut out = target.clone();
                for (key, value) in patch {
                    if value.is_null() {
                        out.remove(key);
                    } else {
                        let merged = apply(target.get(key).unwrap_or(&Value::Null), value);
                        out.insert(key.clone(), merged);
                    }
                }
                Value::Object(out)
            }
            (_, Value::Object(_)) => apply(&json!({}), patch),
            _ => patch.clone(),
        }
    }

    #[test]
    fn removed_fields_become_null_and_lists_are_replaced() {
        let old = json!({"conditions": [{"type": "Created"}], "replicaStatuses": {"PS": {"active": 1}, "Worker": {"active": 2}}, "startTime": "t"});
        let new = json!({"conditions": [{"type": "Created"}, {"type": "Running"}], "replicaStatuses": {"Worker": {"succeeded": 2}}, "startTime": "t"});
        let patch = diff(&old, &new);
        assert_eq!(
            patch,
            json!({"conditions": [{"type": "Created"}, {"type": "Running"}], "replicaStatuses": {"PS": null, "Worker": {"active": null, "succeeded": 2}}})
        );
        assert_eq!(apply(&old, &patch), new);
    }

    #[test]
    fn from_nothing_the_patch_is_the_document() {
        let new = json!({"conditions": [], "startTime": "t"});
        assert_eq!(diff(&Value::Null, &new), new);
        assert_eq!(diff(&json!({}), &new), new);
    }
}
