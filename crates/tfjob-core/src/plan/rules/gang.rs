//! Gang scheduling: the job's PodGroup, kept in sync while the job runs, holding pod creation
//! until Volcano admits it, and removed when the job finishes or is suspended.
//!
//! Fixes over upstream: the PodGroup is written only when its spec changed (upstream updated
//! it on every reconcile), `minResources` follows real PriorityClass values (upstream's lister
//! was never started, so the order was random), and the termination events are emitted once,
//! when there is a PodGroup to delete (upstream emitted them on every reconcile).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::{Value, json};

use crate::api::podgroup::GangScheduler;
use crate::api::quantity::Amount;
use crate::api::{EffectiveSpec, ReplicaType};
use crate::plan::observe::PodGroupFacts;
use crate::plan::output::{ChildRef, PodGroupAction};

pub const JOB_TERMINATED: &str = "JobTerminated";
pub const JOB_TERMINATED_MESSAGE: &str = "Job has been terminated. Deleting PodGroup";
pub const SET_POD_TEMPLATE_SCHEDULER_NAME: &str = "SetPodTemplateSchedulerName";
pub const POD_TEMPLATE_SCHEDULER_NAME_MESSAGE: &str =
    "Another scheduler is specified when gang-scheduling is enabled and it will not be overwritten";

/// The job a PodGroup belongs to.
#[derive(Clone, Debug)]
pub struct Owner<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub annotations: &'a BTreeMap<String, String>,
    pub reference: OwnerReference,
}

/// What to do with the PodGroup of a running job.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sync {
    pub action: Option<PodGroupAction>,
    /// Volcano has not admitted the PodGroup yet: create no pods.
    pub hold_pods: bool,
}

/// Keeps the PodGroup of a running job in sync with its spec.
pub fn sync(
    gang: &GangScheduler,
    spec: &EffectiveSpec,
    owner: &Owner<'_>,
    observed: Option<&PodGroupFacts>,
    priorities: &BTreeMap<String, i32>,
) -> Sync {
    let observed = observed.filter(|pg| !pg.terminating);
    let desired = desired_spec(gang, spec, observed, priorities);
    let action = match observed {
        None => {
            let (group, version, kind) = gang.pod_group_gvk();
            Some(PodGroupAction::Create(json!({
                "apiVersion": format!("{group}/{version}"),
                "kind": kind,
                "metadata": {
                    "name": owner.name,
                    "namespace": owner.namespace,
                    "annotations": owner.annotations,
                    "ownerReferences": [owner.reference],
                },
                "spec": desired,
            })))
        }
        Some(pg) if !same_spec(&pg.spec, &desired) => Some(PodGroupAction::Update(desired)),
        Some(_) => None,
    };
    Sync {
        action,
        hold_pods: !is_admitted(gang, observed),
    }
}

/// The PodGroup to delete when the job finishes or is suspended (once: only while one exists).
pub fn delete(observed: Option<&PodGroupFacts>) -> Option<PodGroupAction> {
    let pg = observed.filter(|pg| !pg.terminating)?;
    Some(PodGroupAction::Delete(ChildRef {
        name: pg.name.clone(),
        uid: pg.uid.as_ref().map(ToString::to_string),
    }))
}

/// Volcano's phases before admission: pods must not be created yet.
fn is_admitted(gang: &GangScheduler, pod_group: Option<&PodGroupFacts>) -> bool {
    match gang {
        GangScheduler::SchedulerPlugins(_) => true,
        GangScheduler::Volcano => pod_group
            .and_then(|pg| pg.phase.as_deref())
            .is_some_and(|phase| !phase.is_empty() && phase != "Pending"),
    }
}

fn desired_spec(
    gang: &GangScheduler,
    spec: &EffectiveSpec,
    observed: Option<&PodGroupFacts>,
    priorities: &BTreeMap<String, i32>,
) -> Value {
    let policy = spec.scheduling_policy.clone().unwrap_or_default();
    let min_member = policy
        .min_available
        .unwrap_or_else(|| spec.total_replicas());
    let min_resources = policy
        .min_resources
        .clone()
        .unwrap_or_else(|| min_resources(spec, min_member, priorities));
    let mut desired = serde_json::Map::new();
    desired.insert("minMember".into(), json!(min_member));
    if !min_resources.is_empty() {
        desired.insert("minResources".into(), json!(min_resources));
    }
    match gang {
        GangScheduler::Volcano => {
            // A queue already set on the PodGroup (e.g. by an admission tool) wins.
            let existing = observed
                .and_then(|pg| pg.spec.get("queue"))
                .and_then(Value::as_str)
                .filter(|q| !q.is_empty());
            let queue = existing
                .map(str::to_string)
                .or(policy.queue.clone().filter(|q| !q.is_empty()))
                .unwrap_or_else(|| "default".into());
            desired.insert("queue".into(), json!(queue));
            if let Some(priority_class) = policy.priority_class.filter(|p| !p.is_empty()) {
                desired.insert("priorityClassName".into(), json!(priority_class));
            }
        }
        GangScheduler::SchedulerPlugins(_) => {
            if let Some(timeout) = policy.schedule_timeout_seconds {
                desired.insert("scheduleTimeoutSeconds".into(), json!(timeout));
            }
        }
    }
    Value::Object(desired)
}

