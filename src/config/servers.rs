//! The addresses of the metrics and health-probe servers.

use std::time::Duration;

use super::values::{BindAddress, parse_duration};

/// Flags of the HTTP servers.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Metrics and health probes")]
pub struct ServerArgs {
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

    /// /healthz fails when jobs wait or reconciles run and none finished for this long (the
    /// kubelet then restarts the container). 0 disables the check.
    #[arg(
        long,
        value_name = "DURATION",
        env = "TFJOB_STALL_TIMEOUT",
        default_value = "5m",
        value_parser = parse_duration
    )]
    pub stall_timeout: Duration,
}

impl ServerArgs {
    /// The stall limit of the liveness probe; `None` when disabled.
    pub fn stall_after(&self) -> Option<Duration> {
        (!self.stall_timeout.is_zero()).then_some(self.stall_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{assert_each_rejected, parse_ok, run_here_with};

    #[test]
    fn server_addresses() {
        if !run_here_with(module_path!(), "server_addresses", &[]) {
            return;
        }
        let defaults: ServerArgs = parse_ok(&[]);
        assert_eq!(defaults.metrics_bind_address.to_string(), "0.0.0.0:8080");
        assert_eq!(
            defaults.health_probe_bind_address.to_string(),
            "0.0.0.0:8081"
        );
        let args: ServerArgs = parse_ok(&[
            "--metrics-bind-address=127.0.0.1:9090",
            "--health-probe-bind-address=[::1]:9091",
        ]);
        assert_eq!(args.metrics_bind_address.to_string(), "127.0.0.1:9090");
        assert_eq!(args.health_probe_bind_address.to_string(), "[::1]:9091");
        assert_eq!(defaults.stall_after(), Some(Duration::from_secs(300)));
        let off: ServerArgs = parse_ok(&["--stall-timeout=0s"]);
        assert_eq!(off.stall_after(), None);
        assert_each_rejected::<ServerArgs>(&[
            (
                &["--metrics-bind-address=8080"][..],
                "--metrics-bind-address",
            ),
            (
                &["--health-probe-bind-address=x:1"],
                "--health-probe-bind-address",
            ),
        ]);
    }

    #[test]
    fn server_addresses_from_the_environment() {
        if !run_here_with(
            module_path!(),
            "server_addresses_from_the_environment",
            &[
                ("TFJOB_METRICS_BIND_ADDRESS", ":9000"),
                ("TFJOB_HEALTH_PROBE_BIND_ADDRESS", "0"),
            ],
        ) {
            return;
        }
        let args: ServerArgs = parse_ok(&[]);
        assert_eq!(args.metrics_bind_address.to_string(), "0.0.0.0:9000");
        assert_eq!(args.health_probe_bind_address, BindAddress::Disabled);
    }
}
