//! A tiny in-memory cluster that applies plans the way the apiserver and the shell would.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus, Pod,
    PodStatus, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube_core::ResourceExt;

use crate::api::{JobStatus, TFJob};
use crate::plan::coalesce::{Batching, Held, coalesce};
use crate::plan::observe::{PodFacts, PodGroupFacts, ServiceFacts};
use crate::plan::{Observed, Plan, PlanConfig, PodGroupAction, plan};
use crate::test_fixtures::job;

/// A tiny in-memory cluster: applies plans the way the apiserver and the shell would, so tests
/// can walk a job through its lifecycle pass by pass.
pub struct World {
    pub job: TFJob,
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    pub config: PlanConfig,
    /// The job's PodGroup (gang scheduling), as the apiserver holds it.
    pub pod_group: Option<PodGroupFacts>,
    pub job_deleted: bool,
    /// What the shell would report about the job (see `Observed::notes`).
    pub notes: Vec<String>,
    /// Nodes the shell would report lost (see `Observed::lost_nodes`).
    pub lost_nodes: Vec<String>,
    next_uid: u32,
}

impl World {
    pub fn new(yaml: &str) -> World {
        World {
            job: job(yaml),
            pods: vec![],
            services: vec![],
            config: PlanConfig::default(),
            pod_group: None,
            job_deleted: false,
            notes: Vec::new(),
            lost_nodes: Vec::new(),
            next_uid: 0,
        }
    }

    pub fn plan(&self, now: Timestamp) -> Plan {
        let pods: Vec<PodFacts> = self.pods.iter().map(PodFacts::of).collect();
        let services: Vec<ServiceFacts> = self.services.iter().map(ServiceFacts::of).collect();
        let observed = Observed {
            pods: &pods,
            services: &services,
            pod_group: self.pod_group.as_ref(),
            priority_classes: None,
            notes: &self.notes,
            lost_nodes: &self.lost_nodes,
        };
        plan(&self.job, &observed, now, &self.config)
    }

    /// Plans and applies one pass; returns the plan.
    pub fn step(&mut self, now: Timestamp) -> Plan {
        let plan = self.plan(now);
        self.apply(plan)
    }

    /// Plans one pass and applies it the way the shell does with a status batch `window`:
    /// plans from the held status if any, and writes only what [`coalesce`] lets through.
    /// Returns the plan as applied.
    pub fn step_coalesced(
        &mut self,
        now: Timestamp,
        window: Duration,
        held: &mut Option<Held>,
    ) -> Plan {
        let stored = self.job.status.clone().unwrap_or_default();
        if let Some(held) = held.as_ref() {
            self.job.status = Some(held.status.clone());
        }
        let mut plan = self.plan(now);
        self.job.status = Some(stored.clone()).filter(|s| *s != JobStatus::default());
        let batching = Batching {
            now,
            window,
            others_creating: false,
        };
        *held = coalesce(&mut plan, &stored, held.take(), batching);
        self.apply(plan)
    }

    /// Applies a plan as the apiserver would; returns it.
    pub fn apply(&mut self, plan: Plan) -> Plan {
        for pod in &plan.create_pods {
            let mut pod = pod.clone();
            pod.metadata.uid = Some(self.uid());
            pod.status = Some(PodStatus {
                phase: Some("Pending".into()),
                ..Default::default()
            });
            assert!(
                self.pods.iter().all(|p| p.name_any() != pod.name_any()),
                "duplicate pod {}",
                pod.name_any()
            );
            self.pods.push(pod);
        }
        for service in &plan.create_services {
            let mut service = service.clone();
            service.metadata.uid = Some(self.uid());
            assert!(
                self.services
                    .iter()
                    .all(|s| s.name_any() != service.name_any()),
                "duplicate service"
            );
            self.services.push(service);
        }
        // Deletion of unscheduled or finished pods is immediate in Kubernetes.
        self.pods
            .retain(|p| !plan.delete_pods.iter().any(|d| d.name == p.name_any()));
        self.services
            .retain(|s| !plan.delete_services.iter().any(|d| d.name == s.name_any()));
        match &plan.pod_group {
            Some(PodGroupAction::Create(object)) => {
                let uid = self.uid();
                self.pod_group = Some(PodGroupFacts {
                    name: object["metadata"]["name"].as_str().unwrap().into(),
                    uid: Some(uid.into()),
                    phase: None,
                    spec: object["spec"].clone(),
                    terminating: false,
                });
            }
            Some(PodGroupAction::Update(spec)) => {
                self.pod_group.as_mut().unwrap().spec = spec.clone()
            }
            Some(PodGroupAction::Delete(_)) => self.pod_group = None,
            None => {}
        }
        if let Some(status) = &plan.status {
            self.job.status = Some(status.clone());
        }
        self.job_deleted |= plan.delete_job;
        plan
    }

