//! The spec the operator acts on: validated, with upstream's defaults applied in memory.
//!
//! Upstream never writes defaults back to the user's spec (there is no mutating webhook), so
//! neither do we: [`EffectiveSpec::resolve`] builds a separate value with canonical replica types,
//! `replicas: 1`, `restartPolicy: Never`, `cleanPodPolicy: None`, the `tfjob-port` on the
//! `tensorflow` container, and the legacy flat fields folded into the run policy.

use litemap::LiteMap;

use k8s_openapi::api::core::v1::{ContainerPort, PodTemplateSpec};

use super::constants::{
    DEFAULT_CONTAINER_NAME, DEFAULT_PORT, DEFAULT_PORT_NAME, MANAGED_BY_TRAINING_OPERATOR,
};
use super::policy::{CleanPodPolicy, RestartPolicy, SuccessPolicy};
use super::replica_type::ReplicaType;
use super::template::CompactTemplate;
use super::types::{ReplicaSpec, SchedulingPolicy, TFJob, TFJobSpec};
use super::validation::{ValidationError, validate};

/// A replica type's spec after defaulting.
#[derive(Clone, Debug, PartialEq)]
pub struct EffectiveReplica {
    pub replicas: i32,
    pub restart_policy: RestartPolicy,
    /// The template with the `tfjob-port` added to the `tensorflow` container when missing,
    /// kept compact: `template.get()` decodes it (only building children needs it).
    pub template: CompactTemplate,
    /// `containerPort` of the `tfjob-port` port of the `tensorflow` container.
    pub port: i32,
}

/// A TFJob spec after validation and defaulting.
#[derive(Clone, Debug, PartialEq)]
pub struct EffectiveSpec {
    /// Ordered Chief, Evaluator, Master, PS, Worker (upstream's status-pass order).
    pub replicas: LiteMap<ReplicaType, EffectiveReplica>,
    pub success_policy: SuccessPolicy,
    pub enable_dynamic_worker: bool,
    pub clean_pod_policy: CleanPodPolicy,
    pub ttl_seconds_after_finished: Option<i32>,
    pub active_deadline_seconds: Option<i64>,
    pub backoff_limit: Option<i32>,
    pub scheduling_policy: Option<SchedulingPolicy>,
    pub suspend: bool,
    /// The job's `tfjob-operator.dev/pending-deadline` annotation.
    pub pending_deadline: Option<std::time::Duration>,
}

impl EffectiveSpec {
    /// Validates `job` and applies the defaults; the error lists every problem.
    pub fn resolve(job: &TFJob) -> Result<EffectiveSpec, ValidationError> {
        validate(job)?;
        let mut spec = Self::defaulted(&job.spec);
        spec.pending_deadline = super::annotations::pending_deadline(job).and_then(Result::ok);
        Ok(spec)
    }

    /// Applies defaults to a spec that passed validation. Anything validation rejects is
    /// skipped here rather than trusted, so this never panics.
    fn defaulted(spec: &TFJobSpec) -> EffectiveSpec {
        let policy = spec.run_policy.clone().unwrap_or_default();
        let mut replicas: LiteMap<ReplicaType, EffectiveReplica> = spec
            .tf_replica_specs
            .iter()
            .filter_map(|(key, replica)| {
                Some((ReplicaType::from_key(key)?, default_replica(replica)))
            })
            .collect();
        // Replica types usually share one template: keep its text once.
        let mut seen: Vec<CompactTemplate> = Vec::new();
        for (_, replica) in replicas.iter_mut() {
            match seen.iter().find(|t| **t == replica.template) {
                Some(shared) => replica.template.dedup(shared),
                None => seen.push(replica.template.clone()),
            }
        }
        let legacy_clean = CleanPodPolicy::parse(spec.clean_pod_policy.as_deref()).flatten();
        let clean_pod_policy = CleanPodPolicy::parse(policy.clean_pod_policy.as_deref())
            .flatten()
            .or(legacy_clean)
            .unwrap_or_default();
        EffectiveSpec {
            replicas,
            success_policy: SuccessPolicy::parse(spec.success_policy.as_deref())
                .unwrap_or_default(),
            enable_dynamic_worker: spec.enable_dynamic_worker.unwrap_or(false),
            clean_pod_policy,
            ttl_seconds_after_finished: policy
                .ttl_seconds_after_finished
                .or(spec.ttl_seconds_after_finished),
            active_deadline_seconds: policy
                .active_deadline_seconds
                .or(spec.active_deadline_seconds),
            backoff_limit: policy.backoff_limit.or(spec.backoff_limit),
            scheduling_policy: policy.scheduling_policy,
            suspend: policy.suspend.unwrap_or(false),
            pending_deadline: None,
        }
    }

