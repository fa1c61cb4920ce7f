//! The objects every creator makes: one realistic pod template shared by TFJobs, Jobs and the
//! bare client, so the three creators put the same pods into the same apiserver.
//!
//! The bare client's pods and Services are the operator's own children (built by `plan` from a
//! bench TFJob), minus the owner reference: the garbage collector would delete pods whose owner
//! does not exist, adding writes to the phase being measured.

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Service};
use serde_json::{Value, json};
use tfjob_core::api::ServiceMode;
use tfjob_core::api::TFJob;
use tfjob_core::plan::{Observed, PlanConfig, plan};

/// How long simulated containers run in the lifecycle phase: longer than the operator's status
/// batch window (1 s), as real training is, so a lifecycle's writes are not all one batch.
const RUN_MS: &str = "3000";

/// The pod template of every replica: about 1.5 KB of JSON, what a real training job carries
/// (command, args, env, resources, volumes, node selector, tolerations). `index` varies the
/// arguments so no two jobs are byte-identical.
pub fn pod_template(job: &str, index: usize, restart_policy: Option<&str>) -> Value {
    let mut spec = json!({
        "containers": [{
            "name": "tensorflow",
            "image": "registry.example.com/ml/tf-mnist:2.15.0",
            "imagePullPolicy": "IfNotPresent",
            "command": ["python", "/opt/model/train.py"],
            "args": [
                "--epochs=10", "--batch-size=128",
                format!("--learning-rate=0.{:04}", 1 + index % 9999),
                "--data-dir=/data/mnist", format!("--model-dir=/models/{job}")
            ],
            "env": [
                {"name": "OMP_NUM_THREADS", "value": "4"},
                {"name": "TF_CPP_MIN_LOG_LEVEL", "value": "2"},
                {"name": "DATASET", "value": "mnist"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}
            ],
            "resources": {
                "requests": {"cpu": "2", "memory": "4Gi"},
                "limits": {"cpu": "4", "memory": "8Gi"}
            },
            "ports": [{"name": "tfjob-port", "containerPort": 2222}],
            "volumeMounts": [
                {"name": "data", "mountPath": "/data", "readOnly": true},
                {"name": "models", "mountPath": "/models"}
            ]
        }],
        "volumes": [
            {"name": "data", "emptyDir": {}},
            {"name": "models", "emptyDir": {}}
        ],
        "nodeSelector": {"node.kubernetes.io/instance-type": "cpu-large"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "training", "effect": "NoSchedule"}],
        "terminationGracePeriodSeconds": 30
    });
    if let Some(policy) = restart_policy {
        spec["restartPolicy"] = json!(policy);
    }
    json!({
        "metadata": {
            "labels": {"app": "mnist", "team": "research"},
            "annotations": {
                "sim.tfjob-operator.dev/pending-ms": "0",
                "sim.tfjob-operator.dev/run-ms": RUN_MS
            }
        },
        "spec": spec
    })
}

/// A TFJob with `replicas` replicas: 1 PS and `replicas - 1` Workers (a single Worker for 1).
pub fn tfjob(namespace: &str, name: &str, index: usize, replicas: i32) -> TFJob {
    let mut specs = serde_json::Map::new();
    let workers = if replicas > 1 {
        specs.insert(
            "PS".into(),
            json!({"replicas": 1, "restartPolicy": "Never", "template": pod_template(name, index, None)}),
        );
        replicas - 1
    } else {
        1
    };
    specs.insert(
        "Worker".into(),
        json!({"replicas": workers, "restartPolicy": "Never", "template": pod_template(name, index, None)}),
    );
    serde_json::from_value(json!({
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "mnist", "bench": "tfjob-bench"}},
        "spec": {
            "runPolicy": {"cleanPodPolicy": "None", "backoffLimit": 3},
            "tfReplicaSpecs": specs
        }
    }))
    .expect("the bench TFJob is valid")
}

/// A `batch/v1` Job running `replicas` pods of the same template at once.
pub fn job(namespace: &str, name: &str, index: usize, replicas: i32) -> Job {
    serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "mnist", "bench": "tfjob-bench"}},
        "spec": {
            "parallelism": replicas,
            "completions": replicas,
            "backoffLimit": 3,
            "template": pod_template(name, index, Some("Never"))
        }
    }))
    .expect("the bench Job is valid")
}

/// The pods and Services the operator would create for bench TFJob `index` (per-replica mode),
/// without owner references.
pub fn bare_children(namespace: &str, index: usize, replicas: i32) -> (Vec<Pod>, Vec<Service>) {
    let mut job = tfjob(namespace, &format!("bare-{index:05}"), index, replicas);
    job.metadata.uid = Some(format!("00000000-0000-0000-0000-{index:012}"));
    let config = PlanConfig {
        service_mode: ServiceMode::PerReplica,
        ..Default::default()
    };
    let planned = plan(&job, &Observed::default(), Timestamp::now(), &config);
    let mut pods = planned.create_pods;
    let mut services = planned.create_services;
    for pod in &mut pods {
        pod.metadata.owner_references = None;
    }
    for service in &mut services {
        service.metadata.owner_references = None;
    }
    (pods, services)
}

/// `<prefix>-<index>`, zero-padded so names sort in creation order.
pub fn name(prefix: &str, index: usize) -> String {
    format!("{prefix}-{index:05}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_tfjob_is_valid_and_realistically_sized() {
        let job = tfjob("ns", "bench-00001", 1, 4);
        let size = serde_json::to_vec(&job).unwrap().len();
        assert!((2_500..8_000).contains(&size), "{size} bytes");
        let (pods, services) = bare_children("ns", 1, 4);
        assert_eq!((pods.len(), services.len()), (4, 4));
        assert!(pods.iter().all(|p| p.metadata.owner_references.is_none()));
    }
}
