//! The local control plane of a run (`hack/control-plane.sh`), clients for it, a
//! kube-controller-manager running only the Job controller, and the apiserver's own metrics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use http::HeaderValue;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::config::{Config, KubeConfigOptions, Kubeconfig};
use kube_runtime::wait::{await_condition, conditions};
use test_support::prom_text::Scrape;

use crate::procs;

/// The benchmark's User-Agent, so the audit log tells its requests from the operator's.
pub const BENCH_USER_AGENT: &str = concat!("tfjob-bench/", env!("CARGO_PKG_VERSION"));

pub struct ControlPlane {
    pub dir: PathBuf,
    script: PathBuf,
    /// Whether this run started it (and so stops it).
    owned: bool,
}

impl ControlPlane {
    /// Starts metering the CPU of the control plane's processes, `controller` and this one.
    pub fn cpu_meter(&self, controller: u32) -> procs::CpuMeter {
        procs::CpuMeter::start(&[
            ("kube-apiserver", self.pid("kube-apiserver")),
            ("etcd", self.pid("etcd")),
            ("controller", controller),
            (
                "kube-controller-manager",
                self.pid("kube-controller-manager"),
            ),
            ("benchmark", std::process::id()),
        ])
    }

    /// Starts a fresh control plane with `audit_policy`; it also stops when this process exits.
    pub fn start(script: &Path, audit_policy: &Path) -> anyhow::Result<ControlPlane> {
        let output = Command::new(script)
            .args(["start", "--audit-policy"])
            .arg(audit_policy)
            .args(["--owner-pid", &std::process::id().to_string()])
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("cannot run {}", script.display()))?;
        if !output.status.success() {
            bail!(
                "{} start failed ({}); if Kubernetes is not built yet, run `{} install` first",
                script.display(),
                output.status,
                script.display()
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let dir = stdout
            .lines()
            .last()
            .map(PathBuf::from)
            .context("control-plane.sh start printed no directory")?;
        Ok(ControlPlane {
            dir,
            script: script.to_path_buf(),
            owned: true,
        })
    }

    /// Starts the CRD-only 1.36 apiserver of `hack/crd-apiserver.sh` (no audit log: it serves
    /// custom resources only); it also stops when this process exits.
    pub fn start_crd_apiserver(script: &Path) -> anyhow::Result<ControlPlane> {
        let output = Command::new(script)
            .args(["start", "--owner-pid", &std::process::id().to_string()])
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("cannot run {}", script.display()))?;
        if !output.status.success() {
            bail!(
                "{} start failed ({}); build it first with `{} install`",
                script.display(),
                output.status,
                script.display()
            );
        }
        let dir = String::from_utf8_lossy(&output.stdout)
            .lines()
            .last()
            .map(PathBuf::from)
            .context("crd-apiserver.sh start printed no directory")?;
        Ok(ControlPlane {
            dir,
            script: script.to_path_buf(),
            owned: true,
        })
    }

