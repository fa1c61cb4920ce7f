//! The PodGroup resources of the two gang schedulers TFJobs work with (not ours: only the
//! fields the operator writes and reads are modelled; unknown fields are kept by the server).
//!
//! - Volcano: `scheduling.volcano.sh/v1beta1` PodGroup.
//! - scheduler-plugins (coscheduling): `scheduling.x-k8s.io/v1alpha1` PodGroup.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which gang scheduler `--gang-scheduler-name` selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GangScheduler {
    /// `volcano` (any letter case): Volcano PodGroups, pods wait for admission.
    Volcano,
    /// Any other name: scheduler-plugins PodGroups; pods get this `schedulerName`.
    SchedulerPlugins(String),
}

impl GangScheduler {
    /// Parses `--gang-scheduler-name`; empty means no gang scheduling.
    pub fn from_flag(name: &str) -> Option<GangScheduler> {
        match name.trim() {
            "" => None,
            n if n.eq_ignore_ascii_case("volcano") => Some(GangScheduler::Volcano),
            n => Some(GangScheduler::SchedulerPlugins(n.to_string())),
        }
    }

    /// The `schedulerName` given to pods that do not name one.
    pub fn scheduler_name(&self) -> &str {
        match self {
            GangScheduler::Volcano => "volcano",
            GangScheduler::SchedulerPlugins(name) => name,
        }
    }

    /// API group, version and kind of this scheduler's PodGroup.
    pub fn pod_group_gvk(&self) -> (&'static str, &'static str, &'static str) {
        match self {
            GangScheduler::Volcano => ("scheduling.volcano.sh", "v1beta1", "PodGroup"),
            GangScheduler::SchedulerPlugins(_) => ("scheduling.x-k8s.io", "v1alpha1", "PodGroup"),
        }
    }
}

pub mod volcano {
    use super::*;
    use kube_derive::CustomResource;

    /// Volcano's PodGroup spec (the fields upstream's operator writes).
    #[derive(
        CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema,
    )]
    #[kube(
        crates(kube_core = "::kube_core"),
        group = "scheduling.volcano.sh",
        version = "v1beta1",
        kind = "PodGroup",
        plural = "podgroups",
        namespaced,
        status = "PodGroupStatus",
        derive = "PartialEq"
    )]
    #[serde(rename_all = "camelCase")]
    pub struct PodGroupSpec {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub min_member: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub queue: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub priority_class_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub min_resources: Option<BTreeMap<String, Quantity>>,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct PodGroupStatus {
        /// `Pending`, `Inqueue`, `Running`, `Unknown` or `Completed`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub phase: Option<String>,
    }
}

pub mod scheduler_plugins {
    use super::*;
    use kube_derive::CustomResource;

    /// scheduler-plugins' PodGroup spec.
    #[derive(
        CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema,
    )]
    #[kube(
        crates(kube_core = "::kube_core"),
        group = "scheduling.x-k8s.io",
        version = "v1alpha1",
        kind = "PodGroup",
        plural = "podgroups",
        namespaced,
        status = "PodGroupStatus",
        derive = "PartialEq"
    )]
    #[serde(rename_all = "camelCase")]
    pub struct PodGroupSpec {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub min_member: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub min_resources: Option<BTreeMap<String, Quantity>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub schedule_timeout_seconds: Option<i32>,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct PodGroupStatus {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub phase: Option<String>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_selection_follows_upstream() {
        assert_eq!(GangScheduler::from_flag(""), None);
        assert_eq!(
            GangScheduler::from_flag("Volcano"),
            Some(GangScheduler::Volcano)
        );
        assert_eq!(
            GangScheduler::from_flag("scheduler-plugins-scheduler"),
            Some(GangScheduler::SchedulerPlugins(
                "scheduler-plugins-scheduler".into()
            ))
        );
        assert_eq!(GangScheduler::Volcano.scheduler_name(), "volcano");
        assert_eq!(
            GangScheduler::Volcano.pod_group_gvk().0,
            "scheduling.volcano.sh"
        );
    }
}
