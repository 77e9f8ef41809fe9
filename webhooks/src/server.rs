//! The HTTP side: routes, the delivery handler, and a hyper server with the receiver's
//! own limits (head read timeout, head size, connection count).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use tokio::net::TcpListener;

use crate::budget::{BodyBudget, Held};
use crate::config::{Config, Limits};
use crate::dedupe::Dedupe;
use crate::delivery::{self, Action, DeliveryHeaders, Rejection};
use crate::host::Host;
use crate::metrics::Metrics;
use crate::payload;
use crate::queue::{Enqueued, TriggerQueue, Triggers};

/// Where GitHub posts deliveries (each host has its route: [`Host::path`]).
pub const HOOK_PATH: &str = "/hooks/github";

#[derive(Debug)]
struct Shared {
    config: Config,
    dedupe: Dedupe,
    queue: Arc<TriggerQueue>,
    metrics: Arc<Metrics>,
    /// Bytes of bodies being read, over all connections.
    budget: BodyBudget,
    /// Set by [`Receiver::drain`].
    draining: AtomicBool,
}

impl Drop for Shared {
    /// The last router or receiver is gone: no more triggers can come.
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// The webhook receiver: the HTTP side of a trigger queue.
#[derive(Debug, Clone)]
pub struct Receiver {
    shared: Arc<Shared>,
}

impl Receiver {
    /// A receiver and the handle its triggers come out of.
    pub fn new(config: Config) -> (Self, Triggers) {
        let metrics = Arc::new(Metrics::default());
        let queue = Arc::new(TriggerQueue::new(
            config.queue_capacity,
            config.coalesce_window,
            metrics.clone(),
        ));
        let shared = Arc::new(Shared {
            dedupe: Dedupe::new(config.dedupe_capacity),
            budget: BodyBudget::new(config.limits.max_inflight_body_bytes),
            draining: AtomicBool::new(false),
            config,
            queue: queue.clone(),
            metrics,
        });
        (Self { shared }, Triggers::new(queue))
    }

    /// The routes: `POST /hooks/<host>` for every [`Host`], `GET /healthz`, `/readyz`,
    /// `/metrics`. Serve it with [`Receiver::serve`], or mount it in a larger router: then
    /// the body limit and read timeout still hold, the head timeout and connection limit
    /// are the server's to set.
    pub fn router(&self) -> Router {
        let mut router = Router::new();
        for host in Host::ALL {
            router = router.route(
                host.path(),
                post(move |state, request| hook(host, state, request)),
            );
        }
        router
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(ready))
            .route("/metrics", get(metrics))
            .with_state(self.shared.clone())
    }

    /// The receiver's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Ends the trigger stream: nothing more is queued, the consumer drains what is left.
    pub fn close(&self) {
        self.shared.queue.close();
    }

    /// Serves HTTP/1.1 on `listener` (the [`listener`](crate::listener)'s limits) until
    /// `shutdown` completes, then waits for requests in flight and closes the trigger stream.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        let limits = self.shared.config.limits.connection.clone();
        let served = crate::listener::serve(listener, self.router(), &limits, shutdown).await;
        self.close();
        served
    }

    /// From now on deliveries get 503 and `/readyz` says not ready: the process is
    /// shutting down and GitHub should see the delivery as failed (to redeliver it later)
    /// rather than as taken.
    pub fn drain(&self) {
        self.shared.draining.store(true, Ordering::Relaxed);
    }
}

async fn ready(State(shared): State<Arc<Shared>>) -> Response {
    if shared.draining.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else if shared.queue.has_room() {
        "ready\n".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "trigger queue full or closed\n",
        )
            .into_response()
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    ([(CONTENT_TYPE, content_type)], shared.metrics.render()).into_response()
}

/// What became of an accepted delivery.
#[derive(Debug, Clone, Copy)]
enum Accepted {
    Queued,
    Coalesced,
    Duplicate,
    Ping,
    Ignored,
}

