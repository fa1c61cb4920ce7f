//! What a finished or suspended job deletes.
//!
//! `cleanPodPolicy`: `None` keeps everything (for debugging); `Running` deletes the pods still
//! running or pending, with their Services; `All` deletes every pod and every Service of the job
//! (upstream kept Services without a pod, #1191). Failures from limits honour the policy too
//! (upstream deleted everything). A suspended job keeps nothing. Objects already terminating are
//! left alone; the deletes are conditional on the UID, so a pass repeated after an operator
//! restart deletes nothing twice.

use crate::api::CleanPodPolicy;
use crate::plan::observe::{Phase, PodFacts, ServiceFacts};
use crate::plan::output::ChildRef;

/// Children to delete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deletions {
    pub pods: Vec<ChildRef>,
    pub services: Vec<ChildRef>,
}

/// What a finished job deletes under `policy`.
pub fn finished(policy: CleanPodPolicy, pods: &[PodFacts], services: &[ServiceFacts]) -> Deletions {
    match policy {
        CleanPodPolicy::None => Deletions::default(),
        CleanPodPolicy::Running => {
            let running = |p: &PodFacts| matches!(p.phase, Phase::Running | Phase::Pending);
            delete(pods, services, running, false)
        }
        CleanPodPolicy::All => everything(pods, services),
    }
}

/// Every pod and Service (a suspended job, or `cleanPodPolicy: All`).
pub fn everything(pods: &[PodFacts], services: &[ServiceFacts]) -> Deletions {
    delete(pods, services, |_| true, true)
}

/// The pods `doomed` selects, with the Services of the same name (or all Services).
fn delete(
    pods: &[PodFacts],
    services: &[ServiceFacts],
    doomed: impl Fn(&PodFacts) -> bool,
    all_services: bool,
) -> Deletions {
    let pods: Vec<ChildRef> = pods
        .iter()
        .filter(|p| !p.terminating && doomed(p))
        .map(|p| ChildRef {
            name: p.name.clone(),
            uid: p.uid.as_ref().map(ToString::to_string),
        })
        .collect();
    let services = services
        .iter()
        .filter(|s| !s.terminating && (all_services || pods.iter().any(|p| p.name == s.name)))
        .map(|s| ChildRef {
            name: s.name.clone(),
            uid: s.uid.as_ref().map(ToString::to_string),
        })
        .collect();
    Deletions { pods, services }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, phase: Phase, terminating: bool) -> PodFacts {
        PodFacts {
            name: name.into(),
            uid: Some(format!("{name}-uid").into()),
            replica_type: None,
            index: None,
            phase,
            terminating,
            exit_code: 0,
            restarts: 0,
            abnormal: None,
            failure: None,
            waiting: None,
            deletion: None,
        }
    }

    fn service(name: &str, terminating: bool) -> ServiceFacts {
        ServiceFacts {
            name: name.into(),
            uid: Some(format!("{name}-uid").into()),
            replica_type: None,
            index: None,
            terminating,
        }
    }

    fn names(refs: &[ChildRef]) -> Vec<&str> {
        refs.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn finished_jobs_delete_per_policy() {
        let pods = [
            pod("j-ps-0", Phase::Running, false),
            pod("j-worker-0", Phase::Succeeded, false),
            pod("j-worker-1", Phase::Pending, false),
            pod("j-worker-2", Phase::Failed, false),
            pod("j-worker-3", Phase::Running, true),
        ];
        let services = [
            service("j-ps-0", false),
            service("j-worker-0", false),
            service("j-worker-1", true),
            service("j-evaluator-0", false),
        ];
        let cases: [(CleanPodPolicy, &[&str], &[&str]); 3] = [
            (CleanPodPolicy::None, &[], &[]),
            (
                CleanPodPolicy::Running,
                &["j-ps-0", "j-worker-1"],
                &["j-ps-0"],
            ),
            (
                CleanPodPolicy::All,
                &["j-ps-0", "j-worker-0", "j-worker-1", "j-worker-2"],
                &["j-ps-0", "j-worker-0", "j-evaluator-0"],
            ),
        ];
        for (policy, want_pods, want_services) in cases {
            let deletions = finished(policy, &pods, &services);
            assert_eq!(names(&deletions.pods), want_pods, "{policy:?}");
            assert_eq!(names(&deletions.services), want_services, "{policy:?}");
        }
    }

    #[test]
    fn deletes_are_conditional_on_the_uid() {
        let deletions = everything(&[pod("a", Phase::Running, false)], &[]);
        assert_eq!(deletions.pods[0].uid.as_deref(), Some("a-uid"));
    }
}
