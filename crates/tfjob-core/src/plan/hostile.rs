//! `plan` on hostile input: quantities that overflow any fixed-width sum, gang settings, replica
//! counts up to the schema's maximum, restart counts at `i32::MAX`, `completedIndexes` strings
//! that are huge, reversed, repeated or not numbers, pods stuck terminating on lost nodes. The
//! property: no panic, and no more pods than replicas. The suite runs 500 cases; the long run
//! (`TFJOB_PROPERTY_CASES=1000000 cargo test --release -p tfjob-core hostile`)
//! runs a million.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;

use super::observe::{PodFacts, ServiceFacts};
use super::{Observed, PlanConfig, plan};
use crate::api::podgroup::GangScheduler;
use crate::api::{ReplicaType, TFJob};
use crate::test_fixtures::t;

const QUANTITIES: [&str; 10] = [
    "70000000000000000000000000000",
    "7e28",
    "1Ei",
    "9223372036854775807",
    "0.000000001",
    "-1",
    "1e309",
    "abc",
    "500m",
    "",
];
const INDEXES: [&str; 10] = [
    "0-2147483647",
    "5-3",
    "1,1,1,1,1,1,1,1",
    "-1",
    "99999999999",
    "a,b",
    "0-1,0-1,3,7-9999",
    "2147483647",
    ",,,",
    "0,2-4",
];
const TYPES: [&str; 4] = ["PS", "Worker", "Chief", "Evaluator"];
const REPLICAS: [i64; 6] = [0, 1, 3, 9_999, 10_000, 2];
const RESTARTS: [i32; 4] = [0, 1, i32::MAX - 1, i32::MAX];

#[derive(Clone, Debug)]
struct Case {
    types: Vec<(usize, usize, usize)>, // (type, replicas, quantity)
    gang: bool,
    min_resources: usize,
    min_available: i64,
    completed: usize,
    status_restarts: usize,
    pods: Vec<(usize, i32, usize, bool, bool)>, // (type, index, restarts, stuck, lost)
    force: bool,
    dynamic: bool,
    backoff: Option<i32>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(
            (0..TYPES.len(), 0..REPLICAS.len(), 0..QUANTITIES.len()),
            1..4,
        ),
        any::<bool>(),
        0..QUANTITIES.len(),
        prop_oneof![Just(-1i64), Just(0), Just(3), Just(i64::from(i32::MAX))],
        0..INDEXES.len(),
        0..RESTARTS.len(),
        prop::collection::vec(
            (
                0..TYPES.len(),
                -1..12i32,
                0..RESTARTS.len(),
                any::<bool>(),
                any::<bool>(),
            ),
            0..8,
        ),
        (
            any::<bool>(),
            any::<bool>(),
            prop::option::of(prop_oneof![Just(-1), Just(0), Just(i32::MAX)]),
        ),
    )
        .prop_map(
            |(
                types,
                gang,
                min_resources,
                min_available,
                completed,
                status_restarts,
                pods,
                (force, dynamic, backoff),
            )| Case {
                types,
                gang,
                min_resources,
                min_available,
                completed,
                status_restarts,
                pods,
                force,
                dynamic,
                backoff,
            },
        )
}

fn job(case: &Case) -> TFJob {
    let mut specs = serde_json::Map::new();
    for (ty, replicas, quantity) in &case.types {
        let amount = QUANTITIES[*quantity];
        specs.insert(
            TYPES[*ty].into(),
            json!({"replicas": REPLICAS[*replicas], "restartPolicy": "OnFailure", "template": {"spec": {
                "priorityClassName": "high",
                "containers": [{"name": "tensorflow", "image": "tf",
                    "resources": {"requests": {"cpu": amount, "memory": amount, "nvidia.com/gpu": amount}}}]}}}),
        );
    }
    let mut replica_statuses = serde_json::Map::new();
    for (ty, _, _) in &case.types {
        replica_statuses.insert(
            TYPES[*ty].into(),
            json!({"restarts": RESTARTS[case.status_restarts], "completedIndexes": INDEXES[case.completed],
                   "restartedPods": ["u-0", "u-1"]}),
        );
    }
    let mut run_policy = json!({"schedulingPolicy": {
        "minAvailable": case.min_available, "queue": "q", "priorityClass": "high",
        "minResources": {"cpu": QUANTITIES[case.min_resources]}}});
    if let Some(b) = case.backoff {
        run_policy["backoffLimit"] = json!(b);
    }
    serde_json::from_value(json!({
        "apiVersion": "kubeflow.org/v1", "kind": "TFJob",
        "metadata": {"name": "h", "namespace": "ns", "uid": "u"},
        "spec": {"tfReplicaSpecs": specs, "runPolicy": run_policy, "enableDynamicWorker": case.dynamic},
        "status": {"startTime": "2027-01-15T08:00:00Z", "replicaStatuses": replica_statuses,
                   "conditions": [{"type": "Created", "status": "True", "reason": "TFJobCreated"}]},
    }))
    .unwrap_or_else(|e| panic!("the generator builds decodable jobs: {e}"))
}