    fn uid(&mut self) -> String {
        self.next_uid += 1;
        format!("uid-{}", self.next_uid)
    }

    pub fn pod_mut(&mut self, name: &str) -> &mut Pod {
        self.pods
            .iter_mut()
            .find(|p| p.name_any() == name)
            .unwrap_or_else(|| panic!("no pod {name}"))
    }

    /// Moves a pod to Running.
    pub fn run(&mut self, name: &str) {
        set_state(self.pod_mut(name), "Running", None, 0);
    }

    /// The pod's `tensorflow` container exited with `code`; the phase follows like a kubelet
    /// with restartPolicy Never (0 → Succeeded, else Failed).
    pub fn exit(&mut self, name: &str, code: i32) {
        let phase = if code == 0 { "Succeeded" } else { "Failed" };
        set_state(self.pod_mut(name), phase, Some(code), 0);
    }

    /// Sets the phase and exit code, with `restarts` in-place restarts.
    pub fn set(&mut self, name: &str, phase: &str, code: Option<i32>, restarts: i32) {
        set_state(self.pod_mut(name), phase, code, restarts);
    }

    /// Starts a graceful deletion (a user's `kubectl delete pod`, an eviction).
    pub fn start_deleting(&mut self, name: &str, now: Timestamp) {
        self.pod_mut(name).metadata.deletion_timestamp = Some(Time(now));
    }

    pub fn remove_pod(&mut self, name: &str) {
        self.pods.retain(|p| p.name_any() != name);
    }

    /// The message of the job's newest condition.
    pub fn last_message(&self) -> String {
        let status = self.job.status.as_ref();
        let last = status.and_then(|s| s.conditions.last());
        last.and_then(|c| c.message.clone()).unwrap_or_default()
    }

    pub fn pod_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.pods.iter().map(|p| p.name_any()).collect();
        names.sort();
        names
    }

    pub fn service_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.services.iter().map(|s| s.name_any()).collect();
        names.sort();
        names
    }

    /// `Type=Status/Reason` of every condition, in order.
    pub fn conditions(&self) -> Vec<String> {
        self.job
            .status
            .iter()
            .flat_map(|s| s.conditions.iter())
            .map(|c| {
                format!(
                    "{}={}/{}",
                    c.type_,
                    c.status,
                    c.reason.as_deref().unwrap_or("")
                )
            })
            .collect()
    }

    /// The JSON of `status.replicaStatuses`.
    pub fn replica_statuses(&self) -> serde_json::Value {
        serde_json::to_value(&self.job.status.as_ref().unwrap().replica_statuses).unwrap()
    }
}

fn set_state(pod: &mut Pod, phase: &str, code: Option<i32>, restarts: i32) {
    let state = match code {
        Some(exit_code) => ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code,
                ..Default::default()
            }),
            ..Default::default()
        },
        None => ContainerState {
            running: Some(ContainerStateRunning::default()),
            ..Default::default()
        },
    };
    pod.status = Some(PodStatus {
        phase: Some(phase.into()),
        container_statuses: Some(vec![ContainerStatus {
            name: "tensorflow".into(),
            image: "tf".into(),
            image_id: String::new(),
            ready: phase == "Running",
            restart_count: restarts,
            state: Some(state),
            ..Default::default()
        }]),
        ..Default::default()
    });
}

/// Renders events as `Type Reason: message`.
pub fn events(plan: &Plan) -> Vec<String> {
    plan.events
        .iter()
        .map(|e| {
            format!(
                "{} {}: {}",
                if e.warning { "Warning" } else { "Normal" },
                e.reason,
                e.message
            )
        })
        .collect()
}
