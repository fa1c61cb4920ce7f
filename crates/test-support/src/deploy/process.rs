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

use super::image::OciImage;
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

/// Free loopback ports for the process's listeners.
struct Ports {
    metrics: SocketAddr,
    probes: SocketAddr,
    webhook: SocketAddr,
}

impl Ports {
    fn pick(webhook: Option<SocketAddr>) -> Ports {
        Ports {
            metrics: free_address(),
            probes: free_address(),
            webhook: webhook.unwrap_or_else(free_address),
        }
    }

    /// The container's args with the listen addresses moved to these ports (and, with the
    /// webhook on, its certificate naming 127.0.0.1, where the apiserver reaches it).
    fn container_args(&self, deployment: &Value) -> Vec<String> {
        let mut replaced = 0;
        let mut args: Vec<String> = objects::args(deployment)
            .into_iter()
            .map(|arg| {
                if arg.starts_with("--metrics-bind-address=") {
                    replaced += 1;
                    format!("--metrics-bind-address={}", self.metrics)
                } else if arg.starts_with("--health-probe-bind-address=") {
                    replaced += 1;
                    format!("--health-probe-bind-address={}", self.probes)
                } else if arg.starts_with("--webhook-server-port=") {
                    format!("--webhook-server-port={}", self.webhook.port())
                } else {
                    arg
                }
            })
            .collect();
        assert_eq!(
            replaced, 2,
            "the Deployment sets both listen addresses: {args:?}"
        );
        if args.iter().any(|a| a == "--webhook-enabled=true") {
            args.push("--webhook-cert-extra-sans=127.0.0.1".into());
        }
        args
    }
}

/// What the kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount: the operator
/// ServiceAccount's token, the cluster CA and the namespace, readable by the image's user.
fn mount_service_account(root: &Path, namespace: &str) {
    let cp = crate::control_plane();
    let dir = root.join("var/run/secrets/kubernetes.io/serviceaccount");
    std::fs::create_dir_all(&dir).expect("the service account mount");
    let token = cp
        .operator_token()
        .expect("the control plane has a token for the operator's ServiceAccount");
    let ca = std::fs::read(cp.dir.join("pki/ca.crt")).expect("the cluster CA");
    std::fs::write(dir.join("token"), token).expect("write the token");
    std::fs::write(dir.join("ca.crt"), ca).expect("write the CA");
    std::fs::write(dir.join("namespace"), namespace).expect("write the namespace");
    // 0755 directories, 0644 files: the image's user (65532) must read them.
    let mut path = dir.clone();
    while path.starts_with(root) && path != root {
        set_mode(&path, 0o755);
        path.pop();
    }
    for file in ["token", "ca.crt", "namespace"] {
        set_mode(&dir.join(file), 0o644);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// The apiserver's host and port, from the admin kubeconfig's `server:`.
fn apiserver_address() -> (String, String) {
    let kubeconfig =
        std::fs::read_to_string(&crate::control_plane().kubeconfig).expect("the admin kubeconfig");
    let server = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server:"))
        .map(|s| s.trim().trim_start_matches("https://").to_string())
        .expect("server: in the kubeconfig");
    let (host, port) = server.rsplit_once(':').expect("host:port");
    (host.to_string(), port.to_string())
}

/// `name`'s path on the test's PATH (the child's environment is cleared, PATH included, so
/// the command must be named by its path).
fn program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed (it runs the operator from the image)"))
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
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
        let ports = Ports::pick(webhook);
        let args = ports.container_args(deployment);
        let pod_name = format!("tfjob-operator-{}", crate::unique_suffix());
        let mut command = Command::new(crate::workspace_binary("tfjob-operator"));
        command
            .args(&args)
            // Only what the pod would have: nothing from the test's own environment leaks in.
            .env_clear()
            .envs(env_of(deployment, &pod_name))
            .env("KUBECONFIG", kubeconfig);
        OperatorProcess::spawn(command, ports, &args, dir, pod_name)
    }

    /// Starts `deployment`'s container from the container image unpacked at `root`, the way a
    /// kubelet would: the image's entrypoint (or the container's `command`) with the
    /// container's args, the image's env plus the container's, as the image's user, with the
    /// ServiceAccount's token and the cluster CA where the kubelet mounts them and
    /// `KUBERNETES_SERVICE_HOST/PORT` set, so the operator finds its cluster in-cluster style.
    /// Run with `chroot --userspec` (as root), else in an unprivileged user namespace.
    pub fn start_in_image(
        deployment: &Value,
        image: &OciImage,
        root: &Path,
        dir: &Path,
        webhook: Option<SocketAddr>,
    ) -> OperatorProcess {
        let ports = Ports::pick(webhook);
        let args = ports.container_args(deployment);
        let pod_name = format!("tfjob-operator-{}", crate::unique_suffix());
        mount_service_account(root, objects::namespace(deployment));
        let (host, port) = apiserver_address();

        let entrypoint: Vec<String> = match container(deployment)["command"].as_array() {
            Some(command) => command
                .iter()
                .filter_map(|c| c.as_str().map(String::from))
                .collect(),
            None => strings(image.runtime("Entrypoint")),
        };
        assert!(!entrypoint.is_empty(), "the image has an entrypoint");
        let user = image.runtime("User").as_str().unwrap_or("0:0").to_string();
        let mut command = if running_as_root() {
            let mut chroot = Command::new(program("chroot"));
            chroot.arg(format!("--userspec={user}"));
            chroot
        } else {
            let mut unshare = Command::new(program("unshare"));
            unshare.args(["--user", "--map-root-user", "chroot"]);
            unshare
        };
        command.arg(root).args(&entrypoint).args(&args).env_clear();
        for pair in strings(image.runtime("Env")) {
            if let Some((name, value)) = pair.split_once('=') {
                command.env(name, value);
            }
        }
        command
            .envs(env_of(deployment, &pod_name))
            .env("KUBERNETES_SERVICE_HOST", host)
            .env("KUBERNETES_SERVICE_PORT", port);
        OperatorProcess::spawn(command, ports, &args, dir, pod_name)
    }

    fn spawn(
        mut command: Command,
        ports: Ports,
        args: &[String],
        dir: &Path,
        pod_name: String,
    ) -> OperatorProcess {
        let webhook = args
            .iter()
            .any(|a| a == "--webhook-enabled=true")
            .then_some(ports.webhook);
        let log = dir.join("operator.log");
        let file = std::fs::File::create(&log).expect("the operator's log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file handle"))
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("the operator starts");
        OperatorProcess {
            child,
            log,
            metrics: ports.metrics,
            probes: ports.probes,
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
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .replace(' ', "")
            .starts_with("transfer-encoding:chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Ok((code, body))
}

/// The payload of a `Transfer-Encoding: chunked` body (what servers send for large answers).
fn dechunk(mut body: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body
            .split_once("\r\n")
            .ok_or_else(|| format!("a chunk size line: {body:.80}"))?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("chunk size {size:?}: {e}"))?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest
            .get(..size)
            .ok_or_else(|| format!("a chunk of {size} bytes, {} left", rest.len()))?;
        out.push_str(chunk);
        body = rest[size..].strip_prefix("\r\n").unwrap_or(&rest[size..]);
    }
}
