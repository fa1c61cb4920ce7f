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
use crate::api::{EffectiveSpec, ErrorKind, FieldError, ReplicaType, ServiceMode};

/// Linux's limit on one environment string, `NAME=value` and its NUL (`MAX_ARG_STRLEN`,
/// 32 pages): a longer one makes every exec fail, so the container can never start.
pub const MAX_ENV_STRING: usize = 32 * 4096;

/// The longest TF_CONFIG value that fits: the limit less `TF_CONFIG=` and the NUL.
pub const MAX_TF_CONFIG_LEN: usize = MAX_ENV_STRING - "TF_CONFIG=".len() - 1;

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

/// The length of the longest TF_CONFIG any pod of the job gets, computed without building it
/// (a 10,000-worker job's standard form is half a megabyte). 0 for single-pod jobs.
pub fn longest_len(spec: &EffectiveSpec, at: &Addressing<'_>) -> usize {
    if !is_distributed(spec) {
        return 0;
    }
    if spec.enable_dynamic_worker {
        // Each pod lists itself and the PS: the highest index of each type is the longest.
        return spec
            .replicas
            .iter()
            .filter(|(_, r)| r.replicas > 0)
            .map(|(t, r)| tf_config_for(spec, at, *t, r.replicas - 1).len())
            .max()
            .unwrap_or(0);
    }
    // {"cluster":{"ps":["h0","h1"],"worker":[…]},"task":{"type":"ps","index":1},"environment":"cloud"}
    let mut cluster = 0usize;
    for (t, replica) in &spec.replicas {
        let n = usize::try_from(replica.replicas).unwrap_or(0);
        // Every host is the host of index 0 with its own index's digits instead of "0".
        let base = at.host(*t, 0, replica.port).len() - 1;
        let hosts = n * (base + 2) + digits_sum(replica.replicas) + n.saturating_sub(1);
        cluster += t.lower().len() + 4 + hosts + 1;
    }
    cluster += spec.replicas.len().saturating_sub(1);
    let task = spec
        .replicas
        .iter()
        .filter(|(_, r)| r.replicas > 0)
        .map(|(t, r)| t.lower().len() + digits(r.replicas - 1))
        .max()
        .unwrap_or(0);
    r#"{"cluster":{"#.len()
        + cluster
        + r#"},"task":{"type":""#.len()
        + task
        + r#"","index":"#.len()
        + r#"},"environment":"cloud"}"#.len()
}

/// The validation error of a job whose TF_CONFIG could not be passed to any of its pods.
pub fn check_size(spec: &EffectiveSpec, at: &Addressing<'_>) -> Option<FieldError> {
    let len = longest_len(spec, at);
    (len > MAX_TF_CONFIG_LEN).then(|| FieldError {
        path: "spec.tfReplicaSpecs".into(),
        kind: ErrorKind::Forbidden,
        detail: format!(
            "TF_CONFIG would be {len} bytes, more than the {MAX_TF_CONFIG_LEN} that Linux allows \
             in one environment variable (MAX_ARG_STRLEN), so no pod could start"
        ),
        hint: Some(
            "set spec.enableDynamicWorker: true (each pod then lists only itself and the PS), \
             or use fewer replicas or a shorter job name"
                .into(),
        ),
    })
}

/// Decimal digits of `n` (with its sign).
fn digits(n: i32) -> usize {
    n.to_string().len()
}

/// The total number of decimal digits of `0, 1, …, n - 1`.
fn digits_sum(n: i32) -> usize {
    let n = i64::from(n.max(0));
    let mut total = 0i64;
    let mut low = 0i64;
    let mut high = 10i64;
    let mut width = 1i64;
    while low < n {
        total += (n.min(high) - low) * width;
        low = high;
        high *= 10;
        width += 1;
    }
    usize::try_from(total).unwrap_or(usize::MAX)
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

    /// The computed length is the length of the longest TF_CONFIG actually built.
    #[test]
    fn longest_len_matches_the_built_strings() {
        let shapes = [
            MNIST.to_string(),
            job_with(&[("Worker", 1)], false),
            job_with(&[("Worker", 12), ("PS", 3)], false),
            job_with(&[("Chief", 1), ("Worker", 101), ("Evaluator", 1)], false),
            job_with(&[("Worker", 1000), ("PS", 10)], false),
            job_with(&[("Worker", 11), ("PS", 2)], true),
            job_with(&[("Worker", 0), ("PS", 2)], false),
        ];
        for yaml in shapes {
            let spec = spec(&yaml);
            for (domain, mode) in [
                (None, ServiceMode::PerReplica),
                (Some("cluster.local"), ServiceMode::PerJob),
            ] {
                let at = at(domain, mode);
                let built = spec
                    .replicas
                    .iter()
                    .flat_map(|(t, r)| (0..r.replicas).map(move |i| (*t, i)))
                    .map(|(t, i)| tf_config_for(&spec, &at, t, i).len())
                    .max()
                    .filter(|_| is_distributed(&spec))
                    .unwrap_or(0);
                assert_eq!(longest_len(&spec, &at), built, "{yaml} {mode:?}");
            }
        }
    }

    #[test]
    fn a_tf_config_over_the_exec_limit_is_refused_with_the_fix() {
        let at = at(None, ServiceMode::PerReplica);
        let fits = spec(&job_with(&[("Worker", 2000), ("PS", 1)], false));
        assert!(
            check_size(&fits, &at).is_none(),
            "{}",
            longest_len(&fits, &at)
        );
        let too_big = spec(&job_with(&[("Worker", 3500), ("PS", 1)], false));
        let error = check_size(&too_big, &at).expect("refused");
        assert_eq!(error.path, "spec.tfReplicaSpecs");
        assert!(
            error
                .to_string()
                .starts_with("spec.tfReplicaSpecs: Forbidden: TF_CONFIG would be "),
            "{error}"
        );
        assert!(
            error.explained().contains("enableDynamicWorker: true"),
            "{}",
            error.explained()
        );
        // The sparse form of the same job fits: each worker lists itself and the PS.
        let sparse = spec(&job_with(&[("Worker", 10_000), ("PS", 1)], true));
        assert!(check_size(&sparse, &at).is_none());
        assert_eq!(digits_sum(0), 0);
        assert_eq!(digits_sum(10), 10);
        assert_eq!(digits_sum(11), 12);
        assert_eq!(digits_sum(101), 10 + 180 + 3);
    }

    fn job_with(replicas: &[(&str, i32)], dynamic: bool) -> String {
        let mut yaml = format!(
            "metadata: {{name: mnist}}\nspec:\n  enableDynamicWorker: {dynamic}\n  tfReplicaSpecs:\n"
        );
        for (t, n) in replicas {
            yaml.push_str(&format!(
                "    {t}: {{replicas: {n}, template: {{spec: {{containers: [{{name: tensorflow, image: tf}}]}}}}}}\n"
            ));
        }
        yaml
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