/// Whether the observed spec already has every desired field with the desired value (fields
/// others add, e.g. Volcano's `minTaskMember`, are not ours to fight over).
fn same_spec(observed: &Value, desired: &Value) -> bool {
    match (observed, desired) {
        (Value::Object(observed), Value::Object(desired)) => desired.iter().all(|(key, want)| {
            observed.get(key).is_some_and(|have| match key.as_str() {
                "minResources" => same_resources(have, want),
                _ => have == want,
            })
        }),
        _ => false,
    }
}

/// Quantities compare by value (`1000m` equals `1`).
fn same_resources(have: &Value, want: &Value) -> bool {
    let parse = |v: &Value| -> Option<BTreeMap<String, Amount>> {
        v.as_object()?
            .iter()
            .map(|(k, q)| Some((k.clone(), Amount::parse(q.as_str()?)?)))
            .collect()
    };
    match (parse(have), parse(want)) {
        (Some(a), Some(b)) => a == b,
        _ => have == want,
    }
}

/// Upstream's default `minResources`: replica types in descending PriorityClass value (unknown
/// classes count 0; ties keep the canonical type order), summing each pod's requests (limits
/// where a container has no requests) until `min_member` pods are counted.
pub fn min_resources(
    spec: &EffectiveSpec,
    min_member: i32,
    priorities: &BTreeMap<String, i32>,
) -> BTreeMap<String, Quantity> {
    let mut types: Vec<(ReplicaType, i32)> = spec
        .replicas
        .iter()
        .map(|(t, r)| {
            let class = r
                .template
                .get()
                .spec
                .and_then(|s| s.priority_class_name)
                .unwrap_or_default();
            (*t, priorities.get(&class).copied().unwrap_or(0))
        })
        .collect();
    types.sort_by_key(|(t, priority)| (std::cmp::Reverse(*priority), *t));

    let mut total: BTreeMap<String, Amount> = BTreeMap::new();
    let mut left = min_member.max(0);
    for (replica_type, _) in types {
        if left == 0 {
            break;
        }
        let replica = &spec.replicas[&replica_type];
        let pods = replica.replicas.clamp(0, left);
        for (name, amount) in pod_resources(&replica.template.get()) {
            let added = amount.saturating_mul(pods);
            let sum = match total.get(&name) {
                Some(sum) => sum.saturating_add(added),
                None => added,
            };
            total.insert(name, sum);
        }
        left -= pods;
    }
    total
        .into_iter()
        .map(|(name, amount)| (name, amount.to_quantity()))
        .collect()
}

