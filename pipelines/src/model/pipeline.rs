//! `Pipeline` and pipeline tasks.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_with::skip_serializing_none;

use super::{
    Duration, Extra, Param, ParamSpec, PipelineRef, PipelineResult, PipelineTaskMetadata, TaskRef,
    TaskSpec, WhenExpression,
};

/// A `tekton.dev/v1` Pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    /// `tekton.dev/v1`.
    pub api_version: String,
    /// `Pipeline`.
    pub kind: String,
    /// Name, namespace, labels, annotations.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The pipeline's definition.
    #[serde(default)]
    pub spec: PipelineSpec,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A graph of tasks with params, workspaces, results and `finally` tasks.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSpec {
    /// A display name.
    pub display_name: Option<String>,
    /// A description.
    pub description: Option<String>,
    /// The tasks, ordered by `runAfter` and result references.
    pub tasks: Option<Vec<PipelineTask>>,
    /// Declared params.
    pub params: Option<Vec<ParamSpec>>,
    /// Declared workspaces.
    pub workspaces: Option<Vec<PipelineWorkspaceDeclaration>>,
    /// Declared results.
    pub results: Option<Vec<PipelineResult>>,
    /// Tasks run after all others, whatever their outcome.
    pub finally: Option<Vec<PipelineTask>>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl PipelineSpec {
    /// The tasks (empty when none).
    pub fn tasks(&self) -> &[PipelineTask] {
        self.tasks.as_deref().unwrap_or_default()
    }

    /// The `finally` tasks (empty when none).
    pub fn finally(&self) -> &[PipelineTask] {
        self.finally.as_deref().unwrap_or_default()
    }

    /// The declared params (empty when none).
    pub fn params(&self) -> &[ParamSpec] {
        self.params.as_deref().unwrap_or_default()
    }
}

/// One task of a pipeline.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineTask {
    /// The task's name in the pipeline (a DNS-1123 label).
    pub name: Option<String>,
    /// A display name.
    pub display_name: Option<String>,
    /// A description.
    pub description: Option<String>,
    /// A referenced Task.
    pub task_ref: Option<TaskRef>,
    /// An embedded Task.
    pub task_spec: Option<EmbeddedTask>,
    /// Conditions for running it.
    pub when: Option<Vec<WhenExpression>>,
    /// How many times Tekton retries a failed attempt.
    pub retries: Option<i64>,
    /// Tasks that must finish first.
    pub run_after: Option<Vec<String>>,
    /// Params passed to the task.
    pub params: Option<Vec<Param>>,
    /// Fan-out over param combinations.
    pub matrix: Option<Matrix>,
    /// Workspaces passed to the task.
    pub workspaces: Option<Vec<WorkspacePipelineTaskBinding>>,
    /// Timeout of each attempt.
    pub timeout: Option<Duration>,
    /// A referenced Pipeline (pipelines in pipelines).
    pub pipeline_ref: Option<PipelineRef>,
    /// An embedded Pipeline (pipelines in pipelines).
    pub pipeline_spec: Option<Box<PipelineSpec>>,
    /// `stopAndFail` (default) or `continue`.
    pub on_error: Option<String>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl PipelineTask {
    /// The task's name (empty when absent).
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }
}

/// A task spec embedded in a pipeline task: a TaskSpec plus the type and spec of a custom
/// task and metadata for the TaskRun.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedTask {
    /// A custom task's API version.
    pub api_version: Option<String>,
    /// A custom task's kind.
    pub kind: Option<String>,
    /// A custom task's spec.
    pub spec: Option<Value>,
    /// Labels and annotations for the TaskRun.
    pub metadata: Option<PipelineTaskMetadata>,
    /// The task spec itself (inlined; it also holds the unknown fields).
    #[serde(flatten)]
    pub task: TaskSpec,
}

/// Params combined into one TaskRun per combination.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Matrix {
    /// Array params whose values are combined.
    pub params: Option<Vec<Param>>,
    /// Extra combinations.
    pub include: Option<Vec<IncludeParams>>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One extra matrix combination.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncludeParams {
    /// Its name.
    pub name: Option<String>,
    /// Its params.
    pub params: Option<Vec<Param>>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A pipeline workspace passed to a task's workspace.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspacePipelineTaskBinding {
    /// The task's workspace.
    pub name: String,
    /// The pipeline's workspace (defaults to `name`).
    pub workspace: Option<String>,
    /// A directory inside it.
    pub sub_path: Option<String>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A workspace a Pipeline declares.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineWorkspaceDeclaration {
    /// Name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// A run may leave it unbound.
    pub optional: Option<bool>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}
