//! The admission webhook on the real control plane: the webhook runs in-process on loopback
//! with a self-signed certificate, and a ValidatingWebhookConfiguration calls it by URL
//! (`https://127.0.0.1:<port>/validate-kubeflow-org-v1-tfjob`), limited to the test's namespace.
//! Users' view is checked with the real `kubectl` against the harness kubeconfig.

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

const TWO_CHIEFS: &str = "spec.tfReplicaSpecs: Forbidden: must not have more than 1 Chief or Master role (found Chief, Master); keep only one of them";

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_rejects_each_bad_tfjob_with_the_exact_message() {
    let ctx = TestContext::new("webhook-bad").await;
    let (webhook, configs) = webhook_for(&ctx, secs(3600), secs(600), false).await;
    let containers = |c: Value| json!({"spec": {"containers": c}});
    let long = "a".repeat(55);
    let dns_1035 = "should match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name', or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
    let cases: Vec<(Value, String)> = vec![
        (job("1job"), format!("metadata.name: Invalid value: \"1job\": {dns_1035}")),
        (job("my.job"), format!("metadata.name: Invalid value: \"my.job\": {dns_1035}")),
        (job(&long), format!("metadata.name: Invalid value: \"{long}\": child name \"{long}-worker-1\" would be 64 characters, more than the 63 a Service name allows; shorten the TFJob name by at least 1 characters")),
        (job_with("managed", json!({"spec": {"runPolicy": {"managedBy": "me"}}})),
         r#"spec.runPolicy.managedBy: Unsupported value: "me": supported values: "kubeflow.org/training-operator", "kueue.x-k8s.io/multikueue""#.into()),
        (job_with("empty", json!({"spec": {"tfReplicaSpecs": {"PS": null, "Worker": null}}})),
         "spec.tfReplicaSpecs: Required value: must contain at least one replica type; add e.g. a Worker with a container named tensorflow".into()),
        (job_with("no-containers", json!({"spec": {"tfReplicaSpecs": {"Worker": {"template": containers(json!([]))}}}})),
         "[spec.tfReplicaSpecs[Worker].template.spec.containers: Required value: must be specified; add a container named tensorflow with an image, spec.tfReplicaSpecs[Worker].template.spec.containers: Required value: must have at least one container with name tensorflow; rename the training container to tensorflow]".into()),
        (job_with("no-image", json!({"spec": {"tfReplicaSpecs": {"Worker": {"template": containers(json!([{"name": "tensorflow"}]))}}}})),
         "spec.tfReplicaSpecs[Worker].template.spec.containers[0].image: Required value: must be required; set the container image".into()),
        (job_with("no-tensorflow", json!({"spec": {"tfReplicaSpecs": {"Worker": {"template": containers(json!([{"name": "main", "image": "tf"}]))}}}})),
         "spec.tfReplicaSpecs[Worker].template.spec.containers: Required value: must have at least one container with name tensorflow; rename the training container to tensorflow".into()),
        (two_chiefs("chiefs"), TWO_CHIEFS.into()),
        (job_with("duplicate", json!({"spec": {"tfReplicaSpecs": {"worker": {"template": containers(json!([{"name": "tensorflow", "image": "tf"}]))}}}})),
         r#"spec.tfReplicaSpecs[worker]: Duplicate value: "worker": same replica type as "Worker" (keys are case-insensitive); merge them into one"#.into()),
        (job_with("unknown", json!({"spec": {"tfReplicaSpecs": {"Foo": {"template": containers(json!([{"name": "tensorflow", "image": "tf"}]))}}}})),
         r#"spec.tfReplicaSpecs[Foo]: Unsupported value: "Foo": supported values: "Chief", "Evaluator", "Master", "PS", "Worker""#.into()),
        (job_with("negative", json!({"spec": {"tfReplicaSpecs": {"Worker": {"replicas": -1}}}})),
         "spec.tfReplicaSpecs[Worker].replicas: Invalid value: -1: must be greater than or equal to 0".into()),
        (job_with("huge", json!({"spec": {"tfReplicaSpecs": {"Worker": {"replicas": 20000}}}})),
         "spec.tfReplicaSpecs[Worker].replicas: Invalid value: 20000: must be no more than 10000".into()),
        (job_with("restart", json!({"spec": {"tfReplicaSpecs": {"Worker": {"restartPolicy": "Sometimes"}}}})),
         r#"spec.tfReplicaSpecs[Worker].restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never", "ExitCode""#.into()),
        (job_with("success", json!({"spec": {"successPolicy": "AnyWorker"}})),
         r#"spec.successPolicy: Unsupported value: "AnyWorker": supported values: "", "AllWorkers""#.into()),
        (job_with("clean", json!({"spec": {"runPolicy": {"cleanPodPolicy": "all"}}})),
         r#"spec.runPolicy.cleanPodPolicy: Unsupported value: "all": supported values: "None", "Running", "All""#.into()),
        (job_with("legacy-clean", json!({"spec": {"cleanPodPolicy": "Some"}})),
         r#"spec.cleanPodPolicy: Unsupported value: "Some": supported values: "None", "Running", "All""#.into()),
        (job_with("limits", json!({"spec": {"runPolicy": {"backoffLimit": -1, "ttlSecondsAfterFinished": -5, "activeDeadlineSeconds": 0,
            "schedulingPolicy": {"minAvailable": -2, "scheduleTimeoutSeconds": -3}}}})),
         "[spec.runPolicy.backoffLimit: Invalid value: -1: must be greater than or equal to 0, spec.runPolicy.ttlSecondsAfterFinished: Invalid value: -5: must be greater than or equal to 0, spec.runPolicy.activeDeadlineSeconds: Invalid value: 0: must be greater than 0; remove the field for no deadline, spec.runPolicy.schedulingPolicy.minAvailable: Invalid value: -2: must be greater than or equal to 0, spec.runPolicy.schedulingPolicy.scheduleTimeoutSeconds: Invalid value: -3: must be greater than or equal to 0]".into()),
        (job_with("legacy", json!({"spec": {"backoffLimit": 6, "activeDeadlineSeconds": -1, "runPolicy": {"backoffLimit": 3}}})),
         "[spec.activeDeadlineSeconds: Invalid value: -1: must be greater than 0; remove the field for no deadline, spec.backoffLimit: Invalid value: 6: conflicts with spec.runPolicy.backoffLimit (3); remove the legacy spec.backoffLimit and keep spec.runPolicy.backoffLimit]".into()),
    ];
    // kubectl takes a while to start; four at a time keeps the two cores busy.
    let results: Vec<(Value, String, Output)> =
        futures::StreamExt::collect(futures::StreamExt::buffered(
            futures::stream::iter(cases.into_iter().map(|(object, message)| {
                let ctx = &ctx;
                async move {
                    let output = apply(ctx, &object).await;
                    (object, message, output)
                }
            })),
            4,
        ))
        .await;
    for (object, message, output) in &results {
        let name = &object["metadata"]["name"];
        assert_eq!(
            output.code, 1,
            "{name}: kubectl should fail; stdout {:?}",
            output.stdout
        );
        assert_eq!(output.stdout, "", "{name}");
        assert_eq!(output.stderr, denied_create(message), "{name}");
    }
    let stored = ctx
        .api::<TFJob>()
        .list(&Default::default())
        .await
        .expect("list");
    assert!(stored.items.is_empty(), "nothing bad was stored");
    webhook.stop().await;
    configs.delete(&ctx).await;
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_tfjobs_pass_and_updates_keep_managed_by_and_queue() {
    let ctx = TestContext::new("webhook-good").await;
    let (webhook, configs) = webhook_for(&ctx, secs(3600), secs(600), false).await;

    // Every example, the seed's legacy layout included, is admitted.
    let examples = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
        .expect("examples")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect::<BTreeSet<_>>();
    assert!(examples.len() >= 7, "{examples:?}");
    for path in &examples {
        let yaml = std::fs::read_to_string(path).expect("read example");
        let output = kubectl(&ctx, &["apply", "-f", "-"], &yaml).await;
        assert_eq!(
            (output.code, output.stderr.as_str()),
            (0, ""),
            "{}",
            path.display()
        );
        assert!(
            output.stdout.ends_with(" created\n"),
            "{}: {}",
            path.display(),
            output.stdout
        );
    }

    // UPDATE: the queue and managedBy are immutable; scaling is allowed.
    let original = job_with(
        "updated",
        json!({"spec": {"runPolicy": {"schedulingPolicy": {"queue": "a"}}}}),
    );
    let output = apply(&ctx, &original).await;
    assert_eq!(
        output.stdout, "tfjob.kubeflow.org/updated created\n",
        "{}",
        output.stderr
    );
    let scaled = job_with(
        "updated",
        json!({"spec": {"runPolicy": {"schedulingPolicy": {"queue": "a"}},
        "tfReplicaSpecs": {"Worker": {"replicas": 4}}}}),
    );
    let output = apply(&ctx, &scaled).await;
    assert_eq!(
        output.stdout, "tfjob.kubeflow.org/updated configured\n",
        "{}",
        output.stderr
    );

    for (change, message) in [
        (
            json!({"spec": {"runPolicy": {"schedulingPolicy": {"queue": "b"}}}}),
            r#"spec.runPolicy.schedulingPolicy.queue: Invalid value: "b": field is immutable; keep "a" or delete and re-create the TFJob"#,
        ),
        (
            json!({"spec": {"runPolicy": {"managedBy": "kueue.x-k8s.io/multikueue"}}}),
            r#"spec.runPolicy.managedBy: Invalid value: "kueue.x-k8s.io/multikueue": field is immutable; keep null or delete and re-create the TFJob"#,
        ),
    ] {
        let mut changed = scaled.clone();
        json_patch::merge(&mut changed, &change);
        let output = apply(&ctx, &changed).await;
        assert_eq!(output.code, 1, "{}", output.stdout);
        assert!(
            output
                .stderr
                .starts_with("Error from server (Forbidden): error when applying patch:\n"),
            "{}",
            output.stderr
        );
        assert!(
            output.stderr.ends_with(&format!(
                "for: \"STDIN\": error when patching \"STDIN\": admission webhook \"{VALIDATING_WEBHOOK_NAME}\" denied the request: {message}\n"
            )),
            "{}",
            output.stderr
        );
    }
    let stored = ctx.api::<TFJob>().get("updated").await.expect("get");
    let policy = stored.spec.run_policy.expect("runPolicy");
    assert_eq!(
        policy.scheduling_policy.and_then(|s| s.queue).as_deref(),
        Some("a")
    );
    assert_eq!(policy.managed_by, None);
    webhook.stop().await;
    configs.delete(&ctx).await;
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_webhook_down_the_failure_policy_decides() {
    let ctx = TestContext::new("webhook-down").await;
    let (webhook, configs) = webhook_for(&ctx, secs(3600), secs(600), false).await;
    let port = webhook.addr.port();
    webhook.stop().await;
    // Nothing listens on the port any more.
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());

    // Fail: refused, with the reason.
    let output = apply(&ctx, &job("refused")).await;
    assert_eq!(output.code, 1, "{}", output.stdout);
    assert_eq!(
        output.stderr,
        format!(
            "Error from server (InternalError): error when creating \"STDIN\": Internal error \
             occurred: failed calling webhook \"{VALIDATING_WEBHOOK_NAME}\": Post \
             \"https://127.0.0.1:{port}{VALIDATE_PATH}?timeout=10s\": dial tcp 127.0.0.1:{port}: \
             connect: connection refused\n"
        )
    );

    // Ignore: admitted, even what the webhook would have rejected.
    configs.update(&ctx, port, "Ignore").await;
    wait_for(
        secs(20),
        "the apiserver to ignore the unreachable webhook",
        || async { dry_run(&ctx, &two_chiefs("probe")).await },
    )
    .await;
    for object in [job("admitted"), two_chiefs("unchecked")] {
        let output = apply(&ctx, &object).await;
        assert_eq!((output.code, output.stderr.as_str()), (0, ""), "{object}");
    }
    configs.delete(&ctx).await;
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_defaulting_webhook_normalises_the_seed_layout() {
    let ctx = TestContext::new("webhook-defaulting").await;
    let (webhook, configs) = webhook_for(&ctx, secs(3600), secs(600), true).await;
    let seed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/tfjob-seed.yaml"
    ))
    .expect("seed");
    wait_for(
        secs(20),
        "the MutatingWebhookConfiguration to trust the CA too",
        || async {
            let resource = ApiResource::erase::<MutatingWebhookConfiguration>(&());
            Api::<DynamicObject>::all_with(ctx.client.clone(), &resource)
                .get(&configs.mutating)
                .await
                .is_ok_and(|config| ca_bundle::trusts(&config, &webhook.ca_pem))
        },
    )
    .await;
    let output = kubectl(&ctx, &["apply", "-f", "-"], &seed).await;
    assert_eq!(
        output.stdout, "tfjob.kubeflow.org/tfjob-test created\n",
        "{}",
        output.stderr
    );
    let stored: Value =
        serde_json::to_value(ctx.api::<TFJob>().get("tfjob-test").await.expect("get"))
            .expect("json");
    let spec = &stored["spec"];
    assert_eq!(
        spec["tfReplicaSpecs"]
            .as_object()
            .expect("map")
            .keys()
            .collect::<Vec<_>>(),
        ["PS", "Worker"],
        "Ps became PS"
    );
    assert_eq!(spec["runPolicy"]["backoffLimit"], 6);
    assert_eq!(spec.get("backoffLimit"), None, "moved, not copied");
    assert_eq!(
        spec["tfReplicaSpecs"]["PS"]["replicas"], 1,
        "no defaults persisted beyond the seed's own"
    );
    assert_eq!(
        spec["tfReplicaSpecs"]["PS"].get("restartPolicy"),
        None,
        "no defaults persisted"
    );
    webhook.stop().await;
    configs.delete(&ctx).await;
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_each_publish_their_ca_and_both_are_trusted() {
    let ctx = TestContext::new("webhook-replicas").await;
    let (first, configs) = webhook_for(&ctx, secs(3600), secs(600), false).await;
    let second = serve(start_webhook(&ctx, &configs, secs(3600), secs(600), false).await);
    await_trusted(&ctx, &configs, &second.ca_pem).await;
    assert!(
        ca_bundle::trusts(&configs.validating_object(&ctx).await, &first.ca_pem),
        "the second replica kept the first one's CA"
    );
    // Point the configuration at the second replica: its certificate is trusted as well.
    configs.update(&ctx, second.addr.port(), "Fail").await;
    let expected =
        format!("admission webhook \"{VALIDATING_WEBHOOK_NAME}\" denied the request: {TWO_CHIEFS}");
    first.stop().await;
    wait_for(
        secs(20),
        "the apiserver to call the second replica",
        || async {
            match dry_run(&ctx, &two_chiefs("probe")).await {
                Err(message) if message == expected => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    second.stop().await;
    configs.delete(&ctx).await;
    ctx.teardown().await;
}

/// One AdmissionReview posted on a fresh TLS connection that trusts exactly the caBundle of the
/// configuration and checks name and validity as the apiserver does; returns the served cert.
async fn post_review(
    addr: SocketAddr,
    bundle: &rustls::RootCertStore,
    body: &[u8],
) -> Result<Vec<u8>, String> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(bundle.clone())
    .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
    let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let cert = stream
        .get_ref()
        .1
        .peer_certificates()
        .ok_or("no certificate")?[0]
        .to_vec();
    let head = format!(
        "POST {VALIDATE_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.write_all(body).await.map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .await
        .map_err(|e| e.to_string())?;
    let reply = String::from_utf8_lossy(&reply);
    if !reply.starts_with("HTTP/1.1 200") || !reply.contains(r#""allowed":false"#) {
        return Err(format!("unexpected reply: {reply}"));
    }
    Ok(cert)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_certificates_rotate_under_load_without_a_failed_admission() {
    let ctx = TestContext::new("webhook-rotation").await;
    // Three-second certificates, replaced two seconds before they expire: a new one about every
    // second. Without rotation they would expire three seconds in and every handshake would fail.
    let (running, configs) = webhook_for(&ctx, secs(3), secs(2), false).await;
    let bundle_before =
        configs.validating_object(&ctx).await.data["webhooks"][0]["clientConfig"]["caBundle"]
            .clone();

    // The client side of the direct posts trusts exactly what the apiserver trusts.
    let mut roots = rustls::RootCertStore::empty();
    let k8s_openapi::ByteString(pem) =
        serde_json::from_value(bundle_before.clone()).expect("caBundle");
    for der in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        let der: rustls::pki_types::CertificateDer = der.expect("PEM");
        roots.add(der).expect("a CA");
    }
    let review = serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "rotation", "kind": {"group": "kubeflow.org", "version": "v1", "kind": "TFJob"},
            "resource": {"group": "kubeflow.org", "version": "v1", "resource": "tfjobs"},
            "namespace": ctx.namespace, "operation": "CREATE", "userInfo": {}, "object": two_chiefs("direct")}
    }))
    .expect("review");

    let hammer_for = Duration::from_secs(7);
    let started = Instant::now();
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let admissions = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(std::sync::Mutex::new(BTreeSet::<Vec<u8>>::new()));
    let mut tasks = Vec::new();
    // Through the apiserver: good jobs are created, bad ones denied by the webhook (dry run).
    for worker in 0..3 {
        let (ctx_client, namespace) = (ctx.client.clone(), ctx.namespace.clone());
        let (failures, admissions) = (failures.clone(), admissions.clone());
        tasks.push(tokio::spawn(async move {
            let api: Api<TFJob> = Api::namespaced(ctx_client, &namespace);
            let expected = format!(
                "admission webhook \"{VALIDATING_WEBHOOK_NAME}\" denied the request: {TWO_CHIEFS}"
            );
            let mut n = 0;
            while started.elapsed() < hammer_for {
                n += 1;
                let good: TFJob =
                    serde_json::from_value(job(&format!("load-{worker}-{n}"))).expect("job");
                if let Err(e) = api.create(&PostParams::default(), &good).await {
                    failures
                        .lock()
                        .expect("lock")
                        .push(format!("create {worker}-{n}: {e}"));
                }
                let bad: TFJob = serde_json::from_value(two_chiefs("bad")).expect("job");
                let dry = PostParams {
                    dry_run: true,
                    ..Default::default()
                };
                match api.create(&dry, &bad).await {
                    Err(kube::Error::Api(status))
                        if status.message == expected && status.code == 403 => {}
                    other => failures
                        .lock()
                        .expect("lock")
                        .push(format!("bad {worker}-{n}: {other:?}")),
                }
                admissions.fetch_add(2, Ordering::Relaxed);
            }
        }));
    }
    // Directly, each on a new connection: every handshake sees the current certificate.
    for _ in 0..2 {
        let (failures, admissions, served) = (failures.clone(), admissions.clone(), served.clone());
        let (roots, review, addr) = (roots.clone(), review.clone(), running.addr);
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < hammer_for {
                match post_review(addr, &roots, &review).await {
                    Ok(cert) => {
                        served.lock().expect("lock").insert(cert);
                        admissions.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => failures.lock().expect("lock").push(format!("direct: {e}")),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("load task");
    }
    let failures = failures.lock().expect("lock").clone();
    let served = served.lock().expect("lock").len();
    let admissions = admissions.load(Ordering::Relaxed);
    eprintln!(
        "rotation under load: {admissions} admissions, {served} serving certificates, {} failures",
        failures.len()
    );
    assert_eq!(failures, Vec::<String>::new());
    assert!(
        served >= 4,
        "only {served} certificates were served in {hammer_for:?}"
    );
    assert!(admissions >= 100, "only {admissions} admissions");
    // The CA did not change, so the caBundle did not either.
    let bundle_after =
        configs.validating_object(&ctx).await.data["webhooks"][0]["clientConfig"]["caBundle"]
            .clone();
    assert_eq!(bundle_before, bundle_after);
    running.stop().await;
    configs.delete(&ctx).await;
    ctx.teardown().await;
}

/// A client acting as the operator's ServiceAccount (impersonated by the admin, so it works on
/// any control plane), with exactly the rights RBAC grants that identity.
async fn operator_client() -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(&control_plane().kubeconfig)
        .expect("the admin kubeconfig");
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("a client config");
    config.auth_info.impersonate = Some("system:serviceaccount:tfjob-system:tfjob-operator".into());
    config.auth_info.impersonate_groups = Some(vec![
        "system:serviceaccounts".into(),
        "system:serviceaccounts:tfjob-system".into(),
        "system:authenticated".into(),
    ]);
    kube::Client::try_from(config).expect("a client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployed_rbac_is_all_the_self_signed_mode_needs() {
    // The kustomize overlay's objects (equal to the chart's, a render test checks): the
    // configuration, narrowed to this test's namespace, and the ClusterRole with its binding.
    let ctx = TestContext::new("webhook-rbac").await;
    let overlay = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/kustomize/overlays/webhook"
    );
    let read =
        |file: &str| std::fs::read_to_string(format!("{overlay}/{file}")).expect("an overlay file");
    let mut config: Value =
        serde_saphyr::from_str(&read("validating-webhook-configuration.yaml")).expect("YAML");
    config["webhooks"][0]["namespaceSelector"] =
        json!({"matchLabels": {SCOPE_LABEL: ctx.namespace}});
    let config_name = config["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    ctx.apply_yaml(&config.to_string()).await;
    ctx.apply_yaml(&read("webhook-cluster-role.yaml")).await;
    ctx.apply_yaml(&read("webhook-cluster-role-binding.yaml"))
        .await;

    // The webhook as the operator runs it, with the operator's identity.
    let operator = operator_client().await;
    let configs = Configs {
        validating: config_name.clone(),
        mutating: "tfjob-operator-defaulter".into(),
    };
    init_test_logging();
    let settings = WebhookSettings {
        bind: "127.0.0.1:0".parse().expect("addr"),
        certs: CertSource::SelfSigned(SelfSignedSettings {
            names: SubjectNames::for_service("tfjob-operator-webhook", "tfjob-system", &[]),
            validity: secs(3600),
            rotate_before: secs(600),
            instance: "rbac".into(),
            validating_config: configs.validating.clone(),
            mutating_config: configs.mutating.clone(),
            resync_interval: Duration::from_secs(1),
        }),
        defaulting: false,
    };
    let readiness = Readiness::new();
    readiness.set_caches_synced(true);
    let webhook = Webhook::start(settings, Some(operator.clone()), readiness.clone())
        .await
        .expect("the webhook starts");
    let running = serve(webhook);
    await_trusted(&ctx, &configs, &running.ca_pem).await;
    wait_for(secs(10), "the replica to report ready", || async {
        readiness.check()
    })
    .await;

    // Nothing beyond that one object: another configuration, Secrets.
    let other =
        ca_bundle::CaBundlePublisher::new(operator.clone(), "someone-else".into(), "x".into());
    let err = other
        .publish(&running.ca_pem, "rbac", 0)
        .await
        .expect_err("another configuration is out of reach");
    assert!(err.to_string().contains("forbidden"), "{err}");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(operator, "tfjob-system");
    match secrets.list(&Default::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403),
        other => panic!("secrets must be forbidden: {other:?}"),
    }
    running.stop().await;
    for (kind, name) in [
        ("ClusterRoleBinding", "tfjob-operator-webhook"),
        ("ClusterRole", "tfjob-operator-webhook"),
    ] {
        let resource = match kind {
            "ClusterRole" => ApiResource::erase::<k8s_openapi::api::rbac::v1::ClusterRole>(&()),
            _ => ApiResource::erase::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>(&()),
        };
        let _ = Api::<DynamicObject>::all_with(ctx.client.clone(), &resource)
            .delete(name, &DeleteParams::default())
            .await;
    }
    configs.delete(&ctx).await;
    ctx.teardown().await;
}

/// A free loopback port (bound and released; the race with other processes is harmless here).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_binary_serves_the_webhook_from_its_flags() {
    let ctx = TestContext::new("webhook-binary").await;
    let configs = Configs::named();
    let (port, probes) = (free_port(), free_port());
    configs.create(&ctx, port, "Fail", false).await;
    let mut operator = tokio::process::Command::new(env!("CARGO_BIN_EXE_tfjob-operator"))
        .args([
            &format!("--namespace={}", ctx.namespace),
            "--metrics-bind-address=0",
            &format!("--health-probe-bind-address=127.0.0.1:{probes}"),
            "--webhook-enabled",
            &format!("--webhook-server-port={port}"),
            "--webhook-cert-extra-sans=127.0.0.1",
            &format!("--validating-webhook-config-name={}", configs.validating),
            &format!("--mutating-webhook-config-name={}", configs.mutating),
        ])
        .env("KUBECONFIG", &control_plane().kubeconfig)
        .env("POD_NAME", "operator-binary")
        .env("POD_NAMESPACE", "default")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the operator binary");

    // It publishes its CA, the apiserver calls it, and only then is it ready.
    await_enforced(&ctx).await;
    let output = apply(&ctx, &two_chiefs("chiefs")).await;
    assert_eq!(output.stderr, denied_create(TWO_CHIEFS));
    wait_for(secs(10), "/readyz to answer 200", || async {
        let mut stream = TcpStream::connect(("127.0.0.1", probes))
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut reply = String::new();
        stream
            .read_to_string(&mut reply)
            .await
            .map_err(|e| e.to_string())?;
        if reply.starts_with("HTTP/1.1 200") {
            Ok(())
        } else {
            Err(reply)
        }
    })
    .await;

    // SIGTERM: it stops cleanly, and the port is closed.
    let pid = operator.id().expect("a pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(secs(30), operator.wait())
        .await
        .expect("the operator stops within 30 s")
        .expect("its status");
    assert!(status.success(), "{status}");
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
    configs.delete(&ctx).await;
    ctx.teardown().await;
}