    /// Uses a control plane started elsewhere (`--control-plane DIR`); it is left running.
    pub fn reuse(script: &Path, dir: &Path) -> ControlPlane {
        ControlPlane {
            dir: dir.to_path_buf(),
            script: script.to_path_buf(),
            owned: false,
        }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// The PID of a control-plane process (`etcd`, `kube-apiserver`), from the script's record.
    pub fn pid(&self, process: &str) -> u32 {
        std::fs::read_to_string(self.dir.join("pids"))
            .unwrap_or_default()
            .lines()
            .rev()
            .filter_map(|line| line.split_once(' '))
            .filter(|(name, _)| *name == process)
            .find_map(|(_, pid)| pid.trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    /// An admin client that sends the benchmark's User-Agent.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let kubeconfig = Kubeconfig::read_from(self.kubeconfig())?;
        let mut config =
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        config.headers.push((
            http::header::USER_AGENT,
            HeaderValue::from_static(BENCH_USER_AGENT),
        ));
        Ok(kube::Client::try_from(config)?)
    }

    /// Restarts kube-apiserver with the same flags: every watch breaks and, since the new
    /// watch caches start at the current revision, resumes with 410 Gone and a full re-list.
    pub fn restart_apiserver(&self) -> anyhow::Result<()> {
        let status = Command::new(&self.script)
            .arg("restart-apiserver")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("restarting kube-apiserver failed ({status})");
        }
        Ok(())
    }

    pub fn stop(&self) {
        if self.owned {
            let _ = Command::new(&self.script)
                .arg("stop")
                .arg(&self.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The kube-controller-manager binary: `$KUBEBUILDER_ASSETS`, else the script's build cache.
pub fn default_kcm_binary() -> PathBuf {
    if let Some(assets) = std::env::var_os("KUBEBUILDER_ASSETS") {
        let candidate = PathBuf::from(assets).join("kube-controller-manager");
        if candidate.is_file() {
            return candidate;
        }
    }
    let cache = std::env::var_os("TFJOB_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/tfjob-operator")
        });
    cache.join("k8s-1.20.2/bin/kube-controller-manager")
}

/// A second kube-controller-manager running only the Job controller at the given client limits
/// (the control plane's own one keeps the garbage collector and namespace controller).
pub struct JobController {
    child: Child,
}

impl JobController {
    pub fn start(
        binary: &Path,
        cp: &ControlPlane,
        qps: u32,
        burst: u32,
        log: &Path,
    ) -> anyhow::Result<JobController> {
        let log_file = std::fs::File::create(log)?;
        let child = Command::new(binary)
            .arg("--kubeconfig")
            .arg(cp.kubeconfig())
            .args([
                "--controllers=job",
                "--leader-elect=false",
                "--use-service-account-credentials=false",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                "--port=0",
            ])
            .arg(format!("--kube-api-qps={qps}"))
            .arg(format!("--kube-api-burst={burst}"))
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let started = Instant::now();
        // Ready once its informers synced (it logs that); Jobs created earlier would still be
        // handled, but their time would include the controller's start-up.
        while started.elapsed() < Duration::from_secs(30) {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains("Caches are synced for job") {
                return Ok(JobController { child });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "the Job controller did not sync within 30 s (log: {})",
            log.display()
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(mut self) {
        procs::terminate(&mut self.child);
    }
}

/// Installs the TFJob CRD (a plain create: servers before 1.23 drop its CEL rule) and waits
/// until the apiserver serves it.
pub async fn install_tfjob_crd(client: &kube::Client) -> anyhow::Result<()> {
    install_crd(client, &tfjob_core::api::crd::tfjob_crd()).await
}

/// Creates `crd` (a plain create) and waits until the apiserver serves it.
pub async fn install_crd(
    client: &kube::Client,
    crd: &CustomResourceDefinition,
) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().unwrap_or_default();
    match crds.create(&PostParams::default(), crd).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.is_already_exists() => {}
        Err(e) => return Err(anyhow::Error::new(e).context(format!("installing the CRD {name}"))),
    }
    let established = await_condition(crds, &name, conditions::is_crd_established());
    tokio::time::timeout(Duration::from_secs(30), established)
        .await
        .with_context(|| format!("the CRD {name} was not Established within 30 s"))??;
    Ok(())
}

/// Creates a namespace (idempotent).
pub async fn ensure_namespace(client: &kube::Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `apiserver_request_total` summed by `verb resource[/subresource] code`: a cross-check of the
/// audit log's totals, from the apiserver's own counter.
pub type RequestCounts = BTreeMap<String, f64>;

pub async fn apiserver_requests(client: &kube::Client) -> anyhow::Result<RequestCounts> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    let scrape = Scrape::parse(&text).context("the apiserver's /metrics")?;
    let mut counts = RequestCounts::new();
    for sample in scrape.samples("apiserver_request_total") {
        let label = |name: &str| sample.labels.get(name).cloned().unwrap_or_default();
        let resource = match label("subresource").as_str() {
            "" => label("resource"),
            sub => format!("{}/{sub}", label("resource")),
        };
        let key = format!("{} {} {}", label("verb"), resource, label("code"));
        *counts.entry(key).or_default() += sample.value;
    }
    Ok(counts)
}

/// `after - before`, dropping keys that did not change.
pub fn delta(before: &RequestCounts, after: &RequestCounts) -> RequestCounts {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

impl Drop for JobController {
    fn drop(&mut self) {
        crate::procs::terminate_if_running(&mut self.child);
    }
}
