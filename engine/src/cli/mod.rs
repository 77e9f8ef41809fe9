//! Argument parsing for the `keelson` binary; each verb calls into the library.

use clap::{Parser, Subcommand};

mod build;
mod changed;
mod repo;

/// GitOps CI/CD and multi-cluster sync: render overlays, diff them against clusters,
/// apply with server-side apply and prune what the repository no longer holds.
#[derive(Debug, Parser)]
#[command(name = "keelson", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Build(build::Args),
    Changed(changed::Args),
}

/// Runs the parsed command line; returns the process exit code.
pub fn run(args: Cli) -> anyhow::Result<i32> {
    match args.command {
        Command::Build(a) => build::run(a),
        Command::Changed(a) => changed::run(a),
    }
}
