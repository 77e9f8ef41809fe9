//! One delivery from headers and raw body to what it asks for: verify, then parse.
//!
//! Pure and synchronous, so the HTTP layer stays thin and the fuzz target can drive exactly
//! the code a request goes through.

use std::time::Duration;

use http::{HeaderMap, StatusCode};

use crate::config::{Limits, Secret};
use crate::event::{Event, EventError};
use crate::host::{Host, Proof};
use crate::payload::{self, PayloadError};
use crate::signature::{self, SignatureError, StandardWebhook};
use crate::trigger::Trigger;

/// The headers a delivery is judged by, as raw bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeliveryHeaders<'a> {
    /// `Content-Type`.
    pub content_type: Option<&'a [u8]>,
    /// The host's signature header (`X-Hub-Signature-256`, `X-Gitea-Signature`, …).
    pub signature: Option<&'a [u8]>,
    /// GitLab's `X-Gitlab-Token`.
    pub token: Option<&'a [u8]>,
    /// GitLab's Standard Webhooks signature, when it signs.
    pub standard: StandardWebhook<'a>,
    /// The event (`X-GitHub-Event`, `X-Gitlab-Event`, `X-Event-Key`, …).
    pub event: Option<&'a [u8]>,
    /// The delivery id (`X-GitHub-Delivery`, `Idempotency-Key`, `X-Request-UUID`, …).
    pub delivery: Option<&'a [u8]>,
}

impl<'a> DeliveryHeaders<'a> {
    /// Picks `host`'s delivery headers out of a request's headers.
    pub fn from_map(host: Host, headers: &'a HeaderMap) -> Self {
        let get = |name: &str| headers.get(name).map(|v| v.as_bytes());
        let first = |names: &[&str]| names.iter().find_map(|n| get(n));
        Self {
            content_type: get("content-type"),
            signature: match host.proof() {
                Proof::PrefixedHmac(header) => get(header),
                Proof::HexHmac(headers) => first(headers),
                Proof::GitLab => None,
            },
            token: get("x-gitlab-token"),
            standard: StandardWebhook {
                id: get("webhook-id"),
                timestamp: get("webhook-timestamp"),
                signature: get("webhook-signature"),
            },
            event: get(host.event_header()),
            delivery: first(host.delivery_headers()),
        }
    }
}

/// A verified, parsed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The host's delivery id.
    pub id: String,
    /// The host's event name.
    pub event: String,
    /// What it asks for.
    pub action: Action,
}

/// What a delivery asks of Keelson.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Queue these triggers (one per ref: a Bitbucket push may hold several).
    Triggers(Vec<Trigger>),
    /// Answer a ping.
    Ping,
    /// Acknowledge, do nothing.
    Ignored,
}

/// Why a delivery was refused; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// The body is over the limit (by `Content-Length` or as read).
    #[error("request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Not JSON nor a form.
    #[error(transparent)]
    UnsupportedMediaType(PayloadError),
    /// The client did not send the body in time.
    #[error("request body not received within {0:?}")]
    BodyTimeout(Duration),
    /// The body ended early or the connection failed.
    #[error("request body could not be read: {0}")]
    BodyRead(String),
    /// The signature is missing, malformed or wrong.
    #[error(transparent)]
    Signature(SignatureError),
    /// A required GitHub header is missing or not a plain token.
    #[error("missing or invalid {0} header")]
    Header(&'static str),
    /// The body does not hold a usable JSON object.
    #[error(transparent)]
    Payload(PayloadError),
    /// The JSON is not a valid event of its declared type.
    #[error(transparent)]
    Event(EventError),
    /// No room for another ref in the trigger queue.
    #[error("trigger queue is full, try again later")]
    QueueFull,
    /// Bodies in flight already hold the receiver's whole body budget.
    #[error("too many request bodies in flight, try again later")]
    Busy,
    /// The process is shutting down.
    #[error("shutting down, deliver again later")]
    ShuttingDown,
}

impl Rejection {
    /// The HTTP status answered.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Signature(_) => StatusCode::UNAUTHORIZED,
            Self::Event(e) if !e.is_syntax() => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BodyRead(_) | Self::Header(_) | Self::Payload(_) | Self::Event(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::QueueFull | Self::Busy | Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `outcome` label of the deliveries metric.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::BodyTimeout(_) => "timeout",
            Self::BodyRead(_) => "truncated",
            Self::Signature(_) => "unauthorized",
            Self::Header(_) | Self::Payload(_) => "bad_request",
            Self::Event(e) if e.is_syntax() => "bad_request",
            Self::Event(_) => "invalid",
            Self::QueueFull => "queue_full",
            Self::Busy => "busy",
            Self::ShuttingDown => "shutting_down",
        }
    }
}