    /// Whether a Chief or Master type exists (it then alone decides success).
    pub fn has_chief(&self) -> bool {
        self.replicas.keys().any(|t| t.is_chief())
    }

    /// Σ replicas over all types.
    pub fn total_replicas(&self) -> i32 {
        self.replicas.values().map(|r| r.replicas).sum()
    }
}

/// Whether this operator is responsible for the job (Kueue's MultiKueue takes over otherwise).
/// Any other value is left alone too: it names a controller that is not us.
pub fn is_managed_by_this_operator(job: &TFJob) -> bool {
    match job
        .spec
        .run_policy
        .as_ref()
        .and_then(|p| p.managed_by.as_deref())
    {
        None | Some("") => true,
        Some(value) => value == MANAGED_BY_TRAINING_OPERATOR,
    }
}

fn default_replica(replica: &ReplicaSpec) -> EffectiveReplica {
    let mut template = replica.template.clone().unwrap_or_default();
    let port = ensure_default_port(&mut template);
    EffectiveReplica {
        replicas: replica.replicas.unwrap_or(1),
        restart_policy: RestartPolicy::parse(replica.restart_policy.as_deref()).unwrap_or_default(),
        template: CompactTemplate::new(&template),
        port,
    }
}

/// Adds `tfjob-port: 2222` to the `tensorflow` container (or the first container) unless a
/// port of that name exists, and returns the port number in use.
fn ensure_default_port(template: &mut PodTemplateSpec) -> i32 {
    let Some(spec) = template.spec.as_mut() else {
        return DEFAULT_PORT;
    };
    let index = spec
        .containers
        .iter()
        .position(|c| c.name == DEFAULT_CONTAINER_NAME)
        .unwrap_or(0);
    let Some(container) = spec.containers.get_mut(index) else {
        return DEFAULT_PORT;
    };
    let ports = container.ports.get_or_insert_with(Vec::new);
    if let Some(port) = ports
        .iter()
        .find(|p| p.name.as_deref() == Some(DEFAULT_PORT_NAME))
    {
        return port.container_port;
    }
    ports.push(ContainerPort {
        name: Some(DEFAULT_PORT_NAME.into()),
        container_port: DEFAULT_PORT,
        ..Default::default()
    });
    DEFAULT_PORT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(yaml: &str) -> TFJob {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn resolve(yaml: &str) -> EffectiveSpec {
        EffectiveSpec::resolve(&job(yaml)).unwrap()
    }

    const MINIMAL: &str = r#"
apiVersion: kubeflow.org/v1
kind: TFJob
metadata: {name: mini, namespace: ns}
spec:
  tfReplicaSpecs:
    worker:
      template:
        spec:
          containers: [{name: tensorflow, image: tf}]
"#;

    #[test]
    fn replicas_default_to_one_and_restart_policy_to_never() {
        let spec = resolve(MINIMAL);
        let worker = &spec.replicas[&ReplicaType::Worker];
        assert_eq!(worker.replicas, 1);
        assert_eq!(worker.restart_policy, RestartPolicy::Never);
    }

    #[test]
    fn keys_are_normalised_in_memory_only() {
        let original = job(MINIMAL);
        let spec = EffectiveSpec::resolve(&original).unwrap();
        assert_eq!(
            spec.replicas.keys().copied().collect::<Vec<_>>(),
            [ReplicaType::Worker]
        );
        assert!(
            original.spec.tf_replica_specs.contains_key("worker"),
            "the spec itself is untouched"
        );
    }

    #[test]
    fn clean_pod_policy_defaults_to_none_and_success_policy_to_default() {
        let spec = resolve(MINIMAL);
        assert_eq!(spec.clean_pod_policy, CleanPodPolicy::None);
        assert_eq!(spec.success_policy, SuccessPolicy::Default);
        assert!(!spec.suspend);
        assert!(!spec.enable_dynamic_worker);
        assert_eq!(spec.backoff_limit, None);
        assert_eq!(spec.active_deadline_seconds, None);
        assert_eq!(spec.ttl_seconds_after_finished, None);
    }

    #[test]
    fn default_port_is_added_to_the_tensorflow_container() {
        let spec = resolve(MINIMAL);
        let worker = &spec.replicas[&ReplicaType::Worker];
        assert_eq!(worker.port, 2222);
        let ports = worker.template.get().spec.unwrap().containers[0]
            .ports
            .clone()
            .unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].name.as_deref(), Some("tfjob-port"));
        assert_eq!(ports[0].container_port, 2222);
        assert_eq!(
            ports[0].protocol, None,
            "protocol left to the API default (TCP)"
        );
    }

    #[test]
    fn an_existing_tfjob_port_is_kept() {
        let spec = resolve(
            r#"
metadata: {name: p}
spec:
  tfReplicaSpecs:
    PS:
      template:
        spec:
          containers:
          - name: sidecar
            image: s
          - name: tensorflow
            image: tf
            ports: [{name: metrics, containerPort: 9090}, {name: tfjob-port, containerPort: 3333}]
"#,
        );
        let ps = &spec.replicas[&ReplicaType::PS];
        assert_eq!(ps.port, 3333);
        let containers = &ps.template.get().spec.unwrap().containers;
        assert_eq!(
            containers[0].ports, None,
            "only the tensorflow container gets the port"
        );
        assert_eq!(containers[1].ports.as_ref().unwrap().len(), 2);
    }

    #[test]
    fn legacy_flat_fields_fill_unset_run_policy_fields() {
        let spec = resolve(
            r#"
metadata: {name: legacy}
spec:
  backoffLimit: 6
  cleanPodPolicy: Running
  activeDeadlineSeconds: 600
  ttlSecondsAfterFinished: 60
  tfReplicaSpecs:
    Worker: {template: {spec: {containers: [{name: tensorflow, image: tf}]}}}
"#,
        );
        assert_eq!(spec.backoff_limit, Some(6));
        assert_eq!(spec.clean_pod_policy, CleanPodPolicy::Running);
        assert_eq!(spec.active_deadline_seconds, Some(600));
        assert_eq!(spec.ttl_seconds_after_finished, Some(60));
    }

    #[test]
    fn run_policy_wins_when_both_layouts_agree() {
        let spec = resolve(
            r#"
metadata: {name: both}
spec:
  backoffLimit: 2
  runPolicy: {backoffLimit: 2, cleanPodPolicy: All, suspend: true}
  tfReplicaSpecs:
    Worker: {template: {spec: {containers: [{name: tensorflow, image: tf}]}}}
"#,
        );
        assert_eq!(spec.backoff_limit, Some(2));
        assert_eq!(spec.clean_pod_policy, CleanPodPolicy::All);
        assert!(spec.suspend);
    }

    #[test]
    fn seed_example_resolves() {
        let seed = job(include_str!("../../../../examples/tfjob-seed.yaml"));
        let spec = EffectiveSpec::resolve(&seed).unwrap();
        assert_eq!(
            spec.replicas.keys().copied().collect::<Vec<_>>(),
            [ReplicaType::PS, ReplicaType::Worker]
        );
        assert_eq!(spec.backoff_limit, Some(6));
        assert_eq!(spec.total_replicas(), 2);
        assert!(!spec.has_chief());
        assert_eq!(
            spec.replicas[&ReplicaType::PS].restart_policy,
            RestartPolicy::Never
        );
    }

    #[test]
    fn managed_by_hand_off() {
        let mut j = job(MINIMAL);
        assert!(is_managed_by_this_operator(&j));
        j.spec.run_policy = Some(super::super::types::RunPolicy {
            managed_by: Some("kubeflow.org/training-operator".into()),
            ..Default::default()
        });
        assert!(is_managed_by_this_operator(&j));
        j.spec.run_policy.as_mut().unwrap().managed_by = Some("kueue.x-k8s.io/multikueue".into());
        assert!(!is_managed_by_this_operator(&j));
        j.spec.run_policy.as_mut().unwrap().managed_by = Some(String::new());
        assert!(is_managed_by_this_operator(&j));
    }

    #[test]
    fn chief_and_totals() {
        let spec = EffectiveSpec::resolve(&job(include_str!(
            "../../../../examples/chief-worker-evaluator.yaml"
        )))
        .unwrap();
        assert!(spec.has_chief());
        assert_eq!(spec.total_replicas(), 4);
    }
}
