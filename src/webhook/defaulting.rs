//! The defaulting webhook's only job: rewrite what has a single canonical spelling, so the stored
//! object reads the way current clients write it. It persists no defaults (upstream persists
//! none; the operator applies them in memory, see [`tfjob_core::api::effective`]):
//!
//! * a replica-type key in another letter case moves to its canonical key (`Ps` → `PS`,
//!   `worker` → `Worker`), unless two keys name the same type (validation reports that);
//! * a legacy flat field (`spec.backoffLimit`, `spec.cleanPodPolicy`,
//!   `spec.activeDeadlineSeconds`, `spec.ttlSecondsAfterFinished`) moves into `spec.runPolicy`
//!   when `runPolicy` leaves it unset, and is dropped when `runPolicy` holds the same value. A
//!   conflicting pair stays as it is for validation to reject.
//!
//! Works on the raw JSON so unknown fields and odd shapes survive untouched.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, MoveOperation, Patch, PatchOperation, RemoveOperation};
use serde_json::{Map, Value};

use tfjob_core::api::ReplicaType;

/// The flat fields of the tf-operator v1.0 layout that now live under `spec.runPolicy`.
const LEGACY_FIELDS: [&str; 4] = [
    "backoffLimit",
    "cleanPodPolicy",
    "activeDeadlineSeconds",
    "ttlSecondsAfterFinished",
];

/// The JSONPatch (RFC 6902) that normalises `object`; empty when nothing needs to change.
pub fn normalisation_patch(object: &Value) -> Patch {
    let mut ops = Vec::new();
    if let Some(spec) = object.get("spec").and_then(Value::as_object) {
        replica_keys(spec, &mut ops);
        legacy_fields(spec, &mut ops);
    }
    Patch(ops)
}

fn pointer(tokens: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(tokens.iter().copied())
}

fn replica_keys(spec: &Map<String, Value>, ops: &mut Vec<PatchOperation>) {
    let Some(specs) = spec.get("tfReplicaSpecs").and_then(Value::as_object) else {
        return;
    };
    for replica_type in ReplicaType::ALL {
        let canonical = replica_type.as_str();
        let mut variants = specs
            .keys()
            .filter(|k| ReplicaType::from_key(k) == Some(replica_type));
        // Exactly one key for this type, spelled differently: move it. Two or more spellings
        // are a duplicate that the user must resolve, not something to pick a winner for.
        if let (Some(key), None) = (variants.next(), variants.next())
            && key != canonical
        {
            ops.push(PatchOperation::Move(MoveOperation {
                from: pointer(&["spec", "tfReplicaSpecs", key]),
                path: pointer(&["spec", "tfReplicaSpecs", canonical]),
            }));
        }
    }
}

fn legacy_fields(spec: &Map<String, Value>, ops: &mut Vec<PatchOperation>) {
    let run_policy = spec.get("runPolicy").and_then(Value::as_object);
    let mut run_policy_added = false;
    for field in LEGACY_FIELDS {
        let Some(legacy) = spec.get(field).filter(|v| !v.is_null()) else {
            continue;
        };
        let current = run_policy
            .and_then(|p| p.get(field))
            .filter(|v| !v.is_null());
        match current {
            None => {
                if run_policy.is_none() && !run_policy_added {
                    // `add` also replaces a `runPolicy: null`.
                    ops.push(PatchOperation::Add(AddOperation {
                        path: pointer(&["spec", "runPolicy"]),
                        value: Value::Object(Map::new()),
                    }));
                    run_policy_added = true;
                }
                ops.push(PatchOperation::Move(MoveOperation {
                    from: pointer(&["spec", field]),
                    path: pointer(&["spec", "runPolicy", field]),
                }));
            }
            // The same value in both places, or an empty legacy string (which means unset):
            // the legacy copy says nothing more.
            Some(current) if current == legacy || legacy.as_str() == Some("") => {
                ops.push(PatchOperation::Remove(RemoveOperation {
                    path: pointer(&["spec", field]),
                }));
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The object after applying its own normalisation patch.
    fn normalised(object: Value) -> Value {
        let patch = normalisation_patch(&object);
        let mut patched = object;
        json_patch::patch(&mut patched, &patch.0).expect("the patch applies");
        patched
    }

    const CONTAINERS: &str = r#"{"spec": {"containers": [{"name": "tensorflow", "image": "tf"}]}}"#;

    fn template() -> Value {
        serde_json::from_str(CONTAINERS).unwrap()
    }

    #[test]
    fn the_seed_layout_becomes_the_current_layout() {
        let seed = json!({"metadata": {"name": "seed"}, "spec": {
            "backoffLimit": 6,
            "cleanPodPolicy": "None",
            "tfReplicaSpecs": {"Ps": {"replicas": 1, "template": template()}, "worker": {"template": template()}}
        }});
        assert_eq!(
            normalised(seed),
            json!({"metadata": {"name": "seed"}, "spec": {
                "runPolicy": {"backoffLimit": 6, "cleanPodPolicy": "None"},
                "tfReplicaSpecs": {"PS": {"replicas": 1, "template": template()}, "Worker": {"template": template()}}
            }})
        );
    }

    #[test]
    fn exact_patch_operations() {
        let object =
            json!({"spec": {"ttlSecondsAfterFinished": 60, "tfReplicaSpecs": {"chief": {}}}});
        assert_eq!(
            serde_json::to_value(normalisation_patch(&object)).unwrap(),
            json!([
                {"op": "move", "from": "/spec/tfReplicaSpecs/chief", "path": "/spec/tfReplicaSpecs/Chief"},
                {"op": "add", "path": "/spec/runPolicy", "value": {}},
                {"op": "move", "from": "/spec/ttlSecondsAfterFinished", "path": "/spec/runPolicy/ttlSecondsAfterFinished"},
            ])
        );
    }

    #[test]
    fn an_already_normal_object_needs_no_patch() {
        for object in [
            json!({"spec": {"runPolicy": {"backoffLimit": 1}, "tfReplicaSpecs": {"PS": {}, "Worker": {}, "Evaluator": {}}}}),
            json!({}),
            json!({"spec": null}),
            json!({"spec": {"tfReplicaSpecs": null, "backoffLimit": null}}),
        ] {
            assert_eq!(normalisation_patch(&object).0, vec![], "{object}");
        }
    }

    #[test]
    fn legacy_fields_join_an_existing_run_policy_or_are_dropped_when_equal() {
        let object = json!({"spec": {
            "backoffLimit": 3,
            "activeDeadlineSeconds": 600,
            "cleanPodPolicy": "",
            "runPolicy": {"backoffLimit": 3, "cleanPodPolicy": "All", "suspend": false},
            "tfReplicaSpecs": {}
        }});
        assert_eq!(
            normalised(object),
            json!({"spec": {
                "runPolicy": {"backoffLimit": 3, "cleanPodPolicy": "All", "suspend": false, "activeDeadlineSeconds": 600},
                "tfReplicaSpecs": {}
            }})
        );
        let null_policy = json!({"spec": {"backoffLimit": 2, "runPolicy": null}});
        assert_eq!(
            normalised(null_policy),
            json!({"spec": {"runPolicy": {"backoffLimit": 2}}})
        );
    }

    #[test]
    fn conflicts_and_duplicates_are_left_for_validation() {
        let object = json!({"spec": {
            "backoffLimit": 6,
            "runPolicy": {"backoffLimit": 3},
            "tfReplicaSpecs": {"ps": {}, "Ps": {}, "WORKER": {}, "Worker": {}, "Foo": {}}
        }});
        assert_eq!(normalisation_patch(&object).0, vec![]);
    }
}
