//! Building blocks shared by several Tekton types: conditions, references, workspace
//! bindings, the pod template and provenance.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, CSIVolumeSource, ConfigMapVolumeSource, EmptyDirVolumeSource, EnvVar, HostAlias,
    LocalObjectReference, PersistentVolumeClaimSpec, PersistentVolumeClaimStatus,
    PersistentVolumeClaimVolumeSource, PodDNSConfig, PodSecurityContext, ProjectedVolumeSource,
    ResourceRequirements, SecretVolumeSource, Toleration, TopologySpreadConstraint, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_with::skip_serializing_none;

use super::{Extra, Param, WhenExpression};

/// A knative condition (`apis.Condition`): only `type` and `status` are required, unlike
/// `metav1.Condition`.
///
/// A `lastTransitionTime: null` (Go's zero time) reads as absent.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The condition type; Tekton runs use `Succeeded`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// `Error`, `Warning` or `Info`.
    pub severity: Option<String>,
    /// When the status last changed.
    pub last_transition_time: Option<Time>,
    /// A one-word reason (`Running`, `Failed`, `PipelineRunTimeout`, …).
    pub reason: Option<String>,
    /// A human-readable message.
    pub message: Option<String>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Condition {
    /// A `Succeeded` condition with this status and reason.
    pub fn succeeded(status: &str, reason: &str, message: Option<&str>) -> Self {
        Condition {
            type_: "Succeeded".into(),
            status: status.into(),
            severity: None,
            last_transition_time: None,
            reason: Some(reason.into()),
            message: message.map(str::to_string),
            extra: Extra::default(),
        }
    }
}

/// Where a run stands, read from its `Succeeded` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No condition yet, or `Unknown`: not finished.
    Running,
    /// `True`.
    Succeeded,
    /// `False`.
    Failed,
}

/// The `Succeeded` condition of a list of conditions.
pub fn succeeded_condition(conditions: Option<&Vec<Condition>>) -> Option<&Condition> {
    conditions?.iter().find(|c| c.type_ == "Succeeded")
}

/// The outcome a `Succeeded` condition says.
pub fn outcome(condition: Option<&Condition>) -> Outcome {
    match condition.map(|c| c.status.as_str()) {
        Some("True") => Outcome::Succeeded,
        Some("False") => Outcome::Failed,
        _ => Outcome::Running,
    }
}

