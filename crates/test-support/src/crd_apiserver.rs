//! The CRD-only Kubernetes 1.36 API server of `hack/crd-apiserver.sh`, one per test binary,
//! started lazily with `--owner-pid <this process>` (its watchdog stops it when the test binary
//! exits). It serves CRDs and custom resources only (no core API): clients authenticate with
//! the admin client certificate of its kubeconfig.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../hack/crd-apiserver.sh");

#[derive(Debug)]
pub struct CrdApiserver {
    /// The script's state directory (logs, kubeconfig, pids).
    pub dir: PathBuf,
    /// Admin kubeconfig (client certificate in `system:masters`).
    pub kubeconfig: PathBuf,
}

/// The 1.36 CRD apiserver of this test binary; panics with what to do if it cannot start.
pub fn crd_apiserver() -> &'static CrdApiserver {
    static SERVER: OnceLock<Result<CrdApiserver, String>> = OnceLock::new();
    match SERVER.get_or_init(start) {
        Ok(server) => server,
        Err(message) => panic!("{message}"),
    }
}

fn start() -> Result<CrdApiserver, String> {
    let started = Instant::now();
    let output = Command::new(SCRIPT)
        .arg("start")
        .arg("--owner-pid")
        .arg(std::process::id().to_string())
        .output()
        .map_err(|e| format!("cannot run {SCRIPT}: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "the 1.36 CRD apiserver did not start ({}).\n{stderr}\n\
             If it is not built, build it once (about 5 minutes) with:\n    \
             hack/crd-apiserver.sh install",
            output.status
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let dir = stdout
        .lines()
        .last()
        .map(PathBuf::from)
        .ok_or_else(|| format!("{SCRIPT} start printed no state directory.\n{stderr}"))?;
    eprintln!(
        "1.36 CRD apiserver up in {:.1}s: {} (it stops when this test process exits)",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(CrdApiserver {
        kubeconfig: dir.join("kubeconfig"),
        dir,
    })
}

impl CrdApiserver {
    /// A client authenticated by the admin certificate, bound to the calling tokio runtime.
    pub async fn client(&self) -> Client {
        let text = std::fs::read_to_string(&self.kubeconfig)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.kubeconfig.display()));
        let kubeconfig = Kubeconfig::from_yaml(&text).expect("the CRD apiserver's kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("a config from the CRD apiserver's kubeconfig");
        Client::try_from(config).expect("a client for the CRD apiserver")
    }

    /// PIDs of the apiserver and its etcd (from the state directory), for CPU accounting.
    pub fn pids(&self) -> Vec<(String, u32)> {
        std::fs::read_to_string(self.dir.join("pids"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (name, pid) = l.split_once(' ')?;
                Some((name.to_string(), pid.trim().parse().ok()?))
            })
            .filter(|(name, _)| name != "watchdog")
            .collect()
    }
}
