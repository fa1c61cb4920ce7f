//! The flags of training-operator v1.9's `main.go` that this operator has no flag of its own
//! for, so that an existing Deployment's arguments keep working when only the image changes.
//!
//! | upstream flag | here |
//! |---|---|
//! | `--enable-scheme` | accepted when the set is exactly `tfjob` (any letter case); anything else is an error |
//! | `--zap-log-level` | the log level, unless `--log-level` is given |
//! | `--zap-encoder` | the log format (`json` or `console` = text), unless `--log-format` is given |
//! | `--zap-devel`, `--zap-stacktrace-level`, `--zap-time-encoding` | accepted, ignored (one warning) |
//! | `--webhook-secret-name` | accepted, ignored: certificates are self-signed in memory or read from files |
//! | `--pytorch-init-container-*`, `--mpi-kubectl-delivery-image` | accepted, ignored: other frameworks |
//! | `--kubeconfig` (controller-runtime's) | the kubeconfig to use instead of `KUBECONFIG` and the defaults |
//!
//! `--metrics-bind-address`, `--health-probe-bind-address`, `--leader-elect`,
//! `--leader-election-id`, `--namespace`, `--gang-scheduler-name`, `--controller-threads`,
//! `--kube-api-qps`, `--kube-api-burst`, `--webhook-server-port` and `--webhook-service-name`
//! are this operator's own flags with upstream's names.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;

use super::values::ConfigError;
use crate::ops::telemetry::LogFormat;

/// Upstream's flags without an equivalent of their own (see the module docs).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Accepted for training-operator compatibility")]
pub struct UpstreamArgs {
    /// Upstream's framework switch. Only `tfjob` (any letter case, repeatable) is accepted: this
    /// operator runs TFJobs and nothing else.
    #[arg(long = "enable-scheme", value_name = "SCHEME", value_delimiter = ',')]
    pub enable_scheme: Vec<String>,

    /// Upstream's log level (`debug`, `info`, `error`, `panic`, or a verbosity number); used
    /// when --log-level is not given.
    #[arg(long, value_name = "LEVEL")]
    pub zap_log_level: Option<String>,

    /// Upstream's log encoder (`json` or `console`); used when --log-format is not given.
    #[arg(long, value_name = "ENCODER", value_parser = ["json", "console"])]
    pub zap_encoder: Option<String>,

    /// Accepted and ignored.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        value_parser = BoolishValueParser::new()
    )]
    pub zap_devel: Option<bool>,

    /// Accepted and ignored.
    #[arg(long, value_name = "LEVEL")]
    pub zap_stacktrace_level: Option<String>,

    /// Accepted and ignored.
    #[arg(long, value_name = "ENCODING")]
    pub zap_time_encoding: Option<String>,

    /// Accepted and ignored: the webhook's certificates are self-signed in memory or read from
    /// --webhook-cert-dir.
    #[arg(long, value_name = "NAME")]
    pub webhook_secret_name: Option<String>,

    /// Accepted and ignored (PyTorchJob).
    #[arg(long, value_name = "IMAGE")]
    pub pytorch_init_container_image: Option<String>,

    /// Accepted and ignored (PyTorchJob).
    #[arg(long, value_name = "FILE")]
    pub pytorch_init_container_template_file: Option<String>,

    /// Accepted and ignored (PyTorchJob).
    #[arg(long, value_name = "N")]
    pub pytorch_init_container_max_tries: Option<String>,

    /// Accepted and ignored (MPIJob).
    #[arg(long, value_name = "IMAGE")]
    pub mpi_kubectl_delivery_image: Option<String>,

    /// Kubeconfig file to use (controller-runtime's flag); unset: KUBECONFIG, then
    /// ~/.kube/config, then the in-cluster service account.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

impl UpstreamArgs {
    /// Only TFJobs can be enabled.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let others: Vec<&str> = self
            .enable_scheme
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("tfjob"))
            .collect();
        if others.is_empty() {
            return Ok(());
        }
        Err(ConfigError::InvalidValue {
            flag: "--enable-scheme",
            value: others.join(","),
            reason: "this operator runs TFJobs only; pass --enable-scheme=tfjob (or nothing) and \
                     keep training-operator, with --enable-scheme for the other frameworks, for \
                     the rest"
                .into(),
        })
    }

    /// The log filter `--zap-log-level` asks for, if given: zap's names, or a verbosity (`1`
    /// and up are debug).
    pub fn log_level(&self) -> Option<&'static str> {
        let level = self.zap_log_level.as_deref()?.trim();
        Some(match level.to_ascii_lowercase().as_str() {
            "debug" => "debug",
            "info" => "info",
            "warn" => "warn",
            "error" | "dpanic" | "panic" | "fatal" => "error",
            number => match number.parse::<i32>() {
                Ok(n) if n > 0 => "debug",
                _ => "info",
            },
        })
    }

    /// The log format `--zap-encoder` asks for, if given.
    pub fn log_format(&self) -> Option<LogFormat> {
        match self.zap_encoder.as_deref()? {
            "json" => Some(LogFormat::Json),
            _ => Some(LogFormat::Text),
        }
    }

    /// The upstream flags given that change nothing here, for one warning at start.
    pub fn ignored(&self) -> Vec<&'static str> {
        let given = [
            ("--zap-devel", self.zap_devel.is_some()),
            (
                "--zap-stacktrace-level",
                self.zap_stacktrace_level.is_some(),
            ),
            ("--zap-time-encoding", self.zap_time_encoding.is_some()),
            ("--webhook-secret-name", self.webhook_secret_name.is_some()),
            (
                "--pytorch-init-container-image",
                self.pytorch_init_container_image.is_some(),
            ),
            (
                "--pytorch-init-container-template-file",
                self.pytorch_init_container_template_file.is_some(),
            ),
            (
                "--pytorch-init-container-max-tries",
                self.pytorch_init_container_max_tries.is_some(),
            ),
            (
                "--mpi-kubectl-delivery-image",
                self.mpi_kubectl_delivery_image.is_some(),
            ),
        ];
        given
            .into_iter()
            .filter_map(|(flag, set)| set.then_some(flag))
            .collect()
    }
}

