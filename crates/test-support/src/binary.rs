//! The real `tfjob-operator` binary as a child process (as users run it), its stderr in a file,
//! its endpoints on free loopback ports; plus plain HTTP helpers and its `/metrics` as a
//! [`Scrape`].
//!
//! It takes any kubeconfig (the fault proxy's, for instance) and can tell whether the process
//! panicked.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use crate::prom_text::Scrape;

use super::control_plane::unique_suffix;
use super::wait::secs;

/// A running `tfjob-operator run …`.
pub struct OperatorBinary {
    pub name: String,
    child: tokio::process::Child,
    pub log: PathBuf,
    /// `None` until it logged where it serves (killed early, it may never have).
    pub metrics: Option<SocketAddr>,
    pub probes: Option<SocketAddr>,
    pub started: Instant,
}

impl OperatorBinary {
    /// Spawns `tfjob-operator run ARGS` with `KUBECONFIG=kubeconfig`, JSON logs and both
    /// endpoints on free ports, in an otherwise empty environment. Does not wait for anything.
    pub fn spawn(name: &str, kubeconfig: &Path, args: &[String]) -> OperatorBinary {
        OperatorBinary::spawn_with_env(name, kubeconfig, args, &[])
    }

    /// Like [`OperatorBinary::spawn`], with `env` added to the environment (`POD_NAME`, say).
    pub fn spawn_with_env(
        name: &str,
        kubeconfig: &Path,
        args: &[String],
        env: &[(&str, &str)],
    ) -> OperatorBinary {
        let binary = crate::workspace_binary("tfjob-operator");
        OperatorBinary::spawn_binary(&binary, name, kubeconfig, args, env)
    }

    /// Spawns `tfjob-operator run ARGS` like [`OperatorBinary::spawn`], from `binary`.
    fn spawn_binary(
        binary: &Path,
        name: &str,
        kubeconfig: &Path,
        args: &[String],
        env: &[(&str, &str)],
    ) -> OperatorBinary {
        let mut command_line: Vec<String> = [
            "run",
            "--metrics-bind-address=127.0.0.1:0",
            "--health-probe-bind-address=127.0.0.1:0",
            "--log-format=json",
        ]
        .map(String::from)
        .to_vec();
        command_line.extend_from_slice(args);
        OperatorBinary::spawn_command_line_of(binary, name, kubeconfig, &command_line, env)
    }

    /// Spawns the binary with exactly `command_line` (no subcommand or flag added: how an
    /// upstream Deployment runs `/manager`), `KUBECONFIG=kubeconfig` and `env`.
    pub fn spawn_command_line(
        name: &str,
        kubeconfig: &Path,
        command_line: &[String],
        env: &[(&str, &str)],
    ) -> OperatorBinary {
        let binary = crate::workspace_binary("tfjob-operator");
        OperatorBinary::spawn_command_line_of(&binary, name, kubeconfig, command_line, env)
    }

    fn spawn_command_line_of(
        binary: &Path,
        name: &str,
        kubeconfig: &Path,
        command_line: &[String],
        env: &[(&str, &str)],
    ) -> OperatorBinary {
        let log =
            std::env::temp_dir().join(format!("tfjob-operator-{name}-{}.log", unique_suffix()));
        let stderr = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let mut command = tokio::process::Command::new(binary);
        command
            .args(command_line)
            .env_clear()
            .env("KUBECONFIG", kubeconfig)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tfjob-operator: {e}"));
        OperatorBinary {
            name: name.to_string(),
            child,
            log,
            metrics: None,
            probes: None,
            started: Instant::now(),
        }
    }

