//! The job conditions and upstream's exact update algorithm (`pkg/util/status.go`).
//!
//! The list is ordered by last change (the `State` printer column shows the last entry);
//! `Running` and `Restarting` replace each other; `Succeeded`/`Failed` flip `Running` to False
//! in place; once `Failed` is True nothing changes any more.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::JobCondition;

pub const CREATED: &str = "Created";
pub const RUNNING: &str = "Running";
pub const RESTARTING: &str = "Restarting";
pub const SUCCEEDED: &str = "Succeeded";
pub const SUSPENDED: &str = "Suspended";
pub const FAILED: &str = "Failed";

pub const TRUE: &str = "True";
pub const FALSE: &str = "False";

/// Reasons are upstream's `"TFJob" + <reason>`.
pub mod reason {
    pub const CREATED: &str = "TFJobCreated";
    pub const RUNNING: &str = "TFJobRunning";
    pub const RESTARTING: &str = "TFJobRestarting";
    pub const SUCCEEDED: &str = "TFJobSucceeded";
    pub const SUSPENDED: &str = "TFJobSuspended";
    pub const RESUMED: &str = "TFJobResumed";
    pub const FAILED: &str = "TFJobFailed";
    pub const FAILED_VALIDATION: &str = "TFJobFailedValidation";
}

/// Whether `conditions` holds `type_` with status True.
pub fn is_true(conditions: &[JobCondition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == TRUE)
}

/// Whether the job has finished (Succeeded or Failed).
pub fn is_finished(conditions: &[JobCondition]) -> bool {
    is_true(conditions, SUCCEEDED) || is_true(conditions, FAILED)
}

/// What separates a condition's own message from the notes the operator appends to it.
pub const NOTES_MARK: &str = " Note: ";

/// Appends `notes` (what keeps the job from progressing, e.g. a child that cannot be created)
/// to the message of the newest condition, replacing earlier notes, and removes notes from every
/// older one; types, statuses, reasons and times stay, so clients that match upstream's message
/// prefixes still do. No notes restore the conditions' own messages. Returns whether a message
/// changed.
pub fn annotate(conditions: &mut [JobCondition], notes: &[String]) -> bool {
    let newest = conditions.len().saturating_sub(1);
    let mut changed = false;
    for (i, condition) in conditions.iter_mut().enumerate() {
        let message = condition.message.clone().unwrap_or_default();
        let own = message.split(NOTES_MARK).next().unwrap_or_default();
        let annotated = if i == newest && !notes.is_empty() {
            format!("{own}{NOTES_MARK}{}", notes.join(" "))
        } else {
            own.to_string()
        };
        if annotated != message {
            condition.message = Some(annotated);
            changed = true;
        }
    }
    changed
}

