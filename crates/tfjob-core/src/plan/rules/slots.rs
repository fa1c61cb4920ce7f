//! The replica slots of one type: which indices need a pod, which pods are surplus, which
//! indices have completed and which pods failed.
//!
//! Names are deterministic, so a slot normally holds at most one pod; should it hold more (a
//! foreign object with our labels), the first one decides, as upstream. A succeeded index is
//! remembered in status (`completedIndexes`) and never run again when its pod disappears
//! (upstream re-ran it). A terminating pod keeps its slot until it is gone.

use std::collections::{BTreeMap, BTreeSet};

use crate::plan::observe::{Phase, PodFacts};

/// What the scan of one replica type found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlotScan<'a> {
    /// Indices with no pod that must run.
    pub missing: Vec<i32>,
    /// Pods at an index at or beyond `replicas` (scaled down or type removed).
    pub surplus: Vec<&'a PodFacts>,
    /// Indices that have succeeded, now or before.
    pub completed: BTreeSet<i32>,
    /// Pods that failed.
    pub failed: Vec<&'a PodFacts>,
}

/// Scans the slots of a type with `replicas` replicas. `pods` are the type's pods by index;
/// `completed_before` are the indices status remembers as completed.
pub fn scan<'a>(
    replicas: i32,
    completed_before: &BTreeSet<i32>,
    pods: &BTreeMap<i32, Vec<&'a PodFacts>>,
) -> SlotScan<'a> {
    let mut scan = SlotScan {
        completed: completed_before
            .iter()
            .copied()
            .filter(|i| *i < replicas)
            .collect(),
        ..SlotScan::default()
    };
    let highest = pods.keys().next_back().map_or(0, |i| i.saturating_add(1));
    for index in 0..replicas.max(highest) {
        let Some(pod) = pods.get(&index).and_then(|slot| slot.first()) else {
            if index < replicas && !scan.completed.contains(&index) {
                scan.missing.push(index);
            }
            continue;
        };
        if pod.terminating {
            continue;
        }
        if index >= replicas {
            scan.surplus.push(pod);
            continue;
        }
        match pod.phase {
            Phase::Succeeded => {
                scan.completed.insert(index);
            }
            Phase::Failed => scan.failed.push(pod),
            _ => {}
        }
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, phase: Phase, terminating: bool) -> PodFacts {
        PodFacts {
            name: name.into(),
            uid: None,
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

    fn names(pods: &[&PodFacts]) -> Vec<String> {
        pods.iter().map(|p| p.name.clone()).collect()
    }

    #[test]
    fn slots_of_one_type() {
        use Phase::*;
        struct Case {
            name: &'static str,
            replicas: i32,
            completed_before: &'static [i32],
            pods: Vec<(i32, PodFacts)>,
            missing: &'static [i32],
            surplus: &'static [&'static str],
            completed: &'static [i32],
            failed: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "a new job needs every index",
                replicas: 3,
                completed_before: &[],
                pods: vec![],
                missing: &[0, 1, 2],
                surplus: &[],
                completed: &[],
                failed: &[],
            },
            Case {
                name: "running, succeeded and failed pods",
                replicas: 3,
                completed_before: &[],
                pods: vec![
                    (0, pod("w0", Running, false)),
                    (1, pod("w1", Succeeded, false)),
                    (2, pod("w2", Failed, false)),
                ],
                missing: &[],
                surplus: &[],
                completed: &[1],
                failed: &["w2"],
            },
            Case {
                name: "a succeeded index whose pod is gone is not run again",
                replicas: 2,
                completed_before: &[1],
                pods: vec![(0, pod("w0", Running, false))],
                missing: &[],
                surplus: &[],
                completed: &[1],
                failed: &[],
            },
            Case {
                name: "completed indices beyond a smaller replica count are forgotten",
                replicas: 1,
                completed_before: &[0, 3],
                pods: vec![],
                missing: &[],
                surplus: &[],
                completed: &[0],
                failed: &[],
            },
            Case {
                name: "scaled down: pods beyond replicas are surplus",
                replicas: 1,
                completed_before: &[],
                pods: vec![
                    (0, pod("w0", Running, false)),
                    (1, pod("w1", Running, false)),
                    (4, pod("w4", Failed, false)),
                ],
                missing: &[],
                surplus: &["w1", "w4"],
                completed: &[],
                failed: &[],
            },
            Case {
                name: "a terminating pod keeps its slot and is neither surplus nor failed",
                replicas: 1,
                completed_before: &[],
                pods: vec![(0, pod("w0", Failed, true)), (1, pod("w1", Running, true))],
                missing: &[],
                surplus: &[],
                completed: &[],
                failed: &[],
            },
            Case {
                name: "a type removed from the spec has zero replicas",
                replicas: 0,
                completed_before: &[0],
                pods: vec![(0, pod("e0", Succeeded, false))],
                missing: &[],
                surplus: &["e0"],
                completed: &[],
                failed: &[],
            },
        ];
        for case in cases {
            let mut by_index: BTreeMap<i32, Vec<&PodFacts>> = BTreeMap::new();
            for (index, pod) in &case.pods {
                by_index.entry(*index).or_default().push(pod);
            }
            let before: BTreeSet<i32> = case.completed_before.iter().copied().collect();
            let scan = scan(case.replicas, &before, &by_index);
            assert_eq!(scan.missing, case.missing, "{}", case.name);
            assert_eq!(names(&scan.surplus), case.surplus, "{}", case.name);
            assert_eq!(
                scan.completed.iter().copied().collect::<Vec<_>>(),
                case.completed,
                "{}",
                case.name
            );
            assert_eq!(names(&scan.failed), case.failed, "{}", case.name);
        }
    }

    #[test]
    fn the_first_pod_of_a_crowded_slot_decides() {
        let first = pod("a", Phase::Succeeded, false);
        let second = pod("b", Phase::Failed, false);
        let by_index = BTreeMap::from([(0, vec![&first, &second])]);
        let scan = scan(1, &BTreeSet::new(), &by_index);
        assert_eq!(scan.completed, BTreeSet::from([0]));
        assert!(scan.failed.is_empty());
    }
}
