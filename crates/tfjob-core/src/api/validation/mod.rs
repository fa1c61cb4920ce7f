//! Validation of a TFJob: every problem at once, each with its field path and a plain fix.
//!
//! The rules are upstream's webhook rules (names, managedBy, containers, image, the
//! `tensorflow` container, one chief) plus the fixes the design lists: child names over 63
//! characters, empty or unknown replica types, case-variant duplicate keys, negative or huge
//! replicas, bad enum values, negative limits and conflicting legacy fields. Messages follow
//! Kubernetes' `field.Error` format (`<path>: <Type>: <detail>`, several joined as `[a, b]`) so
//! they read like every other apiserver error.
//!
//! For every rule upstream has, [`ValidationError`]'s `Display` is upstream's text byte for byte
//! (scripts match it); what to change is a separate [`FieldError::hint`], which the webhook sends
//! as admission warnings and the Failed condition appends ([`ValidationError::explained`]).

use std::fmt;

use super::constants::{
    DEFAULT_CONTAINER_NAME, MANAGED_BY_MULTIKUEUE, MANAGED_BY_TRAINING_OPERATOR,
    MAX_LABEL_NAME_LEN, MAX_REPLICAS,
};
use super::naming::child_name;
use super::policy::{CleanPodPolicy, RestartPolicy, SuccessPolicy};
use super::replica_type::ReplicaType;
use super::types::{ReplicaSpec, RunPolicy, TFJob, TFJobSpec};

/// The kind of a field error, rendered the way Kubernetes renders `field.ErrorType`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Required,
    /// Carries the offending value, already formatted (strings quoted).
    Invalid(String),
    NotSupported {
        value: String,
        supported: Vec<String>,
    },
    Forbidden,
    Duplicate(String),
}

/// One problem with one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub kind: ErrorKind,
    /// What is wrong (upstream's text where upstream has the rule).
    pub detail: String,
    /// What to change, where `detail` is upstream's text and does not say it.
    pub hint: Option<String>,
}

impl FieldError {
    /// The error with its hint: `<error>; <hint>`.
    pub fn explained(&self) -> String {
        match &self.hint {
            Some(hint) => format!("{self}; {hint}"),
            None => self.to_string(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Required => write!(f, "{}: Required value: {}", self.path, self.detail),
            ErrorKind::Invalid(value) => {
                write!(
                    f,
                    "{}: Invalid value: {}: {}",
                    self.path, value, self.detail
                )
            }
            ErrorKind::NotSupported { value, supported } => {
                let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
                write!(
                    f,
                    "{}: Unsupported value: {}: supported values: {}",
                    self.path,
                    value,
                    list.join(", ")
                )
            }
            ErrorKind::Forbidden => write!(f, "{}: Forbidden: {}", self.path, self.detail),
            ErrorKind::Duplicate(value) => {
                write!(
                    f,
                    "{}: Duplicate value: {}: {}",
                    self.path, value, self.detail
                )
            }
        }
    }
}

/// All problems found in one TFJob. Never empty.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    pub errors: Vec<FieldError>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&aggregate(self.errors.iter().map(ToString::to_string)))
    }
}

impl ValidationError {
    /// Every error with its hint, in the same aggregate format: what a user reads in the
    /// job's Failed condition.
    pub fn explained(&self) -> String {
        aggregate(self.errors.iter().map(FieldError::explained))
    }

    /// `<path>: <hint>` for each error that has a hint (the webhook's admission warnings).
    pub fn hints(&self) -> Vec<String> {
        self.errors
            .iter()
            .filter_map(|e| Some(format!("{}: {}", e.path, e.hint.as_ref()?)))
            .collect()
    }
}

/// Kubernetes' aggregate format: a single error bare, several in brackets.
fn aggregate(mut parts: impl ExactSizeIterator<Item = String>) -> String {
    if parts.len() == 1 {
        return parts.next().unwrap_or_default();
    }
    format!("[{}]", parts.collect::<Vec<_>>().join(", "))
}

/// Checks a TFJob as submitted (before defaults). Returns every problem at once.
pub fn validate(job: &TFJob) -> Result<(), ValidationError> {
    let mut errors = Vec::new();
    let name = job.metadata.name.as_deref().unwrap_or("");
    validate_name(name, &mut errors);
    validate_spec(name, &job.spec, &mut errors);
    if let Some(Err(value)) = crate::api::annotations::pending_deadline(job) {
        errors.push(FieldError {
            path: format!(
                "metadata.annotations[{}]",
                crate::api::constants::PENDING_DEADLINE_ANNOTATION
            ),
            kind: ErrorKind::Invalid(format!("{value:?}")),
            detail: "must be a positive duration".into(),
            hint: Some("write a duration such as 10m or 1h30m, or remove the annotation".into()),
        });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationError { errors })
    }
}

