//! The `kubeflow.org/v1` TFJob resource exactly as it travels on the wire.
//!
//! These types are deliberately lenient: enum-like fields are plain strings and every optional
//! field stays optional, so any object the apiserver accepts deserialises and serialises back
//! without losing a field. Interpretation (defaults, canonical replica types, policies) lives in
//! [`crate::api::effective`]; checking lives in [`crate::api::validation`].

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SmallMap;

/// Desired state of a distributed TensorFlow training job.
// Each printcolumn(...) repeats `type_`/`priority`; clippy reads them as one attribute list.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "kubeflow.org",
    version = "v1",
    kind = "TFJob",
    plural = "tfjobs",
    singular = "tfjob",
    namespaced,
    status = "JobStatus",
    derive = "PartialEq",
    doc = "TFJob runs a distributed TensorFlow training job: one pod and headless Service per replica.",
    printcolumn(
        name = "State",
        type_ = "string",
        json_path = ".status.conditions[-1:].type"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    // `-o wide` only (priority 1): upstream's two columns stay the default view.
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Running pods / wanted replicas, all types",
        json_path = ".status.ready",
        priority = "1"
    ),
    printcolumn(
        name = "Restarts",
        type_ = "integer",
        description = "Worker restarts counted against backoffLimit",
        json_path = ".status.replicaStatuses.Worker.restarts",
        priority = "1"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[-1:].reason",
        priority = "1"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.conditions[-1:].message",
        priority = "1"
    ),
    category = "kubeflow",
    category = "all"
)]
#[serde(rename_all = "camelCase")]
pub struct TFJobSpec {
    /// Runtime policies: clean-up, TTL, deadline, back-off, gang scheduling, suspend, managedBy.
    // Schema default `{}` (not upstream's): the apiserver stores `runPolicy: {suspend: false}`
    // when a client leaves it out, as Go clients always send it, so the Kubeflow Python SDK,
    // whose model requires it, can read every TFJob (its list_jobs fails on one without).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {}))]
    pub run_policy: Option<RunPolicy>,

    /// `""` (chief, else worker 0 decides success) or `AllWorkers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_policy: Option<String>,

    /// Replica type (`PS`, `Worker`, `Chief`, `Master`, `Evaluator`; any letter case) to its spec.
    #[serde(default)]
    pub tf_replica_specs: BTreeMap<String, ReplicaSpec>,

    /// Sparse TF_CONFIG; Worker failures do not fail the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_dynamic_worker: Option<bool>,

    /// Legacy layout (tf-operator v1.0, Huawei CCI): honoured when `runPolicy.backoffLimit` is unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_limit: Option<i32>,

    /// Legacy layout: honoured when `runPolicy.cleanPodPolicy` is unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clean_pod_policy: Option<String>,

    /// Legacy layout: honoured when `runPolicy.activeDeadlineSeconds` is unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,

    /// Legacy layout: honoured when `runPolicy.ttlSecondsAfterFinished` is unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<i32>,
}

/// `spec.runPolicy`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunPolicy {
    /// `None` (default), `Running` or `All`: which pods to delete once the job has finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clean_pod_policy: Option<String>,

    /// Delete the TFJob this many seconds after it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<i32>,

    /// Fail the job once it has been active this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,

    /// Number of restarts allowed before the job is marked Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_limit: Option<i32>,

    /// Gang-scheduling knobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_policy: Option<SchedulingPolicy>,

    /// Suspend the job: delete its pods, keep the TFJob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub suspend: Option<bool>,

    /// Unset or `kubeflow.org/training-operator`: this operator reconciles the job;
    /// `kueue.x-k8s.io/multikueue`: it is left alone. Immutable (the apiserver refuses a
    /// change; the webhook also refuses setting or unsetting it, as upstream's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self == oldSelf",
        "message": "spec.runPolicy.managedBy is immutable"
    }]))]
    pub managed_by: Option<String>,
}

/// `spec.runPolicy.schedulingPolicy`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingPolicy {
    /// PodGroup `minMember`; defaults to the total number of replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<i32>,

    /// Volcano queue (immutable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self == oldSelf",
        "message": "spec.runPolicy.schedulingPolicy.queue is immutable"
    }]))]
    pub queue: Option<String>,

    /// PodGroup `minResources`; computed from the replicas' requests when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_resources: Option<BTreeMap<String, Quantity>>,

    /// Volcano PodGroup `priorityClassName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class: Option<String>,

    /// scheduler-plugins PodGroup `scheduleTimeoutSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_timeout_seconds: Option<i32>,
}

