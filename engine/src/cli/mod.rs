//! Argument parsing for the `keelson` binary; each verb calls into the library.

use clap::{Parser, Subcommand};

mod build;
mod changed;
pub mod exit;
mod pipeline;
mod repo;
mod serve;
mod targets;
mod webhooks;

use exit::Exit;

/// GitOps CI/CD and multi-cluster sync: render overlays, diff them against clusters,
/// apply with server-side apply and prune what the repository no longer holds.
#[derive(Debug, Parser)]
#[command(name = "keelson", version, about, long_about = None, after_help = exit::HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render a kustomization (byte-identical to `kustomize build`).
    #[command(after_help = exit::HELP)]
    Build(build::Args),
    /// Show what a sync would change on every selected cluster.
    #[command(after_help = exit::HELP)]
    Diff(targets::DiffArgs),
    /// Apply targets to their clusters, prune, and wait.
    #[command(after_help = exit::HELP)]
    Sync(targets::SyncArgs),
    /// Tekton pipelines: check definitions, run them and follow every step.
    #[command(subcommand)]
    Pipeline(pipeline::PipelineCommand),
    /// The GitHub webhook receiver.
    #[command(subcommand)]
    Webhooks(webhooks::Command),
    /// Which targets a range of commits touches.
    #[command(after_help = exit::HELP)]
    Changed(changed::Args),
    /// The engine: webhooks and polling in, syncs out, until stopped.
    Serve(serve::ServeArgs),
    /// The targets of a running `keelson serve` and where they stand.
    Status(serve::StatusArgs),
}

/// The runtime every async verb runs on.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs the parsed command line and says how the process should exit.
pub fn run(args: Cli) -> anyhow::Result<Exit> {
    match args.command {
        Some(Command::Build(a)) => build::run(a),
        Some(Command::Diff(a)) => targets::diff(a),
        Some(Command::Sync(a)) => targets::sync(a),
        Some(Command::Pipeline(command)) => pipeline::run(command),
        Some(Command::Webhooks(command)) => webhooks::run(command),
        Some(Command::Changed(a)) => changed::run(a),
        Some(Command::Serve(a)) => serve::serve(a),
        Some(Command::Status(a)) => serve::status(a),
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            println!();
            Ok(Exit::Success)
        }
    }
}