/// Checks an update: everything [`validate`] checks on the new object, plus immutable fields.
pub fn validate_update(old: &TFJob, new: &TFJob) -> Result<(), ValidationError> {
    let mut errors = validate(new).err().map(|e| e.errors).unwrap_or_default();
    let managed_by = |j: &TFJob| {
        j.spec
            .run_policy
            .as_ref()
            .and_then(|p| p.managed_by.clone())
    };
    if managed_by(old) != managed_by(new) {
        errors.push(FieldError {
            path: "spec.runPolicy.managedBy".into(),
            kind: ErrorKind::Invalid(quote_opt(managed_by(new).as_deref())),
            detail: "field is immutable".into(),
            hint: Some(format!(
                "keep {} or delete and re-create the TFJob",
                quote_opt(managed_by(old).as_deref())
            )),
        });
    }
    let queue = |j: &TFJob| {
        j.spec
            .run_policy
            .as_ref()
            .and_then(|p| p.scheduling_policy.as_ref())
            .and_then(|s| s.queue.clone())
    };
    if queue(old) != queue(new) {
        errors.push(FieldError {
            path: "spec.runPolicy.schedulingPolicy.queue".into(),
            kind: ErrorKind::Invalid(quote_opt(queue(new).as_deref())),
            detail: "field is immutable".into(),
            hint: Some(format!(
                "keep {} or delete and re-create the TFJob",
                quote_opt(queue(old).as_deref())
            )),
        });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationError { errors })
    }
}

fn quote_opt(value: Option<&str>) -> String {
    match value {
        Some(v) => format!("{v:?}"),
        None => "null".into(),
    }
}

