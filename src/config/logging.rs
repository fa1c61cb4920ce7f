//! Log level and format.

use super::upstream::UpstreamArgs;
use crate::ops::telemetry::LogFormat;

/// Flags of the logs.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Logging")]
pub struct LogArgs {
    /// Log filter as an EnvFilter directive (`info`, `tfjob_operator=debug,kube=warn`, …).
    /// RUST_LOG, when set, overrides it.
    /// Unset: upstream's --zap-log-level if given, else `info`.
    #[arg(
        long,
        value_name = "FILTER",
        env = "TFJOB_LOG_LEVEL",
        value_parser = parse_log_level
    )]
    pub log_level: Option<String>,

    /// Log output format (default `text`; upstream's --zap-encoder when given and this is not).
    #[arg(long, value_name = "FORMAT", env = "TFJOB_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

impl LogArgs {
    /// The log filter: this flag, else upstream's `--zap-log-level`, else `info`.
    pub fn level(&self, upstream: &UpstreamArgs) -> String {
        self.log_level
            .clone()
            .or_else(|| upstream.log_level().map(String::from))
            .unwrap_or_else(|| "info".into())
    }

    /// The log format: this flag, else upstream's `--zap-encoder`, else text.
    pub fn format(&self, upstream: &UpstreamArgs) -> LogFormat {
        self.log_format
            .or_else(|| upstream.log_format())
            .unwrap_or(LogFormat::Text)
    }
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
        let none: UpstreamArgs = parse_ok(&[]);
        let defaults: LogArgs = parse_ok(&[]);
        assert_eq!(
            (defaults.level(&none).as_str(), defaults.format(&none)),
            ("info", LogFormat::Text)
        );
        let args: LogArgs = parse_ok(&[
            "--log-level=tfjob_operator=debug,kube=warn",
            "--log-format=json",
        ]);
        assert_eq!(args.level(&none), "tfjob_operator=debug,kube=warn");
        assert_eq!(args.format(&none), LogFormat::Json);
        // Upstream's zap flags apply only where ours are not given.
        let zap: UpstreamArgs = parse_ok(&["--zap-log-level=debug", "--zap-encoder=json"]);
        assert_eq!(
            (defaults.level(&zap).as_str(), defaults.format(&zap)),
            ("debug", LogFormat::Json)
        );
        let ours: LogArgs = parse_ok(&["--log-level=warn", "--log-format=text"]);
        assert_eq!(
            (ours.level(&zap).as_str(), ours.format(&zap)),
            ("warn", LogFormat::Text)
        );
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
        let none: UpstreamArgs = parse_ok(&[]);
        let args: LogArgs = parse_ok(&[]);
        assert_eq!(
            (args.level(&none).as_str(), args.format(&none)),
            ("debug", LogFormat::Json)
        );
    }
}
