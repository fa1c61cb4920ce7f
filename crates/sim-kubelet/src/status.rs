//! Builds the `status` a real kubelet would report for a pod in a given [`Stage`] (pure).
//!
//! Fields follow what kubelet 1.20+ with containerd writes: phase, the four pod conditions,
//! host/pod IPs, `startTime`, and one `containerStatuses` entry per container with ids, state and
//! `lastState`. IDs and IPs are derived from the pod UID so they are stable across writes.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::lifecycle::{ContainerFacts, PodFacts, Record, Stage, Termination};

/// Pod phases as the API spells them.
pub const PENDING: &str = "Pending";
pub const RUNNING: &str = "Running";
pub const SUCCEEDED: &str = "Succeeded";
pub const FAILED: &str = "Failed";

/// The status for `rec`, or `None` for stages that have nothing to report (unbound or gone).
pub fn pod_status(pod: &PodFacts, rec: &Record, host_ip: &str) -> Option<PodStatus> {
    let start = rec.start_time?;
    let (phase, ready_since, ready) = match &rec.stage {
        Stage::Unbound | Stage::Bound { .. } | Stage::Finalized => return None,
        Stage::Pending { since } => (PENDING, *since, false),
        Stage::Running { since, .. } => (RUNNING, *since, true),
        Stage::BackOff { since } => (RUNNING, *since, false),
        Stage::Finished { termination } | Stage::Killed { termination } => {
            let phase = if termination.exit_code == 0 {
                SUCCEEDED
            } else {
                FAILED
            };
            (phase, termination.finished_at, false)
        }
    };
    let terminal = matches!(rec.stage, Stage::Finished { .. } | Stage::Killed { .. });
    let initialized = pod.init_containers.is_empty() || !matches!(rec.stage, Stage::Pending { .. });
    let pod_ip = pod_ip(&pod.uid);

    let not_ready_reason = if terminal {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    };
    let not_ready_message = (!terminal).then(|| {
        let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
        format!("containers with unready status: [{}]", names.join(" "))
    });
    let readiness = |type_: &str| PodCondition {
        type_: type_.to_string(),
        status: if ready { "True" } else { "False" }.to_string(),
        last_transition_time: Some(Time(ready_since)),
        reason: (!ready).then(|| not_ready_reason.to_string()),
        message: if ready {
            None
        } else {
            not_ready_message.clone()
        },
        ..PodCondition::default()
    };
    let conditions = vec![
        PodCondition {
            type_: "Initialized".into(),
            status: if initialized { "True" } else { "False" }.into(),
            last_transition_time: Some(Time(start)),
            reason: if initialized {
                (terminal && !pod.init_containers.is_empty()).then(|| "PodCompleted".to_string())
            } else {
                Some("ContainersNotInitialized".into())
            },
            ..PodCondition::default()
        },
        readiness("Ready"),
        readiness("ContainersReady"),
        PodCondition {
            type_: "PodScheduled".into(),
            status: "True".into(),
            last_transition_time: Some(Time(start)),
            ..PodCondition::default()
        },
    ];

    let containers = pod
        .containers
        .iter()
        .map(|c| container_status(&pod.uid, c, rec))
        .collect();
    let init_containers = (!pod.init_containers.is_empty()).then(|| {
        pod.init_containers
            .iter()
            .map(|c| init_container_status(&pod.uid, c, rec, start))
            .collect()
    });

    Some(PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(conditions),
        host_ip: Some(host_ip.to_string()),
        host_ips: None,
        pod_ip: Some(pod_ip.clone()),
        pod_ips: Some(vec![PodIP { ip: pod_ip }]),
        start_time: Some(Time(start)),
        container_statuses: Some(containers),
        init_container_statuses: init_containers,
        ..PodStatus::default()
    })
}

fn container_status(uid: &str, c: &ContainerFacts, rec: &Record) -> ContainerStatus {
    let run_id = |restarts: u32| container_id(uid, &c.name, restarts);
    let terminated = |t: &Termination, restarts: u32| ContainerState {
        terminated: Some(terminated_state(t, Some(run_id(restarts)))),
        ..ContainerState::default()
    };
    let waiting = |reason: &str, message: Option<String>| ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message,
        }),
        ..ContainerState::default()
    };
    let (state, ready, started, has_run) = match &rec.stage {
        Stage::Pending { .. } | Stage::Unbound | Stage::Bound { .. } | Stage::Finalized => {
            (waiting("ContainerCreating", None), false, false, false)
        }
        Stage::Running { since, .. } => (
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(Time(*since)),
                }),
                ..ContainerState::default()
            },
            true,
            true,
            true,
        ),
        Stage::BackOff { .. } => {
            let message = format!("back-off restarting failed container {} in pod", c.name);
            (
                waiting("CrashLoopBackOff", Some(message)),
                false,
                false,
                true,
            )
        }
        Stage::Finished { termination } | Stage::Killed { termination } => {
            (terminated(termination, rec.restarts), false, false, true)
        }
    };
    // The previous run's container id: the run before `restarts`.
    let last_state = rec.last_termination.as_ref().map(|t| ContainerState {
        terminated: Some(terminated_state(
            t,
            Some(run_id(rec.restarts.saturating_sub(1))),
        )),
        ..ContainerState::default()
    });
    let ran = has_run || rec.last_termination.is_some();
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: if ran {
            image_id(&c.image)
        } else {
            String::new()
        },
        container_id: (has_run && !matches!(rec.stage, Stage::BackOff { .. }))
            .then(|| run_id(rec.restarts)),
        ready,
        started: Some(started),
        restart_count: i32::try_from(rec.restarts).unwrap_or(i32::MAX),
        state: Some(state),
        last_state: Some(last_state.unwrap_or_default()),
        ..ContainerStatus::default()
    }
}

