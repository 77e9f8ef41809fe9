//! GitHub's OpenAPI description as a router and a request checker: finds the operation for a
//! method and path (path templates, GitHub's `x-multi-segment` parameters included), checks
//! a request's parameters, headers and JSON body against it, and builds the documented
//! success answer from the operation's example.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use super::schema::{Validator, resolve_ref};

/// The OpenAPI document could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("OpenAPI description {path}: {message}")]
pub struct SpecError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// A loaded OpenAPI description with its operations indexed for routing.
pub struct Spec {
    document: Value,
    routes: Vec<Route>,
}

/// One operation: a method on a path template.
#[derive(Debug)]
pub struct Route {
    /// The method, upper case (`POST`).
    pub method: String,
    /// The path template as the document writes it (`/repos/{owner}/{repo}/statuses/{sha}`).
    pub template: String,
    /// The operation's `operationId` (`repos/create-commit-status`).
    pub operation_id: String,
    pieces: Vec<Piece>,
    /// Characters of literal text: the more, the more specific the template.
    literal_len: usize,
}

#[derive(Debug)]
enum Piece {
    Literal(String),
    /// `{name}`: one or more characters; `multi` (GitHub's `x-multi-segment`) lets them span `/`.
    Param {
        name: String,
        multi: bool,
    },
}

/// A request matched to its operation.
pub struct Matched<'s> {
    /// The route.
    pub route: &'s Route,
    /// The operation object.
    pub operation: &'s Value,
    /// The path parameters, percent-decoded.
    pub params: BTreeMap<String, String>,
}

/// What is wrong with a request, by the answer GitHub would give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No credentials (401).
    Unauthenticated(String),
    /// Parameters, headers or body do not match the description (422).
    Invalid(String),
}

/// The parts of a request the checker looks at.
pub struct Request<'r> {
    /// Header names in lower case.
    pub headers: &'r BTreeMap<String, String>,
    /// The raw query string, if any.
    pub query: Option<&'r str>,
    /// The raw body.
    pub body: &'r [u8],
}

