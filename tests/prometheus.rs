//! A real Prometheus (Debian's, unpacked by hack/prometheus.sh) scrapes the operator binary
//! through a scripted job lifecycle, with the chart's alert rules loaded. Then every query of
//! the chart's Grafana dashboard is run against it (no error, and data in every panel: each one
//! has something to show after a lifecycle), and every alert rule has been evaluated by
//! Prometheus without an error.

use test_support as support;
use test_support::deploy;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use kube::api::Api;
use serde_json::{Value, json};
use tfjob_core::api::TFJob;

use deploy::process::{free_address, http_get};
use deploy::{NAMESPACE, helm, objects, prometheus, repo_path};
use support::binary::OperatorBinary;
use support::operator::{has, sim_kubelet, submit};
use support::{TestContext, control_plane, secs, unique_suffix, wait_for};

/// The labels a ServiceMonitor attaches to the operator's series (the alerts select on them).
const SERVICE: &str = "tfjob-operator-metrics";

struct Prometheus {
    /// Killed when dropped.
    _child: tokio::process::Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second, with `rules` loaded.
    async fn start(target: SocketAddr, rules: &Value) -> Prometheus {
        let dir = std::env::temp_dir().join(format!("tfjob-prometheus-{}", unique_suffix()));
        std::fs::create_dir_all(dir.join("data")).expect("a Prometheus directory");
        std::fs::write(dir.join("rules.yaml"), rules.to_string()).expect("rules");
        let config = json!({
            "global": { "scrape_interval": "1s", "evaluation_interval": "1s" },
            "rule_files": ["rules.yaml"],
            "scrape_configs": [{
                "job_name": SERVICE,
                "static_configs": [{
                    "targets": [target.to_string()],
                    "labels": { "namespace": NAMESPACE, "service": SERVICE },
                }],
            }],
        });
        std::fs::write(dir.join("prometheus.yml"), config.to_string()).expect("config");
        let addr = free_address();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("a log file");
        let child = tokio::process::Command::new(prometheus::binary("prometheus"))
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .current_dir(&dir)
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("prometheus starts");
        let prometheus = Prometheus {
            _child: child,
            addr,
            dir,
        };
        wait_for(secs(30), "Prometheus to be ready", || async {
            match http_get(prometheus.addr, "/-/ready").await {
                Ok((200, _)) => Ok(()),
                other => Err(format!("{other:?}\n{}", prometheus.log())),
            }
        })
        .await;
        prometheus
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/<path>`, its `data` (panics on an error answer).
    async fn api(&self, path: &str) -> Value {
        let (code, body) = http_get(self.addr, &format!("/api/v1/{path}"))
            .await
            .unwrap_or_else(|e| panic!("GET /api/v1/{path}: {e}"));
        let answer: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET /api/v1/{path} ({code}) is not JSON: {e}: {body}"));
        assert_eq!(
            answer["status"], "success",
            "GET /api/v1/{path} ({code}): {answer}"
        );
        answer["data"].clone()
    }

    /// An instant query's result vector.
    async fn query(&self, expr: &str) -> Vec<Value> {
        let data = self.api(&format!("query?query={}", encode(expr))).await;
        data["result"].as_array().cloned().unwrap_or_default()
    }
}

/// Percent-encoding of a query parameter.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The chart's rules (annotations included), as a Prometheus rule file.
fn chart_rules() -> Value {
    let objs = helm::render_for(
        &json!({ "prometheusRule": { "enabled": true } }),
        &helm::PROMETHEUS_OPERATOR,
    );
    objects::one(&objs, "PrometheusRule")["spec"].clone()
}

/// Every target expression of the chart's dashboard, with Grafana's variables filled in as the
/// dashboard would for this operator and the test's namespace.
fn dashboard_queries(job_namespace: &str) -> Vec<(String, String)> {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path("deploy/helm/tfjob-operator/files/dashboard.json"))
            .expect("the dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().unwrap_or("?").to_string();
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .expect("a target's expr")
                .replace("$namespace", NAMESPACE)
                .replace("$job_namespace", job_namespace)
                .replace("$__rate_interval", "1m");
            queries.push((title.clone(), expr));
        }
    }
    queries
}

fn job_yaml(name: &str, annotations: &str, restart: &str) -> String {
    format!(
        "apiVersion: kubeflow.org/v1\nkind: TFJob\nmetadata:\n  name: {name}\nspec:\n  \
         tfReplicaSpecs:\n    Worker:\n      replicas: 1\n      restartPolicy: {restart}\n      \
         template:\n        metadata:\n          annotations: {annotations}\n        spec:\n          \
         containers: [{{name: tensorflow, image: tf}}]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_panels_and_alerts_work_on_a_real_prometheus() {
    let ctx = TestContext::new("prometheus").await;
    let ns = ctx.namespace.clone();
    let operator = OperatorBinary::start(
        "prometheus",
        &control_plane().kubeconfig,
        &[format!("--namespace={ns}")],
    )
    .await;
    let metrics = operator.metrics.expect("the metrics address");
    let prometheus = Prometheus::start(metrics, &chart_rules()).await;
    // Prometheus's discovery hands targets over at most every 5 s: the first scrape comes a
    // few seconds after start. The lifecycle starts once it has.
    wait_for(
        secs(30),
        "Prometheus's first scrape of the operator",
        || async {
            let up = prometheus
                .query(&format!("up{{service=\"{SERVICE}\"}} == 1"))
                .await;
            if up.is_empty() {
                Err("not scraped yet".to_string())
            } else {
                Ok(())
            }
        },
    )
    .await;
    let _kubelet = sim_kubelet(&ctx);

    // The lifecycle: one job succeeds, one fails, one runs on, one waits for its pods.
    let seed = std::fs::read_to_string(repo_path("examples/tfjob-seed.yaml")).expect("the seed");
    submit(&ctx, &seed).await;
    submit(
        &ctx,
        &job_yaml(
            "fails",
            r#"{"sim.tfjob-operator.dev/exit-code": "1", "sim.tfjob-operator.dev/run-ms": "300"}"#,
            "Never",
        ),
    )
    .await;
    submit(
        &ctx,
        &job_yaml(
            "runs",
            r#"{"sim.tfjob-operator.dev/run-forever": "true"}"#,
            "Never",
        ),
    )
    .await;
    submit(
        &ctx,
        &job_yaml(
            "waits",
            r#"{"sim.tfjob-operator.dev/pending-ms": "600000"}"#,
            "Never",
        ),
    )
    .await;
    let jobs: Api<TFJob> = ctx.api();
    for (name, condition) in [
        ("tfjob-test", "Succeeded"),
        ("fails", "Failed"),
        ("runs", "Running"),
    ] {
        wait_for(secs(60), &format!("{name} to be {condition}"), || async {
            let job = jobs.get(name).await.map_err(|e| e.to_string())?;
            if has(&job, condition) {
                Ok(())
            } else {
                Err(format!("{:?}", job.status))
            }
        })
        .await;
    }
    // Scrapes after the last transition (a rate needs two in its window).
    tokio::time::sleep(Duration::from_secs(5)).await;

    // Every dashboard query answers, with data (every panel has something to show by now).
    let queries = dashboard_queries(&ns);
    assert!(queries.len() >= 20, "{queries:?}");
    let mut empty = Vec::new();
    for (panel, expr) in &queries {
        if prometheus.query(expr).await.is_empty() {
            empty.push(format!("{panel}: {expr}"));
        }
    }
    assert!(
        empty.is_empty(),
        "dashboard queries without data after the lifecycle:\n  {}",
        empty.join("\n  ")
    );
    // Spot checks of what the panels show.
    let value = |result: Vec<Value>| -> f64 {
        result[0]["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let waiting = prometheus
        .query(&format!(
            "max(tfjob_operator_oldest_waiting_job_seconds{{namespace=\"{NAMESPACE}\",job_namespace=\"{ns}\"}})"
        ))
        .await;
    assert!(
        value(waiting) > 3.0,
        "the waiting job's age is on the dashboard"
    );
    let failed = prometheus
        .query(&format!(
            "sum(training_operator_jobs_failed_total{{job_namespace=\"{ns}\"}})"
        ))
        .await;
    assert_eq!(value(failed), 1.0, "one failed job");

    // Every alert rule was evaluated by Prometheus, without an error.
    let rules = prometheus.api("rules").await;
    let evaluated: Vec<(String, String, String)> = rules["groups"]
        .as_array()
        .expect("rule groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            (
                r["name"].as_str().unwrap_or("?").to_string(),
                r["health"].as_str().unwrap_or("?").to_string(),
                r["lastError"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(evaluated.len(), 7, "{evaluated:?}");
    for (name, health, error) in &evaluated {
        assert_eq!(health, "ok", "alert {name}: {error}");
    }
    // The operator is up and leads: those two alerts are quiet; the rest have too little
    // history to fire.
    let alerts = prometheus.api("alerts").await;
    assert_eq!(alerts["alerts"], json!([]), "no alert fires");
    eprintln!(
        "prometheus: {} dashboard queries with data, {} alert rules evaluated",
        queries.len(),
        evaluated.len()
    );
    drop(prometheus);
    drop(operator);
    ctx.teardown().await;
}