    /// Waits until the process serves its endpoints (panics with its log if it exits first).
    pub async fn wait_serving(mut self) -> OperatorBinary {
        let deadline = Instant::now() + secs(60);
        while !self.endpoints_known() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}):\n{}", self.name, self.log_tail(30));
            }
            assert!(
                Instant::now() < deadline,
                "{} did not serve its endpoints within 60 s:\n{}",
                self.name,
                self.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self
    }

    /// Waits for the process to exit by itself (at most `within`): its status.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => status.expect("wait for the operator"),
            Err(_) => panic!(
                "{} still runs after {within:?}:\n{}",
                self.name,
                self.log_tail(30)
            ),
        }
    }

    /// Spawns the release build (what users run: memory and speed figures come from it) and
    /// waits until it serves its endpoints.
    pub async fn start_release(name: &str, kubeconfig: &Path, args: &[String]) -> OperatorBinary {
        let binary = crate::release_binary("tfjob-operator");
        OperatorBinary::spawn_binary(&binary, name, kubeconfig, args, &[])
            .wait_serving()
            .await
    }

    /// The process's peak resident memory so far (VmHWM), in KiB; `None` once it has exited.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Spawns it and waits until it serves its endpoints.
    pub async fn start(name: &str, kubeconfig: &Path, args: &[String]) -> OperatorBinary {
        OperatorBinary::start_with_env(name, kubeconfig, args, &[]).await
    }

    /// Like [`OperatorBinary::start`], with `env` added to the environment.
    pub async fn start_with_env(
        name: &str,
        kubeconfig: &Path,
        args: &[String],
        env: &[(&str, &str)],
    ) -> OperatorBinary {
        OperatorBinary::spawn_with_env(name, kubeconfig, args, env)
            .wait_serving()
            .await
    }

    /// Reads the endpoints from the log once logged; whether they are known.
    pub fn endpoints_known(&mut self) -> bool {
        if self.metrics.is_none() {
            let line = self
                .log_lines()
                .into_iter()
                .find(|l| message(l) == "serving metrics and health probes");
            if let Some(line) = line {
                self.metrics = Some(socket_field(&line, "metrics"));
                self.probes = Some(socket_field(&line, "probes"));
            }
        }
        self.metrics.is_some()
    }

    /// Every stderr line so far, parsed as JSON where it is JSON (`Value::String` otherwise).
    pub fn log_lines(&self) -> Vec<Value> {
        self.log_text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| Value::String(l.to_string())))
            .collect()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Lines that show a panic (Rust's panic message goes to stderr, not through tracing).
    pub fn panics(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains("panicked"))
            .map(str::to_string)
            .collect()
    }

    /// `/metrics`, parsed; `None` if it is not serving (yet, or any more).
    pub async fn try_scrape(&self) -> Option<Scrape> {
        let (status, body) = http(self.metrics?, "GET", "/metrics", "").await.ok()?;
        (status == 200).then(|| {
            Scrape::parse(&body)
                .unwrap_or_else(|e| panic!("{}: /metrics is not Prometheus text: {e}", self.name))
        })
    }

    pub async fn scrape(&self) -> Scrape {
        self.try_scrape()
            .await
            .unwrap_or_else(|| panic!("{}: /metrics did not answer", self.name))
    }

    /// `(status, body)` of `/readyz`, or the connection error.
    pub async fn readyz(&self) -> Result<(u16, String), String> {
        let probes = self.probes.ok_or("probes not served yet")?;
        http(probes, "GET", "/readyz", "")
            .await
            .map_err(|e| e.to_string())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Still running (not exited)?
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGKILL and reaps the process.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Sends SIGTERM and waits for the exit, at most `within`.
    pub async fn terminate(&mut self, within: Duration) -> ExitStatus {
        if let Some(pid) = self.pid() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => status.expect("wait for the operator"),
            Err(_) => panic!(
                "{} did not exit within {within:?} of SIGTERM:\n{}",
                self.name,
                self.log_tail(30)
            ),
        }
    }
}

impl Drop for OperatorBinary {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- {} (log {}), last lines ----\n{}\n----",
                self.name,
                self.log.display(),
                self.log_tail(40)
            );
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
        // kill_on_drop sends SIGKILL to a process still running.
    }
}

/// The `message` of a JSON log line.
pub fn message(line: &Value) -> &str {
    line.get("message").and_then(Value::as_str).unwrap_or("")
}

/// A `Some(ADDR)` field of a JSON log line (an `Option<SocketAddr>` logged with `?`).
fn socket_field(line: &Value, field: &str) -> SocketAddr {
    let text = line.get(field).and_then(Value::as_str).unwrap_or_default();
    text.trim_start_matches("Some(")
        .trim_end_matches(')')
        .parse()
        .unwrap_or_else(|e| panic!("{field} is not a socket address in {line}: {e}"))
}

/// One HTTP/1.1 request with `Connection: close`; returns status and body (de-chunked).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let (status, _, body) = http_raw(addr, method, path, &[], body.as_bytes()).await?;
    Ok((status, body))
}

/// Like [`http`] with extra header lines; returns status, the head and the body.
pub async fn http_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &[u8],
) -> std::io::Result<(u16, String, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
            body.len()
        );
        for header in headers {
            head.push_str(header);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        // A server may answer (413) and close before reading a large body.
        let _ = stream.write_all(body).await;
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&raw).into_owned())
    };
    let raw = tokio::time::timeout(secs(10), exchange)
        .await
        .map_err(|_| std::io::Error::other(format!("{method} {addr}{path} timed out")))??;
    let bad = || std::io::Error::other(format!("malformed reply from {addr}{path}: {raw:?}"));
    let (head, body) = raw.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body).ok_or_else(bad)?
    } else {
        body.to_string()
    };
    Ok((status, head.to_string(), body))
}

fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size + 2..)?;
    }
}