impl Spec {
    /// Loads (once per process and file) and indexes the description at `path`.
    pub fn load(path: &Path) -> Result<Arc<Spec>, SpecError> {
        static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<Spec>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let mut cache = match cache.lock() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(spec) = cache.get(path) {
            return Ok(spec.clone());
        }
        let fail = |message: String| SpecError {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let document: Value = serde_json::from_slice(&text).map_err(|e| fail(e.to_string()))?;
        let spec = Arc::new(Spec::parse(document).map_err(fail)?);
        cache.insert(path.to_path_buf(), spec.clone());
        Ok(spec)
    }

    /// Indexes the operations of an OpenAPI 3 document.
    pub fn parse(document: Value) -> Result<Spec, String> {
        match document.get("openapi").and_then(Value::as_str) {
            Some(version) if version.starts_with("3.") => {}
            other => return Err(format!("not an OpenAPI 3 document (openapi: {other:?})")),
        }
        let paths = document
            .get("paths")
            .and_then(Value::as_object)
            .ok_or("the document has no paths")?;
        let mut routes = Vec::new();
        for (template, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, operation) in item {
                if !is_method(method) {
                    continue;
                }
                let multi: Vec<String> = parameters(&document, item, operation)
                    .filter(|p| p.get("x-multi-segment") == Some(&Value::Bool(true)))
                    .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string))
                    .collect();
                let pieces = parse_template(template, &multi)
                    .map_err(|e| format!("path {template}: {e}"))?;
                let literal_len = pieces
                    .iter()
                    .map(|p| match p {
                        Piece::Literal(text) => text.len(),
                        Piece::Param { .. } => 0,
                    })
                    .sum();
                routes.push(Route {
                    method: method.to_ascii_uppercase(),
                    template: template.clone(),
                    operation_id: operation
                        .get("operationId")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    pieces,
                    literal_len,
                });
            }
        }
        Ok(Spec { document, routes })
    }

    /// The whole document.
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// The operation for `method` on `path` (no query string): the most specific template
    /// that matches, as GitHub's router prefers `/repos/{o}/{r}/pulls/comments` to
    /// `/repos/{o}/{r}/pulls/{pull_number}`.
    pub fn find(&self, method: &str, path: &str) -> Option<Matched<'_>> {
        let mut best: Option<(&Route, BTreeMap<String, String>)> = None;
        for route in self.routes.iter().filter(|r| r.method == method) {
            let mut params = BTreeMap::new();
            if !match_pieces(&route.pieces, path, &mut params) {
                continue;
            }
            let better = best.as_ref().is_none_or(|(b, _)| {
                (route.literal_len, std::cmp::Reverse(route.pieces.len()))
                    > (b.literal_len, std::cmp::Reverse(b.pieces.len()))
            });
            if better {
                best = Some((route, params));
            }
        }
        let (route, params) = best?;
        let operation = self.document.pointer(&format!(
            "/paths/{}/{}",
            route.template.replace('~', "~0").replace('/', "~1"),
            route.method.to_ascii_lowercase()
        ))?;
        let params = params
            .into_iter()
            .map(|(name, raw)| (name, percent_decode(&raw)))
            .collect();
        Some(Matched {
            route,
            operation,
            params,
        })
    }

    /// Every way `request` breaks the matched operation's description.
    pub fn check(&self, matched: &Matched<'_>, request: &Request<'_>) -> Vec<Problem> {
        let mut problems = Vec::new();
        let validator = Validator::new(&self.document);
        let mut invalid = |message: String| problems.push(Problem::Invalid(message));

        let item = self
            .document
            .pointer(&format!(
                "/paths/{}",
                matched.route.template.replace('~', "~0").replace('/', "~1")
            ))
            .and_then(Value::as_object);
        let query = parse_query(request.query);
        for parameter in item
            .map(|item| parameters(&self.document, item, matched.operation).collect::<Vec<_>>())
            .unwrap_or_default()
        {
            let name = parameter
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let location = parameter
                .get("in")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let required = parameter.get("required") == Some(&Value::Bool(true));
            let given = match location {
                "path" => matched.params.get(name),
                "query" => query.get(name),
                "header" => request.headers.get(&name.to_ascii_lowercase()),
                _ => continue,
            };
            let Some(given) = given else {
                if required {
                    invalid(format!("{location} parameter {name:?} is required"));
                }
                continue;
            };
            if let Some(schema) = parameter.get("schema") {
                let value = coerce(&validator, schema, given);
                for error in validator.validate(schema, &value) {
                    invalid(format!("{location} parameter {name:?}: {}", error.message));
                }
            }
        }

        if request
            .headers
            .get("authorization")
            .is_none_or(|v| v.trim().is_empty())
        {
            problems.push(Problem::Unauthenticated(
                "Requires authentication: no Authorization header".to_string(),
            ));
        }
        let mut invalid = |message: String| problems.push(Problem::Invalid(message));
        match request.headers.get("accept") {
            None => invalid(
                "no Accept header (GitHub asks for application/vnd.github+json)".to_string(),
            ),
            Some(accept) if !accepts_json(accept) => {
                invalid(format!("Accept {accept:?} does not accept a JSON answer"))
            }
            Some(_) => {}
        }

        let body_spec = matched
            .operation
            .get("requestBody")
            .map(|b| validator.resolve(b).cloned().unwrap_or(Value::Null));
        match body_spec {
            None if !request.body.is_empty() => invalid(format!(
                "{} takes no request body",
                matched.route.operation_id
            )),
            None => {}
            Some(body_spec) => self.check_body(&validator, &body_spec, request, &mut invalid),
        }
        problems
    }

    fn check_body(
        &self,
        validator: &Validator<'_>,
        body_spec: &Value,
        request: &Request<'_>,
        invalid: &mut impl FnMut(String),
    ) {
        if request.body.is_empty() {
            if body_spec.get("required") == Some(&Value::Bool(true)) {
                invalid("a request body is required".to_string());
            }
            return;
        }
        let content = body_spec.get("content").and_then(Value::as_object);
        let Some(content_type) = request.headers.get("content-type") else {
            invalid("a request body without a Content-Type header".to_string());
            return;
        };
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let Some(media) = content.and_then(|c| c.get(&media_type)) else {
            let allowed: Vec<&str> = content
                .map(|c| c.keys().map(String::as_str).collect())
                .unwrap_or_default();
            invalid(format!(
                "Content-Type {content_type:?} is not one of the operation's ({})",
                allowed.join(", ")
            ));
            return;
        };
        if !media_type.ends_with("json") {
            return;
        }
        let body: Value = match serde_json::from_slice(request.body) {
            Ok(body) => body,
            Err(e) => {
                invalid(format!("the body is not JSON: {e}"));
                return;
            }
        };
        if let Some(schema) = media.get("schema") {
            for error in validator.validate(schema, &body) {
                invalid(format!("body {error}"));
            }
        }
    }

    /// The documented success answer: the lowest 2xx status, with a body from the operation's
    /// example (or one built from its schema) where the fields the request set carry the
    /// request's values, as a created or updated object would.
    pub fn success(
        &self,
        matched: &Matched<'_>,
        request_body: Option<&Value>,
    ) -> (u16, Option<Value>) {
        let validator = Validator::new(&self.document);
        let Some((code, response)) = matched
            .operation
            .get("responses")
            .and_then(Value::as_object)
            .and_then(|responses| {
                responses
                    .iter()
                    .filter_map(|(code, r)| Some((code.parse::<u16>().ok()?, r)))
                    .filter(|(code, _)| (200..300).contains(code))
                    .min_by_key(|(code, _)| *code)
            })
        else {
            return (200, None);
        };
        let response = validator.resolve(response).unwrap_or(response);
        let Some(media) = response.pointer("/content/application~1json") else {
            return (code, None);
        };
        let mut body = example(&validator, media)
            .or_else(|| media.get("schema").map(|s| synthesize(&validator, s, 0)))
            .unwrap_or(Value::Null);
        let request_schema = matched
            .operation
            .get("requestBody")
            .and_then(|b| validator.resolve(b).ok())
            .and_then(|b| b.pointer("/content/application~1json/schema"))
            .and_then(|s| validator.resolve(s).ok());
        let response_schema = media.get("schema").and_then(|s| validator.resolve(s).ok());
        if let (Some(Value::Object(body)), Some(request_schema), Some(Value::Object(sent))) =
            (Some(&mut body), request_schema, request_body)
        {
            echo_request(&validator, body, request_schema, response_schema, sent);
        }
        (code, Some(body))
    }
}

