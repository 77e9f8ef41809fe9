//! Keelson: a GitOps CI/CD and multi-cluster sync engine.
//!
//! The stages (source, config, render, plan, apply, report) live in one module each; the
//! `keelson` binary only parses arguments and prints.

pub mod apply;
pub mod cluster;
pub mod config;
pub mod gate;
pub mod inventory;
pub mod pipelines;
pub mod plan;
pub mod render;
pub mod serve;
pub mod source;
pub mod sync;
pub mod tenancy;
pub mod time;
/// The YAML boundary, shared with the renderer.
pub use keelson_render::yaml;
