//! The operations layer on the real control plane, through the real `tfjob-operator` binary run
//! as a child process: paged initial list, re-list after 410 Gone, namespace and label-selector
//! scoping, leader election and hand-over, every metric of docs/metrics.md scraped over HTTP,
//! `/readyz` and `/healthz`, SIGTERM, and the JSON log format.
//!
//! Each test has its own namespace(s) and scopes its operators to them, so the tests of this file
//! run in parallel on one control plane. Two take [`EXCLUSIVE`] for writing and run alone: the
//! one that compacts etcd and resets the apiserver's TFJob watch cache (every other operator
//! would see that), and the one that creates 2,000 jobs (it saturates the control plane, which
//! would starve the lease renewals and timings measured by the others).

mod leadership;
mod listing;
mod observability;
mod scoping;

use test_support as support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::RwLock;

use support::audit::{operator_writes, pod_creates};
use support::binary::{OperatorBinary, Scrape, http, message};
use support::etcd::{bump_and_compact, etcd_endpoint};
use support::operator::{has, sim_kubelet};
use support::pod_history::PodHistory;
use support::*;
use tfjob_core::api::TFJob;

/// Taken for reading by every test; for writing by the test that disturbs the whole apiserver.
static EXCLUSIVE: RwLock<()> = RwLock::const_new(());

// ---------------------------------------------------------------------------------------------
// The operator as a child process
// ---------------------------------------------------------------------------------------------

/// Starts `tfjob-operator run ARGS` against the test control plane (JSON logs, both endpoints on
/// free loopback ports) and waits until it serves them. `env` adds variables to an otherwise
/// empty environment (so a `RUST_LOG` or `TFJOB_*` of the caller cannot change the flags under
/// test).
async fn start_operator(name: &str, args: &[&str], env: &[(&str, &str)]) -> OperatorBinary {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    OperatorBinary::start_with_env(name, &control_plane().kubeconfig, &args, env).await
}

/// `(status, body)` of a probe endpoint, or the connection error.
async fn probe(operator: &OperatorBinary, path: &str) -> Result<(u16, String), String> {
    let probes = operator.probes.expect("the operator serves its probes");
    http(probes, "GET", path, "")
        .await
        .map_err(|e| e.to_string())
}

/// Sum of the samples of `name` whose labels include `labels`; `None` if there is none.
fn sample(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let present = scrape.matching(name, labels).next().is_some();
    present.then(|| scrape.sum(name, labels))
}

// ---------------------------------------------------------------------------------------------
// Cluster helpers
// ---------------------------------------------------------------------------------------------

const FAST: &str = "sim.tfjob-operator.dev/pending-ms: '0', sim.tfjob-operator.dev/run-ms: '300'";
const FOREVER: &str =
    "sim.tfjob-operator.dev/pending-ms: '0', sim.tfjob-operator.dev/run-forever: 'true'";

/// A TFJob with one replica type.
fn job(
    name: &str,
    labels: &[(&str, &str)],
    run_policy: Value,
    replicas: i32,
    policy: &str,
    annotations: &str,
) -> TFJob {
    let annotations: BTreeMap<String, String> = annotations
        .split(", ")
        .filter(|a| !a.is_empty())
        .map(|a| {
            let (k, v) = a.split_once(": ").expect("key: value");
            (k.to_string(), v.trim_matches('\'').to_string())
        })
        .collect();
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    serde_json::from_value(json!({
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "runPolicy": run_policy,
            "tfReplicaSpecs": {"Worker": {
                "replicas": replicas,
                "restartPolicy": policy,
                "template": {
                    "metadata": {"annotations": annotations},
                    "spec": {"containers": [{"name": "tensorflow", "image": "tf"}]}
                }
            }}
        }
    }))
    .expect("a valid TFJob")
}

async fn create(ctx: &TestContext, namespace: &str, job: &TFJob) {
    Api::<TFJob>::namespaced(ctx.client.clone(), namespace)
        .create(&PostParams::default(), job)
        .await
        .unwrap_or_else(|e| panic!("creating TFJob {namespace}/{} failed: {e}", job.name_any()));
}

async fn pods_in(ctx: &TestContext, namespace: &str) -> Vec<String> {
    let mut names: Vec<String> = Api::<Pod>::namespaced(ctx.client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .expect("list pods")
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    names.sort();
    names
}

/// Waits until the TFJob `namespace/name` has condition `type_=True`.
async fn await_job(
    ctx: &TestContext,
    namespace: &str,
    name: &str,
    type_: &str,
    timeout: Duration,
) -> TFJob {
    let jobs: Api<TFJob> = Api::namespaced(ctx.client.clone(), namespace);
    await_object(
        &jobs,
        name,
        timeout,
        &format!("{name} to be {type_}"),
        |j| has(j, type_),
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// A metric name, labels its sample must have, and the value expected (summed over samples).
type Expected<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);