/// Copies what the request set into the answer's fields of the same name; a field the
/// request could have set but did not takes its documented default, or null where allowed.
fn echo_request(
    validator: &Validator<'_>,
    body: &mut serde_json::Map<String, Value>,
    request_schema: &Value,
    response_schema: Option<&Value>,
    sent: &serde_json::Map<String, Value>,
) {
    let Some(settable) = request_schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, property) in settable {
        if !body.contains_key(name) {
            continue;
        }
        let property = validator.resolve(property).unwrap_or(property);
        let nullable = response_schema
            .and_then(|s| s.pointer(&format!("/properties/{name}")))
            .and_then(|p| validator.resolve(p).ok())
            .is_some_and(|p| p.get("nullable") == Some(&Value::Bool(true)));
        if let Some(value) = sent.get(name) {
            body.insert(name.clone(), value.clone());
        } else if let Some(default) = property.get("default") {
            body.insert(name.clone(), default.clone());
        } else if nullable {
            body.insert(name.clone(), Value::Null);
        }
    }
}

/// The media type's example: `examples.default` (or the first), else `example`.
fn example(validator: &Validator<'_>, media: &Value) -> Option<Value> {
    if let Some(examples) = media.get("examples").and_then(Value::as_object) {
        let chosen = examples
            .get("default")
            .or_else(|| examples.values().next())?;
        return validator.resolve(chosen).ok()?.get("value").cloned();
    }
    media.get("example").cloned()
}

