//! The pods and headless Services of a TFJob: names, labels, owner references, TF_CONFIG.
//!
//! Names are deterministic (`<job>-<type>-<index>`, see [`crate::api::naming`]), which is what
//! makes creation idempotent: an operator restarted at any moment can never create a second pod
//! for the same replica.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, Pod, PodSpec, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube_core::ResourceExt;

use super::tf_config::{Addressing, is_distributed, tf_config_for};
use crate::api::constants::{DEFAULT_CONTAINER_NAME, TF_CONFIG_ENV};
use crate::api::naming::{JOB_ROLE_MASTER, LABEL_JOB_ROLE, child_name, job_labels, replica_labels};
use crate::api::podgroup::GangScheduler;
use crate::api::{EffectiveSpec, ReplicaType, ServiceMode, TFJob};

/// Volcano's pod annotations naming the PodGroup and the task.
pub const VOLCANO_GROUP_NAME: &str = "scheduling.k8s.io/group-name";
pub const VOLCANO_TASK_SPEC: &str = "volcano.sh/task-spec";
/// scheduler-plugins' pod label naming the PodGroup.
pub const SCHEDULER_PLUGINS_POD_GROUP: &str = "scheduling.x-k8s.io/pod-group";

/// Everything needed to build a job's children.
pub struct Builder<'a> {
    pub job: &'a TFJob,
    pub spec: &'a EffectiveSpec,
    pub gang: Option<&'a GangScheduler>,
    pub addressing: Addressing<'a>,
}

