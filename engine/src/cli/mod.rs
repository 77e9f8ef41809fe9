//! Argument parsing for the `keelson` binary; each verb calls into the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod pipeline;

/// GitOps CI/CD and multi-cluster sync: render overlays, diff them against clusters,
/// apply with server-side apply and prune what the repository no longer holds.
#[derive(Debug, Parser)]
#[command(name = "keelson", version, about, long_about = None)]
#[command(after_help = "More verbs (build, diff, sync, serve) arrive one by one; see README.md.")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tekton pipelines: check definitions, run them and follow every step.
    #[command(subcommand)]
    Pipeline(pipeline::PipelineCommand),
}

/// Runs the parsed command line and says how the process should exit.
pub fn run(args: Cli) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(Command::Pipeline(command)) => pipeline::run(command),
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            println!();
            Ok(ExitCode::SUCCESS)
        }
    }
}
