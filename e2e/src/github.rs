//! A fake GitHub REST API that holds clients to GitHub's published OpenAPI description
//! (the `@octokit/openapi` npm package; `e2e/tools/octokit-openapi.sh` installs it and
//! `e2e/test.sh` exports its path as `KEELSON_GITHUB_OPENAPI`).
//!
//! [`FakeGitHub`] is a real HTTP server on 127.0.0.1. For every request it finds the
//! operation (method + path template), checks path and query parameters, the
//! `Authorization` and `Accept` headers, the content type and the JSON body against the
//! operation's description ([`schema`] is the validator), and answers:
//! - a valid request: the documented success status, with the operation's example as body
//!   (the fields the request set echoed back), so a real client parses it;
//! - no matching operation: 404; no credentials: 401; anything else invalid: 422 with the
//!   problems in GitHub's error shape. Each of these is also kept as a [`Rejection`].
//!
//! Every call is recorded ([`FakeGitHub::calls`]); [`FakeGitHub::fail_next`] makes the next
//! valid requests fail with a chosen status, to test a client's retries.
//!
//! Stricter than GitHub on one point: a request without `Accept` is refused, because GitHub
//! asks clients to send `application/vnd.github+json` and Keelson always does.

pub mod openapi;
pub mod schema;

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};
use tokio::sync::watch;

pub use openapi::{Problem, Spec};

/// The environment variable holding the path of GitHub's OpenAPI description.
pub const OPENAPI_ENV: &str = "KEELSON_GITHUB_OPENAPI";

/// The headers a call records (lower case); others are dropped.
const RECORDED_HEADERS: &[&str] = &[
    "authorization",
    "accept",
    "content-type",
    "user-agent",
    "x-github-api-version",
];

/// How long a drop waits for requests in flight before the server stops anyway.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Bodies above this are refused before parsing (GitHub's own limits are far lower for JSON).
const BODY_LIMIT: usize = 10 << 20;

