//! `keelson pipeline …`: check Tekton definitions, run a Pipeline and follow its steps.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use keelson::pipelines::{RunOptions, RunSummary};
use keelson_pipelines::builder::Source;
use keelson_pipelines::model::WorkspaceBinding;
use keelson_pipelines::run::RetryPolicy;

use super::exit::Exit;

/// Pipeline verbs.
// Parsed once per process: the size difference between the verbs does not matter.
#[allow(clippy::large_enum_variant)]
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
    /// Submit a PipelineRun of a Pipeline, params checked against its declarations; with
    /// --watch, follow it (re-submitting failed runs with backoff) and print every step.
    /// Exits 0 when the run succeeded (or was submitted), 1 when it failed.
    #[command(
        after_help = "Example:\n  keelson pipeline run rust-ci --param repo-url=https://github.com/org/repo \\\n    \
        --param revision=$(git rev-parse HEAD) --workspace source=emptyDir --watch"
    )]
    Run {
        /// The Pipeline's name.
        name: String,
        /// A param, `name=value`; arrays as `a,b` or a JSON array, objects as `k=v,k2=v2`
        /// or a JSON object, following the Pipeline's declaration.
        #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// A workspace: `name=emptyDir`, `name=pvc:CLAIM`, `name=configMap:NAME`,
        /// `name=secret:NAME`.
        #[arg(long = "workspace", short = 'w', value_name = "NAME=SOURCE")]
        workspaces: Vec<String>,
        /// The namespace (default: the kubeconfig context's).
        #[arg(long, short = 'n', env = "KEELSON_NAMESPACE")]
        namespace: Option<String>,
        /// The kubeconfig context.
        #[arg(long, env = "KEELSON_CONTEXT")]
        context: Option<String>,
        /// Read the Pipeline from these files or directories instead of the cluster.
        #[arg(long = "from", value_name = "PATH")]
        from: Vec<PathBuf>,
        /// The TaskRuns' service account.
        #[arg(long)]
        service_account: Option<String>,
        /// The run's timeout (`timeouts.pipeline`), a Go duration such as 1h30m.
        #[arg(long)]
        timeout: Option<String>,
        /// Label the run with its repository, commit and target.
        #[arg(long, requires_all = ["commit", "target"])]
        repository: Option<String>,
        /// The commit (with --repository).
        #[arg(long)]
        commit: Option<String>,
        /// The deployment target (with --repository).
        #[arg(long)]
        target: Option<String>,
        /// Follow the run and print every step.
        #[arg(long)]
        watch: bool,
        /// How many times Keelson re-submits a failed run (with --watch).
        #[arg(long, default_value_t = 0)]
        retries: u32,
        /// The delay before the first re-submission; doubles each time.
        #[arg(long, default_value = "30s")]
        backoff: String,
        /// The longest delay between re-submissions.
        #[arg(long, default_value = "10m")]
        max_backoff: String,
    },
}

/// Runs a pipeline verb.
pub fn run(command: PipelineCommand) -> anyhow::Result<Exit> {
    match command {
        PipelineCommand::Check { paths, print } => check(&paths, print),
        PipelineCommand::Run {
            name,
            params,
            workspaces,
            namespace,
            context,
            from,
            service_account,
            timeout,
            repository,
            commit,
            target,
            watch,
            retries,
            backoff,
            max_backoff,
        } => {
            let params = params
                .iter()
                .map(|p| {
                    p.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .with_context(|| format!("--param {p:?}: expected NAME=VALUE"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let workspaces = workspaces
                .iter()
                .map(|w| workspace(w))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let duration = |flag: &str, text: &str| -> anyhow::Result<Duration> {
                keelson_pipelines::model::Duration::new(text)
                    .parse()
                    .with_context(|| format!("--{flag}"))
            };
            let policy = RetryPolicy {
                max_attempts: retries.saturating_add(1),
                initial_delay: duration("backoff", &backoff)?,
                max_delay: duration("max-backoff", &max_backoff)?,
                ..RetryPolicy::default()
            };
            let options = RunOptions {
                pipeline: name,
                namespace,
                params,
                workspaces,
                service_account,
                timeout: timeout.map(keelson_pipelines::model::Duration::new),
                source: match (repository, commit, target) {
                    (Some(repository), Some(commit), Some(target)) => Some(Source {
                        repository,
                        commit,
                        target,
                    }),
                    _ => None,
                },
                definitions: from,
                watch,
                policy,
            };
            run_pipeline(context, &options)
        }
    }
}

fn workspace(text: &str) -> anyhow::Result<WorkspaceBinding> {
    let Some((name, source)) = text.split_once('=') else {
        bail!("--workspace {text:?}: expected NAME=SOURCE");
    };
    let mut binding = WorkspaceBinding::named(name);
    match source.split_once(':') {
        None if source == "emptyDir" => binding = WorkspaceBinding::empty_dir(name),
        Some(("pvc", claim)) => binding = WorkspaceBinding::claim(name, claim),
        Some(("configMap", cm)) => {
            binding.config_map = Some(serde_json::from_value(serde_json::json!({"name": cm}))?)
        }
        Some(("secret", secret)) => {
            binding.secret = Some(serde_json::from_value(
                serde_json::json!({"secretName": secret}),
            )?)
        }
        _ => bail!(
            "--workspace {text:?}: the source is emptyDir, pvc:CLAIM, configMap:NAME or secret:NAME"
        ),
    }
    Ok(binding)
}

fn run_pipeline(context: Option<String>, options: &RunOptions) -> anyhow::Result<Exit> {
    super::runtime()?.block_on(async {
        let config = kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions {
            context,
            ..Default::default()
        })
        .await
        .context("reading the kubeconfig")?;
        let client = kube::Client::try_from(config)?;
        let mut out = std::io::stdout();
        match keelson::pipelines::run_pipeline(client, options, &mut out).await {
            Ok(RunSummary::Submitted(_) | RunSummary::Succeeded(_)) => Ok(Exit::Success),
            Ok(RunSummary::Failed(_)) => Ok(Exit::Failure),
            Err(e) => Err(e.into()),
        }
    })
}

fn check(paths: &[PathBuf], print: bool) -> anyhow::Result<Exit> {
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
        Ok(Exit::Success)
    } else {
        eprintln!("{} problem(s) found", report.findings.len());
        Ok(Exit::Failure)
    }
}
