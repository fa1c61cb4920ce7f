//! The apiserver's audit log as the benchmark's source of truth: who (user agent) did what
//! (verb, resource, subresource) where (namespace), with which result (code), and when
//! (server-side timestamps with microsecond precision).
//!
//! Kubernetes 1.20's `apiserver_request_total` has no user-agent label, so attribution comes
//! from here; the metric is read as a cross-check of totals (see `cluster::RequestCounts`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The audit policy of a benchmark run: every write and every get/list, at Metadata level (no
/// bodies), except in the namespace of the memory phase, whose 60,000 writes would only cost
/// apiserver CPU and disk.
pub fn policy(quiet_namespace: &str) -> String {
    format!(
        r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    namespaces: ["{quiet_namespace}"]
  - level: None
    nonResourceURLs: ["*"]
  - level: Metadata
    verbs: ["create", "update", "patch", "delete", "deletecollection", "get", "list"]
  - level: None
"#
    )
}

/// Who sent a request, from its User-Agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Agent {
    Operator,
    Bench,
    SimKubelet,
    ControllerManager,
    Other,
}

impl Agent {
    fn of(user_agent: &str) -> Agent {
        if user_agent.starts_with("tfjob-operator/") {
            Agent::Operator
        } else if user_agent.starts_with("tfjob-bench/") {
            Agent::Bench
        } else if user_agent.starts_with("tfjob-sim-kubelet/") {
            Agent::SimKubelet
        } else if user_agent.starts_with("kube-controller-manager/") {
            Agent::ControllerManager
        } else {
            Agent::Other
        }
    }
}

/// One completed request.
#[derive(Clone, Debug)]
pub struct Entry {
    pub agent: Agent,
    pub verb: String,
    /// `pods`, `services`, `tfjobs`, `events`, `jobs`, …
    pub resource: String,
    /// `status`, `binding` or empty.
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub code: u16,
    /// Seconds since the epoch when the apiserver received the request.
    pub received: f64,
    /// Seconds since the epoch when the response was complete.
    pub done: f64,
}

impl Entry {
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }

    pub fn is_read(&self) -> bool {
        matches!(self.verb.as_str(), "get" | "list")
    }

    /// `verb resource[/subresource]`, e.g. `patch tfjobs/status`.
    pub fn kind(&self) -> String {
        if self.subresource.is_empty() {
            format!("{} {}", self.verb, self.resource)
        } else {
            format!("{} {}/{}", self.verb, self.resource, self.subresource)
        }
    }

    /// A successful create of `resource` (no subresource).
    pub fn created(&self, resource: &str) -> bool {
        self.verb == "create"
            && self.resource == resource
            && self.subresource.is_empty()
            && self.code == 201
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    stage: String,
    verb: String,
    #[serde(default)]
    user_agent: String,
    object_ref: Option<RawRef>,
    response_status: Option<RawStatus>,
    request_received_timestamp: String,
    stage_timestamp: String,
}

#[derive(Deserialize)]
struct RawRef {
    #[serde(default)]
    resource: String,
    #[serde(default)]
    subresource: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct RawStatus {
    #[serde(default)]
    code: u16,
}

fn seconds(timestamp: &str) -> Option<f64> {
    let t: jiff::Timestamp = timestamp.parse().ok()?;
    Some(t.as_nanosecond() as f64 / 1e9)
}

/// Parses one audit line; `None` for other stages and non-resource requests.
pub fn parse(line: &str) -> Option<Entry> {
    let raw: Raw = serde_json::from_str(line).ok()?;
    if raw.stage != "ResponseComplete" {
        return None;
    }
    let object = raw.object_ref?;
    Some(Entry {
        agent: Agent::of(&raw.user_agent),
        verb: raw.verb,
        resource: object.resource,
        subresource: object.subresource,
        namespace: object.namespace,
        name: object.name,
        code: raw.response_status.map_or(0, |s| s.code),
        received: seconds(&raw.request_received_timestamp)?,
        done: seconds(&raw.stage_timestamp)?,
    })
}

/// Reads the audit log incrementally and keeps every entry.
pub struct AuditLog {
    path: PathBuf,
    offset: u64,
    partial: String,
    pub entries: Vec<Entry>,
}

impl AuditLog {
    pub fn new(path: &Path) -> AuditLog {
        AuditLog {
            path: path.to_path_buf(),
            offset: 0,
            partial: String::new(),
            entries: Vec::new(),
        }
    }

    /// Reads what was appended since the last call; returns how many entries were added.
    pub fn poll(&mut self) -> usize {
        let Ok(mut file) = File::open(&self.path) else {
            return 0;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return 0;
        }
        let mut text = String::new();
        let Ok(read) = file.read_to_string(&mut text) else {
            return 0;
        };
        self.offset += read as u64;
        let before = self.entries.len();
        self.partial.push_str(&text);
        let complete = match self.partial.rfind('\n') {
            Some(end) => end + 1,
            None => return 0,
        };
        let rest = self.partial.split_off(complete);
        let lines = std::mem::replace(&mut self.partial, rest);
        self.entries.extend(lines.lines().filter_map(parse));
        self.entries.len() - before
    }

    /// Entries in `namespace`.
    pub fn in_namespace<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries
            .iter()
            .filter(move |e| e.namespace == namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/ns/pods","verb":"create","user":{"username":"admin"},"sourceIPs":["127.0.0.1"],"userAgent":"tfjob-operator/0.1.0","objectRef":{"resource":"pods","namespace":"ns","name":"j-worker-0","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},"requestReceivedTimestamp":"2026-11-27T10:00:00.100000Z","stageTimestamp":"2026-11-27T10:00:00.112500Z"}"#;

    #[test]
    fn parses_a_create() {
        let entry = parse(LINE).unwrap();
        assert_eq!(entry.agent, Agent::Operator);
        assert!(entry.created("pods") && entry.is_write());
        assert_eq!(entry.kind(), "create pods");
        assert!((entry.done - entry.received - 0.0125).abs() < 1e-6);
    }

    #[test]
    fn incremental_reads_keep_partial_lines() {
        let dir = std::env::temp_dir().join(format!("tfjob-bench-audit-{}", std::process::id()));
        let path = dir.with_extension("log");
        std::fs::write(&path, format!("{LINE}\n{}", &LINE[..40])).unwrap();
        let mut log = AuditLog::new(&path);
        assert_eq!(log.poll(), 1);
        std::fs::write(&path, format!("{LINE}\n{LINE}\n")).unwrap();
        assert_eq!(log.poll(), 1, "the rest of the partial line");
        let _ = std::fs::remove_file(&path);
    }
}
