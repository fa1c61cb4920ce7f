//! tfjob-operator: a Kubernetes operator for Kubeflow TFJobs (`kubeflow.org/v1`).

pub mod api;

#[cfg(test)]
pub(crate) mod test_fixtures;
