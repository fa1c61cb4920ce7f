//! The admission webhook on the real control plane: the webhook runs in-process on loopback
//! with a self-signed certificate, and a ValidatingWebhookConfiguration calls it by URL
//! (`https://127.0.0.1:<port>/validate-kubeflow-org-v1-tfjob`), limited to the test's namespace.
//! Users' view is checked with the real `kubectl` against the harness kubeconfig.

mod admission;
mod certificates;
mod deployed;
mod limits;

use test_support as support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use support::*;
use tfjob_core::api::TFJob;
use tfjob_operator::ops::Readiness;
use tfjob_operator::webhook::{
    CertSource, MUTATE_PATH, MUTATING_WEBHOOK_NAME, SelfSignedSettings, SubjectNames,
    VALIDATE_PATH, VALIDATING_WEBHOOK_NAME, Webhook, WebhookSettings, ca_bundle,
};

/// Label put on the test's namespace; each configuration selects only its own namespace.
const SCOPE_LABEL: &str = "tfjob-operator.dev/webhook-test";

/// What kubectl prints when the webhook denies a create.
fn denied_create(message: &str) -> String {
    format!(
        "Error from server (Forbidden): error when creating \"STDIN\": admission webhook \
         \"{VALIDATING_WEBHOOK_NAME}\" denied the request: {message}\n"
    )
}

/// What kubectl prints when the webhook denies a create with hints: each admission warning on
/// its own line, then the denial with upstream's text.
fn denied_create_with_hints(message: &str, hints: &[String]) -> String {
    let warnings: String = hints.iter().map(|h| format!("Warning: {h}\n")).collect();
    warnings + &denied_create(message)
}

/// A valid TFJob (PS + 2 Workers) named `name`, as JSON.
fn job(name: &str) -> Value {
    let containers = json!({"spec": {"containers": [{"name": "tensorflow", "image": "tf"}]}});
    json!({
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": name},
        "spec": {"tfReplicaSpecs": {
            "PS": {"replicas": 1, "template": containers},
            "Worker": {"replicas": 2, "template": containers}
        }}
    })
}

/// `job(name)` with `patch` merged in (RFC 7386: null removes a key).
fn job_with(name: &str, patch: Value) -> Value {
    let mut job = job(name);
    json_patch::merge(&mut job, &patch);
    job
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the real kubectl against the control plane in the test's namespace, `stdin` as input.
async fn kubectl(ctx: &TestContext, args: &[&str], stdin: &str) -> Output {
    let mut child = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&control_plane().kubeconfig)
        .arg("--namespace")
        .arg(&ctx.namespace)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run kubectl (it must be on PATH): {e}"));
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("write stdin");
    drop(input);
    let output = child.wait_with_output().await.expect("kubectl finishes");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn apply(ctx: &TestContext, object: &Value) -> Output {
    kubectl(ctx, &["apply", "-f", "-"], &object.to_string()).await
}

/// The webhook configurations of one test, named uniquely, calling `https://127.0.0.1:<port>`
/// for the test's namespace only.
struct Configs {
    validating: String,
    mutating: String,
}

impl Configs {
    /// Unique names; nothing is created yet.
    fn named() -> Configs {
        let suffix = unique_suffix();
        Configs {
            validating: format!("validator-{suffix}.tfjob-test.example.com"),
            mutating: format!("defaulter-{suffix}.tfjob-test.example.com"),
        }
    }

    /// Creates the validating (and, with `mutating`, the defaulting) configuration, calling
    /// `https://127.0.0.1:<port>`, with an empty caBundle for the webhook to fill in.
    async fn create(&self, ctx: &TestContext, port: u16, failure_policy: &str, mutating: bool) {
        // Scope the webhooks to this test's namespace (other tests share the control plane).
        Api::<Namespace>::all(ctx.client.clone())
            .patch(
                &ctx.namespace,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {SCOPE_LABEL: ctx.namespace}}})),
            )
            .await
            .expect("label the namespace");
        let webhook = |name: &str, path: &str| {
            json!({
                "name": name,
                "clientConfig": {"url": format!("https://127.0.0.1:{port}{path}")},
                "rules": [{"apiGroups": ["kubeflow.org"], "apiVersions": ["v1"],
                           "operations": ["CREATE", "UPDATE"], "resources": ["tfjobs"]}],
                "namespaceSelector": {"matchLabels": {SCOPE_LABEL: ctx.namespace}},
                "failurePolicy": failure_policy,
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 10
            })
        };
        let validating: ValidatingWebhookConfiguration = serde_json::from_value(json!({
            "metadata": {"name": self.validating},
            "webhooks": [webhook(VALIDATING_WEBHOOK_NAME, VALIDATE_PATH)]
        }))
        .expect("a ValidatingWebhookConfiguration");
        Api::all(ctx.client.clone())
            .create(&PostParams::default(), &validating)
            .await
            .expect("create the validating configuration");
        if mutating {
            let mut hook = webhook(MUTATING_WEBHOOK_NAME, MUTATE_PATH);
            hook["reinvocationPolicy"] = "Never".into();
            let config: MutatingWebhookConfiguration = serde_json::from_value(json!({
                "metadata": {"name": self.mutating},
                "webhooks": [hook]
            }))
            .expect("a MutatingWebhookConfiguration");
            Api::all(ctx.client.clone())
                .create(&PostParams::default(), &config)
                .await
                .expect("create the mutating configuration");
        }
    }

    /// Changes the validating webhook's failure policy and port.
    async fn update(&self, ctx: &TestContext, port: u16, failure_policy: &str) {
        let patch: json_patch::Patch = serde_json::from_value(json!([
            {"op": "replace", "path": "/webhooks/0/failurePolicy", "value": failure_policy},
            {"op": "replace", "path": "/webhooks/0/clientConfig/url",
             "value": format!("https://127.0.0.1:{port}{VALIDATE_PATH}")},
        ]))
        .expect("a JSON patch");
        Api::<ValidatingWebhookConfiguration>::all(ctx.client.clone())
            .patch(
                &self.validating,
                &PatchParams::default(),
                &Patch::<()>::Json(patch),
            )
            .await
            .expect("update the validating configuration");
    }

    async fn validating_object(&self, ctx: &TestContext) -> DynamicObject {
        let resource = ApiResource::erase::<ValidatingWebhookConfiguration>(&());
        Api::<DynamicObject>::all_with(ctx.client.clone(), &resource)
            .get(&self.validating)
            .await
            .expect("read the validating configuration")
    }

    async fn delete(self, ctx: &TestContext) {
        let _ = Api::<ValidatingWebhookConfiguration>::all(ctx.client.clone())
            .delete(&self.validating, &DeleteParams::default())
            .await;
        let _ = Api::<MutatingWebhookConfiguration>::all(ctx.client.clone())
            .delete(&self.mutating, &DeleteParams::default())
            .await;
    }
}

