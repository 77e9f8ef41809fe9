//! Commit statuses against a fake GitHub that checks every request against GitHub's own
//! OpenAPI description (`@octokit/openapi`, path in `KEELSON_GITHUB_OPENAPI`, which
//! `e2e/test.sh` sets): what the reporter sends is what the API documents, the validator
//! really refuses what the API does not allow, and retries happen only where they may help.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use keelson::serve::github::{
    CommitStatus, DESCRIPTION_LIMIT, RetryPolicy, State, StatusReporter, Token, context,
};
use keelson_e2e::github::FakeGitHub;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "ghp_keelsonTestToken0123456789abcdef";
const REPO: &str = "acme/deploy";
const SHA: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";

/// The fake, or `None` (with the reason printed) when the description is not installed.
fn fake() -> Option<FakeGitHub> {
    match FakeGitHub::from_env() {
        Some(fake) => Some(fake.expect("the fake GitHub starts")),
        None => {
            eprintln!(
                "skipped: KEELSON_GITHUB_OPENAPI is unset (run e2e/test.sh, or export it from e2e/tools/octokit-openapi.sh)"
            );
            None
        }
    }
}

fn token() -> (tempfile::TempDir, Token) {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("token");
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    (dir, Token::from_file(&path).unwrap())
}

fn reporter(url: &str) -> (tempfile::TempDir, StatusReporter) {
    let (dir, token) = token();
    let reporter = StatusReporter::new(url, token)
        .unwrap()
        .with_retry(RetryPolicy {
            attempts: 4,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        });
    (dir, reporter)
}

fn status(state: State, context: &str, description: &str) -> CommitStatus {
    CommitStatus {
        state,
        context: context.to_string(),
        description: description.to_string(),
        target_url: Some("https://keelson.example/targets/shop".to_string()),
    }
}

#[tokio::test]
async fn statuses_for_two_contexts_pass_the_openapi_checks_and_arrive_as_sent() {
    let Some(fake) = fake() else { return };
    let (_dir, reporter) = reporter(fake.url());
    let contexts = [
        context("shop-prod", "prod"),
        context("shop-staging", "staging"),
    ];
    let mut sent = Vec::new();
    for state in [State::Pending, State::Success, State::Failure] {
        for context in &contexts {
            let status = status(state, context, &format!("{} on {context}", state.as_str()));
            reporter.report(REPO, SHA, &status).await.unwrap();
            sent.push(status);
        }
    }
    assert_eq!(fake.rejections(), vec![], "the fake refused requests");
    let calls = fake.calls();
    assert_eq!(calls.len(), sent.len());
    for (call, status) in calls.iter().zip(&sent) {
        assert_eq!(call.method, "POST");
        assert_eq!(call.path, format!("/repos/{REPO}/statuses/{SHA}"));
        assert_eq!(
            call.operation.as_deref(),
            Some("repos/create-commit-status")
        );
        assert_eq!(call.status, 201);
        assert_eq!(
            call.body,
            Some(json!({
                "state": status.state.as_str(),
                "context": status.context,
                "description": status.description,
                "target_url": status.target_url,
            }))
        );
        assert_eq!(call.headers["authorization"], format!("Bearer {TOKEN}"));
        assert_eq!(call.headers["accept"], "application/vnd.github+json");
        assert_eq!(call.headers["x-github-api-version"], "2022-11-28");
    }
    // Without a description or link, those fields are left out, not sent as "".
    let bare = CommitStatus {
        target_url: None,
        ..status(State::Error, &contexts[0], "")
    };
    reporter.report(REPO, SHA, &bare).await.unwrap();
    assert_eq!(
        fake.calls().last().unwrap().body,
        Some(json!({"state": "error", "context": contexts[0]}))
    );
}

#[tokio::test]
async fn long_descriptions_are_cut_to_githubs_limit() {
    let Some(fake) = fake() else { return };
    let (_dir, reporter) = reporter(fake.url());
    let long = "Déploiement échoué: ".repeat(20);
    reporter
        .report(REPO, SHA, &status(State::Failure, "keelson/a/b", &long))
        .await
        .unwrap();
    assert_eq!(fake.rejections(), vec![]);
    let body = fake.calls().pop().unwrap().body.unwrap();
    let description = body["description"].as_str().unwrap();
    assert_eq!(description.chars().count(), DESCRIPTION_LIMIT);
    assert!(long.starts_with(description.trim_end_matches('…')));
}

