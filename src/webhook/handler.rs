//! The admission logic: an `admission.k8s.io/v1` AdmissionReview in, the answering
//! AdmissionReview out. Pure (no I/O, no clock), so every case is a unit test.
//!
//! * Validating (`/validate-kubeflow-org-v1-tfjob`): CREATE runs [`tfjob_core::api::validate`],
//!   UPDATE runs [`tfjob_core::api::validate_update`] (which adds the immutability of
//!   `runPolicy.managedBy` and `schedulingPolicy.queue`), minus the problems the stored object
//!   already had unchanged ("ratcheting"). A denial carries every problem in
//!   Kubernetes' aggregate format as `status.message`, code 403 and reason `Forbidden` — what
//!   upstream's controller-runtime webhook returns — so `kubectl` prints
//!   `admission webhook "validator.tfjob.training-operator.kubeflow.org" denied the request:
//!   <problems>`. The field paths are also in `status.details.causes` for programs.
//! * Defaulting (`/mutate-kubeflow-org-v1-tfjob`): allows everything and returns the JSONPatch of
//!   [`super::defaulting::normalisation_patch`].
//!
//! A body that is not a v1 AdmissionReview with a request is a [`ReviewError`] (the server
//! answers 400); a TFJob that cannot be decoded is a clean denial, not an error, so the user sees
//! which field to fix.

use k8s_openapi::ByteString;
use kube::ResourceExt;
use kube::core::DynamicObject;
use kube::core::admission::{
    AdmissionRequest, AdmissionResponse, AdmissionReview, META_API_VERSION_V1, META_KIND, Operation,
};
use kube::core::response::{StatusCause, StatusDetails, StatusSummary};
use serde_json::Value;

use tfjob_core::api::{
    EffectiveSpec, ErrorKind, FieldError, ServiceMode, TFJob, ValidationError, validate,
    validate_update,
};
use tfjob_core::plan::tf_config::{self, Addressing};

use super::defaulting::normalisation_patch;

/// Path of the validating webhook (upstream's, so existing webhook configurations work).
pub const VALIDATE_PATH: &str = "/validate-kubeflow-org-v1-tfjob";
/// Path of the defaulting (mutating) webhook.
pub const MUTATE_PATH: &str = "/mutate-kubeflow-org-v1-tfjob";
/// The validating webhook's name in its configuration; kubectl shows it in every denial.
pub const VALIDATING_WEBHOOK_NAME: &str = "validator.tfjob.training-operator.kubeflow.org";
/// The defaulting webhook's name in its configuration.
pub const MUTATING_WEBHOOK_NAME: &str = "defaulter.tfjob.training-operator.kubeflow.org";

/// Which review to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Validate,
    Mutate,
}

/// The request body is not something this webhook can answer; the server replies 400 with the
/// message, which the apiserver logs as the reason the call failed.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("the body is not an AdmissionReview: {0}")]
    Malformed(#[source] serde_json::Error),
    #[error(
        "unsupported {kind} {api_version:?}: this webhook answers only \
         {META_KIND} {META_API_VERSION_V1:?}; set admissionReviewVersions: [v1]"
    )]
    Version { kind: String, api_version: String },
    #[error("the AdmissionReview has no request")]
    NoRequest,
    #[error("the {operation} request {uid} carries no object")]
    NoObject {
        operation: &'static str,
        uid: String,
    },
}

/// Where the operator's pods find each other, which decides how long a job's TF_CONFIG gets
/// (`--service-mode`, `CUSTOM_CLUSTER_DOMAIN`): a job whose TF_CONFIG no pod could start with
/// is refused here too.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    pub service_mode: ServiceMode,
    pub cluster_domain: Option<String>,
}

/// Answers one AdmissionReview body with the AdmissionReview to send back.
pub fn review(
    endpoint: Endpoint,
    body: &[u8],
    placement: &Placement,
) -> Result<Value, ReviewError> {
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_slice(body).map_err(ReviewError::Malformed)?;
    if review.types.api_version != META_API_VERSION_V1 || review.types.kind != META_KIND {
        return Err(ReviewError::Version {
            kind: review.types.kind,
            api_version: review.types.api_version,
        });
    }
    let request: AdmissionRequest<DynamicObject> =
        review.try_into().map_err(|_| ReviewError::NoRequest)?;
    let response = match endpoint {
        Endpoint::Validate => validate_request(&request, placement)?,
        Endpoint::Mutate => mutate_request(&request)?,
    };
    let mut answer =
        serde_json::to_value(response.into_review()).map_err(ReviewError::Malformed)?;
    // kube serialises the patch as an array of numbers; Kubernetes' `[]byte` is base64 text.
    if let Some(patch) = answer.pointer_mut("/response/patch") {
        let bytes: Vec<u8> =
            serde_json::from_value(patch.take()).map_err(ReviewError::Malformed)?;
        *patch = serde_json::to_value(ByteString(bytes)).map_err(ReviewError::Malformed)?;
    }
    Ok(answer)
}

