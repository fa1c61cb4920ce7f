//! The Kubernetes client's flags: the client-side rate limit and the request timeout.

use std::time::Duration;

use super::values::{ConfigError, parse_duration};
use crate::ops::client::RateLimit;

/// Flags of the API client.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Kubernetes API client")]
pub struct ClientArgs {
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

    /// How long any request but a watch may go without an answer before it fails (and its
    /// reconcile is retried with back-off). 0 disables the limit.
    #[arg(
        long,
        value_name = "DURATION",
        env = "TFJOB_REQUEST_TIMEOUT",
        default_value = "30s",
        value_parser = parse_duration
    )]
    pub request_timeout: Duration,
}

impl ClientArgs {
    /// Nothing to check beyond what each flag's parser checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }

    /// The request timeout; `None` when disabled (`--request-timeout=0s`).
    pub fn request_timeout(&self) -> Option<Duration> {
        (!self.request_timeout.is_zero()).then_some(self.request_timeout)
    }

    /// The client-side API rate limit (disabled when `--kube-api-qps` is 0).
    pub fn rate_limit(&self) -> RateLimit {
        RateLimit {
            qps: self.kube_api_qps,
            burst: self.kube_api_burst,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{assert_each_rejected, parse_ok, run_here_with};

    #[test]
    fn rate_limit_flags() {
        if !run_here_with(module_path!(), "rate_limit_flags", &[]) {
            return;
        }
        let defaults: ClientArgs = parse_ok(&[]);
        assert_eq!((defaults.kube_api_qps, defaults.kube_api_burst), (0.0, 30));
        assert!(!defaults.rate_limit().is_enabled());
        let args: ClientArgs = parse_ok(&["--kube-api-qps=20.5", "--kube-api-burst=40"]);
        assert_eq!(
            args.rate_limit(),
            RateLimit {
                qps: 20.5,
                burst: 40
            }
        );
        assert_eq!(defaults.request_timeout(), Some(Duration::from_secs(30)));
        let args: ClientArgs = parse_ok(&["--request-timeout=1m"]);
        assert_eq!(args.request_timeout(), Some(Duration::from_secs(60)));
        let args: ClientArgs = parse_ok(&["--request-timeout=0s"]);
        assert_eq!(args.request_timeout(), None, "0 disables it");
        assert_each_rejected::<ClientArgs>(&[
            (&["--kube-api-qps=-1"][..], "--kube-api-qps"),
            (&["--kube-api-qps=NaN"], "--kube-api-qps"),
            (&["--kube-api-burst=0"], "--kube-api-burst"),
            (&["--request-timeout=soon"], "--request-timeout"),
            (&["--request-timeout=30"], "--request-timeout"),
        ]);
    }

    #[test]
    fn rate_limit_from_the_environment() {
        if !run_here_with(
            module_path!(),
            "rate_limit_from_the_environment",
            &[
                ("TFJOB_KUBE_API_QPS", "50"),
                ("TFJOB_KUBE_API_BURST", "100"),
            ],
        ) {
            return;
        }
        let args: ClientArgs = parse_ok(&[]);
        assert_eq!(
            args.rate_limit(),
            RateLimit {
                qps: 50.0,
                burst: 100
            }
        );
    }
}
