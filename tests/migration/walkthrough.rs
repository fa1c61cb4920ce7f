//! docs/migration.md followed step by step on one control plane. training-operator itself
//! cannot run here, so its parts are stood in for: its CRD is this project's without the fields
//! only this project stores (upstream's shape), its TFJob controller is this operator with
//! `--allow-upstream-crd` (it writes the same children and the same status as upstream, minus
//! the extensions), its Deployment, webhook configuration and Lease are created as upstream's
//! manifests create them. Every shell command run here must appear verbatim in the guide.

use super::*;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;
use support::binary::OperatorBinary;
use support::control_plane;
use support::deploy::process::{OperatorProcess, free_address};
use support::deploy::{NAMESPACE, cluster, helm, objects};
use support::operator::{await_condition, conditions, sim_kubelet, submit};

const GUIDE: &str = "docs/migration.md";
const UPSTREAM_WEBHOOKS: &str = "validator.training-operator.kubeflow.org";
const UPSTREAM_LEASE: &str = "1ca428e5.training-operator.kubeflow.org";

/// Step 0's preflight, from a laptop (the admin's kubeconfig).
const PREFLIGHT: &str = "tfjob-operator check --leader-elect --webhook-enabled --webhook-service-namespace=tfjob-system";
/// Step 2, training-operator kept for the other frameworks.
const SCHEMES_OFF: &str = r#"kubectl -n kubeflow patch deployment training-operator --type=json -p='[{"op":"add","path":"/spec/template/spec/containers/0/args","value":["--enable-scheme=pytorchjob","--enable-scheme=mpijob","--enable-scheme=xgboostjob","--enable-scheme=paddlejob","--enable-scheme=jaxjob"]}]'"#;
/// Step 3.
const WEBHOOK_NAMES: &str = "kubectl get validatingwebhookconfiguration validator.training-operator.kubeflow.org -o jsonpath='{.webhooks[*].name}'";
const REMOVE_WEBHOOK: &str = r#"kubectl patch validatingwebhookconfiguration validator.training-operator.kubeflow.org --type=json -p='[{"op":"remove","path":"/webhooks/0"}]'"#;
/// Step 6.
const LIST_JOBS: &str = "kubectl get tfjobs -A";
const EVENTS: &str = "kubectl get events -A --field-selector source=tfjob-controller";

