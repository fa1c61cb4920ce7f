//! `tfjob-operator check` as the chart's `helm test` hook runs it — the hook pod's own args, as
//! the operator's ServiceAccount — on a good install and on each broken one.

use super::*;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;
use support::deploy::{NAMESPACE, cluster, helm, objects};

/// The check as the helm test runs it: its report, and whether it passed.
struct Preflight {
    kubeconfig: std::path::PathBuf,
    args: Vec<String>,
}

impl Preflight {
    async fn run(&self) -> (bool, String) {
        let env = [
            ("POD_NAME", "tfjob-operator-preflight"),
            ("POD_NAMESPACE", NAMESPACE),
        ];
        let (passed, stdout, stderr) = run_binary(&self.kubeconfig, &self.args, &env).await;
        (passed, format!("{stdout}{stderr}"))
    }

    /// Runs it until it fails with a FAIL line that contains `problem` followed by the fix
    /// (the apiserver's RBAC authorizer sees a changed role a moment later).
    async fn fails_with(&self, case: &str, problem: &str) {
        wait_for(
            secs(20),
            &format!("{case}: a FAIL line with {problem:?}"),
            || async {
                let (passed, report) = self.run().await;
                let line = report
                    .lines()
                    .position(|l| l.starts_with("FAIL") && l.contains(problem));
                match line {
                    Some(line) if !passed => {
                        let fix = report.lines().nth(line + 1).unwrap_or_default();
                        assert!(
                            fix.trim_start().starts_with('→'),
                            "{case}: a fix follows:\n{report}"
                        );
                        Ok(())
                    }
                    _ => Err(report),
                }
            },
        )
        .await;
    }
}

fn upstream_webhook() -> ValidatingWebhookConfiguration {
    serde_json::from_value(json!({
        "metadata": { "name": "validator.training-operator.kubeflow.org" },
        "webhooks": [{
            "name": "validator.tfjob.training-operator.kubeflow.org",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            // Ignore, so that TFJob writes elsewhere in this control plane are not refused.
            "failurePolicy": "Ignore",
            "clientConfig": { "service": {
                "name": "training-operator", "namespace": "kubeflow",
                "path": "/validate-kubeflow-org-v1-tfjob" } },
            "rules": [{ "apiGroups": ["kubeflow.org"], "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"], "resources": ["tfjobs"] }]
        }]
    }))
    .expect("a webhook configuration")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_on_a_good_install_and_names_each_broken_one() {
    let _turn = turn().await;
    let admin = support::client().await;
    let ctx = TestContext::new("preflight").await;
    install_project_crd().await;
    let values = json!({ "leaderElection": { "enabled": true } });
    let installed = cluster::install(&admin, &helm::render(&values), NAMESPACE).await;
    let hooks = helm::test_hooks(&values);
    let hook = objects::one(&hooks, "Pod");
    let dir = std::env::temp_dir().join(format!("tfjob-preflight-{}", support::unique_suffix()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let check = Preflight {
        kubeconfig: cluster::operator_kubeconfig(&dir),
        args: objects::strings(&hook["spec"]["containers"][0]["args"]),
    };
    assert_eq!(check.args[0], "check");

    // A good install: nothing fails.
    let (passed, report) = check.run().await;
    assert!(passed, "the good install passes:\n{report}");
    for expected in [
        "PASS  apiserver",
        "PASS  crd        tfjobs.kubeflow.org keeps every field the operator stores",
        "PASS  rbac",
        "PASS  webhook    tfjob-operator-validator",
        "PASS  lease      Lease tfjob-operator.kubeflow.org is free",
    ] {
        assert!(
            report.lines().any(|l| l.starts_with(expected)),
            "{expected:?} in:\n{report}"
        );
    }

    // A verb missing from the ClusterRole.
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    let original = roles.get("tfjob-operator").await.expect("the ClusterRole");
    let mut narrowed = serde_json::to_value(&original).expect("JSON");
    for rule in narrowed["rules"].as_array_mut().expect("rules") {
        let resources = rule["resources"].as_array().cloned().unwrap_or_default();
        if resources.contains(&json!("pods")) {
            let verbs = rule["verbs"].as_array_mut().expect("verbs");
            verbs.retain(|v| v != "watch");
        }
    }
    let narrowed: ClusterRole = serde_json::from_value(narrowed).expect("a ClusterRole");
    roles
        .replace("tfjob-operator", &PostParams::default(), &narrowed)
        .await
        .expect("narrow the role");
    check
        .fails_with("missing verb", "watch pods (all namespaces)")
        .await;
    let current = roles.get("tfjob-operator").await.expect("the ClusterRole");
    let mut restored = original.clone();
    restored.metadata.resource_version = current.metadata.resource_version;
    roles
        .replace("tfjob-operator", &PostParams::default(), &restored)
        .await
        .expect("restore the role");

    // Upstream's webhook entry for TFJobs still installed.
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(admin.clone());
    let foreign = configs
        .create(&PostParams::default(), &upstream_webhook())
        .await
        .expect("upstream's webhook configuration");
    check
        .fails_with(
            "foreign webhook",
            "routes TFJob writes to Service kubeflow/training-operator, not to this operator",
        )
        .await;
    configs
        .delete(
            &foreign.metadata.name.clone().unwrap(),
            &DeleteParams::default(),
        )
        .await
        .expect("delete it");

    // The Lease held by another controller; upstream's own Lease held too (a warning).
    ensure_kubeflow_namespace().await;
    let leases: Api<Lease> = Api::namespaced(admin.clone(), NAMESPACE);
    leases
        .create(
            &PostParams::default(),
            &held_lease("tfjob-operator.kubeflow.org"),
        )
        .await
        .expect("a foreign holder");
    let upstream_leases: Api<Lease> = Api::namespaced(admin.clone(), "kubeflow");
    upstream_leases
        .create(
            &PostParams::default(),
            &held_lease("1ca428e5.training-operator.kubeflow.org"),
        )
        .await
        .expect("upstream's Lease");
    check
        .fails_with(
            "foreign Lease holder",
            "Lease tfjob-system/tfjob-operator.kubeflow.org is held by training-operator-6c7d8-xk2lp_",
        )
        .await;
    let (_, report) = check.run().await;
    assert!(
        report.lines().any(|l| l.starts_with("WARN  upstream")
            && l.contains("a training-operator is running: Lease kubeflow/1ca428e5.training-operator.kubeflow.org")),
        "a running training-operator is reported:\n{report}"
    );
    leases
        .delete("tfjob-operator.kubeflow.org", &DeleteParams::default())
        .await
        .expect("delete it");
    upstream_leases
        .delete(
            "1ca428e5.training-operator.kubeflow.org",
            &DeleteParams::default(),
        )
        .await
        .expect("delete it");

    // Upstream's CRD.
    install_upstream_crd().await;
    check
        .fails_with(
            "incompatible CRD",
            "tfjobs.kubeflow.org drops fields the operator stores (upstream's CRD?): status.replicaStatuses[*].restarts",
        )
        .await;

    // No CRD at all.
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    crds.delete("tfjobs.kubeflow.org", &DeleteParams::default())
        .await
        .expect("delete the CRD");
    await_crd_gone("tfjobs.kubeflow.org").await;
    check
        .fails_with("missing CRD", "tfjobs.kubeflow.org is not installed")
        .await;

    install_project_crd().await;
    wait_for(secs(20), "the repaired install to pass again", || async {
        match check.run().await {
            (true, _) => Ok(()),
            (false, report) => Err(report),
        }
    })
    .await;
    installed.uninstall(&admin).await;
    ctx.teardown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
