//! The headless Services a running job needs: one per replica (upstream) or one per job
//! (`--service-mode=per-job`). Missing ones are created again, surplus ones deleted.

use std::collections::BTreeSet;

use crate::api::{ReplicaType, ServiceMode};
use crate::plan::observe::ServiceFacts;
use crate::plan::output::ChildRef;

/// A Service to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// The job's single Service (per-job mode).
    Job,
    /// The Service of one replica (per-replica mode).
    Replica(ReplicaType, i32),
}

/// Services to create and delete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServicePlan {
    pub create: Vec<Wanted>,
    pub delete: Vec<ChildRef>,
}

/// The Services of job `job_name`, whose types have these replica counts (types no longer in
/// the spec count 0), given the Services that exist.
pub fn plan(
    mode: ServiceMode,
    job_name: &str,
    replicas: &[(ReplicaType, i32)],
    existing: &[ServiceFacts],
) -> ServicePlan {
    let mut plan = ServicePlan::default();
    match mode {
        ServiceMode::PerJob => {
            if !existing.iter().any(|s| s.name == job_name) {
                plan.create.push(Wanted::Job);
            }
        }
        ServiceMode::PerReplica => {
            for &(replica_type, count) in replicas {
                let of_type = || {
                    existing
                        .iter()
                        .filter(move |s| s.replica_type == Some(replica_type))
                };
                let present: BTreeSet<i32> = of_type().filter_map(|s| s.index).collect();
                plan.create.extend(
                    (0..count)
                        .filter(|i| !present.contains(i))
                        .map(|i| Wanted::Replica(replica_type, i)),
                );
                plan.delete.extend(
                    of_type()
                        .filter(|s| !s.terminating && s.index.is_some_and(|i| i >= count))
                        .map(|s| ChildRef {
                            name: s.name.clone(),
                            uid: s.uid.as_ref().map(ToString::to_string),
                        }),
                );
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReplicaType::*;

    fn service(
        name: &str,
        replica_type: Option<ReplicaType>,
        index: Option<i32>,
        terminating: bool,
    ) -> ServiceFacts {
        ServiceFacts {
            name: name.into(),
            uid: None,
            replica_type,
            index,
            terminating,
        }
    }

    #[test]
    fn services_per_mode() {
        struct Case {
            name: &'static str,
            mode: ServiceMode,
            replicas: Vec<(ReplicaType, i32)>,
            existing: Vec<ServiceFacts>,
            create: Vec<Wanted>,
            delete: Vec<&'static str>,
        }
        let cases = [
            Case {
                name: "a new job gets one Service per replica",
                mode: ServiceMode::PerReplica,
                replicas: vec![(PS, 1), (Worker, 2)],
                existing: vec![],
                create: vec![
                    Wanted::Replica(PS, 0),
                    Wanted::Replica(Worker, 0),
                    Wanted::Replica(Worker, 1),
                ],
                delete: vec![],
            },
            Case {
                name: "a missing Service is created again, a terminating one waited for",
                mode: ServiceMode::PerReplica,
                replicas: vec![(Worker, 3)],
                existing: vec![
                    service("j-worker-0", Some(Worker), Some(0), false),
                    service("j-worker-2", Some(Worker), Some(2), true),
                ],
                create: vec![Wanted::Replica(Worker, 1)],
                delete: vec![],
            },
            Case {
                name: "scaled down or removed: surplus Services go",
                mode: ServiceMode::PerReplica,
                replicas: vec![(Evaluator, 0), (Worker, 1)],
                existing: vec![
                    service("j-evaluator-0", Some(Evaluator), Some(0), false),
                    service("j-worker-0", Some(Worker), Some(0), false),
                    service("j-worker-1", Some(Worker), Some(1), false),
                    service("j-worker-2", Some(Worker), Some(2), true),
                ],
                create: vec![],
                delete: vec!["j-evaluator-0", "j-worker-1"],
            },
            Case {
                name: "per job: one Service named after the job",
                mode: ServiceMode::PerJob,
                replicas: vec![(PS, 1), (Worker, 2)],
                existing: vec![],
                create: vec![Wanted::Job],
                delete: vec![],
            },
            Case {
                name: "per job: present, nothing to do",
                mode: ServiceMode::PerJob,
                replicas: vec![(Worker, 2)],
                existing: vec![service("j", None, None, false)],
                create: vec![],
                delete: vec![],
            },
        ];
        for case in cases {
            let plan = plan(case.mode, "j", &case.replicas, &case.existing);
            assert_eq!(plan.create, case.create, "{}", case.name);
            let deleted: Vec<&str> = plan.delete.iter().map(|d| d.name.as_str()).collect();
            assert_eq!(deleted, case.delete, "{}", case.name);
        }
    }
}
