//! Reconciling one TFJob: a pure [`plan`] computed from cached state, applied by a thin shell.

pub mod children;
pub mod conditions;
mod finish;
pub mod gang;
pub mod indexes;
pub mod messages;
pub mod observe;
pub mod planner;
mod replicas;
mod status;
pub mod tf_config;

pub use children::ServiceMode;
pub use gang::PodGroupAction;
pub use planner::plan_resolved;
pub use planner::{ChildRef, JobCounter, JobEvent, Observed, Plan, PlanConfig, PodWarning, plan};

#[cfg(test)]
mod plan_tests;

#[cfg(test)]
mod plan_props;