/// The resources one pod of `template` asks for (sums saturate: a quantity too large for any
/// node cannot overflow them).
fn pod_resources(template: &PodTemplateSpec) -> BTreeMap<String, Amount> {
    let mut sum: BTreeMap<String, Amount> = BTreeMap::new();
    let containers = template.spec.iter().flat_map(|s| s.containers.iter());
    for container in containers {
        let resources = container.resources.as_ref();
        let asked = resources
            .and_then(|r| r.requests.as_ref())
            .or(resources.and_then(|r| r.limits.as_ref()));
        for (name, quantity) in asked.into_iter().flatten() {
            // A malformed quantity is the apiserver's to reject; it adds nothing here.
            if let Some(amount) = Amount::parse(&quantity.0) {
                let next = match sum.get(name) {
                    Some(total) => total.saturating_add(amount),
                    None => amount,
                };
                sum.insert(name.clone(), next);
            }
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TFJob;

    fn spec(yaml: &str) -> EffectiveSpec {
        let job: TFJob = serde_saphyr::from_str(yaml).unwrap();
        EffectiveSpec::resolve(&job).unwrap()
    }

    const JOB: &str = r#"
metadata: {name: g}
spec:
  tfReplicaSpecs:
    PS:
      replicas: 1
      template:
        spec:
          containers: [{name: tensorflow, image: tf, resources: {limits: {cpu: "1", memory: 1Gi}}}]
    Worker:
      replicas: 3
      template:
        spec:
          priorityClassName: high
          containers:
          - {name: tensorflow, image: tf, resources: {requests: {cpu: 500m, memory: 2Gi, nvidia.com/gpu: "1"}}}
          - {name: sidecar, image: s, resources: {requests: {cpu: 100m}}}
"#;

    fn q(map: &BTreeMap<String, Quantity>) -> BTreeMap<&str, String> {
        map.iter().map(|(k, v)| (k.as_str(), v.0.clone())).collect()
    }

    #[test]
    fn min_resources_sum_requests_in_priority_order() {
        let s = spec(JOB);
        let priorities = BTreeMap::from([("high".to_string(), 1000)]);
        // High-priority workers first: 2 of them fill minMember 2.
        let two = min_resources(&s, 2, &priorities);
        assert_eq!(
            q(&two),
            BTreeMap::from([
                ("cpu", "1200m".to_string()),
                ("memory", "4Gi".to_string()),
                ("nvidia.com/gpu", "2".to_string())
            ])
        );
        // Without priorities the canonical order puts PS first (limits count when no requests).
        let two = min_resources(&s, 2, &BTreeMap::new());
        assert_eq!(q(&two)["memory"], "3Gi");
        let all = min_resources(&s, 4, &priorities);
        assert_eq!(q(&all)["cpu"], "2800m", "Kubernetes' canonical form");
    }

    /// Quantities no node has cannot overflow the sum (rust_decimal panicked with "Addition
    /// overflowed" on two of these): it saturates.
    #[test]
    fn absurd_quantities_saturate_instead_of_panicking() {
        let huge = r#"{cpu: "70000000000000000000000000000"}"#;
        let s = spec(&format!(
            "metadata: {{name: g}}
spec:
  tfReplicaSpecs:
    Worker:
      replicas: 10000
      template:
        spec:
          containers:
          - {{name: tensorflow, image: tf, resources: {{requests: {huge}}}}}
          - {{name: sidecar, image: s, resources: {{requests: {huge}}}}}
"
        ));
        let total = min_resources(&s, i32::MAX, &BTreeMap::new());
        assert_eq!(total["cpu"], Amount::MAX.to_quantity());
    }

    #[test]
    fn spec_comparison_ignores_foreign_fields_and_quantity_spelling() {
        let observed = json!({"minMember": 2, "queue": "q", "minResources": {"cpu": "1000m"}, "minTaskMember": {"worker": 1}});
        assert!(same_spec(
            &observed,
            &json!({"minMember": 2, "queue": "q", "minResources": {"cpu": "1"}})
        ));
        assert!(!same_spec(
            &observed,
            &json!({"minMember": 3, "queue": "q"})
        ));
        assert!(!same_spec(&json!(null), &json!({"minMember": 3})));
    }

    #[test]
    fn volcano_admission_phases() {
        let pg = |phase: Option<&str>| PodGroupFacts {
            name: "g".into(),
            uid: None,
            phase: phase.map(String::from),
            spec: json!({}),
            terminating: false,
        };
        assert!(!is_admitted(&GangScheduler::Volcano, None));
        assert!(!is_admitted(&GangScheduler::Volcano, Some(&pg(None))));
        assert!(!is_admitted(
            &GangScheduler::Volcano,
            Some(&pg(Some("Pending")))
        ));
        assert!(is_admitted(
            &GangScheduler::Volcano,
            Some(&pg(Some("Inqueue")))
        ));
        assert!(is_admitted(
            &GangScheduler::SchedulerPlugins("s".into()),
            None
        ));
    }

    #[test]
    fn pod_group_of_a_running_job() {
        let s = spec(JOB);
        let annotations = BTreeMap::new();
        let owner = Owner {
            name: "g",
            namespace: "ns",
            annotations: &annotations,
            reference: OwnerReference::default(),
        };
        let plugins = GangScheduler::SchedulerPlugins("sp".into());
        let pg = |phase: Option<&str>, spec: Value, terminating: bool| PodGroupFacts {
            name: "g".into(),
            uid: Some("pg-uid".into()),
            phase: phase.map(String::from),
            spec,
            terminating,
        };
        let current = json!({"minMember": 4, "queue": "default",
            "minResources": {"cpu": "2800m", "memory": "7Gi", "nvidia.com/gpu": "3"}});
        // gang, observed PodGroup → action (create/update/none), hold pods
        let cases = [
            (GangScheduler::Volcano, None, Some("create"), true),
            (
                GangScheduler::Volcano,
                Some(pg(None, current.clone(), false)),
                None,
                true,
            ),
            (
                GangScheduler::Volcano,
                Some(pg(Some("Pending"), current.clone(), false)),
                None,
                true,
            ),
            (
                GangScheduler::Volcano,
                Some(pg(Some("Inqueue"), current.clone(), false)),
                None,
                false,
            ),
            (
                GangScheduler::Volcano,
                Some(pg(Some("Running"), json!({"minMember": 1}), false)),
                Some("update"),
                false,
            ),
            (
                GangScheduler::Volcano,
                Some(pg(Some("Running"), current.clone(), true)),
                Some("create"),
                true,
            ),
            (plugins.clone(), None, Some("create"), false),
        ];
        for (gang, observed, want_action, want_hold) in cases {
            let decision = sync(&gang, &s, &owner, observed.as_ref(), &BTreeMap::new());
            let action = decision.action.as_ref().map(|a| match a {
                PodGroupAction::Create(_) => "create",
                PodGroupAction::Update(_) => "update",
                PodGroupAction::Delete(_) => "delete",
            });
            assert_eq!(
                (action, decision.hold_pods),
                (want_action, want_hold),
                "{gang:?} {observed:?}"
            );
        }
        assert_eq!(
            delete(Some(&pg(Some("Running"), json!({}), false))),
            Some(PodGroupAction::Delete(ChildRef {
                name: "g".into(),
                uid: Some("pg-uid".into())
            }))
        );
        assert_eq!(delete(Some(&pg(Some("Running"), json!({}), true))), None);
        assert_eq!(delete(None), None);
    }
}
