//! `keelson serve`: the long-running engine. Webhook deliveries and cron polls feed one
//! queue of triggers; each trigger fetches a commit, finds the targets it touches, runs
//! their pipeline gates, and syncs them to their clusters, reporting to GitHub, to the
//! clusters (Events) and to `/metrics` and `/api/v1/targets`.
//!
//! - [`config`]: the engine's own settings file (`keelson serve --config FILE`).
//! - [`lease`]: scale-out, replicas sharing the clusters out with Leases.
//! - [`github`]: GitHub commit statuses per target and cluster.
pub mod allocator;
pub mod config;
pub mod engine;
pub mod events;
pub mod github;
pub mod http;
pub mod lease;
pub mod queue;
pub mod repositories;
pub mod run;
pub mod state;
