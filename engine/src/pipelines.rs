//! The engine's side of the CI layer: reading Tekton YAML from files and directories
//! (through [`crate::yaml`]) for `keelson_pipelines` to check.

use std::path::{Path, PathBuf};

use keelson_pipelines::check::{Document, Finding, Report, check_documents};

use crate::render::FileSystem;

/// A path could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}")]
pub struct ReadError {
    /// The file or directory.
    pub path: String,
    /// Why.
    pub source: std::io::Error,
}

/// Every YAML file under `path` (itself, if it is a file), sorted.
fn yaml_files(fs: &dyn FileSystem, path: &Path, out: &mut Vec<PathBuf>) -> Result<(), ReadError> {
    let err = |source| ReadError {
        path: path.display().to_string(),
        source,
    };
    if !fs.is_dir(path) {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries = fs.read_dir(path).map_err(err)?;
    entries.sort();
    for entry in entries {
        if fs.is_dir(&entry) {
            yaml_files(fs, &entry, out)?;
        } else if entry
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        {
            out.push(entry);
        }
    }
    Ok(())
}

/// Reads every document of the given files and directories (recursively) and checks the
/// Tekton objects among them. Unparsable YAML is reported as a finding of its file.
pub fn check_paths(paths: &[PathBuf]) -> Result<Report, ReadError> {
    check_in(&crate::render::DiskFs, paths)
}

/// [`check_paths`] of a tree read through `fs` (a directory or a git tree).
pub fn check_in(fs: &dyn FileSystem, paths: &[PathBuf]) -> Result<Report, ReadError> {
    let mut files = Vec::new();
    for path in paths {
        yaml_files(fs, path, &mut files)?;
    }
    let mut documents = Vec::new();
    let mut unreadable = Vec::new();
    for file in &files {
        let source = file.display().to_string();
        let bytes = fs.read(file).map_err(|e| ReadError {
            path: source.clone(),
            source: e,
        })?;
        let text = String::from_utf8_lossy(&bytes);
        match crate::yaml::documents(&text) {
            Ok(docs) => {
                documents.extend(docs.into_iter().enumerate().map(|(index, value)| Document {
                    source: source.clone(),
                    index,
                    value,
                }))
            }
            Err(e) => unreadable.push(Finding {
                source,
                object: "-".into(),
                path: ".".into(),
                message: format!("not valid YAML: {e}"),
            }),
        }
    }
    let mut report = check_documents(&documents);
    report.findings.splice(0..0, unreadable);
    Ok(report)
}

/// The Pipeline called `name` among a report's objects.
pub fn find_pipeline(report: Report, name: &str) -> Option<keelson_pipelines::model::Pipeline> {
    report.objects.into_iter().find_map(|(_, o)| match o {
        keelson_pipelines::model::TektonObject::Pipeline(p)
            if p.metadata.name.as_deref() == Some(name) =>
        {
            Some(p)
        }
        _ => None,
    })
}

/// What `keelson pipeline run` submits.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The Pipeline's name.
    pub pipeline: String,
    /// The namespace (default: the client's).
    pub namespace: Option<String>,
    /// Params as given on the command line (`k=v`), typed by the Pipeline's declarations.
    pub params: Vec<(String, String)>,
    /// Workspace bindings.
    pub workspaces: Vec<keelson_pipelines::model::WorkspaceBinding>,
    /// The TaskRuns' service account.
    pub service_account: Option<String>,
    /// `timeouts.pipeline`.
    pub timeout: Option<keelson_pipelines::model::Duration>,
    /// Repository, commit and target the run is labelled with.
    pub source: Option<keelson_pipelines::builder::Source>,
    /// Where to read the Pipeline from instead of the cluster (files or directories).
    pub definitions: Vec<PathBuf>,
    /// Follow the run to its end (with retries), printing every step.
    pub watch: bool,
    /// Keelson's retry policy (with `watch`).
    pub policy: keelson_pipelines::run::RetryPolicy,
}

