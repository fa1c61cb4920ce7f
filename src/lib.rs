//! tfjob-operator: a Kubernetes operator for Kubeflow TFJobs (`kubeflow.org/v1`).

// No `unsafe` anywhere in the crate: a test (tests/security.rs) also scans src/ and tests/.
#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod controller;
pub mod ops;
pub mod reconcile;
pub mod sim_kubelet;
pub mod webhook;

#[cfg(test)]
pub(crate) mod test_fixtures;