/// DNS-1035 label: lower-case alphanumerics and '-', starts with a letter, ends alphanumeric.
fn validate_name(name: &str, errors: &mut Vec<FieldError>) {
    // Upstream's `IsDNS1035Label`: the length, then the pattern (an empty name fails the pattern).
    let mut problems = Vec::new();
    if name.len() > MAX_LABEL_NAME_LEN {
        problems.push(format!(
            "must be no more than {MAX_LABEL_NAME_LEN} characters"
        ));
    }
    let well_formed = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !well_formed {
        // Go's `RegexError` really writes two spaces before "or".
        problems.push(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start \
             with an alphabetic character, and end with an alphanumeric character (e.g. \
             'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
                .to_string(),
        );
    }
    if !problems.is_empty() {
        errors.push(FieldError {
            path: "metadata.name".into(),
            kind: ErrorKind::Invalid(format!("{name:?}")),
            detail: format!("should match: {}", problems.join(",")),
            hint: None,
        });
    }
}

fn validate_spec(name: &str, spec: &TFJobSpec, errors: &mut Vec<FieldError>) {
    if let Some(policy) = &spec.run_policy {
        validate_run_policy(policy, errors);
    }
    validate_legacy_fields(spec, errors);
    if SuccessPolicy::parse(spec.success_policy.as_deref()).is_none() {
        errors.push(not_supported(
            "spec.successPolicy",
            spec.success_policy.as_deref().unwrap_or(""),
            &SuccessPolicy::VALUES,
        ));
    }
    validate_replica_specs(name, spec, errors);
}

fn validate_run_policy(policy: &RunPolicy, errors: &mut Vec<FieldError>) {
    if let Some(managed_by) = policy.managed_by.as_deref()
        && managed_by != MANAGED_BY_TRAINING_OPERATOR
        && managed_by != MANAGED_BY_MULTIKUEUE
    {
        errors.push(not_supported(
            "spec.runPolicy.managedBy",
            managed_by,
            &[MANAGED_BY_TRAINING_OPERATOR, MANAGED_BY_MULTIKUEUE],
        ));
    }
    if CleanPodPolicy::parse(policy.clean_pod_policy.as_deref()).is_none() {
        errors.push(not_supported(
            "spec.runPolicy.cleanPodPolicy",
            policy.clean_pod_policy.as_deref().unwrap_or(""),
            &CleanPodPolicy::VALUES,
        ));
    }
    non_negative(
        "spec.runPolicy.backoffLimit",
        policy.backoff_limit.map(i64::from),
        errors,
    );
    non_negative(
        "spec.runPolicy.ttlSecondsAfterFinished",
        policy.ttl_seconds_after_finished.map(i64::from),
        errors,
    );
    positive_deadline(
        "spec.runPolicy.activeDeadlineSeconds",
        policy.active_deadline_seconds,
        errors,
    );
    if let Some(scheduling) = &policy.scheduling_policy {
        non_negative(
            "spec.runPolicy.schedulingPolicy.minAvailable",
            scheduling.min_available.map(i64::from),
            errors,
        );
        non_negative(
            "spec.runPolicy.schedulingPolicy.scheduleTimeoutSeconds",
            scheduling.schedule_timeout_seconds.map(i64::from),
            errors,
        );
    }
}

/// The flat fields directly under `spec` (tf-operator v1.0 layout). They are honoured when
/// `runPolicy` leaves the field unset; set to a different value in both places is ambiguous.
fn validate_legacy_fields(spec: &TFJobSpec, errors: &mut Vec<FieldError>) {
    let policy = spec.run_policy.clone().unwrap_or_default();
    if CleanPodPolicy::parse(spec.clean_pod_policy.as_deref()).is_none() {
        errors.push(not_supported(
            "spec.cleanPodPolicy",
            spec.clean_pod_policy.as_deref().unwrap_or(""),
            &CleanPodPolicy::VALUES,
        ));
    }
    non_negative(
        "spec.backoffLimit",
        spec.backoff_limit.map(i64::from),
        errors,
    );
    non_negative(
        "spec.ttlSecondsAfterFinished",
        spec.ttl_seconds_after_finished.map(i64::from),
        errors,
    );
    positive_deadline(
        "spec.activeDeadlineSeconds",
        spec.active_deadline_seconds,
        errors,
    );

    let legacy_clean = spec.clean_pod_policy.as_deref().filter(|s| !s.is_empty());
    let policy_clean = policy.clean_pod_policy.as_deref().filter(|s| !s.is_empty());
    conflict(
        "cleanPodPolicy",
        legacy_clean.map(|v| format!("{v:?}")),
        policy_clean.map(|v| format!("{v:?}")),
        errors,
    );
    conflict(
        "backoffLimit",
        spec.backoff_limit.map(|v| v.to_string()),
        policy.backoff_limit.map(|v| v.to_string()),
        errors,
    );
    conflict(
        "activeDeadlineSeconds",
        spec.active_deadline_seconds.map(|v| v.to_string()),
        policy.active_deadline_seconds.map(|v| v.to_string()),
        errors,
    );
    conflict(
        "ttlSecondsAfterFinished",
        spec.ttl_seconds_after_finished.map(|v| v.to_string()),
        policy.ttl_seconds_after_finished.map(|v| v.to_string()),
        errors,
    );
}

fn conflict(
    field: &str,
    legacy: Option<String>,
    current: Option<String>,
    errors: &mut Vec<FieldError>,
) {
    if let (Some(legacy), Some(current)) = (legacy, current)
        && legacy != current
    {
        errors.push(FieldError {
            path: format!("spec.{field}"),
            kind: ErrorKind::Invalid(legacy),
            detail: format!(
                "conflicts with spec.runPolicy.{field} ({current}); remove the legacy spec.{field} \
                 and keep spec.runPolicy.{field}"
            ),
            hint: None,
        });
    }
}

fn validate_replica_specs(name: &str, spec: &TFJobSpec, errors: &mut Vec<FieldError>) {
    let specs = &spec.tf_replica_specs;
    if specs.is_empty() {
        errors.push(FieldError {
            path: "spec.tfReplicaSpecs".into(),
            kind: ErrorKind::Required,
            detail: "must be required".into(),
            hint: Some(
                "add at least one replica type, e.g. a Worker with a container named tensorflow"
                    .into(),
            ),
        });
        return;
    }

    let mut seen: Vec<(ReplicaType, &str)> = Vec::new();
    let mut known: Vec<(ReplicaType, &ReplicaSpec)> = Vec::new();
    for (key, replica) in specs {
        let path = format!("spec.tfReplicaSpecs[{key}]");
        let Some(replica_type) = ReplicaType::from_key(key) else {
            errors.push(FieldError {
                path: path.clone(),
                kind: ErrorKind::NotSupported {
                    value: format!("{key:?}"),
                    supported: ReplicaType::ALL
                        .iter()
                        .map(|t| t.as_str().to_string())
                        .collect(),
                },
                detail: String::new(),
                hint: None,
            });
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(t, _)| *t == replica_type) {
            errors.push(FieldError {
                path: path.clone(),
                kind: ErrorKind::Duplicate(format!("{key:?}")),
                detail: format!(
                    "same replica type as {first:?} (keys are case-insensitive); merge them into one"
                ),
                hint: None,
            });
        } else {
            seen.push((replica_type, key));
        }
        validate_replica(&path, replica, errors);
        known.push((replica_type, replica));
    }
    validate_child_name_length(name, &known, errors);

    let chiefs: Vec<&str> = seen
        .iter()
        .filter(|(t, _)| t.is_chief())
        .map(|(_, k)| *k)
        .collect();
    if chiefs.len() > 1 {
        errors.push(FieldError {
            path: "spec.tfReplicaSpecs".into(),
            kind: ErrorKind::Forbidden,
            detail: "must not have more than 1 Chief or Master role".into(),
            hint: Some(format!(
                "found {}; keep only one of them",
                chiefs.join(", ")
            )),
        });
    }
}

fn validate_replica(path: &str, replica: &ReplicaSpec, errors: &mut Vec<FieldError>) {
    if let Some(replicas) = replica.replicas {
        if replicas < 0 {
            errors.push(FieldError {
                path: format!("{path}.replicas"),
                kind: ErrorKind::Invalid(replicas.to_string()),
                detail: "must be greater than or equal to 0".into(),
                hint: None,
            });
        } else if replicas > MAX_REPLICAS {
            errors.push(FieldError {
                path: format!("{path}.replicas"),
                kind: ErrorKind::Invalid(replicas.to_string()),
                detail: format!("must be no more than {MAX_REPLICAS}"),
                hint: None,
            });
        }
    }
    if RestartPolicy::parse(replica.restart_policy.as_deref()).is_none() {
        errors.push(not_supported(
            &format!("{path}.restartPolicy"),
            replica.restart_policy.as_deref().unwrap_or(""),
            &RestartPolicy::VALUES,
        ));
    }

    let containers = replica
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let containers_path = format!("{path}.template.spec.containers");
    if containers.is_empty() {
        errors.push(FieldError {
            path: containers_path.clone(),
            kind: ErrorKind::Required,
            detail: "must be specified".into(),
            hint: Some("add a container named tensorflow with an image".into()),
        });
    }
    for (i, container) in containers.iter().enumerate() {
        if container.image.as_deref().unwrap_or("").is_empty() {
            errors.push(FieldError {
                path: format!("{containers_path}[{i}].image"),
                kind: ErrorKind::Required,
                detail: "must be required".into(),
                hint: Some("set the container image".into()),
            });
        }
    }
    if !containers.iter().any(|c| c.name == DEFAULT_CONTAINER_NAME) {
        errors.push(FieldError {
            path: containers_path,
            kind: ErrorKind::Required,
            detail: format!("must have at least one container with name {DEFAULT_CONTAINER_NAME}"),
            hint: Some(format!(
                "rename the training container to {DEFAULT_CONTAINER_NAME}"
            )),
        });
    }
}

/// Pods and Services are named `<job>-<type>-<index>`; a Service name over 63 characters is
/// refused by the apiserver, which upstream only discovers at creation time (the job hangs).
fn validate_child_name_length(
    name: &str,
    types: &[(ReplicaType, &ReplicaSpec)],
    errors: &mut Vec<FieldError>,
) {
    let longest = types
        .iter()
        .map(|(t, replica)| {
            let replicas = replica.replicas.unwrap_or(1).clamp(1, MAX_REPLICAS);
            child_name(name, *t, replicas - 1)
        })
        .max_by_key(String::len);
    if let Some(longest) = longest
        && !name.is_empty()
        && longest.len() > MAX_LABEL_NAME_LEN
    {
        errors.push(FieldError {
            path: "metadata.name".into(),
            kind: ErrorKind::Invalid(format!("{name:?}")),
            detail: format!(
                "child name {longest:?} would be {} characters, more than the {MAX_LABEL_NAME_LEN} \
                 a Service name allows; shorten the TFJob name by at least {} characters",
                longest.len(),
                longest.len() - MAX_LABEL_NAME_LEN
            ),
            hint: None,
        });
    }
}

fn not_supported(path: &str, value: &str, supported: &[&str]) -> FieldError {
    FieldError {
        path: path.into(),
        kind: ErrorKind::NotSupported {
            value: format!("{value:?}"),
            supported: supported.iter().map(|s| s.to_string()).collect(),
        },
        detail: String::new(),
        hint: None,
    }
}

fn non_negative(path: &str, value: Option<i64>, errors: &mut Vec<FieldError>) {
    if let Some(v) = value
        && v < 0
    {
        errors.push(FieldError {
            path: path.into(),
            kind: ErrorKind::Invalid(v.to_string()),
            detail: "must be greater than or equal to 0".into(),
            hint: None,
        });
    }
}

fn positive_deadline(path: &str, value: Option<i64>, errors: &mut Vec<FieldError>) {
    if let Some(v) = value
        && v <= 0
    {
        errors.push(FieldError {
            path: path.into(),
            kind: ErrorKind::Invalid(v.to_string()),
            detail: "must be greater than 0; remove the field for no deadline".into(),
            hint: None,
        });
    }
}

#[cfg(test)]
mod tests;