/// A value that satisfies `schema`: its example or default, else the required properties
/// filled in by type.
fn synthesize(validator: &Validator<'_>, schema: &Value, depth: usize) -> Value {
    let Ok(schema) = validator.resolve(schema) else {
        return Value::Null;
    };
    if depth > 16 {
        return Value::Null;
    }
    if let Some(value) = schema.get("example").or_else(|| schema.get("default")) {
        return value.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    for combinator in ["allOf", "oneOf", "anyOf"] {
        if let Some(first) = schema
            .get(combinator)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            if combinator != "allOf" {
                return synthesize(validator, first, depth + 1);
            }
            let mut merged = serde_json::Map::new();
            for part in schema
                .get("allOf")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Value::Object(fields) = synthesize(validator, part, depth + 1) {
                    merged.extend(fields);
                }
            }
            return Value::Object(merged);
        }
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => Value::String(String::new()),
        Some("integer" | "number") => Value::from(0),
        Some("boolean") => Value::Bool(false),
        Some("array") => Value::Array(Vec::new()),
        Some("object") | None if schema.get("properties").is_some() => {
            let mut object = serde_json::Map::new();
            let properties = schema.get("properties").and_then(Value::as_object);
            for name in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let value = match properties.and_then(|p| p.get(name)) {
                    Some(property) => synthesize(validator, property, depth + 1),
                    None => Value::Null,
                };
                object.insert(name.to_string(), value);
            }
            Value::Object(object)
        }
        Some("object") => Value::Object(serde_json::Map::new()),
        _ => Value::Null,
    }
}

fn is_method(name: &str) -> bool {
    matches!(
        name,
        "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace"
    )
}

/// The operation's parameters with the path item's, `$ref`s resolved (the operation's win).
fn parameters<'d>(
    document: &'d Value,
    item: &'d serde_json::Map<String, Value>,
    operation: &'d Value,
) -> impl Iterator<Item = &'d Value> {
    let resolve = |p: &'d Value| match p.get("$ref").and_then(Value::as_str) {
        Some(reference) => resolve_ref(document, reference).ok(),
        None => Some(p),
    };
    let own: Vec<&Value> = operation
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(resolve)
        .collect();
    let key = |p: &Value| (p.get("name").cloned(), p.get("in").cloned());
    let inherited: Vec<&Value> = item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(resolve)
        .filter(|p| !own.iter().any(|o| key(o) == key(p)))
        .collect();
    own.into_iter().chain(inherited)
}

fn parse_template(template: &str, multi: &[String]) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        match rest.find('{') {
            Some(0) => {
                let end = rest.find('}').ok_or("unclosed {")?;
                let name = rest[1..end].to_string();
                if name.is_empty() {
                    return Err("empty parameter name".to_string());
                }
                if matches!(pieces.last(), Some(Piece::Param { .. })) {
                    return Err("two parameters with nothing between them".to_string());
                }
                let multi = multi.contains(&name);
                pieces.push(Piece::Param { name, multi });
                rest = &rest[end + 1..];
            }
            Some(start) => {
                pieces.push(Piece::Literal(rest[..start].to_string()));
                rest = &rest[start..];
            }
            None => {
                pieces.push(Piece::Literal(rest.to_string()));
                rest = "";
            }
        }
    }
    Ok(pieces)
}

/// Matches `path` against the pieces, trying every length for each parameter (templates
/// like `{base}...{head}` need the backtracking).
fn match_pieces(pieces: &[Piece], path: &str, params: &mut BTreeMap<String, String>) -> bool {
    match pieces.split_first() {
        None => path.is_empty(),
        Some((Piece::Literal(text), rest)) => path
            .strip_prefix(text.as_str())
            .is_some_and(|tail| match_pieces(rest, tail, params)),
        Some((Piece::Param { name, multi }, rest)) => {
            let limit = if *multi {
                path.len()
            } else {
                path.find('/').unwrap_or(path.len())
            };
            for end in (1..=limit).rev().filter(|&end| path.is_char_boundary(end)) {
                if match_pieces(rest, &path[end..], params) {
                    params.insert(name.clone(), path[..end].to_string());
                    return true;
                }
            }
            false
        }
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(query: Option<&str>) -> BTreeMap<String, String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&name.replace('+', " ")),
                percent_decode(&value.replace('+', " ")),
            )
        })
        .collect()
}

