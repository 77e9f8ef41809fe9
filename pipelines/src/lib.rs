//! Keelson's CI layer on Tekton: Tekton's `tekton.dev/v1` objects as Rust types
//! ([`model`]), checks of the rules Tekton's admission enforces, a builder for runs,
//! and the engine that submits PipelineRuns, watches every step and retries whole runs.
//!
//! This crate never imports the engine; it takes parsed JSON and Kubernetes clients.

pub mod builder;
pub mod check;
pub mod model;
pub mod run;
pub mod upstream;
pub mod validate;
pub mod watch;

pub use model::{Pipeline, PipelineRun, Task, TaskRun, TektonObject};
