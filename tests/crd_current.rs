//! The TFJob CRD on a current Kubernetes: the CRD-only 1.36.4 API server of
//! `hack/crd-apiserver.sh` (upstream's apiextensions apiserver; no core API, no webhooks), next
//! to the 1.20.2 control plane the rest of the suite runs on. What users meet first: installing
//! the CRD, its structural schema and CEL rules, server-side apply of TFJobs, the status
//! subresource, and list/watch with the parameters of the list-TFJobs API.

use test_support as support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tfjob_core::api::TFJob;
use tokio::sync::Mutex;

use support::crd_apiserver::{CrdApiserver, crd_apiserver};
use support::unique_suffix;

/// Tests that replace the CRD run one at a time; the others hold this while they use it.
static CRD: Mutex<()> = Mutex::const_new(());

const CRD_COPIES: [&str; 3] = [
    "crds/kubeflow.org_tfjobs.yaml",
    "deploy/helm/tfjob-operator/crds/kubeflow.org_tfjobs.yaml",
    "deploy/kustomize/base/crds/kubeflow.org_tfjobs.yaml",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// `kubectl ARGS` against `kubeconfig`: Ok(stdout) or Err(stderr).
fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubectl ({e}); install kubectl"));
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn server() -> &'static CrdApiserver {
    crd_apiserver()
}

/// Installs the committed CRD on the 1.36 server (once per process) and waits until it is
/// served.
fn ensure_crd() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| install_with(&["apply", "--server-side", "-f", CRD_COPIES[0]]));
}

fn install_with(args: &[&str]) {
    let kubeconfig = &server().kubeconfig;
    kubectl(kubeconfig, args).unwrap_or_else(|e| panic!("kubectl {args:?}: {e}"));
    // Polled: `kubectl wait` fails outright while the new CRD has no conditions yet.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let established = kubectl(
            kubeconfig,
            &[
                "get",
                "crd",
                "tfjobs.kubeflow.org",
                "-o",
                r#"jsonpath={.status.conditions[?(@.type=="Established")].status}"#,
            ],
        );
        if established.as_deref() == Ok("True") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the CRD was not Established within 30 s: {established:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn client() -> Client {
    ensure_crd();
    server().client().await
}

fn job(name: &str, extra_spec: Value) -> TFJob {
    let mut job = json!({
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": name},
        "spec": {"tfReplicaSpecs": {"Worker": {
            "replicas": 2,
            "template": {"spec": {"containers": [{"name": "tensorflow", "image": "tf:2"}]}}
        }}}
    });
    merge(&mut job["spec"], extra_spec);
    serde_json::from_value(job).expect("a TFJob")
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

fn namespace() -> String {
    // No core API: any namespace name is accepted without a Namespace object.
    format!("crd-{}", unique_suffix())
}

#[tokio::test]
async fn the_crd_installs_with_plain_and_server_side_apply_from_every_copy() {
    let _one = CRD.lock().await;
    let kubeconfig = &server().kubeconfig;
    let version = kubectl(kubeconfig, &["version", "-o", "json"]).expect("kubectl version");
    let version: Value = serde_json::from_str(&version).expect("JSON");
    assert_eq!(
        version["serverVersion"]["gitVersion"], "v1.36.4",
        "{version}"
    );
    for copy in CRD_COPIES {
        for how in [&["apply", "-f"][..], &["apply", "--server-side", "-f"][..]] {
            let _ = kubectl(
                kubeconfig,
                &["delete", "crd", "tfjobs.kubeflow.org", "--wait=true"],
            );
            let mut args = how.to_vec();
            args.push(copy);
            install_with(&args);
        }
    }
    // `kubectl explain` reads the published OpenAPI document.
    let explained = kubectl(kubeconfig, &["explain", "tfjob.spec.runPolicy"]).expect("explain");
    for field in ["cleanPodPolicy", "managedBy", "schedulingPolicy", "suspend"] {
        assert!(explained.contains(field), "{field} in:\n{explained}");
    }
    // And client-side validation of the seed's TFJob passes against it.
    let ns = namespace();
    kubectl(
        kubeconfig,
        &[
            "create",
            "--dry-run=server",
            "-n",
            &ns,
            "-f",
            "examples/tfjob-seed.yaml",
        ],
    )
    .expect("the seed TFJob validates");
}

#[tokio::test]
async fn the_apiserver_itself_keeps_queue_and_managed_by_immutable() {
    let _one = CRD.lock().await;
    let client = client().await;
    let ns = namespace();
    let jobs: Api<TFJob> = Api::namespaced(client, &ns);
    let created = jobs
        .create(
            &PostParams::default(),
            &job(
                "immutable",
                json!({"runPolicy": {
                    "managedBy": "kubeflow.org/training-operator",
                    "schedulingPolicy": {"queue": "team-a"}
                }}),
            ),
        )
        .await
        .expect("create");
    for (patch, message) in [
        (
            json!({"spec": {"runPolicy": {"schedulingPolicy": {"queue": "team-b"}}}}),
            "spec.runPolicy.schedulingPolicy.queue is immutable",
        ),
        (
            json!({"spec": {"runPolicy": {"managedBy": "kueue.x-k8s.io/multikueue"}}}),
            "spec.runPolicy.managedBy is immutable",
        ),
    ] {
        let refused = jobs
            .patch("immutable", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect_err("the apiserver refuses the change");
        match refused {
            kube::Error::Api(status) => {
                assert_eq!(status.code, 422, "{status:?}");
                assert!(status.message.contains(message), "{}", status.message);
            }
            other => panic!("{other}"),
        }
    }
    // Other fields still change.
    jobs.patch(
        "immutable",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"runPolicy": {"backoffLimit": 4}}})),
    )
    .await
    .expect("backoffLimit changes");
    assert_eq!(created.name_any(), "immutable");
}