/// Runs a command of the guide in bash, as the cluster admin, with `tfjob-operator` and
/// `kubectl` on the PATH: (success, stdout and stderr).
async fn shell(command: &str) -> (bool, String) {
    let binary = support::workspace_binary("tfjob-operator");
    let path = format!(
        "{}:{}",
        binary.parent().expect("the binary's directory").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = tokio::process::Command::new("bash")
        .args(["-o", "pipefail", "-c", command])
        .env("PATH", path)
        .env("KUBECONFIG", &control_plane().kubeconfig)
        .output()
        .await
        .expect("bash runs");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

async fn shell_ok(command: &str) -> String {
    let (ok, output) = shell(command).await;
    assert!(ok, "`{command}` failed:\n{output}");
    output
}

/// upstream's webhook configuration: the TFJob entry first, then one other framework's.
fn upstream_webhooks() -> ValidatingWebhookConfiguration {
    let entry = |kind: &str, resource: &str| {
        json!({
            "name": format!("validator.{kind}.training-operator.kubeflow.org"),
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "clientConfig": { "service": {
                "name": "training-operator", "namespace": "kubeflow",
                "path": format!("/validate-kubeflow-org-v1-{kind}") } },
            "rules": [{ "apiGroups": ["kubeflow.org"], "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"], "resources": [resource] }]
        })
    };
    serde_json::from_value(json!({
        "metadata": { "name": UPSTREAM_WEBHOOKS },
        "webhooks": [entry("tfjob", "tfjobs"), entry("pytorchjob", "pytorchjobs")]
    }))
    .expect("a webhook configuration")
}

/// upstream's Deployment as its manifests have it (it never runs here: no scheduler).
fn upstream_deployment() -> Deployment {
    let labels = json!({ "control-plane": "kubeflow-training-operator" });
    serde_json::from_value(json!({
        "metadata": { "name": "training-operator", "labels": labels },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": labels },
            "template": {
                "metadata": { "labels": labels },
                "spec": { "containers": [{
                    "name": "training-operator",
                    "image": "kubeflow/training-operator:v1-5a5f92d",
                    "command": ["/manager"]
                }]}
            }
        }
    }))
    .expect("a Deployment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_guide_moves_a_running_job_without_losing_it() {
    let _turn = turn().await;
    let guide = std::fs::read_to_string(support::repo_path(GUIDE)).expect("the guide");
    // Step 1's command for this apiserver (1.20 here: without the CEL rule it does not know).
    let replace_crd = replace_crd_command().await;
    for command in [
        PREFLIGHT,
        &replace_crd,
        SCHEMES_OFF,
        WEBHOOK_NAMES,
        REMOVE_WEBHOOK,
        LIST_JOBS,
        EVENTS,
    ] {
        assert!(guide.contains(command), "{GUIDE} shows `{command}`");
    }
    let admin = support::client().await;
    let ctx = TestContext::new("migration").await;

    // Before: training-operator's install, running a job.
    install_upstream_crd().await;
    ensure_kubeflow_namespace().await;
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), "kubeflow");
    deployments
        .create(&PostParams::default(), &upstream_deployment())
        .await
        .expect("upstream's Deployment");
    let leases: Api<Lease> = Api::namespaced(admin.clone(), "kubeflow");
    leases
        .create(&PostParams::default(), &held_lease(UPSTREAM_LEASE))
        .await
        .expect("upstream's Lease");
    let kubeconfig = &control_plane().kubeconfig;
    let mut upstream = OperatorBinary::start(
        "stand-in-for-training-operator",
        kubeconfig,
        &["--allow-upstream-crd".to_string()],
    )
    .await;
    let kubelet = sim_kubelet(&ctx);
    submit(&ctx, &chief_and_quick_worker("resnet")).await;
    await_condition(&ctx, "resnet", "Running", secs(30)).await;
    let before = await_worker_status(&ctx, "resnet", "Worker", (1, None)).await;
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(admin.clone());
    configs
        .create(&PostParams::default(), &upstream_webhooks())
        .await
        .expect("upstream's webhook configuration");
    let pods: Api<Pod> = ctx.api();
    let chief_uid = pods.get("resnet-chief-0").await.expect("the chief").uid();

    // 0. The preflight names both problems and the running training-operator.
    let (passed, report) = shell(PREFLIGHT).await;
    assert!(
        !passed,
        "the preflight fails before the migration:\n{report}"
    );
    for expected in [
        "FAIL  crd        tfjobs.kubeflow.org drops fields the operator stores",
        "FAIL  webhook    validator.training-operator.kubeflow.org: validator.tfjob.training-operator.kubeflow.org routes TFJob writes to Service kubeflow/training-operator, not to this operator",
        "WARN  upstream   a training-operator is running: Lease kubeflow/1ca428e5.training-operator.kubeflow.org",
    ] {
        assert!(
            report.lines().any(|l| l.starts_with(expected)),
            "{expected:?} in:\n{report}"
        );
    }

    // 1. The CRD replaced under the running job: nothing of the job changes.
    shell_ok(&replace_crd).await;
    let jobs: Api<TFJob> = ctx.api();
    let after_crd = jobs.get("resnet").await.expect("the job survives");
    assert_eq!(after_crd.spec, before.spec, "the spec is untouched");
    assert_eq!(after_crd.status, before.status, "the status is untouched");

    // 2. training-operator's TFJob controller off (the stand-in stops; the Deployment gets the
    //    other frameworks' schemes).
    assert!(upstream.terminate(secs(20)).await.success());
    shell_ok(SCHEMES_OFF).await;
    let args = deployments
        .get("training-operator")
        .await
        .expect("the Deployment")
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.containers.into_iter().next())
        .and_then(|c| c.args)
        .unwrap_or_default();
    assert!(
        !args.is_empty()
            && args
                .iter()
                .all(|a| a.starts_with("--enable-scheme=") && !a.ends_with("tfjob")),
        "{args:?}"
    );

    // 3. Its TFJob webhook entry still refuses every TFJob write, until removed.
    let refused = submit_raw(&ctx, "blocked").await;
    assert!(
        refused.contains("validator.tfjob.training-operator.kubeflow.org"),
        "upstream's entry refuses TFJob writes: {refused}"
    );
    let names = shell_ok(WEBHOOK_NAMES).await;
    assert!(
        names.starts_with("validator.tfjob.training-operator.kubeflow.org "),
        "{names}"
    );
    shell_ok(REMOVE_WEBHOOK).await;
    let remaining = shell_ok(WEBHOOK_NAMES).await;
    assert_eq!(
        remaining,
        "validator.pytorchjob.training-operator.kubeflow.org"
    );

    // 5. Install (the chart with leader election, its own Lease name: step 4) and run it as
    //    its ServiceAccount; its webhook is served from loopback (see route_webhooks_to).
    let values = json!({ "leaderElection": { "enabled": true } });
    let mut objs = helm::render(&values);
    let webhook = free_address();
    cluster::route_webhooks_to(&mut objs, webhook);
    let installed = cluster::install(&admin, &objs, NAMESPACE).await;
    let dir = std::env::temp_dir().join(format!("tfjob-migration-{}", support::unique_suffix()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let operator_kubeconfig = cluster::operator_kubeconfig(&dir);
    let deployment = objects::get(&objs, "Deployment", "tfjob-operator");
    let mut operator =
        OperatorProcess::start(deployment, &operator_kubeconfig, &dir, Some(webhook));
    operator.wait_ready(secs(30)).await;

    // `helm test`: the hook's check as the operator's identity passes (a warning for the
    // training-operator still running other frameworks).
    let hooks = helm::test_hooks(&values);
    let hook_args = objects::strings(&objects::one(&hooks, "Pod")["spec"]["containers"][0]["args"]);
    let (passed, stdout, stderr) = run_binary(
        &operator_kubeconfig,
        &hook_args,
        &[
            ("POD_NAME", "tfjob-operator-preflight"),
            ("POD_NAMESPACE", NAMESPACE),
        ],
    )
    .await;
    assert!(
        passed,
        "helm test passes after the migration:\n{stdout}{stderr}"
    );
    assert!(stdout.contains("WARN  upstream"), "{stdout}");

    // 6. Verify: the same job, its pods kept, its status kept and now complete.
    let after = await_worker_status(&ctx, "resnet", "Worker", (1, Some("0"))).await;
    assert_eq!(
        pods.get("resnet-chief-0").await.expect("the chief").uid(),
        chief_uid,
        "the running chief was kept, not re-created"
    );
    let (old, new) = (
        before.status.clone().unwrap(),
        after.status.clone().unwrap(),
    );
    assert_eq!(new.start_time, old.start_time, "startTime survives");
    assert_eq!(
        conditions(&after),
        conditions(&before),
        "conditions survive"
    );
    assert_eq!(
        new.conditions
            .iter()
            .map(|c| &c.last_transition_time)
            .collect::<Vec<_>>(),
        old.conditions
            .iter()
            .map(|c| &c.last_transition_time)
            .collect::<Vec<_>>(),
        "no condition was re-written"
    );
    let listed = shell_ok(LIST_JOBS).await;
    assert!(
        listed
            .lines()
            .any(|l| l.contains(&ctx.namespace) && l.contains("resnet") && l.contains("Running")),
        "{listed}"
    );
    let events = shell_ok(EVENTS).await;
    assert!(events.contains("resnet"), "events by source: {events}");
    let (_, metrics) = operator.get(operator.metrics, "/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "tfjob_operator_crd_compatible 1"),
        "the gauge"
    );

    // Rollback: uninstalling keeps the CRD and the job.
    assert!(operator.stop().await.success());
    installed.uninstall(&admin).await;
    assert!(
        jobs.get("resnet").await.is_ok(),
        "the job outlives the operator"
    );

    let _ = kubelet.shutdown().await;
    let _ = configs
        .delete(UPSTREAM_WEBHOOKS, &DeleteParams::default())
        .await;
    let _ = leases
        .delete(UPSTREAM_LEASE, &DeleteParams::default())
        .await;
    let _ = deployments
        .delete("training-operator", &DeleteParams::default())
        .await;
    ctx.teardown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Tries to create a minimal TFJob: the error message when it is refused ("" when created).
async fn submit_raw(ctx: &TestContext, name: &str) -> String {
    let job: TFJob = serde_saphyr::from_str(&chief_and_quick_worker(name)).expect("a TFJob");
    match ctx
        .api::<TFJob>()
        .create(&PostParams::default(), &job)
        .await
    {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}
