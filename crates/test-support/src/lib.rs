//! Harness for integration tests on the real local control plane (`hack/control-plane.sh`).
//!
//! ```text
//! mod support;
//! use support::*;
//!
//! #[tokio::test]
//! async fn something() {
//!     let ctx = TestContext::new("something").await; // control plane + CRD + own namespace
//!     let pods: Api<Pod> = ctx.api();
//!     // ...
//!     ctx.teardown().await; // or just drop it
//! }
//! ```
//!
//! - One control plane per test binary ([`control_plane()`]), reused across its tests; the TFJob
//!   CRD from `crds/` is installed once and awaited until Established.
//! - Each test gets a unique namespace, deleted when its [`TestContext`] is torn down or dropped
//!   (set `KEEP_TEST_NAMESPACES=1` to keep them for debugging).
//! - kube's TLS needs a rustls crypto provider: the crate enables kube's `ring` feature and ring is
//!   the only provider compiled in, so rustls installs it by itself on first use.

pub mod audit;
pub mod bad_input;
pub mod binary;
pub mod control_plane;
pub mod crd_apiserver;
pub mod deploy;
pub mod etcd;
pub mod operator;
pub mod pod_history;
pub mod prom_text;
pub mod proxy;
pub mod wait;

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    Api, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Resource, ResourceExt, discovery};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

pub use control_plane::{ControlPlane, control_plane, unique_suffix};
pub use wait::{Probe, await_deleted, await_object, describe, secs, wait_fast, wait_for};

/// The real CRD, generated from the Rust types by another part of the project.
pub const TFJOB_CRD_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../crds/kubeflow.org_tfjobs.yaml"
);

/// The repository root (this crate lives in `crates/test-support`).
pub fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// A path in the repository.
pub fn repo_path(relative: &str) -> PathBuf {
    repo().join(relative)
}

/// A binary of the workspace (`tfjob-operator`, `tfjob-sim-kubelet`, `tfjob-bench`), from the
/// target directory of the running test. `cargo test --workspace` (what `hack/test.sh` runs)
/// builds every member's binaries before any test starts; when one is missing (a single
/// package's tests), it is built here, once.
pub fn workspace_binary(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    // target/<profile>/deps/<test binary> → target/<profile>/<name>
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let path = dir.join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() && !built.iter().any(|b| b == name) {
        let package = match name {
            "tfjob-sim-kubelet" => "sim-kubelet",
            other => other,
        };
        eprintln!("building {name} (cargo build -p {package} --bin {name}) for this test");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = std::process::Command::new(cargo);
        command.args(["build", "-p", package, "--bin", name]);
        if dir.file_name().is_some_and(|p| p == "release") {
            command.arg("--release");
        }
        let status = command.status().expect("cargo runs");
        assert!(
            status.success(),
            "cargo build -p {package} --bin {name} failed"
        );
        built.push(name.to_string());
    }
    assert!(path.exists(), "{} is missing", path.display());
    path
}

/// The release build of a workspace binary, in `target/release` beside the test's own target
/// directory. Built (or found fresh) by cargo once per test process, so a test never runs a
/// stale one; `hack/test.sh` builds it before the tests, so that costs a second there.
pub fn release_binary(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let exe = std::env::current_exe().expect("the test binary's path");
    let target = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let path = target.join("release").join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        eprintln!(
            "building the release {name} (cargo build --release --bin {name}; ~5 minutes cold)"
        );
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = std::process::Command::new(cargo);
        command
            .args(["build", "--release", "--bin", name])
            .current_dir(repo());
        // `cargo test` gives this process the test crate's CARGO_PKG_*, CARGO_MANIFEST_* …;
        // build scripts such as ring's watch those names (rerun-if-env-changed), so a nested
        // cargo that inherits them rebuilds the TLS stack (~3 minutes) instead of finding the
        // release binary hack/test.sh built a moment ago fresh.
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(inherited_from_cargo_test) {
                command.env_remove(key);
            }
        }
        let status = command.status().expect("cargo runs");
        assert!(
            status.success(),
            "cargo build --release --bin {name} failed"
        );
        built.push(name.to_string());
    }
    assert!(path.exists(), "{} is missing", path.display());
    path
}

