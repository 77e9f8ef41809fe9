//! Argument parsing for the `keelson` binary; each verb calls into the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod build;
mod changed;
mod diff;
mod pipeline;
mod repo;
mod serve;
mod webhooks;

/// GitOps CI/CD and multi-cluster sync: render overlays, diff them against clusters,
/// apply with server-side apply and prune what the repository no longer holds.
#[derive(Debug, Parser)]
#[command(name = "keelson", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render a kustomization (byte-identical to `kustomize build`).
    Build(build::Args),
    /// Show what a sync would change on every selected cluster.
    Diff(diff::DiffArgs),
    /// Apply targets to their clusters, prune, and wait.
    Sync(diff::SyncArgs),
    /// Tekton pipelines: check definitions, run them and follow every step.
    #[command(subcommand)]
    Pipeline(pipeline::PipelineCommand),
    /// The GitHub webhook receiver.
    #[command(subcommand)]
    Webhooks(webhooks::Command),
    /// Which targets a range of commits touches.
    Changed(changed::Args),
    /// The engine: webhooks and polling in, syncs out, until stopped.
    Serve(serve::ServeArgs),
    /// The targets of a running `keelson serve` and where they stand.
    Status(serve::StatusArgs),
}

fn code(c: i32) -> ExitCode {
    ExitCode::from(u8::try_from(c).unwrap_or(2))
}

/// Runs the parsed command line and says how the process should exit.
pub fn run(args: Cli) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(Command::Build(a)) => build::run(a).map(code),
        Some(Command::Diff(a)) => diff::diff(a).map(code),
        Some(Command::Sync(a)) => diff::sync(a).map(code),
        Some(Command::Pipeline(command)) => pipeline::run(command),
        Some(Command::Webhooks(command)) => webhooks::run(command).map(|()| ExitCode::SUCCESS),
        Some(Command::Changed(a)) => changed::run(a).map(code),
        Some(Command::Serve(a)) => serve::serve(a),
        Some(Command::Status(a)) => serve::status(a),
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            println!();
            Ok(ExitCode::SUCCESS)
        }
    }
}
