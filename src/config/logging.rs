//! Log level and format.

use crate::ops::telemetry::LogFormat;

/// Flags of the logs.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Logging")]
pub struct LogArgs {
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
}

fn parse_log_level(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(s)
        .map(|_| s.to_string())
        .map_err(|e| format!("{s:?} is not an EnvFilter directive (e.g. info or tfjob_operator=debug,kube=warn): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{assert_each_rejected, parse_ok, run_here_with};

    #[test]
    fn log_flags() {
        if !run_here_with(module_path!(), "log_flags", &[]) {
            return;
        }
        let defaults: LogArgs = parse_ok(&[]);
        assert_eq!(
            (defaults.log_level.as_str(), defaults.log_format),
            ("info", LogFormat::Text)
        );
        let args: LogArgs = parse_ok(&[
            "--log-level=tfjob_operator=debug,kube=warn",
            "--log-format=json",
        ]);
        assert_eq!(args.log_level, "tfjob_operator=debug,kube=warn");
        assert_eq!(args.log_format, LogFormat::Json);
        assert_each_rejected::<LogArgs>(&[
            (&["--log-format=xml"][..], "--log-format"),
            (&["--log-level=foo=bar=baz"], "--log-level"),
        ]);
    }

    #[test]
    fn log_flags_from_the_environment() {
        if !run_here_with(
            module_path!(),
            "log_flags_from_the_environment",
            &[("TFJOB_LOG_LEVEL", "debug"), ("TFJOB_LOG_FORMAT", "json")],
        ) {
            return;
        }
        let args: LogArgs = parse_ok(&[]);
        assert_eq!(
            (args.log_level.as_str(), args.log_format),
            ("debug", LogFormat::Json)
        );
    }
}
