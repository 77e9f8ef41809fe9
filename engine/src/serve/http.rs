//! The engine's HTTP side: GitHub webhooks (the receiver's routes), `/healthz`, `/readyz`,
//! the read-only status API `GET /api/v1/targets`, and `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use keelson_webhooks::Receiver;

use super::engine::Engine;
use super::repositories::{self, RepositoryList};
use super::state::TargetStatus;

/// The status API's path.
pub const TARGETS_PATH: &str = "/api/v1/targets";
/// The repositories' health.
pub const REPOSITORIES_PATH: &str = "/api/v1/repositories";

#[derive(Clone)]
struct Shared {
    engine: Arc<Engine>,
    receiver: Option<Receiver>,
}

/// `GET /api/v1/targets`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct TargetList {
    pub targets: Vec<TargetStatus>,
}

/// The main router; `/metrics` too when `with_metrics` (no separate metrics address).
/// Anything else goes to the webhook receiver, when there is one.
pub fn router(engine: Arc<Engine>, receiver: Option<Receiver>, with_metrics: bool) -> Router {
    let shared = Shared {
        engine,
        receiver: receiver.clone(),
    };
    let mut router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route(TARGETS_PATH, get(targets))
        .route(REPOSITORIES_PATH, get(repositories));
    if with_metrics {
        router = router.route("/metrics", get(metrics));
    }
    let router = router.with_state(shared);
    match receiver {
        Some(r) => router.fallback_service(r.router()),
        None => router,
    }
}

/// The router of a separate metrics address.
pub fn metrics_router(engine: Arc<Engine>, receiver: Option<Receiver>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(Shared { engine, receiver })
}

async fn ready(State(s): State<Shared>) -> impl IntoResponse {
    if s.engine.ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
    }
}

async fn targets(State(s): State<Shared>) -> impl IntoResponse {
    let list = TargetList {
        targets: s.engine.board.snapshot(),
    };
    json(&list)
}

async fn repositories(State(s): State<Shared>) -> impl IntoResponse {
    let list = RepositoryList {
        repositories: s.engine.repositories(),
    };
    json(&list)
}

fn json(value: &impl serde::Serialize) -> axum::response::Response {
    match serde_json::to_vec(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn metrics(State(s): State<Shared>) -> impl IntoResponse {
    let mut text = s.engine.board.render_metrics();
    text.push_str(&repositories::render_metrics(&s.engine.repositories()));
    if let Some(r) = &s.receiver {
        text.push_str(&r.metrics().render());
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}
