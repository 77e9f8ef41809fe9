//! A recorded-request fake of the Kubernetes API for unit tests of plan and apply, in the
//! manner of controller-rs's fixtures: every request is recorded as `METHOD path?query`
//! (the query sorted) with its body, and answered by the test's handler. A test then
//! asserts the exact sequence, so a change to ordering or to the dry-run/apply sequence
//! fails in seconds. The real API server stays the proof in the e2e suite.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Map, Value, json};

/// One request the client made.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET /api/v1/namespaces/shop/configmaps`, with a sorted query.
    pub line: String,
    pub body: Option<Value>,
}

/// The answer to a request: a status and a JSON body.
pub type Answer = (StatusCode, Value);

type Handler = Arc<dyn Fn(&str, &str, Option<&Value>) -> Answer + Send + Sync>;

/// The fake: a `tower` service for [`kube::Client::new`] and the record of its requests.
#[derive(Clone)]
pub struct Fake {
    handler: Handler,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    /// Answered (409) to every apply patch sent without `force=true`.
    conflict: Option<Value>,
}

impl Fake {
    /// A fake answering with `handler(method, path, body)`.
    pub fn new(
        handler: impl Fn(&str, &str, Option<&Value>) -> Answer + Send + Sync + 'static,
    ) -> Self {
        Fake {
            handler: Arc::new(handler),
            recorded: Arc::default(),
            conflict: None,
        }
    }

    /// Answers every unforced PATCH with this 409 `Status`, as the server answers an apply
    /// that conflicts with another field manager.
    pub fn refusing_unforced_patches(mut self, conflict: Value) -> Self {
        self.conflict = Some(conflict);
        self
    }

    /// A client of a cluster named `name` that talks to this fake.
    pub fn cluster(&self, name: &str) -> crate::cluster::Cluster {
        crate::cluster::Cluster {
            name: name.to_string(),
            client: kube::Client::new(self.clone(), "default"),
            inventory: kube::Client::new(self.clone(), "default"),
        }
    }

    /// The request lines so far, in order.
    pub fn lines(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.line).collect()
    }

    /// The requests so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// A `Status` answer, as the API server sends for errors.
pub fn status(code: StatusCode, reason: &str) -> Answer {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": reason, "reason": reason, "code": code.as_u16()}),
    )
}

/// ConfigMap `shop/cm` with `data.v`, as a render holds it.
pub fn config_map(data: &str) -> Map<String, Value> {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "cm", "namespace": "shop"}, "data": {"v": data}})
    .as_object()
    .cloned()
    .unwrap_or_default()
}

/// Discovery of the core group's ConfigMaps and Secrets.
pub fn core_v1() -> Value {
    let resource = |name: &str, kind: &str| {
        json!({"name": name, "singularName": "", "namespaced": true, "kind": kind,
               "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
    };
    json!({"kind": "APIResourceList", "groupVersion": "v1",
           "resources": [resource("configmaps", "ConfigMap"), resource("secrets", "Secret")]})
}

impl tower_service::Service<Request<kube::client::Body>> for Fake {
    type Response = Response<Full<Bytes>>;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<kube::client::Body>) -> Self::Future {
        let me = self.clone();
        Box::pin(async move {
            let method = request.method().to_string();
            let path = request.uri().path().to_string();
            let mut query: Vec<&str> = request
                .uri()
                .query()
                .unwrap_or_default()
                .split('&')
                .filter(|q| !q.is_empty())
                .collect();
            query.sort_unstable();
            let line = if query.is_empty() {
                format!("{method} {path}")
            } else {
                format!("{method} {path}?{}", query.join("&"))
            };
            let forced = query.contains(&"force=true");
            let bytes = request
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let body: Option<Value> = serde_json::from_slice(&bytes).ok();
            let (code, answer) = match &me.conflict {
                Some(c) if method == "PATCH" && !forced => (StatusCode::CONFLICT, c.clone()),
                _ => (me.handler)(&method, &path, body.as_ref()),
            };
            me.recorded
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Recorded { line, body });
            let mut response = Response::new(Full::new(Bytes::from(answer.to_string())));
            *response.status_mut() = code;
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            Ok(response)
        })
    }
}
