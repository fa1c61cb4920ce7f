//! The operator installed as users install it — the Helm chart and the kustomize base, applied
//! to the real control plane with server-side apply — then run (out of cluster, but with the
//! Deployment's own args and env) under the installed ServiceAccount's identity. The seed's
//! TFJob must succeed with nothing but the installed RBAC, and `kubectl auth can-i` must show
//! that the same identity can do nothing else. Both install the validating webhook, as
//! upstream's does (failurePolicy Fail), served by the same process: a bad TFJob is refused at
//! create time with upstream's text.

use test_support as support;
use test_support::deploy;

use std::path::PathBuf;

use kube::api::Api;
use serde_json::{Value, json};
use tfjob_core::api::TFJob;

use deploy::access::{Check, assert_access, may, may_not};
use deploy::image::{self, OciImage};
use deploy::process::{OperatorProcess, free_address};
use deploy::{NAMESPACE, cluster, helm, kustomize, objects, repo_path};
use support::operator::{await_events, conditions, has, sim_kubelet, submit};
use support::{TestContext, control_plane, secs, unique_suffix, wait_for};

/// The identity the installed RBAC binds (and the harness's operator token authenticates as).
const OPERATOR_USER: &str = "system:serviceaccount:tfjob-system:tfjob-operator";
/// The chart's default Lease name.
const LEASE: &str = "tfjob-operator.kubeflow.org";

/// Both installs create the same cluster-scoped objects for the same ServiceAccount: one at a
/// time. (A tokio mutex: it is not poisoned when a test fails, and the failed test's
/// `Installed` guard has removed its objects by then.)
static ONE_INSTALL_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn helm_chart_runs_the_seed_tfjob_with_only_its_rbac() {
    let _turn = ONE_INSTALL_AT_A_TIME.lock().await;
    // Leader election on, so that the Lease Role (create, and get/update of one name) is proven
    // too; everything else as the chart's defaults (all namespaces).
    let objs = helm::render_with_crds(&json!({ "leaderElection": { "enabled": true } }));
    install_and_run("helm", &objs, true, None).await;
}

/// The container image, not just its recipe: `hack/image.sh` builds it, its layers are
/// unpacked into a root, and the operator runs from inside it (chroot, as the image's user,
/// in-cluster credentials where the kubelet mounts them) as the chart's Deployment, until the
/// seed's TFJob succeeds.
#[tokio::test]
async fn container_image_runs_the_seed_tfjob() {
    let _turn = ONE_INSTALL_AT_A_TIME.lock().await;
    let image = OciImage::build();
    image.verify_digests();
    read_by_skopeo(&image);
    let root = work_dir("image").join("rootfs");
    image.unpack(&root);
    check_image(&image, &root);
    let objs = helm::render_with_crds(&json!({ "leaderElection": { "enabled": true } }));
    install_and_run("image", &objs, true, Some((&image, &root))).await;
    let _ = std::fs::remove_dir_all(root.parent().expect("the scratch directory"));
}

/// The Dockerfile's final stage (for people with Docker) makes the same image: its USER,
/// ENTRYPOINT, the paths it copies the binary to and its label names.
fn same_as_the_dockerfile(image: &OciImage, files: &[String]) {
    let dockerfile = std::fs::read_to_string(repo_path("Dockerfile")).expect("Dockerfile");
    let final_stage = dockerfile
        .rsplit_once("\nFROM ")
        .map(|(_, stage)| stage)
        .expect("a final stage");
    let instruction = |name: &str| -> Vec<String> {
        final_stage
            .lines()
            .filter_map(|l| l.trim().strip_prefix(name).map(|r| r.trim().to_string()))
            .collect()
    };
    assert_eq!(
        instruction("USER "),
        vec![image.runtime("User").as_str().unwrap_or("").to_string()]
    );
    let entrypoint: Value =
        serde_json::from_str(&instruction("ENTRYPOINT ")[0]).expect("ENTRYPOINT in exec form");
    assert_eq!(&entrypoint, image.runtime("Entrypoint"));
    for copy in instruction("COPY --from=build ") {
        let destination = copy.split_whitespace().last().expect("a COPY destination");
        let path = destination.trim_start_matches('/');
        assert!(
            files.iter().any(|f| f == path),
            "the Dockerfile copies to {destination}; the image has no such file"
        );
    }
    let labels = image.runtime("Labels");
    for label in final_stage
        .split(|c: char| c.is_whitespace() || c == '\\')
        .filter_map(|word| word.split_once('=').map(|(name, _)| name))
        .filter(|name| name.starts_with("org.opencontainers.image."))
    {
        assert!(
            labels.get(label).is_some(),
            "the image has the Dockerfile's label {label}"
        );
    }
}

