//! Configuration of the `run` command: the [`RunArgs`] flags, their `TFJOB_*` environment
//! equivalents, the typed values they parse into, and cross-flag validation.
//!
//! This module only parses and checks; it starts nothing. Flag names and defaults follow upstream
//! training-operator where one exists (`--metrics-bind-address`, `--leader-election-id`, …) so an
//! existing Deployment's args keep working; Go-style values (`:8080`, `15s`, `--leader-elect=true`)
//! are accepted. Values read from the environment outside clap (`KUBEFLOW_NAMESPACE`,
//! `POD_NAMESPACE`, `MY_POD_NAMESPACE`) are resolved by the methods on [`RunArgs`].

mod selector;

use std::{fmt, net::SocketAddr, str::FromStr, time::Duration};

use clap::builder::BoolishValueParser;
use kube::core::Selector;

use crate::ops::{client::RateLimit, leader::LeaseTimings, telemetry::LogFormat};
use crate::webhook::{CertSource, SelfSignedSettings, SubjectNames, WebhookSettings};

pub use selector::{SelectorError, parse_label_selector};

/// Upstream's Lease name, so that this operator and training-operator exclude each other.
pub const DEFAULT_LEADER_ELECTION_ID: &str = "1ca428e5.training-operator.kubeflow.org";

/// Where upstream mounts the webhook certificate Secret.
pub const DEFAULT_WEBHOOK_CERT_DIR: &str = "/tmp/k8s-webhook-server/serving-certs";
/// The webhook Service of the chart and kustomize base.
pub const DEFAULT_WEBHOOK_SERVICE_NAME: &str = "tfjob-operator-webhook";
/// Upstream's ValidatingWebhookConfiguration name (the two operators' webhooks are one object).
pub const DEFAULT_VALIDATING_WEBHOOK_CONFIG_NAME: &str = "validator.training-operator.kubeflow.org";
/// The defaulting webhook's configuration (upstream has none).
pub const DEFAULT_MUTATING_WEBHOOK_CONFIG_NAME: &str = "defaulter.training-operator.kubeflow.org";
/// How often provided certificate files are re-read.
const WEBHOOK_CERT_RELOAD_INTERVAL: Duration = Duration::from_secs(10);
/// How often the self-signed CA's presence in the caBundle is re-checked.
const WEBHOOK_CA_BUNDLE_RESYNC: Duration = Duration::from_secs(30);

