//! The operator binary (`target/<profile>/tfjob-operator`) run out of cluster the way a rendered
//! Deployment runs it: the container's args and env (downward-API fields filled in as the
//! kubelet would), with a kubeconfig for the chart's ServiceAccount. Only the listen addresses
//! change, to free loopback ports, so that tests never collide on :8080/:8081/:9443; with the
//! webhook on, its certificate also names 127.0.0.1, where the apiserver reaches it (see
//! [`super::cluster::route_webhooks_to`]).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use super::objects::{self, container};
use crate::{secs, wait_for};

pub struct OperatorProcess {
    child: Child,
    log: PathBuf,
    /// Where `/metrics` is served.
    pub metrics: SocketAddr,
    /// Where `/healthz` and `/readyz` are served.
    pub probes: SocketAddr,
    /// Where the admission webhook listens (HTTPS), when the Deployment enables it.
    pub webhook: Option<SocketAddr>,
    /// `POD_NAME` as the downward API would set it: the leader identity.
    pub pod_name: String,
}

/// A free loopback port (bound, read, released: a tiny race other tests on the machine would
/// have to win).
pub fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// The container's env with `fieldRef`s resolved for a pod named `pod_name`.
fn env_of(deployment: &Value, pod_name: &str) -> Vec<(String, String)> {
    let namespace = objects::namespace(deployment);
    let env = container(deployment)["env"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    env.iter()
        .map(|var| {
            let name = var["name"].as_str().expect("env var name").to_string();
            let value = match (
                &var["value"],
                var["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
            ) {
                (Value::String(v), _) => v.clone(),
                (_, Some("metadata.name")) => pod_name.to_string(),
                (_, Some("metadata.namespace")) => namespace.to_string(),
                _ => panic!("env var {name} has a source the test cannot provide: {var}"),
            };
            (name, value)
        })
        .collect()
}

impl OperatorProcess {
    /// Starts the binary as `deployment`'s container, logging to `dir/operator.log`.
    /// `webhook` is where it should serve the admission webhook when the Deployment enables
    /// it (a free port otherwise).
    pub fn start(
        deployment: &Value,
        kubeconfig: &Path,
        dir: &Path,
        webhook: Option<SocketAddr>,
    ) -> OperatorProcess {
        let (metrics, probes) = (free_address(), free_address());
        let webhook_addr = webhook.unwrap_or_else(free_address);
        let mut replaced = 0;
        let mut args: Vec<String> = objects::args(deployment)
            .into_iter()
            .map(|arg| {
                if arg.starts_with("--metrics-bind-address=") {
                    replaced += 1;
                    format!("--metrics-bind-address={metrics}")
                } else if arg.starts_with("--health-probe-bind-address=") {
                    replaced += 1;
                    format!("--health-probe-bind-address={probes}")
                } else if arg.starts_with("--webhook-server-port=") {
                    format!("--webhook-server-port={}", webhook_addr.port())
                } else {
                    arg
                }
            })
            .collect();
        assert_eq!(
            replaced, 2,
            "the Deployment sets both listen addresses: {args:?}"
        );
        let webhook = args
            .iter()
            .any(|a| a == "--webhook-enabled=true")
            .then_some(webhook_addr);
        if webhook.is_some() {
            args.push("--webhook-cert-extra-sans=127.0.0.1".into());
        }
        let pod_name = format!("tfjob-operator-{}", crate::unique_suffix());
        let log = dir.join("operator.log");
        let file = std::fs::File::create(&log).expect("the operator's log file");
        let child = Command::new(crate::workspace_binary("tfjob-operator"))
            .args(&args)
            // Only what the pod would have: nothing from the test's own environment leaks in.
            .env_clear()
            .envs(env_of(deployment, &pod_name))
            .env("KUBECONFIG", kubeconfig)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file handle"))
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("the operator binary starts");
        OperatorProcess {
            child,
            log,
            metrics,
            probes,
            webhook,
            pod_name,
        }
    }

    /// What the operator logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `GET /readyz` answers 200, as the readiness probe would.
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let probes = self.probes;
        let log = self.log.clone();
        let child = &mut self.child;
        wait_for(timeout, "the operator's /readyz to answer 200", || {
            let exited = child.try_wait().ok().flatten();
            let log = log.clone();
            async move {
                if let Some(status) = exited {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    return Ok(Err(format!("the operator exited ({status}):\n{text}")));
                }
                match http_get(probes, "/readyz").await {
                    Ok((200, _)) => Ok(Ok(())),
                    Ok((code, body)) => Err(format!("{code} {body}")),
                    Err(e) => Err(e),
                }
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// `GET path` on the metrics or probe address.
    pub async fn get(&self, addr: SocketAddr, path: &str) -> (u16, String) {
        http_get(addr, path)
            .await
            .unwrap_or_else(|e| panic!("GET {path} on {addr} failed: {e}\n{}", self.log()))
    }

    /// SIGTERM, as the kubelet stops a container; waits for the exit.
    pub async fn stop(mut self) -> ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        match tokio::time::timeout(secs(20), self.child.wait()).await {
            Ok(status) => status.expect("waiting for the operator"),
            Err(_) => panic!(
                "the operator did not stop within 20 s of SIGTERM:\n{}",
                self.log()
            ),
        }
    }
}

/// A minimal HTTP/1.1 GET: (status code, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    let response = String::from_utf8_lossy(&response);
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {response}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}
