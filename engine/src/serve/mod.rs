//! `keelson serve`: the long-running engine. Webhook deliveries and cron polls feed one
//! queue of triggers; each trigger fetches a commit, finds the targets it touches, runs
//! their pipeline gates, and syncs them to their clusters, reporting to GitHub, to the
//! clusters (Events) and to `/metrics` and `/api/v1/targets`.
//!
//! - [`config`]: the engine's own settings file (`keelson serve --config FILE`).
//! - [`github`]: GitHub commit statuses per target and cluster.
pub mod config;
pub mod github;
