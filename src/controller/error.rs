//! Why a reconcile failed. Each failure is retried with per-job exponential back-off and
//! counted in `tfjob_operator_reconcile_errors_total{kind}`, whose label values are derived from
//! the variants (and exported at 0 from the start, so alerts see every kind).

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error, strum::EnumDiscriminants)]
#[strum_discriminants(
    name(ReconcileErrorKind),
    derive(strum::IntoStaticStr, strum::VariantArray),
    strum(serialize_all = "snake_case")
)]
pub enum ReconcileError {
    /// Creating or deleting children (pods, Services, the PodGroup) failed. `progressed`: other
    /// writes of the pass took effect, so the failure is not (yet) a persistent one.
    #[error("{failed} child write(s) failed, first: {first}")]
    ChildWrite {
        failed: usize,
        first: String,
        progressed: bool,
    },
    #[error("cannot write the status of the TFJob: {0}")]
    StatusWrite(#[source] kube::Error),
    /// The job changed since the view the status was planned from (409): plan again.
    #[error("the TFJob changed since it was read; planning again from the new version")]
    StatusConflict,
    #[error("cannot delete the TFJob after its TTL: {0}")]
    JobDelete(#[source] kube::Error),
    #[error("cannot mark the undecodable TFJob as failed: {0}")]
    Undecodable(#[source] kube::Error),
    /// A bug: the reconcile panicked. Only this job is retried (with back-off); the process
    /// and every other job go on.
    #[error("the reconcile panicked: {0}")]
    Panicked(String),
}

impl ReconcileError {
    /// The errors metric's label for this error.
    pub fn kind(&self) -> &'static str {
        ReconcileErrorKind::from(self).into()
    }

    /// Whether the failed pass still moved the job on (some of its writes took effect): its
    /// retry then starts the back-off afresh, so flaky requests slow a job down only a little,
    /// while a failure that stops every write (a quota, a namespace being deleted) backs off
    /// further each time.
    pub fn progressed(&self) -> bool {
        matches!(
            self,
            ReconcileError::ChildWrite {
                progressed: true,
                ..
            }
        )
    }
}

/// Every value the errors metric's `kind` label takes.
pub fn kinds() -> impl Iterator<Item = &'static str> {
    use strum::VariantArray;
    ReconcileErrorKind::VARIANTS.iter().map(|k| k.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_stable_snake_case_labels() {
        assert_eq!(
            kinds().collect::<Vec<_>>(),
            [
                "child_write",
                "status_write",
                "status_conflict",
                "job_delete",
                "undecodable",
                "panicked"
            ]
        );
        let error = ReconcileError::ChildWrite {
            failed: 2,
            first: "quota".into(),
            progressed: false,
        };
        assert_eq!(error.kind(), "child_write");
        assert_eq!(error.to_string(), "2 child write(s) failed, first: quota");
    }
}