/// Where the in-cluster service account's namespace is mounted.
const SERVICE_ACCOUNT_NAMESPACE_FILE: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Flags of the `run` command. Every flag can also be set through the environment variable named
/// in its help; a flag on the command line wins over the variable.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Namespace to watch; repeat the flag or separate names with commas. Unset: the single
    /// namespace in KUBEFLOW_NAMESPACE (upstream's variable) if set, else all namespaces. An
    /// explicit empty value means all namespaces.
    #[arg(
        long = "namespace",
        value_name = "NAMESPACE",
        env = "TFJOB_NAMESPACES",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,

    /// Only reconcile TFJobs matching this label selector (e.g. `shard=a` or `shard in (a,b)`),
    /// to shard jobs across operator instances. Unset: all TFJobs.
    #[arg(long, value_name = "SELECTOR", env = "TFJOB_JOB_SELECTOR", value_parser = parse_job_selector)]
    pub job_selector: Option<Selector>,

    /// Maximum number of TFJobs reconciled at the same time.
    #[arg(
        long,
        visible_alias = "controller-threads",
        value_name = "N",
        env = "TFJOB_CONCURRENCY",
        default_value_t = 32,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub concurrency: u16,

    /// Client-side limit on Kubernetes API requests per second (token bucket shared by all
    /// requests). 0 (the default) disables client-side throttling: the operator reads from its
    /// caches and the apiserver's priority-and-fairness protects the server.
    #[arg(long, value_name = "QPS", env = "TFJOB_KUBE_API_QPS", default_value_t = 0.0, value_parser = parse_qps)]
    pub kube_api_qps: f64,

    /// Burst size of the API token bucket: requests allowed at once before --kube-api-qps applies.
    /// Ignored when --kube-api-qps is 0.
    #[arg(
        long,
        value_name = "N",
        env = "TFJOB_KUBE_API_BURST",
        default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub kube_api_burst: u32,

    /// Server-side timeout of each watch request. Kept below common load-balancer idle timeouts
    /// (240 s on Azure) so the apiserver, not a middlebox, ends quiet watches.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TFJOB_WATCH_TIMEOUT_SECONDS",
        default_value_t = 200,
        value_parser = clap::value_parser!(u32).range(1..=3600)
    )]
    pub watch_timeout_seconds: u32,

    /// Page size (`limit`) of the initial LIST of each watch. Smaller than client-go's 500:
    /// a page of pods decodes to several MB that the allocator keeps after a (re-)list.
    #[arg(
        long,
        value_name = "N",
        env = "TFJOB_LIST_PAGE_SIZE",
        default_value_t = 100,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub list_page_size: u32,

    /// Address of the Prometheus /metrics endpoint: `HOST:PORT`, `:PORT` (all interfaces), or `0`
    /// to disable.
    #[arg(
        long,
        value_name = "ADDR",
        env = "TFJOB_METRICS_BIND_ADDRESS",
        default_value = ":8080"
    )]
    pub metrics_bind_address: BindAddress,

    /// Address of the /healthz and /readyz endpoints: `HOST:PORT`, `:PORT` (all interfaces), or
    /// `0` to disable. May equal --metrics-bind-address to serve everything on one port.
    #[arg(
        long,
        value_name = "ADDR",
        env = "TFJOB_HEALTH_PROBE_BIND_ADDRESS",
        default_value = ":8081"
    )]
    pub health_probe_bind_address: BindAddress,

    /// Run leader election on a coordination.k8s.io Lease so that only one replica reconciles.
    /// Accepts `--leader-elect`, `--leader-elect=true|false`.
    #[arg(
        long,
        env = "TFJOB_LEADER_ELECT",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = BoolishValueParser::new()
    )]
    pub leader_elect: bool,

    /// Name of the leader-election Lease (upstream's, so the two operators exclude each other).
    #[arg(
        long,
        value_name = "NAME",
        env = "TFJOB_LEADER_ELECTION_ID",
        default_value = DEFAULT_LEADER_ELECTION_ID
    )]
    pub leader_election_id: String,

    /// Namespace of the leader-election Lease. Unset: POD_NAMESPACE, then MY_POD_NAMESPACE, then
    /// the in-cluster service account's namespace, then `default`.
    #[arg(
        long,
        value_name = "NAMESPACE",
        env = "TFJOB_LEADER_ELECTION_NAMESPACE"
    )]
    pub leader_election_namespace: Option<String>,

    /// How long a Lease stays valid after its last renewal; other replicas take over after it.
    #[arg(
        long,
        value_name = "DURATION",
        env = "TFJOB_LEASE_DURATION",
        default_value = "15s",
        value_parser = parse_duration
    )]
    pub lease_duration: Duration,

    /// How long the leader keeps retrying a failed renewal before it stops leading.
    #[arg(
        long,
        value_name = "DURATION",
        env = "TFJOB_RENEW_DEADLINE",
        default_value = "10s",
        value_parser = parse_duration
    )]
    pub renew_deadline: Duration,

    /// Time between leader-election attempts (acquire or renew).
    #[arg(
        long,
        value_name = "DURATION",
        env = "TFJOB_RETRY_PERIOD",
        default_value = "2s",
        value_parser = parse_duration
    )]
    pub retry_period: Duration,

    /// Gang scheduler: `volcano`, another scheduler-plugins scheduler name, or empty for none.
    #[arg(
        long,
        value_name = "NAME",
        env = "TFJOB_GANG_SCHEDULER_NAME",
        default_value = ""
    )]
    pub gang_scheduler_name: String,

    /// Which Services to create for a TFJob: one headless Service per replica (upstream), or one
    /// headless Service per job.
    #[arg(
        long,
        value_name = "MODE",
        env = "TFJOB_SERVICE_MODE",
        value_enum,
        default_value_t = ServiceMode::PerReplica
    )]
    pub service_mode: ServiceMode,

    /// Log filter as an EnvFilter directive (`info`, `tfjob_operator=debug,kube=warn`, …).
    /// RUST_LOG, when set, overrides it.
    #[arg(
        long,
        value_name = "FILTER",
        env = "TFJOB_LOG_LEVEL",
        default_value = "info",
        value_parser = parse_log_level
    )]
    pub log_level: String,

    /// Log output format.
    #[arg(
        long,
        value_name = "FORMAT",
        env = "TFJOB_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,

    /// Serve the TFJob admission webhook (HTTPS on --webhook-server-port) on every replica.
    /// Accepts `--webhook-enabled`, `--webhook-enabled=true|false`.
    #[arg(
        long,
        env = "TFJOB_WEBHOOK_ENABLED",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = BoolishValueParser::new()
    )]
    pub webhook_enabled: bool,

    /// Port of the webhook's HTTPS listener (all interfaces).
    #[arg(
        long,
        value_name = "PORT",
        env = "TFJOB_WEBHOOK_SERVER_PORT",
        default_value_t = 9443,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub webhook_server_port: u16,

    /// Where the serving certificate comes from: `self-signed` (generated and rotated in memory;
    /// the CA is written into the webhook configurations' caBundle) or `provided` (tls.crt and
    /// tls.key in --webhook-cert-dir, e.g. a cert-manager Secret, reloaded when they change).
    #[arg(
        long,
        value_name = "MODE",
        env = "TFJOB_WEBHOOK_CERT_MODE",
        value_enum,
        default_value_t = WebhookCertMode::SelfSigned
    )]
    pub webhook_cert_mode: WebhookCertMode,

    /// Directory holding tls.crt and tls.key (provided mode).
    #[arg(
        long,
        value_name = "DIR",
        env = "TFJOB_WEBHOOK_CERT_DIR",
        default_value = DEFAULT_WEBHOOK_CERT_DIR
    )]
    pub webhook_cert_dir: std::path::PathBuf,

    /// Name of the webhook's Service: the self-signed certificate is valid for
    /// `<name>.<namespace>.svc` (and the shorter and cluster-local forms).
    #[arg(
        long,
        value_name = "NAME",
        env = "TFJOB_WEBHOOK_SERVICE_NAME",
        default_value = DEFAULT_WEBHOOK_SERVICE_NAME
    )]
    pub webhook_service_name: String,

    /// Namespace of the webhook's Service. Unset: POD_NAMESPACE, then MY_POD_NAMESPACE, then the
    /// in-cluster service account's namespace, then `default`.
    #[arg(
        long,
        value_name = "NAMESPACE",
        env = "TFJOB_WEBHOOK_SERVICE_NAMESPACE"
    )]
    pub webhook_service_namespace: Option<String>,

    /// Extra DNS names or IP addresses for the self-signed certificate (repeat or
    /// comma-separate), e.g. 127.0.0.1 for a webhook configured by URL.
    #[arg(
        long,
        value_name = "NAME_OR_IP",
        env = "TFJOB_WEBHOOK_CERT_EXTRA_SANS",
        value_delimiter = ','
    )]
    pub webhook_cert_extra_sans: Vec<String>,

    /// Lifetime of each self-signed serving certificate.
    #[arg(
        long,
        value_name = "DURATION",
        env = "TFJOB_WEBHOOK_CERT_VALIDITY",
        default_value = "168h",
        value_parser = parse_duration
    )]
    pub webhook_cert_validity: Duration,

    /// Replace a self-signed serving certificate this long before it expires.
    #[arg(
        long,
        value_name = "DURATION",
        env = "TFJOB_WEBHOOK_CERT_ROTATE_BEFORE",
        default_value = "48h",
        value_parser = parse_duration
    )]
    pub webhook_cert_rotate_before: Duration,

    /// ValidatingWebhookConfiguration whose caBundle gets the self-signed CA.
    #[arg(
        long,
        value_name = "NAME",
        env = "TFJOB_VALIDATING_WEBHOOK_CONFIG_NAME",
        default_value = DEFAULT_VALIDATING_WEBHOOK_CONFIG_NAME
    )]
    pub validating_webhook_config_name: String,

    /// MutatingWebhookConfiguration whose caBundle gets the self-signed CA, if it exists.
    #[arg(
        long,
        value_name = "NAME",
        env = "TFJOB_MUTATING_WEBHOOK_CONFIG_NAME",
        default_value = DEFAULT_MUTATING_WEBHOOK_CONFIG_NAME
    )]
    pub mutating_webhook_config_name: String,

    /// Also serve the defaulting webhook, which normalises replica-type keys (`Ps` → `PS`) and
    /// moves the legacy flat fields into `runPolicy`. Off: upstream persists no defaults.
    #[arg(
        long,
        env = "TFJOB_WEBHOOK_DEFAULTING",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = BoolishValueParser::new()
    )]
    pub webhook_defaulting: bool,
}