/// Verifies and parses one delivery from `host`. The proof is checked over the raw body
/// before any of it is decoded or parsed; the other headers are read only once it holds.
pub fn inspect(
    host: Host,
    secret: &Secret,
    limits: &Limits,
    headers: DeliveryHeaders<'_>,
    body: &[u8],
) -> Result<Delivery, Rejection> {
    let content_type =
        payload::content_type(headers.content_type).map_err(Rejection::UnsupportedMediaType)?;
    if body.len() > limits.max_body_bytes {
        return Err(Rejection::TooLarge {
            limit: limits.max_body_bytes,
        });
    }
    verify(host, secret, headers, body).map_err(Rejection::Signature)?;
    let event = token(headers.event, 64).ok_or(Rejection::Header(host.event_header()))?;
    let id = token(headers.delivery, 128).ok_or(Rejection::Header(host.delivery_headers()[0]))?;
    // Bitbucket Server's "Test connection" may come with no body at all.
    let json = if body.is_empty() && event == "diagnostics:ping" {
        std::borrow::Cow::Borrowed("{}")
    } else {
        payload::json_text(content_type, body, limits.max_json_depth).map_err(Rejection::Payload)?
    };
    let events = crate::hosts::parse(host, event, &json).map_err(Rejection::Event)?;
    let mut triggers = Vec::new();
    let mut ping = false;
    for e in events {
        match e {
            Event::Push(push) => triggers.push(Trigger::from_push(host, id, push)),
            Event::PullRequest(pr) => triggers.push(Trigger::from_pull_request(host, id, pr)),
            Event::Ping => ping = true,
            Event::Ignored => {}
        }
    }
    let action = match (triggers.is_empty(), ping) {
        (false, _) => Action::Triggers(triggers),
        (true, true) => Action::Ping,
        (true, false) => Action::Ignored,
    };
    Ok(Delivery {
        id: id.to_owned(),
        event: event.to_owned(),
        action,
    })
}

/// The host's proof of the delivery.
fn verify(
    host: Host,
    secret: &Secret,
    headers: DeliveryHeaders<'_>,
    body: &[u8],
) -> Result<(), SignatureError> {
    match host.proof() {
        Proof::PrefixedHmac(_) => signature::verify(secret, headers.signature, body),
        Proof::HexHmac(_) => signature::verify_hex(secret, headers.signature, body),
        // A signing token (`whsec_…`) signs; a secret token is sent as it is.
        Proof::GitLab if secret.expose().starts_with(b"whsec_") => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            signature::verify_standard(secret, headers.standard, body, now)
        }
        Proof::GitLab => signature::verify_token(secret, headers.token),
    }
}

/// A header value that is a plain token (letters, digits, `-`, `_`, `.`, `:` and inner
/// spaces: GitLab's `Push Hook`, Bitbucket's `repo:push`) of at most `max` bytes.
fn token(value: Option<&[u8]>, max: usize) -> Option<&str> {
    let value = value?;
    let plain = value
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b' '));
    let trimmed = value.first() != Some(&b' ') && value.last() != Some(&b' ');
    if plain && trimmed && !value.is_empty() && value.len() <= max {
        std::str::from_utf8(value).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new(b"s".to_vec()).unwrap()
    }

    fn headers<'a>(event: &'a str, sig: &'a str) -> DeliveryHeaders<'a> {
        DeliveryHeaders {
            content_type: Some(b"application/json"),
            signature: Some(sig.as_bytes()),
            event: Some(event.as_bytes()),
            delivery: Some(b"72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ..DeliveryHeaders::default()
        }
    }

    fn inspect(
        secret: &Secret,
        limits: &Limits,
        headers: DeliveryHeaders<'_>,
        body: &[u8],
    ) -> Result<Delivery, Rejection> {
        super::inspect(Host::GitHub, secret, limits, headers, body)
    }

    #[test]
    fn verify_before_parse_and_statuses() {
        let limits = Limits::default();
        let body = b"[not json";
        let sig = signature::sign(b"s", body);
        // A bad signature wins over a bad body.
        let err = inspect(&secret(), &limits, headers("push", "sha256=00"), body).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
        let err = inspect(&secret(), &limits, headers("push", &sig), body).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let ok = b"{}";
        let sig = signature::sign(b"s", ok);
        let err = inspect(&secret(), &limits, headers("push", &sig), ok).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let d = inspect(&secret(), &limits, headers("fork", &sig), ok).unwrap();
        assert_eq!((d.event.as_str(), d.action), ("fork", Action::Ignored));
        for bad_event in ["", "push\n", " a", "a\tb", &"x".repeat(65)] {
            let err = inspect(&secret(), &limits, headers(bad_event, &sig), ok).unwrap_err();
            assert!(
                matches!(err, Rejection::Header("x-github-event")),
                "{bad_event:?}"
            );
        }
        let mut h = headers("ping", &sig);
        h.delivery = None;
        assert!(matches!(
            inspect(&secret(), &limits, h, ok),
            Err(Rejection::Header("x-github-delivery"))
        ));
        h.content_type = Some(b"text/plain");
        let err = inspect(&secret(), &limits, h, ok).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