/// The fake could not start.
#[derive(Debug, thiserror::Error)]
pub enum FakeGitHubError {
    /// The description could not be loaded.
    #[error(transparent)]
    Spec(#[from] openapi::SpecError),
    /// The server could not start.
    #[error("starting the fake GitHub: {0}")]
    Io(#[from] std::io::Error),
}

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedCall {
    /// `POST`, `GET`, …
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The operation it matched (`repos/create-commit-status`), if any.
    pub operation: Option<String>,
    /// The body, parsed as JSON when it is JSON (else a string; `None` when empty).
    pub body: Option<Value>,
    /// The headers of interest (see `RECORDED_HEADERS`), lower-case names.
    pub headers: BTreeMap<String, String>,
    /// The status the fake answered with.
    pub status: u16,
}

/// A request the fake refused, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The request.
    pub call: RecordedCall,
    /// Every problem found.
    pub problems: Vec<String>,
}

/// A failure to answer valid requests with instead of success.
#[derive(Debug, Clone)]
struct Injected {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

#[derive(Default)]
struct Log {
    calls: Vec<RecordedCall>,
    rejections: Vec<Rejection>,
    injected: VecDeque<Injected>,
}

struct Shared {
    spec: Arc<Spec>,
    log: Mutex<Log>,
}

impl Shared {
    fn log(&self) -> MutexGuard<'_, Log> {
        match self.log.lock() {
            Ok(log) => log,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// A validating fake GitHub on loopback; stops when dropped.
pub struct FakeGitHub {
    url: String,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeGitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGitHub")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl FakeGitHub {
    /// Starts a fake serving the API described by `openapi` (e.g.
    /// `…/@octokit/openapi/generated/api.github.com.json`). It runs on its own thread and
    /// runtime, so it serves synchronous tests and other processes alike.
    pub fn start(openapi: &Path) -> Result<Self, FakeGitHubError> {
        let spec = Spec::load(openapi)?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            spec,
            log: Mutex::new(Log::default()),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (shutdown, stop) = watch::channel(false);
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let thread = std::thread::Builder::new()
            .name("fake-github".to_string())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let mut graceful = stop.clone();
                    let mut hard = stop;
                    let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                        let _ = graceful.wait_for(|stop| *stop).await;
                    });
                    // A client that keeps a request open must not hold up the drop for long.
                    let deadline = async move {
                        let _ = hard.wait_for(|stop| *stop).await;
                        tokio::time::sleep(SHUTDOWN_GRACE).await;
                    };
                    tokio::select! {
                        _ = serve => {}
                        _ = deadline => {}
                    }
                });
            })?;
        Ok(Self {
            url,
            shared,
            shutdown,
            thread: Some(thread),
        })
    }

    /// Starts a fake for the description `KEELSON_GITHUB_OPENAPI` names; `None` when the
    /// variable is unset (`e2e/test.sh` sets it), so a test can say why it skips.
    pub fn from_env() -> Option<Result<Self, FakeGitHubError>> {
        let path = std::env::var_os(OPENAPI_ENV)?;
        Some(Self::start(Path::new(&path)))
    }

    /// The base URL to give a client as its API URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request so far, in order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.shared.log().calls.clone()
    }

    /// The requests refused so far, with their problems.
    pub fn rejections(&self) -> Vec<Rejection> {
        self.shared.log().rejections.clone()
    }

    /// Answers the next `times` valid requests with `status` (and a GitHub-style message)
    /// instead of success. 403 and 429 come as secondary rate limits with `Retry-After: 1`;
    /// 502 comes with an HTML body, as GitHub's front end sends it.
    pub fn fail_next(&self, times: usize, status: u16) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (message, retry_after) = match status.as_u16() {
            403 | 429 => (
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                Some(1),
            ),
            401 => ("Bad credentials", None),
            404 => ("Not Found", None),
            422 => ("Validation Failed", None),
            _ => ("Server Error", None),
        };
        let mut log = self.shared.log();
        for _ in 0..times {
            log.injected.push_back(Injected {
                status,
                message: message.to_string(),
                retry_after,
            });
        }
    }
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .unwrap_or_default();
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let body_value = match bytes.is_empty() {
        true => None,
        false => Some(
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
        ),
    };
    let mut call = RecordedCall {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        operation: None,
        body: body_value.clone(),
        headers: headers
            .iter()
            .filter(|(name, _)| RECORDED_HEADERS.contains(&name.as_str()))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect(),
        status: 0,
    };

    let spec = shared.spec.clone();
    let Some(matched) = spec.find(&method, &path) else {
        let problem = format!("no operation for {method} {path} in the OpenAPI description");
        return reject(
            &shared,
            call,
            StatusCode::NOT_FOUND,
            "Not Found",
            vec![problem],
        );
    };
    call.operation = Some(matched.route.operation_id.clone());
    let problems = spec.check(
        &matched,
        &openapi::Request {
            headers: &headers,
            query: query.as_deref(),
            body: &bytes,
        },
    );
    if !problems.is_empty() {
        let unauthenticated = problems
            .iter()
            .any(|p| matches!(p, Problem::Unauthenticated(_)));
        let (status, message) = if unauthenticated {
            (StatusCode::UNAUTHORIZED, "Requires authentication")
        } else {
            (StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed")
        };
        let problems = problems
            .into_iter()
            .map(|p| match p {
                Problem::Unauthenticated(text) | Problem::Invalid(text) => text,
            })
            .collect();
        return reject(&shared, call, status, message, problems);
    }

    let injected = shared.log().injected.pop_front();
    let response = match injected {
        Some(failure) => {
            call.status = failure.status.as_u16();
            failure_response(&failure)
        }
        None => {
            let (code, body) = spec.success(&matched, body_value.as_ref());
            call.status = code;
            json_response(
                StatusCode::from_u16(code).unwrap_or(StatusCode::OK),
                body.as_ref(),
            )
        }
    };
    shared.log().calls.push(call);
    response
}

fn reject(
    shared: &Shared,
    mut call: RecordedCall,
    status: StatusCode,
    message: &str,
    problems: Vec<String>,
) -> Response {
    call.status = status.as_u16();
    // GitHub's error shape: a message, details under `errors`, a documentation link.
    let errors: Vec<Value> = problems
        .iter()
        .map(|p| json!({"resource": call.operation, "code": "invalid", "message": p}))
        .collect();
    let body = json!({
        "message": message,
        "errors": errors,
        "documentation_url": "https://docs.github.com/rest",
        "status": status.as_str(),
    });
    let mut log = shared.log();
    log.calls.push(call.clone());
    log.rejections.push(Rejection { call, problems });
    json_response(status, Some(&body))
}

fn failure_response(failure: &Injected) -> Response {
    let mut response = if failure.status == StatusCode::BAD_GATEWAY {
        let mut response = Response::new(Body::from(
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        ));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/html"),
        );
        response
    } else {
        json_response(
            failure.status,
            Some(&json!({
                "message": failure.message,
                "documentation_url": "https://docs.github.com/rest",
                "status": failure.status.as_str(),
            })),
        )
    };
    *response.status_mut() = failure.status;
    if let Some(seconds) = failure.retry_after {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
    }
    response
}

fn json_response(status: StatusCode, body: Option<&Value>) -> Response {
    let mut response = match body {
        Some(body) => {
            let mut response = Response::new(Body::from(body.to_string()));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json; charset=utf-8"),
            );
            response
        }
        None => Response::new(Body::empty()),
    };
    *response.status_mut() = status;
    response
}
