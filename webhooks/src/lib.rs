//! Keelson's GitHub webhook receiver: deliveries in, verified, deduplicated and coalesced
//! [`Trigger`]s out.
//!
//! It knows GitHub, not the engine. [`Receiver::new`] gives the HTTP side (an axum
//! [`Router`](axum::Router), or [`Receiver::serve`] with the receiver's own timeouts) and a
//! [`Triggers`] handle the engine takes triggers from.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use keelson_webhooks::{Config, Receiver, Secret};
//! let secret = Secret::load(None).expect("KEELSON_WEBHOOK_SECRET is set");
//! let (receiver, triggers) = Receiver::new(Config::new(secret));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! tokio::spawn(receiver.serve(listener, std::future::pending()));
//! while let Some(trigger) = triggers.recv().await {
//!     println!("{} {} -> {}", trigger.repository, trigger.git_ref, trigger.after);
//! }
//! # Ok(())
//! # }
//! ```

pub mod budget;
pub mod config;
pub mod dedupe;
pub mod delivery;
pub mod event;
pub mod host;
mod hosts;
pub mod listener;
pub mod metrics;
pub mod payload;
pub mod queue;
pub mod server;
pub mod signature;
pub mod trigger;

pub use config::{
    Config, ConfigError, DEFAULT_MAX_BODY_BYTES, GITHUB_MAX_BODY_BYTES, Limits, Secret,
};
pub use delivery::{Action, Delivery, DeliveryHeaders, Rejection, inspect};
pub use host::Host;
pub use listener::ConnectionLimits;
pub use queue::Triggers;
pub use server::{HOOK_PATH, Receiver};
pub use trigger::{Trigger, TriggerKind};