/// A real image tool reads both outputs of hack/image.sh and copies the image the way the
/// README's push command does (to a local OCI archive instead of a registry).
fn read_by_skopeo(image: &OciImage) {
    let layout = format!("oci:{}:{}", image.layout.display(), image.tag);
    let config: Value =
        serde_json::from_str(&image::skopeo(&["inspect", "--config", &layout])).expect("JSON");
    assert_eq!(
        &config, &image.config,
        "skopeo reads the same config from the layout"
    );
    let archive = image.layout.with_file_name("tfjob-operator.tar");
    let from_archive: Value = serde_json::from_str(&image::skopeo(&[
        "inspect",
        "--config",
        &format!("docker-archive:{}", archive.display()),
    ]))
    .expect("JSON");
    assert_eq!(
        from_archive["config"], image.config["config"],
        "the docker-load archive holds the same image"
    );
    let copy = image.layout.with_file_name("copy.tar");
    let _ = std::fs::remove_file(&copy);
    image::skopeo(&["copy", &layout, &format!("oci-archive:{}", copy.display())]);
    assert!(copy.is_file(), "skopeo copy wrote {}", copy.display());
    let _ = std::fs::remove_file(&copy);
}

/// The image's config and contents: what the chart and a kubelet rely on, and nothing more.
fn check_image(image: &OciImage, root: &std::path::Path) {
    eprintln!(
        "image: tfjob-operator:{} is {:.1} MiB compressed ({} layers)",
        image.tag,
        image.compressed_size() as f64 / 1_048_576.0,
        image.layers().len()
    );
    assert_eq!(
        image.tag,
        env!("CARGO_PKG_VERSION"),
        "tagged with the crate's version"
    );
    assert_eq!(
        image.runtime("User"),
        "65532:65532",
        "runs as nonroot, numerically"
    );
    assert_eq!(
        image.runtime("Entrypoint"),
        &json!(["/usr/local/bin/tfjob-operator"])
    );
    let labels = image.runtime("Labels");
    for (label, expected) in [
        (
            "org.opencontainers.image.version",
            env!("CARGO_PKG_VERSION"),
        ),
        (
            "org.opencontainers.image.licenses",
            env!("CARGO_PKG_LICENSE"),
        ),
        (
            "org.opencontainers.image.source",
            env!("CARGO_PKG_REPOSITORY"),
        ),
    ] {
        assert_eq!(labels[label], expected, "label {label}: {labels}");
    }
    let revision = labels["org.opencontainers.image.revision"]
        .as_str()
        .unwrap_or("");
    assert!(
        revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit()),
        "label org.opencontainers.image.revision is a commit: {revision:?}"
    );

    let files = image::files_under(root);
    for needed in [
        "usr/local/bin/tfjob-operator",
        "manager",
        "etc/passwd",
        "etc/group",
        "etc/ssl/certs/ca-certificates.crt",
        "lib64/ld-linux-x86-64.so.2",
        "tmp",
    ] {
        assert!(
            files.iter().any(|f| f == needed),
            "{needed} is in the image"
        );
    }
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).expect("etc/passwd");
    assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");
    let group = std::fs::read_to_string(root.join("etc/group")).expect("etc/group");
    assert!(group.contains("nonroot:x:65532:"), "{group}");
    // No shell, no package manager: nothing to exec into, nothing to install with.
    let forbidden = [
        "sh", "bash", "dash", "busybox", "ash", "zsh", "dpkg", "apt", "apt-get", "rpm", "yum",
    ];
    let found: Vec<&String> = files
        .iter()
        .filter(|f| {
            let name = f.rsplit('/').next().unwrap_or(f);
            forbidden.contains(&name)
        })
        .collect();
    assert!(
        found.is_empty(),
        "a shell or package manager in the image: {found:?}"
    );
    same_as_the_dockerfile(image, &files);
    let certificates = std::fs::read_to_string(root.join("etc/ssl/certs/ca-certificates.crt"))
        .expect("the CA bundle");
    assert!(
        certificates.matches("BEGIN CERTIFICATE").count() > 100,
        "the CA bundle holds Debian's certificates"
    );
}

