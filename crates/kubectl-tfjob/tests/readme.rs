//! The README's commands: those of "Your first job" and "`kubectl tfjob`" run here, verbatim,
//! against the local control plane (an operator and the simulated kubelet serve `default`);
//! every other one is named with the test that runs it (or its exact equivalent), and that test
//! must exist. A new command in the README without either fails this test.

use std::path::{Path, PathBuf};
use std::process::Command;

use test_support as support;

use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};
use support::deploy::helm;
use support::operator::Operator;
use support::*;
use tfjob_core::api::TFJob;

/// Commands run elsewhere: (prefix, the test function that runs them or their equivalent).
const RUN_ELSEWHERE: &[(&str, &str)] = &[
    // The demo is its own check (CI runs hack/test.sh, which is .ci/run).
    ("hack/demo.sh", "main"),
    ("hack/test.sh", "main"),
    ("hack/image.sh", "container_image_runs_the_seed_tfjob"),
    // read_by_skopeo copies the same source to a local archive instead of a registry.
    (
        "skopeo copy oci:target/image/oci:",
        "container_image_runs_the_seed_tfjob",
    ),
    // No helm binary here: Helm 4's engine renders the chart (this test renders the README's
    // --set values too) and the install test applies it and runs the operator.
    (
        "helm install tfjob-operator deploy/helm/tfjob-operator",
        "helm_chart_runs_the_seed_tfjob_with_only_its_rbac",
    ),
    (
        "helm test tfjob-operator",
        "check_passes_on_a_good_install_and_names_each_broken_one",
    ),
    (
        "kubectl apply --server-side -k deploy/kustomize/overlays/standalone",
        "kustomize_standalone_runs_the_seed_tfjob_with_only_its_rbac",
    ),
    (
        "kubectl apply --server-side -k deploy/kustomize/overlays/kubeflow",
        "deleting_the_kubeflow_overlay_leaves_the_kubeflow_namespace",
    ),
];

/// Commands this test runs as written.
const RUN_HERE: &[&str] = &[
    "kubectl apply -n default -f examples/",
    "kubectl get tfjobs",
    "kubectl tfjob ",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every command line of the README's `sh` blocks (continuations joined, comments dropped).
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let mut commands = Vec::new();
    for (i, block) in readme.split("```").enumerate() {
        if i % 2 == 0 || !block.starts_with("sh\n") {
            continue;
        }
        let mut current = String::new();
        for line in block.lines().skip(1) {
            let line = line.split(" #").next().unwrap_or("").trim_end();
            if let Some(start) = line.strip_suffix('\\') {
                current.push_str(start.trim());
                current.push(' ');
                continue;
            }
            current.push_str(line.trim());
            if !current.is_empty() {
                commands.push(std::mem::take(&mut current));
            }
        }
    }
    commands
}

/// Whether `fn name(` is defined in some Rust file of the repository's tests.
fn test_exists(name: &str) -> bool {
    fn walk(dir: &Path, needle: &str) -> bool {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                let path = e.path();
                if path.is_dir() {
                    !path.ends_with("target") && walk(&path, needle)
                } else {
                    path.extension().is_some_and(|x| x == "rs")
                        && std::fs::read_to_string(&path).is_ok_and(|t| t.contains(needle))
                }
            })
    }
    let needle = format!("fn {name}(");
    walk(&repo().join("tests"), &needle) || walk(&repo().join("crates"), &needle)
}