impl Accepted {
    fn outcome(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Coalesced => "coalesced",
            Self::Duplicate => "duplicate",
            Self::Ping => "ping",
            Self::Ignored => "ignored",
        }
    }

    fn response(self) -> Response {
        let (status, body) = match self {
            Self::Queued => (StatusCode::ACCEPTED, r#"{"outcome":"queued"}"#),
            Self::Coalesced => (StatusCode::ACCEPTED, r#"{"outcome":"coalesced"}"#),
            Self::Duplicate => (StatusCode::OK, r#"{"outcome":"duplicate"}"#),
            Self::Ping => (StatusCode::OK, r#"{"outcome":"pong"}"#),
            Self::Ignored => (StatusCode::OK, r#"{"outcome":"ignored"}"#),
        };
        let json = HeaderValue::from_static("application/json");
        (status, [(CONTENT_TYPE, json)], body).into_response()
    }
}

async fn hook(host: Host, State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let start = Instant::now();
    let (parts, body) = request.into_parts();
    let result = receive(host, &shared, &parts.headers, body).await;
    let elapsed = start.elapsed();
    match result {
        Ok((event, id, accepted)) => {
            let event = label(&event);
            shared
                .metrics
                .delivery(host, &event, accepted.outcome(), elapsed);
            tracing::debug!(%host, delivery = %id, %event, outcome = accepted.outcome(), "delivery accepted");
            accepted.response()
        }
        Err(rejection) => {
            // The event name is only trusted (as a metric label) once the signature holds.
            let verified = matches!(
                rejection,
                Rejection::Header(_)
                    | Rejection::Payload(_)
                    | Rejection::Event(_)
                    | Rejection::QueueFull
            );
            let event = parts
                .headers
                .get(host.event_header())
                .and_then(|v| v.to_str().ok())
                .filter(|_| verified)
                .map(label)
                .filter(|e| is_label(e))
                .unwrap_or_else(|| "unknown".into());
            shared
                .metrics
                .delivery(host, &event, rejection.outcome(), elapsed);
            let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
            let peer = peer.map(|ConnectInfo(p)| p.to_string()).unwrap_or_default();
            if let Rejection::Signature(_) = rejection {
                shared.metrics.signature_failure();
                tracing::warn!(%host, %peer, error = %rejection, "delivery refused");
            } else {
                tracing::info!(%host, %peer, %event, error = %rejection, "delivery refused");
            }
            reject(&rejection)
        }
    }
}

/// An event name as a metric label: lowercase, `_` for anything but letters and digits
/// (`Push Hook` → `push_hook`, `repo:push` → `repo_push`).
fn label(event: &str) -> String {
    event
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .collect()
}

fn is_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

fn reject(rejection: &Rejection) -> Response {
    let mut response = (rejection.status(), format!("{rejection}\n")).into_response();
    // The body may be left unread: the connection cannot carry another request.
    if matches!(
        rejection,
        Rejection::TooLarge { .. }
            | Rejection::Busy
            | Rejection::BodyTimeout(_)
            | Rejection::BodyRead(_)
            | Rejection::UnsupportedMediaType(_)
    ) {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Size and type from the head, then the body within the limits, then verify + parse,
/// then deduplicate and queue.
async fn receive(
    host: Host,
    shared: &Shared,
    headers: &HeaderMap,
    body: Body,
) -> Result<(String, String, Accepted), Rejection> {
    let limits = &shared.config.limits;
    // Refuse what is announced too large or of the wrong type before reading any of it.
    let announced = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|len| len > limits.max_body_bytes as u64) {
        return Err(Rejection::TooLarge {
            limit: limits.max_body_bytes,
        });
    }
    payload::content_type(headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes))
        .map_err(Rejection::UnsupportedMediaType)?;
    if shared.draining.load(Ordering::Relaxed) {
        return Err(Rejection::ShuttingDown);
    }
    // The bytes held stay reserved until this delivery is handled.
    let (body, _held) = read_body(body, limits, &shared.budget, announced).await?;
    let delivery = delivery::inspect(
        host,
        shared.config.secret_for(host),
        limits,
        DeliveryHeaders::from_map(host, headers),
        &body,
    )?;
    // Ids are the host's: two hosts may well use the same one.
    let key = format!("{host}/{}", delivery.id);
    if !shared.dedupe.first_time(&key) {
        shared.metrics.duplicate();
        return Ok((delivery.event, delivery.id, Accepted::Duplicate));
    }
    let accepted = match delivery.action {
        Action::Triggers(triggers) => {
            let mut accepted = Accepted::Coalesced;
            for trigger in triggers {
                match shared.queue.push(trigger) {
                    Ok(Enqueued::Queued) => accepted = Accepted::Queued,
                    Ok(Enqueued::Coalesced) => {}
                    Err(_) => {
                        // Not taken: the host's redelivery (same id) must not count as a
                        // duplicate (what was queued of it coalesces with it).
                        shared.dedupe.forget(&key);
                        return Err(Rejection::QueueFull);
                    }
                }
            }
            accepted
        }
        Action::Ping => Accepted::Ping,
        Action::Ignored => Accepted::Ignored,
    };
    Ok((delivery.event, delivery.id, accepted))
}

/// The whole body, within the size limit, the read timeout and the shared budget: the
/// announced length is reserved before anything is read, and every byte past it as it
/// arrives, so the bodies held at once never exceed the budget.
async fn read_body(
    body: Body,
    limits: &Limits,
    budget: &BodyBudget,
    announced: Option<u64>,
) -> Result<(Bytes, Held), Rejection> {
    let announced = announced.map_or(0, |n| n as usize);
    let mut held = budget.reserve(announced).ok_or(Rejection::Busy)?;
    let read = async {
        let mut buf = BytesMut::with_capacity(announced);
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Rejection::BodyRead(e.to_string()))?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            if buf.len() + data.len() > limits.max_body_bytes {
                return Err(Rejection::TooLarge {
                    limit: limits.max_body_bytes,
                });
            }
            held.grow_to(buf.len() + data.len())
                .then_some(())
                .ok_or(Rejection::Busy)?;
            buf.extend_from_slice(&data);
        }
        Ok(buf.freeze())
    };
    match tokio::time::timeout(limits.body_read_timeout, read).await {
        Err(_) => Err(Rejection::BodyTimeout(limits.body_read_timeout)),
        Ok(Ok(bytes)) => Ok((bytes, held)),
        Ok(Err(rejection)) => Err(rejection),
    }
}