/// Upstream's `UpdateJobConditions`. Returns whether the list changed.
pub fn set(
    conditions: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> bool {
    if is_true(conditions, FAILED) {
        return false; // Failed is terminal.
    }
    let existing = conditions.iter().find(|c| c.type_ == type_);
    if let Some(c) = existing
        && c.status == status
        && c.reason.as_deref() == Some(reason)
    {
        return false;
    }
    let last_transition_time = match existing {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Some(Time(now)),
    };
    let condition = JobCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_update_time: Some(Time(now)),
        last_transition_time,
    };
    conditions.retain(|c| {
        c.type_ != type_
            && !(type_ == RESTARTING && c.type_ == RUNNING)
            && !(type_ == RUNNING && c.type_ == RESTARTING)
    });
    if type_ == SUCCEEDED || type_ == FAILED {
        for c in conditions.iter_mut().filter(|c| c.type_ == RUNNING) {
            c.status = FALSE.into();
        }
    }
    conditions.push(condition);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn summary(conditions: &[JobCondition]) -> Vec<String> {
        conditions
            .iter()
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

    #[test]
    fn conditions_append_in_order_of_change() {
        let mut c = Vec::new();
        assert!(set(
            &mut c,
            CREATED,
            TRUE,
            reason::CREATED,
            "created",
            at(0)
        ));
        assert!(set(
            &mut c,
            RUNNING,
            TRUE,
            reason::RUNNING,
            "running",
            at(1)
        ));
        assert!(set(
            &mut c,
            SUCCEEDED,
            TRUE,
            reason::SUCCEEDED,
            "done",
            at(2)
        ));
        assert_eq!(
            summary(&c),
            [
                "Created=True/TFJobCreated",
                "Running=False/TFJobRunning",
                "Succeeded=True/TFJobSucceeded"
            ]
        );
        // Running flipped in place: its timestamps and message are untouched.
        assert_eq!(c[1].last_transition_time, Some(Time(at(1))));
        assert_eq!(c[1].message.as_deref(), Some("running"));
    }

    #[test]
    fn restarting_and_running_replace_each_other() {
        let mut c = Vec::new();
        set(&mut c, CREATED, TRUE, reason::CREATED, "c", at(0));
        set(&mut c, RUNNING, TRUE, reason::RUNNING, "r", at(1));
        set(&mut c, RESTARTING, TRUE, reason::RESTARTING, "rs", at(2));
        assert_eq!(
            summary(&c),
            [
                "Created=True/TFJobCreated",
                "Restarting=True/TFJobRestarting"
            ]
        );
        set(&mut c, RUNNING, TRUE, reason::RUNNING, "r", at(3));
        assert_eq!(
            summary(&c),
            ["Created=True/TFJobCreated", "Running=True/TFJobRunning"]
        );
        assert_eq!(c[1].last_transition_time, Some(Time(at(3))));
    }

    #[test]
    fn same_status_and_reason_is_a_no_op() {
        let mut c = Vec::new();
        set(&mut c, RUNNING, TRUE, reason::RUNNING, "first", at(1));
        assert!(!set(
            &mut c,
            RUNNING,
            TRUE,
            reason::RUNNING,
            "second",
            at(5)
        ));
        assert_eq!(c[0].message.as_deref(), Some("first"));
        assert_eq!(c[0].last_update_time, Some(Time(at(1))));
    }

    #[test]
    fn a_new_reason_with_the_same_status_keeps_the_transition_time() {
        let mut c = Vec::new();
        set(&mut c, RUNNING, FALSE, reason::SUSPENDED, "s", at(1));
        set(&mut c, CREATED, TRUE, reason::CREATED, "c", at(2));
        assert!(set(&mut c, RUNNING, FALSE, reason::RUNNING, "x", at(3)));
        assert_eq!(
            summary(&c),
            ["Created=True/TFJobCreated", "Running=False/TFJobRunning"]
        );
        assert_eq!(c[1].last_transition_time, Some(Time(at(1))));
        assert_eq!(c[1].last_update_time, Some(Time(at(3))));
    }

    #[test]
    fn failed_is_terminal() {
        let mut c = Vec::new();
        set(&mut c, RUNNING, TRUE, reason::RUNNING, "r", at(1));
        assert!(set(&mut c, FAILED, TRUE, reason::FAILED, "f", at(2)));
        let before = c.clone();
        assert!(!set(&mut c, SUCCEEDED, TRUE, reason::SUCCEEDED, "s", at(3)));
        assert!(!set(&mut c, RUNNING, TRUE, reason::RUNNING, "r", at(3)));
        assert_eq!(c, before);
        assert!(is_finished(&c));
    }

    #[test]
    fn notes_annotate_the_newest_condition_and_go_away() {
        let mut c = Vec::new();
        set(
            &mut c,
            CREATED,
            TRUE,
            reason::CREATED,
            "TFJob j is created.",
            at(0),
        );
        let note = |n: &str| vec![n.to_string()];
        let cases: [(Vec<String>, &str, bool); 4] = [
            (
                note("j-worker-0 cannot be created: taken."),
                "TFJob j is created. Note: j-worker-0 cannot be created: taken.",
                true,
            ),
            (
                note("j-worker-0 cannot be created: taken."),
                "TFJob j is created. Note: j-worker-0 cannot be created: taken.",
                false,
            ),
            (
                vec!["a.".into(), "b.".into()],
                "TFJob j is created. Note: a. b.",
                true,
            ),
            (vec![], "TFJob j is created.", true),
        ];
        for (notes, want, changed) in cases {
            assert_eq!(annotate(&mut c, &notes), changed, "{notes:?}");
            assert_eq!(c[0].message.as_deref(), Some(want));
            assert_eq!(c[0].last_transition_time, Some(Time(at(0))), "times stay");
        }
        assert!(!annotate(&mut [], &note("x")));
        // A newer condition takes the notes; the older one gets its own message back.
        annotate(&mut c, &note("n."));
        set(
            &mut c,
            RUNNING,
            TRUE,
            reason::RUNNING,
            "TFJob ns/j is running.",
            at(1),
        );
        assert!(annotate(&mut c, &note("n.")));
        assert_eq!(c[0].message.as_deref(), Some("TFJob j is created."));
        assert_eq!(
            c[1].message.as_deref(),
            Some("TFJob ns/j is running. Note: n.")
        );
    }
}