/// Variables `cargo test` sets for the test process that describe the test crate, not the
/// build: none of them may reach a nested cargo.
pub(crate) fn inherited_from_cargo_test(key: &str) -> bool {
    const PREFIXES: [&str; 4] = [
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
    ];
    PREFIXES.iter().any(|p| key.starts_with(p))
        || matches!(
            key,
            "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR" | "OUT_DIR"
        )
}

/// Field manager of the harness's server-side applies.
pub const FIELD_MANAGER: &str = "tfjob-operator-tests";

/// An admin client for the shared control plane, bound to the calling tokio runtime.
pub async fn client() -> Client {
    control_plane().client().await
}

/// Installs the TFJob CRD (server-side apply) and waits until it is Established. Runs once per
/// test binary; later calls return at once.
pub async fn ensure_tfjob_crd() {
    static INSTALLED: OnceCell<()> = OnceCell::const_new();
    INSTALLED
        .get_or_init(|| async {
            let text = std::fs::read_to_string(TFJOB_CRD_PATH)
                .unwrap_or_else(|e| panic!("cannot read the TFJob CRD {TFJOB_CRD_PATH}: {e}"));
            let crd: CustomResourceDefinition = serde_saphyr::from_str(&text).unwrap_or_else(|e| {
                panic!("{TFJOB_CRD_PATH} is not a CustomResourceDefinition: {e}")
            });
            install_crd(&client().await, &crd).await;
        })
        .await;
}

/// Applies a CRD and waits (up to 30 s) until the apiserver serves it.
pub async fn install_crd(client: &Client, crd: &CustomResourceDefinition) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.name_any();
    let mut body = serde_json::to_value(crd).expect("a CRD serialises");
    body["apiVersion"] = "apiextensions.k8s.io/v1".into();
    body["kind"] = "CustomResourceDefinition".into();
    if server_minor(client).await < 23 {
        // Servers before 1.23 do not know CEL rules. A plain create would drop the field
        // silently, but server-side apply rejects the whole CRD ("field not declared in
        // schema"); the rules are not enforced there either way.
        remove_key(&mut body, "x-kubernetes-validations");
    }
    crds.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .unwrap_or_else(|e| panic!("applying CRD {name} failed: {e}"));
    let established = await_condition(crds, &name, conditions::is_crd_established());
    match tokio::time::timeout(secs(30), established).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("watching CRD {name} failed: {e}"),
        Err(_) => panic!("CRD {name} was not Established within 30 s"),
    }
}

/// The apiserver's minor version (`"20"` or `"20+"` → 20).
async fn server_minor(client: &Client) -> u32 {
    let info = client
        .apiserver_version()
        .await
        .unwrap_or_else(|e| panic!("cannot read the apiserver version: {e}"));
    let digits: String = info
        .minor
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap_or(u32::MAX)
}

fn remove_key(value: &mut serde_json::Value, key: &str) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove(key);
            map.values_mut().for_each(|v| remove_key(v, key));
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| remove_key(v, key)),
        _ => {}
    }
}

/// One test's slice of the cluster: a client and a namespace of its own.
pub struct TestContext {
    pub client: Client,
    pub namespace: String,
    torn_down: bool,
}

