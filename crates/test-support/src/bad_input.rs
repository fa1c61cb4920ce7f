//! The bad-input corpus (`tests/fixtures/bad_input/`): malformed TFJobs as raw JSON files and
//! `expected.yaml`, what each must lead to. Used by `tests/bad_input.rs` (on the 1.20 control
//! plane with the operator running) and `tests/crd_current.rs` (the same files against the 1.36
//! CRD apiserver).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

pub const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/bad_input"
);

/// The categories the corpus must cover (from the issue that asked for it).
pub const CATEGORIES: [&str; 11] = [
    "wrong types",
    "missing fields",
    "unknown replica types",
    "negative/huge replicas",
    "names too long",
    "bad enums",
    "two chiefs",
    "empty maps",
    "nulls",
    "huge templates",
    "legacy layout conflicts",
];

/// One entry of `expected.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The file, in `tests/fixtures/bad_input/`.
    pub case: String,
    pub category: String,
    pub outcome: Outcome,
    /// The field path the apiserver's error, or the Failed condition and the event, must contain.
    pub field: Option<String>,
    /// Another substring they must contain.
    pub message: String,
    /// Makes the object huge before it is submitted, so that the file can stay small.
    pub inflate: Option<Inflate>,
    /// Why the case is as it is, where that is not obvious.
    #[allow(dead_code)]
    pub note: Option<String>,
    /// A known operator shortcoming: only the Failed condition is checked, not the event.
    pub gap: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Rejected,
    Failed,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Inflate {
    /// Environment variables appended to every container...
    pub env_vars: Option<usize>,
    /// ...each with a value of this many bytes.
    pub value_bytes: Option<usize>,
    /// Sidecar containers inserted in front of each replica's containers.
    pub containers: Option<usize>,
}

impl Case {
    pub fn path(&self) -> PathBuf {
        Path::new(FIXTURES).join(&self.case)
    }

    /// The object as submitted: the file's JSON, inflated, in the test's namespace.
    pub fn body(&self, namespace: &str) -> Vec<u8> {
        let text = std::fs::read_to_string(self.path())
            .unwrap_or_else(|e| panic!("{}: cannot read: {e}", self.case));
        let mut object: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", self.case));
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert("namespace".into(), namespace.into());
        }
        if let Some(inflate) = &self.inflate {
            inflate.apply(&mut object);
        }
        serde_json::to_vec(&object).expect("JSON serialises")
    }

    /// The job's name, if the file gives it one.
    pub fn name(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.path()).ok()?;
        let object: Value = serde_json::from_str(&text).ok()?;
        object["metadata"]["name"].as_str().map(str::to_string)
    }

    /// What the message must contain: the field (when the case names one) and the message.
    pub fn missing_from(&self, text: &str) -> Vec<String> {
        self.field
            .iter()
            .chain([&self.message])
            .filter(|s| !text.contains(s.as_str()))
            .map(|s| format!("{s:?}"))
            .collect()
    }
}

impl Inflate {
    pub fn apply(&self, object: &mut Value) {
        let Some(replicas) = object
            .pointer_mut("/spec/tfReplicaSpecs")
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        for replica in replicas.values_mut() {
            let Some(containers) = replica
                .pointer_mut("/template/spec/containers")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            if let Some(n) = self.containers {
                let sidecars = (0..n).map(|i| {
                    json!({"name": format!("sidecar-{i}"), "image": "registry.example/sidecar:1"})
                });
                containers.splice(0..0, sidecars);
            }
            if let Some(n) = self.env_vars {
                let value = "x".repeat(self.value_bytes.unwrap_or(10));
                for container in containers.iter_mut() {
                    let env = container
                        .as_object_mut()
                        .expect("a container is an object")
                        .entry("env")
                        .or_insert_with(|| json!([]));
                    let env = env.as_array_mut().expect("env is a list");
                    env.extend((0..n).map(|i| json!({"name": format!("VAR_{i}"), "value": value})));
                }
            }
        }
    }
}

pub fn load_corpus() -> Vec<Case> {
    let manifest = Path::new(FIXTURES).join("expected.yaml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", manifest.display()));
    let cases: Vec<Case> = serde_saphyr::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not a list of cases: {e}", manifest.display()));

    // The manifest and the directory agree, one entry per file.
    let files: BTreeSet<String> = std::fs::read_dir(FIXTURES)
        .expect("the fixtures directory")
        .map(|entry| entry.expect("a directory entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    let listed: Vec<&str> = cases.iter().map(|c| c.case.as_str()).collect();
    let listed_set: BTreeSet<String> = listed.iter().map(|s| s.to_string()).collect();
    assert_eq!(listed.len(), listed_set.len(), "a case is listed twice");
    let unlisted: Vec<&String> = files.difference(&listed_set).collect();
    let missing: Vec<&String> = listed_set.difference(&files).collect();
    assert!(
        unlisted.is_empty() && missing.is_empty(),
        "expected.yaml and the case files differ: files without an entry {unlisted:?}, \
         entries without a file {missing:?}"
    );

    // Enough cases, every category, each with a field or the reason why not, unique job names.
    assert!(cases.len() >= 50, "only {} cases", cases.len());
    for category in CATEGORIES {
        assert!(
            cases.iter().any(|c| c.category == category),
            "no case of category {category:?}"
        );
    }
    let mut names = BTreeSet::new();
    for case in &cases {
        assert!(
            case.field.is_some() || case.gap.is_some() || case.note.is_some(),
            "{}: names no field and does not say why (gap: or note:)",
            case.case
        );
        if let Some(name) = case.name() {
            assert!(names.insert(name), "{}: job name used twice", case.case);
        }
    }
    cases
}