#[tokio::test]
async fn kustomize_standalone_runs_the_seed_tfjob_with_only_its_rbac() {
    let _turn = ONE_INSTALL_AT_A_TIME.lock().await;
    let objs = kustomize::build("deploy/kustomize/overlays/standalone");
    install_and_run("kustomize", &objs, true, None).await;
}

/// The chart's optional objects are accepted by a real apiserver (PodDisruptionBudget,
/// NetworkPolicy, topology spread, extra objects; a ServiceMonitor and PrometheusRule asked for
/// on a cluster without their CRDs are left out instead of failing the install), and the user
/// roles do what they are for: through Kubernetes' own aggregation into `edit`, a user bound
/// to `edit` in a namespace creates TFJobs there and cannot touch the operator's Lease.
#[tokio::test]
async fn chart_extras_apply_and_a_namespace_editor_can_run_tfjobs() {
    let _turn = ONE_INSTALL_AT_A_TIME.lock().await;
    // No operator runs here, so no webhook either (a configuration with failurePolicy Fail and
    // nothing serving it would refuse every TFJob).
    let values = json!({
        "webhook": { "enabled": false },
        "podDisruptionBudget": { "enabled": true },
        "networkPolicy": { "enabled": true },
        "topologySpreadConstraints": [{
            "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway" }],
        "serviceMonitor": { "enabled": true },
        "prometheusRule": { "enabled": true },
        "extraObjects": [{ "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "{{ .Release.Name }}-extra", "namespace": "{{ .Release.Namespace }}" },
            "data": { "a": "b" } }],
    });
    let objs = helm::render_with_crds(&values);
    for kind in ["PodDisruptionBudget", "NetworkPolicy", "ConfigMap"] {
        objects::one(&objs, kind);
    }
    assert!(
        !objs
            .iter()
            .any(|o| matches!(objects::kind(o), "ServiceMonitor" | "PrometheusRule")),
        "no Prometheus Operator objects without its CRDs"
    );
    let admin = support::client().await;
    let installed = cluster::install(&admin, &objs, NAMESPACE).await;
    let listed = kubectl(&[
        "get",
        "poddisruptionbudgets,networkpolicies,configmaps",
        "-n",
        NAMESPACE,
        "-o",
        "name",
    ])
    .await
    .expect("kubectl get");
    for name in [
        "poddisruptionbudget.policy/tfjob-operator",
        "networkpolicy.networking.k8s.io/tfjob-operator",
        "configmap/tfjob-operator-extra",
    ] {
        assert!(
            listed.lines().any(|l| l == name),
            "{name} is stored:\n{listed}"
        );
    }

    let ctx = TestContext::new("editor").await;
    let ns = ctx.namespace.clone();
    for (user, role) in [("alice", "edit"), ("bob", "view")] {
        ctx.apply_yaml(&format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: {user}-{role}\n\
             roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}\n\
             subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {user}}}]\n"
        ))
        .await;
    }
    // kube-controller-manager's clusterrole-aggregation controller copies the labelled rules
    // into `edit` and `view` (and `admin`), as in any real cluster.
    let question = format!("create tfjobs.kubeflow.org -n {ns}");
    wait_for(
        secs(30),
        "the TFJob rules to be aggregated into `edit`",
        || async {
            match kubectl(&[
                "auth",
                "can-i",
                "create",
                "tfjobs.kubeflow.org",
                "-n",
                &ns,
                "--as=alice",
            ])
            .await
            {
                Ok(answer) if answer.trim() == "yes" => Ok(()),
                other => Err(format!("can-i {question} --as=alice: {other:?}")),
            }
        },
    )
    .await;
    let kubeconfig = &control_plane().kubeconfig;
    assert_access(
        kubeconfig,
        "alice",
        &[
            may(format!("create tfjobs.kubeflow.org -n {ns}")),
            may(format!("delete tfjobs.kubeflow.org -n {ns}")),
            may(format!(
                "get tfjobs.kubeflow.org --subresource=status -n {ns}"
            )),
            may_not(format!(
                "patch tfjobs.kubeflow.org --subresource=status -n {ns}"
            )),
            may_not("create tfjobs.kubeflow.org -n default"),
            may_not(format!(
                "get leases.coordination.k8s.io/{LEASE} -n {NAMESPACE}"
            )),
            may_not(format!(
                "update leases.coordination.k8s.io/{LEASE} -n {NAMESPACE}"
            )),
        ],
    )
    .await;
    assert_access(
        kubeconfig,
        "bob",
        &[
            may(format!("list tfjobs.kubeflow.org -n {ns}")),
            may(format!("watch tfjobs.kubeflow.org -n {ns}")),
            may_not(format!("create tfjobs.kubeflow.org -n {ns}")),
            may_not(format!("delete tfjobs.kubeflow.org -n {ns}")),
        ],
    )
    .await;
    // A real create, as alice.
    let seed = repo_path("examples/tfjob-seed.yaml");
    let created = kubectl(&[
        "create",
        "--validate=false",
        "-n",
        &ns,
        "--as=alice",
        "-f",
        &seed.display().to_string(),
    ])
    .await;
    assert!(
        created
            .as_deref()
            .is_ok_and(|out| out.contains("tfjob.kubeflow.org/tfjob-test created")),
        "alice creates the seed TFJob: {created:?}"
    );
    installed.uninstall(&admin).await;
    ctx.teardown().await;
}

