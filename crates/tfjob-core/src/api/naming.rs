//! The identity of a TFJob's children: their names, their labels and how replicas address each
//! other. Everything that names or recognises a child uses this module — validation (a child name
//! must fit a Service name), the builder of pods and Services, TF_CONFIG's host names, the reading
//! of labels back from cached objects and the label selector of the controller's watches — so the
//! scheme is written once.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::replica_type::ReplicaType;

/// Name of the controller: label value, event reporter, field manager.
pub const CONTROLLER_NAME: &str = "tfjob-controller";

pub const LABEL_OPERATOR_NAME: &str = "training.kubeflow.org/operator-name";
pub const LABEL_JOB_NAME: &str = "training.kubeflow.org/job-name";
pub const LABEL_REPLICA_TYPE: &str = "training.kubeflow.org/replica-type";
pub const LABEL_REPLICA_INDEX: &str = "training.kubeflow.org/replica-index";
pub const LABEL_JOB_ROLE: &str = "training.kubeflow.org/job-role";
pub const JOB_ROLE_MASTER: &str = "master";

/// `<job>-<lowercase type>-<index>`: the name of a replica's pod and of its Service.
pub fn child_name(job_name: &str, replica_type: ReplicaType, index: i32) -> String {
    format!("{job_name}-{}-{index}", replica_type.lower())
}

/// The label selector that scopes child watches to this operator's own pods and Services.
pub fn operator_selector() -> String {
    format!("{LABEL_OPERATOR_NAME}={CONTROLLER_NAME}")
}

/// The two labels every child of `job_name` carries.
pub fn job_labels(job_name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_OPERATOR_NAME.to_string(), CONTROLLER_NAME.to_string()),
        (LABEL_JOB_NAME.to_string(), job_name.to_string()),
    ])
}

/// The four labels of a replica's pod and Service (also the Service's selector).
pub fn replica_labels(
    job_name: &str,
    replica_type: ReplicaType,
    index: i32,
) -> BTreeMap<String, String> {
    let mut labels = job_labels(job_name);
    labels.insert(LABEL_REPLICA_TYPE.into(), replica_type.lower().into());
    labels.insert(LABEL_REPLICA_INDEX.into(), index.to_string());
    labels
}

/// The replica type and index a child's labels name; a missing or malformed label yields `None`
/// (such objects are left alone, as upstream leaves them).
pub fn replica_of(labels: &BTreeMap<String, String>) -> (Option<ReplicaType>, Option<i32>) {
    let replica_type = labels
        .get(LABEL_REPLICA_TYPE)
        .and_then(|l| ReplicaType::from_label(l));
    let index = labels
        .get(LABEL_REPLICA_INDEX)
        .and_then(|l| l.parse::<i32>().ok())
        .filter(|i| *i >= 0);
    (replica_type, index)
}

/// How replicas find each other.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServiceMode {
    /// Upstream's layout: one headless Service per replica (`<job>-<type>-<i>.<ns>.svc`).
    #[default]
    PerReplica,
    /// One headless Service per job; pods get `hostname`/`subdomain`
    /// (`<job>-<type>-<i>.<job>.<ns>.svc`). Half the writes, and no cluster Service limit.
    PerJob,
}

impl ServiceMode {
    /// The spellings of `--service-mode`.
    pub const VALUES: [&'static str; 2] = ["per-replica", "per-job"];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceMode::PerReplica => "per-replica",
            ServiceMode::PerJob => "per-job",
        }
    }
}

impl fmt::Display for ServiceMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "per-replica" => Ok(ServiceMode::PerReplica),
            "per-job" => Ok(ServiceMode::PerJob),
            other => Err(format!(
                "{other:?} is not a service mode; use per-replica or per-job"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_names_are_job_type_index() {
        let cases = [
            ("mnist", ReplicaType::Worker, 0, "mnist-worker-0"),
            ("mnist", ReplicaType::PS, 12, "mnist-ps-12"),
            ("a", ReplicaType::Evaluator, 1, "a-evaluator-1"),
            ("cj", ReplicaType::Chief, 0, "cj-chief-0"),
            ("cj", ReplicaType::Master, 0, "cj-master-0"),
        ];
        for (job, replica_type, index, want) in cases {
            assert_eq!(child_name(job, replica_type, index), want);
        }
    }

    #[test]
    fn labels_read_back_what_they_wrote() {
        type Labels = &'static [(&'static str, &'static str)];
        type Read = (Option<ReplicaType>, Option<i32>);
        let cases: [(Labels, Read); 5] = [
            (
                &[(LABEL_REPLICA_TYPE, "worker"), (LABEL_REPLICA_INDEX, "3")],
                (Some(ReplicaType::Worker), Some(3)),
            ),
            (
                &[(LABEL_REPLICA_TYPE, "Worker"), (LABEL_REPLICA_INDEX, "3")],
                (None, Some(3)),
            ),
            (&[(LABEL_REPLICA_INDEX, "-1")], (None, None)),
            (&[(LABEL_REPLICA_INDEX, "x")], (None, None)),
            (&[], (None, None)),
        ];
        for (labels, want) in cases {
            let labels = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(replica_of(&labels), want, "{labels:?}");
        }
        let written = replica_labels("j", ReplicaType::PS, 2);
        assert_eq!(replica_of(&written), (Some(ReplicaType::PS), Some(2)));
        assert_eq!(written.len(), 4);
    }

    #[test]
    fn service_modes_parse_their_flag_spellings() {
        for mode in [ServiceMode::PerReplica, ServiceMode::PerJob] {
            assert_eq!(mode.as_str().parse::<ServiceMode>(), Ok(mode));
        }
        assert_eq!(
            ServiceMode::VALUES.map(|v| v.parse::<ServiceMode>().is_ok()),
            [true; 2]
        );
        assert!("PerJob".parse::<ServiceMode>().is_err());
    }

    #[test]
    fn the_selector_matches_the_labels() {
        assert_eq!(
            operator_selector(),
            "training.kubeflow.org/operator-name=tfjob-controller"
        );
    }
}
