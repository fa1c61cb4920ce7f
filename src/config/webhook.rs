//! The admission webhook: whether it runs, its port and Service, where its certificate comes
//! from, and the webhook configurations whose caBundle it keeps.

use std::{net::SocketAddr, time::Duration};

use clap::builder::BoolishValueParser;

use super::values::{
    ConfigError, SERVICE_ACCOUNT_NAMESPACE_FILE, check_dns_label, check_namespace, check_subdomain,
    parse_duration, pod_namespace,
};
use crate::webhook::{CertSource, Placement, SelfSignedSettings, SubjectNames, WebhookSettings};

/// Where upstream mounts the webhook certificate Secret.
pub const DEFAULT_WEBHOOK_CERT_DIR: &str = "/tmp/k8s-webhook-server/serving-certs";
/// The webhook Service of the chart and kustomize base.
pub const DEFAULT_WEBHOOK_SERVICE_NAME: &str = "tfjob-operator-webhook";
/// The chart's ValidatingWebhookConfiguration: this operator's own, never upstream's
/// (`validator.training-operator.kubeflow.org`), whose caBundle a training-operator kept for
/// other frameworks manages.
pub const DEFAULT_VALIDATING_WEBHOOK_CONFIG_NAME: &str = "tfjob-operator-validator";
/// The defaulting webhook's configuration (upstream has none).
pub const DEFAULT_MUTATING_WEBHOOK_CONFIG_NAME: &str = "tfjob-operator-defaulter";
/// How often provided certificate files are re-read.
const WEBHOOK_CERT_RELOAD_INTERVAL: Duration = Duration::from_secs(10);
/// How often the self-signed CA's presence in the caBundle is re-checked.
const WEBHOOK_CA_BUNDLE_RESYNC: Duration = Duration::from_secs(30);

/// Flags of the admission webhook.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Admission webhook")]
pub struct WebhookArgs {
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

impl WebhookArgs {
    /// Checks the webhook's flags (only when it is enabled).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.webhook_enabled {
            self.webhook_settings_with(|_| None, || None)?;
        }
        Ok(())
    }

    /// The webhook's settings, or `None` when `--webhook-enabled` is off. `placement` comes
    /// from the watch flags (service mode, cluster domain).
    pub fn settings(&self, placement: Placement) -> Result<Option<WebhookSettings>, ConfigError> {
        if !self.webhook_enabled {
            return Ok(None);
        }
        self.webhook_settings_with(
            |key| std::env::var(key).ok(),
            || std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE_FILE).ok(),
        )
        .map(|settings| {
            Some(WebhookSettings {
                placement,
                ..settings
            })
        })
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
            placement: Placement::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{assert_each_rejected, parse_ok, run_here_with};

    /// The webhook settings as the operator would build them, with a fixed pod environment.
    fn webhook(args: &WebhookArgs) -> Result<WebhookSettings, ConfigError> {
        args.webhook_settings_with(
            |key| (key == "POD_NAMESPACE").then(|| "kubeflow".to_string()),
            || None,
        )
    }

    #[test]
    fn webhook_flags_have_upstream_defaults_and_are_off_by_default() {
        if !run_here_with(
            module_path!(),
            "webhook_flags_have_upstream_defaults_and_are_off_by_default",
            &[],
        ) {
            return;
        }
        let args: WebhookArgs = parse_ok(&[]);
        assert!(!args.webhook_enabled);
        assert!(
            args.settings(Placement::default())
                .expect("valid")
                .is_none()
        );
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
            "tfjob-operator-validator"
        );
        assert_eq!(
            args.mutating_webhook_config_name,
            "tfjob-operator-defaulter"
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
        assert_eq!(certs.validating_config, "tfjob-operator-validator");
        assert_eq!(certs.mutating_config, "tfjob-operator-defaulter");
    }

    #[test]
    fn webhook_flags_parse_from_the_command_line() {
        if !run_here_with(
            module_path!(),
            "webhook_flags_parse_from_the_command_line",
            &[],
        ) {
            return;
        }
        let args: WebhookArgs = parse_ok(&[
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
            module_path!(),
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
        let args: WebhookArgs = parse_ok(&[]);
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
        if !run_here_with(
            module_path!(),
            "bad_webhook_flags_are_rejected_naming_the_flag",
            &[],
        ) {
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
            let err = parse_ok::<WebhookArgs>(args)
                .validate()
                .expect_err(&format!("{args:?} should fail"));
            assert!(err.to_string().contains(flag), "{args:?}: {err}");
        }
        // Unchecked while the webhook is off.
        assert_eq!(
            parse_ok::<WebhookArgs>(&["--webhook-service-name=Hook"]).validate(),
            Ok(())
        );
        assert_each_rejected::<WebhookArgs>(&[
            (&["--webhook-server-port=0"][..], "--webhook-server-port"),
            (&["--webhook-cert-mode=generated"], "--webhook-cert-mode"),
            (&["--webhook-cert-validity=7d"], "--webhook-cert-validity"),
            (&["--webhook-enabled=maybe"], "--webhook-enabled"),
        ]);
    }
}