/// A reference to a Task (by name, or through a resolver).
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRef {
    /// The Task's name.
    pub name: Option<String>,
    /// `Task`, or a custom task's kind.
    pub kind: Option<String>,
    /// A custom task's API version.
    pub api_version: Option<String>,
    /// A remote resolver (`git`, `bundles`, `hub`, `http`, `cluster`).
    pub resolver: Option<String>,
    /// The resolver's params.
    pub params: Option<Vec<Param>>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A reference to a Pipeline (by name, or through a resolver).
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRef {
    /// The Pipeline's name.
    pub name: Option<String>,
    /// The Pipeline's API version.
    pub api_version: Option<String>,
    /// A remote resolver.
    pub resolver: Option<String>,
    /// The resolver's params.
    pub params: Option<Vec<Param>>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A reference from a step to a StepAction.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRef {
    /// The StepAction's name.
    pub name: Option<String>,
    /// A remote resolver.
    pub resolver: Option<String>,
    /// The resolver's params.
    pub params: Option<Vec<Param>>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The volume behind a workspace of a run: exactly one source should be set.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceBinding {
    /// The workspace's name.
    pub name: String,
    /// A directory inside the volume.
    pub sub_path: Option<String>,
    /// A PersistentVolumeClaim created for the run.
    pub volume_claim_template: Option<VolumeClaimTemplate>,
    /// An existing PersistentVolumeClaim.
    pub persistent_volume_claim: Option<PersistentVolumeClaimVolumeSource>,
    /// An emptyDir.
    pub empty_dir: Option<EmptyDirVolumeSource>,
    /// A ConfigMap.
    pub config_map: Option<ConfigMapVolumeSource>,
    /// A Secret.
    pub secret: Option<SecretVolumeSource>,
    /// A projected volume.
    pub projected: Option<ProjectedVolumeSource>,
    /// A CSI volume.
    pub csi: Option<CSIVolumeSource>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl WorkspaceBinding {
    /// A binding to an emptyDir.
    pub fn empty_dir(name: impl Into<String>) -> Self {
        WorkspaceBinding {
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Self::named(name)
        }
    }

    /// A binding to an existing PersistentVolumeClaim.
    pub fn claim(name: impl Into<String>, claim: impl Into<String>) -> Self {
        WorkspaceBinding {
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.into(),
                read_only: None,
            }),
            ..Self::named(name)
        }
    }

    /// A binding with no volume source yet.
    pub fn named(name: impl Into<String>) -> Self {
        WorkspaceBinding {
            name: name.into(),
            sub_path: None,
            volume_claim_template: None,
            persistent_volume_claim: None,
            empty_dir: None,
            config_map: None,
            secret: None,
            projected: None,
            csi: None,
            extra: Extra::default(),
        }
    }

    /// How many volume sources are set (Tekton wants exactly one).
    pub fn source_count(&self) -> usize {
        [
            self.volume_claim_template.is_some(),
            self.persistent_volume_claim.is_some(),
            self.empty_dir.is_some(),
            self.config_map.is_some(),
            self.secret.is_some(),
            self.projected.is_some(),
            self.csi.is_some(),
        ]
        .into_iter()
        .filter(|set| *set)
        .count()
    }
}

/// A PersistentVolumeClaim to create for a run. Its own struct rather than k8s-openapi's
/// `PersistentVolumeClaim`, which always writes `apiVersion`, `kind` and `metadata`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeClaimTemplate {
    /// `v1`, when written.
    pub api_version: Option<String>,
    /// `PersistentVolumeClaim`, when written.
    pub kind: Option<String>,
    /// Name, labels, annotations.
    pub metadata: Option<ObjectMeta>,
    /// The claim.
    pub spec: Option<PersistentVolumeClaimSpec>,
    /// Its status (never set by a submitter).
    pub status: Option<PersistentVolumeClaimStatus>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Tekton's pod template (`pod.Template`): a flat subset of a PodSpec, not a
/// PodTemplateSpec.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplate {
    /// Node selector.
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Environment added to every step and sidecar.
    pub env: Option<Vec<EnvVar>>,
    /// Tolerations.
    pub tolerations: Option<Vec<Toleration>>,
    /// Affinity.
    pub affinity: Option<Affinity>,
    /// Pod security context.
    pub security_context: Option<PodSecurityContext>,
    /// Extra volumes.
    pub volumes: Option<Vec<Volume>>,
    /// Runtime class.
    pub runtime_class_name: Option<String>,
    /// Whether to mount the service account token.
    pub automount_service_account_token: Option<bool>,
    /// DNS policy.
    pub dns_policy: Option<String>,
    /// DNS configuration.
    pub dns_config: Option<PodDNSConfig>,
    /// Whether service environment variables are injected.
    pub enable_service_links: Option<bool>,
    /// Priority class.
    pub priority_class_name: Option<String>,
    /// Scheduler.
    pub scheduler_name: Option<String>,
    /// Image pull secrets.
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
    /// Host aliases.
    pub host_aliases: Option<Vec<HostAlias>>,
    /// Host network.
    pub host_network: Option<bool>,
    /// Host user namespace.
    pub host_users: Option<bool>,
    /// Topology spread constraints.
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Labels and annotations for the TaskRun of a pipeline task.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineTaskMetadata {
    /// Labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations.
    pub annotations: Option<BTreeMap<String, String>>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Compute resources for one step or sidecar of a run.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerResources {
    /// The step's or sidecar's name.
    pub name: String,
    /// Its resources.
    pub compute_resources: ResourceRequirements,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Where a run's spec came from and which feature flags applied.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// The source of the resolved spec.
    pub ref_source: Option<RefSource>,
    /// Tekton's feature flags at the time (passed through as JSON).
    pub feature_flags: Option<BTreeMap<String, Value>>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The source of a resolved spec.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefSource {
    /// Its URI.
    pub uri: Option<String>,
    /// Its digests by algorithm.
    pub digest: Option<BTreeMap<String, String>>,
    /// The entry point within it.
    pub entry_point: Option<String>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A task of a pipeline that got no TaskRun, and why.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedTask {
    /// The pipeline task's name.
    pub name: String,
    /// Why it was skipped (`When Expressions evaluated to false`, …). Absent reads as
    /// empty, as Go's zero value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The `when` expressions that decided it.
    pub when_expressions: Option<Vec<WhenExpression>>,
    /// Fields this model does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Reasons Tekton writes in `Succeeded` conditions (any other string still parses).
pub mod reasons {
    /// The run was accepted.
    pub const STARTED: &str = "Started";
    /// The run is running.
    pub const RUNNING: &str = "Running";
    /// The run succeeded.
    pub const SUCCEEDED: &str = "Succeeded";
    /// A PipelineRun succeeded with some tasks skipped.
    pub const COMPLETED: &str = "Completed";
    /// The run failed.
    pub const FAILED: &str = "Failed";
    /// The PipelineRun was cancelled.
    pub const CANCELLED: &str = "Cancelled";
    /// The PipelineRun is held (`spec.status: PipelineRunPending`).
    pub const PIPELINE_RUN_PENDING: &str = "PipelineRunPending";
    /// The PipelineRun exceeded `timeouts.pipeline`.
    pub const PIPELINE_RUN_TIMEOUT: &str = "PipelineRunTimeout";
    /// The PipelineRun is stopping (`StoppedRunFinally`, `CancelledRunFinally`).
    pub const PIPELINE_RUN_STOPPING: &str = "PipelineRunStopping";
    /// The Pipeline could not be fetched.
    pub const COULDNT_GET_PIPELINE: &str = "CouldntGetPipeline";
    /// A Task could not be fetched.
    pub const COULDNT_GET_TASK: &str = "CouldntGetTask";
    /// A failed TaskRun attempt that Tekton retries.
    pub const TO_BE_RETRIED: &str = "ToBeRetried";
    /// The TaskRun was cancelled.
    pub const TASK_RUN_CANCELLED: &str = "TaskRunCancelled";
    /// The TaskRun exceeded its timeout.
    pub const TASK_RUN_TIMEOUT: &str = "TaskRunTimeout";
}
