//! Writes of a pass's children, in slow-start batches.
//!
//! Like the ReplicaSet and Job controllers, a pass sends one write, then two, four … (at most
//! [`MAX_IN_FLIGHT`] at once) and stops at the first batch with an error: under a quota of
//! `pods: 0`, in a namespace being deleted or with a webhook refusing the pods, a pass costs
//! one request and one Warning instead of one of each per child, and one large job never
//! holds the apiserver's attention for long. Creates take the objects by value and drop each
//! batch once it is written, so a pass never keeps more than it was planned with.

use futures::future::join_all;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::debug;

use tfjob_core::plan::{ChildRef, JobEvent};

/// Writes in flight at most for one kind of child of one job: enough to keep the apiserver
/// busy, few enough that other jobs' writes do not queue long behind one large job's.
pub const MAX_IN_FLIGHT: usize = 16;

/// The sizes of the slow-start batches for `n` writes: 1, 2, 4 … capped at [`MAX_IN_FLIGHT`].
fn batch_sizes(n: usize) -> impl Iterator<Item = usize> {
    let mut left = n;
    let mut size = 1;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let batch = size.min(left);
        left -= batch;
        size = (size * 2).min(MAX_IN_FLIGHT);
        Some(batch)
    })
}

/// What the writes of one kind of child did in a pass.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Writes the pass planned.
    pub planned: usize,
    /// Names written.
    pub done: Vec<String>,
    /// Errors, one per failed write.
    pub failed: Vec<String>,
    /// Writes not sent because an earlier batch failed.
    pub not_tried: usize,
    /// Creates whose name was already taken.
    pub taken: Vec<String>,
}

/// How the events about one kind of write read (upstream's words).
pub struct Wording {
    pub kind: &'static str,
    pub ok_reason: &'static str,
    pub failed_reason: &'static str,
    /// "Created pod", the prefix of the success event.
    pub ok_text: &'static str,
    /// "Error creating", the prefix of the failure event.
    pub failed_text: &'static str,
    /// "created", for "3 of 50 pods could not be created".
    pub done_word: &'static str,
}

impl Outcome {
    /// Adds the writes of `other` (another batch of the same kind of write).
    pub fn absorb(&mut self, other: Outcome) {
        self.planned += other.planned;
        self.done.extend(other.done);
        self.failed.extend(other.failed);
        self.not_tried += other.not_tried;
        self.taken.extend(other.taken);
    }

    /// One event for the successes (`Created pod: a, b`) and one Warning for the failures: the
    /// error itself when the pass planned one write (upstream's form), else how many of the
    /// planned writes did not happen and the first error.
    pub fn events(&self, wording: &Wording) -> Vec<JobEvent> {
        let mut events = Vec::new();
        if !self.done.is_empty() {
            events.push(JobEvent {
                warning: false,
                reason: wording.ok_reason.into(),
                message: format!("{}: {}", wording.ok_text, self.done.join(", ")),
            });
        }
        if let Some(first) = self.failed.first() {
            let message = if self.planned <= 1 {
                format!("{}: {first}", wording.failed_text)
            } else {
                format!(
                    "{}: {} of {} {}s could not be {}: {first}",
                    wording.failed_text,
                    self.failed.len() + self.not_tried,
                    self.planned,
                    wording.kind,
                    wording.done_word,
                )
            };
            events.push(JobEvent {
                warning: true,
                reason: wording.failed_reason.into(),
                message,
            });
        }
        events
    }
}

/// Creates `objects` in slow-start batches; `record` sees each object the apiserver stored.
pub async fn create_all<K>(api: &Api<K>, objects: Vec<K>, record: impl Fn(&K)) -> Outcome
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let params = PostParams::default();
    let mut outcome = Outcome {
        planned: objects.len(),
        ..Default::default()
    };
    let mut rest = objects.into_iter();
    for size in batch_sizes(outcome.planned) {
        let batch: Vec<K> = rest.by_ref().take(size).collect();
        let results = join_all(batch.iter().map(|o| api.create(&params, o))).await;
        for (object, result) in batch.iter().zip(results) {
            match result {
                Ok(created) => {
                    record(&created);
                    outcome.done.push(created.name_any());
                }
                // Usually our cache lagged behind our own earlier write; who holds the name
                // is checked afterwards (adoption::resolve_taken).
                Err(kube::Error::Api(status)) if status.is_already_exists() => {
                    debug!(name = %object.name_any(), "already exists");
                    outcome.taken.push(object.name_any());
                }
                Err(error) => outcome.failed.push(error.to_string()),
            }
        }
        if !outcome.failed.is_empty() {
            outcome.not_tried = rest.len();
            break;
        }
    }
    outcome
}

