//! Following a PipelineRun: its TaskRuns' steps as events, delivered once each.

pub mod events;

pub use events::{Ending, Event, Keyed, StepRef, TaskRunRef, pipeline_run_event, task_run_events};