/// Two field managers each apply their part of one TFJob: the replica specs (a map) and the
/// containers, init containers, volumes and env (lists keyed by name) merge; a status patch
/// never touches the spec.
#[tokio::test]
async fn server_side_apply_by_two_managers_merges_replicas_and_containers() {
    let _one = CRD.lock().await;
    let client = client().await;
    let ns = namespace();
    let jobs: Api<TFJob> = Api::namespaced(client, &ns);
    let apply = |manager: &'static str, spec: Value| {
        let jobs = jobs.clone();
        async move {
            let body = json!({
                "apiVersion": "kubeflow.org/v1", "kind": "TFJob",
                "metadata": {"name": "shared"},
                "spec": spec
            });
            jobs.patch("shared", &PatchParams::apply(manager), &Patch::Apply(&body))
                .await
                .unwrap_or_else(|e| panic!("apply as {manager}: {e}"))
        }
    };
    apply(
        "ml-team",
        json!({"tfReplicaSpecs": {"Worker": {"replicas": 2, "template": {"spec": {
            "containers": [{"name": "tensorflow", "image": "tf:2",
                "env": [{"name": "EPOCHS", "value": "10"}]}],
            "volumes": [{"name": "data", "emptyDir": {}}]
        }}}}}),
    )
    .await;
    let merged = apply(
        "platform",
        json!({"tfReplicaSpecs": {
            "PS": {"replicas": 1, "template": {"spec": {
                "containers": [{"name": "tensorflow", "image": "tf:2"}]}}},
            "Worker": {"template": {"spec": {
                "containers": [
                    {"name": "tensorflow", "env": [{"name": "TF_CPP_MIN_LOG_LEVEL", "value": "2"}]},
                    {"name": "log-shipper", "image": "fluent-bit:3"}
                ],
                "initContainers": [{"name": "fetch-data", "image": "busybox"}],
                "volumes": [{"name": "logs", "emptyDir": {}}]
            }}}
        }}),
    )
    .await;
    let value = serde_json::to_value(&merged).expect("JSON");
    let specs = &value["spec"]["tfReplicaSpecs"];
    assert_eq!(
        specs["PS"]["replicas"], 1,
        "the map of replica specs merges"
    );
    assert_eq!(specs["Worker"]["replicas"], 2);
    let pod = &specs["Worker"]["template"]["spec"];
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(String::from))
            .collect()
    };
    assert_eq!(names(&pod["containers"]), ["tensorflow", "log-shipper"]);
    assert_eq!(
        pod["containers"][0]["image"], "tf:2",
        "ml-team's image stays"
    );
    assert_eq!(
        names(&pod["containers"][0]["env"]),
        ["EPOCHS", "TF_CPP_MIN_LOG_LEVEL"]
    );
    assert_eq!(names(&pod["volumes"]), ["data", "logs"]);
    assert_eq!(names(&pod["initContainers"]), ["fetch-data"]);

    // The status subresource: a status patch changes the status and nothing of the spec; a
    // spec change through it is ignored.
    let before = jobs.get("shared").await.expect("get");
    let status = json!({"status": {"conditions": [{"type": "Created", "status": "True",
            "reason": "TFJobCreated", "message": "TFJob shared is created.",
            "lastUpdateTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "replicaStatuses": {}},
        "spec": {"runPolicy": {"backoffLimit": 99}}});
    let after = jobs
        .patch_status("shared", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("status patch");
    assert_eq!(
        serde_json::to_value(&after.spec).expect("JSON"),
        serde_json::to_value(&before.spec).expect("JSON"),
        "a status patch never touches spec"
    );
    assert_eq!(after.status.as_ref().map(|s| s.conditions.len()), Some(1));
}

/// The seed document's list parameters: labelSelector, fieldSelector (metadata.name and
/// metadata.namespace), limit and continue, and a watch from a resourceVersion with
/// timeoutSeconds.
#[tokio::test]
async fn list_and_watch_answer_as_the_list_tfjobs_api_promises() {
    let _one = CRD.lock().await;
    let client = client().await;
    let (ns_a, ns_b) = (namespace(), namespace());
    for (ns, names) in [
        (&ns_a, ["a-1", "a-2", "a-3"]),
        (&ns_b, ["b-1", "b-2", "b-3"]),
    ] {
        let jobs: Api<TFJob> = Api::namespaced(client.clone(), ns);
        for (i, name) in names.iter().enumerate() {
            let mut j = job(name, json!({}));
            j.metadata.labels = Some(
                [(
                    "team".to_string(),
                    if i == 0 { "x" } else { "y" }.to_string(),
                )]
                .into(),
            );
            jobs.create(&PostParams::default(), &j)
                .await
                .expect("create");
        }
    }
    let in_a: Api<TFJob> = Api::namespaced(client.clone(), &ns_a);
    let names = |list: kube::core::ObjectList<TFJob>| -> Vec<String> {
        let mut n: Vec<String> = list.items.iter().map(|j| j.name_any()).collect();
        n.sort();
        n
    };
    assert_eq!(
        names(
            in_a.list(&ListParams::default().labels("team=y"))
                .await
                .expect("list")
        ),
        ["a-2", "a-3"]
    );
    assert_eq!(
        names(
            in_a.list(&ListParams::default().fields("metadata.name=a-3"))
                .await
                .expect("list")
        ),
        ["a-3"]
    );
    let all: Api<TFJob> = Api::all(client.clone());
    let by_namespace = all
        .list(&ListParams::default().fields(&format!("metadata.namespace={ns_b}")))
        .await
        .expect("list");
    assert_eq!(names(by_namespace), ["b-1", "b-2", "b-3"]);
    // Pages of two, with continue tokens.
    let mut seen = Vec::new();
    let mut params = ListParams::default().limit(2);
    let mut pages = 0;
    loop {
        let page = in_a.list(&params).await.expect("a page");
        pages += 1;
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|j| j.name_any()));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    assert_eq!((pages, seen.len()), (2, 3), "{seen:?}");

    // A watch from the list's resourceVersion sees the next change and ends at its timeout.
    let rv = in_a
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("a resourceVersion");
    let started = std::time::Instant::now();
    let mut events = in_a
        .watch(&WatchParams::default().timeout(3), &rv)
        .await
        .expect("watch")
        .boxed();
    in_a.create(&PostParams::default(), &job("a-4", json!({})))
        .await
        .expect("create");
    let mut added = Vec::new();
    while let Some(event) = events.next().await {
        if let WatchEvent::Added(j) = event.expect("an event") {
            added.push(j.name_any());
        }
    }
    assert_eq!(added, ["a-4"], "only what came after the resourceVersion");
    let lasted = started.elapsed();
    assert!(
        lasted >= Duration::from_secs(2) && lasted < Duration::from_secs(20),
        "the watch ends at timeoutSeconds: {lasted:?}"
    );
}

/// The operator's start-up check of the installed CRD (does it declare every field the
/// operator stores?), decoding it the way the operator does, passes against the CRD as this
/// server stores and serves it.
#[tokio::test]
async fn the_operators_crd_check_accepts_the_crd_this_server_serves() {
    let _one = CRD.lock().await;
    ensure_crd();
    let served = kubectl(
        &server().kubeconfig,
        &["get", "crd", "tfjobs.kubeflow.org", "-o", "json"],
    )
    .expect("the served CRD");
    let installed = tfjob_core::api::installed_crd::decode_installed(&served).expect("decodes");
    let missing = tfjob_core::api::crd::missing_fields(&installed);
    assert!(missing.is_empty(), "the served CRD lacks {missing:?}");
}

/// Cases of the bad-input corpus that Kubernetes 1.20 stores (and the operator marks Failed)
/// but 1.36's apiserver refuses already: its schema checks are stricter. Exact: a case that
/// moves in or out of this list fails the test. docs/compatibility.md explains each.
const REJECTED_ONLY_ON_CURRENT: &[&str] = &[
    // 1.36 checks the int32 format of integer fields; 1.20 stores 2^31 and more (the operator
    // then marks the job Failed, naming the field).
    "wrong-type-replicas-over-int32.json",
    "wrong-type-backoff-over-int32.json",
    "wrong-type-port-over-int32.json",
    "legacy-ttl-over-int32.json",
];

/// Cases 1.20 refuses but 1.36 stores (the operator then marks them Failed, naming the field).
const STORED_ONLY_ON_CURRENT: &[&str] = &[
    // 1.20 refuses `image: ""` as if it were null ("must be of type string"); 1.36 stores it,
    // and the operator fails the job for its missing image.
    "empty-image.json",
];

/// A field path as 1.20 words it: list indices dropped (`containers[0].name` →
/// `containers.name`), lower case (`Labels` → `labels`).
fn normalised_path(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        // `[` digits `]`: a list index.
        if c == '['
            && let Some(end) = rest.find(']')
            && end > 1
            && rest[1..end].chars().all(|d| d.is_ascii_digit())
        {
            rest = &rest[end + 1..];
            continue;
        }
        out.push(c.to_ascii_lowercase());
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Every case the 1.20 schema rejects is rejected on 1.36 too (its error naming the same
/// field), but for exactly [`STORED_ONLY_ON_CURRENT`], and what 1.36 rejects beyond that is
/// exactly [`REJECTED_ONLY_ON_CURRENT`].
#[tokio::test]
async fn the_bad_input_corpus_is_refused_on_1_36_as_on_1_20() {
    use support::bad_input::{Outcome, load_corpus};
    let _one = CRD.lock().await;
    let client = client().await;
    let ns = namespace();
    let mut not_rejected = Vec::new();
    let mut only_here = Vec::new();
    let mut stored_here = Vec::new();
    for case in load_corpus() {
        let request = http::Request::post(format!("/apis/kubeflow.org/v1/namespaces/{ns}/tfjobs"))
            .header("content-type", "application/json")
            .body(case.body(&ns))
            .expect("a request");
        let answer = client.request::<Value>(request).await;
        match (case.outcome, answer) {
            (Outcome::Rejected, Err(kube::Error::Api(status))) => {
                if let Some(field) = &case.field
                    && !normalised_path(&status.message).contains(&normalised_path(field))
                {
                    not_rejected.push(format!(
                        "{}: refused without naming {field}: {}",
                        case.case, status.message
                    ));
                }
            }
            (Outcome::Rejected, Ok(_)) => stored_here.push(case.case.clone()),
            (Outcome::Failed, Err(kube::Error::Api(status))) => {
                only_here.push(case.case.clone());
                eprintln!("only 1.36 refuses {}: {}", case.case, status.message);
            }
            (Outcome::Failed, Ok(_)) => {}
            (_, Err(e)) => panic!("{}: the request failed: {e}", case.case),
        }
    }
    assert!(not_rejected.is_empty(), "{}", not_rejected.join("\n"));
    assert_eq!(
        stored_here, STORED_ONLY_ON_CURRENT,
        "what 1.36 stores that 1.20 refused changed; update STORED_ONLY_ON_CURRENT and \
         docs/compatibility.md"
    );
    assert_eq!(
        only_here, REJECTED_ONLY_ON_CURRENT,
        "what 1.36 refuses beyond 1.20 changed; update REJECTED_ONLY_ON_CURRENT and \
         docs/compatibility.md"
    );
}
