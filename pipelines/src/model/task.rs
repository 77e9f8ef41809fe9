//! `Task` and what a task spec is made of: steps, sidecars, workspaces.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ContainerPort, EnvFromSource, EnvVar, Lifecycle, Probe, ResourceRequirements, SecurityContext,
    Volume, VolumeDevice, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::{
    Duration, Extra, Param, ParamSpec, ParamType, PropertySpec, StepRef, TaskResult, WhenExpression,
};

/// A `tekton.dev/v1` Task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// `tekton.dev/v1`.
    pub api_version: String,
    /// `Task`.
    pub kind: String,
    /// Name, namespace, labels, annotations.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The task's definition.
    #[serde(default)]
    pub spec: TaskSpec,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// What a Task does: its params, steps, sidecars, workspaces and results.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSpec {
    /// Declared params.
    pub params: Option<Vec<ParamSpec>>,
    /// A display name.
    pub display_name: Option<String>,
    /// A description.
    pub description: Option<String>,
    /// The steps, run one after the other in one pod.
    pub steps: Option<Vec<Step>>,
    /// Volumes for the steps.
    pub volumes: Option<Vec<Volume>>,
    /// Defaults for every step.
    pub step_template: Option<StepTemplate>,
    /// Containers running alongside the steps.
    pub sidecars: Option<Vec<Sidecar>>,
    /// Declared workspaces.
    pub workspaces: Option<Vec<WorkspaceDeclaration>>,
    /// Declared results.
    pub results: Option<Vec<TaskResult>>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl TaskSpec {
    /// The steps (empty when none are declared).
    pub fn steps(&self) -> &[Step] {
        self.steps.as_deref().unwrap_or_default()
    }
}

