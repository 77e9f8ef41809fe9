//! The HTTP side: routes, the delivery handler, and a hyper server with the receiver's
//! own limits (head read timeout, head size, connection count).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::{Config, Limits};
use crate::dedupe::Dedupe;
use crate::delivery::{self, Action, DeliveryHeaders, Rejection};
use crate::metrics::Metrics;
use crate::payload;
use crate::queue::{Enqueued, TriggerQueue, Triggers};

/// Where GitHub posts deliveries.
pub const HOOK_PATH: &str = "/hooks/github";

/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Shared {
    config: Config,
    dedupe: Dedupe,
    queue: Arc<TriggerQueue>,
    metrics: Arc<Metrics>,
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
            config,
            queue: queue.clone(),
            metrics,
        });
        (Self { shared }, Triggers::new(queue))
    }

    /// The routes: `POST /hooks/github`, `GET /healthz`, `/readyz`, `/metrics`. Serve it with
    /// [`Receiver::serve`], or mount it in a larger router: then the body limit and read
    /// timeout still hold, the head timeout and connection limit are the server's to set.
    pub fn router(&self) -> Router {
        Router::new()
            .route(HOOK_PATH, post(hook))
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

    /// Serves HTTP/1.1 on `listener` until `shutdown` completes, then waits (up to 10 s) for
    /// requests in flight and closes the trigger stream.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        let limits = self.shared.config.limits.clone();
        let router = self.router();
        let http = http1_builder(&limits);
        let graceful = GracefulShutdown::new();
        let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break, // never closed
                },
            };
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // Small responses on a kept-alive connection: do not wait for Nagle.
            let _ = stream.set_nodelay(true);
            let router = router.clone();
            let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                let mut router = router.clone();
                async move {
                    let response: Result<Response, Infallible> =
                        tower_service::Service::call(&mut router, request.map(Body::new)).await;
                    response
                }
            });
            let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    // Head timeouts, oversized heads, resets: the client's problem, not ours.
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                drop(permit);
            });
        }
        drop(listener);
        if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("requests still in flight after {SHUTDOWN_GRACE:?}; closing anyway");
        }
        self.close();
        Ok(())
    }
}

fn http1_builder(limits: &Limits) -> http1::Builder {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // A larger head (start line + headers) gets 431 and the connection is closed.
        .max_header_size(limits.max_header_bytes)
        .keep_alive(true);
    http
}

async fn ready(State(shared): State<Arc<Shared>>) -> Response {
    if shared.queue.has_room() {
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

async fn hook(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let start = Instant::now();
    let (parts, body) = request.into_parts();
    let result = receive(&shared, &parts.headers, body).await;
    let elapsed = start.elapsed();
    match result {
        Ok((event, id, accepted)) => {
            shared.metrics.delivery(&event, accepted.outcome(), elapsed);
            tracing::debug!(delivery = %id, %event, outcome = accepted.outcome(), "delivery accepted");
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
                .get("x-github-event")
                .and_then(|v| v.to_str().ok());
            let event = event
                .filter(|e| verified && is_label(e))
                .unwrap_or("unknown");
            shared.metrics.delivery(event, rejection.outcome(), elapsed);
            let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
            let peer = peer.map(|ConnectInfo(p)| p.to_string()).unwrap_or_default();
            if let Rejection::Signature(_) = rejection {
                shared.metrics.signature_failure();
                tracing::warn!(%peer, error = %rejection, "delivery refused");
            } else {
                tracing::info!(%peer, %event, error = %rejection, "delivery refused");
            }
            reject(&rejection)
        }
    }
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
    let body = read_body(body, limits).await?;
    let delivery = delivery::inspect(
        &shared.config.secret,
        limits,
        DeliveryHeaders::from_map(headers),
        &body,
    )?;
    if !shared.dedupe.first_time(&delivery.id) {
        shared.metrics.duplicate();
        return Ok((delivery.event, delivery.id, Accepted::Duplicate));
    }
    let accepted = match delivery.action {
        Action::Trigger(trigger) => match shared.queue.push(trigger) {
            Ok(Enqueued::Queued) => Accepted::Queued,
            Ok(Enqueued::Coalesced) => Accepted::Coalesced,
            Err(_) => {
                // Not taken: GitHub's redelivery (same id) must not count as a duplicate.
                shared.dedupe.forget(&delivery.id);
                return Err(Rejection::QueueFull);
            }
        },
        Action::Ping => Accepted::Ping,
        Action::Ignored => Accepted::Ignored,
    };
    Ok((delivery.event, delivery.id, accepted))
}

/// The whole body, within the size limit and the read timeout.
async fn read_body(body: Body, limits: &Limits) -> Result<Bytes, Rejection> {
    let limited = Limited::new(body, limits.max_body_bytes);
    match tokio::time::timeout(limits.body_read_timeout, limited.collect()).await {
        Err(_) => Err(Rejection::BodyTimeout(limits.body_read_timeout)),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<LengthLimitError>() => Err(Rejection::TooLarge {
            limit: limits.max_body_bytes,
        }),
        Ok(Err(error)) => Err(Rejection::BodyRead(error.to_string())),
    }
}
