//! Pods stuck Terminating. A pod whose node is lost never finishes terminating (the kubelet
//! that would confirm it is gone), and a finalizer can hold a pod for ever; either way the
//! replica's slot stays taken and the job shows Running with a replica missing (upstream
//! kubeflow/trainer#2072, #2185). Past `stuck_after` beyond its deletion's due time the job
//! says so (a Warning and its condition's message); with force deletion on and its node gone
//! or NotReady, the pod is force-deleted so the replica is re-created, as a counted restart.

use std::time::Duration;

use jiff::Timestamp;

use crate::plan::observe::Deletion;

/// What to do about one pod being deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Still within its grace (or not being deleted at all).
    Waiting,
    /// Past the grace: say so.
    Stuck,
    /// Past the grace on a lost node, with force deletion on: force-delete it.
    ForceDelete,
}

/// Judges a pod being deleted. `node_lost`: the shell found its node gone or NotReady for
/// longer than the grace.
pub fn judge(
    deletion: &Deletion,
    now: Timestamp,
    stuck_after: Duration,
    node_lost: bool,
    force_delete: bool,
) -> Verdict {
    let overdue = jiff::SignedDuration::try_from(stuck_after)
        .ok()
        .and_then(|grace| deletion.due.checked_add(grace).ok())
        .is_some_and(|limit| now > limit);
    match (overdue, force_delete && node_lost) {
        (false, _) => Verdict::Waiting,
        (true, false) => Verdict::Stuck,
        (true, true) => Verdict::ForceDelete,
    }
}

/// How long until a pod being deleted counts as stuck (a little past the limit, so the pass
/// then sees it overdue); `None` when it already is or never will be.
pub fn until_stuck(deletion: &Deletion, now: Timestamp, stuck_after: Duration) -> Option<Duration> {
    let grace = jiff::SignedDuration::try_from(stuck_after).ok()?;
    let limit = deletion.due.checked_add(grace).ok()?;
    let left = Duration::try_from(limit.duration_since(now)).ok()?; // fails when negative
    Some(left + Duration::from_millis(100))
}

/// How the job describes a stuck pod (its condition's note and the Warning's message).
pub fn describe(pod: &str, deletion: &Deletion) -> String {
    format!(
        "pod {pod} is stuck terminating on node {} (its deletion was due at {}); its replica \
         waits for it",
        deletion.node.as_deref().unwrap_or("<none>"),
        deletion.due
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_is_stuck_only_past_the_grace_and_forced_only_on_a_lost_node_when_allowed() {
        let due: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let deletion = Deletion {
            due,
            node: Some("node-a".into()),
        };
        let at = |seconds: i64| due + jiff::SignedDuration::from_secs(seconds);
        let grace = Duration::from_secs(300);
        let cases = [
            // (seconds after due, node lost, force on, verdict)
            (-30, true, true, Verdict::Waiting),
            (300, true, true, Verdict::Waiting),
            (301, false, false, Verdict::Stuck),
            (301, true, false, Verdict::Stuck),
            (301, false, true, Verdict::Stuck),
            (301, true, true, Verdict::ForceDelete),
        ];
        for (seconds, lost, force, verdict) in cases {
            assert_eq!(
                judge(&deletion, at(seconds), grace, lost, force),
                verdict,
                "{seconds}s after due, node lost {lost}, force {force}"
            );
        }
        assert_eq!(
            until_stuck(&deletion, at(100), grace),
            Some(Duration::from_millis(200_100))
        );
        assert_eq!(until_stuck(&deletion, at(301), grace), None);
        // A grace too long to add never makes a pod stuck.
        assert_eq!(
            judge(&deletion, at(10_000), Duration::MAX, true, true),
            Verdict::Waiting
        );
        assert_eq!(
            describe("j-worker-0", &deletion),
            "pod j-worker-0 is stuck terminating on node node-a (its deletion was due at \
             2026-01-01T00:00:00Z); its replica waits for it"
        );
    }
}
