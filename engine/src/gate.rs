//! Pipeline gates: before a target's new commit is deployed, the repository's CI runs as
//! a typed Tekton PipelineRun (built from the Pipeline defined at that very commit) and is
//! followed to its end, with re-submission and backoff; only a success lets the sync go.

use std::path::Path;

use keelson_pipelines::builder::{LABEL_COMMIT, LABEL_TARGET, RunBuilder, Source as RunSource};
use keelson_pipelines::model::{Pipeline, PipelineRun};
use keelson_pipelines::run::{CancelToken, RetryPolicy, Runner, ending_of};
use kube::Api;
use kube::api::ListParams;

use crate::config::Gate;
use crate::render::FileSystem;

/// A gate could not reach a verdict.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The repository's pipeline definitions are wrong: permanent for this commit.
    #[error("{0}")]
    Definition(String),
    /// Tekton or its cluster could not be asked: worth a retry.
    #[error("{0}")]
    Tekton(String),
    /// The run did not end within the operator's cap (`limits.maxGate`): the commit fails
    /// rather than hold a worker longer.
    #[error("pipeline {pipeline} did not finish within the engine's cap of {cap:?}")]
    Capped {
        pipeline: String,
        cap: std::time::Duration,
    },
}

/// How a gate ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The run succeeded (its name).
    Passed(String),
    /// The run failed; this commit is not deployed (a later commit runs the gate again).
    Failed(String),
}

/// Finds the gate's Pipeline among the definitions in the repository tree.
pub fn pipeline_at(fs: &dyn FileSystem, root: &Path, gate: &Gate) -> Result<Pipeline, GateError> {
    let dir = root.join(&gate.definitions);
    let report = crate::pipelines::check_in(fs, std::slice::from_ref(&dir))
        .map_err(|e| GateError::Definition(e.to_string()))?;
    if let Some(f) = report.findings.first() {
        return Err(GateError::Definition(format!(
            "{}: {} {}: {}",
            f.source, f.object, f.path, f.message
        )));
    }
    crate::pipelines::find_pipeline(report, &gate.pipeline).ok_or_else(|| {
        GateError::Definition(format!(
            "no Pipeline {:?} in {}",
            gate.pipeline,
            dir.display()
        ))
    })
}

/// Runs the gate for `target` at `commit` on `client`'s cluster. Param values may name
/// `$(keelson.commit)`, `$(keelson.repository)` (the clone URL) and `$(keelson.target)`. A run of the same
/// target and commit that already succeeded (an engine restart) counts, without a new one.
pub async fn run(
    client: kube::Client,
    pipeline: &Pipeline,
    gate: &Gate,
    repository: &str,
    clone_url: &str,
    target: &str,
    commit: &str,
) -> Result<Verdict, GateError> {
    let api: Api<PipelineRun> = Api::namespaced(client.clone(), &gate.namespace);
    let selector = format!(
        "{LABEL_COMMIT}={},{LABEL_TARGET}={}",
        keelson_pipelines::builder::label_value(commit),
        keelson_pipelines::builder::label_value(target)
    );
    let earlier = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| {
            GateError::Tekton(format!("listing PipelineRuns in {}: {e}", gate.namespace))
        })?;
    if let Some(done) = earlier
        .items
        .iter()
        .find(|r| ending_of(r).is_some() && keelson_pipelines::run::classify_run(r).is_none())
    {
        return Ok(Verdict::Passed(
            done.metadata.name.clone().unwrap_or_default(),
        ));
    }
    let run = build_run(pipeline, gate, repository, clone_url, target, commit)
        .map_err(GateError::Definition)?;
    let policy = RetryPolicy {
        max_attempts: gate.attempts,
        initial_delay: std::time::Duration::from_secs(5),
        ..RetryPolicy::default()
    };
    let mut log = |e: &keelson_pipelines::watch::Event| tracing::info!(target, event = %e, "gate");
    let report = Runner::new(client)
        .policy(policy)
        .durable(true)
        .run(&run, &mut log, &mut CancelToken::never())
        .await
        .map_err(|e| GateError::Tekton(e.to_string()))?;
    let name = report
        .attempts
        .last()
        .map(|a| a.name.clone())
        .unwrap_or_default();
    Ok(match report.failure() {
        None => Verdict::Passed(name),
        Some(f) => Verdict::Failed(format!("PipelineRun {name}: {}", f.reason())),
    })
}

/// The gate's PipelineRun for one commit of one target: params typed by the Pipeline's
/// declarations and labelled with the repository, commit and target.
pub fn build_run(
    pipeline: &Pipeline,
    gate: &Gate,
    repository: &str,
    clone_url: &str,
    target: &str,
    commit: &str,
) -> Result<PipelineRun, String> {
    let mut builder = RunBuilder::for_pipeline(pipeline)
        .namespace(&gate.namespace)
        .source(&RunSource {
            repository: repository.to_string(),
            commit: commit.to_string(),
            target: target.to_string(),
        });
    for (k, v) in &gate.params {
        let v = v
            .replace("$(keelson.commit)", commit)
            .replace("$(keelson.repository)", clone_url)
            .replace("$(keelson.target)", target);
        builder = builder.param_text(k, v);
    }
    for w in &gate.workspaces {
        builder = builder.workspace(w.clone());
    }
    if let Some(sa) = &gate.service_account {
        builder = builder.service_account(sa);
    }
    if let Some(t) = &gate.timeout {
        builder = builder.timeouts(Some(t.to_string().as_str().into()), None, None);
    }
    builder.build().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_examples_gate_builds_a_valid_run_of_the_projects_ci() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../overlays-example");
        let project = crate::config::Project::load(&root).unwrap();
        let gate = project.target("shop-prod").unwrap().gate.clone().unwrap();
        let pipeline = pipeline_at(&crate::render::DiskFs, &root, &gate).unwrap();
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let run = build_run(
            &pipeline,
            &gate,
            "acme/shop",
            "https://git.example/shop.git",
            "shop-prod",
            commit,
        )
        .unwrap();
        let spec = serde_json::to_value(&run.spec).unwrap();
        let params: Vec<(String, String)> = spec["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["value"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        assert!(
            params.contains(&("revision".into(), commit.into())),
            "{params:?}"
        );
        assert!(params.contains(&("repo-url".into(), "https://git.example/shop.git".into())));
        assert_eq!(spec["workspaces"][0]["name"], "source");
        assert_eq!(run.metadata.labels.as_ref().unwrap()[LABEL_COMMIT], commit);
    }

    #[test]
    fn a_missing_pipeline_is_named() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../overlays-example");
        let project = crate::config::Project::load(&root).unwrap();
        let mut gate = project.target("shop-prod").unwrap().gate.clone().unwrap();
        gate.pipeline = "nope".into();
        let e = pipeline_at(&crate::render::DiskFs, &root, &gate).unwrap_err();
        // The repository's mistake: a retry with the same commit cannot mend it.
        assert!(
            matches!(&e, GateError::Definition(m) if m.contains("no Pipeline \"nope\"")),
            "{e}"
        );
    }
}