/// The controller reference every child of `job` carries.
pub fn owner_reference(job: &TFJob) -> OwnerReference {
    OwnerReference {
        api_version: "kubeflow.org/v1".into(),
        kind: "TFJob".into(),
        name: job.name_any(),
        uid: job.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

impl Builder<'_> {
    /// The controller reference every child carries.
    pub fn owner_reference(&self) -> OwnerReference {
        owner_reference(self.job)
    }

    fn job_labels(&self) -> BTreeMap<String, String> {
        job_labels(&self.job.name_any())
    }

    /// The four labels of a replica's pod and Service (the Service's selector).
    fn replica_labels(&self, replica_type: ReplicaType, index: i32) -> BTreeMap<String, String> {
        replica_labels(&self.job.name_any(), replica_type, index)
    }

    /// Chief/Master pods, or worker 0 when there is no chief, carry `job-role=master`.
    fn is_master_role(&self, replica_type: ReplicaType, index: i32) -> bool {
        replica_type.is_chief()
            || (!self.spec.has_chief() && replica_type == ReplicaType::Worker && index == 0)
    }

    /// The pod of replica `index` of `replica_type`, ready to create.
    pub fn pod(&self, replica_type: ReplicaType, index: i32) -> Pod {
        let replica = &self.spec.replicas[&replica_type];
        let template = replica.template.get();
        let template_meta = template.metadata.unwrap_or_default();
        let mut labels = template_meta.labels.unwrap_or_default();
        labels.extend(self.replica_labels(replica_type, index));
        if self.is_master_role(replica_type, index) {
            labels.insert(LABEL_JOB_ROLE.into(), JOB_ROLE_MASTER.into());
        }
        let name = child_name(&self.job.name_any(), replica_type, index);

        let mut spec: PodSpec = template.spec.unwrap_or_default();
        spec.restart_policy = Some(replica.restart_policy.pod_restart_policy().into());
        let mut annotations = template_meta.annotations;
        if let Some(gang) = self.gang {
            // A scheduler the user chose is kept (with a warning event from the planner).
            if spec.scheduler_name.as_deref().is_none_or(str::is_empty) {
                spec.scheduler_name = Some(gang.scheduler_name().into());
            }
            match gang {
                GangScheduler::Volcano => {
                    let annotations = annotations.get_or_insert_with(BTreeMap::new);
                    annotations.insert(VOLCANO_GROUP_NAME.into(), self.job.name_any());
                    annotations.insert(VOLCANO_TASK_SPEC.into(), replica_type.lower().into());
                }
                GangScheduler::SchedulerPlugins(_) => {
                    labels.insert(SCHEDULER_PLUGINS_POD_GROUP.into(), self.job.name_any());
                }
            }
        }
        if self.addressing.service_mode == ServiceMode::PerJob {
            spec.hostname = Some(name.clone());
            spec.subdomain = Some(self.job.name_any());
        }
        if is_distributed(self.spec)
            && let Some(container) = spec
                .containers
                .iter_mut()
                .find(|c| c.name == DEFAULT_CONTAINER_NAME)
        {
            let env = container.env.get_or_insert_with(Vec::new);
            // A TF_CONFIG the user set is theirs to keep (upstream appended a duplicate).
            if !env.iter().any(|e| e.name == TF_CONFIG_ENV) {
                env.push(EnvVar {
                    name: TF_CONFIG_ENV.into(),
                    value: Some(tf_config_for(
                        self.spec,
                        &self.addressing,
                        replica_type,
                        index,
                    )),
                    value_from: None,
                });
            }
        }

        Pod {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: self.job.namespace(),
                labels: Some(labels),
                annotations,
                finalizers: template_meta.finalizers,
                owner_references: Some(vec![self.owner_reference()]),
                ..Default::default()
            },
            spec: Some(spec),
            status: None,
        }
    }

    /// The headless Service of replica `index` (per-replica mode): one port per port of the
    /// type's `tensorflow` container.
    pub fn replica_service(&self, replica_type: ReplicaType, index: i32) -> Service {
        let replica = &self.spec.replicas[&replica_type];
        let ports = replica
            .template
            .get()
            .spec
            .as_ref()
            .and_then(|s| {
                s.containers
                    .iter()
                    .find(|c| c.name == DEFAULT_CONTAINER_NAME)
            })
            .and_then(|c| c.ports.as_ref())
            .map(|ports| {
                ports
                    .iter()
                    .map(|p| ServicePort {
                        name: p.name.clone(),
                        port: p.container_port,
                        ..Default::default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let name = child_name(&self.job.name_any(), replica_type, index);
        self.headless_service(
            name,
            self.replica_labels(replica_type, index),
            Some(ports),
            None,
        )
    }

    /// The job's single headless Service (per-job mode), named after the job: it gives every
    /// pod the DNS name `<pod>.<job>.<ns>.svc`, published before readiness so that peers
    /// resolve each other while TensorFlow starts.
    pub fn job_service(&self) -> Service {
        self.headless_service(self.job.name_any(), self.job_labels(), None, Some(true))
    }

    /// A headless Service selecting the pods with `labels` (and carrying them), owned by the job.
    fn headless_service(
        &self,
        name: String,
        labels: BTreeMap<String, String>,
        ports: Option<Vec<ServicePort>>,
        publish_not_ready_addresses: Option<bool>,
    ) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: self.job.namespace(),
                labels: Some(labels.clone()),
                owner_references: Some(vec![self.owner_reference()]),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some("None".into()),
                selector: Some(labels),
                ports,
                publish_not_ready_addresses,
                ..Default::default()
            }),
            status: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> TFJob {
        let mut job: TFJob = serde_saphyr::from_str(
            r#"
metadata: {name: mnist, namespace: kubeflow, uid: "1234"}
spec:
  tfReplicaSpecs:
    PS:
      template:
        metadata:
          labels: {app: mnist, "training.kubeflow.org/job-name": overridden}
          annotations: {note: kept}
          finalizers: [example.com/keep]
          generateName: dropped-
        spec:
          restartPolicy: Always
          containers:
          - name: tensorflow
            image: tf
            ports: [{name: tfjob-port, containerPort: 2222}, {name: metrics, containerPort: 9090}]
    Worker:
      replicas: 2
      restartPolicy: ExitCode
      template:
        spec:
          containers:
          - {name: sidecar, image: s}
          - {name: tensorflow, image: tf}
"#,
        )
        .unwrap();
        job.metadata.namespace = Some("kubeflow".into());
        job
    }

    fn with_builder<T>(mode: ServiceMode, f: impl FnOnce(&Builder<'_>) -> T) -> T {
        let job = job();
        let spec = EffectiveSpec::resolve(&job).unwrap();
        let builder = Builder {
            job: &job,
            spec: &spec,
            gang: None,
            addressing: Addressing {
                job_name: "mnist",
                namespace: "kubeflow",
                cluster_domain: None,
                service_mode: mode,
            },
        };
        f(&builder)
    }

    #[test]
    fn pods_have_upstreams_name_labels_and_owner() {
        let pod = with_builder(ServiceMode::PerReplica, |b| b.pod(ReplicaType::Worker, 0));
        assert_eq!(pod.metadata.name.as_deref(), Some("mnist-worker-0"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("kubeflow"));
        let labels = pod.metadata.labels.unwrap();
        assert_eq!(
            labels,
            BTreeMap::from([
                (
                    "training.kubeflow.org/job-name".to_string(),
                    "mnist".to_string()
                ),
                (
                    "training.kubeflow.org/job-role".to_string(),
                    "master".to_string()
                ),
                (
                    "training.kubeflow.org/operator-name".to_string(),
                    "tfjob-controller".to_string()
                ),
                (
                    "training.kubeflow.org/replica-index".to_string(),
                    "0".to_string()
                ),
                (
                    "training.kubeflow.org/replica-type".to_string(),
                    "worker".to_string()
                ),
            ])
        );
        let owner = &pod.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (
                owner.api_version.as_str(),
                owner.kind.as_str(),
                owner.name.as_str(),
                owner.uid.as_str()
            ),
            ("kubeflow.org/v1", "TFJob", "mnist", "1234")
        );
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
    }

    #[test]
    fn only_worker_zero_gets_the_master_role_without_a_chief() {
        let pod = with_builder(ServiceMode::PerReplica, |b| b.pod(ReplicaType::Worker, 1));
        assert!(!pod.metadata.labels.unwrap().contains_key(LABEL_JOB_ROLE));
        let pod = with_builder(ServiceMode::PerReplica, |b| b.pod(ReplicaType::PS, 0));
        assert!(!pod.metadata.labels.unwrap().contains_key(LABEL_JOB_ROLE));
    }

    #[test]
    fn template_metadata_is_kept_selectively_and_operator_labels_win() {
        let pod = with_builder(ServiceMode::PerReplica, |b| b.pod(ReplicaType::PS, 0));
        let labels = pod.metadata.labels.unwrap();
        assert_eq!(labels["app"], "mnist");
        assert_eq!(labels["training.kubeflow.org/job-name"], "mnist");
        assert_eq!(pod.metadata.annotations.unwrap()["note"], "kept");
        assert_eq!(pod.metadata.finalizers.unwrap(), ["example.com/keep"]);
        assert_eq!(pod.metadata.generate_name, None);
    }

    #[test]
    fn restart_policy_comes_from_the_replica_spec() {
        let ps = with_builder(ServiceMode::PerReplica, |b| b.pod(ReplicaType::PS, 0));
        assert_eq!(ps.spec.unwrap().restart_policy.as_deref(), Some("Never"));
        let worker = with_builder(ServiceMode::PerReplica, |b| b.pod(ReplicaType::Worker, 0));
        assert_eq!(
            worker.spec.unwrap().restart_policy.as_deref(),
            Some("Never"),
            "ExitCode maps to Never"
        );
    }

    #[test]
    fn tf_config_goes_to_the_tensorflow_container_only() {
        let pod = with_builder(ServiceMode::PerReplica, |b| b.pod(ReplicaType::Worker, 1));
        let spec = pod.spec.unwrap();
        assert_eq!(spec.containers[0].env, None, "the sidecar gets nothing");
        let env = spec.containers[1].env.clone().unwrap();
        assert_eq!(env.len(), 1);
        assert_eq!(env[0].name, "TF_CONFIG");
        assert_eq!(
            env[0].value.as_deref(),
            Some(
                r#"{"cluster":{"ps":["mnist-ps-0.kubeflow.svc:2222"],"worker":["mnist-worker-0.kubeflow.svc:2222","mnist-worker-1.kubeflow.svc:2222"]},"task":{"type":"worker","index":1},"environment":"cloud"}"#
            )
        );
        assert_eq!(spec.hostname, None);
        assert_eq!(spec.subdomain, None);
    }

    #[test]
    fn a_user_tf_config_is_respected() {
        let mut job = job();
        let worker = job.spec.tf_replica_specs.get_mut("Worker").unwrap();
        let containers = &mut worker
            .template
            .as_mut()
            .unwrap()
            .spec
            .as_mut()
            .unwrap()
            .containers;
        containers[1].env = Some(vec![EnvVar {
            name: "TF_CONFIG".into(),
            value: Some("{}".into()),
            value_from: None,
        }]);
        let spec = EffectiveSpec::resolve(&job).unwrap();
        let builder = Builder {
            job: &job,
            spec: &spec,
            gang: None,
            addressing: Addressing {
                job_name: "mnist",
                namespace: "kubeflow",
                cluster_domain: None,
                service_mode: ServiceMode::PerReplica,
            },
        };
        let env = builder.pod(ReplicaType::Worker, 0).spec.unwrap().containers[1]
            .env
            .clone()
            .unwrap();
        assert_eq!(env.len(), 1);
        assert_eq!(env[0].value.as_deref(), Some("{}"));
    }

    #[test]
    fn replica_services_are_headless_with_the_tensorflow_ports() {
        let svc = with_builder(ServiceMode::PerReplica, |b| {
            b.replica_service(ReplicaType::PS, 0)
        });
        assert_eq!(svc.metadata.name.as_deref(), Some("mnist-ps-0"));
        let labels = svc.metadata.labels.clone().unwrap();
        assert!(!labels.contains_key(LABEL_JOB_ROLE));
        assert_eq!(labels.len(), 4);
        let spec = svc.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.selector.unwrap(), labels);
        let ports: Vec<(Option<String>, i32)> = spec
            .ports
            .unwrap()
            .into_iter()
            .map(|p| (p.name, p.port))
            .collect();
        assert_eq!(
            ports,
            [
                (Some("tfjob-port".into()), 2222),
                (Some("metrics".into()), 9090)
            ]
        );
    }

    #[test]
    fn per_job_mode_gives_pods_a_hostname_and_the_job_one_service() {
        let pod = with_builder(ServiceMode::PerJob, |b| b.pod(ReplicaType::Worker, 1));
        let spec = pod.spec.unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("mnist-worker-1"));
        assert_eq!(spec.subdomain.as_deref(), Some("mnist"));
        assert!(
            spec.containers[1].env.as_ref().unwrap()[0]
                .value
                .as_ref()
                .unwrap()
                .contains("mnist-worker-0.mnist.kubeflow.svc:2222")
        );
        let svc = with_builder(ServiceMode::PerJob, |b| b.job_service());
        assert_eq!(svc.metadata.name.as_deref(), Some("mnist"));
        let spec = svc.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        assert_eq!(spec.selector.unwrap().len(), 2);
    }
}
