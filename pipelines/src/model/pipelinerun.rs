//! `PipelineRun`: spec and status.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::{
    Condition, ContainerResources, Duration, Extra, Param, PipelineRef, PipelineSpec,
    PipelineTaskMetadata, PodTemplate, Provenance, RunResult, SkippedTask, WhenExpression,
    WorkspaceBinding,
};

/// A `tekton.dev/v1` PipelineRun.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRun {
    /// `tekton.dev/v1`.
    pub api_version: String,
    /// `PipelineRun`.
    pub kind: String,
    /// Name or generateName, namespace, labels, annotations.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What to run.
    #[serde(default)]
    pub spec: PipelineRunSpec,
    /// What Tekton reports.
    pub status: Option<PipelineRunStatus>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The values of `PipelineRun.spec.status`: how a run is cancelled or held.
pub mod spec_status {
    /// Stop everything now, `finally` tasks included.
    pub const CANCELLED: &str = "Cancelled";
    /// Cancel running tasks, then run `finally`.
    pub const CANCELLED_RUN_FINALLY: &str = "CancelledRunFinally";
    /// Start no new task, let running ones finish, then run `finally`.
    pub const STOPPED_RUN_FINALLY: &str = "StoppedRunFinally";
    /// Do not start yet.
    pub const PENDING: &str = "PipelineRunPending";
}

/// What a PipelineRun runs, with which params, workspaces and timeouts.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRunSpec {
    /// A referenced Pipeline.
    pub pipeline_ref: Option<PipelineRef>,
    /// An embedded Pipeline.
    pub pipeline_spec: Option<PipelineSpec>,
    /// Params passed to the Pipeline.
    pub params: Option<Vec<Param>>,
    /// Cancellation or pending state (see [`spec_status`]).
    pub status: Option<String>,
    /// Timeouts of the whole run, its tasks and its `finally` tasks.
    pub timeouts: Option<TimeoutFields>,
    /// Service account and pod template for every TaskRun.
    pub task_run_template: Option<PipelineTaskRunTemplate>,
    /// Volumes behind the Pipeline's workspaces.
    pub workspaces: Option<Vec<WorkspaceBinding>>,
    /// Per-task overrides.
    pub task_run_specs: Option<Vec<PipelineTaskRunSpec>>,
    /// The controller in charge (`tekton.dev/pipeline` when absent).
    pub managed_by: Option<String>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `timeouts.pipeline/tasks/finally`; `"0"` means none; tasks + finally ≤ pipeline.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeoutFields {
    /// The whole run.
    pub pipeline: Option<Duration>,
    /// The `tasks` section.
    pub tasks: Option<Duration>,
    /// The `finally` section.
    pub finally: Option<Duration>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Service account and pod template applied to every TaskRun of a run.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineTaskRunTemplate {
    /// Pod template.
    pub pod_template: Option<PodTemplate>,
    /// Service account.
    pub service_account_name: Option<String>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Overrides for the TaskRun of one pipeline task.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineTaskRunSpec {
    /// The pipeline task it applies to.
    pub pipeline_task_name: Option<String>,
    /// Service account.
    pub service_account_name: Option<String>,
    /// Pod template.
    pub pod_template: Option<PodTemplate>,
    /// Per-step resources.
    pub step_specs: Option<Vec<ContainerResources>>,
    /// Per-sidecar resources.
    pub sidecar_specs: Option<Vec<ContainerResources>>,
    /// TaskRun labels and annotations.
    pub metadata: Option<PipelineTaskMetadata>,
    /// Task-level resources.
    pub compute_resources: Option<ResourceRequirements>,
    /// Timeout of the TaskRun.
    pub timeout: Option<Duration>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// What Tekton reports about a PipelineRun.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRunStatus {
    /// The generation last reconciled.
    pub observed_generation: Option<i64>,
    /// The `Succeeded` condition.
    pub conditions: Option<Vec<Condition>>,
    /// Status annotations.
    pub annotations: Option<BTreeMap<String, String>>,
    /// When it started.
    pub start_time: Option<Time>,
    /// When it finished.
    pub completion_time: Option<Time>,
    /// The Pipeline's results.
    pub results: Option<Vec<RunResult>>,
    /// The resolved Pipeline.
    pub pipeline_spec: Option<PipelineSpec>,
    /// Tasks that got no TaskRun.
    pub skipped_tasks: Option<Vec<SkippedTask>>,
    /// The child TaskRuns (and custom runs).
    pub child_references: Option<Vec<ChildStatusReference>>,
    /// When the `finally` tasks started.
    pub finally_start_time: Option<Time>,
    /// Where the spec came from.
    pub provenance: Option<Provenance>,
    /// Tracing context.
    pub span_context: Option<BTreeMap<String, String>>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A child run of a PipelineRun.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildStatusReference {
    /// `tekton.dev/v1`.
    pub api_version: Option<String>,
    /// `TaskRun`, `CustomRun` or `PipelineRun`.
    pub kind: Option<String>,
    /// The child's name.
    pub name: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// The pipeline task it runs.
    pub pipeline_task_name: Option<String>,
    /// The `when` expressions that let it run.
    pub when_expressions: Option<Vec<WhenExpression>>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}
