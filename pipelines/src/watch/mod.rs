//! Following a PipelineRun: its TaskRuns' steps as events, delivered once each.

pub mod events;
mod follow;
pub mod log;

pub use events::{Ending, Event, Keyed, StepRef, TaskRunRef, pipeline_run_event, task_run_events};
pub use follow::{Callbacks, FollowOptions, follow};
pub use log::{ConfigMapLog, DeliveryLog, MemoryLog};

/// Following a run failed.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// A request to the API server failed.
    #[error("Kubernetes API: {0}")]
    Api(#[source] kube::Error),
    /// The watch cannot go on (the resource is unknown, or access is denied).
    #[error("watch failed: {0}")]
    Watch(String),
    /// The PipelineRun was deleted before it finished.
    #[error("PipelineRun {0} was deleted before it finished")]
    Deleted(String),
}
