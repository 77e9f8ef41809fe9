//! The `keelson` command line.

use std::process::ExitCode;

use clap::Parser;

mod cli;

// Rendering allocates many small maps and strings; mimalloc handles that pattern better
// than the system allocator (measured in BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(exit) => exit.into(),
        Err(e) => cli::exit::report(&e).into(),
    }
}
