//! `TaskRun`: spec and status, with the state of every step.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_with::skip_serializing_none;

use super::{
    Condition, ContainerResources, Duration, Extra, Param, PodTemplate, Provenance, RunResult,
    TaskRef, TaskSpec, WorkspaceBinding,
};

/// A `tekton.dev/v1` TaskRun.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRun {
    /// `tekton.dev/v1`.
    pub api_version: String,
    /// `TaskRun`.
    pub kind: String,
    /// Name, namespace, labels (`tekton.dev/pipelineRun`, `tekton.dev/pipelineTask`), owner.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What to run.
    #[serde(default)]
    pub spec: TaskRunSpec,
    /// What Tekton reports.
    pub status: Option<TaskRunStatus>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// What a TaskRun runs.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRunSpec {
    /// Breakpoints.
    pub debug: Option<TaskRunDebug>,
    /// Params.
    pub params: Option<Vec<Param>>,
    /// Service account (Go always writes it).
    pub service_account_name: Option<String>,
    /// A referenced Task.
    pub task_ref: Option<TaskRef>,
    /// An embedded Task.
    pub task_spec: Option<TaskSpec>,
    /// `TaskRunCancelled` or `TaskRunPending`.
    pub status: Option<String>,
    /// Why it was cancelled.
    pub status_message: Option<String>,
    /// How many times Tekton retries a failed attempt.
    pub retries: Option<i64>,
    /// Timeout of each attempt.
    pub timeout: Option<Duration>,
    /// Pod template.
    pub pod_template: Option<PodTemplate>,
    /// Workspaces.
    pub workspaces: Option<Vec<WorkspaceBinding>>,
    /// Per-step resources.
    pub step_specs: Option<Vec<ContainerResources>>,
    /// Per-sidecar resources.
    pub sidecar_specs: Option<Vec<ContainerResources>>,
    /// Task-level resources.
    pub compute_resources: Option<ResourceRequirements>,
    /// The controller in charge.
    pub managed_by: Option<String>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Debugging options of a TaskRun.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRunDebug {
    /// Breakpoints.
    pub breakpoints: Option<TaskBreakpoints>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Where a debugged TaskRun pauses.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskBreakpoints {
    /// `enabled` pauses on failure.
    pub on_failure: Option<String>,
    /// Steps to pause before.
    pub before_steps: Option<Vec<String>>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// What Tekton reports about a TaskRun (and, archived, about each failed attempt).
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRunStatus {
    /// The generation last reconciled.
    pub observed_generation: Option<i64>,
    /// The `Succeeded` condition.
    pub conditions: Option<Vec<Condition>>,
    /// Status annotations.
    pub annotations: Option<BTreeMap<String, String>>,
    /// The pod of the current attempt (`""` before it exists; the CRD requires the key).
    pub pod_name: Option<String>,
    /// When it started.
    pub start_time: Option<Time>,
    /// When it finished.
    pub completion_time: Option<Time>,
    /// One entry per step container, in Task order.
    pub steps: Option<Vec<StepState>>,
    /// The archived status of each failed attempt, oldest first.
    pub retries_status: Option<Vec<TaskRunStatus>>,
    /// Results.
    pub results: Option<Vec<RunResult>>,
    /// Artifacts (passed through as JSON).
    pub artifacts: Option<Value>,
    /// Sidecar states.
    pub sidecars: Option<Vec<SidecarState>>,
    /// The resolved Task.
    pub task_spec: Option<TaskSpec>,
    /// Where the spec came from.
    pub provenance: Option<Provenance>,
    /// Tracing context.
    pub span_context: Option<BTreeMap<String, String>>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl TaskRunStatus {
    /// The step states (empty when none are reported yet).
    pub fn steps(&self) -> &[StepState] {
        self.steps.as_deref().unwrap_or_default()
    }

    /// How many attempts failed and were retried.
    pub fn retry_count(&self) -> usize {
        self.retries_status.as_ref().map_or(0, Vec::len)
    }
}

/// The state of one step container (a Kubernetes `ContainerState`, inlined).
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepState {
    /// Not started yet.
    pub waiting: Option<ContainerStateWaiting>,
    /// Running.
    pub running: Option<ContainerStateRunning>,
    /// Finished, with exit code and times.
    pub terminated: Option<ContainerStateTerminated>,
    /// The step's name.
    pub name: Option<String>,
    /// The container (`step-<name>`, or `step-unnamed-<i>`).
    pub container: Option<String>,
    /// The image's ID.
    #[serde(rename = "imageID")]
    pub image_id: Option<String>,
    /// Step results.
    pub results: Option<Vec<RunResult>>,
    /// Provenance.
    pub provenance: Option<Provenance>,
    /// Why it terminated (`Completed`, `Error`, `TimeoutExceeded`, `Skipped`, …).
    pub termination_reason: Option<String>,
    /// Input artifacts (passed through as JSON).
    pub inputs: Option<Value>,
    /// Output artifacts (passed through as JSON).
    pub outputs: Option<Value>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The state of one sidecar container.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SidecarState {
    /// Not started yet.
    pub waiting: Option<ContainerStateWaiting>,
    /// Running.
    pub running: Option<ContainerStateRunning>,
    /// Finished.
    pub terminated: Option<ContainerStateTerminated>,
    /// The sidecar's name.
    pub name: Option<String>,
    /// Its container.
    pub container: Option<String>,
    /// The image's ID.
    #[serde(rename = "imageID")]
    pub image_id: Option<String>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}