/// `spec.tfReplicaSpecs[<type>]`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSpec {
    /// Number of pods of this type (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,

    /// Pod template; its own `spec.restartPolicy` is replaced by `restartPolicy` below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Box<PodTemplateSpec>>,

    /// `Always`, `OnFailure`, `Never` (default) or `ExitCode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
}

/// Observed state of a TFJob, written only through the `/status` subresource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// Ordered by last change; the newest change is last (the `State` column shows it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<JobCondition>,

    /// Per canonical replica type (`PS`, `Worker`, ...).
    #[serde(default, skip_serializing_if = "SmallMap::is_empty")]
    pub replica_statuses: SmallMap<ReplicaStatus>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,

    /// Only written while a Volcano PodGroup waits for admission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconcile_time: Option<Time>,

    /// tfjob-operator extension: running pods / wanted replicas over all types (`3/4`), for
    /// `kubectl get tfjobs -o wide`; changes only with the replica counters beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
}

/// `status.replicaStatuses[<type>]`; zero counters are omitted, as upstream does.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    /// Pods Running and not being deleted.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub active: i32,

    /// Pods Succeeded (including indices that completed earlier and whose pod is gone).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub succeeded: i32,

    /// Pods Failed, plus Running pods being deleted.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: i32,

    /// Deprecated upstream; never set for TFJob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<Box<LabelSelector>>,

    /// Never set for TFJob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,

    /// tfjob-operator extension: restarts of this type's pods that were since replaced
    /// (re-creations plus their in-place restarts), counted against `backoffLimit`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restarts: i32,

    /// tfjob-operator extension: indices that have succeeded, as `batch/v1` Job's
    /// `completedIndexes` (`"0,2-4"`), so a succeeded index is never run again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_indexes: Option<String>,

    /// tfjob-operator extension: UIDs of failed pods whose restart `restarts` already counts
    /// and that are being replaced, so a failed delete or an operator restart never counts one
    /// twice. Emptied once the pods are gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restarted_pods: Vec<String>,

    /// tfjob-operator extension: the most recent failure of a pod of this type (a container
    /// that exited non-zero, or a pod the kubelet failed, e.g. `Evicted`); kept after the pod
    /// is replaced or deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<Box<ReplicaFailure>>,
}

/// How one pod failed: `status.replicaStatuses[<type>].lastFailure`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaFailure {
    /// The pod's name.
    pub pod: String,

    /// The container that failed; absent when the pod failed as a whole (e.g. evicted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,

    /// The container's exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,

    /// `OOMKilled`, `Error`, `Evicted`, `DeadlineExceeded`, … as the kubelet reported it.
    pub reason: String,

    /// The kubelet's message (a container's termination message, an eviction's cause).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    /// When the container finished (absent when the kubelet did not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
}

