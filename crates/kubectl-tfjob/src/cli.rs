//! The command line, in kubectl's words: global flags first, one subcommand per verb.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Work with TFJobs (kubeflow.org/v1) the way kubectl works with built-in resources.
#[derive(Parser, Debug)]
#[command(
    name = "kubectl-tfjob",
    bin_name = "kubectl tfjob",
    version,
    about = "Work with TFJobs (kubeflow.org/v1): list, describe, wait for, suspend, resume and delete them.",
    after_help = "Examples:\n  \
        # TFJobs of the current namespace, then of every namespace\n  \
        kubectl tfjob list\n  \
        kubectl tfjob list -A\n\n  \
        # Why a job failed: conditions, replicas, pods and events\n  \
        kubectl tfjob describe mnist\n\n  \
        # Every replica's logs, followed live, each line prefixed [worker-0]\n  \
        kubectl tfjob logs mnist -f\n\n  \
        # Wait until a job succeeds (exit 1 after the timeout)\n  \
        kubectl tfjob wait mnist --for=condition=Succeeded --timeout=10m"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// kubectl's connection flags.
#[derive(Args, Debug, Clone, Default)]
pub struct Global {
    /// If present, the namespace scope for this request (default: the context's, else "default")
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Path to the kubeconfig file to use (default: $KUBECONFIG, else ~/.kube/config)
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The name of the kubeconfig context to use
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List TFJobs: NAME, STATE, REPLICAS (running/wanted per type), RESTARTS, AGE, DURATION, REASON
    #[command(visible_alias = "ls", visible_alias = "get")]
    List(ListArgs),
    /// Show a TFJob's conditions, replicas, pods and events
    Describe(NameArg),
    /// Print the logs of a TFJob's replicas, each line prefixed with its replica ([worker-0])
    Logs(LogsArgs),
    /// Wait until a TFJob has a condition (or is deleted)
    Wait(WaitArgs),
    /// Suspend a TFJob: its pods are deleted, the TFJob stays (spec.runPolicy.suspend=true)
    Suspend(NameArg),
    /// Resume a suspended TFJob (spec.runPolicy.suspend=false)
    Resume(NameArg),
    /// Delete a TFJob (its pods and Services are garbage-collected)
    Delete(DeleteArgs),
    /// Print a shell completion script (bash, zsh or fish)
    Completion(CompletionArgs),
}

#[derive(Args, Debug)]
pub struct NameArg {
    /// The TFJob's name
    pub name: String,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ListArgs {
    /// List TFJobs of every namespace
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Label selector (labelSelector), e.g. -l team=a,env!=prod
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Field selector (fieldSelector): metadata.name or metadata.namespace, e.g. metadata.name=mnist
    #[arg(long, value_name = "SELECTOR")]
    pub field_selector: Option<String>,
    /// At most this many TFJobs (limit); a continue token is printed when there are more
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Continue a limited list from this token (continue)
    #[arg(long = "continue", value_name = "TOKEN", requires = "limit")]
    pub continue_token: Option<String>,
    /// After listing, watch for changes (watch=true) and print each
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Watch from this resourceVersion instead of listing first
    #[arg(long, value_name = "RV", requires = "watch")]
    pub resource_version: Option<String>,
    /// End the watch after this long (timeoutSeconds), e.g. 30s or 5m
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "watch")]
    pub timeout: Option<Duration>,
    /// Output format
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Output>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    Name,
    Wide,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The TFJob's name
    pub name: String,
    /// Only this replica type (ps, worker, chief, master, evaluator)
    #[arg(long, value_name = "TYPE")]
    pub replica: Option<String>,
    /// Only this replica index
    #[arg(long, value_name = "N")]
    pub index: Option<i32>,
    /// Follow the logs of every replica at once, until they end
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The last N lines of each replica
    #[arg(long, value_name = "N")]
    pub tail: Option<i64>,
    /// Only lines newer than this, e.g. 5m
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub since: Option<Duration>,
    /// The container
    #[arg(short = 'c', long, default_value = "tensorflow")]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    /// The TFJob's name
    pub name: String,
    /// condition=<Type>[=<True|False>] (Created, Running, Restarting, Succeeded, Failed,
    /// Suspended), or delete
    #[arg(long = "for", value_name = "CONDITION", value_parser = parse_wait_for)]
    pub wait_for: WaitFor,
    /// Give up after this long (exit 1)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitFor {
    Condition { type_: String, status: String },
    Delete,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// The TFJob's name
    pub name: String,
    /// Wait until the TFJob is gone
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub timeout: Duration,
}

#[derive(Args, Debug)]
pub struct CompletionArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `30s`, `5m`, `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let parsed: jiff::SignedDuration = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write e.g. 30s, 5m or 1h30m"))?;
    Duration::try_from(parsed).map_err(|_| format!("{text:?} is negative"))
}

/// `condition=Succeeded`, `condition=Running=False`, `delete`.
pub fn parse_wait_for(text: &str) -> Result<WaitFor, String> {
    if text == "delete" {
        return Ok(WaitFor::Delete);
    }
    let Some(rest) = text.strip_prefix("condition=") else {
        return Err(format!(
            "{text:?} is not supported; use condition=<Type>[=True|False] or delete"
        ));
    };
    let (type_, status) = rest.split_once('=').unwrap_or((rest, "True"));
    if type_.is_empty() || !matches!(status, "True" | "False" | "Unknown") {
        return Err(format!(
            "{text:?}: write condition=<Type> or condition=<Type>=<True|False|Unknown>"
        ));
    }
    Ok(WaitFor::Condition {
        type_: type_.to_string(),
        status: status.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn wait_conditions_parse() {
        let cases = [
            (
                "condition=Succeeded",
                Ok(WaitFor::Condition {
                    type_: "Succeeded".into(),
                    status: "True".into(),
                }),
            ),
            (
                "condition=Running=False",
                Ok(WaitFor::Condition {
                    type_: "Running".into(),
                    status: "False".into(),
                }),
            ),
            ("delete", Ok(WaitFor::Delete)),
            ("jsonpath={.x}", Err("not supported")),
            ("condition=", Err("condition=<Type>")),
            ("condition=Running=maybe", Err("condition=<Type>")),
        ];
        for (text, want) in cases {
            match (parse_wait_for(text), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(got), Err(part)) => assert!(got.contains(part), "{text}: {got}"),
                (got, want) => panic!("{text}: {got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn list_flags_map_one_for_one() {
        let cli = Cli::try_parse_from([
            "kubectl-tfjob",
            "list",
            "-n",
            "team-a",
            "-l",
            "app=mnist",
            "--field-selector",
            "metadata.name=x",
            "--limit",
            "2",
            "--continue",
            "tok",
            "-o",
            "wide",
        ])
        .unwrap();
        assert_eq!(cli.global.namespace.as_deref(), Some("team-a"));
        let Command::List(list) = cli.command else {
            panic!("list")
        };
        assert_eq!(list.selector.as_deref(), Some("app=mnist"));
        assert_eq!(list.field_selector.as_deref(), Some("metadata.name=x"));
        assert_eq!(
            (list.limit, list.continue_token.as_deref()),
            (Some(2), Some("tok"))
        );
        assert_eq!(list.output, Some(Output::Wide));
        // --continue without --limit, --timeout without --watch: refused
        assert!(Cli::try_parse_from(["kubectl-tfjob", "list", "--continue", "t"]).is_err());
        assert!(Cli::try_parse_from(["kubectl-tfjob", "list", "--timeout", "5s"]).is_err());
    }
}
