//! The operator and the simulated kubelet as separate processes (release binaries), so their
//! memory and CPU are their own, measured with [`crate::procs`]; metrics over HTTP.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::cluster::ControlPlane;
use crate::procs::{free_port, http_get, terminate};

/// A running `tfjob-operator`.
pub struct OperatorProcess {
    child: Child,
    pub metrics: SocketAddr,
    probes: SocketAddr,
    /// When it reported ready (caches synced): reads after this are "after the initial sync".
    pub ready_at: f64,
}

impl OperatorProcess {
    /// Starts the operator for `namespace` with `extra` flags and waits until it is ready.
    pub fn start(
        binary: &Path,
        cp: &ControlPlane,
        namespace: &str,
        extra: &[String],
        log: &Path,
    ) -> anyhow::Result<OperatorProcess> {
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let probes: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let log_file = std::fs::File::create(log)?;
        let child = Command::new(binary)
            .env("KUBECONFIG", cp.kubeconfig())
            .env_remove("RUST_LOG")
            .arg(format!("--namespace={namespace}"))
            .arg(format!("--metrics-bind-address={metrics}"))
            .arg(format!("--health-probe-bind-address={probes}"))
            .arg("--log-level=warn")
            .args(extra)
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut operator = OperatorProcess {
            child,
            metrics,
            probes,
            ready_at: 0.0,
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(status)) = operator.child.try_wait() {
                bail!("the operator exited ({status}); see {}", log.display());
            }
            if http_get(operator.probes, "/readyz").is_some() {
                operator.ready_at = crate::now();
                return Ok(operator);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "the operator did not become ready within 60 s; see {}",
            log.display()
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its Prometheus metrics.
    pub fn scrape(&self) -> String {
        http_get(self.metrics, "/metrics").unwrap_or_default()
    }

    pub fn stop(mut self) {
        terminate(&mut self.child);
    }
}

/// A running `tfjob-sim-kubelet` for one namespace.
pub struct SimKubeletProcess {
    child: Child,
}

impl SimKubeletProcess {
    pub fn start(
        binary: &Path,
        cp: &ControlPlane,
        namespace: &str,
        log: &Path,
    ) -> anyhow::Result<SimKubeletProcess> {
        let log_file = std::fs::File::create(log)?;
        let child = Command::new(binary)
            .arg("--kubeconfig")
            .arg(cp.kubeconfig())
            .arg(format!("--namespace={namespace}"))
            .env("RUST_LOG", "warn")
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        Ok(SimKubeletProcess { child })
    }

    pub fn stop(mut self) {
        terminate(&mut self.child);
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        crate::procs::terminate_if_running(&mut self.child);
    }
}

impl Drop for SimKubeletProcess {
    fn drop(&mut self) {
        crate::procs::terminate_if_running(&mut self.child);
    }
}
