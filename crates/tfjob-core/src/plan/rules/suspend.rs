//! Suspend and resume (`runPolicy.suspend`, Kueue's admission switch).
//!
//! Suspending deletes every pod and Service (see [`super::cleanup::everything`]), zeroes the
//! active counts, turns `Running` False and sets `Suspended` once. Resuming turns `Suspended`
//! False and restarts the deadline clock (upstream counts `activeDeadlineSeconds` from the
//! resume).

use crate::plan::transitions::Transition;

/// The transitions of a pass that finds the job suspended.
pub fn suspend(running: bool, suspended: bool) -> Vec<Transition> {
    let mut transitions = Vec::new();
    if running {
        transitions.push(Transition::RunningSuspended);
    }
    if !suspended {
        transitions.push(Transition::Suspended);
    }
    transitions
}

/// The transition of a pass that finds the job no longer suspended.
pub fn resume(suspended: bool) -> Option<Transition> {
    suspended.then_some(Transition::Resumed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspending_stops_running_and_marks_suspended_once() {
        let cases = [
            (
                true,
                false,
                vec![Transition::RunningSuspended, Transition::Suspended],
            ),
            (false, false, vec![Transition::Suspended]),
            (false, true, vec![]),
            (true, true, vec![Transition::RunningSuspended]),
        ];
        for (running, suspended, want) in cases {
            assert_eq!(
                suspend(running, suspended),
                want,
                "running={running} suspended={suspended}"
            );
        }
    }

    #[test]
    fn resuming_only_a_suspended_job() {
        assert_eq!(resume(true), Some(Transition::Resumed));
        assert_eq!(resume(false), None);
    }
}