/// `kubectl delete -k` of the Kubeflow-style install removes the operator and leaves the
/// `kubeflow` namespace and what else lives there.
#[tokio::test]
async fn deleting_the_kubeflow_overlay_leaves_the_kubeflow_namespace() {
    let _turn = ONE_INSTALL_AT_A_TIME.lock().await;
    let admin = support::client().await;
    let objs = kustomize::build("deploy/kustomize/overlays/kubeflow");
    // Kubeflow's namespace, with something of Kubeflow's in it.
    let _ = kubectl(&["create", "namespace", "kubeflow"]).await;
    kubectl(&[
        "create",
        "configmap",
        "pipeline-install-config",
        "-n",
        "kubeflow",
        "--from-literal=a=b",
    ])
    .await
    .expect("a Kubeflow object");
    let installed = cluster::install(&admin, &objs, "kubeflow").await;
    let deployment = kubectl(&[
        "get",
        "deployment",
        "tfjob-operator",
        "-n",
        "kubeflow",
        "-o",
        "name",
    ])
    .await;
    assert_eq!(
        deployment.as_deref().map(str::trim),
        Ok("deployment.apps/tfjob-operator")
    );

    let overlay = repo_path("deploy/kustomize/overlays/kubeflow");
    let deleted = kubectl(&[
        "delete",
        "-k",
        &overlay.display().to_string(),
        "--wait=false",
    ])
    .await;
    assert!(deleted.is_ok(), "kubectl delete -k: {deleted:?}");
    let namespace = kubectl(&[
        "get",
        "namespace",
        "kubeflow",
        "-o",
        "jsonpath={.status.phase}",
    ])
    .await;
    assert_eq!(
        namespace.as_deref(),
        Ok("Active"),
        "the kubeflow namespace stays"
    );
    let kept = kubectl(&[
        "get",
        "configmap",
        "pipeline-install-config",
        "-n",
        "kubeflow",
        "-o",
        "name",
    ])
    .await;
    assert!(kept.is_ok(), "Kubeflow's objects stay: {kept:?}");
    let gone = kubectl(&["get", "deployment", "tfjob-operator", "-n", "kubeflow"]).await;
    assert!(gone.is_err(), "the operator is gone: {gone:?}");

    // The CRD went with the overlay: wait until it is gone, then put it back for the tests
    // that follow in this process.
    wait_for(secs(60), "the TFJob CRD to be deleted", || async {
        match kubectl(&["get", "crd", "tfjobs.kubeflow.org"]).await {
            Err(e) if e.contains("NotFound") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let crd = objects::one(&objs, "CustomResourceDefinition");
    support::install_crd(
        &admin,
        &serde_json::from_value(crd.clone()).expect("the CRD"),
    )
    .await;
    installed.uninstall(&admin).await;
    // The `kubeflow` namespace stays, as it would in a cluster (other tests apply into it).
}

/// `kubectl ARGS` as the control plane's admin: Ok(stdout) or Err(stderr).
async fn kubectl(args: &[&str]) -> Result<String, String> {
    let output = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&control_plane().kubeconfig)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run kubectl ({e}); install kubectl"));
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Installs `objs`, runs the operator as their Deployment (the workspace binary with a
/// kubeconfig, or from `image` unpacked at its root) and the seed's TFJob to success.
async fn install_and_run(
    how: &str,
    objs: &[Value],
    leader_election: bool,
    image: Option<(&OciImage, &std::path::Path)>,
) {
    let admin = support::client().await;
    let webhook = free_address();
    let mut objs = objs.to_vec();
    cluster::route_webhooks_to(&mut objs, webhook);
    let installed = cluster::install(&admin, &objs, NAMESPACE).await;
    let ctx = TestContext::new(&format!("{how}-install")).await;
    let dir = work_dir(how);

    let deployment = objects::one(&objs, "Deployment");
    let mut operator = match image {
        Some((image, root)) => {
            OperatorProcess::start_in_image(deployment, image, root, &dir, Some(webhook))
        }
        None => {
            let kubeconfig = cluster::operator_kubeconfig(&dir);
            OperatorProcess::start(deployment, &kubeconfig, &dir, Some(webhook))
        }
    };
    assert_eq!(
        operator.webhook,
        Some(webhook),
        "the webhook is on by default"
    );
    // Ready means the apiserver trusts the webhook's certificate (its CA is in caBundle).
    operator.wait_ready(secs(30)).await;
    assert_bad_job_is_refused(&ctx).await;
    let (code, _) = operator.get(operator.probes, "/healthz").await;
    assert_eq!(code, 200, "/healthz");
    if leader_election {
        // Ready includes standing by; leading needs the Lease created and renewed.
        let metrics = operator.metrics;
        wait_for(secs(30), "the operator to hold the Lease", || async move {
            let (_, body) = deploy::process::http_get(metrics, "/metrics").await?;
            Ok::<_, String>(body.lines().any(|l| l == "tfjob_operator_is_leader 1"))
        })
        .await;
    }

    // The seed's TFJob, in a namespace of its own, with the simulated kubelet (admin) running
    // its pods: Created → Running → Succeeded needs every rule of the operator's role.
    let kubelet = sim_kubelet(&ctx);
    let seed = std::fs::read_to_string(repo_path("examples/tfjob-seed.yaml")).expect("the seed");
    submit(&ctx, &seed).await;
    let jobs: Api<TFJob> = ctx.api();
    wait_for(secs(30), "the seed TFJob to succeed", || async {
        let job = jobs.get("tfjob-test").await.map_err(|e| e.to_string())?;
        if has(&job, "Succeeded") {
            return Ok(());
        }
        // A missing permission shows in the operator's log, not in the job.
        let log = operator.log();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        Err(format!(
            "conditions {:?}; operator log ends with {tail:#?}",
            conditions(&job)
        ))
    })
    .await;
    let events = await_events(&ctx, "tfjob-test", "the TFJobSucceeded event", |e| {
        e.iter().any(|e| e.contains("TFJobSucceeded"))
    })
    .await;
    for reason in [
        "SuccessfulCreatePod",
        "SuccessfulCreateService",
        "TFJobSucceeded",
    ] {
        assert!(
            events.iter().any(|e| e.contains(reason)),
            "event {reason} recorded (core/v1 create): {events:#?}\n{}",
            operator.log()
        );
    }
    let (_, metrics) = operator.get(operator.metrics, "/metrics").await;
    let succeeded = format!(
        "training_operator_jobs_successful_total{{framework=\"tensorflow\",job_namespace=\"{}\"}} 1",
        ctx.namespace
    );
    assert!(
        metrics.lines().any(|l| l == succeeded),
        "{succeeded} in /metrics"
    );

    assert_access(
        &control_plane().kubeconfig,
        OPERATOR_USER,
        &access_checks(&ctx.namespace, leader_election),
    )
    .await;

    let log = operator.log();
    let status = operator.stop().await;
    assert!(
        status.success(),
        "the operator stops cleanly on SIGTERM ({status}):\n{log}"
    );
    for denied in ["forbidden", "Forbidden", " 403"] {
        assert!(
            !log.contains(denied),
            "the operator was refused something ({denied:?}); its log:\n{log}"
        );
    }
    let _ = kubelet.shutdown().await;
    installed.uninstall(&admin).await;
    ctx.teardown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A TFJob without replicas is refused by the installed webhook with upstream's exact text,
/// and nothing is stored.
async fn assert_bad_job_is_refused(ctx: &TestContext) {
    let empty = serde_json::from_value::<TFJob>(json!({
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": { "name": "no-replicas" },
        "spec": { "tfReplicaSpecs": {} }
    }))
    .expect("a TFJob");
    let jobs: Api<TFJob> = ctx.api();
    let refused = wait_for(
        secs(20),
        "the webhook to refuse a TFJob without replicas",
        || async {
            match jobs.create(&Default::default(), &empty).await {
                Err(kube::Error::Api(status)) if status.message.contains("denied the request") => {
                    Ok(status.message)
                }
                Ok(_) => {
                    let _ = jobs.delete("no-replicas", &Default::default()).await;
                    Err("admitted".to_string())
                }
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await;
    assert_eq!(
        refused,
        "admission webhook \"validator.tfjob.training-operator.kubeflow.org\" denied the request: \
         spec.tfReplicaSpecs: Required value: must be required"
    );
}

/// What the operator's identity may do — exactly its rules — and a sample of what it must not.
fn access_checks(ns: &str, leader_election: bool) -> Vec<Check> {
    let system = NAMESPACE;
    let mut checks = vec![
        // TFJobs: cache (list, watch), TTL (delete), status (patch) — in any namespace.
        may(format!("list tfjobs.kubeflow.org -n {ns}")),
        may(format!("watch tfjobs.kubeflow.org -n {ns}")),
        may(format!("delete tfjobs.kubeflow.org -n {ns}")),
        may("list tfjobs.kubeflow.org --all-namespaces"),
        may(format!(
            "patch tfjobs.kubeflow.org --subresource=status -n {ns}"
        )),
        may_not(format!("get tfjobs.kubeflow.org -n {ns}")),
        may_not(format!("create tfjobs.kubeflow.org -n {ns}")),
        may_not(format!("update tfjobs.kubeflow.org -n {ns}")),
        may_not(format!("patch tfjobs.kubeflow.org -n {ns}")),
        may_not(format!(
            "update tfjobs.kubeflow.org --subresource=status -n {ns}"
        )),
        // Children.
        may(format!("create pods -n {ns}")),
        may(format!("delete pods -n {ns}")),
        may(format!("get pods -n {ns}")),
        may(format!("list pods -n {ns}")),
        may(format!("watch pods -n {ns}")),
        may(format!("patch pods -n {ns}")),
        may(format!("create services -n {ns}")),
        may(format!("delete services -n {ns}")),
        may(format!("patch services -n {ns}")),
        may_not(format!("update pods -n {ns}")),
        may_not(format!("deletecollection pods -n {ns}")),
        may_not(format!("create pods --subresource=exec -n {ns}")),
        may_not(format!("get pods --subresource=log -n {ns}")),
        may_not(format!("create pods --subresource=eviction -n {ns}")),
        // Events: core/v1 (what carries source.component), create only.
        may(format!("create events -n {ns}")),
        may_not(format!("patch events -n {ns}")),
        may_not(format!("list events -n {ns}")),
        may_not(format!("create events.events.k8s.io -n {ns}")),
        // Secrets, nowhere.
        may_not(format!("get secrets -n {ns}")),
        may_not(format!("list secrets -n {ns}")),
        may_not(format!("watch secrets -n {ns}")),
        may_not(format!("get secrets -n {system}")),
        may_not("list secrets --all-namespaces"),
        // Nothing else.
        may_not(format!("get configmaps -n {ns}")),
        may_not(format!("create configmaps -n {system}")),
        may_not(format!("create deployments.apps -n {ns}")),
        may_not(format!("update deployments.apps -n {system}")),
        may_not(format!("create jobs.batch -n {ns}")),
        may_not(format!(
            "create serviceaccounts --subresource=token -n {system}"
        )),
        may_not("get nodes"),
        may_not("list namespaces"),
        may_not("create namespaces"),
        may_not("delete customresourcedefinitions.apiextensions.k8s.io"),
        // The TFJob CRD, read by name at start; no other CRD, no list.
        may("get customresourcedefinitions.apiextensions.k8s.io/tfjobs.kubeflow.org"),
        may_not("get customresourcedefinitions.apiextensions.k8s.io/pytorchjobs.kubeflow.org"),
        may_not("list customresourcedefinitions.apiextensions.k8s.io"),
        may_not("create clusterrolebindings.rbac.authorization.k8s.io"),
        may_not("bind clusterroles.rbac.authorization.k8s.io"),
        may_not("escalate clusterroles.rbac.authorization.k8s.io"),
        may_not(format!(
            "create rolebindings.rbac.authorization.k8s.io -n {ns}"
        )),
        may_not("impersonate users"),
        may_not(format!("create podgroups.scheduling.volcano.sh -n {ns}")),
        may_not(format!("create podgroups.scheduling.x-k8s.io -n {ns}")),
        // The webhook adds its CA to its own configuration, and nothing else.
        may(
            "get validatingwebhookconfigurations.admissionregistration.k8s.io/tfjob-operator-validator",
        ),
        may(
            "patch validatingwebhookconfigurations.admissionregistration.k8s.io/tfjob-operator-validator",
        ),
        may_not("get validatingwebhookconfigurations.admissionregistration.k8s.io/other"),
        // `tfjob-operator check` (the chart's helm test) looks for foreign webhooks and a
        // running training-operator: read-only.
        may("list validatingwebhookconfigurations.admissionregistration.k8s.io"),
        may_not("watch validatingwebhookconfigurations.admissionregistration.k8s.io"),
        may("get leases.coordination.k8s.io/1ca428e5.training-operator.kubeflow.org -n kubeflow"),
        may_not(
            "update leases.coordination.k8s.io/1ca428e5.training-operator.kubeflow.org -n kubeflow",
        ),
        may_not("get leases.coordination.k8s.io/other-lease -n kubeflow"),
        may_not(
            "delete validatingwebhookconfigurations.admissionregistration.k8s.io/tfjob-operator-validator",
        ),
        may_not(
            "patch mutatingwebhookconfigurations.admissionregistration.k8s.io/tfjob-operator-defaulter",
        ),
        may_not("* *"),
    ];
    if leader_election {
        checks.extend([
            may(format!("create leases.coordination.k8s.io -n {system}")),
            may(format!(
                "get leases.coordination.k8s.io/{LEASE} -n {system}"
            )),
            may(format!(
                "update leases.coordination.k8s.io/{LEASE} -n {system}"
            )),
            may_not(format!(
                "update leases.coordination.k8s.io/other-lease -n {system}"
            )),
            may_not(format!(
                "delete leases.coordination.k8s.io/{LEASE} -n {system}"
            )),
            may_not(format!("list leases.coordination.k8s.io -n {system}")),
            may_not(format!("create leases.coordination.k8s.io -n {ns}")),
        ]);
    } else {
        checks.push(may_not(format!(
            "create leases.coordination.k8s.io -n {system}"
        )));
    }
    checks
}

/// A scratch directory for the kubeconfig and the operator's log.
fn work_dir(how: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tfjob-deploy-{how}-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// Every documented way to install with kustomize — each overlay and all 32 combinations of
/// the base with the components — is accepted by the apiserver (`kubectl apply
/// --dry-run=server -k`, client-side as Kubernetes before 1.23 needs for the CRD's CEL rule;
/// the monitoring objects against stand-ins of the Prometheus Operator's CRDs).
#[tokio::test]
async fn every_kustomize_overlay_and_component_combination_applies() {
    // The TFJob CRD and the `kubeflow` namespace must not be deleted meanwhile (the kubeflow
    // overlay's test deletes the CRD).
    let _turn = ONE_INSTALL_AT_A_TIME.lock().await;
    let monitoring_crds = repo_path("tests/fixtures/monitoring-crds.yaml");
    kubectl(&["apply", "-f", &monitoring_crds.display().to_string()])
        .await
        .expect("the monitoring CRDs");
    wait_for(secs(30), "the monitoring CRDs to be served", || async {
        kubectl(&["get", "servicemonitors,prometheusrules", "-A"])
            .await
            .map(|_| ())
    })
    .await;
    for namespace in [NAMESPACE, "kubeflow"] {
        let _ = kubectl(&["create", "namespace", namespace]).await;
    }
    let mut dirs: Vec<String> = kustomize::TREES.iter().map(|t| t.to_string()).collect();
    for components in kustomize::component_combinations() {
        kustomize::build_with_components(&components); // writes the kustomization
        let name = if components.is_empty() {
            "base-only".to_string()
        } else {
            components.join("+")
        };
        dirs.push(format!("target/kustomize-combinations/{name}"));
    }
    let mut refused = Vec::new();
    for dir in &dirs {
        let path = repo_path(dir).display().to_string();
        if let Err(e) =
            kubectl(&["apply", "--dry-run=server", "--validate=false", "-k", &path]).await
        {
            refused.push(format!("{dir}: {e}"));
        }
    }
    assert!(refused.is_empty(), "refused:\n{}", refused.join("\n"));
    eprintln!("kustomize: {} trees applied (server dry run)", dirs.len());
}
