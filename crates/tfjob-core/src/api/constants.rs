//! Values that clients of upstream's training-operator depend on (child names and labels are in
//! [`super::naming`]).

/// `framework` label value of the upstream job metrics.
pub const FRAMEWORK_NAME: &str = "tensorflow";
/// The container that gets TF_CONFIG and the default port, and whose exit code counts.
pub const DEFAULT_CONTAINER_NAME: &str = "tensorflow";
pub const DEFAULT_PORT_NAME: &str = "tfjob-port";
pub const DEFAULT_PORT: i32 = 2222;
pub const TF_CONFIG_ENV: &str = "TF_CONFIG";
/// Environment variable of the operator process that appends a cluster domain to TF_CONFIG hosts.
pub const CUSTOM_CLUSTER_DOMAIN_ENV: &str = "CUSTOM_CLUSTER_DOMAIN";

/// `runPolicy.managedBy` values.
pub const MANAGED_BY_TRAINING_OPERATOR: &str = "kubeflow.org/training-operator";
pub const MANAGED_BY_MULTIKUEUE: &str = "kueue.x-k8s.io/multikueue";

/// Longest name of a Kubernetes object that must be a DNS-1035/1123 label (Services, pod hostnames).
pub const MAX_LABEL_NAME_LEN: usize = 63;
/// Upper bound on `replicas` per type: a typo such as 2147483647 must not make the operator try
/// to create two billion pods.
pub const MAX_REPLICAS: i32 = 10_000;

/// Not upstream's: a TFJob annotation that fails the job when one of its pods waits to start
/// longer than this duration (`10m`, `1h30m`); overrides `--pending-deadline`.
pub const PENDING_DEADLINE_ANNOTATION: &str = "tfjob-operator.dev/pending-deadline";