/// Init containers ran to completion before the main containers started.
fn init_container_status(
    uid: &str,
    c: &ContainerFacts,
    rec: &Record,
    start: Timestamp,
) -> ContainerStatus {
    let done = !matches!(rec.stage, Stage::Pending { .. });
    let id = container_id(uid, &c.name, 0);
    let state = if done {
        ContainerState {
            terminated: Some(terminated_state(
                &Termination {
                    exit_code: 0,
                    reason: "Completed".into(),
                    started_at: start,
                    finished_at: start,
                },
                Some(id.clone()),
            )),
            ..ContainerState::default()
        }
    } else {
        ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("PodInitializing".into()),
                message: None,
            }),
            ..ContainerState::default()
        }
    };
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: if done {
            image_id(&c.image)
        } else {
            String::new()
        },
        container_id: done.then_some(id),
        ready: done,
        started: Some(false),
        restart_count: 0,
        state: Some(state),
        last_state: Some(ContainerState::default()),
        ..ContainerStatus::default()
    }
}

fn terminated_state(t: &Termination, container_id: Option<String>) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: t.exit_code,
        reason: Some(t.reason.clone()),
        started_at: Some(Time(t.started_at)),
        finished_at: Some(Time(t.finished_at)),
        container_id,
        ..ContainerStateTerminated::default()
    }
}

/// `containerd://<64 hex>`, distinct per pod UID, container and run.
pub fn container_id(uid: &str, container: &str, run: u32) -> String {
    format!(
        "containerd://{}",
        hex64(&format!("{uid}/{container}/{run}"))
    )
}

/// `<repository>@sha256:<64 hex>` like containerd reports (the digest is made up but stable).
pub fn image_id(image: &str) -> String {
    if image.contains("@sha256:") {
        return image.to_string();
    }
    // Strip a tag, but not a registry port (`host:5000/img`).
    let repo = match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => image,
    };
    format!("{repo}@sha256:{}", hex64(image))
}

/// A stable pod IP in 10.244.0.0/16 from the pod UID (never .0 or .255).
pub fn pod_ip(uid: &str) -> String {
    let h = fnv1a(uid.as_bytes(), 0);
    format!("10.244.{}.{}", (h >> 8) % 256, (h % 254) + 1)
}

