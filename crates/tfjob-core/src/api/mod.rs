//! The `kubeflow.org/v1` TFJob API: wire types, canonical replica types, policies, the CRD,
//! in-memory defaults and validation.

pub mod annotations;
pub mod constants;
pub mod crd;
pub mod effective;
pub mod installed_crd;
pub mod naming;
pub mod podgroup;
pub mod policy;
pub mod quantity;
pub mod replica_type;
pub mod small_map;
pub mod template;
pub mod types;
pub mod uid;
pub mod validation;

pub use effective::{EffectiveReplica, EffectiveSpec, is_managed_by_this_operator};
pub use naming::{ServiceMode, child_name};
pub use policy::{CleanPodPolicy, RestartPolicy, SuccessPolicy};
pub use replica_type::ReplicaType;
pub use small_map::SmallMap;
pub use template::CompactTemplate;
pub use types::{
    JobCondition, JobStatus, ReplicaFailure, ReplicaSpec, ReplicaStatus, RunPolicy,
    SchedulingPolicy, TFJob, TFJobSpec,
};
pub use uid::Uid;
pub use validation::{ErrorKind, FieldError, ValidationError, validate, validate_update};