/// Where the webhook's serving certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WebhookCertMode {
    /// Generated by the operator, CA published into the webhook configurations.
    SelfSigned,
    /// tls.crt/tls.key from --webhook-cert-dir.
    Provided,
}

/// How Services are created for a TFJob's replicas (only parsed for now).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceMode {
    /// One headless Service per replica, named like its pod (upstream behaviour).
    PerReplica,
    /// One headless Service per job.
    PerJob,
}

/// Which namespaces the operator watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceScope {
    /// Every namespace (cluster-wide watches).
    All,
    /// These namespaces only: sorted, deduplicated, never empty.
    Only(Vec<String>),
}

impl NamespaceScope {
    /// Whether a TFJob in `namespace` is in scope.
    pub fn contains(&self, namespace: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(namespaces) => namespaces.iter().any(|ns| ns == namespace),
        }
    }
}

/// A listen address: a socket address, or disabled (`0`, as in controller-runtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindAddress {
    /// Do not serve this endpoint.
    Disabled,
    /// Listen here.
    Socket(SocketAddr),
}

impl BindAddress {
    /// The socket address, or `None` when disabled.
    pub fn socket_addr(self) -> Option<SocketAddr> {
        match self {
            Self::Disabled => None,
            Self::Socket(addr) => Some(addr),
        }
    }
}

impl FromStr for BindAddress {
    type Err = String;

    /// Accepts `0` or the empty string (disabled), `:PORT` (all IPv4 interfaces, Go's meaning),
    /// `IP:PORT`, `[IPv6]:PORT` and `localhost:PORT`. Host names other than `localhost` are
    /// rejected because binding must not depend on DNS.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() || s == "0" {
            return Ok(Self::Disabled);
        }
        let invalid =
            || format!("{s:?} is not HOST:PORT, :PORT or 0 (HOST must be an IP or localhost)");
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err(invalid());
        };
        let port: u16 = port.parse().map_err(|_| invalid())?;
        let ip = match host {
            "" | "0.0.0.0" => [0, 0, 0, 0].into(),
            "localhost" => [127, 0, 0, 1].into(),
            _ => {
                let bare = host
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(host);
                bare.parse().map_err(|_| invalid())?
            }
        };
        Ok(Self::Socket(SocketAddr::new(ip, port)))
    }
}

impl fmt::Display for BindAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disabled => f.write_str("0"),
            Self::Socket(addr) => addr.fmt(f),
        }
    }
}

/// A flag (or environment variable) whose value is unusable, or flags that contradict each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// One value is invalid.
    #[error("invalid {flag} value {value:?}: {reason}")]
    InvalidValue {
        /// The flag or environment variable that carried the value.
        flag: &'static str,
        /// The value as given.
        value: String,
        /// What is wrong and what is expected instead.
        reason: String,
    },
    /// Values are individually valid but inconsistent.
    #[error("{flags}: {reason}")]
    Inconsistent {
        /// The flags involved, e.g. `--lease-duration/--renew-deadline`.
        flags: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

impl RunArgs {
    /// Checks everything clap cannot check per flag: namespace names (including the
    /// KUBEFLOW_NAMESPACE fallback), the Lease name and namespace, and the leader-election timing
    /// relations. Call once at start-up, before using the accessors below.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.namespace_scope()?;
        check_subdomain("--leader-election-id", &self.leader_election_id)?;
        check_namespace(
            "--leader-election-namespace",
            &self.leader_election_namespace(),
        )?;
        self.lease_timings()
            .validate()
            .map_err(|e| ConfigError::Inconsistent {
                flags: "--lease-duration/--renew-deadline/--retry-period",
                reason: e.to_string(),
            })?;
        if self.webhook_enabled {
            self.webhook_settings_with(|_| None, || None)?;
        }
        Ok(())
    }

    /// The webhook's settings, or `None` when `--webhook-enabled` is off.
    pub fn webhook_settings(&self) -> Result<Option<WebhookSettings>, ConfigError> {
        if !self.webhook_enabled {
            return Ok(None);
        }
        self.webhook_settings_with(
            |key| std::env::var(key).ok(),
            || std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE_FILE).ok(),
        )
        .map(Some)
    }

    fn webhook_settings_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
        service_account_namespace: impl FnOnce() -> Option<String>,
    ) -> Result<WebhookSettings, ConfigError> {
        let certs = match self.webhook_cert_mode {
            WebhookCertMode::Provided => CertSource::Provided {
                dir: self.webhook_cert_dir.clone(),
                reload_interval: WEBHOOK_CERT_RELOAD_INTERVAL,
            },
            WebhookCertMode::SelfSigned => {
                check_dns_label("--webhook-service-name", &self.webhook_service_name)?;
                let namespace = pod_namespace(
                    self.webhook_service_namespace.clone(),
                    env,
                    service_account_namespace,
                );
                check_namespace("--webhook-service-namespace", &namespace)?;
                for name in &self.webhook_cert_extra_sans {
                    let name = name.trim();
                    if !name.is_empty()
                        && name.parse::<std::net::IpAddr>().is_err()
                        && check_subdomain("--webhook-cert-extra-sans", name).is_err()
                    {
                        return Err(ConfigError::InvalidValue {
                            flag: "--webhook-cert-extra-sans",
                            value: name.to_string(),
                            reason: "must be an IP address or a DNS name of lowercase labels"
                                .into(),
                        });
                    }
                }
                if self.webhook_cert_rotate_before >= self.webhook_cert_validity
                    || self.webhook_cert_rotate_before.is_zero()
                {
                    return Err(ConfigError::Inconsistent {
                        flags: "--webhook-cert-validity/--webhook-cert-rotate-before",
                        reason: format!(
                            "the certificate must be replaced after it starts and before it \
                             expires: need 0 < rotate-before ({:?}) < validity ({:?})",
                            self.webhook_cert_rotate_before, self.webhook_cert_validity
                        ),
                    });
                }
                if self.webhook_cert_validity >= crate::webhook::certs::CA_VALIDITY {
                    return Err(ConfigError::InvalidValue {
                        flag: "--webhook-cert-validity",
                        value: format!("{:?}", self.webhook_cert_validity),
                        reason: "must be shorter than the generated CA's 10 years".into(),
                    });
                }
                CertSource::SelfSigned(SelfSignedSettings {
                    names: SubjectNames::for_service(
                        &self.webhook_service_name,
                        &namespace,
                        &self.webhook_cert_extra_sans,
                    ),
                    validity: self.webhook_cert_validity,
                    rotate_before: self.webhook_cert_rotate_before,
                    instance: crate::webhook::instance_name(),
                    validating_config: self.validating_webhook_config_name.clone(),
                    mutating_config: self.mutating_webhook_config_name.clone(),
                    resync_interval: WEBHOOK_CA_BUNDLE_RESYNC,
                })
            }
        };
        check_subdomain(
            "--validating-webhook-config-name",
            &self.validating_webhook_config_name,
        )?;
        check_subdomain(
            "--mutating-webhook-config-name",
            &self.mutating_webhook_config_name,
        )?;
        Ok(WebhookSettings {
            bind: SocketAddr::from(([0, 0, 0, 0], self.webhook_server_port)),
            certs,
            defaulting: self.webhook_defaulting,
        })
    }

    /// The namespaces to watch: the flag/`TFJOB_NAMESPACES`, else `KUBEFLOW_NAMESPACE`, else all.
    pub fn namespace_scope(&self) -> Result<NamespaceScope, ConfigError> {
        self.namespace_scope_with(std::env::var("KUBEFLOW_NAMESPACE").ok())
    }

    fn namespace_scope_with(
        &self,
        kubeflow_namespace: Option<String>,
    ) -> Result<NamespaceScope, ConfigError> {
        let (flag, given) = if self.namespaces.is_empty() {
            (
                "KUBEFLOW_NAMESPACE",
                kubeflow_namespace.into_iter().collect(),
            )
        } else {
            ("--namespace", self.namespaces.clone())
        };
        let mut namespaces = Vec::new();
        for ns in given.iter().map(|ns| ns.trim()).filter(|ns| !ns.is_empty()) {
            check_namespace(flag, ns)?;
            namespaces.push(ns.to_string());
        }
        namespaces.sort();
        namespaces.dedup();
        Ok(if namespaces.is_empty() {
            NamespaceScope::All
        } else {
            NamespaceScope::Only(namespaces)
        })
    }

    /// Namespace of the leader-election Lease (see the flag's help for the fallback order).
    pub fn leader_election_namespace(&self) -> String {
        self.leader_election_namespace_with(
            |key| std::env::var(key).ok(),
            || std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE_FILE).ok(),
        )
    }

    fn leader_election_namespace_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
        service_account_namespace: impl FnOnce() -> Option<String>,
    ) -> String {
        pod_namespace(
            self.leader_election_namespace.clone(),
            env,
            service_account_namespace,
        )
    }

    /// Leader-election timings from `--lease-duration`, `--renew-deadline`, `--retry-period`.
    pub fn lease_timings(&self) -> LeaseTimings {
        LeaseTimings {
            lease_duration: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
        }
    }

    /// The client-side API rate limit (disabled when `--kube-api-qps` is 0).
    pub fn rate_limit(&self) -> RateLimit {
        RateLimit {
            qps: self.kube_api_qps,
            burst: self.kube_api_burst,
        }
    }
}

