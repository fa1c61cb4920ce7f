//! One reconcile pass as a pure function: [`plan`] takes a TFJob, what the operator's caches
//! hold of its children and the time, and returns what to do and the new status. No I/O, no
//! clock, no randomness: the controller shell observes and applies, this module decides.
//!
//! - [`planner`]: the pass, in upstream's order (the only file that orchestrates);
//! - [`rules`]: the decisions, one pure function per concern, each with its table test;
//! - [`transitions`]: a decided state change → its condition, event and counter (one place);
//! - [`children`] and [`tf_config`]: the pods and Services to create, and their TF_CONFIG;
//! - [`observe`]: the facts about cached children that decisions read;
//! - [`input`], [`output`]: what a pass takes and gives;
//! - [`coalesce`]: when a planned status change is written (progress waits a short window);
//! - [`conditions`], [`messages`], [`indexes`]: upstream's condition algorithm and texts, and
//!   the `completedIndexes` format.

pub mod children;
pub mod coalesce;
pub mod conditions;
pub mod diagnosis;
pub mod indexes;
pub mod input;
pub mod messages;
pub mod observe;
pub mod output;
pub mod planner;
pub mod rules;
pub mod tf_config;
pub mod transitions;

pub use input::{Observed, PlanConfig};
pub use output::{ChildRef, JobCounter, JobEvent, Plan, PodGroupAction, PodWarning};
pub use planner::{plan, plan_resolved, plan_undecodable};

#[cfg(test)]
mod scenarios;

#[cfg(test)]
mod properties;

#[cfg(test)]
mod hostile;