/// One step of a task. Tekton's own struct, not a Container: it has `computeResources`,
/// `script`, `timeout` and `onError`, and no ports or probes.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The step's name (the CRD requires it on a Task object; it may be absent inline).
    pub name: Option<String>,
    /// A display name.
    pub display_name: Option<String>,
    /// The image (unless `ref` names a StepAction).
    pub image: Option<String>,
    /// The entrypoint.
    pub command: Option<Vec<String>>,
    /// Its arguments.
    pub args: Option<Vec<String>>,
    /// The working directory.
    pub working_dir: Option<String>,
    /// Environment from ConfigMaps and Secrets.
    pub env_from: Option<Vec<EnvFromSource>>,
    /// Environment variables.
    pub env: Option<Vec<EnvVar>>,
    /// CPU and memory (Go always writes `{}`).
    pub compute_resources: Option<ResourceRequirements>,
    /// Volume mounts.
    pub volume_mounts: Option<Vec<VolumeMount>>,
    /// Volume devices.
    pub volume_devices: Option<Vec<VolumeDevice>>,
    /// Image pull policy.
    pub image_pull_policy: Option<String>,
    /// Security context.
    pub security_context: Option<SecurityContext>,
    /// A script run instead of `command`.
    pub script: Option<String>,
    /// How long the step may run.
    pub timeout: Option<Duration>,
    /// Workspaces the step mounts.
    pub workspaces: Option<Vec<WorkspaceUsage>>,
    /// `stopAndFail` (default) or `continue`.
    pub on_error: Option<String>,
    /// Where stdout is also written.
    pub stdout_config: Option<StepOutputConfig>,
    /// Where stderr is also written.
    pub stderr_config: Option<StepOutputConfig>,
    /// A StepAction to run.
    #[serde(rename = "ref")]
    pub ref_: Option<StepRef>,
    /// Params for the StepAction.
    pub params: Option<Vec<Param>>,
    /// Results the step produces.
    pub results: Option<Vec<StepResult>>,
    /// Conditions for running the step.
    pub when: Option<Vec<WhenExpression>>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Defaults applied to every step of a task.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepTemplate {
    /// Image.
    pub image: Option<String>,
    /// Entrypoint.
    pub command: Option<Vec<String>>,
    /// Arguments.
    pub args: Option<Vec<String>>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// Environment from ConfigMaps and Secrets.
    pub env_from: Option<Vec<EnvFromSource>>,
    /// Environment variables.
    pub env: Option<Vec<EnvVar>>,
    /// CPU and memory.
    pub compute_resources: Option<ResourceRequirements>,
    /// Volume mounts.
    pub volume_mounts: Option<Vec<VolumeMount>>,
    /// Volume devices.
    pub volume_devices: Option<Vec<VolumeDevice>>,
    /// Image pull policy.
    pub image_pull_policy: Option<String>,
    /// Security context.
    pub security_context: Option<SecurityContext>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A container running alongside a task's steps.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sidecar {
    /// Name.
    pub name: Option<String>,
    /// Image.
    pub image: Option<String>,
    /// Entrypoint.
    pub command: Option<Vec<String>>,
    /// Arguments.
    pub args: Option<Vec<String>>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// Ports.
    pub ports: Option<Vec<ContainerPort>>,
    /// Environment from ConfigMaps and Secrets.
    pub env_from: Option<Vec<EnvFromSource>>,
    /// Environment variables.
    pub env: Option<Vec<EnvVar>>,
    /// CPU and memory.
    pub compute_resources: Option<ResourceRequirements>,
    /// Volume mounts.
    pub volume_mounts: Option<Vec<VolumeMount>>,
    /// Volume devices.
    pub volume_devices: Option<Vec<VolumeDevice>>,
    /// Liveness probe.
    pub liveness_probe: Option<Probe>,
    /// Readiness probe.
    pub readiness_probe: Option<Probe>,
    /// Startup probe.
    pub startup_probe: Option<Probe>,
    /// Lifecycle hooks.
    pub lifecycle: Option<Lifecycle>,
    /// Termination message path.
    pub termination_message_path: Option<String>,
    /// Termination message policy.
    pub termination_message_policy: Option<String>,
    /// Image pull policy.
    pub image_pull_policy: Option<String>,
    /// Security context.
    pub security_context: Option<SecurityContext>,
    /// Keep stdin open.
    pub stdin: Option<bool>,
    /// Close stdin after one attach.
    pub stdin_once: Option<bool>,
    /// Allocate a TTY.
    pub tty: Option<bool>,
    /// A script run instead of `command`.
    pub script: Option<String>,
    /// Workspaces the sidecar mounts.
    pub workspaces: Option<Vec<WorkspaceUsage>>,
    /// `Always` makes it a native Kubernetes sidecar.
    pub restart_policy: Option<String>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A workspace a Task declares.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceDeclaration {
    /// Name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Where it is mounted (default `/workspace/<name>`).
    pub mount_path: Option<String>,
    /// Mounted read-only.
    pub read_only: Option<bool>,
    /// A run may leave it unbound.
    pub optional: Option<bool>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl WorkspaceDeclaration {
    /// A required workspace with this name.
    pub fn new(name: impl Into<String>) -> Self {
        WorkspaceDeclaration {
            name: name.into(),
            description: None,
            mount_path: None,
            read_only: None,
            optional: None,
            extra: Extra::default(),
        }
    }
}

/// A workspace used by one step or sidecar (isolated workspaces).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceUsage {
    /// The workspace's name.
    pub name: String,
    /// Where it is mounted in this container.
    pub mount_path: Option<String>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Where a step's output stream is also written.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepOutputConfig {
    /// The file.
    pub path: Option<String>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A result a step declares.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepResult {
    /// Name.
    pub name: String,
    /// Type.
    #[serde(rename = "type")]
    pub type_: Option<ParamType>,
    /// The keys of an object result.
    pub properties: Option<BTreeMap<String, PropertySpec>>,
    /// What it holds.
    pub description: Option<String>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}
