//! `kubectl tfjob`: a kubectl plugin for TFJobs. kubectl runs `kubectl-tfjob` from the PATH for
//! `kubectl tfjob …`; it works standalone too. See `kubectl tfjob --help`.

mod actions;
mod cli;
mod connect;
mod describe;
mod errors;
mod list;
mod logs;
mod table;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command};
use errors::Failure;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.code)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Completion(args) = &cli.command {
        let mut command = Cli::command();
        clap_complete::generate(
            args.shell,
            &mut command,
            "kubectl-tfjob",
            &mut std::io::stdout(),
        );
        return Ok(());
    }
    let cluster = connect::connect(&cli.global).await?;
    match &cli.command {
        Command::List(args) => list::list(&cluster, args).await,
        Command::Describe(job) => describe::describe(&cluster, &job.name).await,
        Command::Logs(args) => logs::logs(&cluster, args).await,
        Command::Wait(args) => {
            actions::wait(&cluster, &args.name, &args.wait_for, args.timeout).await
        }
        Command::Suspend(job) => actions::set_suspend(&cluster, &job.name, true).await,
        Command::Resume(job) => actions::set_suspend(&cluster, &job.name, false).await,
        Command::Delete(args) => {
            actions::delete(&cluster, &args.name, args.wait, args.timeout).await
        }
        Command::Completion(_) => Ok(()),
    }
}
