//! The Helm chart and the kustomize trees under `deploy/`, rendered by the real engines (Helm 4
//! through hack/helm/helm.py, kubectl's kustomize) and checked object by object: least-privilege
//! RBAC, the restricted pod, flags the operator accepts, monitoring on real metric names, the
//! values schema, chart ↔ kustomize equality, the CRD copies, and the Dockerfile. No cluster.

mod alerts;
mod chart;
mod chart_values;
mod deployment;
mod dockerfile;
mod docs;
mod kustomize_trees;
mod monitoring;
mod preflight;
mod rbac;
mod webhook;

use test_support::deploy;

use std::collections::BTreeSet;

use clap::Parser;
use serde_json::{Value, json};

use deploy::objects::{self, all, args, container, get, ids, normalised, one, rules};
use deploy::{NAMESPACE, chart_dir, helm, kustomize, repo_path};
use tfjob_operator::config::RunArgs;
use tfjob_operator::ops::Metrics;

/// The operator's rules in each namespace it watches (see "tfjob-operator.rules").
const OPERATOR_RULES: &[&str] = &[
    "core/pods: create,delete,get,list,patch,watch",
    "core/services: create,delete,get,list,patch,watch",
    "core/events: create",
    "kubeflow.org/tfjobs: delete,list,watch",
    "kubeflow.org/tfjobs/status: patch",
];

/// The cluster-scoped rule the operator needs wherever it watches: reading the TFJob CRD at
/// start, by name.
const CRD_RULE: &str =
    "apiextensions.k8s.io/customresourcedefinitions: get names=tfjobs.kubeflow.org";

/// [`OPERATOR_RULES`] and [`CRD_RULE`], sorted: the ClusterRole of a cluster-wide install.
fn cluster_wide_rules() -> Vec<String> {
    let mut rules = sorted(OPERATOR_RULES);
    rules.push(CRD_RULE.to_string());
    rules.sort();
    rules
}

const LEASE: &str = "tfjob-operator.kubeflow.org";

fn sorted(lines: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Invariants of every render: no wildcard, no secrets, no verbs outside what the operator
/// uses, no non-resource URLs.
fn assert_least_privilege(objs: &[Value]) {
    let allowed_verbs = [
        "create", "delete", "get", "list", "patch", "update", "watch",
    ];
    for role in objs
        .iter()
        .filter(|o| matches!(objects::kind(o), "Role" | "ClusterRole"))
    {
        if is_user_role(role) {
            assert_user_role(role);
            continue;
        }
        for rule in role["rules"].as_array().expect("rules") {
            let id = objects::id(role);
            assert!(rule.get("nonResourceURLs").is_none(), "{id}: {rule}");
            for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                assert!(
                    !objects::strings(&rule[field])
                        .iter()
                        .any(|s| s.contains('*')),
                    "{id} has a wildcard in {field}: {rule}"
                );
            }
            assert!(
                !objects::strings(&rule["resources"])
                    .iter()
                    .any(|r| r.starts_with("secrets")),
                "{id} grants secrets: {rule}"
            );
            for verb in objects::strings(&rule["verbs"]) {
                assert!(allowed_verbs.contains(&verb.as_str()), "{id}: verb {verb}");
            }
            // update exists only for the one Lease, by name.
            if objects::strings(&rule["verbs"]).contains(&"update".to_string()) {
                assert_eq!(
                    objects::strings(&rule["resources"]),
                    ["leases"],
                    "{id}: {rule}"
                );
                assert_eq!(
                    objects::strings(&rule["resourceNames"]).len(),
                    1,
                    "{id}: {rule}"
                );
            }
        }
    }
}

/// A role for the people who run TFJobs (aggregated into view/edit/admin), not the operator's.
fn is_user_role(role: &Value) -> bool {
    role["metadata"]["labels"]
        .as_object()
        .is_some_and(|labels| {
            labels
                .keys()
                .any(|k| k.starts_with("rbac.authorization.k8s.io/aggregate-to-"))
        })
}

/// User roles grant TFJobs and nothing else.
fn assert_user_role(role: &Value) {
    let id = objects::id(role);
    for rule in role["rules"].as_array().expect("rules") {
        assert_eq!(
            objects::strings(&rule["apiGroups"]),
            ["kubeflow.org"],
            "{id}: {rule}"
        );
        for resource in objects::strings(&rule["resources"]) {
            assert!(
                resource == "tfjobs" || resource == "tfjobs/status",
                "{id} grants {resource}: {rule}"
            );
        }
    }
}

/// The Deployment's flags, parsed and validated by the operator's own command line.
fn parse_flags(deployment: &Value) -> RunArgs {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }
    let flags = args(deployment);
    let cli =
        Cli::try_parse_from(std::iter::once("tfjob-operator".to_string()).chain(flags.clone()))
            .unwrap_or_else(|e| {
                panic!("the operator rejects the Deployment's args {flags:?}:\n{e}")
            });
    cli.run
        .validate()
        .unwrap_or_else(|e| panic!("the operator rejects the Deployment's args {flags:?}: {e}"));
    cli.run
}
