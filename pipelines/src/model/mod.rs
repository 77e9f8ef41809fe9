//! Tekton `tekton.dev/v1` objects as Rust types, on `k8s-openapi` leaf types.
//!
//! Written by hand from Tekton's Go types (types generated from the CRDs lose the inline
//! specs and reject real statuses). Every optional field is an `Option` so that an absent
//! field and an empty one (`""`, `[]`, `{}`) both round-trip; every Tekton struct keeps
//! the keys it does not know in an [`Extra`], so reading and writing loses nothing.
//! [`check`] turns those unknown keys into errors.

mod check;
mod common;
mod duration;
mod extra;
mod params;
mod pipeline;
mod pipelinerun;
mod task;
mod taskrun;

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use check::{FieldIssue, check, diff_values};
pub use common::{
    Condition, ContainerResources, Outcome, PipelineRef, PipelineTaskMetadata, PodTemplate,
    Provenance, RefSource, SkippedTask, StepRef, TaskRef, VolumeClaimTemplate, WorkspaceBinding,
    outcome, reasons, succeeded_condition,
};
pub use duration::{Duration, DurationError};
pub use extra::Extra;
pub use params::{
    Param, ParamSpec, ParamType, ParamValue, PipelineResult, PropertySpec, RunResult, TaskResult,
    WhenExpression,
};
pub use pipeline::{
    EmbeddedTask, IncludeParams, Matrix, Pipeline, PipelineSpec, PipelineTask,
    PipelineWorkspaceDeclaration, WorkspacePipelineTaskBinding,
};
pub use pipelinerun::{
    ChildStatusReference, PipelineRun, PipelineRunSpec, PipelineRunStatus, PipelineTaskRunSpec,
    PipelineTaskRunTemplate, TimeoutFields, spec_status,
};
pub use task::{
    Sidecar, Step, StepOutputConfig, StepResult, StepTemplate, Task, TaskSpec,
    WorkspaceDeclaration, WorkspaceUsage,
};
pub use taskrun::{
    SidecarState, StepState, TaskBreakpoints, TaskRun, TaskRunDebug, TaskRunSpec, TaskRunStatus,
};

/// The API group of every Tekton type.
pub const GROUP: &str = "tekton.dev";
/// The API version this model speaks.
pub const API_VERSION: &str = "tekton.dev/v1";

macro_rules! tekton_resource {
    ($ty:ident, $kind:literal, $plural:literal) => {
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = k8s_openapi::NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(GROUP)
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed("v1")
            }
            fn api_version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(API_VERSION)
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

tekton_resource!(Pipeline, "Pipeline", "pipelines");
tekton_resource!(Task, "Task", "tasks");
tekton_resource!(PipelineRun, "PipelineRun", "pipelineruns");
tekton_resource!(TaskRun, "TaskRun", "taskruns");

impl Pipeline {
    /// A Pipeline with this name and spec.
    pub fn new(name: &str, spec: PipelineSpec) -> Self {
        Pipeline {
            api_version: API_VERSION.into(),
            kind: "Pipeline".into(),
            metadata: named(name),
            spec,
            extra: Extra::default(),
        }
    }
}

impl Task {
    /// A Task with this name and spec.
    pub fn new(name: &str, spec: TaskSpec) -> Self {
        Task {
            api_version: API_VERSION.into(),
            kind: "Task".into(),
            metadata: named(name),
            spec,
            extra: Extra::default(),
        }
    }
}

impl PipelineRun {
    /// A PipelineRun with this metadata and spec.
    pub fn new(metadata: ObjectMeta, spec: PipelineRunSpec) -> Self {
        PipelineRun {
            api_version: API_VERSION.into(),
            kind: "PipelineRun".into(),
            metadata,
            spec,
            status: None,
            extra: Extra::default(),
        }
    }

    /// The `Succeeded` condition, if Tekton has set one.
    pub fn condition(&self) -> Option<&Condition> {
        succeeded_condition(self.status.as_ref()?.conditions.as_ref())
    }

    /// Finished or not, and how.
    pub fn outcome(&self) -> Outcome {
        outcome(self.condition())
    }
}

impl TaskRun {
    /// A TaskRun with this metadata and spec.
    pub fn new(metadata: ObjectMeta, spec: TaskRunSpec) -> Self {
        TaskRun {
            api_version: API_VERSION.into(),
            kind: "TaskRun".into(),
            metadata,
            spec,
            status: None,
            extra: Extra::default(),
        }
    }

    /// The `Succeeded` condition, if Tekton has set one.
    pub fn condition(&self) -> Option<&Condition> {
        succeeded_condition(self.status.as_ref()?.conditions.as_ref())
    }

    /// Finished or not, and how.
    pub fn outcome(&self) -> Outcome {
        outcome(self.condition())
    }
}

fn named(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        ..ObjectMeta::default()
    }
}