fn validate_request(
    request: &AdmissionRequest<DynamicObject>,
    placement: &Placement,
) -> Result<AdmissionResponse, ReviewError> {
    let allowed = AdmissionResponse::from(request);
    // Only the main resource is ours to check: status writes and DELETE/CONNECT pass (the
    // configuration does not send them; this keeps a broader rule from blocking them).
    let operation = match request.operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete | Operation::Connect => return Ok(allowed),
    };
    if request
        .sub_resource
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        return Ok(allowed);
    }
    if let Some(denial) = wrong_kind(request) {
        return Ok(deny_message(allowed, &denial));
    }
    let object = request
        .object
        .as_ref()
        .ok_or_else(|| ReviewError::NoObject {
            operation,
            uid: request.uid.clone(),
        })?;
    let new = match decode(object) {
        Ok(job) => job,
        Err(message) => return Ok(deny_message(allowed, &message)),
    };
    let namespace = request
        .namespace
        .clone()
        .or_else(|| new.namespace())
        .unwrap_or_default();
    let with_size = |result, job: &TFJob| tf_config_fits(result, job, &namespace, placement);
    let result = match (request.operation.clone(), request.old_object.as_ref()) {
        (Operation::Update, Some(old)) => match decode(old) {
            Ok(old) => ratchet(
                with_size(validate_update(&old, &new), &new),
                &with_size(validate(&old), &old),
            ),
            // An old object this version cannot read (stored before a schema change) can only
            // be compared field by field, which is what decoding failed at; check the new one.
            Err(_) => with_size(validate(&new), &new),
        },
        _ => with_size(validate(&new), &new),
    };
    Ok(match result {
        Ok(()) => allowed,
        Err(errors) => deny_invalid(allowed, &new, &errors),
    })
}

fn mutate_request(
    request: &AdmissionRequest<DynamicObject>,
) -> Result<AdmissionResponse, ReviewError> {
    let allowed = AdmissionResponse::from(request);
    let operation = match request.operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete | Operation::Connect => return Ok(allowed),
    };
    if request
        .sub_resource
        .as_deref()
        .is_some_and(|s| !s.is_empty())
        || wrong_kind(request).is_some()
    {
        // Not ours to normalise; the validating webhook reports a wrong kind.
        return Ok(allowed);
    }
    let object = request
        .object
        .as_ref()
        .ok_or_else(|| ReviewError::NoObject {
            operation,
            uid: request.uid.clone(),
        })?;
    let json = serde_json::to_value(object).map_err(ReviewError::Malformed)?;
    let patch = normalisation_patch(&json);
    if patch.0.is_empty() {
        return Ok(allowed);
    }
    // Serialising a json_patch::Patch cannot fail (plain strings and JSON values); if it ever
    // did, admitting the object unchanged is correct: the operator normalises in memory anyway.
    Ok(allowed.clone().with_patch(patch).unwrap_or(allowed))
}

/// Drops from an UPDATE's problems those the stored object already had, unchanged: an object
/// created before the webhook (or before a rule) can still get labels, lose finalizers or be
/// fixed one field at a time, while anything the update introduces or alters is refused. This
/// is Kubernetes' own "validation ratcheting" for CRDs (1.28+).
/// A valid job's TF_CONFIG must fit in one environment variable of its pods (the reconciler
/// fails the job with the same error otherwise).
fn tf_config_fits(
    result: Result<(), ValidationError>,
    job: &TFJob,
    namespace: &str,
    placement: &Placement,
) -> Result<(), ValidationError> {
    result?;
    let Ok(spec) = EffectiveSpec::resolve(job) else {
        return Ok(());
    };
    let name = job.name_any();
    let at = Addressing {
        job_name: &name,
        namespace,
        cluster_domain: placement.cluster_domain.as_deref(),
        service_mode: placement.service_mode,
    };
    match tf_config::check_size(&spec, &at) {
        Some(error) => Err(ValidationError {
            errors: vec![error],
        }),
        None => Ok(()),
    }
}

