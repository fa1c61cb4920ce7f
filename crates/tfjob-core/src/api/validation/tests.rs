//! Tests of the validation rules: every rule, its field path and its message.

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

/// Every problem in `job` as a user reads it in the Failed condition: the error and its hint.
fn errors(job: &TFJob) -> Vec<String> {
    match validate(job) {
        Ok(()) => vec![],
        Err(e) => e.errors.iter().map(FieldError::explained).collect(),
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
            r#"metadata.name: Invalid value: "1-Bad_name": should match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"#
        ]
    );
    let j = with(|j| j.metadata.name = Some(String::new()));
    assert_eq!(
        errors(&j),
        [
            r#"metadata.name: Invalid value: "": should match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"#
        ]
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
        .map(FieldError::explained)
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
            "spec.tfReplicaSpecs: Required value: must be required; add at least one replica type, e.g. a Worker with a container named tensorflow"
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
            "spec.tfReplicaSpecs: Forbidden: must not have more than 1 Chief or Master role; found Master, chief; keep only one of them"
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
    let j = with(|j| j.spec.tf_replica_specs.get_mut("Worker").unwrap().replicas = Some(i32::MAX));
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

/// The containers of the Worker of a job made by [`with`].
fn containers(j: &mut TFJob) -> &mut Vec<k8s_openapi::api::core::v1::Container> {
    let worker = j.spec.tf_replica_specs.get_mut("Worker").unwrap();
    &mut worker
        .template
        .as_mut()
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .containers
}

/// Every rule upstream's webhook has, denied with upstream's text byte for byte (what scripts
/// and tests written against training-operator v1.9 match), and the hint kept apart.
#[test]
fn upstream_rules_deny_with_upstreams_text_byte_for_byte() {
    let dns_1035 = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', \
                    start with an alphabetic character, and end with an alphanumeric character \
                    (e.g. 'my-name',  or 'abc-123', regex used for validation is \
                    '[a-z]([-a-z0-9]*[a-z0-9])?')";
    let cases: Vec<(&str, TFJob, String, Option<&str>)> = vec![
        (
            "name not a DNS-1035 label",
            with(|j| j.metadata.name = Some("1job".into())),
            format!(r#"metadata.name: Invalid value: "1job": should match: {dns_1035}"#),
            None,
        ),
        (
            "name too long and malformed",
            with(|j| j.metadata.name = Some(format!("A{}", "a".repeat(63)))),
            format!(
                r#"metadata.name: Invalid value: "A{}": should match: must be no more than 63 characters,{dns_1035}"#,
                "a".repeat(63)
            ),
            None,
        ),
        (
            "managedBy not supported",
            with(|j| {
                j.spec.run_policy = Some(RunPolicy {
                    managed_by: Some("me".into()),
                    ..Default::default()
                })
            }),
            r#"spec.runPolicy.managedBy: Unsupported value: "me": supported values: "kubeflow.org/training-operator", "kueue.x-k8s.io/multikueue""#.into(),
            None,
        ),
        (
            "tfReplicaSpecs missing",
            with(|j| j.spec.tf_replica_specs.clear()),
            "spec.tfReplicaSpecs: Required value: must be required".into(),
            Some("add at least one replica type, e.g. a Worker with a container named tensorflow"),
        ),
        (
            "no image",
            with(|j| containers(j)[0].image = Some(String::new())),
            "spec.tfReplicaSpecs[Worker].template.spec.containers[0].image: Required value: must be required".into(),
            Some("set the container image"),
        ),
        (
            "no tensorflow container",
            with(|j| containers(j)[0].name = "main".into()),
            "spec.tfReplicaSpecs[Worker].template.spec.containers: Required value: must have at least one container with name tensorflow".into(),
            Some("rename the training container to tensorflow"),
        ),
        (
            "two chiefs",
            with(|j| {
                let worker = j.spec.tf_replica_specs["Worker"].clone();
                j.spec.tf_replica_specs.insert("Chief".into(), worker.clone());
                j.spec.tf_replica_specs.insert("Master".into(), worker);
            }),
            "spec.tfReplicaSpecs: Forbidden: must not have more than 1 Chief or Master role".into(),
            Some("found Chief, Master; keep only one of them"),
        ),
    ];
    for (name, job, upstream, hint) in cases {
        let error = validate(&job).expect_err(name);
        // The first error is upstream's rule (a too-long name also breaks this project's own
        // child-name rule, listed after it).
        assert_eq!(error.errors[0].to_string(), upstream, "{name}");
        let hints: Vec<String> = hint
            .iter()
            .map(|h| format!("{}: {h}", error.errors[0].path))
            .collect();
        assert_eq!(error.hints(), hints, "{name}");
    }

    // No containers at all: upstream's two errors, in upstream's aggregate format.
    let none = with(|j| containers(j).clear());
    assert_eq!(
        validate(&none).unwrap_err().to_string(),
        "[spec.tfReplicaSpecs[Worker].template.spec.containers: Required value: must be specified, \
         spec.tfReplicaSpecs[Worker].template.spec.containers: Required value: must have at least \
         one container with name tensorflow]"
    );

    // Updates: managedBy is immutable, in upstream's words.
    let old = with(|_| {});
    let new = with(|j| {
        j.spec.run_policy = Some(RunPolicy {
            managed_by: Some("kueue.x-k8s.io/multikueue".into()),
            ..Default::default()
        })
    });
    assert_eq!(
        validate_update(&old, &new).unwrap_err().to_string(),
        r#"spec.runPolicy.managedBy: Invalid value: "kueue.x-k8s.io/multikueue": field is immutable"#
    );
}
