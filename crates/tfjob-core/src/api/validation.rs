//! Validation of a TFJob: every problem at once, each with its field path and a plain fix.
//!
//! The rules are upstream's webhook rules (names, managedBy, containers, image, the
//! `tensorflow` container, one chief) plus the fixes the design lists: child names over 63
//! characters, empty or unknown replica types, case-variant duplicate keys, negative or huge
//! replicas, bad enum values, negative limits and conflicting legacy fields. Messages follow
//! Kubernetes' `field.Error` format (`<path>: <Type>: <detail>`, several joined as `[a, b]`) so
//! they read like every other apiserver error.

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
    /// What is wrong and what to change.
    pub detail: String,
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
        // Kubernetes' aggregate format: a single error bare, several in brackets.
        match self.errors.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                let parts: Vec<String> = many.iter().map(ToString::to_string).collect();
                write!(f, "[{}]", parts.join(", "))
            }
        }
    }
}

/// Checks a TFJob as submitted (before defaults). Returns every problem at once.
pub fn validate(job: &TFJob) -> Result<(), ValidationError> {
    let mut errors = Vec::new();
    let name = job.metadata.name.as_deref().unwrap_or("");
    validate_name(name, &mut errors);
    validate_spec(name, &job.spec, &mut errors);
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
            detail: format!(
                "field is immutable; keep {} or delete and re-create the TFJob",
                quote_opt(managed_by(old).as_deref())
            ),
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
            detail: format!(
                "field is immutable; keep {} or delete and re-create the TFJob",
                quote_opt(queue(old).as_deref())
            ),
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
    let mut problems = Vec::new();
    if name.is_empty() {
        problems.push("must not be empty".to_string());
    }
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
    if !name.is_empty() && !well_formed {
        problems.push(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start \
             with an alphabetic character, and end with an alphanumeric character (e.g. \
             'my-name', or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
                .to_string(),
        );
    }
    if !problems.is_empty() {
        errors.push(FieldError {
            path: "metadata.name".into(),
            kind: ErrorKind::Invalid(format!("{name:?}")),
            detail: format!("should match: {}", problems.join(",")),
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
        });
    }
}

fn validate_replica_specs(name: &str, spec: &TFJobSpec, errors: &mut Vec<FieldError>) {
    let specs = &spec.tf_replica_specs;
    if specs.is_empty() {
        errors.push(FieldError {
            path: "spec.tfReplicaSpecs".into(),
            kind: ErrorKind::Required,
            detail: "must contain at least one replica type; add e.g. a Worker with a \
                     container named tensorflow"
                .into(),
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
            detail: format!(
                "must not have more than 1 Chief or Master role (found {}); keep only one of them",
                chiefs.join(", ")
            ),
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
            });
        } else if replicas > MAX_REPLICAS {
            errors.push(FieldError {
                path: format!("{path}.replicas"),
                kind: ErrorKind::Invalid(replicas.to_string()),
                detail: format!("must be no more than {MAX_REPLICAS}"),
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
            detail: "must be specified; add a container named tensorflow with an image".into(),
        });
    }
    for (i, container) in containers.iter().enumerate() {
        if container.image.as_deref().unwrap_or("").is_empty() {
            errors.push(FieldError {
                path: format!("{containers_path}[{i}].image"),
                kind: ErrorKind::Required,
                detail: "must be required; set the container image".into(),
            });
        }
    }
    if !containers.iter().any(|c| c.name == DEFAULT_CONTAINER_NAME) {
        errors.push(FieldError {
            path: containers_path,
            kind: ErrorKind::Required,
            detail: format!(
                "must have at least one container with name {DEFAULT_CONTAINER_NAME}; rename the \
                 training container to {DEFAULT_CONTAINER_NAME}"
            ),
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
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
metadata: {name: good}
spec:
  tfReplicaSpecs:
    Worker:
      replicas: 2
      template:
        spec:
          containers: [{name: tensorflow, image: tf}]
"#;

    fn job(yaml: &str) -> TFJob {
        serde_saphyr::from_str(yaml).unwrap()
    }

    /// The rendered messages of every problem in `job`.
    fn errors(job: &TFJob) -> Vec<String> {
        match validate(job) {
            Ok(()) => vec![],
            Err(e) => e.errors.iter().map(ToString::to_string).collect(),
        }
    }

    fn with(f: impl FnOnce(&mut TFJob)) -> TFJob {
        let mut j = job(VALID);
        f(&mut j);
        j
    }

    #[test]
    fn a_valid_job_passes_and_so_do_all_examples() {
        assert_eq!(errors(&job(VALID)), Vec::<String>::new());
        for (file, yaml) in crate::test_fixtures::EXAMPLES {
            assert_eq!(errors(&job(yaml)), Vec::<String>::new(), "{file}");
        }
    }

    #[test]
    fn name_must_be_a_dns_1035_label() {
        let j = with(|j| j.metadata.name = Some("1-Bad_name".into()));
        assert_eq!(
            errors(&j),
            [
                r#"metadata.name: Invalid value: "1-Bad_name": should match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name', or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"#
            ]
        );
        let j = with(|j| j.metadata.name = Some(String::new()));
        assert_eq!(
            errors(&j),
            [r#"metadata.name: Invalid value: "": should match: must not be empty"#]
        );
    }

    #[test]
    fn child_names_over_63_characters_are_rejected() {
        let name = "a".repeat(50); // a...-worker-1 = 50 + 9 = 59: fine
        let j = with(|j| j.metadata.name = Some(name.clone()));
        assert_eq!(errors(&j), Vec::<String>::new());
        let name = "a".repeat(55); // 55 + "-worker-1" = 64
        let j = with(|j| j.metadata.name = Some(name.clone()));
        assert_eq!(
            errors(&j),
            [format!(
                "metadata.name: Invalid value: \"{name}\": child name \"{name}-worker-1\" would be 64 \
                 characters, more than the 63 a Service name allows; shorten the TFJob name by at \
                 least 1 characters"
            )]
        );
    }

    #[test]
    fn managed_by_must_be_a_known_value() {
        let j = with(|j| {
            j.spec.run_policy = Some(RunPolicy {
                managed_by: Some("me".into()),
                ..Default::default()
            })
        });
        assert_eq!(
            errors(&j),
            [
                r#"spec.runPolicy.managedBy: Unsupported value: "me": supported values: "kubeflow.org/training-operator", "kueue.x-k8s.io/multikueue""#
            ]
        );
    }

    #[test]
    fn managed_by_and_queue_are_immutable_on_update() {
        let old = job(VALID);
        let new = with(|j| {
            j.spec.run_policy = Some(RunPolicy {
                managed_by: Some("kueue.x-k8s.io/multikueue".into()),
                scheduling_policy: Some(crate::api::SchedulingPolicy {
                    queue: Some("q2".into()),
                    ..Default::default()
                }),
                ..Default::default()
            })
        });
        let messages: Vec<String> = validate_update(&old, &new)
            .unwrap_err()
            .errors
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            messages,
            [
                r#"spec.runPolicy.managedBy: Invalid value: "kueue.x-k8s.io/multikueue": field is immutable; keep null or delete and re-create the TFJob"#,
                r#"spec.runPolicy.schedulingPolicy.queue: Invalid value: "q2": field is immutable; keep null or delete and re-create the TFJob"#,
            ]
        );
        assert!(validate_update(&old, &old).is_ok());
    }

    #[test]
    fn replica_specs_must_not_be_empty() {
        let j = with(|j| j.spec.tf_replica_specs.clear());
        assert_eq!(
            errors(&j),
            [
                "spec.tfReplicaSpecs: Required value: must contain at least one replica type; add e.g. a Worker with a container named tensorflow"
            ]
        );
    }

    #[test]
    fn containers_must_be_specified() {
        let j = with(|j| {
            let worker = j.spec.tf_replica_specs.get_mut("Worker").unwrap();
            worker
                .template
                .as_mut()
                .unwrap()
                .spec
                .as_mut()
                .unwrap()
                .containers
                .clear();
        });
        assert_eq!(
            errors(&j),
            [
                "spec.tfReplicaSpecs[Worker].template.spec.containers: Required value: must be specified; add a container named tensorflow with an image",
                "spec.tfReplicaSpecs[Worker].template.spec.containers: Required value: must have at least one container with name tensorflow; rename the training container to tensorflow",
            ]
        );
        let j = with(|j| j.spec.tf_replica_specs.get_mut("Worker").unwrap().template = None);
        assert_eq!(
            errors(&j).len(),
            2,
            "a missing template is missing containers"
        );
    }

    #[test]
    fn images_are_required() {
        let j = with(|j| {
            let worker = j.spec.tf_replica_specs.get_mut("Worker").unwrap();
            worker
                .template
                .as_mut()
                .unwrap()
                .spec
                .as_mut()
                .unwrap()
                .containers[0]
                .image = Some(String::new());
        });
        assert_eq!(
            errors(&j),
            [
                "spec.tfReplicaSpecs[Worker].template.spec.containers[0].image: Required value: must be required; set the container image"
            ]
        );
    }

    #[test]
    fn a_tensorflow_container_is_required() {
        let j = with(|j| {
            let worker = j.spec.tf_replica_specs.get_mut("Worker").unwrap();
            worker
                .template
                .as_mut()
                .unwrap()
                .spec
                .as_mut()
                .unwrap()
                .containers[0]
                .name = "main".into();
        });
        assert_eq!(
            errors(&j),
            [
                "spec.tfReplicaSpecs[Worker].template.spec.containers: Required value: must have at least one container with name tensorflow; rename the training container to tensorflow"
            ]
        );
    }

    #[test]
    fn only_one_chief_or_master_even_in_other_letter_case() {
        let j = with(|j| {
            let worker = j.spec.tf_replica_specs["Worker"].clone();
            j.spec
                .tf_replica_specs
                .insert("chief".into(), worker.clone());
            j.spec.tf_replica_specs.insert("Master".into(), worker);
        });
        assert_eq!(
            errors(&j),
            [
                "spec.tfReplicaSpecs: Forbidden: must not have more than 1 Chief or Master role (found Master, chief); keep only one of them"
            ]
        );
    }

    #[test]
    fn case_variant_duplicate_keys_are_rejected() {
        let j = with(|j| {
            let worker = j.spec.tf_replica_specs["Worker"].clone();
            j.spec.tf_replica_specs.insert("worker".into(), worker);
        });
        assert_eq!(
            errors(&j),
            [
                r#"spec.tfReplicaSpecs[worker]: Duplicate value: "worker": same replica type as "Worker" (keys are case-insensitive); merge them into one"#
            ]
        );
    }

    #[test]
    fn unknown_and_empty_replica_types_are_rejected() {
        let j = with(|j| {
            let worker = j.spec.tf_replica_specs["Worker"].clone();
            j.spec.tf_replica_specs.insert("Foo".into(), worker.clone());
            j.spec.tf_replica_specs.insert(String::new(), worker);
        });
        assert_eq!(
            errors(&j),
            [
                r#"spec.tfReplicaSpecs[]: Unsupported value: "": supported values: "Chief", "Evaluator", "Master", "PS", "Worker""#,
                r#"spec.tfReplicaSpecs[Foo]: Unsupported value: "Foo": supported values: "Chief", "Evaluator", "Master", "PS", "Worker""#,
            ]
        );
    }

    #[test]
    fn replicas_must_be_between_zero_and_the_maximum() {
        let j = with(|j| j.spec.tf_replica_specs.get_mut("Worker").unwrap().replicas = Some(-1));
        assert_eq!(
            errors(&j),
            [
                "spec.tfReplicaSpecs[Worker].replicas: Invalid value: -1: must be greater than or equal to 0"
            ]
        );
        let j =
            with(|j| j.spec.tf_replica_specs.get_mut("Worker").unwrap().replicas = Some(i32::MAX));
        assert_eq!(
            errors(&j),
            [
                "spec.tfReplicaSpecs[Worker].replicas: Invalid value: 2147483647: must be no more than 10000"
            ]
        );
        let j = with(|j| j.spec.tf_replica_specs.get_mut("Worker").unwrap().replicas = Some(0));
        assert_eq!(errors(&j), Vec::<String>::new());
    }

    #[test]
    fn enum_values_are_checked() {
        let j = with(|j| {
            j.spec
                .tf_replica_specs
                .get_mut("Worker")
                .unwrap()
                .restart_policy = Some("Sometimes".into());
            j.spec.success_policy = Some("AnyWorker".into());
            j.spec.clean_pod_policy = Some("Some".into());
            j.spec.run_policy = Some(RunPolicy {
                clean_pod_policy: Some("all".into()),
                ..Default::default()
            });
        });
        assert_eq!(
            errors(&j),
            [
                r#"spec.runPolicy.cleanPodPolicy: Unsupported value: "all": supported values: "None", "Running", "All""#,
                r#"spec.cleanPodPolicy: Unsupported value: "Some": supported values: "None", "Running", "All""#,
                r#"spec.cleanPodPolicy: Invalid value: "Some": conflicts with spec.runPolicy.cleanPodPolicy ("all"); remove the legacy spec.cleanPodPolicy and keep spec.runPolicy.cleanPodPolicy"#,
                r#"spec.successPolicy: Unsupported value: "AnyWorker": supported values: "", "AllWorkers""#,
                r#"spec.tfReplicaSpecs[Worker].restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never", "ExitCode""#,
            ]
        );
    }

    #[test]
    fn limits_must_not_be_negative() {
        let j = with(|j| {
            j.spec.run_policy = Some(RunPolicy {
                backoff_limit: Some(-1),
                ttl_seconds_after_finished: Some(-5),
                active_deadline_seconds: Some(0),
                scheduling_policy: Some(crate::api::SchedulingPolicy {
                    min_available: Some(-2),
                    schedule_timeout_seconds: Some(-3),
                    ..Default::default()
                }),
                ..Default::default()
            })
        });
        assert_eq!(
            errors(&j),
            [
                "spec.runPolicy.backoffLimit: Invalid value: -1: must be greater than or equal to 0",
                "spec.runPolicy.ttlSecondsAfterFinished: Invalid value: -5: must be greater than or equal to 0",
                "spec.runPolicy.activeDeadlineSeconds: Invalid value: 0: must be greater than 0; remove the field for no deadline",
                "spec.runPolicy.schedulingPolicy.minAvailable: Invalid value: -2: must be greater than or equal to 0",
                "spec.runPolicy.schedulingPolicy.scheduleTimeoutSeconds: Invalid value: -3: must be greater than or equal to 0",
            ]
        );
    }

    #[test]
    fn legacy_fields_are_checked_and_must_not_conflict() {
        let j = with(|j| {
            j.spec.backoff_limit = Some(6);
            j.spec.active_deadline_seconds = Some(-1);
            j.spec.run_policy = Some(RunPolicy {
                backoff_limit: Some(3),
                ..Default::default()
            });
        });
        assert_eq!(
            errors(&j),
            [
                "spec.activeDeadlineSeconds: Invalid value: -1: must be greater than 0; remove the field for no deadline",
                "spec.backoffLimit: Invalid value: 6: conflicts with spec.runPolicy.backoffLimit (3); remove the legacy spec.backoffLimit and keep spec.runPolicy.backoffLimit",
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_in_kubernetes_aggregate_format() {
        let j = with(|j| {
            j.metadata.name = Some("Bad".into());
            j.spec.tf_replica_specs.get_mut("Worker").unwrap().replicas = Some(-3);
        });
        let err = validate(&j).unwrap_err();
        assert_eq!(err.errors.len(), 2);
        let text = err.to_string();
        assert!(
            text.starts_with("[metadata.name: Invalid value: \"Bad\""),
            "{text}"
        );
        assert!(text.ends_with("spec.tfReplicaSpecs[Worker].replicas: Invalid value: -3: must be greater than or equal to 0]"), "{text}");
    }
}
