//! An upstream training-operator v1.9 Deployment with only the image changed: `/manager` run
//! with no subcommand, upstream's environment (`MY_POD_NAMESPACE`, `MY_POD_NAME`) and the flags
//! such Deployments commonly carry, in upstream's spellings. It starts, warns once about the
//! flags that mean nothing here, and runs the seed's TFJob to Succeeded.

use super::*;

use support::binary::{OperatorBinary, message};
use support::control_plane;
use support::operator::{await_condition, sim_kubelet, submit};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_deployment_arguments_run_the_seed_to_success() {
    let _turn = turn().await;
    let ctx = TestContext::new("upstream-args").await;
    install_project_crd().await;
    let kubeconfig = control_plane().kubeconfig.display().to_string();
    let webhook_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // upstream v1.9's Deployment runs `/manager` without arguments; these are the flags its
    // users add (listen addresses on free ports here, so that tests never collide).
    let command_line: Vec<String> = [
        "--metrics-bind-address=127.0.0.1:0",
        "--health-probe-bind-address=127.0.0.1:0",
        "--enable-scheme=TFJob",
        "--leader-elect",
        "--leader-election-id=1ca428e5.training-operator.kubeflow.org",
        "--controller-threads=4",
        "--kube-api-qps=20",
        "--kube-api-burst=30",
        &format!("--namespace={}", ctx.namespace),
        &format!("--webhook-server-port={webhook_port}"),
        "--webhook-service-name=training-operator",
        "--webhook-secret-name=training-operator-webhook-cert",
        "--pytorch-init-container-image=alpine:3.10",
        "--pytorch-init-container-template-file=/etc/config/initContainer.yaml",
        "--pytorch-init-container-max-tries=100",
        "--mpi-kubectl-delivery-image=mpioperator/kubectl-delivery:latest",
        // Go's flag package also takes one dash.
        "-zap-log-level=info",
        "--zap-encoder=json",
        "--zap-devel=false",
        "--zap-stacktrace-level=error",
        "--zap-time-encoding=iso8601",
        &format!("--kubeconfig={kubeconfig}"),
    ]
    .map(String::from)
    .to_vec();
    let env = [
        ("MY_POD_NAMESPACE", ctx.namespace.as_str()),
        ("MY_POD_NAME", "training-operator-7f9c6d5b8-x2x7k"),
    ];
    let mut operator = OperatorBinary::spawn_command_line(
        "upstream-args",
        std::path::Path::new("/nonexistent-kubeconfig"),
        &command_line,
        &env,
    )
    .wait_serving()
    .await;

    // JSON logs (--zap-encoder=json), one warning naming what is ignored.
    let warnings: Vec<String> = operator
        .log_lines()
        .iter()
        .filter(|l| message(l).starts_with("training-operator flags that mean nothing here"))
        .map(|l| l.to_string())
        .collect();
    assert_eq!(warnings.len(), 1, "{}", operator.log_tail(20));
    for ignored in [
        "--webhook-secret-name",
        "--pytorch-init-container-image",
        "--mpi-kubectl-delivery-image",
        "--zap-devel",
    ] {
        assert!(
            warnings[0].contains(ignored),
            "{ignored} in {}",
            warnings[0]
        );
    }

    // It leads with upstream's Lease name, in MY_POD_NAMESPACE, and runs the seed.
    wait_for(secs(30), "the operator to lead", || async {
        match operator.try_scrape().await {
            Some(s) if s.sum("tfjob_operator_is_leader", &[]) == 1.0 => Ok(()),
            _ => Err("not leading yet".to_string()),
        }
    })
    .await;
    let kubelet = sim_kubelet(&ctx);
    let seed =
        std::fs::read_to_string(support::repo_path("examples/tfjob-seed.yaml")).expect("the seed");
    submit(&ctx, &seed).await;
    await_condition(&ctx, "tfjob-test", "Succeeded", secs(60)).await;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = ctx.api();
    let lease = leases
        .get("1ca428e5.training-operator.kubeflow.org")
        .await
        .expect("the Lease in MY_POD_NAMESPACE");
    let holder = lease
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default();
    assert!(
        holder.starts_with("training-operator-7f9c6d5b8-x2x7k_"),
        "MY_POD_NAME is the identity: {holder}"
    );
    assert!(operator.terminate(secs(20)).await.success());
    let _ = kubelet.shutdown().await;
    ctx.teardown().await;
}
