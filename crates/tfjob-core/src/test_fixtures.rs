//! Fixtures shared by the unit tests of several modules.

use jiff::Timestamp;

use crate::api::TFJob;

/// Every example shipped in `examples/`, by file name.
pub const EXAMPLES: [(&str, &str); 7] = [
    (
        "tfjob-seed.yaml",
        include_str!("../../../examples/tfjob-seed.yaml"),
    ),
    (
        "dist-mnist.yaml",
        include_str!("../../../examples/dist-mnist.yaml"),
    ),
    (
        "chief-worker-evaluator.yaml",
        include_str!("../../../examples/chief-worker-evaluator.yaml"),
    ),
    (
        "restart-policy-always.yaml",
        include_str!("../../../examples/restart-policy-always.yaml"),
    ),
    (
        "restart-policy-onfailure.yaml",
        include_str!("../../../examples/restart-policy-onfailure.yaml"),
    ),
    (
        "restart-policy-never.yaml",
        include_str!("../../../examples/restart-policy-never.yaml"),
    ),
    (
        "restart-policy-exitcode.yaml",
        include_str!("../../../examples/restart-policy-exitcode.yaml"),
    ),
];

/// `t(s)`: a fixed instant plus `s` seconds, so tests read as timelines.
pub fn t(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

/// A TFJob from YAML, given the namespace `ns` and a UID as the apiserver would.
pub fn job(yaml: &str) -> TFJob {
    let mut job: TFJob = serde_saphyr::from_str(yaml).unwrap();
    job.metadata.namespace.get_or_insert_with(|| "ns".into());
    job.metadata.uid.get_or_insert_with(|| "job-uid".into());
    job
}