/// A parameter arrives as text; read it as the type its schema declares.
fn coerce(validator: &Validator<'_>, schema: &Value, text: &str) -> Value {
    let declared = validator
        .resolve(schema)
        .ok()
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str);
    match declared {
        Some("integer" | "number") => serde_json::from_str::<serde_json::Number>(text)
            .map(Value::Number)
            .unwrap_or_else(|_| Value::String(text.to_string())),
        Some("boolean") => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text.to_string()),
        },
        Some("array") => Value::Array(
            text.split(',')
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
        _ => Value::String(text.to_string()),
    }
}

fn accepts_json(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let media = range
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        media == "*/*"
            || media == "application/*"
            || media.ends_with("+json")
            || media.ends_with("/json")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> Spec {
        Spec::parse(json!({
            "openapi": "3.0.3",
            "paths": {
                "/repos/{owner}/{repo}/statuses/{sha}": {"post": {
                    "operationId": "repos/create-commit-status",
                    "parameters": [
                        {"$ref": "#/components/parameters/owner"},
                        {"$ref": "#/components/parameters/repo"},
                        {"name": "sha", "in": "path", "required": true, "schema": {"type": "string"}, "x-multi-segment": true}
                    ],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["state"],
                        "properties": {
                            "state": {"type": "string", "enum": ["pending", "success"]},
                            "description": {"type": "string", "nullable": true},
                            "context": {"type": "string", "default": "default"}
                        }
                    }}}},
                    "responses": {"201": {"content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/status"},
                        "examples": {"default": {"$ref": "#/components/examples/status"}}
                    }}}}
                }},
                "/repos/{owner}/{repo}/pulls/{pull_number}": {"get": {
                    "operationId": "pulls/get",
                    "parameters": [{"name": "pull_number", "in": "path", "required": true, "schema": {"type": "integer"}}],
                    "responses": {"200": {"content": {"application/json": {"schema": {
                        "type": "object", "required": ["number", "title"],
                        "properties": {"number": {"type": "integer"}, "title": {"type": "string", "example": "Fix"}}
                    }}}}}
                }},
                "/repos/{owner}/{repo}/pulls/comments": {"get": {
                    "operationId": "pulls/list-review-comments-for-repo",
                    "parameters": [{"name": "per_page", "in": "query", "schema": {"type": "integer", "maximum": 100}},
                                   {"name": "sort", "in": "query", "required": true, "schema": {"type": "string", "enum": ["created", "updated"]}}],
                    "responses": {"200": {}}
                }},
                "/repos/{owner}/{repo}/compare/{base}...{head}": {"get": {
                    "operationId": "repos/compare-commits",
                    "responses": {"200": {}}
                }},
                "/repos/{owner}/{repo}/hooks/{hook_id}": {"delete": {
                    "operationId": "repos/delete-webhook",
                    "responses": {"204": {"description": "Response"}}
                }}
            },
            "components": {
                "parameters": {
                    "owner": {"name": "owner", "in": "path", "required": true, "schema": {"type": "string"}},
                    "repo": {"name": "repo", "in": "path", "required": true, "schema": {"type": "string"}}
                },
                "schemas": {"status": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "state": {"type": "string"},
                    "description": {"type": "string", "nullable": true},
                    "context": {"type": "string"}
                }}},
                "examples": {"status": {"value": {"id": 1, "state": "success", "description": "Build done", "context": "ci/jenkins"}}}
            }
        }))
        .unwrap()
    }

    fn found(spec: &Spec, method: &str, path: &str) -> Option<(String, BTreeMap<String, String>)> {
        spec.find(method, path)
            .map(|m| (m.route.operation_id.clone(), m.params))
    }

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn routes_by_method_and_most_specific_template() {
        let spec = spec();
        assert_eq!(
            found(&spec, "POST", "/repos/acme/deploy/statuses/abc123"),
            Some((
                "repos/create-commit-status".into(),
                params(&[("owner", "acme"), ("repo", "deploy"), ("sha", "abc123")])
            ))
        );
        // x-multi-segment: a ref with slashes; a percent-encoded owner is decoded.
        assert_eq!(
            found(
                &spec,
                "POST",
                "/repos/a%2Db/deploy/statuses/heads/feature/x"
            ),
            Some((
                "repos/create-commit-status".into(),
                params(&[
                    ("owner", "a-b"),
                    ("repo", "deploy"),
                    ("sha", "heads/feature/x")
                ])
            ))
        );
        assert_eq!(found(&spec, "GET", "/repos/acme/deploy/statuses/abc"), None);
        assert_eq!(found(&spec, "POST", "/repos/acme/statuses/abc"), None);
        assert_eq!(
            found(&spec, "GET", "/repos/acme/deploy/pulls/7").unwrap().0,
            "pulls/get"
        );
        assert_eq!(
            found(&spec, "GET", "/repos/acme/deploy/pulls/comments")
                .unwrap()
                .0,
            "pulls/list-review-comments-for-repo"
        );
        assert_eq!(
            found(&spec, "GET", "/repos/acme/deploy/compare/main...feature")
                .unwrap()
                .1,
            params(&[
                ("owner", "acme"),
                ("repo", "deploy"),
                ("base", "main"),
                ("head", "feature")
            ])
        );
        // A single-segment parameter never spans a slash.
        assert_eq!(found(&spec, "GET", "/repos/acme/deploy/pulls/7/x"), None);
    }

    fn check(
        spec: &Spec,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Vec<Problem> {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let headers = params(headers);
        let matched = spec.find(method, path).unwrap();
        spec.check(
            &matched,
            &Request {
                headers: &headers,
                query,
                body: body.as_bytes(),
            },
        )
    }

    const GOOD: &[(&str, &str)] = &[
        ("authorization", "Bearer t"),
        ("accept", "application/vnd.github+json"),
        ("content-type", "application/json"),
    ];

    #[test]
    fn checks_headers_parameters_and_body() {
        let spec = spec();
        let path = "/repos/acme/deploy/statuses/abc";
        assert_eq!(
            check(
                &spec,
                "POST",
                path,
                GOOD,
                r#"{"state":"pending","description":null}"#
            ),
            vec![]
        );
        assert_eq!(
            check(&spec, "POST", path, GOOD, r#"{"state":"done"}"#),
            vec![Problem::Invalid(
                r#"body /state: "done" is not one of ["pending", "success"]"#.into()
            )]
        );
        assert_eq!(
            check(&spec, "POST", path, GOOD, ""),
            vec![Problem::Invalid("a request body is required".into())]
        );
        assert_eq!(
            check(&spec, "POST", path, GOOD, "{"),
            vec![Problem::Invalid(
                "the body is not JSON: EOF while parsing an object at line 1 column 1".into()
            )]
        );
        assert_eq!(
            check(
                &spec,
                "POST",
                path,
                &[("accept", "text/html"), ("content-type", "text/plain")],
                r#"{"state":"pending"}"#
            ),
            vec![
                Problem::Unauthenticated("Requires authentication: no Authorization header".into()),
                Problem::Invalid(r#"Accept "text/html" does not accept a JSON answer"#.into()),
                Problem::Invalid(
                    r#"Content-Type "text/plain" is not one of the operation's (application/json)"#
                        .into()
                ),
            ]
        );
        assert_eq!(
            check(&spec, "GET", "/repos/acme/deploy/pulls/x", GOOD, ""),
            vec![Problem::Invalid(
                r#"path parameter "pull_number": expected integer, found string"#.into()
            )]
        );
        assert_eq!(
            check(
                &spec,
                "GET",
                "/repos/acme/deploy/pulls/comments?per_page=500",
                GOOD,
                ""
            ),
            vec![
                Problem::Invalid(
                    r#"query parameter "per_page": 500 is above the maximum 100"#.into()
                ),
                Problem::Invalid(r#"query parameter "sort" is required"#.into()),
            ]
        );
        assert_eq!(
            check(
                &spec,
                "GET",
                "/repos/acme/deploy/pulls/comments?sort=created&per_page=5",
                GOOD,
                ""
            ),
            vec![]
        );
        assert_eq!(
            check(&spec, "GET", "/repos/acme/deploy/pulls/7", GOOD, "{}"),
            vec![Problem::Invalid("pulls/get takes no request body".into())]
        );
    }

    #[test]
    fn success_answers_echo_the_request() {
        let spec = spec();
        let matched = spec
            .find("POST", "/repos/acme/deploy/statuses/abc")
            .unwrap();
        let (code, body) = spec.success(&matched, Some(&json!({"state": "pending"})));
        assert_eq!(code, 201);
        // Not sent: the description is null (nullable), the context takes its default.
        assert_eq!(
            body,
            Some(json!({"id": 1, "state": "pending", "description": null, "context": "default"}))
        );
        let matched = spec.find("GET", "/repos/acme/deploy/pulls/7").unwrap();
        assert_eq!(
            spec.success(&matched, None),
            (200, Some(json!({"number": 0, "title": "Fix"})))
        );
        let matched = spec.find("DELETE", "/repos/acme/deploy/hooks/1").unwrap();
        assert_eq!(spec.success(&matched, None), (204, None));
    }

    /// GitHub's real description, when `e2e/test.sh` (or the developer) installed it.
    fn github() -> Option<Arc<Spec>> {
        let Some(path) = std::env::var_os(crate::github::OPENAPI_ENV) else {
            eprintln!(
                "skipped: KEELSON_GITHUB_OPENAPI is unset (see e2e/tools/octokit-openapi.sh)"
            );
            return None;
        };
        Some(Spec::load(Path::new(&path)).unwrap())
    }

    #[test]
    fn every_operation_of_github_is_found_by_its_own_path() {
        let Some(spec) = github() else { return };
        assert!(spec.routes.len() > 1000, "{} operations", spec.routes.len());
        for route in &spec.routes {
            // Placeholders no literal segment of GitHub's paths uses.
            let path: String = route
                .pieces
                .iter()
                .map(|p| match p {
                    Piece::Literal(text) => text.clone(),
                    Piece::Param { multi: true, .. } => "zq1/zq2".to_string(),
                    Piece::Param { .. } => "zq1".to_string(),
                })
                .collect();
            let matched = spec
                .find(&route.method, &path)
                .unwrap_or_else(|| panic!("{path}"));
            assert_eq!(
                matched.route.template, route.template,
                "{} {path}",
                route.method
            );
        }
    }

    /// Request examples in `@octokit/openapi` 23.0.2 that contradict their own schemas (the
    /// validator is right each time: an SSH key example not starting with `ssh-`, string ids
    /// for an integer array, `null` where the schema is not nullable, a select option's
    /// description as an object). A new pinned version may change this list.
    const KNOWN_BAD_EXAMPLES: &[&str] = &[
        "PATCH /gists/{gist_id} deleteFile",
        "POST /orgs/{org}/issue-fields default",
        "POST /orgs/{org}/projectsV2/{project_number}/fields single_select_field",
        "POST /user/keys default",
        "POST /user/ssh_signing_keys default",
        "POST /users/{username}/projectsV2/{project_number}/fields single_select_field",
        "PATCH /repos/{owner}/{repo}/security-advisories/{ghsa_id} update_vvrs",
        "PUT /orgs/{org}/outside_collaborators/{username} 204",
        "PUT /user/codespaces/secrets/{secret_name}/repositories default",
    ];

    /// The request examples GitHub publishes pass the validator (evidence it reads the real
    /// schemas right: `nullable`, `oneOf`, `$ref`s, patterns) except the known contradictions,
    /// and each passing example with a string property set to a number fails.
    #[test]
    fn githubs_request_examples_pass_and_broken_ones_fail() {
        let Some(spec) = github() else { return };
        let validator = Validator::new(spec.document());
        let (mut checked, mut broken) = (0, 0);
        let mut failures = Vec::new();
        for route in &spec.routes {
            let pointer = format!(
                "/paths/{}/{}/requestBody",
                route.template.replace('~', "~0").replace('/', "~1"),
                route.method.to_ascii_lowercase()
            );
            let Some(body) = spec.document().pointer(&pointer) else {
                continue;
            };
            let body = validator.resolve(body).unwrap();
            let Some(media) = body.pointer("/content/application~1json") else {
                continue;
            };
            let (Some(schema), Some(examples)) = (
                media.get("schema"),
                media.get("examples").and_then(Value::as_object),
            ) else {
                continue;
            };
            for (name, example) in examples {
                let Some(value) = validator.resolve(example).unwrap().get("value") else {
                    continue;
                };
                checked += 1;
                let errors = validator.validate(schema, value);
                if !errors.is_empty() {
                    failures.push(format!("{} {} {name}", route.method, route.template));
                    continue;
                }
                // Break it: a plain string property (not nullable, no alternatives) gets a number.
                let resolved = validator.resolve(schema).unwrap();
                let Some(properties) = resolved.get("properties").and_then(Value::as_object) else {
                    continue;
                };
                let plain_string = value.as_object().into_iter().flatten().find(|(key, _)| {
                    properties
                        .get(*key)
                        .and_then(|p| validator.resolve(p).ok())
                        .is_some_and(|p| {
                            p.get("type") == Some(&json!("string")) && p.get("nullable").is_none()
                        })
                });
                if let Some((key, _)) = plain_string {
                    let mut wrong = value.clone();
                    wrong[key] = json!(12345);
                    let errors = validator.validate(schema, &wrong);
                    assert!(
                        errors.iter().any(|e| e.pointer == format!("/{key}")),
                        "{} {} {name}: /{key} = 12345 passed: {errors:?}",
                        route.method,
                        route.template
                    );
                    broken += 1;
                }
            }
        }
        eprintln!("{checked} examples checked, {broken} broken on purpose");
        assert!(checked > 300, "only {checked} request examples found");
        assert!(broken > 100, "only {broken} examples broken on purpose");
        failures.sort();
        let mut known: Vec<String> = KNOWN_BAD_EXAMPLES.iter().map(ToString::to_string).collect();
        known.sort();
        assert_eq!(failures, known, "request examples that fail the validator");
    }

    #[test]
    fn githubs_status_example_matches_its_schema_and_a_wrong_state_does_not() {
        let Some(spec) = github() else { return };
        let matched = spec
            .find("POST", "/repos/acme/deploy/statuses/abc")
            .unwrap();
        assert_eq!(matched.route.operation_id, "repos/create-commit-status");
        let (code, body) = spec.success(
            &matched,
            Some(&json!({"state": "failure", "context": "keelson/a/b"})),
        );
        assert_eq!(code, 201);
        let body = body.unwrap();
        assert_eq!(
            (body["state"].as_str(), body["context"].as_str()),
            (Some("failure"), Some("keelson/a/b"))
        );
        assert_eq!(body["description"], Value::Null);
        let validator = Validator::new(spec.document());
        let schema = json!({"$ref": "#/components/schemas/status"});
        assert_eq!(validator.validate(&schema, &body), vec![]);
        let request_schema = matched
            .operation
            .pointer("/requestBody/content/application~1json/schema")
            .unwrap();
        assert_eq!(
            validator.validate(
                request_schema,
                &json!({"state": "success", "target_url": null})
            ),
            vec![]
        );
        assert_eq!(
            validator
                .validate(request_schema, &json!({"state": "done"}))
                .len(),
            1
        );
    }

    #[test]
    fn percent_decoding_and_accept() {
        assert_eq!(percent_decode("a%2Fb%20c%"), "a/b c%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert!(accepts_json("application/vnd.github+json"));
        assert!(accepts_json("text/html, application/json;q=0.9"));
        assert!(accepts_json("*/*"));
        assert!(!accepts_json("text/plain"));
    }
}
