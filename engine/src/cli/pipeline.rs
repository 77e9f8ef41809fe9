//! `keelson pipeline …`: check Tekton definitions, run a Pipeline and follow its steps.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

/// Pipeline verbs.
#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Check Pipeline, Task, PipelineRun and TaskRun YAML against the typed Tekton model
    /// and the rules Tekton's admission enforces. Exits 1 when anything is wrong, naming
    /// file, object and field.
    #[command(after_help = "Example:\n  keelson pipeline check pipelines/tekton\n  \
        keelson pipeline check --print run.yaml")]
    Check {
        /// Files or directories (searched for *.yaml, *.yml, *.json).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print the objects again, as the typed model writes them.
        #[arg(long)]
        print: bool,
    },
}

/// Runs a pipeline verb.
pub fn run(command: PipelineCommand) -> anyhow::Result<ExitCode> {
    match command {
        PipelineCommand::Check { paths, print } => check(&paths, print),
    }
}

fn check(paths: &[PathBuf], print: bool) -> anyhow::Result<ExitCode> {
    let report = keelson::pipelines::check_paths(paths)?;
    let mut out = std::io::stdout().lock();
    if print {
        for (_, object) in &report.objects {
            writeln!(out, "---")?;
            write!(out, "{}", keelson::yaml::to_string(object)?)?;
        }
    }
    for finding in &report.findings {
        eprintln!("{finding}");
    }
    let files: std::collections::BTreeSet<&str> =
        report.objects.iter().map(|(f, _)| f.as_str()).collect();
    if report.findings.is_empty() {
        eprintln!(
            "ok: {} Tekton object(s) in {} file(s){}",
            report.objects.len(),
            files.len(),
            if report.skipped.is_empty() {
                String::new()
            } else {
                format!(", {} other document(s) skipped", report.skipped.len())
            }
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{} problem(s) found", report.findings.len());
        Ok(ExitCode::from(1))
    }
}
