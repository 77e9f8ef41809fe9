//! Argument parsing for the `keelson` binary; each verb calls into the library.

use clap::{Parser, Subcommand};

mod webhooks;

/// GitOps CI/CD and multi-cluster sync: render overlays, diff them against clusters,
/// apply with server-side apply and prune what the repository no longer holds.
#[derive(Debug, Parser)]
#[command(name = "keelson", version, about, long_about = None)]
#[command(
    after_help = "More verbs (build, diff, sync, serve, pipeline) arrive one by one; see README.md."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The GitHub webhook receiver.
    #[command(subcommand)]
    Webhooks(webhooks::Command),
}

/// Runs the parsed command line.
pub fn run(args: Cli) -> anyhow::Result<()> {
    match args.command {
        Some(Command::Webhooks(command)) => webhooks::run(command),
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            println!();
            Ok(())
        }
    }
}
