//! Property tests of `plan` over arbitrary specs and pod states: it never panics, never plans
//! more pods than replicas, never names a child over 63 characters, and Failed stays terminal.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use proptest::prelude::*;
use serde_json::json;

use super::conditions;
use super::observe::{PodFacts, ServiceFacts};
use super::{PlanConfig, plan};
use crate::api::ServiceMode;
use crate::api::{ReplicaType, TFJob};
use crate::test_fixtures::t;

const POLICIES: [&str; 5] = ["Always", "OnFailure", "Never", "ExitCode", "Bogus"];
const PHASES: [&str; 5] = ["Pending", "Running", "Succeeded", "Failed", "Unknown"];
const KEYS: [&str; 7] = [
    "PS",
    "worker",
    "Chief",
    "Master",
    "Evaluator",
    "Foo",
    "Worker",
];

#[derive(Debug, Clone)]
struct PodState {
    key: usize,
    index: i32,
    phase: usize,
    exit_code: i32,
    restarts: i32,
    terminating: bool,
}

fn replica_spec() -> impl Strategy<Value = (i32, usize)> {
    (-1..5i32, 0..POLICIES.len())
}

fn pod_state() -> impl Strategy<Value = PodState> {
    (
        0..KEYS.len(),
        0..7i32,
        0..PHASES.len(),
        prop_oneof![Just(0), Just(1), Just(137), Just(255)],
        0..4i32,
        any::<bool>(),
    )
        .prop_map(
            |(key, index, phase, exit_code, restarts, terminating)| PodState {
                key,
                index,
                phase,
                exit_code,
                restarts,
                terminating,
            },
        )
}

fn build_job(
    name_len: usize,
    specs: &BTreeMap<usize, (i32, usize)>,
    backoff: Option<i32>,
    failed: bool,
    suspend: bool,
    deadline: Option<i64>,
) -> TFJob {
    let replica_specs: serde_json::Map<String, serde_json::Value> = specs
        .iter()
        .map(|(key, (replicas, policy))| {
            (
                KEYS[*key].to_string(),
                json!({"replicas": replicas, "restartPolicy": POLICIES[*policy],
                       "template": {"spec": {"containers": [{"name": "tensorflow", "image": "tf"}]}}}),
            )
        })
        .collect();
    let mut value = json!({
        "apiVersion": "kubeflow.org/v1", "kind": "TFJob",
        "metadata": {"name": "j".repeat(name_len), "namespace": "ns", "uid": "u"},
        "spec": {"tfReplicaSpecs": replica_specs, "runPolicy": {"suspend": suspend}},
    });
    if let Some(b) = backoff {
        value["spec"]["runPolicy"]["backoffLimit"] = json!(b);
    }
    if let Some(d) = deadline {
        value["spec"]["runPolicy"]["activeDeadlineSeconds"] = json!(d);
    }
    if failed {
        value["status"] = json!({"conditions": [
            {"type": "Created", "status": "True", "reason": "TFJobCreated"},
            {"type": "Failed", "status": "True", "reason": "TFJobFailed"}],
            "startTime": "2027-01-15T08:00:00Z"});
    } else {
        value["status"] = json!({"startTime": "2027-01-15T08:00:00Z"});
    }
    serde_json::from_value(value).unwrap()
}