fn ratchet(
    update: Result<(), ValidationError>,
    old: &Result<(), ValidationError>,
) -> Result<(), ValidationError> {
    let (Err(update), Err(old)) = (update.clone(), old) else {
        return update;
    };
    let errors: Vec<FieldError> = update
        .errors
        .into_iter()
        .filter(|e| !old.errors.contains(e))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationError { errors })
    }
}

/// A denial message when the request is not for `kubeflow.org/v1` TFJobs (a misconfigured rule).
fn wrong_kind(request: &AdmissionRequest<DynamicObject>) -> Option<String> {
    let kind = &request.kind;
    (kind.group != "kubeflow.org" || kind.version != "v1" || kind.kind != "TFJob").then(|| {
        format!(
            "this webhook reviews only kubeflow.org/v1 TFJobs, not {}/{} {}; fix the rules of \
             the webhook configuration",
            kind.group, kind.version, kind.kind
        )
    })
}

/// Decodes the raw object as a TFJob; the error names the field that does not fit.
fn decode(object: &DynamicObject) -> Result<TFJob, String> {
    let json =
        serde_json::to_value(object).map_err(|e| format!("the object cannot be read: {e}"))?;
    serde_path_to_error::deserialize::<_, TFJob>(json).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            format!("the object cannot be read: {inner}; fix the TFJob")
        } else {
            format!("the object cannot be read: {path}: {inner}; fix that field of the TFJob")
        }
    })
}

fn deny_message(response: AdmissionResponse, message: &str) -> AdmissionResponse {
    let mut response = response.deny(message);
    response.result.status = Some(StatusSummary::Failure);
    response.result.code = 403;
    response.result.reason = "Forbidden".into();
    response
}

fn deny_invalid(
    response: AdmissionResponse,
    job: &TFJob,
    errors: &ValidationError,
) -> AdmissionResponse {
    // The denial is upstream's text byte for byte (scripts match it); what to change travels
    // beside it, as warnings kubectl prints and in each cause.
    let mut response = deny_message(response, &errors.to_string());
    let hints = errors.hints();
    if !hints.is_empty() {
        response.warnings = Some(hints);
    }
    response.result.details = Some(StatusDetails {
        name: job.metadata.name.clone().unwrap_or_default(),
        group: "kubeflow.org".into(),
        kind: "TFJob".into(),
        uid: String::new(),
        causes: errors.errors.iter().map(cause).collect(),
        retry_after_seconds: 0,
    });
    response
}

