//! Reliability: faults injected into a real control plane must change nothing a user can see
//! except a delay. Every test runs the real `tfjob-operator` binary and the simulated kubelet
//! against the local kube-apiserver, with seeded scripts, and checks exact outcomes.
//!
//! - `two_hundred_jobs_survive_an_operator_sigkilled_twelve_times`: 200 TFJobs (PS/Worker/Chief,
//!   `Never`/`OnFailure`/`ExitCode`, some failing, some restarting once then succeeding, every
//!   twentieth with 50 workers, others past `backoffLimit` or `activeDeadlineSeconds`, deleted
//!   by their TTL, or created suspended and resumed) while the release binary is SIGKILLed 12
//!   times at seeded moments, in turn after a freeze of its traffic (the crash instant known
//!   exactly), at a random instant, and during its initial list. Afterwards every job is as its
//!   pods dictate; its conditions never repeat or go out of order, and at least 95 % show the
//!   canonical sequence; restart counts are as scripted; no pod or service is created more
//!   often than scripted (audit log) nor exists with two UIDs (watch); each frozen incarnation
//!   counted exactly the writes the apiserver acknowledged to it; the job counters summed over
//!   all incarnations never exceed the real transitions and miss only those whose reconcile a
//!   kill cut off; each transition's event is written exactly once for every job no kill
//!   interrupted (at most 75 % are).
//! - `jobs_converge_across_an_apiserver_restart_and_etcd_compaction`: jobs submitted before,
//!   during and after a kube-apiserver restart (its watch caches start empty; etcd compacted just
//!   before, so old resourceVersions are gone: 410 Gone and a re-list) all reach their scripted
//!   end state with well-formed conditions and scripted restart counts; the operator process
//!   never exits or panics; no pod or service is created twice.
//! - `jobs_converge_through_injected_api_faults_without_a_hot_loop`: with 429 (Retry-After),
//!   500, dropped connections (before and after the apiserver acted), delays and cut watches on
//!   about a third of the operator's requests, every job still reaches its scripted end state,
//!   no child is created twice, and the request rate stays bounded (write attempts per write
//!   that took effect, the busiest second, and near silence once every job has finished).
//!
//! The status that records why children go (a counted restart, a finished job's clean-up) is
//! stored before any of them is deleted, and a restart is counted once per failed pod (its UID
//! is kept in `replicaStatuses[T].restartedPods` until it is gone), so no kill or API error
//! between the two loses a restart, counts one twice or re-runs a finished job. Events are
//! written after the status: a kill may lose one (its job is then named as interrupted), never
//! write one twice.
//!
//! The tests take turns (one control plane; the apiserver restart would disturb the others, and
//! a 2-core machine measures rates better without neighbours). The three that mostly wait — a
//! black hole held for 2 minutes, an apiserver down for 60 s at start, a quota storm — run side
//! by side in one test (`waiting.rs`).

mod analysis;
mod apiserver;
mod black_hole;
mod faults;
mod kills;
mod partition;
mod persistent;
mod startup;
mod waiting;
mod workload;

use test_support as support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use analysis::*;
use support::binary::{OperatorBinary, Scrape};
use support::etcd::{bump_and_compact, etcd_endpoint};
use support::operator::sim_kubelet;
use support::pod_history::PodHistory;
use support::proxy::{FaultProxy, Faults, Outcome, Record};
use support::*;
use tfjob_core::api::TFJob;
use workload::*;

/// One test at a time (see the module docs).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------------
// Scripted jobs
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Duplicates: the audit log and a watch
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Crash-consistency soak
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Apiserver restart and etcd compaction
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Injected API faults
// ---------------------------------------------------------------------------------------------