fn plugin_path() -> String {
    let dir = Path::new(env!("CARGO_BIN_EXE_kubectl-tfjob"))
        .parent()
        .expect("the plugin's directory");
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Runs a README command as a user would, from the repository root.
fn run(command: &str) -> String {
    let words: Vec<&str> = command.split_whitespace().collect();
    let output = Command::new(words[0])
        .args(&words[1..])
        .current_dir(repo())
        .env("PATH", plugin_path())
        .env("KUBECONFIG", &control_plane().kubeconfig)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the README's `{command}` failed ({}):\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn every_readme_command_is_run_by_a_test() {
    let commands = readme_commands();
    assert!(commands.len() >= 10, "{commands:?}");
    for command in &commands {
        if RUN_HERE.iter().any(|p| command.starts_with(p)) {
            continue;
        }
        let (_, test) = RUN_ELSEWHERE
            .iter()
            .find(|(prefix, _)| command.starts_with(prefix))
            .unwrap_or_else(|| {
                panic!(
                    "the README's `{command}` is run by no test: run it in a test and list it \
                     in {} (RUN_HERE or RUN_ELSEWHERE)",
                    file!()
                )
            });
        if *test == "main" {
            let script = command.split_whitespace().next().expect("a script");
            assert!(repo().join(script).is_file(), "{script} exists");
        } else {
            assert!(test_exists(test), "`{command}`: no test named {test}");
        }
        // Paths the command names exist.
        for word in command.split_whitespace() {
            let path = word.split(':').next().unwrap_or(word);
            if ["deploy/", "examples/", "hack/", "crds/"]
                .iter()
                .any(|p| path.starts_with(p))
            {
                assert!(
                    repo().join(path).exists(),
                    "`{command}`: {path} does not exist"
                );
            }
        }
    }
}

/// The README's `helm install --set` values pass the chart's schema and do what it says.
#[test]
fn the_readme_helm_values_render() {
    let install = readme_commands()
        .into_iter()
        .find(|c| c.starts_with("helm install"))
        .expect("a helm install command");
    let mut values = json!({});
    for pair in install.split("--set ").skip(1) {
        let pair = pair.split_whitespace().next().expect("key=value");
        let (key, value) = pair.split_once('=').expect("key=value");
        let mut slot = &mut values;
        for part in key.split('.') {
            slot = &mut slot[part];
        }
        *slot = Value::String(value.to_string());
    }
    let objs = helm::render(&values);
    let deployment = objs
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("the Deployment");
    let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .expect("an image");
    assert_eq!(
        image,
        format!(
            "registry.example.com/ml/tfjob-operator:{}",
            env!("CARGO_PKG_VERSION")
        )
    );
}

/// "Your first job" and "`kubectl tfjob`", verbatim, in `default`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_first_job_and_plugin_commands_work_as_written() {
    let ctx = TestContext::new("readme").await;
    let _operator = Operator::start_with(&ctx, |s| s.namespaces = vec!["default".into()]).await;
    let _kubelet = sim_kubelet::SimKubelet::spawn(
        ctx.client.clone(),
        sim_kubelet::SimKubeletConfig {
            namespace: Some("default".into()),
            ..Default::default()
        },
    );
    let jobs: Api<TFJob> = Api::namespaced(ctx.client.clone(), "default");
    let commands: Vec<String> = readme_commands()
        .into_iter()
        .filter(|c| RUN_HERE.iter().any(|p| c.starts_with(p)))
        .collect();
    assert!(commands.len() >= 6, "{commands:?}");
    let mut outputs = Vec::new();
    for command in &commands {
        let out = tokio::task::spawn_blocking({
            let command = command.clone();
            move || run(&command)
        })
        .await
        .expect("the command ran");
        eprintln!("$ {command}\n{out}");
        outputs.push((command.clone(), out));
    }
    let wide = &outputs
        .iter()
        .find(|(c, _)| c.starts_with("kubectl get tfjobs"))
        .expect("kubectl get tfjobs")
        .1;
    let header: Vec<&str> = wide
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME", "STATE", "AGE", "READY", "RESTARTS", "REASON", "MESSAGE"
        ],
        "{wide}"
    );
    let logs = &outputs
        .iter()
        .find(|(c, _)| c.starts_with("kubectl tfjob logs"))
        .expect("kubectl tfjob logs")
        .1;
    assert!(logs.contains("[worker-0]"), "{logs}");
    // `wait --for=condition=Succeeded` returned: the job succeeded.
    let job = jobs.get("dist-mnist").await.expect("the job");
    assert!(
        job.status
            .iter()
            .flat_map(|s| &s.conditions)
            .any(|c| c.type_ == "Succeeded" && c.status == "True"),
        "{:?}",
        job.status
    );
    let _ = jobs.delete("dist-mnist", &DeleteParams::default()).await;
    ctx.teardown().await;
}