fn build_pod(job_name: &str, state: &PodState) -> Pod {
    let lower = KEYS[state.key].to_lowercase();
    let mut value = json!({
        "metadata": {"name": format!("{job_name}-{lower}-{}", state.index), "uid": format!("{lower}-{}", state.index),
                     "labels": {"training.kubeflow.org/replica-type": lower, "training.kubeflow.org/replica-index": state.index.to_string()}},
        "status": {"phase": PHASES[state.phase], "containerStatuses": [{"name": "tensorflow", "image": "tf", "imageID": "", "ready": false,
                   "restartCount": state.restarts, "state": {"terminated": {"exitCode": state.exit_code}}}]},
    });
    if state.terminating {
        value["metadata"]["deletionTimestamp"] = json!("2027-01-15T08:00:01Z");
    }
    serde_json::from_value(value).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn plans_stay_within_bounds(
        name_len in 1usize..62,
        specs in prop::collection::btree_map(0..KEYS.len(), replica_spec(), 0..4),
        pods in prop::collection::vec(pod_state(), 0..12),
        backoff in prop::option::of(-1..4i32),
        deadline in prop::option::of(-1..100i64),
        failed in any::<bool>(),
        suspend in any::<bool>(),
        per_job in any::<bool>(),
        now in 0..200i64,
    ) {
        let job = build_job(name_len, &specs, backoff, failed, suspend, deadline);
        let name = "j".repeat(name_len);
        // One pod per name, as the apiserver guarantees.
        let mut by_name: BTreeMap<String, Arc<Pod>> = BTreeMap::new();
        for state in &pods {
            let pod = build_pod(&name, state);
            by_name.insert(pod.metadata.name.clone().unwrap(), Arc::new(pod));
        }
        let pods: Vec<Arc<Pod>> = by_name.into_values().collect();
        let facts: Vec<PodFacts> = pods.iter().map(|p| PodFacts::of(p)).collect();
        let services: Vec<ServiceFacts> = vec![];
        let config = PlanConfig {
            cluster_domain: None,
            service_mode: if per_job { ServiceMode::PerJob } else { ServiceMode::PerReplica },
            gang: None,
            ..Default::default()
        };
        let observed = super::Observed { pods: &facts, services: &services, pod_group: None, priority_classes: None, notes: &[], lost_nodes: &[] };
        let result = plan(&job, &observed, t(now), &config);

        for child in result.create_pods.iter().map(|p| &p.metadata).chain(result.create_services.iter().map(|s| &s.metadata)) {
            let child_name = child.name.clone().unwrap();
            prop_assert!(child_name.len() <= 63, "child name too long: {child_name}");
        }
        // Never more pods than replicas, and never a second pod for an index.
        let effective = crate::api::EffectiveSpec::resolve(&job);
        for created in &result.create_pods {
            let created_name = created.metadata.name.clone().unwrap();
            prop_assert!(pods.iter().all(|p| p.metadata.name.as_deref() != Some(created_name.as_str())), "{created_name} exists");
        }
        let final_status = result.status.clone().or(job.status.clone()).unwrap_or_default();
        let running = !conditions::is_finished(&final_status.conditions);
        if let Ok(spec) = &effective {
            for replica_type in ReplicaType::ALL {
                let replicas = spec.replicas.get(&replica_type).map_or(0, |r| r.replicas);
                let label = replica_type.lower();
                let planned = result.create_pods.iter().filter(|p| p.metadata.labels.as_ref().unwrap()["training.kubeflow.org/replica-type"] == label).count();
                let deleted: Vec<&str> = result.delete_pods.iter().map(|d| d.name.as_str()).collect();
                let kept = pods.iter().filter(|p| {
                    p.metadata.labels.as_ref().unwrap()["training.kubeflow.org/replica-type"] == label
                        && !deleted.contains(&p.metadata.name.as_deref().unwrap())
                        && p.metadata.deletion_timestamp.is_none()
                }).count();
                prop_assert!(planned <= replicas.max(0) as usize, "{label}: {planned} planned > {replicas}");
                if running {
                    prop_assert!(planned + kept <= replicas.max(0) as usize, "{label}: {planned} planned + {kept} kept > {replicas}");
                }
            }
        } else {
            prop_assert!(result.create_pods.is_empty() && result.delete_pods.is_empty(), "invalid jobs touch nothing");
        }
        if failed {
            prop_assert!(result.create_pods.is_empty(), "a Failed job starts nothing");
            let status = result.status.clone().or(job.status.clone()).unwrap();
            prop_assert!(conditions::is_true(&status.conditions, conditions::FAILED), "Failed stays terminal");
            prop_assert_eq!(status.conditions, job.status.clone().unwrap().conditions);
        }
    }
}