/// `explicit` if set, else the operator's own namespace: POD_NAMESPACE, MY_POD_NAMESPACE, the
/// service account's namespace, `default`.
fn pod_namespace(
    explicit: Option<String>,
    env: impl Fn(&str) -> Option<String>,
    service_account_namespace: impl FnOnce() -> Option<String>,
) -> String {
    let non_empty = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    non_empty(explicit)
        .or_else(|| non_empty(env("POD_NAMESPACE")))
        .or_else(|| non_empty(env("MY_POD_NAMESPACE")))
        .or_else(|| non_empty(service_account_namespace()))
        .unwrap_or_else(|| "default".to_string())
}

/// Parses a Go/humantime-style duration (`15s`, `1m30s`, `500ms`); a unit is required.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let parsed: jiff::SignedDuration = s.parse().map_err(|_| {
        format!("{s:?} is not a duration; use a number with a unit, e.g. 15s, 1m30s or 500ms")
    })?;
    Duration::try_from(parsed).map_err(|_| format!("{s:?} is negative; durations must be positive"))
}

fn parse_qps(s: &str) -> Result<f64, String> {
    let qps: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    // Governor's token bucket needs a refill period of at least one nanosecond.
    if !qps.is_finite() || !(0.0..=1e9).contains(&qps) {
        return Err(format!(
            "{s:?} is out of range; use 0 (unlimited) or a positive number up to 1e9"
        ));
    }
    Ok(qps)
}

fn parse_job_selector(s: &str) -> Result<Selector, String> {
    parse_label_selector(s).map_err(|e| e.to_string())
}

fn parse_log_level(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(s)
        .map(|_| s.to_string())
        .map_err(|e| format!("{s:?} is not an EnvFilter directive (e.g. info or tfjob_operator=debug,kube=warn): {e}"))
}

/// A namespace name is a DNS-1123 label.
fn check_namespace(flag: &'static str, ns: &str) -> Result<(), ConfigError> {
    if is_dns_label(ns) {
        Ok(())
    } else {
        Err(ConfigError::InvalidValue {
            flag,
            value: ns.to_string(),
            reason: "a namespace is at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit".into(),
        })
    }
}

/// Lease names are DNS-1123 subdomains.
fn check_subdomain(flag: &'static str, name: &str) -> Result<(), ConfigError> {
    if name.len() <= 253 && name.split('.').all(is_dns_label) {
        Ok(())
    } else {
        Err(ConfigError::InvalidValue {
            flag,
            value: name.to_string(),
            reason: "must be a DNS subdomain: dot-separated lowercase labels of letters, digits and '-', at most 253 characters".into(),
        })
    }
}

