//! The canonical replica types and the case-insensitive normalisation of `tfReplicaSpecs` keys.

use std::fmt;

/// A TFJob replica type. The variant order is upstream's status-pass order
/// (Chief, Evaluator, Master, PS, Worker), so ordered maps visit types the way upstream does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReplicaType {
    Chief,
    Evaluator,
    Master,
    PS,
    Worker,
}

impl ReplicaType {
    pub const ALL: [ReplicaType; 5] = [
        ReplicaType::Chief,
        ReplicaType::Evaluator,
        ReplicaType::Master,
        ReplicaType::PS,
        ReplicaType::Worker,
    ];

    /// Canonical spelling, as used for `tfReplicaSpecs` and `replicaStatuses` keys.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaType::Chief => "Chief",
            ReplicaType::Evaluator => "Evaluator",
            ReplicaType::Master => "Master",
            ReplicaType::PS => "PS",
            ReplicaType::Worker => "Worker",
        }
    }

    /// Lower-case spelling, as used in child names, labels and TF_CONFIG.
    pub fn lower(self) -> &'static str {
        match self {
            ReplicaType::Chief => "chief",
            ReplicaType::Evaluator => "evaluator",
            ReplicaType::Master => "master",
            ReplicaType::PS => "ps",
            ReplicaType::Worker => "worker",
        }
    }

    /// Chief and Master are the same role ("the chief"); Master is kept for old clients.
    pub fn is_chief(self) -> bool {
        matches!(self, ReplicaType::Chief | ReplicaType::Master)
    }

    /// Parses a `tfReplicaSpecs` key in any letter case (`Ps`, `worker`, `CHIEF`).
    pub fn from_key(key: &str) -> Option<ReplicaType> {
        ReplicaType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(key))
    }

    /// Parses the lower-case `replica-type` label of a child object.
    pub fn from_label(label: &str) -> Option<ReplicaType> {
        ReplicaType::ALL.into_iter().find(|t| t.lower() == label)
    }
}

impl fmt::Display for ReplicaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_normalise_case_insensitively() {
        assert_eq!(ReplicaType::from_key("Ps"), Some(ReplicaType::PS));
        assert_eq!(ReplicaType::from_key("ps"), Some(ReplicaType::PS));
        assert_eq!(ReplicaType::from_key("PS"), Some(ReplicaType::PS));
        assert_eq!(ReplicaType::from_key("worker"), Some(ReplicaType::Worker));
        assert_eq!(ReplicaType::from_key("WORKER"), Some(ReplicaType::Worker));
        assert_eq!(ReplicaType::from_key("chief"), Some(ReplicaType::Chief));
        assert_eq!(ReplicaType::from_key("Master"), Some(ReplicaType::Master));
        assert_eq!(
            ReplicaType::from_key("evaluator"),
            Some(ReplicaType::Evaluator)
        );
        assert_eq!(ReplicaType::from_key("Foo"), None);
        assert_eq!(ReplicaType::from_key(""), None);
    }

    #[test]
    fn order_is_upstreams_status_pass_order() {
        let mut types = vec![
            ReplicaType::Worker,
            ReplicaType::PS,
            ReplicaType::Master,
            ReplicaType::Evaluator,
            ReplicaType::Chief,
        ];
        types.sort();
        assert_eq!(types, ReplicaType::ALL.to_vec());
    }

    #[test]
    fn labels_round_trip() {
        for t in ReplicaType::ALL {
            assert_eq!(ReplicaType::from_label(t.lower()), Some(t));
        }
        assert_eq!(ReplicaType::from_label("Worker"), None);
    }
}
