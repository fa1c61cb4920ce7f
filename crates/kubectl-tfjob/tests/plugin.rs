//! `kubectl tfjob` through kubectl itself: the built `kubectl-tfjob` is put on the PATH and
//! kubectl discovers it as a plugin, on the real control plane with the operator and the
//! simulated kubelet running.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use test_support as support;

use support::operator::{Operator, await_condition, sim_kubelet, submit};
use support::*;

/// PATH with the built plugin first, so that kubectl finds `kubectl-tfjob`.
fn plugin_path() -> String {
    let plugin_dir = Path::new(env!("CARGO_BIN_EXE_kubectl-tfjob"))
        .parent()
        .expect("the plugin's directory");
    format!(
        "{}:{}",
        plugin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `kubectl tfjob ARGS…` in the test's namespace, as `kubeconfig`'s user; the output.
fn kubectl_as(ctx: &TestContext, kubeconfig: &Path, args: &[&str]) -> Output {
    std::process::Command::new("kubectl")
        .arg("tfjob")
        .args(args)
        .args(["-n", &ctx.namespace])
        .env("PATH", plugin_path())
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("kubectl runs")
}

/// `kubectl tfjob ARGS…` in the test's namespace, as admin.
fn kubectl(ctx: &TestContext, args: &[&str]) -> Output {
    kubectl_as(ctx, &control_plane().kubeconfig, args)
}

fn ok(ctx: &TestContext, args: &[&str]) -> String {
    let output = kubectl(ctx, args);
    assert!(
        output.status.success(),
        "kubectl tfjob {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

fn job(name: &str, labels: &str, annotations: &str, workers: i32) -> String {
    format!(
        "apiVersion: kubeflow.org/v1\nkind: TFJob\nmetadata: {{name: {name}, labels: {{{labels}}}}}\n\
         spec:\n  tfReplicaSpecs:\n    PS:\n      template:\n        metadata: {{annotations: {{{annotations}}}}}\n        \
         spec: {{containers: [{{name: tensorflow, image: tf}}]}}\n    Worker:\n      replicas: {workers}\n      template:\n        \
         metadata: {{annotations: {{{annotations}}}}}\n        spec: {{containers: [{{name: tensorflow, image: tf}}]}}\n"
    )
}

const FAST: &str = "sim.tfjob-operator.dev/pending-ms: '0', sim.tfjob-operator.dev/run-ms: '500'";
const FOREVER: &str =
    "sim.tfjob-operator.dev/pending-ms: '0', sim.tfjob-operator.dev/run-forever: 'true'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_tfjob_lists_describes_waits_suspends_and_deletes() {
    let ctx = TestContext::new("plugin").await;
    let _operator = Operator::start(&ctx).await;
    let _kubelet = sim_kubelet(&ctx);
    for (name, labels) in [
        ("j1", "team: a"),
        ("j2", "team: a"),
        ("j3", "team: a"),
        ("j4", "team: b"),
        ("j5", ""),
    ] {
        submit(&ctx, &job(name, labels, FAST, 1)).await;
    }
    for name in ["j1", "j2", "j3", "j4", "j5"] {
        await_condition(&ctx, name, "Succeeded", secs(60)).await;
    }

    // The table, as kubectl prints it.
    let table = ok(&ctx, &["list"]);
    let header = table.lines().next().unwrap_or_default();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "NAME", "STATE", "REPLICAS", "RESTARTS", "AGE", "DURATION", "REASON"
        ]
    );
    assert!(
        table.lines().any(|l| l.starts_with("j1 ")
            && l.contains(" Succeeded ")
            && l.contains("PS:0/1,Worker:0/1")
            && l.ends_with("TFJobSucceeded")),
        "{table}"
    );

    // labelSelector and fieldSelector.
    let team_a = lines(&ok(&ctx, &["list", "-l", "team=a", "-o", "name"]));
    assert_eq!(
        team_a,
        [
            "tfjob.kubeflow.org/j1",
            "tfjob.kubeflow.org/j2",
            "tfjob.kubeflow.org/j3"
        ]
    );
    let by_name = lines(&ok(
        &ctx,
        &["list", "--field-selector", "metadata.name=j2", "-o", "name"],
    ));
    assert_eq!(by_name, ["tfjob.kubeflow.org/j2"]);

    // limit and continue: pages of 2 hold the same items as one unpaged list.
    let all = lines(&ok(&ctx, &["list", "-o", "name"]));
    assert_eq!(all.len(), 5, "{all:?}");
    let mut paged = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut args = vec!["list", "-o", "name", "--limit", "2"];
        if let Some(t) = &token {
            args.extend(["--continue", t.as_str()]);
        }
        let output = kubectl(&ctx, &args);
        assert!(output.status.success());
        pages += 1;
        let page = lines(&String::from_utf8_lossy(&output.stdout));
        assert!(page.len() <= 2, "{page:?}");
        paged.extend(page);
        let stderr = String::from_utf8_lossy(&output.stderr);
        token = stderr
            .split("--continue ")
            .nth(1)
            .map(|t| t.trim().trim_end_matches(')').to_string());
        if token.is_none() {
            break;
        }
    }
    assert_eq!((paged, pages), (all.clone(), 3));

    // watch: a new job's transitions, ended by --timeout.
    let started = Instant::now();
    let watch = {
        let (namespace, path) = (ctx.namespace.clone(), plugin_path());
        let kubeconfig = control_plane().kubeconfig.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("kubectl")
                .args([
                    "tfjob",
                    "list",
                    "--watch",
                    "--timeout",
                    "6s",
                    "-n",
                    &namespace,
                ])
                .args(["-l", "watched=yes"])
                .env("PATH", path)
                .env("KUBECONFIG", kubeconfig)
                .output()
                .expect("kubectl runs")
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    submit(&ctx, &job("w1", "watched: 'yes'", FAST, 1)).await;
    let watched = watch.await.expect("the watch ends");
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&watched.stdout);
    let states: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("w1 "))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert!(
        watched.status.success(),
        "{}",
        String::from_utf8_lossy(&watched.stderr)
    );
    assert!(states.contains(&"Succeeded"), "{text}");
    assert!(states.first().is_some_and(|s| *s != "Succeeded"), "{text}");
    assert!(
        took < Duration::from_secs(15),
        "ended by --timeout: {took:?}"
    );

    // wait: met, and timed out.
    let met = ok(
        &ctx,
        &["wait", "j1", "--for=condition=Succeeded", "--timeout=30s"],
    );
    assert_eq!(
        met.trim(),
        "tfjob.kubeflow.org/j1 condition met (Succeeded)"
    );
    let timed_out = kubectl(
        &ctx,
        &["wait", "j1", "--for=condition=Failed", "--timeout=1s"],
    );
    assert_eq!(timed_out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&timed_out.stderr)
            .contains("timed out waiting for the condition on tfjobs/j1")
    );

    // describe a multi-replica job.
    submit(&ctx, &job("multi", "", FOREVER, 2)).await;
    await_condition(&ctx, "multi", "Running", secs(60)).await;
    let described = ok(&ctx, &["describe", "multi"]);
    for part in [
        "Name:       multi",
        "State:      Running (TFJobRunning)",
        "Conditions:",
        "Replicas:",
        "Pods:",
        "multi-ps-0",
        "multi-worker-1",
        "Events:",
    ] {
        assert!(described.contains(part), "{part:?} in\n{described}");
    }

    // logs: every replica, prefixed; one replica; the last line; followed to the end.
    let logs = lines(&ok(&ctx, &["logs", "multi"]));
    let prefixes: Vec<&str> = logs.iter().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(prefixes, ["[ps-0]", "[worker-0]", "[worker-1]"], "{logs:?}");
    assert!(logs.iter().all(|l| l.contains(" TF_CONFIG={")), "{logs:?}");
    let one = lines(&ok(
        &ctx,
        &["logs", "multi", "--replica", "Worker", "--index", "1"],
    ));
    assert_eq!(one.len(), 1, "{one:?}");
    assert!(
        one[0].starts_with("[worker-1] TF_CONFIG=")
            && one[0].contains(r#""task":{"type":"worker","index":1}"#),
        "{one:?}"
    );
    let slow = "sim.tfjob-operator.dev/pending-ms: '0', sim.tfjob-operator.dev/run-ms: '2500', \
                sim.tfjob-operator.dev/log: \"step 1\\nstep 2\"";
    submit(&ctx, &job("fol", "", slow, 1)).await;
    await_condition(&ctx, "fol", "Running", secs(60)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let followed_at = Instant::now();
    let followed = lines(&ok(&ctx, &["logs", "fol", "-f"]));
    let followed_for = followed_at.elapsed();
    let mut sorted = followed.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "[ps-0] exited with code 0",
            "[ps-0] step 1",
            "[ps-0] step 2",
            "[worker-0] exited with code 0",
            "[worker-0] step 1",
            "[worker-0] step 2",
        ],
        "{followed:?}"
    );
    let tail = lines(&ok(&ctx, &["logs", "fol", "--tail", "1"]));
    assert_eq!(
        tail,
        ["[ps-0] exited with code 0", "[worker-0] exited with code 0"]
    );

    // suspend, resume, delete --wait.
    assert_eq!(
        ok(&ctx, &["suspend", "multi"]).trim(),
        "tfjob.kubeflow.org/multi suspended"
    );
    await_condition(&ctx, "multi", "Suspended", secs(30)).await;
    assert_eq!(
        ok(&ctx, &["resume", "multi"]).trim(),
        "tfjob.kubeflow.org/multi resumed"
    );
    await_condition(&ctx, "multi", "Running", secs(60)).await;
    let deleted = ok(&ctx, &["delete", "multi", "--wait"]);
    assert!(
        deleted.contains("tfjob.kubeflow.org \"multi\" deleted"),
        "{deleted}"
    );
    assert!(!ok(&ctx, &["list", "-o", "name"]).contains("multi"));

    // Errors that say what to do next.
    let missing = kubectl(&ctx, &["describe", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains(&format!(
            "error: no TFJob \"nope\" in namespace \"{}\"; list them with: kubectl tfjob list -n {}",
            ctx.namespace, ctx.namespace
        )),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );

    // No permission: the verb and the resource, and what to ask for.
    let operator_token = control_plane()
        .operator_token()
        .expect("the operator's token");
    let limited = std::env::temp_dir().join(format!("plugin-limited-{}.kubeconfig", ctx.namespace));
    std::fs::write(
        &limited,
        control_plane().kubeconfig_with_token(&operator_token),
    )
    .unwrap();
    let forbidden = kubectl_as(&ctx, &limited, &["list"]);
    assert_eq!(forbidden.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&forbidden.stderr);
    assert!(
        stderr.contains(&format!(
            "error: you may not list tfjobs in namespace \"{}\"",
            ctx.namespace
        )) && stderr.contains("ask for a Role that allows \"list\" on tfjobs"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(&limited);

    // Completion scripts.
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&ctx, &["completion", shell]);
        assert!(
            script.contains("kubectl-tfjob") && script.contains("describe"),
            "{shell}"
        );
    }
    eprintln!("$ kubectl tfjob list\n{table}\n$ kubectl tfjob describe multi\n{described}");
    eprintln!("$ kubectl tfjob logs multi\n{}", logs.join("\n"));
    eprintln!(
        "kubectl tfjob: {pages} pages of 2 for 5 jobs; watch ended after {took:.1?}; logs -f \
         ended {followed_for:.1?} after it began, with the containers"
    );
    ctx.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_shows_the_pod_groups_phase_under_gang_scheduling() {
    use kube::CustomResourceExt;
    use kube::api::{Api, Patch, PatchParams};
    use tfjob_core::api::podgroup::{GangScheduler, volcano};

    let ctx = TestContext::new("plugin-gang").await;
    install_crd(&client().await, &volcano::PodGroup::crd()).await;
    let _operator =
        Operator::start_with(&ctx, |s| s.plan.gang = Some(GangScheduler::Volcano)).await;
    // No kubelet: Volcano has not admitted the group, so the job waits without pods.
    submit(&ctx, &job("gang", "", FOREVER, 2)).await;
    let groups: Api<volcano::PodGroup> = ctx.api();
    wait_for(secs(30), "the PodGroup", || async {
        groups
            .get_opt("gang")
            .await
            .map_err(|e| e.to_string())?
            .map(|_| ())
            .ok_or_else(|| "not yet".to_string())
    })
    .await;
    groups
        .patch_status(
            "gang",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"phase": "Inqueue"}})),
        )
        .await
        .expect("the PodGroup's status");
    let described = ok(&ctx, &["describe", "gang"]);
    assert!(
        described.contains("PodGroup:   phase Inqueue (scheduling.volcano.sh/v1beta1)"),
        "{described}"
    );
    ctx.teardown().await;
}