/// How a child is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deletion {
    /// With the object's own grace period.
    Graceful,
    /// At once (grace period 0): for a pod whose node is lost, whose kubelet will never
    /// confirm the end of a graceful deletion.
    Force,
}

/// Deletes `children` in slow-start batches, each conditional on the UID that was observed
/// (NotFound or a UID mismatch means done); `record` sees each name that is gone or going.
pub async fn delete_all<K>(
    api: &Api<K>,
    children: &[ChildRef],
    how: Deletion,
    record: impl Fn(&str),
) -> Outcome
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let params = |child: &ChildRef| DeleteParams {
        preconditions: child.uid.clone().map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        grace_period_seconds: (how == Deletion::Force).then_some(0),
        ..Default::default()
    };
    let mut outcome = Outcome {
        planned: children.len(),
        ..Default::default()
    };
    let mut rest = children.iter();
    for size in batch_sizes(outcome.planned) {
        let batch: Vec<&ChildRef> = rest.by_ref().take(size).collect();
        let results = join_all(
            batch
                .iter()
                .map(|c| async move { api.delete(&c.name, &params(c)).await }),
        )
        .await;
        for (child, result) in batch.iter().zip(results) {
            match result {
                Ok(_) => {
                    record(&child.name);
                    outcome.done.push(child.name.clone());
                }
                // Gone already, or replaced by a newer object of the same name: nothing to do.
                Err(kube::Error::Api(status)) if status.is_not_found() || status.is_conflict() => {
                    record(&child.name)
                }
                Err(error) => outcome.failed.push(error.to_string()),
            }
        }
        if !outcome.failed.is_empty() {
            outcome.not_tried = rest.len();
            break;
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_start_at_one_and_double_up_to_the_cap() {
        let cases: [(usize, &[usize]); 6] = [
            (0, &[]),
            (1, &[1]),
            (4, &[1, 2, 1]),
            (7, &[1, 2, 4]),
            (20, &[1, 2, 4, 8, 5]),
            (
                300,
                &[
                    1, 2, 4, 8, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
                    13,
                ],
            ),
        ];
        for (n, expected) in cases {
            let sizes: Vec<usize> = batch_sizes(n).collect();
            assert_eq!(sizes, expected, "{n} writes");
            assert_eq!(sizes.iter().sum::<usize>(), n);
        }
    }

    const POD_CREATES: Wording = Wording {
        kind: "pod",
        ok_reason: "SuccessfulCreatePod",
        failed_reason: "FailedCreatePod",
        ok_text: "Created pod",
        failed_text: "Error creating",
        done_word: "created",
    };

    #[test]
    fn one_event_for_the_successes_and_one_warning_for_the_failures() {
        let event = |warning: bool, reason: &str, message: &str| JobEvent {
            warning,
            reason: reason.into(),
            message: message.into(),
        };
        let cases = [
            (
                Outcome {
                    planned: 2,
                    done: vec!["a-worker-0".into(), "a-worker-1".into()],
                    ..Default::default()
                },
                vec![event(
                    false,
                    "SuccessfulCreatePod",
                    "Created pod: a-worker-0, a-worker-1",
                )],
            ),
            (
                Outcome {
                    planned: 1,
                    failed: vec!["quota exceeded".into()],
                    ..Default::default()
                },
                vec![event(
                    true,
                    "FailedCreatePod",
                    "Error creating: quota exceeded",
                )],
            ),
            (
                Outcome {
                    planned: 50,
                    done: vec!["a-worker-0".into()],
                    failed: vec!["quota exceeded".into(), "quota exceeded".into()],
                    not_tried: 47,
                    ..Default::default()
                },
                vec![
                    event(false, "SuccessfulCreatePod", "Created pod: a-worker-0"),
                    event(
                        true,
                        "FailedCreatePod",
                        "Error creating: 49 of 50 pods could not be created: quota exceeded",
                    ),
                ],
            ),
        ];
        for (outcome, expected) in cases {
            assert_eq!(outcome.events(&POD_CREATES), expected, "{outcome:?}");
        }
    }
}