/// One entry of `status.conditions`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobCondition {
    /// `Created`, `Running`, `Restarting`, `Succeeded`, `Suspended` or `Failed`.
    #[serde(rename = "type")]
    pub type_: String,

    /// `True`, `False` or `Unknown`.
    pub status: String,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<Time>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::EXAMPLES;
    use kube_core::ObjectList;
    use serde_json::Value;

    const SEED_LIST: &str = include_str!("../../../../tests/fixtures/seed_list_response.json");

    #[test]
    fn every_example_round_trips_without_losing_a_field() {
        for (file, yaml) in EXAMPLES {
            let raw: Value = serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{file}: {e}"));
            let job: TFJob = serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{file}: {e}"));
            let serialised = serde_json::to_value(&job).unwrap();
            assert_eq!(
                serialised, raw,
                "{file}: parse -> serialise changed the object"
            );
            let again: TFJob = serde_json::from_value(serialised).unwrap();
            assert_eq!(again, job, "{file}: serialise -> parse changed the object");
        }
    }

    #[test]
    fn seed_list_response_parses_as_a_tfjob_list() {
        let list: ObjectList<TFJob> = serde_json::from_str(SEED_LIST).unwrap();
        assert_eq!(list.items.len(), 1);
        assert_eq!(list.metadata.resource_version.as_deref(), Some("72353810"));
        let job = &list.items[0];
        assert_eq!(job.metadata.name.as_deref(), Some("tfjob-test"));
        assert_eq!(job.metadata.namespace.as_deref(), Some("kube-test"));
        assert_eq!(
            job.spec.backoff_limit,
            Some(6),
            "legacy flat backoffLimit kept"
        );
        let keys: Vec<&str> = job
            .spec
            .tf_replica_specs
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["Ps", "Worker"],
            "keys are kept as written, normalised only in memory"
        );
        let status = job.status.as_ref().unwrap();
        let types: Vec<&str> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Created", "Running"]);
        assert_eq!(status.replica_statuses["PS"].active, 1);
        assert_eq!(status.replica_statuses["Worker"].active, 1);
        assert_eq!(
            status.start_time.as_ref().map(|t| t.0.to_string()),
            Some("2019-07-23T12:38:58Z".to_string())
        );
    }

    #[test]
    fn seed_item_round_trips_byte_for_byte_as_json_value() {
        let raw: Value = serde_json::from_str(SEED_LIST).unwrap();
        let item = raw["items"][0].clone();
        let job: TFJob = serde_json::from_value(item.clone()).unwrap();
        assert_eq!(serde_json::to_value(&job).unwrap(), item);
    }

    #[test]
    fn zero_counters_are_omitted() {
        let status = ReplicaStatus {
            active: 0,
            succeeded: 2,
            failed: 0,
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            r#"{"succeeded":2}"#
        );
        assert_eq!(
            serde_json::to_string(&ReplicaStatus::default()).unwrap(),
            "{}"
        );
    }

    #[test]
    fn times_are_second_precision_rfc3339() {
        let condition = JobCondition {
            type_: "Created".into(),
            status: "True".into(),
            reason: Some("TFJobCreated".into()),
            message: Some("TFJob x is created.".into()),
            last_update_time: Some(Time("2026-11-27T08:00:00.123456Z".parse().unwrap())),
            last_transition_time: Some(Time("2026-11-27T08:00:00Z".parse().unwrap())),
        };
        assert_eq!(
            serde_json::to_string(&condition).unwrap(),
            r#"{"type":"Created","status":"True","reason":"TFJobCreated","message":"TFJob x is created.","lastUpdateTime":"2026-11-27T08:00:00Z","lastTransitionTime":"2026-11-27T08:00:00Z"}"#
        );
    }

    #[test]
    fn status_field_names_match_upstream() {
        let status = JobStatus {
            conditions: vec![],
            replica_statuses: [(
                "Worker".to_string(),
                ReplicaStatus {
                    active: 1,
                    ..Default::default()
                },
            )]
            .into(),
            start_time: Some(Time("2026-01-02T03:04:05Z".parse().unwrap())),
            completion_time: Some(Time("2026-01-02T03:04:06Z".parse().unwrap())),
            last_reconcile_time: Some(Time("2026-01-02T03:04:07Z".parse().unwrap())),
            ready: None,
        };
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            serde_json::json!({
                "replicaStatuses": {"Worker": {"active": 1}},
                "startTime": "2026-01-02T03:04:05Z",
                "completionTime": "2026-01-02T03:04:06Z",
                "lastReconcileTime": "2026-01-02T03:04:07Z",
            })
        );
    }

    #[test]
    fn run_policy_and_spec_field_names_match_upstream() {
        let json = serde_json::json!({
            "runPolicy": {
                "cleanPodPolicy": "All",
                "ttlSecondsAfterFinished": 10,
                "activeDeadlineSeconds": 20,
                "backoffLimit": 3,
                "schedulingPolicy": {
                    "minAvailable": 2,
                    "queue": "q",
                    "minResources": {"cpu": "4"},
                    "priorityClass": "high",
                    "scheduleTimeoutSeconds": 30
                },
                "suspend": true,
                "managedBy": "kueue.x-k8s.io/multikueue"
            },
            "successPolicy": "AllWorkers",
            "enableDynamicWorker": true,
            "tfReplicaSpecs": {"Worker": {"replicas": 2, "restartPolicy": "ExitCode", "template": {}}}
        });
        let spec: TFJobSpec = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(spec.run_policy.as_ref().unwrap().backoff_limit, Some(3));
        assert_eq!(
            spec.run_policy
                .as_ref()
                .unwrap()
                .scheduling_policy
                .as_ref()
                .unwrap()
                .priority_class
                .as_deref(),
            Some("high")
        );
        assert_eq!(serde_json::to_value(&spec).unwrap(), json);
    }
}
