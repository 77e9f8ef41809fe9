//! The `keelson` command line.

use clap::Parser;

mod cli;

// Rendering allocates many small maps and strings; mimalloc handles that pattern better
// than the system allocator (measured in BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = cli::Cli::parse();
    let code = cli::run(args)?;
    std::process::exit(code);
}