fn pods(case: &Case) -> Vec<Pod> {
    let mut by_name = BTreeMap::new();
    for (ty, index, restarts, stuck, _) in &case.pods {
        let lower = TYPES[*ty].to_lowercase();
        let name = format!("h-{lower}-{index}");
        let mut pod = json!({
            "metadata": {"name": name, "uid": format!("u-{index}"),
                "labels": {"training.kubeflow.org/replica-type": lower,
                           "training.kubeflow.org/replica-index": index.to_string()}},
            "spec": {"nodeName": format!("node-{index}"), "containers": []},
            "status": {"phase": "Failed", "containerStatuses": [{"name": "tensorflow", "image": "tf",
                "imageID": "", "ready": false, "restartCount": RESTARTS[*restarts],
                "state": {"terminated": {"exitCode": 137}}}]},
        });
        if *stuck {
            pod["metadata"]["deletionTimestamp"] = json!("2027-01-15T07:00:00Z");
        }
        by_name.insert(name, serde_json::from_value::<Pod>(pod).unwrap());
    }
    by_name.into_values().collect()
}

/// Plans `case`; the properties hold or the message says which broke.
fn check(case: &Case) -> Result<(), TestCaseError> {
    let job = job(case);
    let pods = pods(case);
    let facts: Vec<PodFacts> = pods.iter().map(PodFacts::of).collect();
    let lost: Vec<String> = case
        .pods
        .iter()
        .filter(|p| p.4)
        .map(|p| format!("node-{}", p.1))
        .collect();
    let priority_classes: BTreeMap<String, i32> = [("high".to_string(), i32::MAX)].into();
    let config = PlanConfig {
        gang: case.gang.then_some(GangScheduler::Volcano),
        force_delete_stuck: case.force,
        ..Default::default()
    };
    let services: Vec<ServiceFacts> = Vec::new();
    let observed = Observed {
        pods: &facts,
        services: &services,
        pod_group: None,
        priority_classes: Some(&priority_classes),
        notes: &[],
        lost_nodes: &lost,
    };
    let result = plan(&job, &observed, t(100), &config);
    if let Ok(spec) = crate::api::EffectiveSpec::resolve(&job) {
        for replica_type in ReplicaType::ALL {
            let replicas = spec.replicas.get(&replica_type).map_or(0, |r| r.replicas);
            let label = replica_type.lower();
            let planned = result
                .create_pods
                .iter()
                .filter(|p| {
                    p.metadata.labels.as_ref().unwrap()["training.kubeflow.org/replica-type"]
                        == label
                })
                .count();
            prop_assert!(planned <= replicas.max(0) as usize);
        }
    }
    Ok(())
}

fn run(cases: u32) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    let outcome = runner.run(&case(), |case| check(&case));
    eprintln!(
        "hostile plans: {cases} cases in {:.1?}: {}",
        started.elapsed(),
        if outcome.is_ok() {
            "no panic, bounds held"
        } else {
            "FAILED"
        }
    );
    if let Err(error) = outcome {
        panic!("{error}");
    }
}

fn cases_from_env(default: u32) -> u32 {
    std::env::var("TFJOB_PROPERTY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// 500 cases in the suite; `TFJOB_PROPERTY_CASES=1000000` makes it the long run.
#[test]
fn hostile_plans_never_panic() {
    run(cases_from_env(500));
}