/// Service names are DNS-1123 labels.
fn check_dns_label(flag: &'static str, name: &str) -> Result<(), ConfigError> {
    if is_dns_label(name) {
        Ok(())
    } else {
        Err(ConfigError::InvalidValue {
            flag,
            value: name.to_string(),
            reason: "must be at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit".into(),
        })
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    const ENV_VARS: &[&str] = &[
        "TFJOB_NAMESPACES",
        "TFJOB_JOB_SELECTOR",
        "TFJOB_CONCURRENCY",
        "TFJOB_KUBE_API_QPS",
        "TFJOB_KUBE_API_BURST",
        "TFJOB_WATCH_TIMEOUT_SECONDS",
        "TFJOB_LIST_PAGE_SIZE",
        "TFJOB_METRICS_BIND_ADDRESS",
        "TFJOB_HEALTH_PROBE_BIND_ADDRESS",
        "TFJOB_LEADER_ELECT",
        "TFJOB_LEADER_ELECTION_ID",
        "TFJOB_LEADER_ELECTION_NAMESPACE",
        "TFJOB_LEASE_DURATION",
        "TFJOB_RENEW_DEADLINE",
        "TFJOB_RETRY_PERIOD",
        "TFJOB_GANG_SCHEDULER_NAME",
        "TFJOB_SERVICE_MODE",
        "TFJOB_LOG_LEVEL",
        "TFJOB_LOG_FORMAT",
        "TFJOB_WEBHOOK_ENABLED",
        "TFJOB_WEBHOOK_SERVER_PORT",
        "TFJOB_WEBHOOK_CERT_MODE",
        "TFJOB_WEBHOOK_CERT_DIR",
        "TFJOB_WEBHOOK_SERVICE_NAME",
        "TFJOB_WEBHOOK_SERVICE_NAMESPACE",
        "TFJOB_WEBHOOK_CERT_EXTRA_SANS",
        "TFJOB_WEBHOOK_CERT_VALIDITY",
        "TFJOB_WEBHOOK_CERT_ROTATE_BEFORE",
        "TFJOB_VALIDATING_WEBHOOK_CONFIG_NAME",
        "TFJOB_MUTATING_WEBHOOK_CONFIG_NAME",
        "TFJOB_WEBHOOK_DEFAULTING",
    ];

    /// Set in the child process that [`run_here_with`] starts.
    const CHILD_MARKER: &str = "TFJOB_CONFIG_TEST_CHILD";

    /// Whether the calling test (`test`, its name in this module) may go on in this process,
    /// where exactly `vars` are set among [`ENV_VARS`]. clap reads the real process
    /// environment, and changing that is `unsafe` (Rust 2024: it races with every thread that
    /// reads it), which the crate forbids. So when this process's environment is not the one
    /// wanted, the test runs again in a child process of this test binary given exactly `vars`
    /// (`Command::env`), its success is asserted here, and `false` tells the caller to return.
    fn run_here_with(test: &str, vars: &[(&str, &str)]) -> bool {
        for (key, _) in vars {
            assert!(ENV_VARS.contains(key), "{key} must be listed in ENV_VARS");
        }
        let wanted = |key: &str| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        if ENV_VARS
            .iter()
            .all(|key| std::env::var(key).ok().as_deref() == wanted(key))
        {
            return true;
        }
        assert!(
            std::env::var_os(CHILD_MARKER).is_none(),
            "the child process did not get the environment it was started with"
        );
        let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"));
        child
            .args([
                &format!("config::tests::{test}"),
                "--exact",
                "--test-threads=1",
            ])
            .env(CHILD_MARKER, "1");
        for key in ENV_VARS {
            child.env_remove(key);
        }
        let output = child
            .envs(vars.iter().copied())
            .output()
            .expect("run the test binary");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{test} with {vars:?} failed in a child process:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        false
    }

    fn parse(args: &[&str]) -> Result<RunArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("tfjob-operator").chain(args.iter().copied()))
            .map(|cli| cli.run)
    }

    fn parse_ok(args: &[&str]) -> RunArgs {
        parse(args).unwrap_or_else(|e| panic!("{args:?} should parse: {e}"))
    }

    #[test]
    fn defaults_match_the_documented_table() {
        if !run_here_with("defaults_match_the_documented_table", &[]) {
            return;
        }
        let args = parse_ok(&[]);
        assert!(args.namespaces.is_empty());
        assert_eq!(args.namespace_scope_with(None), Ok(NamespaceScope::All));
        assert!(args.job_selector.is_none());
        assert_eq!(args.concurrency, 32);
        assert_eq!(args.kube_api_qps, 0.0);
        assert_eq!(args.kube_api_burst, 30);
        assert!(!args.rate_limit().is_enabled());
        assert_eq!(args.watch_timeout_seconds, 200);
        assert_eq!(args.list_page_size, 100);
        assert_eq!(
            args.metrics_bind_address,
            BindAddress::Socket("0.0.0.0:8080".parse().expect("addr"))
        );
        assert_eq!(
            args.health_probe_bind_address,
            BindAddress::Socket("0.0.0.0:8081".parse().expect("addr"))
        );
        assert!(!args.leader_elect);
        assert_eq!(args.leader_election_id, DEFAULT_LEADER_ELECTION_ID);
        assert_eq!(args.leader_election_namespace, None);
        assert_eq!(args.lease_timings(), LeaseTimings::default());
        assert_eq!(args.lease_duration, Duration::from_secs(15));
        assert_eq!(args.renew_deadline, Duration::from_secs(10));
        assert_eq!(args.retry_period, Duration::from_secs(2));
        assert_eq!(args.gang_scheduler_name, "");
        assert_eq!(args.service_mode, ServiceMode::PerReplica);
        assert_eq!(args.log_level, "info");
        assert_eq!(args.log_format, LogFormat::Text);
    }

    #[test]
    fn every_flag_parses_from_the_command_line() {
        if !run_here_with("every_flag_parses_from_the_command_line", &[]) {
            return;
        }
        let args = parse_ok(&[
            "--namespace=a,b",
            "--namespace",
            "c",
            "--job-selector",
            "shard in (x,y)",
            "--controller-threads",
            "4",
            "--kube-api-qps=20.5",
            "--kube-api-burst=40",
            "--watch-timeout-seconds=120",
            "--list-page-size=100",
            "--metrics-bind-address=127.0.0.1:9090",
            "--health-probe-bind-address=[::1]:9091",
            "--leader-elect",
            "--leader-election-id=my-lease",
            "--leader-election-namespace=ops",
            "--lease-duration=30s",
            "--renew-deadline=20s",
            "--retry-period=500ms",
            "--gang-scheduler-name=volcano",
            "--service-mode=per-job",
            "--log-level=tfjob_operator=debug,kube=warn",
            "--log-format=json",
        ]);
        assert_eq!(args.namespaces, ["a", "b", "c"]);
        assert_eq!(
            args.job_selector
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("shard in (x,y)")
        );
        assert_eq!(args.concurrency, 4);
        assert_eq!(
            args.rate_limit(),
            RateLimit {
                qps: 20.5,
                burst: 40
            }
        );
        assert_eq!(args.watch_timeout_seconds, 120);
        assert_eq!(args.list_page_size, 100);
        assert_eq!(args.metrics_bind_address.to_string(), "127.0.0.1:9090");
        assert_eq!(args.health_probe_bind_address.to_string(), "[::1]:9091");
        assert!(args.leader_elect);
        assert_eq!(args.leader_election_id, "my-lease");
        assert_eq!(args.leader_election_namespace(), "ops");
        assert_eq!(
            args.lease_timings(),
            LeaseTimings {
                lease_duration: Duration::from_secs(30),
                renew_deadline: Duration::from_secs(20),
                retry_period: Duration::from_millis(500),
            }
        );
        assert_eq!(args.gang_scheduler_name, "volcano");
        assert_eq!(args.service_mode, ServiceMode::PerJob);
        assert_eq!(args.log_level, "tfjob_operator=debug,kube=warn");
        assert_eq!(args.log_format, LogFormat::Json);
        assert_eq!(args.validate(), Ok(()));
    }

    #[test]
    fn every_flag_parses_from_the_environment() {
        if !run_here_with(
            "every_flag_parses_from_the_environment",
            &[
                ("TFJOB_NAMESPACES", "team-b,team-a"),
                ("TFJOB_JOB_SELECTOR", "shard=1"),
                ("TFJOB_CONCURRENCY", "8"),
                ("TFJOB_KUBE_API_QPS", "50"),
                ("TFJOB_KUBE_API_BURST", "100"),
                ("TFJOB_WATCH_TIMEOUT_SECONDS", "60"),
                ("TFJOB_LIST_PAGE_SIZE", "50"),
                ("TFJOB_METRICS_BIND_ADDRESS", ":9000"),
                ("TFJOB_HEALTH_PROBE_BIND_ADDRESS", "0"),
                ("TFJOB_LEADER_ELECT", "true"),
                ("TFJOB_LEADER_ELECTION_ID", "lease-x"),
                ("TFJOB_LEADER_ELECTION_NAMESPACE", "kubeflow"),
                ("TFJOB_LEASE_DURATION", "1m"),
                ("TFJOB_RENEW_DEADLINE", "40s"),
                ("TFJOB_RETRY_PERIOD", "5s"),
                ("TFJOB_GANG_SCHEDULER_NAME", "scheduler-plugins-scheduler"),
                ("TFJOB_SERVICE_MODE", "per-job"),
                ("TFJOB_LOG_LEVEL", "debug"),
                ("TFJOB_LOG_FORMAT", "json"),
            ],
        ) {
            return;
        }
        let args = parse_ok(&[]);
        assert_eq!(
            args.namespace_scope_with(Some("ignored".into())),
            Ok(NamespaceScope::Only(vec!["team-a".into(), "team-b".into()]))
        );
        assert_eq!(
            args.job_selector
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("shard=1")
        );
        assert_eq!(args.concurrency, 8);
        assert_eq!(
            args.rate_limit(),
            RateLimit {
                qps: 50.0,
                burst: 100
            }
        );
        assert_eq!(args.watch_timeout_seconds, 60);
        assert_eq!(args.list_page_size, 50);
        assert_eq!(args.metrics_bind_address.to_string(), "0.0.0.0:9000");
        assert_eq!(args.health_probe_bind_address, BindAddress::Disabled);
        assert!(args.leader_elect);
        assert_eq!(args.leader_election_id, "lease-x");
        assert_eq!(args.leader_election_namespace(), "kubeflow");
        assert_eq!(args.lease_duration, Duration::from_secs(60));
        assert_eq!(args.renew_deadline, Duration::from_secs(40));
        assert_eq!(args.retry_period, Duration::from_secs(5));
        assert_eq!(args.gang_scheduler_name, "scheduler-plugins-scheduler");
        assert_eq!(args.service_mode, ServiceMode::PerJob);
        assert_eq!(args.log_level, "debug");
        assert_eq!(args.log_format, LogFormat::Json);
    }

    #[test]
    fn command_line_wins_over_environment() {
        if !run_here_with(
            "command_line_wins_over_environment",
            &[("TFJOB_CONCURRENCY", "8"), ("TFJOB_LEADER_ELECT", "true")],
        ) {
            return;
        }
        let args = parse_ok(&["--concurrency=2", "--leader-elect=false"]);
        assert_eq!(args.concurrency, 2);
        assert!(!args.leader_elect);
    }

    #[test]
    fn leader_elect_accepts_go_style_booleans() {
        if !run_here_with("leader_elect_accepts_go_style_booleans", &[]) {
            return;
        }
        assert!(parse_ok(&["--leader-elect"]).leader_elect);
        assert!(parse_ok(&["--leader-elect=true"]).leader_elect);
        assert!(!parse_ok(&["--leader-elect=false"]).leader_elect);
        assert!(!parse_ok(&["--leader-elect=0"]).leader_elect);
        // A bare flag must not swallow the next argument as its value.
        assert!(parse(&["--leader-elect", "true"]).is_err());
        assert!(parse(&["--leader-elect=maybe"]).is_err());
    }

    #[test]
    fn namespace_falls_back_to_kubeflow_namespace() {
        if !run_here_with("namespace_falls_back_to_kubeflow_namespace", &[]) {
            return;
        }
        let args = parse_ok(&[]);
        assert_eq!(
            args.namespace_scope_with(Some("kubeflow".into())),
            Ok(NamespaceScope::Only(vec!["kubeflow".into()]))
        );
        assert_eq!(
            args.namespace_scope_with(Some(String::new())),
            Ok(NamespaceScope::All)
        );
        let err = args
            .namespace_scope_with(Some("Bad_NS".into()))
            .expect_err("invalid fallback");
        assert!(err.to_string().contains("KUBEFLOW_NAMESPACE"), "{err}");

        // An explicit empty --namespace means all namespaces even when the fallback is set.
        let args = parse_ok(&["--namespace="]);
        assert_eq!(
            args.namespace_scope_with(Some("kubeflow".into())),
            Ok(NamespaceScope::All)
        );
    }

    #[test]
    fn namespace_lists_are_trimmed_sorted_and_deduplicated() {
        if !run_here_with("namespace_lists_are_trimmed_sorted_and_deduplicated", &[]) {
            return;
        }
        let args = parse_ok(&["--namespace", "b, a,,b", "--namespace=c"]);
        let scope = args.namespace_scope_with(None).expect("valid");
        assert_eq!(
            scope,
            NamespaceScope::Only(vec!["a".into(), "b".into(), "c".into()])
        );
        assert!(scope.contains("a"));
        assert!(!scope.contains("d"));
        assert!(NamespaceScope::All.contains("anything"));
    }

    #[test]
    fn invalid_namespace_names_the_flag() {
        if !run_here_with("invalid_namespace_names_the_flag", &[]) {
            return;
        }
        let args = parse_ok(&["--namespace=ok,Not_OK"]);
        let err = args.validate().expect_err("invalid namespace");
        assert!(
            matches!(&err, ConfigError::InvalidValue { flag: "--namespace", value, .. } if value == "Not_OK"),
            "{err:?}"
        );
    }

    #[test]
    fn bind_addresses_accept_go_forms() {
        let socket = |s: &str| s.parse::<BindAddress>().map(BindAddress::socket_addr);
        assert_eq!(
            socket(":8080"),
            Ok(Some("0.0.0.0:8080".parse().expect("addr")))
        );
        assert_eq!(
            socket("127.0.0.1:0"),
            Ok(Some("127.0.0.1:0".parse().expect("addr")))
        );
        assert_eq!(
            socket("localhost:9"),
            Ok(Some("127.0.0.1:9".parse().expect("addr")))
        );
        assert_eq!(
            socket("[::]:80"),
            Ok(Some("[::]:80".parse().expect("addr")))
        );
        assert_eq!(socket("0"), Ok(None));
        assert_eq!(socket(""), Ok(None));
        for bad in ["8080", "example.com:80", ":http", ":70000", "1.2.3:80"] {
            assert!(socket(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn bad_values_are_rejected_naming_the_flag() {
        if !run_here_with("bad_values_are_rejected_naming_the_flag", &[]) {
            return;
        }
        for (args, flag) in [
            (&["--concurrency=0"][..], "--concurrency"),
            (&["--controller-threads=-1"], "--concurrency"),
            (&["--kube-api-qps=-1"], "--kube-api-qps"),
            (&["--kube-api-qps=NaN"], "--kube-api-qps"),
            (&["--kube-api-burst=0"], "--kube-api-burst"),
            (&["--watch-timeout-seconds=0"], "--watch-timeout-seconds"),
            (&["--list-page-size=0"], "--list-page-size"),
            (&["--metrics-bind-address=8080"], "--metrics-bind-address"),
            (
                &["--health-probe-bind-address=x:1"],
                "--health-probe-bind-address",
            ),
            (&["--lease-duration=15"], "--lease-duration"),
            (&["--renew-deadline=-5s"], "--renew-deadline"),
            (&["--retry-period=soon"], "--retry-period"),
            (&["--service-mode=per-pod"], "--service-mode"),
            (&["--log-format=xml"], "--log-format"),
            (&["--log-level=foo=bar=baz"], "--log-level"),
            (&["--job-selector=a in (b"], "--job-selector"),
        ] {
            let err = parse(args).expect_err(&format!("{args:?} should fail"));
            let message = err.to_string();
            assert!(message.contains(flag), "{args:?}: {message}");
        }
    }

    #[test]
    fn bad_environment_values_are_rejected_naming_the_flag() {
        if !run_here_with(
            "bad_environment_values_are_rejected_naming_the_flag",
            &[("TFJOB_LEASE_DURATION", "forever")],
        ) {
            return;
        }
        let message = parse(&[]).expect_err("bad env").to_string();
        assert!(message.contains("--lease-duration"), "{message}");
    }

    #[test]
    fn lease_timings_must_be_ordered() {
        if !run_here_with("lease_timings_must_be_ordered", &[]) {
            return;
        }
        let args = parse_ok(&["--lease-duration=10s", "--renew-deadline=10s"]);
        let err = args
            .validate()
            .expect_err("renew deadline == lease duration");
        assert!(err.to_string().contains("--lease-duration"), "{err}");

        let args = parse_ok(&["--renew-deadline=2s", "--retry-period=2s"]);
        let err = args.validate().expect_err("retry period too long");
        assert!(err.to_string().contains("--retry-period"), "{err}");
    }

    #[test]
    fn lease_name_must_be_a_subdomain() {
        if !run_here_with("lease_name_must_be_a_subdomain", &[]) {
            return;
        }
        let args = parse_ok(&["--leader-election-id=Not A Name"]);
        let err = args.validate().expect_err("invalid lease name");
        assert!(err.to_string().contains("--leader-election-id"), "{err}");
    }

    #[test]
    fn leader_election_namespace_fallback_order() {
        if !run_here_with("leader_election_namespace_fallback_order", &[]) {
            return;
        }
        let args = parse_ok(&[]);
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.to_string())
            }
        };
        let no_file = || None;
        assert_eq!(
            args.leader_election_namespace_with(
                env(&[("POD_NAMESPACE", "a"), ("MY_POD_NAMESPACE", "b")]),
                no_file
            ),
            "a"
        );
        assert_eq!(
            args.leader_election_namespace_with(
                env(&[("POD_NAMESPACE", ""), ("MY_POD_NAMESPACE", "b")]),
                no_file
            ),
            "b"
        );
        assert_eq!(
            args.leader_election_namespace_with(env(&[]), || Some("from-sa\n".into())),
            "from-sa"
        );
        assert_eq!(
            args.leader_election_namespace_with(env(&[]), no_file),
            "default"
        );
        let args = parse_ok(&["--leader-election-namespace=explicit"]);
        assert_eq!(
            args.leader_election_namespace_with(env(&[("POD_NAMESPACE", "a")]), no_file),
            "explicit"
        );
    }

    /// The webhook settings as the operator would build them, with a fixed pod environment.
    fn webhook(args: &RunArgs) -> Result<WebhookSettings, ConfigError> {
        args.webhook_settings_with(
            |key| (key == "POD_NAMESPACE").then(|| "kubeflow".to_string()),
            || None,
        )
    }

    #[test]
    fn webhook_flags_have_upstream_defaults_and_are_off_by_default() {
        if !run_here_with(
            "webhook_flags_have_upstream_defaults_and_are_off_by_default",
            &[],
        ) {
            return;
        }
        let args = parse_ok(&[]);
        assert!(!args.webhook_enabled);
        assert!(args.webhook_settings().expect("valid").is_none());
        assert_eq!(args.webhook_server_port, 9443);
        assert_eq!(args.webhook_cert_mode, WebhookCertMode::SelfSigned);
        assert_eq!(
            args.webhook_cert_dir,
            std::path::PathBuf::from("/tmp/k8s-webhook-server/serving-certs")
        );
        assert_eq!(args.webhook_service_name, "tfjob-operator-webhook");
        assert_eq!(args.webhook_service_namespace, None);
        assert!(args.webhook_cert_extra_sans.is_empty());
        assert_eq!(args.webhook_cert_validity, Duration::from_secs(168 * 3600));
        assert_eq!(
            args.webhook_cert_rotate_before,
            Duration::from_secs(48 * 3600)
        );
        assert_eq!(
            args.validating_webhook_config_name,
            "validator.training-operator.kubeflow.org"
        );
        assert_eq!(
            args.mutating_webhook_config_name,
            "defaulter.training-operator.kubeflow.org"
        );
        assert!(!args.webhook_defaulting);

        let settings = webhook(&args).expect("valid");
        assert_eq!(settings.bind, "0.0.0.0:9443".parse().expect("addr"));
        assert!(!settings.defaulting);
        let CertSource::SelfSigned(certs) = settings.certs else {
            panic!("self-signed by default");
        };
        assert_eq!(
            certs.names.dns,
            [
                "tfjob-operator-webhook",
                "tfjob-operator-webhook.kubeflow",
                "tfjob-operator-webhook.kubeflow.svc",
                "tfjob-operator-webhook.kubeflow.svc.cluster.local"
            ],
            "the namespace falls back to POD_NAMESPACE"
        );
        assert_eq!(
            certs.validating_config,
            "validator.training-operator.kubeflow.org"
        );
        assert_eq!(
            certs.mutating_config,
            "defaulter.training-operator.kubeflow.org"
        );
    }

    #[test]
    fn webhook_flags_parse_from_the_command_line() {
        if !run_here_with("webhook_flags_parse_from_the_command_line", &[]) {
            return;
        }
        let args = parse_ok(&[
            "--webhook-enabled",
            "--webhook-server-port=10443",
            "--webhook-service-name=hook",
            "--webhook-service-namespace=ops",
            "--webhook-cert-extra-sans=127.0.0.1,hook.example.com",
            "--webhook-cert-validity=10s",
            "--webhook-cert-rotate-before=4s",
            "--validating-webhook-config-name=v.example.com",
            "--mutating-webhook-config-name=m.example.com",
            "--webhook-defaulting=true",
        ]);
        assert!(args.webhook_enabled);
        assert_eq!(args.validate(), Ok(()));
        let settings = webhook(&args).expect("valid");
        assert_eq!(settings.bind.port(), 10443);
        assert!(settings.defaulting);
        let CertSource::SelfSigned(certs) = settings.certs else {
            panic!("self-signed");
        };
        assert_eq!(certs.names.dns[2], "hook.ops.svc");
        assert_eq!(certs.names.dns[4], "hook.example.com");
        assert_eq!(
            certs.names.ips,
            ["127.0.0.1".parse::<std::net::IpAddr>().expect("ip")]
        );
        assert_eq!(certs.validity, Duration::from_secs(10));
        assert_eq!(certs.rotate_before, Duration::from_secs(4));
        assert_eq!(certs.validating_config, "v.example.com");
        assert_eq!(certs.mutating_config, "m.example.com");
    }

    #[test]
    fn webhook_flags_parse_from_the_environment() {
        if !run_here_with(
            "webhook_flags_parse_from_the_environment",
            &[
                ("TFJOB_WEBHOOK_ENABLED", "true"),
                ("TFJOB_WEBHOOK_SERVER_PORT", "8443"),
                ("TFJOB_WEBHOOK_CERT_MODE", "provided"),
                ("TFJOB_WEBHOOK_CERT_DIR", "/certs"),
                ("TFJOB_WEBHOOK_SERVICE_NAME", "svc"),
                ("TFJOB_WEBHOOK_SERVICE_NAMESPACE", "ns"),
                ("TFJOB_WEBHOOK_CERT_EXTRA_SANS", "10.0.0.1"),
                ("TFJOB_WEBHOOK_CERT_VALIDITY", "24h"),
                ("TFJOB_WEBHOOK_CERT_ROTATE_BEFORE", "8h"),
                ("TFJOB_VALIDATING_WEBHOOK_CONFIG_NAME", "v"),
                ("TFJOB_MUTATING_WEBHOOK_CONFIG_NAME", "m"),
                ("TFJOB_WEBHOOK_DEFAULTING", "true"),
            ],
        ) {
            return;
        }
        let args = parse_ok(&[]);
        assert!(args.webhook_enabled && args.webhook_defaulting);
        assert_eq!(args.webhook_server_port, 8443);
        assert_eq!(args.webhook_cert_mode, WebhookCertMode::Provided);
        assert_eq!(args.webhook_service_name, "svc");
        assert_eq!(args.webhook_service_namespace.as_deref(), Some("ns"));
        assert_eq!(args.webhook_cert_extra_sans, ["10.0.0.1"]);
        assert_eq!(args.webhook_cert_validity, Duration::from_secs(24 * 3600));
        assert_eq!(
            args.webhook_cert_rotate_before,
            Duration::from_secs(8 * 3600)
        );
        assert_eq!(args.validating_webhook_config_name, "v");
        assert_eq!(args.mutating_webhook_config_name, "m");
        let CertSource::Provided { dir, .. } = webhook(&args).expect("valid").certs else {
            panic!("provided");
        };
        assert_eq!(dir, std::path::PathBuf::from("/certs"));
    }

    #[test]
    fn bad_webhook_flags_are_rejected_naming_the_flag() {
        if !run_here_with("bad_webhook_flags_are_rejected_naming_the_flag", &[]) {
            return;
        }
        for (args, flag) in [
            (
                &[
                    "--webhook-enabled",
                    "--webhook-cert-validity=1h",
                    "--webhook-cert-rotate-before=1h",
                ][..],
                "--webhook-cert-validity/--webhook-cert-rotate-before",
            ),
            (
                &["--webhook-enabled", "--webhook-cert-rotate-before=0s"],
                "--webhook-cert-rotate-before",
            ),
            (
                &["--webhook-enabled", "--webhook-cert-validity=876000h"],
                "--webhook-cert-validity",
            ),
            (
                &["--webhook-enabled", "--webhook-service-name=Hook"],
                "--webhook-service-name",
            ),
            (
                &["--webhook-enabled", "--webhook-service-namespace=a_b"],
                "--webhook-service-namespace",
            ),
            (
                &["--webhook-enabled", "--webhook-cert-extra-sans=bad name"],
                "--webhook-cert-extra-sans",
            ),
            (
                &[
                    "--webhook-enabled",
                    "--validating-webhook-config-name=Not Valid",
                ],
                "--validating-webhook-config-name",
            ),
        ] {
            let err = parse_ok(args)
                .validate()
                .expect_err(&format!("{args:?} should fail"));
            assert!(err.to_string().contains(flag), "{args:?}: {err}");
        }
        // Unchecked while the webhook is off.
        assert_eq!(
            parse_ok(&["--webhook-service-name=Hook"]).validate(),
            Ok(())
        );
        for (args, flag) in [
            (&["--webhook-server-port=0"][..], "--webhook-server-port"),
            (&["--webhook-cert-mode=generated"], "--webhook-cert-mode"),
            (&["--webhook-cert-validity=7d"], "--webhook-cert-validity"),
            (&["--webhook-enabled=maybe"], "--webhook-enabled"),
        ] {
            let err = parse(args).expect_err(&format!("{args:?} should fail"));
            assert!(err.to_string().contains(flag), "{args:?}: {err}");
        }
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