/// A webhook served in-process, as the operator serves it, publishing its CA into `configs`.
struct Running {
    addr: SocketAddr,
    ca_pem: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Binds a webhook on a free loopback port, publishing its CA into `configs` once it serves
/// (see [`serve`]); serving certificates last `validity`, replaced `rotate_before` expiry.
async fn start_webhook(
    ctx: &TestContext,
    configs: &Configs,
    validity: Duration,
    rotate_before: Duration,
    defaulting: bool,
) -> Webhook {
    init_test_logging();
    let settings = WebhookSettings {
        bind: "127.0.0.1:0".parse().expect("addr"),
        certs: CertSource::SelfSigned(SelfSignedSettings {
            names: SubjectNames::for_service(
                "tfjob-operator-webhook",
                "test",
                &["127.0.0.1".into()],
            ),
            validity,
            rotate_before,
            instance: format!("replica-{}", unique_suffix()),
            validating_config: configs.validating.clone(),
            mutating_config: configs.mutating.clone(),
            resync_interval: Duration::from_secs(1),
        }),
        defaulting,
        placement: Default::default(),
    };
    Webhook::start(settings, Some(ctx.client.clone()), Readiness::new())
        .await
        .expect("the webhook starts")
}

fn serve(webhook: Webhook) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let addr = webhook.local_addr();
    let ca_pem = webhook.ca_pem().expect("self-signed").to_string();
    let task = tokio::spawn(webhook.run(async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        ca_pem,
        stop: Some(stop),
        task: Some(task),
    }
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(secs(15), task)
                .await
                .expect("the webhook stops")
                .expect("the webhook task");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Starts a webhook and the configurations calling it; returns once the configuration trusts
/// the webhook's CA (published by the webhook itself) and the apiserver denies a bad TFJob.
async fn webhook_for(
    ctx: &TestContext,
    validity: Duration,
    rotate_before: Duration,
    defaulting: bool,
) -> (Running, Configs) {
    let configs = Configs::named();
    let webhook = start_webhook(ctx, &configs, validity, rotate_before, defaulting).await;
    configs
        .create(ctx, webhook.local_addr().port(), "Fail", defaulting)
        .await;
    let running = serve(webhook);
    await_trusted(ctx, &configs, &running.ca_pem).await;
    await_enforced(ctx).await;
    (running, configs)
}

async fn await_trusted(ctx: &TestContext, configs: &Configs, ca_pem: &str) {
    wait_for(
        secs(20),
        "the webhook to publish its CA into the caBundle",
        || async { ca_bundle::trusts(&configs.validating_object(ctx).await, ca_pem) },
    )
    .await;
}

/// A TFJob only the webhook rejects (two chiefs).
fn two_chiefs(name: &str) -> Value {
    let containers = json!({"spec": {"containers": [{"name": "tensorflow", "image": "tf"}]}});
    job_with(
        name,
        json!({"spec": {"tfReplicaSpecs": {"Chief": {"template": containers}, "Master": {"template": containers}}}}),
    )
}

const TWO_CHIEFS: &str =
    "spec.tfReplicaSpecs: Forbidden: must not have more than 1 Chief or Master role";
/// The hint that comes with [`TWO_CHIEFS`] as an admission warning.
const TWO_CHIEFS_HINT: &str = "spec.tfReplicaSpecs: found Chief, Master; keep only one of them";

/// What a dry-run create of a bad TFJob gets from the apiserver: `Ok` or the error message.
async fn dry_run(ctx: &TestContext, object: &Value) -> Result<(), String> {
    let job: TFJob = serde_json::from_value(object.clone()).expect("a TFJob");
    ctx.api::<TFJob>()
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &job,
        )
        .await
        .map(|_| ())
        .map_err(|e| match e {
            kube::Error::Api(status) => status.message,
            e => e.to_string(),
        })
}

/// Waits until the apiserver uses the configuration (it watches configurations, with a lag).
async fn await_enforced(ctx: &TestContext) {
    let expected =
        format!("admission webhook \"{VALIDATING_WEBHOOK_NAME}\" denied the request: {TWO_CHIEFS}");
    wait_for(secs(20), "the apiserver to call the webhook", || async {
        match dry_run(ctx, &two_chiefs("probe")).await {
            Err(message) if message == expected => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}
