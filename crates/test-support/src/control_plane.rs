//! One real control plane (etcd + kube-apiserver + kube-controller-manager) per test binary.
//!
//! Started lazily on first use with `hack/control-plane.sh start --owner-pid <this process>`, so
//! the script's watchdog tears it down when the test binary exits, however it exits. Set
//! `TFJOB_TEST_CONTROL_PLANE=<dir>` to reuse a running one instead (it is then never stopped here).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use kube::Client;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};

/// Env var naming the state directory of an already running control plane to reuse.
pub const REUSE_ENV: &str = "TFJOB_TEST_CONTROL_PLANE";

/// The identity the operator runs as in RBAC tests; the harness gives it a token.
pub const OPERATOR_NAMESPACE: &str = "tfjob-system";
pub const OPERATOR_SERVICE_ACCOUNT: &str = "tfjob-operator";

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../hack/control-plane.sh");

#[derive(Debug)]
pub struct ControlPlane {
    /// The script's state directory (logs, kubeconfig, audit.log).
    pub dir: PathBuf,
    /// Admin kubeconfig (token user in `system:masters`).
    pub kubeconfig: PathBuf,
    /// Whether this process started it (and its watchdog stops it at exit).
    pub owned: bool,
}

/// The control plane of this test binary: started on first call, shared afterwards.
/// Panics with what to do if it cannot be started (never skips).
pub fn control_plane() -> &'static ControlPlane {
    static CONTROL_PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
    match CONTROL_PLANE.get_or_init(start_or_reuse) {
        Ok(cp) => cp,
        Err(message) => panic!("{message}"),
    }
}

fn start_or_reuse() -> Result<ControlPlane, String> {
    if let Some(dir) = std::env::var_os(REUSE_ENV).filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        let kubeconfig = dir.join("kubeconfig");
        if !kubeconfig.is_file() {
            return Err(format!(
                "{REUSE_ENV}={} has no kubeconfig; start one with `{SCRIPT} start` or unset {REUSE_ENV}",
                dir.display()
            ));
        }
        return Ok(ControlPlane {
            dir,
            kubeconfig,
            owned: false,
        });
    }

    let tokens = operator_tokens_file()?;
    let started = Instant::now();
    let output = Command::new(SCRIPT)
        .arg("start")
        .arg("--audit")
        .arg("--extra-tokens")
        .arg(&tokens)
        .arg("--owner-pid")
        .arg(std::process::id().to_string())
        .output()
        .map_err(|e| format!("cannot run {SCRIPT}: {e}"))?;
    let _ = std::fs::remove_file(&tokens);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "the local control plane did not start ({}).\n{stderr}\n\
             If the Kubernetes binaries are missing, build them once (about 4 minutes) with:\n    \
             hack/control-plane.sh install\n\
             or point KUBEBUILDER_ASSETS at a folder with kube-apiserver and etcd.",
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
        "local control plane up in {:.1}s: {} (logs there; it stops when this test process exits)",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(ControlPlane {
        kubeconfig: dir.join("kubeconfig"),
        dir,
        owned: true,
    })
}

/// A token file line mapping a fresh token to the operator's service-account identity.
fn operator_tokens_file() -> Result<PathBuf, String> {
    let token = format!("operator-{}-{}", std::process::id(), unique_suffix());
    let user = format!("system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}");
    let groups = format!("system:serviceaccounts,system:serviceaccounts:{OPERATOR_NAMESPACE}");
    let path = std::env::temp_dir().join(format!("tfjob-test-tokens-{}.csv", std::process::id()));
    std::fs::write(&path, format!("{token},{user},{user},\"{groups}\"\n"))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

impl ControlPlane {
    /// A client with admin rights, bound to the calling tokio runtime (each `#[tokio::test]`
    /// has its own runtime, so make one per test rather than sharing it).
    pub async fn client(&self) -> Client {
        self.client_from_kubeconfig(&self.kubeconfig_text(), "admin")
            .await
    }

    /// A client authenticating with `token` (see [`ControlPlane::token_for`]) instead of admin.
    pub async fn client_with_token(&self, token: &str) -> Client {
        let text = self.kubeconfig_with_token(token);
        self.client_from_kubeconfig(&text, "a token").await
    }

    /// The admin kubeconfig's text with `token` in place of admin's (for tools run as another
    /// user, e.g. `kubectl`).
    pub fn kubeconfig_with_token(&self, token: &str) -> String {
        self.kubeconfig_text().replace(&self.admin_token(), token)
    }

    /// The token of `user` from the control plane's token file, e.g.
    /// `system:serviceaccount:tfjob-system:tfjob-operator`.
    pub fn token_for(&self, user: &str) -> Option<String> {
        let csv = std::fs::read_to_string(self.dir.join("tokens.csv")).ok()?;
        csv.lines().find_map(|line| {
            let mut fields = line.splitn(3, ',');
            let token = fields.next()?;
            (fields.next()? == user).then(|| token.to_string())
        })
    }

    /// The token of the operator's service account (in `tfjob-system`).
    pub fn operator_token(&self) -> Option<String> {
        self.token_for(&format!(
            "system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"
        ))
    }

    /// The apiserver audit log (pods, services, tfjobs, events writes at Metadata level).
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    fn admin_token(&self) -> String {
        read(&self.dir.join("token")).trim().to_string()
    }

    fn kubeconfig_text(&self) -> String {
        read(&self.kubeconfig)
    }

    async fn client_from_kubeconfig(&self, text: &str, who: &str) -> Client {
        let kubeconfig = Kubeconfig::from_yaml(text)
            .unwrap_or_else(|e| panic!("bad kubeconfig {}: {e}", self.kubeconfig.display()));
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap_or_else(|e| panic!("cannot use kubeconfig {}: {e}", self.kubeconfig.display()));
        Client::try_from(config).unwrap_or_else(|e| panic!("cannot build a client as {who}: {e}"))
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (was the control plane stopped? its dir: {})",
            path.display(),
            path.parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )
    })
}

/// Short random-enough suffix: time, pid and a counter, in base 36.
pub fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut n = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9);
    let mut s = String::new();
    for _ in 0..6 {
        s.push(char::from_digit((n % 36) as u32, 36).unwrap_or('0'));
        n /= 36;
    }
    s
}
