//! Why a target did not sync to a cluster: one enum for the orchestration layer (the CLI's
//! diff and sync, and `keelson serve`), each variant keeping its cause.

use std::sync::Arc;

use crate::apply;
use crate::cluster::ClusterError;
use crate::config::Denial;
use crate::gate::GateError;
use crate::plan::PlanError;
use crate::render::RenderError;

/// A (target, cluster) did not sync, or could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The selection names a target or cluster `keelson.yaml` does not have.
    #[error("no {what} {name:?} in keelson.yaml")]
    Selection { what: &'static str, name: String },
    /// The target did not render (shared by every cluster of the target).
    #[error("render: {0}")]
    Render(#[source] Arc<RenderError>),
    /// The cluster could not be reached.
    #[error(transparent)]
    Connect(ClusterError),
    /// Planning (discovery, the dry-run, the inventory) failed.
    #[error(transparent)]
    Plan(PlanError),
    /// Applying, waiting or recording failed, or objects were refused.
    #[error(transparent)]
    Apply(apply::SyncError),
    /// A sync window holds the sync back.
    #[error("cluster {cluster}: {denial}{}", if denial.manual_sync { "" } else { " (--override-windows syncs anyway)" })]
    Window { cluster: String, denial: Denial },
    /// The target's pipeline gate could not decide.
    #[error("pipeline gate: {0}")]
    Gate(#[source] GateError),
}

impl From<ClusterError> for Error {
    fn from(e: ClusterError) -> Self {
        Error::Connect(e)
    }
}

impl From<PlanError> for Error {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::Cluster(c) => Error::Connect(c),
            other => Error::Plan(other),
        }
    }
}

impl From<apply::SyncError> for Error {
    fn from(e: apply::SyncError) -> Self {
        match e {
            apply::SyncError::Plan(p) => p.into(),
            other => Error::Apply(other),
        }
    }
}

impl From<GateError> for Error {
    fn from(e: GateError) -> Self {
        Error::Gate(e)
    }
}

impl Error {
    /// A stable, low-cardinality name of the failure, for metric labels and statuses.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Selection { .. } => "selection",
            Error::Render(_) => "render",
            Error::Connect(_) => "connect",
            Error::Plan(_) => "plan",
            Error::Apply(apply::SyncError::PruneRefused { .. }) => "prune",
            Error::Apply(apply::SyncError::Invalid { .. }) => "invalid",
            Error::Apply(apply::SyncError::NotGranted { .. }) => "not_granted",
            Error::Apply(apply::SyncError::Unhealthy { .. } | apply::SyncError::Failed { .. }) => {
                "health"
            }
            Error::Apply(apply::SyncError::Fenced { .. }) => "fenced",
            Error::Apply(apply::SyncError::ParentChanged { .. }) => "conflict",
            Error::Apply(_) => "apply",
            Error::Window { .. } => "window",
            Error::Gate(_) => "gate",
        }
    }

    /// Whether trying the same commit again later can succeed without anyone changing
    /// anything: not for a render error, a bad selection, a refused prune or a broken
    /// pipeline definition, which wait for a new commit (or a person) instead.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            Error::Selection { .. }
                | Error::Render(_)
                | Error::Window { .. }
                | Error::Apply(apply::SyncError::PruneRefused { .. })
                // The operator's grant changes only with a restart.
                | Error::Apply(apply::SyncError::NotGranted { .. })
                // Another replica owns the cluster now; it syncs the commit.
                | Error::Apply(apply::SyncError::Fenced { .. })
                | Error::Gate(GateError::Definition(_) | GateError::Capped { .. })
        )
    }
}
