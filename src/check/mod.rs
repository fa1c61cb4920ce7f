//! `tfjob-operator check`: is this cluster ready for the operator, as configured by the same
//! flags `run` takes? One line per check (PASS, WARN, FAIL, with the fix), exit code 1 when any
//! check fails. Runs from a laptop (`KUBECONFIG`, `--kubeconfig`), as the chart's `helm test`
//! hook, or as an init step before the operator starts.
//!
//! It checks the apiserver's version, the TFJob CRD (installed, keeping every field the operator
//! stores, stored as v1), the permissions of the identity it runs as (one
//! SelfSubjectAccessReview per permission the operator uses), webhooks that route TFJob writes
//! elsewhere, the Lease (free or held by this operator, not by another controller), a running
//! upstream training-operator, and the PodGroup CRD when gang scheduling is on.

pub mod findings;
pub mod permissions;

use std::process::ExitCode;

use anyhow::Context as _;
use jiff::Timestamp;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use tfjob_core::api::crd::KubeVersion;
use tfjob_core::api::podgroup::GangScheduler;

use self::findings::{Finding, LeaseView, Level};
use self::permissions::Permission;
use crate::config::{NamespaceScope, RunArgs};
use crate::controller::startup::{TFJOB_CRD, pod_group_resource, read_installed_crd};

/// upstream training-operator's Lease name.
const UPSTREAM_LEASE: &str = "1ca428e5.training-operator.kubeflow.org";

/// Runs every check and prints the report; the exit code says whether any failed.
pub fn main(args: RunArgs) -> ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(run(&args)));
    match result {
        Ok(findings) => {
            for finding in &findings {
                println!("{finding}");
            }
            let count = |level| findings.iter().filter(|f| f.level == level).count();
            let (failed, warned) = (count(Level::Fail), count(Level::Warn));
            println!(
                "\n{} checks: {} passed, {warned} warnings, {failed} failed",
                findings.len(),
                findings.len() - failed - warned
            );
            if failed > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &RunArgs) -> anyhow::Result<Vec<Finding>> {
    args.validate()?;
    let config = crate::ops::client::load_config(args.upstream.kubeconfig.as_deref()).await?;
    let client = Client::try_from(config).context("cannot build the Kubernetes client")?;
    let version = client.apiserver_version().await.context(
        "cannot reach the apiserver; check KUBECONFIG (or --kubeconfig) and the network",
    )?;
    let mut all = vec![findings::version(
        &version.major,
        &version.minor,
        &version.git_version,
    )];
    let server = format!("{}.{}", version.major, version.minor).parse().ok();
    all.extend(check_crd(&client, server).await);
    all.push(check_permissions(&client, args).await);
    all.extend(check_webhooks(&client, args).await);
    all.extend(check_leases(&client, args).await);
    if let Some(gang) = GangScheduler::from_flag(&args.watch.gang_scheduler_name) {
        all.push(check_pod_group_crd(&client, &gang).await);
    }
    Ok(all)
}

async fn check_crd(client: &Client, server: Option<KubeVersion>) -> Vec<Finding> {
    match read_installed_crd(client).await {
        Ok(crd) => findings::crd(crd.as_ref(), server),
        Err(err) => vec![Finding::fail(
            "crd",
            format!("cannot read {TFJOB_CRD}: {err}"),
            "grant this identity get on customresourcedefinitions named tfjobs.kubeflow.org",
        )],
    }
}

async fn check_permissions(client: &Client, args: &RunArgs) -> Finding {
    let watched = match args.watch.namespace_scope() {
        Ok(NamespaceScope::Only(namespaces)) => namespaces,
        _ => vec![],
    };
    let needed = permissions::required(args, &watched);
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut missing = Vec::new();
    for permission in &needed {
        match allowed(&reviews, permission).await {
            Ok(true) => {}
            Ok(false) => missing.push(permission.to_string()),
            Err(err) => {
                return Finding::fail(
                    "rbac",
                    format!("cannot ask the apiserver about permissions: {err}"),
                    "check that the apiserver serves authorization.k8s.io/v1",
                );
            }
        }
    }
    if missing.is_empty() {
        Finding::pass(
            "rbac",
            format!(
                "this identity may do all {} things the operator does",
                needed.len()
            ),
        )
    } else {
        Finding::fail(
            "rbac",
            format!("this identity may not: {}", missing.join("; ")),
            "grant them (the chart's RBAC does; `helm template` shows the rules)",
        )
    }
}

async fn allowed(
    reviews: &Api<SelfSubjectAccessReview>,
    permission: &Permission,
) -> Result<bool, kube::Error> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(permission.verb.into()),
                group: Some(permission.group.into()),
                resource: Some(permission.resource.into()),
                subresource: permission.subresource.map(String::from),
                name: permission.name.clone(),
                namespace: permission.namespace.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = reviews.create(&PostParams::default(), &review).await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

async fn check_webhooks(client: &Client, args: &RunArgs) -> Vec<Finding> {
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let listed = match configs.list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(err) => {
            return vec![Finding::warn(
                "webhook",
                format!("cannot list ValidatingWebhookConfigurations: {err}"),
                "run the check as an identity that may list them (an admin) to look for \
                 webhooks that route TFJob writes elsewhere",
            )];
        }
    };
    let service_namespace =
        crate::config::values::own_namespace(args.webhook.webhook_service_namespace.clone());
    let ours = args
        .webhook
        .webhook_enabled
        .then_some(findings::OwnWebhook {
            config: &args.webhook.validating_webhook_config_name,
            service_namespace: &service_namespace,
            service_name: &args.webhook.webhook_service_name,
        });
    let found = findings::foreign_webhooks(&listed, ours);
    if found.is_empty() {
        let detail = if args.webhook.webhook_enabled {
            "no webhook routes TFJob writes: this operator's webhook configuration is not \
             installed"
        } else {
            "no webhook routes TFJob writes elsewhere"
        };
        return vec![if args.webhook.webhook_enabled {
            Finding::warn(
                "webhook",
                detail,
                "install the chart's ValidatingWebhookConfiguration (webhook.enabled)",
            )
        } else {
            Finding::pass("webhook", detail)
        }];
    }
    found
}

