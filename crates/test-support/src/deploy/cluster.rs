//! Installing rendered objects on the control plane as `kubectl apply --server-side` would, and
//! removing them again; the kubeconfig the operator runs with.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Client, discovery};
use serde_json::Value;

use super::objects::{self, id, kind};
use crate::{self as support, control_plane};

/// Field manager of these applies (as `kubectl apply --server-side` uses `kubectl`).
const FIELD_MANAGER: &str = "tfjob-deploy-tests";

/// Objects applied by [`install`]; [`Installed::uninstall`] removes them (dropping does too).
pub struct Installed {
    objects: Vec<Value>,
    removed: bool,
}

/// Applies `objs`: Namespaces first, then CRDs (awaited until Established; CEL rules are
/// stripped on servers before 1.23, as `support::install_crd` explains), then the rest.
/// `namespace` is created when no object creates it (`helm install --create-namespace`).
pub async fn install(client: &Client, objs: &[Value], namespace: &str) -> Installed {
    ensure_namespace(client, namespace).await;
    let order = |o: &&Value| match kind(o) {
        "Namespace" => 0,
        "CustomResourceDefinition" => 1,
        _ => 2,
    };
    let mut sorted: Vec<&Value> = objs.iter().collect();
    sorted.sort_by_key(order);
    for obj in sorted {
        match kind(obj) {
            "CustomResourceDefinition" => {
                let crd: CustomResourceDefinition = serde_json::from_value(obj.clone())
                    .unwrap_or_else(|e| panic!("{} is not a CRD: {e}", id(obj)));
                support::install_crd(client, &crd).await;
            }
            _ => apply(client, obj).await,
        }
    }
    Installed {
        objects: objs
            .iter()
            .filter(|o| !matches!(kind(o), "Namespace" | "CustomResourceDefinition"))
            .cloned()
            .collect(),
        removed: false,
    }
}

async fn ensure_namespace(client: &Client, namespace: &str) {
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(namespace.to_string()),
            ..Default::default()
        },
        ..Default::default()
    };
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.is_already_exists() => {}
        Err(e) => panic!("creating namespace {namespace} failed: {e}"),
    }
}

/// The API of the object's kind, in its namespace when namespaced.
async fn api_for(client: &Client, obj: &Value) -> Api<DynamicObject> {
    let (group, version) = match obj["apiVersion"].as_str().unwrap_or("").split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (
            String::new(),
            obj["apiVersion"].as_str().unwrap_or("").to_string(),
        ),
    };
    let gvk = GroupVersionKind::gvk(&group, &version, kind(obj));
    let (resource, caps) = discovery::pinned_kind(client, &gvk)
        .await
        .unwrap_or_else(|e| panic!("the apiserver does not serve {}: {e}", id(obj)));
    if caps.scope == discovery::Scope::Namespaced {
        let ns = objects::namespace(obj);
        assert!(!ns.is_empty(), "{} has no namespace", id(obj));
        Api::namespaced_with(client.clone(), ns, &resource)
    } else {
        Api::all_with(client.clone(), &resource)
    }
}

async fn apply(client: &Client, obj: &Value) {
    let api = api_for(client, obj).await;
    api.patch(
        objects::name(obj),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await
    .unwrap_or_else(|e| panic!("server-side apply of {} failed: {e}", id(obj)));
}

impl Installed {
    /// Deletes what was installed, except Namespaces and CRDs (other tests share them, and a
    /// terminating namespace would block the next install).
    pub async fn uninstall(mut self, client: &Client) {
        self.removed = true;
        delete_all(client, &self.objects).await;
    }
}

async fn delete_all(client: &Client, objs: &[Value]) {
    for obj in objs.iter().rev() {
        let api = api_for(client, obj).await;
        match api
            .delete(objects::name(obj), &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            Err(e) => panic!("deleting {} failed: {e}", id(obj)),
        }
    }
}

impl Drop for Installed {
    /// A failed test still removes its RBAC, so that the operator's identity has no rights in
    /// a control plane that other tests reuse. Drop cannot await: use a thread with a runtime.
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        let objs = std::mem::take(&mut self.objects);
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for clean-up");
            runtime.block_on(async {
                let client = control_plane().client().await;
                delete_all(&client, &objs).await;
            });
        })
        .join();
    }
}

/// A kubeconfig for the control plane that authenticates with the harness's operator token,
/// i.e. as `system:serviceaccount:tfjob-system:tfjob-operator`; written into `dir`.
pub fn operator_kubeconfig(dir: &Path) -> PathBuf {
    let cp = control_plane();
    let token = cp
        .operator_token()
        .expect("the control plane has no token for the operator's ServiceAccount");
    let admin_token = std::fs::read_to_string(cp.dir.join("token"))
        .expect("the control plane's admin token")
        .trim()
        .to_string();
    let admin = std::fs::read_to_string(&cp.kubeconfig).expect("the admin kubeconfig");
    assert!(
        admin.contains(&admin_token),
        "the admin kubeconfig holds the admin token"
    );
    let path = dir.join("operator.kubeconfig");
    std::fs::write(&path, admin.replace(&admin_token, &token))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// Points every webhook of the rendered admission configurations at `https://<addr><path>`
/// instead of the chart's Service: the operator runs out of cluster, and this control plane has
/// no Service network, but its apiserver reaches loopback. Everything else stays as rendered
/// (rules, failurePolicy, namespaceSelector); the operator still adds its CA to caBundle.
pub fn route_webhooks_to(objs: &mut [Value], addr: std::net::SocketAddr) {
    for obj in objs.iter_mut().filter(|o| {
        matches!(
            kind(o),
            "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration"
        )
    }) {
        for webhook in obj["webhooks"].as_array_mut().into_iter().flatten() {
            let path = webhook["clientConfig"]["service"]["path"]
                .as_str()
                .unwrap_or("/")
                .to_string();
            let config = webhook["clientConfig"]
                .as_object_mut()
                .expect("a webhook's clientConfig");
            config.remove("service");
            config.insert("url".into(), Value::String(format!("https://{addr}{path}")));
        }
    }
}