/// Sends one HTTP/1.1 request as written, so the request can break the rules on purpose.
async fn raw(url: &str, head: &str, body: &str) -> (u16, serde_json::Value) {
    let addr = url.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{head}\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer.split(' ').nth(1).unwrap().parse().unwrap();
    let body = answer.split_once("\r\n\r\n").unwrap().1;
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn the_validator_refuses_requests_the_description_does_not_allow() {
    let Some(fake) = fake() else { return };
    let post = format!("POST /repos/{REPO}/statuses/{SHA} HTTP/1.1");
    let auth = format!("Authorization: Bearer {TOKEN}");
    let json_headers = "Accept: application/vnd.github+json\r\nContent-Type: application/json";
    let cases: Vec<(String, &str, u16, &str)> = vec![
        // A state GitHub does not have.
        (
            format!("{post}\r\n{auth}\r\n{json_headers}"),
            r#"{"state":"done"}"#,
            422,
            "\"done\" is not one of",
        ),
        // The required state is missing; a description of the wrong type.
        (
            format!("{post}\r\n{auth}\r\n{json_headers}"),
            r#"{"description":5}"#,
            422,
            "required property \"state\" is missing",
        ),
        (
            format!("{post}\r\n{auth}\r\n{json_headers}"),
            r#"{"state":"success","description":5}"#,
            422,
            "/description: expected string, found integer",
        ),
        // No body, a body that is not JSON, a body in the wrong media type.
        (
            format!("{post}\r\n{auth}\r\n{json_headers}"),
            "",
            422,
            "a request body is required",
        ),
        (
            format!("{post}\r\n{auth}\r\n{json_headers}"),
            "{state:",
            422,
            "the body is not JSON",
        ),
        (
            format!("{post}\r\n{auth}\r\nAccept: application/json\r\nContent-Type: text/plain"),
            r#"{"state":"success"}"#,
            422,
            "Content-Type \"text/plain\"",
        ),
        // No Accept, an Accept that refuses JSON.
        (
            format!("{post}\r\n{auth}\r\nContent-Type: application/json"),
            r#"{"state":"success"}"#,
            422,
            "no Accept header",
        ),
        (
            format!("{post}\r\n{auth}\r\nAccept: text/html\r\nContent-Type: application/json"),
            r#"{"state":"success"}"#,
            422,
            "does not accept a JSON answer",
        ),
        // No credentials.
        (
            format!("{post}\r\n{json_headers}"),
            r#"{"state":"success"}"#,
            401,
            "no Authorization header",
        ),
        // No such operation: statuses are created with POST, and there is no /statuses/ of a repo.
        (
            format!("PUT /repos/{REPO}/statuses/{SHA} HTTP/1.1\r\n{auth}\r\n{json_headers}"),
            r#"{"state":"success"}"#,
            404,
            "no operation for PUT",
        ),
        (
            format!("POST /repos/{REPO}/statuses HTTP/1.1\r\n{auth}\r\n{json_headers}"),
            r#"{"state":"success"}"#,
            404,
            "no operation for POST",
        ),
    ];
    for (i, (head, body, expected_status, expected_problem)) in cases.iter().enumerate() {
        let (status, answer) = raw(fake.url(), head, body).await;
        assert_eq!(status, *expected_status, "case {i}: {answer}");
        let rejections = fake.rejections();
        assert_eq!(
            rejections.len(),
            i + 1,
            "case {i} is recorded as a rejection"
        );
        let problems = &rejections[i].problems;
        assert!(
            problems.iter().any(|p| p.contains(expected_problem)),
            "case {i}: {problems:?}"
        );
        // GitHub's error shape, which octocrab reads.
        assert!(answer["message"].is_string(), "case {i}: {answer}");
        assert!(
            answer["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["message"].as_str().unwrap().contains(expected_problem)),
            "case {i}: {answer}"
        );
    }
    // The same request done right passes: the cases fail for the reason they name.
    let (status, answer) = raw(
        fake.url(),
        &format!("{post}\r\n{auth}\r\n{json_headers}"),
        r#"{"state":"success","description":null,"context":"keelson/a/b"}"#,
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["state"], "success");
    assert_eq!(answer["context"], "keelson/a/b");
    assert_eq!(fake.rejections().len(), cases.len());
}

#[tokio::test]
async fn server_errors_and_secondary_rate_limits_are_retried() {
    let Some(fake) = fake() else { return };
    let (_dir, reporter) = reporter(fake.url());
    let ok = status(State::Success, "keelson/shop/prod", "synced");
    let mut expected_calls = 0;
    for (failures, code) in [(2, 500), (1, 502), (3, 503), (2, 403), (1, 429)] {
        fake.fail_next(failures, code);
        reporter
            .report(REPO, SHA, &ok)
            .await
            .unwrap_or_else(|e| panic!("{code}: {e}"));
        expected_calls += failures + 1;
        let calls = fake.calls();
        assert_eq!(
            calls.len(),
            expected_calls,
            "{code} x{failures}: one retry per failure"
        );
        assert_eq!(calls.last().unwrap().status, 201);
        assert!(
            calls[calls.len() - 1 - failures..calls.len() - 1]
                .iter()
                .all(|c| c.status == code)
        );
    }
    // A failure that outlasts the attempts is an error naming repository, commit and status.
    fake.fail_next(4, 500);
    let error = reporter
        .report(REPO, SHA, &ok)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(fake.calls().len(), expected_calls + 4);
    for part in [REPO, SHA, "HTTP 500", "4 attempts", "keelson/shop/prod"] {
        assert!(error.contains(part), "{part:?} missing in: {error}");
    }
    assert!(!error.contains(TOKEN));
    assert_eq!(fake.rejections(), vec![]);
}

#[tokio::test]
async fn client_errors_are_not_retried_and_errors_never_show_the_token() {
    let Some(fake) = fake() else { return };
    let (_dir, reporter) = reporter(fake.url());
    let ok = status(State::Pending, "keelson/shop/prod", "syncing");
    let mut errors = Vec::new();
    for code in [404, 422, 401] {
        let before = fake.calls().len();
        fake.fail_next(1, code);
        let error = reporter.report(REPO, SHA, &ok).await.unwrap_err();
        assert_eq!(fake.calls().len(), before + 1, "{code} is not retried");
        let text = error.to_string();
        for part in [REPO, SHA, &format!("HTTP {code}"), "1 attempt:"] {
            assert!(text.contains(part), "{part:?} missing in: {text}");
        }
        errors.push(text);
        errors.push(format!("{error:?}"));
    }
    // The fake itself answers a request without credentials with 401 (octocrab built with
    // no token sends none).
    let (_dir2, token) = token();
    let anonymous = octocrab::Octocrab::builder()
        .base_uri(fake.url())
        .unwrap()
        .build()
        .unwrap();
    let answer: Result<serde_json::Value, _> = anonymous
        .post(
            format!("/repos/{REPO}/statuses/{SHA}"),
            Some(&json!({"state": "success"})),
        )
        .await;
    assert!(answer.is_err());
    assert_eq!(fake.rejections().len(), 1);

    // Nothing listening: a transport error, retried, then reported without the token.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let unreachable = StatusReporter::new(&closed, token.clone())
        .unwrap()
        .with_retry(RetryPolicy {
            attempts: 2,
            initial_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(10),
        });
    let error = unreachable.report(REPO, SHA, &ok).await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains(REPO) && text.contains(SHA) && text.contains("2 attempts"),
        "{text}"
    );
    errors.push(text);
    errors.push(format!("{error:?}"));
    errors.push(format!("{unreachable:?} {token:?}"));
    errors.push(
        StatusReporter::new("not a url", token)
            .unwrap_err()
            .to_string(),
    );
    for text in &errors {
        assert!(!text.contains(TOKEN), "the token leaked: {text}");
    }
}
