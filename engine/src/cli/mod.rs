//! Argument parsing for the `keelson` binary; each verb calls into the library.

use clap::Parser;

/// GitOps CI/CD and multi-cluster sync: render overlays, diff them against clusters,
/// apply with server-side apply and prune what the repository no longer holds.
#[derive(Debug, Parser)]
#[command(name = "keelson", version, about, long_about = None)]
#[command(
    after_help = "Verbs (build, diff, sync, serve, pipeline) arrive one by one; see README.md."
)]
pub struct Cli {}

/// Runs the parsed command line.
pub fn run(_args: Cli) -> anyhow::Result<()> {
    use clap::CommandFactory;
    Cli::command().print_help()?;
    println!();
    Ok(())
}
