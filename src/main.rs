//! The `tfjob-operator` binary: wiring only; everything testable lives in the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tfjob-operator",
    version,
    about = "Kubernetes operator for Kubeflow TFJobs (kubeflow.org/v1)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the tfjobs.kubeflow.org CustomResourceDefinition as YAML.
    Crd,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => match tfjob_operator::api::crd::tfjob_crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: cannot render the CRD as YAML: {err}");
                ExitCode::FAILURE
            }
        },
    }
}
