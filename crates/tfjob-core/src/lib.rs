//! tfjob-core: the `kubeflow.org/v1` TFJob API and the pure planner of tfjob-operator.
//!
//! - [`api`]: the resource as it travels on the wire, its CRD, defaults, validation and the
//!   names and labels of its children;
//! - [`plan`]: one reconcile pass as a function — observed state and the time in, the actions
//!   to take and the new status out.
//!
//! Nothing here performs I/O: this crate depends on no client, runtime or network crate.

pub mod api;
pub mod plan;

#[cfg(test)]
pub(crate) mod test_fixtures;