/// 64 hex characters from four seeded FNV-1a hashes: ids only need to look real and be stable.
fn hex64(input: &str) -> String {
    (0..4u64)
        .map(|seed| format!("{:016x}", fnv1a(input.as_bytes(), seed)))
        .collect()
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::Behaviour;
    use crate::lifecycle::RestartPolicy;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn facts() -> PodFacts {
        PodFacts {
            namespace: "ns".into(),
            name: "p".into(),
            uid: "0a1b".into(),
            node_name: Some("sim-node".into()),
            restart_policy: RestartPolicy::OnFailure,
            containers: vec![
                ContainerFacts {
                    name: "tensorflow".into(),
                    image: "tensorflow/tensorflow:2.15.0".into(),
                },
                ContainerFacts {
                    name: "sidecar".into(),
                    image: "busybox".into(),
                },
            ],
            init_containers: vec![],
            deletion: None,
            behaviour: Behaviour::default(),
        }
    }

    fn condition<'a>(s: &'a PodStatus, type_: &str) -> &'a PodCondition {
        s.conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap()
    }

    #[test]
    fn nothing_to_report_before_the_pod_is_started() {
        assert_eq!(pod_status(&facts(), &Record::default(), "172.20.0.2"), None);
    }

    #[test]
    fn pending_reports_creating_containers() {
        let rec = Record {
            stage: Stage::Pending { since: t(0) },
            start_time: Some(t(0)),
            ..Record::default()
        };
        let s = pod_status(&facts(), &rec, "172.20.0.2").unwrap();
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(condition(&s, "PodScheduled").status, "True");
        assert_eq!(condition(&s, "Ready").status, "False");
        assert_eq!(
            condition(&s, "Ready").message.as_deref(),
            Some("containers with unready status: [tensorflow sidecar]")
        );
        let cs = s.container_statuses.unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(
            cs[0]
                .state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("ContainerCreating")
        );
        assert_eq!(cs[0].container_id, None);
        assert_eq!(s.host_ip.as_deref(), Some("172.20.0.2"));
    }

    #[test]
    fn running_reports_ready_containers_with_ids() {
        let rec = Record {
            stage: Stage::Running {
                since: t(1),
                attempt: 1,
            },
            start_time: Some(t(0)),
            ..Record::default()
        };
        let s = pod_status(&facts(), &rec, "h").unwrap();
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(condition(&s, "Ready").status, "True");
        assert_eq!(
            condition(&s, "ContainersReady").last_transition_time,
            Some(Time(t(1)))
        );
        let c = &s.container_statuses.unwrap()[0];
        assert!(c.ready && c.started == Some(true));
        assert_eq!(
            c.state
                .as_ref()
                .unwrap()
                .running
                .as_ref()
                .unwrap()
                .started_at,
            Some(Time(t(1)))
        );
        assert!(
            c.container_id
                .as_ref()
                .unwrap()
                .starts_with("containerd://")
        );
        assert_eq!(
            c.container_id.as_ref().unwrap().len(),
            "containerd://".len() + 64
        );
        assert!(
            c.image_id.starts_with("tensorflow/tensorflow@sha256:"),
            "{}",
            c.image_id
        );
        assert_eq!(s.pod_ip, Some(pod_ip("0a1b")));
    }

    #[test]
    fn restarted_container_keeps_last_state_and_count() {
        let last = Termination {
            exit_code: 3,
            reason: "Error".into(),
            started_at: t(1),
            finished_at: t(2),
        };
        let rec = Record {
            stage: Stage::Running {
                since: t(2),
                attempt: 2,
            },
            start_time: Some(t(0)),
            restarts: 1,
            last_termination: Some(last),
        };
        let s = pod_status(&facts(), &rec, "h").unwrap();
        let c = &s.container_statuses.unwrap()[0];
        assert_eq!(c.restart_count, 1);
        let prev = c.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(prev.exit_code, 3);
        assert_eq!(
            prev.container_id.as_deref(),
            Some(container_id("0a1b", "tensorflow", 0).as_str())
        );
        assert_ne!(
            c.container_id, prev.container_id,
            "a restart is a new container"
        );
    }

    #[test]
    fn terminal_phases_follow_the_exit_code() {
        let done = |code: i32, reason: &str| Record {
            stage: Stage::Finished {
                termination: Termination {
                    exit_code: code,
                    reason: reason.into(),
                    started_at: t(1),
                    finished_at: t(5),
                },
            },
            start_time: Some(t(0)),
            ..Record::default()
        };
        let ok = pod_status(&facts(), &done(0, "Completed"), "h").unwrap();
        assert_eq!(ok.phase.as_deref(), Some("Succeeded"));
        assert_eq!(
            condition(&ok, "Ready").reason.as_deref(),
            Some("PodCompleted")
        );
        let oom = pod_status(&facts(), &done(137, "OOMKilled"), "h").unwrap();
        assert_eq!(oom.phase.as_deref(), Some("Failed"));
        let term = oom.container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .terminated
            .unwrap();
        assert_eq!(
            (term.exit_code, term.reason.as_deref()),
            (137, Some("OOMKilled"))
        );
        assert_eq!(term.finished_at, Some(Time(t(5))));
    }

    #[test]
    fn backoff_waits_without_a_running_container() {
        let rec = Record {
            stage: Stage::BackOff { since: t(3) },
            start_time: Some(t(0)),
            restarts: 1,
            last_termination: Some(Termination {
                exit_code: 1,
                reason: "Error".into(),
                started_at: t(1),
                finished_at: t(3),
            }),
        };
        let s = pod_status(&facts(), &rec, "h").unwrap();
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let c = &s.container_statuses.unwrap()[0];
        assert_eq!(
            c.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("CrashLoopBackOff")
        );
        assert!(!c.ready);
    }

    #[test]
    fn init_containers_complete_before_the_main_ones_run() {
        let mut f = facts();
        f.init_containers = vec![ContainerFacts {
            name: "init".into(),
            image: "busybox:1".into(),
        }];
        let pending = Record {
            stage: Stage::Pending { since: t(0) },
            start_time: Some(t(0)),
            ..Record::default()
        };
        let s = pod_status(&f, &pending, "h").unwrap();
        assert_eq!(condition(&s, "Initialized").status, "False");
        let running = Record {
            stage: Stage::Running {
                since: t(1),
                attempt: 1,
            },
            ..pending
        };
        let s = pod_status(&f, &running, "h").unwrap();
        assert_eq!(condition(&s, "Initialized").status, "True");
        let init = &s.init_container_statuses.unwrap()[0];
        assert_eq!(
            init.state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("Completed")
        );
    }

    #[test]
    fn ids_and_ips_look_real() {
        assert_eq!(image_id("busybox@sha256:abc"), "busybox@sha256:abc");
        assert!(image_id("registry:5000/img").starts_with("registry:5000/img@sha256:"));
        assert!(image_id("registry:5000/img:v1").starts_with("registry:5000/img@sha256:"));
        let ip = pod_ip("some-uid");
        let last: u32 = ip.rsplit('.').next().unwrap().parse().unwrap();
        assert!(ip.starts_with("10.244.") && (1..=254).contains(&last));
        assert_eq!(pod_ip("some-uid"), ip);
    }
}