/// One problem as a `StatusCause`, the way the apiserver reports field errors.
fn cause(error: &FieldError) -> StatusCause {
    let reason = match error.kind {
        ErrorKind::Required => "FieldValueRequired",
        ErrorKind::Invalid(_) => "FieldValueInvalid",
        ErrorKind::NotSupported { .. } => "FieldValueNotSupported",
        ErrorKind::Forbidden => "FieldValueForbidden",
        ErrorKind::Duplicate(_) => "FieldValueDuplicate",
    };
    let text = error.explained();
    let message = text
        .strip_prefix(&format!("{}: ", error.path))
        .unwrap_or(&text)
        .to_string();
    StatusCause {
        reason: reason.into(),
        message,
        field: error.path.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const GOOD: &str = r#"{"apiVersion":"kubeflow.org/v1","kind":"TFJob",
        "metadata":{"name":"good","namespace":"ns"},
        "spec":{"tfReplicaSpecs":{"Worker":{"replicas":2,
            "template":{"spec":{"containers":[{"name":"tensorflow","image":"tf"}]}}}}}}"#;

    fn job(patch: Value) -> Value {
        let mut job: Value = serde_json::from_str(GOOD).unwrap();
        json_patch::merge(&mut job, &patch);
        job
    }

    fn review_body(operation: &str, object: Value, old: Option<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": "kubeflow.org", "version": "v1", "kind": "TFJob"},
                "resource": {"group": "kubeflow.org", "version": "v1", "resource": "tfjobs"},
                "name": object["metadata"]["name"],
                "namespace": "ns",
                "operation": operation,
                "userInfo": {"username": "alice"},
                "object": object,
                "oldObject": old,
                "dryRun": false
            }
        }))
        .unwrap()
    }

    /// The response part of the answer, as JSON.
    fn answer(endpoint: Endpoint, body: &[u8]) -> Value {
        let value = review(endpoint, body, &Placement::default()).expect("a valid review");
        assert_eq!(value["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(value["kind"], "AdmissionReview");
        assert_eq!(
            value["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002",
            "the uid is echoed"
        );
        value["response"].clone()
    }

    /// The reconciler's TF_CONFIG limit, at admission: computed with the operator's addressing,
    /// so a job that fits with one Service per replica may not fit with one per job.
    #[test]
    fn a_job_whose_tf_config_cannot_reach_its_pods_is_denied() {
        let big = job(json!({"spec": {"tfReplicaSpecs": {"Worker": {"replicas": 4200}}}}));
        let answer = |mode| {
            let placement = Placement {
                service_mode: mode,
                cluster_domain: Some("cluster.local".into()),
            };
            let body = review_body("CREATE", big.clone(), None);
            review(Endpoint::Validate, &body, &placement).expect("a valid review")["response"]
                .clone()
        };
        let denied = answer(ServiceMode::PerReplica);
        assert_eq!(denied["allowed"], false);
        let message = denied["status"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("spec.tfReplicaSpecs: Forbidden: TF_CONFIG would be "),
            "{message}"
        );
        assert_eq!(
            denied["status"]["details"]["causes"][0]["field"],
            "spec.tfReplicaSpecs"
        );
        let sparse = job(json!({"spec": {"enableDynamicWorker": true,
            "tfReplicaSpecs": {"Worker": {"replicas": 4200}}}}));
        let body = review_body("CREATE", sparse, None);
        let allowed = review(Endpoint::Validate, &body, &Placement::default()).unwrap();
        assert_eq!(allowed["response"]["allowed"], true);
    }

    #[test]
    fn a_valid_create_is_allowed() {
        let response = answer(
            Endpoint::Validate,
            &review_body("CREATE", job(json!({})), None),
        );
        assert_eq!(response["allowed"], true);
        assert_eq!(response.get("patch"), None);
    }

    #[test]
    fn an_invalid_create_is_denied_with_every_problem_and_its_field() {
        let bad = job(
            json!({"metadata": {"name": "1job"}, "spec": {"tfReplicaSpecs": {"Worker": {"replicas": -1}}}}),
        );
        let response = answer(Endpoint::Validate, &review_body("CREATE", bad, None));
        assert_eq!(response["allowed"], false);
        assert_eq!(
            response["status"]["message"],
            "[metadata.name: Invalid value: \"1job\": should match: a DNS-1035 label must consist of \
             lower case alphanumeric characters or '-', start with an alphabetic character, and end \
             with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation \
             is '[a-z]([-a-z0-9]*[a-z0-9])?'), spec.tfReplicaSpecs[Worker].replicas: Invalid value: \
             -1: must be greater than or equal to 0]"
        );
        assert_eq!(response["status"]["code"], 403);
        assert_eq!(response["status"]["reason"], "Forbidden");
        assert_eq!(response["status"]["status"], "Failure");
        assert_eq!(
            response["status"]["details"]["causes"],
            json!([
                {"reason": "FieldValueInvalid", "field": "metadata.name",
                 "message": "Invalid value: \"1job\": should match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"},
                {"reason": "FieldValueInvalid", "field": "spec.tfReplicaSpecs[Worker].replicas",
                 "message": "Invalid value: -1: must be greater than or equal to 0"},
            ])
        );
        assert_eq!(response["status"]["details"]["kind"], "TFJob");
        assert_eq!(response["status"]["details"]["group"], "kubeflow.org");
        assert_eq!(response["status"]["details"]["name"], "1job");
        assert_eq!(response.get("warnings"), None, "no hints for these rules");
    }

    /// Upstream's rules deny with upstream's text; what to change comes as warnings (kubectl
    /// prints them) and in the causes.
    #[test]
    fn hints_travel_as_warnings_and_causes_beside_upstreams_text() {
        let bad = job(json!({"spec": {"tfReplicaSpecs": {"Worker": {
            "template": {"spec": {"containers": [{"name": "main", "image": "tf"}]}}}}}}));
        let response = answer(Endpoint::Validate, &review_body("CREATE", bad, None));
        assert_eq!(
            response["status"]["message"],
            "spec.tfReplicaSpecs[Worker].template.spec.containers: Required value: must have at \
             least one container with name tensorflow"
        );
        assert_eq!(
            response["warnings"],
            json!([
                "spec.tfReplicaSpecs[Worker].template.spec.containers: rename the training container to tensorflow"
            ])
        );
        assert_eq!(
            response["status"]["details"]["causes"][0]["message"],
            "Required value: must have at least one container with name tensorflow; rename the \
             training container to tensorflow"
        );
    }

    #[test]
    fn update_checks_the_new_object_and_immutable_fields_against_the_old_one() {
        let old = job(json!({"spec": {"runPolicy": {"schedulingPolicy": {"queue": "a"}}}}));
        let new = job(json!({"spec": {
            "runPolicy": {"managedBy": "kueue.x-k8s.io/multikueue", "schedulingPolicy": {"queue": "b"}},
            "tfReplicaSpecs": {"Worker": {"replicas": 3}}
        }}));
        let response = answer(
            Endpoint::Validate,
            &review_body("UPDATE", new.clone(), Some(old.clone())),
        );
        assert_eq!(response["allowed"], false);
        assert_eq!(
            response["status"]["message"],
            "[spec.runPolicy.managedBy: Invalid value: \"kueue.x-k8s.io/multikueue\": field is \
             immutable, spec.runPolicy.schedulingPolicy.queue: Invalid value: \"b\": field is \
             immutable]"
        );

        // Scaling (editing replicas) is an allowed update; so is the same object.
        let scaled = job(
            json!({"spec": {"runPolicy": {"schedulingPolicy": {"queue": "a"}},
            "tfReplicaSpecs": {"Worker": {"replicas": 5}}}}),
        );
        let response = answer(
            Endpoint::Validate,
            &review_body("UPDATE", scaled, Some(old)),
        );
        assert_eq!(response["allowed"], true, "{response}");

        // The same change on CREATE has nothing to compare with.
        let response = answer(Endpoint::Validate, &review_body("CREATE", new, None));
        assert_eq!(response["allowed"], true, "{response}");
    }

    #[test]
    fn an_update_is_refused_only_for_problems_it_introduces_or_changes() {
        // Stored before the webhook existed: a negative replica count and two chiefs.
        let template = json!({"spec": {"containers": [{"name": "tensorflow", "image": "tf"}]}});
        let old = job(json!({"spec": {"tfReplicaSpecs": {
            "Worker": {"replicas": -1},
            "Chief": {"template": template}, "Master": {"template": template}}}}));
        let review = |new: Value| {
            answer(
                Endpoint::Validate,
                &review_body("UPDATE", new, Some(old.clone())),
            )
        };

        // A label, or a finalizer removed: the old problems alone do not block it.
        let mut labelled = old.clone();
        labelled["metadata"]["labels"] = json!({"team": "a"});
        assert_eq!(review(labelled)["allowed"], true);

        // Changing the bad value to another bad value is refused, for that field only.
        let mut changed = old.clone();
        changed["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] = json!(-2);
        let response = review(changed);
        assert_eq!(response["allowed"], false);
        assert_eq!(
            response["status"]["message"],
            "spec.tfReplicaSpecs[Worker].replicas: Invalid value: -2: must be greater than or \
             equal to 0"
        );

        // A new problem is refused alone; fixing the old ones is allowed.
        let mut worse = old.clone();
        worse["spec"]["successPolicy"] = json!("Sometimes");
        assert_eq!(
            review(worse)["status"]["message"],
            r#"spec.successPolicy: Unsupported value: "Sometimes": supported values: "", "AllWorkers""#
        );
        let mut fixed = old.clone();
        json_patch::merge(
            &mut fixed,
            &json!({"spec": {"tfReplicaSpecs": {"Worker": {"replicas": 1}, "Master": null}}}),
        );
        assert_eq!(review(fixed)["allowed"], true);
    }

    #[test]
    fn an_undecodable_object_is_denied_naming_the_field() {
        let bad = job(json!({"spec": {"tfReplicaSpecs": {"Worker": {"replicas": "two"}}}}));
        let response = answer(Endpoint::Validate, &review_body("CREATE", bad, None));
        assert_eq!(response["allowed"], false);
        assert_eq!(
            response["status"]["message"],
            "the object cannot be read: spec.tfReplicaSpecs.Worker.replicas: invalid type: string \
             \"two\", expected i32; fix that field of the TFJob"
        );
        let mut null_replica = job(json!({}));
        null_replica["spec"]["tfReplicaSpecs"]["PS"] = Value::Null;
        let response = answer(
            Endpoint::Validate,
            &review_body("CREATE", null_replica, None),
        );
        assert_eq!(
            response["status"]["message"],
            "the object cannot be read: spec.tfReplicaSpecs.PS: invalid type: null, expected \
             struct ReplicaSpec; fix that field of the TFJob"
        );
    }

    #[test]
    fn delete_and_status_writes_pass() {
        let bad = job(json!({"metadata": {"name": "1job"}}));
        let response = answer(
            Endpoint::Validate,
            &review_body("DELETE", bad.clone(), None),
        );
        assert_eq!(response["allowed"], true);
        let mut body: Value =
            serde_json::from_slice(&review_body("UPDATE", bad.clone(), Some(bad))).unwrap();
        body["request"]["subResource"] = "status".into();
        let response = answer(Endpoint::Validate, &serde_json::to_vec(&body).unwrap());
        assert_eq!(response["allowed"], true);
    }

    #[test]
    fn another_kind_is_denied_as_a_misconfiguration() {
        let mut body: Value =
            serde_json::from_slice(&review_body("CREATE", job(json!({})), None)).unwrap();
        body["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "Pod"});
        let response = answer(Endpoint::Validate, &serde_json::to_vec(&body).unwrap());
        assert_eq!(response["allowed"], false);
        assert_eq!(
            response["status"]["message"],
            "this webhook reviews only kubeflow.org/v1 TFJobs, not /v1 Pod; fix the rules of the \
             webhook configuration"
        );
    }

    #[test]
    fn malformed_reviews_are_errors_with_a_clear_message() {
        let err = review(Endpoint::Validate, b"{not json", &Placement::default()).unwrap_err();
        assert!(matches!(err, ReviewError::Malformed(_)), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("the body is not an AdmissionReview: "),
            "{err}"
        );

        let err = review(
            Endpoint::Validate,
            br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":null}"#,
            &Placement::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported AdmissionReview \"admission.k8s.io/v1beta1\": this webhook answers only \
             AdmissionReview \"admission.k8s.io/v1\"; set admissionReviewVersions: [v1]"
        );

        let err = review(
            Endpoint::Validate,
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
            &Placement::default(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "the AdmissionReview has no request");

        let mut body: Value =
            serde_json::from_slice(&review_body("CREATE", job(json!({})), None)).unwrap();
        body["request"]["object"] = Value::Null;
        let err = review(
            Endpoint::Validate,
            &serde_json::to_vec(&body).unwrap(),
            &Placement::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the CREATE request 705ab4f5-6393-11e8-b7cc-42010a800002 carries no object"
        );
    }

    #[test]
    fn defaulting_returns_a_json_patch_that_normalises_the_object() {
        let legacy = job(json!({"spec": {
            "backoffLimit": 6,
            "tfReplicaSpecs": {"Worker": null, "Ps": {"template": {"spec": {"containers": [{"name": "tensorflow", "image": "tf"}]}}}}
        }}));
        // (merge patch with null removed Worker: the seed's shape, Ps + legacy backoffLimit)
        let response = answer(
            Endpoint::Mutate,
            &review_body("CREATE", legacy.clone(), None),
        );
        assert_eq!(response["allowed"], true);
        assert_eq!(response["patchType"], "JSONPatch");
        assert!(
            response["patch"].is_string(),
            "base64 text, as Kubernetes sends []byte"
        );
        let ByteString(bytes) = serde_json::from_value(response["patch"].clone()).unwrap();
        let ops: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        let mut patched = legacy;
        json_patch::patch(&mut patched, &ops.0).unwrap();
        assert_eq!(
            patched["spec"],
            json!({
                "runPolicy": {"backoffLimit": 6},
                "tfReplicaSpecs": {"PS": {"template": {"spec": {"containers": [{"name": "tensorflow", "image": "tf"}]}}}}
            })
        );

        // Nothing to change: allowed without a patch.
        let response = answer(
            Endpoint::Mutate,
            &review_body("CREATE", job(json!({})), None),
        );
        assert_eq!(response["allowed"], true);
        assert_eq!(response.get("patch"), None);
        assert_eq!(response.get("patchType"), None);
    }
}
