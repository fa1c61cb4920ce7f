//! TF_CONFIG: the cluster description TensorFlow reads to find its peers, in upstream's exact JSON.
//!
//! Standard form: `{"cluster":{<type>:[hosts…]…},"task":{"type":…,"index":…},"environment":"cloud"}`
//! with cluster keys sorted. Sparse form (`enableDynamicWorker`):
//! `{"cluster":{"worker":{"<i>":host},"ps":[…]},"task":{…}}`. Hosts are
//! `<job>-<type>-<i>.<namespace>.svc[.<domain>]:<port>` with one Service per replica, or
//! `<job>-<type>-<i>.<job>.<namespace>.svc[.<domain>]:<port>` with one Service per job.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::api::naming::child_name;
use crate::api::{EffectiveSpec, ReplicaType, ServiceMode};

/// Where TF_CONFIG hosts live.
#[derive(Clone, Copy, Debug)]
pub struct Addressing<'a> {
    pub job_name: &'a str,
    pub namespace: &'a str,
    /// `CUSTOM_CLUSTER_DOMAIN`, e.g. `cluster.local`.
    pub cluster_domain: Option<&'a str>,
    pub service_mode: ServiceMode,
}

impl Addressing<'_> {
    fn host(&self, replica_type: ReplicaType, index: i32, port: i32) -> String {
        let pod = child_name(self.job_name, replica_type, index);
        let mut host = match self.service_mode {
            ServiceMode::PerReplica => format!("{pod}.{}.svc", self.namespace),
            ServiceMode::PerJob => format!("{pod}.{}.{}.svc", self.job_name, self.namespace),
        };
        if let Some(domain) = self.cluster_domain.filter(|d| !d.is_empty()) {
            host.push('.');
            host.push_str(domain);
        }
        format!("{host}:{port}")
    }

    fn hosts(&self, spec: &EffectiveSpec, replica_type: ReplicaType) -> Vec<String> {
        spec.replicas
            .get(&replica_type)
            .map(|r| {
                (0..r.replicas)
                    .map(|i| self.host(replica_type, i, r.port))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Serialize)]
struct Task {
    #[serde(rename = "type")]
    type_: &'static str,
    index: i32,
}

#[derive(Serialize)]
struct Standard {
    cluster: BTreeMap<&'static str, Vec<String>>,
    task: Task,
    environment: &'static str,
}

#[derive(Serialize)]
struct SparseCluster {
    worker: BTreeMap<String, String>,
    ps: Vec<String>,
}

#[derive(Serialize)]
struct Sparse {
    cluster: SparseCluster,
    task: Task,
}

/// Whether the job gets a TF_CONFIG at all: single-pod jobs do not.
pub fn is_distributed(spec: &EffectiveSpec) -> bool {
    spec.total_replicas() != 1
}

/// TF_CONFIG for replica `index` of `replica_type`.
pub fn tf_config_for(
    spec: &EffectiveSpec,
    at: &Addressing<'_>,
    replica_type: ReplicaType,
    index: i32,
) -> String {
    let task = Task {
        type_: replica_type.lower(),
        index,
    };
    let json = if spec.enable_dynamic_worker {
        let mut cluster = SparseCluster {
            worker: BTreeMap::new(),
            ps: Vec::new(),
        };
        match replica_type {
            ReplicaType::Worker => {
                let port = spec
                    .replicas
                    .get(&ReplicaType::Worker)
                    .map_or(0, |r| r.port);
                cluster
                    .worker
                    .insert(index.to_string(), at.host(ReplicaType::Worker, index, port));
                cluster.ps = at.hosts(spec, ReplicaType::PS);
            }
            ReplicaType::PS => {
                let port = spec.replicas.get(&ReplicaType::PS).map_or(0, |r| r.port);
                cluster.ps.push(at.host(ReplicaType::PS, index, port));
            }
            _ => {}
        }
        serde_json::to_string(&Sparse { cluster, task })
    } else {
        let cluster = spec
            .replicas
            .keys()
            .map(|t| (t.lower(), at.hosts(spec, *t)))
            .collect();
        serde_json::to_string(&Standard {
            cluster,
            task,
            environment: "cloud",
        })
    };
    // Serialising plain strings, vectors and maps cannot fail.
    json.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TFJob;

    fn spec(yaml: &str) -> EffectiveSpec {
        let job: TFJob = serde_saphyr::from_str(yaml).unwrap();
        EffectiveSpec::resolve(&job).unwrap()
    }

    const MNIST: &str = r#"
metadata: {name: mnist}
spec:
  tfReplicaSpecs:
    PS: {replicas: 1, template: {spec: {containers: [{name: tensorflow, image: tf}]}}}
    Worker: {replicas: 2, template: {spec: {containers: [{name: tensorflow, image: tf}]}}}
"#;

    fn at(domain: Option<&'static str>, mode: ServiceMode) -> Addressing<'static> {
        Addressing {
            job_name: "mnist",
            namespace: "kubeflow",
            cluster_domain: domain,
            service_mode: mode,
        }
    }

    #[test]
    fn standard_form_matches_upstream_byte_for_byte() {
        assert_eq!(
            tf_config_for(
                &spec(MNIST),
                &at(None, ServiceMode::PerReplica),
                ReplicaType::Worker,
                1
            ),
            r#"{"cluster":{"ps":["mnist-ps-0.kubeflow.svc:2222"],"worker":["mnist-worker-0.kubeflow.svc:2222","mnist-worker-1.kubeflow.svc:2222"]},"task":{"type":"worker","index":1},"environment":"cloud"}"#
        );
    }

    #[test]
    fn custom_cluster_domain_is_appended() {
        assert_eq!(
            tf_config_for(
                &spec(MNIST),
                &at(Some("cluster.local"), ServiceMode::PerReplica),
                ReplicaType::PS,
                0
            ),
            r#"{"cluster":{"ps":["mnist-ps-0.kubeflow.svc.cluster.local:2222"],"worker":["mnist-worker-0.kubeflow.svc.cluster.local:2222","mnist-worker-1.kubeflow.svc.cluster.local:2222"]},"task":{"type":"ps","index":0},"environment":"cloud"}"#
        );
    }

    #[test]
    fn per_job_service_mode_uses_the_job_subdomain() {
        assert_eq!(
            tf_config_for(
                &spec(MNIST),
                &at(None, ServiceMode::PerJob),
                ReplicaType::Worker,
                0
            ),
            r#"{"cluster":{"ps":["mnist-ps-0.mnist.kubeflow.svc:2222"],"worker":["mnist-worker-0.mnist.kubeflow.svc:2222","mnist-worker-1.mnist.kubeflow.svc:2222"]},"task":{"type":"worker","index":0},"environment":"cloud"}"#
        );
    }

    #[test]
    fn all_types_appear_sorted_with_their_own_ports() {
        let s = spec(
            r#"
metadata: {name: cwe}
spec:
  tfReplicaSpecs:
    Worker: {replicas: 1, template: {spec: {containers: [{name: tensorflow, image: tf}]}}}
    Evaluator: {replicas: 1, template: {spec: {containers: [{name: tensorflow, image: tf}]}}}
    Chief:
      template:
        spec:
          containers: [{name: tensorflow, image: tf, ports: [{name: tfjob-port, containerPort: 3000}]}]
"#,
        );
        let at = Addressing {
            job_name: "cwe",
            namespace: "ns",
            cluster_domain: None,
            service_mode: ServiceMode::PerReplica,
        };
        assert_eq!(
            tf_config_for(&s, &at, ReplicaType::Evaluator, 0),
            r#"{"cluster":{"chief":["cwe-chief-0.ns.svc:3000"],"evaluator":["cwe-evaluator-0.ns.svc:2222"],"worker":["cwe-worker-0.ns.svc:2222"]},"task":{"type":"evaluator","index":0},"environment":"cloud"}"#
        );
    }

    #[test]
    fn sparse_form_for_dynamic_workers() {
        let s = spec(&MNIST.replace(
            "spec:\n  tfReplicaSpecs:",
            "spec:\n  enableDynamicWorker: true\n  tfReplicaSpecs:",
        ));
        let at = at(None, ServiceMode::PerReplica);
        assert_eq!(
            tf_config_for(&s, &at, ReplicaType::Worker, 1),
            r#"{"cluster":{"worker":{"1":"mnist-worker-1.kubeflow.svc:2222"},"ps":["mnist-ps-0.kubeflow.svc:2222"]},"task":{"type":"worker","index":1}}"#
        );
        assert_eq!(
            tf_config_for(&s, &at, ReplicaType::PS, 0),
            r#"{"cluster":{"worker":{},"ps":["mnist-ps-0.kubeflow.svc:2222"]},"task":{"type":"ps","index":0}}"#
        );
    }

    #[test]
    fn single_pod_jobs_are_not_distributed() {
        let single = spec(
            "metadata: {name: one}\nspec:\n  tfReplicaSpecs:\n    Worker: {template: {spec: {containers: [{name: tensorflow, image: tf}]}}}\n",
        );
        assert!(!is_distributed(&single));
        assert!(is_distributed(&spec(MNIST)));
    }
}
