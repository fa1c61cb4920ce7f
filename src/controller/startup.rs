//! What the controller checks before it starts, each failure with its fix: the TFJob CRD is
//! installed and keeps every field the operator stores, the operator may list TFJobs in each
//! watched scope, and with gang scheduling the scheduler's PodGroup CRD exists.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use tfjob_core::api::TFJob;
use tfjob_core::api::crd::{KubeVersion, missing_fields, replace_crd_command};
use tfjob_core::api::installed_crd::decode_installed;
use tfjob_core::api::podgroup::GangScheduler;
use tracing::warn;

/// The name of the TFJob CRD.
pub const TFJOB_CRD: &str = "tfjobs.kubeflow.org";

/// The controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(
        "the TFJob CustomResourceDefinition is not installed (tfjobs.kubeflow.org); install it with \
         `kubectl apply -f crds/kubeflow.org_tfjobs.yaml` (or `tfjob-operator crd | kubectl apply -f -`)"
    )]
    CrdMissing,
    #[error(
        "gang scheduling with {scheduler:?} needs the PodGroup CRD ({api_version}), which is not \
         installed; install the scheduler's CRDs or unset --gang-scheduler-name"
    )]
    PodGroupCrdMissing {
        api_version: String,
        scheduler: String,
    },
    #[error(
        "the installed TFJob CRD (tfjobs.kubeflow.org) lacks fields this operator stores, so the \
         apiserver would silently drop them: {missing}. Replace it with this release's CRD: \
         `{command}` (or pass --allow-upstream-crd to run without these fixes)"
    )]
    IncompatibleCrd { missing: String, command: String },
    #[error(
        "cannot read the CustomResourceDefinition tfjobs.kubeflow.org: {source}; the operator \
         checks at start that the CRD keeps every field it stores: grant it `get` on \
         customresourcedefinitions named tfjobs.kubeflow.org (the chart does)"
    )]
    CrdUnreadable {
        #[source]
        source: kube::Error,
    },
    #[error(
        "cannot list TFJobs{scope}: {source}; check the operator's RBAC and kubeconfig (an \
         unreachable apiserver is retried)"
    )]
    Probe {
        scope: String,
        #[source]
        source: kube::Error,
    },
}

impl ControllerError {
    /// Whether retrying may help: the apiserver was unreachable, overloaded or failing, as at
    /// a cluster's start or during a control-plane upgrade. A missing CRD, missing RBAC or an
    /// incompatible CRD needs a person.
    pub fn is_transient(&self) -> bool {
        match self {
            ControllerError::Probe { source, .. } | ControllerError::CrdUnreadable { source } => {
                is_transient(source)
            }
            _ => false,
        }
    }
}

/// Whether `error` says the apiserver could not be reached or could not answer now.
pub fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code >= 500 || status.code == 429,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Whether the installed CRD keeps every field the operator stores. If it does not, the
/// operator refuses to start, naming the missing fields and the command that replaces the CRD
/// (for this apiserver's version), unless `allow_upstream_crd`: then it runs degraded (see
/// docs/migration.md) and returns that command. `None`: the CRD is compatible.
pub async fn check_crd_schema(
    client: &Client,
    allow_upstream_crd: bool,
) -> Result<Option<String>, ControllerError> {
    let crd = match read_installed_crd(client).await {
        Ok(Some(crd)) => crd,
        Ok(None) => return Err(ControllerError::CrdMissing),
        Err(source) => return Err(ControllerError::CrdUnreadable { source }),
    };
    let missing = missing_fields(&crd);
    if missing.is_empty() {
        return Ok(None);
    }
    let server = client.apiserver_version().await.ok().and_then(|v| {
        format!("{}.{}", v.major, v.minor)
            .parse::<KubeVersion>()
            .ok()
    });
    let command = replace_crd_command(server);
    let described: Vec<String> = missing
        .iter()
        .map(|f| format!("{} ({})", f.path, f.purpose))
        .collect();
    if !allow_upstream_crd {
        return Err(ControllerError::IncompatibleCrd {
            missing: described.join(", "),
            command,
        });
    }
    warn!(
        missing = ?missing.iter().map(|f| f.path).collect::<Vec<_>>(),
        fix = command,
        "--allow-upstream-crd: the installed TFJob CRD drops fields this operator stores; running \
         without the fixes that need them (each affected job gets a Warning event)"
    );
    Ok(Some(command))
}

/// The installed TFJob CRD (`None` when there is none), decoded only as far as the checks need:
/// its served and stored versions and the schema nodes on the paths of the stored fields
/// (`tfjob_core::api::installed_crd`; the whole object would leave megabytes on the heap).
pub async fn read_installed_crd(
    client: &Client,
) -> Result<Option<CustomResourceDefinition>, kube::Error> {
    let request = http::Request::get(format!(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{TFJOB_CRD}"
    ))
    .body(Vec::new())
    .map_err(kube::Error::HttpError)?;
    match client.request_text(request).await {
        Ok(text) => decode_installed(&text)
            .map(Some)
            .map_err(kube::Error::SerdeError),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(err) => Err(err),
    }
}

/// Fails early, with the fix, when the CRD is missing or the operator may not list TFJobs.
pub async fn check_crd(client: &Client, namespace: Option<&str>) -> Result<(), ControllerError> {
    let api: Api<TFJob> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        // An unknown API group answers a bare 404 page, not a NotFound Status.
        Err(kube::Error::Api(status)) if status.code == 404 => Err(ControllerError::CrdMissing),
        Err(source) => Err(ControllerError::Probe {
            scope: namespace
                .map(|ns| format!(" in namespace {ns}"))
                .unwrap_or_default(),
            source,
        }),
    }
}

/// With gang scheduling, the scheduler's PodGroup CRD must be installed (upstream exits too).
pub async fn check_pod_group_crd(
    client: &Client,
    gang: &GangScheduler,
    namespace: Option<&str>,
) -> Result<(), ControllerError> {
    let resource = pod_group_resource(gang);
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => {
            Err(ControllerError::PodGroupCrdMissing {
                api_version: resource.api_version.clone(),
                scheduler: gang.scheduler_name().to_string(),
            })
        }
        Err(source) => Err(ControllerError::Probe {
            scope: format!(
                " (PodGroups{})",
                namespace
                    .map(|ns| format!(" in namespace {ns}"))
                    .unwrap_or_default()
            ),
            source,
        }),
    }
}

/// The API resource of the gang scheduler's PodGroup.
pub fn pod_group_resource(gang: &GangScheduler) -> ApiResource {
    let (group, version, kind) = gang.pod_group_gvk();
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), "podgroups")
}

#[cfg(test)]
mod tests {
    use kube::core::Status;

    #[test]
    fn only_an_unreachable_or_failing_apiserver_is_retried() {
        let api = |code: u16| kube::Error::Api(Box::new(Status::failure("x", "y").with_code(code)));
        let cases = [
            (api(500), true),
            (api(503), true),
            (api(429), true),
            (api(403), false),
            (api(401), false),
            (api(404), false),
            (
                kube::Error::Service(Box::new(std::io::Error::other("connection refused"))),
                true,
            ),
            (kube::Error::LinesCodecMaxLineLengthExceeded, false),
        ];
        for (error, transient) in cases {
            assert_eq!(super::is_transient(&error), transient, "{error}");
        }
    }
}
