//! tfjob-operator: a Kubernetes operator for Kubeflow TFJobs (`kubeflow.org/v1`).

pub mod api;
pub mod config;
pub mod controller;
pub mod ops;
pub mod reconcile;
pub mod sim_kubelet;
pub mod webhook;

#[cfg(test)]
pub(crate) mod test_fixtures;
