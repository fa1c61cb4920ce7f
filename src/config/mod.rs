//! Configuration of the `run` command: flag groups, each with its checks, the settings it
//! produces and its tests, flattened into [`RunArgs`].
//!
//! | group | flags | produces |
//! |---|---|---|
//! | [`watch`] | namespaces, job selector, concurrency, watch/list, service mode, gang scheduler | `controller::Settings` |
//! | [`client`] | `--kube-api-qps`, `--kube-api-burst` | `ops::client::RateLimit` |
//! | [`leader`] | `--leader-elect*`, Lease timings | `ops::leader::LeaseTimings`, the Lease's namespace |
//! | [`webhook`] | `--webhook-*` | `webhook::WebhookSettings` |
//! | [`servers`] | metrics and probe addresses | two [`BindAddress`]es |
//! | [`logging`] | `--log-level`, `--log-format` | the tracing subscriber's filter and format |
//! | [`upstream`] | training-operator v1.9's other flags | mapped (`--zap-*`, `--kubeconfig`), checked (`--enable-scheme`) or ignored with a warning |
//!
//! Flag names and defaults follow upstream training-operator where one exists
//! (`--metrics-bind-address`, `--leader-election-id`, …) so an existing Deployment's args keep
//! working; Go-style values (`:8080`, `15s`, `--leader-elect=true`) are accepted. Every flag can
//! also be set through the environment variable named in its help; the command line wins.
//! This module only parses and checks; it starts nothing.

pub mod client;
pub mod leader;
pub mod logging;
mod selector;
pub mod servers;
pub mod upstream;
pub mod values;
pub mod watch;
pub mod webhook;

#[cfg(test)]
pub(crate) mod testing;

pub use client::ClientArgs;
pub use leader::{DEFAULT_LEADER_ELECTION_ID, LeaderArgs};
pub use logging::LogArgs;
pub use selector::{SelectorError, parse_label_selector};
pub use servers::ServerArgs;
pub use upstream::{UpstreamArgs, go_style_args};
pub use values::{BindAddress, ConfigError, parse_duration};
pub use watch::{NamespaceScope, WatchArgs};
pub use webhook::{WebhookArgs, WebhookCertMode};

/// Flags of the `run` command, by group.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub watch: WatchArgs,
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub leader: LeaderArgs,
    #[command(flatten)]
    pub webhook: WebhookArgs,
    #[command(flatten)]
    pub servers: ServerArgs,
    #[command(flatten)]
    pub logging: LogArgs,
    #[command(flatten)]
    pub upstream: UpstreamArgs,
}

impl RunArgs {
    /// Checks everything clap cannot check per flag, group by group. Call once at start-up.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.watch.validate()?;
        self.client.validate()?;
        self.leader.validate()?;
        self.webhook.validate()?;
        self.upstream.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{ENV_VARS, parse, parse_ok, run_here_with};
    use super::*;

    #[test]
    fn the_groups_together_parse_a_full_command_line() {
        if !run_here_with(
            module_path!(),
            "the_groups_together_parse_a_full_command_line",
            &[],
        ) {
            return;
        }
        let args: RunArgs = parse_ok(&[
            "--namespace=a",
            "--concurrency=4",
            "--kube-api-qps=5",
            "--leader-elect",
            "--webhook-enabled",
            "--metrics-bind-address=0",
            "--log-format=json",
        ]);
        assert_eq!(args.watch.namespaces, ["a"]);
        assert_eq!(args.watch.concurrency, 4);
        assert_eq!(args.client.kube_api_qps, 5.0);
        assert!(args.leader.leader_elect);
        assert!(args.webhook.webhook_enabled);
        assert_eq!(args.servers.metrics_bind_address, BindAddress::Disabled);
        assert_eq!(args.logging.log_format, Some(crate::ops::LogFormat::Json));
        assert_eq!(args.validate(), Ok(()));
        assert!(parse::<RunArgs>(&["--no-such-flag"]).is_err());
    }

    #[test]
    fn validation_reaches_every_group() {
        if !run_here_with(module_path!(), "validation_reaches_every_group", &[]) {
            return;
        }
        for (args, flag) in [
            (&["--namespace=Bad_NS"][..], "--namespace"),
            (&["--leader-election-id=Not A Name"], "--leader-election-id"),
            (
                &["--webhook-enabled", "--webhook-service-name=Hook"],
                "--webhook-service-name",
            ),
        ] {
            let err = parse_ok::<RunArgs>(args).validate().expect_err("invalid");
            assert!(err.to_string().contains(flag), "{args:?}: {err}");
        }
    }

    /// Every flag's environment variable is known to the test harness (and so documented here).
    #[test]
    fn every_environment_variable_is_listed() {
        let command = <RunArgs as clap::Args>::augment_args(clap::Command::new("t"));
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                let env = env.to_string_lossy();
                assert!(
                    ENV_VARS.contains(&env.as_ref()),
                    "{env} missing from ENV_VARS"
                );
            }
        }
    }
}