/// One of the four Tekton kinds this crate models.
// Objects are read once per file and moved rarely: boxing would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TektonObject {
    /// A Pipeline.
    Pipeline(Pipeline),
    /// A Task.
    Task(Task),
    /// A PipelineRun.
    PipelineRun(PipelineRun),
    /// A TaskRun.
    TaskRun(TaskRun),
}

/// An object could not be read into the typed model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// `apiVersion`/`kind` are not one of the four `tekton.dev/v1` kinds.
    #[error("not a tekton.dev/v1 Pipeline, Task, PipelineRun or TaskRun: {api_version}/{kind}")]
    NotTekton {
        /// The object's apiVersion.
        api_version: String,
        /// The object's kind.
        kind: String,
    },
    /// A field has the wrong shape.
    #[error("{path}: {message}")]
    Invalid {
        /// Where (`.spec.tasks[0].retries`).
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Reads `T` from JSON, naming the field that does not fit.
pub fn from_value<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, ModelError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ModelError::Invalid {
            path: if path == "." {
                path
            } else {
                format!(".{path}")
            },
            message: e.into_inner().to_string(),
        }
    })
}

impl TektonObject {
    /// Whether `value` claims to be one of the four kinds (by apiVersion and kind).
    pub fn is_tekton(value: &Value) -> bool {
        value.get("apiVersion").and_then(Value::as_str) == Some(API_VERSION)
            && matches!(
                value.get("kind").and_then(Value::as_str),
                Some("Pipeline" | "Task" | "PipelineRun" | "TaskRun")
            )
    }

    /// Reads an object, keeping unknown fields (see [`check`] for the strict reading).
    pub fn from_value(value: &Value) -> Result<Self, ModelError> {
        let api_version = value.get("apiVersion").and_then(Value::as_str);
        let kind = value.get("kind").and_then(Value::as_str);
        match (api_version, kind) {
            (Some(API_VERSION), Some("Pipeline")) => from_value(value).map(Self::Pipeline),
            (Some(API_VERSION), Some("Task")) => from_value(value).map(Self::Task),
            (Some(API_VERSION), Some("PipelineRun")) => from_value(value).map(Self::PipelineRun),
            (Some(API_VERSION), Some("TaskRun")) => from_value(value).map(Self::TaskRun),
            _ => Err(ModelError::NotTekton {
                api_version: api_version.unwrap_or_default().to_string(),
                kind: kind.unwrap_or_default().to_string(),
            }),
        }
    }

    /// The object as JSON.
    pub fn to_value(&self) -> Value {
        // Serialising these types cannot fail: every map key is a string.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Pipeline(_) => "Pipeline",
            Self::Task(_) => "Task",
            Self::PipelineRun(_) => "PipelineRun",
            Self::TaskRun(_) => "TaskRun",
        }
    }

    /// The metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Self::Pipeline(o) => &o.metadata,
            Self::Task(o) => &o.metadata,
            Self::PipelineRun(o) => &o.metadata,
            Self::TaskRun(o) => &o.metadata,
        }
    }

    /// `Kind/name` (or `Kind/generateName*`), for messages.
    pub fn display_name(&self) -> String {
        let meta = self.metadata();
        match (&meta.name, &meta.generate_name) {
            (Some(name), _) => format!("{}/{name}", self.kind()),
            (None, Some(prefix)) => format!("{}/{prefix}*", self.kind()),
            (None, None) => format!("{}/<unnamed>", self.kind()),
        }
    }
}

impl<'de> Deserialize<'de> for TektonObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        TektonObject::from_value(&value).map_err(serde::de::Error::custom)
    }
}