async fn check_leases(client: &Client, args: &RunArgs) -> Vec<Finding> {
    let namespace = args.leader.namespace();
    let now = Timestamp::now();
    let mut out = Vec::new();
    if args.leader.leader_elect {
        let name = &args.leader.leader_election_id;
        match read_lease(client, &namespace, name).await {
            Ok(lease) => {
                let view = lease.as_ref().map(|l| view(l, &namespace, name));
                out.push(findings::own_lease(view.as_ref(), name, now));
            }
            Err(err) => out.push(Finding::warn(
                "lease",
                format!("cannot read Lease {namespace}/{name}: {err}"),
                "grant this identity get on the Lease (the chart does with leaderElection)",
            )),
        }
    }
    // A training-operator usually runs in kubeflow; look there and beside this operator.
    let mut places = vec![namespace.clone()];
    if namespace != "kubeflow" {
        places.push("kubeflow".into());
    }
    for place in places {
        if args.leader.leader_election_id == UPSTREAM_LEASE && place == namespace {
            continue; // that is this operator's own Lease, checked above
        }
        if let Ok(Some(lease)) = read_lease(client, &place, UPSTREAM_LEASE).await {
            out.extend(findings::upstream_lease(
                Some(&view(&lease, &place, UPSTREAM_LEASE)),
                now,
            ));
        }
    }
    out
}

async fn read_lease(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<Lease>, kube::Error> {
    Api::<Lease>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
}

fn view<'a>(lease: &'a Lease, namespace: &'a str, name: &'a str) -> LeaseView<'a> {
    let spec = lease.spec.as_ref();
    LeaseView {
        name,
        namespace,
        holder: spec.and_then(|s| s.holder_identity.as_deref()),
        renewed: spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0),
        duration_seconds: spec.and_then(|s| s.lease_duration_seconds),
    }
}

async fn check_pod_group_crd(client: &Client, gang: &GangScheduler) -> Finding {
    let resource = pod_group_resource(gang);
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => Finding::pass(
            "podgroups",
            format!("{} PodGroups are served", resource.api_version),
        ),
        Err(kube::Error::Api(status)) if status.code == 404 => Finding::fail(
            "podgroups",
            format!(
                "gang scheduling with {:?} needs the PodGroup CRD ({}), which is not installed",
                gang.scheduler_name(),
                resource.api_version
            ),
            "install the scheduler's CRDs or unset --gang-scheduler-name",
        ),
        Err(err) => Finding::warn(
            "podgroups",
            format!("cannot list {} PodGroups: {err}", resource.api_version),
            "grant this identity list on podgroups",
        ),
    }
}