impl TestContext {
    /// Starts (or reuses) the control plane, installs the TFJob CRD, and creates a namespace named
    /// after `test_name` with a unique suffix.
    pub async fn new(test_name: &str) -> TestContext {
        let client = client().await;
        ensure_tfjob_crd().await;
        let namespace = namespace_name(test_name);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.clone()),
                labels: Some([("tfjob-operator.dev/test".to_string(), "true".to_string())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating test namespace {namespace} failed: {e}"));
        TestContext {
            client,
            namespace,
            torn_down: false,
        }
    }

    /// An `Api` for a namespaced kind in this test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Server-side applies a typed object into this test's namespace and returns the result.
    pub async fn apply<K>(&self, obj: &K) -> K
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + Debug
            + Serialize
            + DeserializeOwned,
    {
        let name = obj.meta().name.clone().expect("apply needs metadata.name");
        let mut obj = obj.clone();
        obj.meta_mut().namespace = Some(self.namespace.clone());
        // Server-side apply needs apiVersion and kind in the body.
        let mut body = serde_json::to_value(&obj).expect("object serialises");
        body["apiVersion"] = K::api_version(&()).into();
        body["kind"] = K::kind(&()).into();
        self.api::<K>()
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .unwrap_or_else(|e| panic!("applying {} {name} failed: {e}", K::kind(&())))
    }

    /// Server-side applies one YAML (or JSON) object of any kind, namespaced ones into this
    /// test's namespace; the kind is resolved through discovery.
    pub async fn apply_yaml(&self, yaml: &str) -> DynamicObject {
        let mut obj: DynamicObject = serde_saphyr::from_str(yaml)
            .unwrap_or_else(|e| panic!("not a Kubernetes object: {e}\n{yaml}"));
        let types = obj
            .types
            .clone()
            .expect("the object needs apiVersion and kind");
        let gvk = GroupVersionKind::try_from(&types)
            .unwrap_or_else(|e| panic!("bad apiVersion/kind: {e}"));
        let (resource, caps) = discovery::pinned_kind(&self.client, &gvk)
            .await
            .unwrap_or_else(|e| panic!("the apiserver does not serve {gvk:?}: {e}"));
        let api: Api<DynamicObject> = if caps.scope == discovery::Scope::Namespaced {
            obj.metadata.namespace = Some(self.namespace.clone());
            Api::namespaced_with(self.client.clone(), &self.namespace, &resource)
        } else {
            Api::all_with(self.client.clone(), &resource)
        };
        let name = obj.name_any();
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap_or_else(|e| panic!("applying {} {name} failed: {e}", types.kind))
    }

    /// Deletes the namespace (the namespace controller removes what is in it) and waits for the
    /// delete call only, not for the namespace to be gone.
    pub async fn teardown(mut self) {
        self.torn_down = true;
        if keep_namespaces() {
            return;
        }
        delete_namespace(&self.client, &self.namespace).await;
    }
}

impl Drop for TestContext {
    fn drop(&mut self) {
        if self.torn_down || keep_namespaces() {
            return;
        }
        // Drop cannot await, and the test's runtime may be shutting down: delete from a short-lived
        // thread with its own runtime and client.
        let namespace = self.namespace.clone();
        let deleter = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let client = client().await;
                delete_namespace(&client, &namespace).await;
            });
        });
        let _ = deleter.join();
    }
}

async fn delete_namespace(client: &Client, namespace: &str) {
    match Api::<Namespace>::all(client.clone())
        .delete(namespace, &DeleteParams::background())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.is_not_found() => {}
        Err(e) => eprintln!("warning: deleting test namespace {namespace} failed: {e}"),
    }
}

fn keep_namespaces() -> bool {
    std::env::var_os("KEEP_TEST_NAMESPACES").is_some_and(|v| v == "1")
}

/// `<test name as a DNS label, shortened>-<6 random chars>`.
fn namespace_name(test_name: &str) -> String {
    let mut base: String = test_name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    base.truncate(50);
    let base = base.trim_matches('-');
    let base = if base.is_empty() { "test" } else { base };
    format!("{base}-{}", unique_suffix())
}

/// Logs of the code under test, shown for failing tests; `RUST_LOG` sets the level (default
/// `warn`).
pub fn init_test_logging() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}