/// Go's flag package also accepts `-flag` for `--flag`; upstream's manifests and scripts use
/// both. Rewrites single-dash long flags (`-leader-elect=true`) to the double-dash form clap
/// parses; short flags (`-h`, `-V`) and values are left alone.
pub fn go_style_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest_are_values = false;
    for arg in args {
        if rest_are_values || arg == "--" {
            rest_are_values = true;
            out.push(arg);
            continue;
        }
        let long_single_dash = arg
            .strip_prefix('-')
            .filter(|rest| !rest.starts_with('-'))
            .and_then(|rest| rest.split('=').next())
            .is_some_and(|name| {
                name.len() > 1 && name.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            });
        if long_single_dash {
            out.push(format!("-{arg}"));
        } else {
            out.push(arg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{parse_ok, run_here_with};

    #[test]
    fn only_tfjob_may_be_enabled() {
        if !run_here_with(module_path!(), "only_tfjob_may_be_enabled", &[]) {
            return;
        }
        let cases: [(&[&str], bool); 6] = [
            (&[], true),
            (&["--enable-scheme=tfjob"], true),
            (&["--enable-scheme=TFJob", "--enable-scheme", "tfjob"], true),
            (&["--enable-scheme=tfjob,pytorchjob"], false),
            (&["--enable-scheme=PyTorchJob"], false),
            (&["--enable-scheme=mxjob", "--enable-scheme=tfjob"], false),
        ];
        for (args, ok) in cases {
            let result = parse_ok::<UpstreamArgs>(args).validate();
            assert_eq!(result.is_ok(), ok, "{args:?}: {result:?}");
            if let Err(err) = result {
                let message = err.to_string();
                assert!(
                    message.contains("--enable-scheme") && message.contains("TFJobs only"),
                    "{message}"
                );
            }
        }
    }

    #[test]
    fn zap_flags_map_to_the_log_settings() {
        if !run_here_with(module_path!(), "zap_flags_map_to_the_log_settings", &[]) {
            return;
        }
        let cases: [(&[&str], Option<&str>, Option<LogFormat>); 6] = [
            (&[], None, None),
            (&["--zap-log-level=debug"], Some("debug"), None),
            (
                &["--zap-log-level=5", "--zap-encoder=json"],
                Some("debug"),
                Some(LogFormat::Json),
            ),
            (
                &["--zap-log-level", "error", "--zap-encoder=console"],
                Some("error"),
                Some(LogFormat::Text),
            ),
            (&["--zap-log-level=panic"], Some("error"), None),
            (&["--zap-log-level=0"], Some("info"), None),
        ];
        for (args, level, format) in cases {
            let upstream: UpstreamArgs = parse_ok(args);
            assert_eq!(
                (upstream.log_level(), upstream.log_format()),
                (level, format),
                "{args:?}"
            );
        }
    }

    #[test]
    fn flags_of_other_frameworks_are_accepted_and_named_as_ignored() {
        if !run_here_with(
            module_path!(),
            "flags_of_other_frameworks_are_accepted_and_named_as_ignored",
            &[],
        ) {
            return;
        }
        let upstream: UpstreamArgs = parse_ok(&[
            "--zap-devel",
            "--zap-stacktrace-level=panic",
            "--zap-time-encoding=iso8601",
            "--webhook-secret-name=training-operator-webhook-cert",
            "--pytorch-init-container-image=alpine:3.10",
            "--pytorch-init-container-template-file=/etc/config/initContainer.yaml",
            "--pytorch-init-container-max-tries=100",
            "--mpi-kubectl-delivery-image=kubeflow/kubectl-delivery:latest",
            "--kubeconfig=/etc/kube/config",
        ]);
        assert_eq!(upstream.ignored().len(), 8, "{:?}", upstream.ignored());
        assert_eq!(upstream.kubeconfig, Some(PathBuf::from("/etc/kube/config")));
        assert!(parse_ok::<UpstreamArgs>(&[]).ignored().is_empty());
    }

    #[test]
    fn go_style_single_dash_flags_become_double_dash() {
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: [(&[&str], &[&str]); 5] = [
            (&["-leader-elect=true"], &["--leader-elect=true"]),
            (&["-namespace", "kubeflow"], &["--namespace", "kubeflow"]),
            (&["--zap-devel", "-h", "-V"], &["--zap-devel", "-h", "-V"]),
            (&["-kube-api-qps", "20"], &["--kube-api-qps", "20"]),
            (&["--", "-not-a-flag"], &["--", "-not-a-flag"]),
        ];
        for (given, want) in cases {
            assert_eq!(go_style_args(args(given)), args(want), "{given:?}");
        }
    }
}
