//! The decisions of a pass, one concern per file, each a pure function with explicit inputs and
//! its own table test (the style of Kubernetes' `pkg/controller/job`). To change *when* something
//! happens, change its file and its table; the scenarios in `plan/scenarios` check that the
//! orchestration still ties them together.
//!
//! | file | decides |
//! |---|---|
//! | [`batches`] | how many children one pass builds (memory bound for large jobs) |
//! | [`slots`] | which replica indices need a pod, which pods are surplus, completed or failed |
//! | [`restart`] | what happens to a failed pod under each restart policy |
//! | [`limits`] | back-off (restarts so far against `backoffLimit`) and the deadline |
//! | [`stuck`] | pods stuck Terminating: a Warning, and force deletion on a lost node |
//! | [`success`] | when the job is running and when it has succeeded |
//! | [`failure`] | when failed replicas fail the job |
//! | [`counts`] | `replicaStatuses`: counters and the memory kept across pods |
//! | [`services`] | the headless Services per replica or per job |
//! | [`cleanup`] | what a finished or suspended job deletes (`cleanPodPolicy`) |
//! | [`ttl`] | when a finished job is deleted (`ttlSecondsAfterFinished`) |
//! | [`suspend`] | the transitions of suspend and resume |
//! | [`gang`] | the PodGroup of gang scheduling |

pub mod batches;
pub mod cleanup;
pub mod counts;
pub mod failure;
pub mod gang;
pub mod limits;
pub mod restart;
pub mod services;
pub mod slots;
pub mod stuck;
pub mod success;
pub mod suspend;
pub mod ttl;