/// `keelson pipeline run` failed before the run could finish.
#[derive(Debug, thiserror::Error)]
pub enum RunPipelineError {
    /// The run breaks the Pipeline's declarations or Tekton's rules.
    #[error("{0}")]
    Invalid(#[from] keelson_pipelines::builder::BuildError),
    /// The Pipeline was not found.
    #[error("Pipeline {name} not found in {place}")]
    NotFound {
        /// Its name.
        name: String,
        /// Where we looked.
        place: String,
    },
    /// Reading local definitions failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Submitting or following failed.
    #[error(transparent)]
    Run(#[from] keelson_pipelines::run::RunError),
    /// Printing failed.
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

/// How `keelson pipeline run` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunSummary {
    /// Submitted, not followed.
    Submitted(String),
    /// Followed to success.
    Succeeded(String),
    /// Followed to failure (after any retries).
    Failed(String),
}

/// Builds a PipelineRun of `options.pipeline` with typed, checked params, submits it, and
/// with `watch` follows it (re-submitting failed runs per the policy), writing one line
/// per step transition to `out`.
pub async fn run_pipeline(
    client: kube::Client,
    options: &RunOptions,
    out: &mut (dyn std::io::Write + Send),
) -> Result<RunSummary, RunPipelineError> {
    use keelson_pipelines::builder::RunBuilder;
    use keelson_pipelines::model::Pipeline;
    use keelson_pipelines::run::{CancelToken, Runner, submit};

    let namespace = options
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let pipeline: Pipeline = if options.definitions.is_empty() {
        let api: kube::Api<Pipeline> = kube::Api::namespaced(client.clone(), &namespace);
        match api.get_opt(&options.pipeline).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                return Err(RunPipelineError::NotFound {
                    name: options.pipeline.clone(),
                    place: format!("namespace {namespace}"),
                });
            }
            Err(e) => return Err(keelson_pipelines::run::RunError::Api(e).into()),
        }
    } else {
        find_pipeline(check_paths(&options.definitions)?, &options.pipeline).ok_or_else(|| {
            RunPipelineError::NotFound {
                name: options.pipeline.clone(),
                place: options
                    .definitions
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })?
    };
    let mut builder = RunBuilder::for_pipeline(&pipeline).namespace(&namespace);
    for (k, v) in &options.params {
        builder = builder.param_text(k, v);
    }
    for w in &options.workspaces {
        builder = builder.workspace(w.clone());
    }
    if let Some(sa) = &options.service_account {
        builder = builder.service_account(sa);
    }
    if let Some(t) = &options.timeout {
        builder = builder.timeouts(Some(t.clone()), None, None);
    }
    if let Some(source) = &options.source {
        builder = builder.source(source);
    }
    let run = builder.build()?;

    if !options.watch {
        let created = submit(&client, &run).await?;
        let name = created.metadata.name.clone().unwrap_or_default();
        writeln!(out, "pipelinerun {namespace}/{name} created")?;
        return Ok(RunSummary::Submitted(name));
    }
    // Print as events arrive; remember write errors for after the run.
    let mut failed_write: Option<std::io::Error> = None;
    let mut print = |e: &keelson_pipelines::watch::Event| {
        if failed_write.is_none()
            && let Err(err) = writeln!(out, "{e}").and_then(|()| out.flush())
        {
            failed_write = Some(err);
        }
    };
    let report = Runner::new(client)
        .policy(options.policy.clone())
        .durable(true)
        .run(&run, &mut print, &mut CancelToken::never())
        .await?;
    if let Some(err) = failed_write {
        return Err(err.into());
    }
    let name = report
        .attempts
        .last()
        .map(|a| a.name.clone())
        .unwrap_or_default();
    Ok(match report.failure() {
        None => RunSummary::Succeeded(name),
        Some(_) => RunSummary::Failed(name),
    })
}
