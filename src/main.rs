//! The `tfjob-operator` binary: the command line, handed over to the library.

use std::io::Write;
use std::process::ExitCode;
use tfjob_core::api::crd::KubeVersion;

use clap::{Parser, Subcommand};
use tfjob_operator::config::RunArgs;

#[derive(Parser)]
#[command(
    name = "tfjob-operator",
    version,
    about = "Kubernetes operator for Kubeflow TFJobs (kubeflow.org/v1)",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand the operator runs, taking `run`'s flags (as upstream's binary does).
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator (the default).
    Run(Box<RunArgs>),
    /// Print the tfjobs.kubeflow.org CustomResourceDefinition as YAML.
    Crd {
        /// The apiserver's version (MAJOR.MINOR): before 1.23 the CRD leaves out the CEL rule
        /// that version does not know (server-side apply would refuse it).
        #[arg(long, value_name = "VERSION")]
        kubernetes_version: Option<KubeVersion>,
    },
    /// Check that the cluster is ready for the operator run with these flags (preflight):
    /// PASS/WARN/FAIL lines, exit code 1 when a check fails.
    Check(Box<RunArgs>),
}

/// jemalloc, configured in `.cargo/config.toml`: with glibc's malloc, the heap freed after the
/// first list and the first status writes stays resident among the cached jobs (RSS per cached
/// job 6.8 KiB against 5.9); jemalloc gives freed pages back. Its figures are on `/metrics`
/// (`tfjob_operator_heap_bytes`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // Go's flag syntax (`-leader-elect`) is accepted, as upstream's binary does.
    let cli = Cli::parse_from(tfjob_operator::config::go_style_args(std::env::args()));
    match cli.command {
        Some(Command::Crd { kubernetes_version }) => print_crd(kubernetes_version),
        Some(Command::Check(args)) => tfjob_operator::check::main(*args),
        Some(Command::Run(args)) => tfjob_operator::runtime::main(*args),
        None => tfjob_operator::runtime::main(cli.run),
    }
}

fn print_crd(server: Option<KubeVersion>) -> ExitCode {
    let yaml = match tfjob_core::api::crd::tfjob_crd_yaml_for(server) {
        Ok(yaml) => yaml,
        Err(err) => {
            eprintln!("error: cannot render the CRD as YAML: {err}");
            return ExitCode::FAILURE;
        }
    };
    // `tfjob-operator crd | head` closes the pipe early: that is not an error.
    match std::io::stdout().write_all(yaml.as_bytes()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("error: cannot write the CRD: {err}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}
