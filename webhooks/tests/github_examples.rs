//! Replays GitHub's own example payloads (`@octokit/webhooks-examples`), signed the way
//! GitHub signs them, through the real server, in both content types GitHub can send.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Example, SECRET, Server, examples, form_body, start};
use keelson_webhooks::{Trigger, TriggerKind, signature};
use octocrab::models::webhook_events::{WebhookEvent, WebhookEventPayload};
use serde_json::Value;

const TRIGGERING_PR_ACTIONS: [&str; 3] = ["opened", "synchronize", "reopened"];

/// Sends one example as JSON (even `n`) or as a form (odd `n`).
async fn send(server: &Server, n: usize, ex: &Example) -> (u16, String) {
    let json = serde_json::to_vec(&ex.payload).unwrap();
    let (content_type, body) = if n.is_multiple_of(2) {
        ("application/json", json)
    } else {
        ("application/x-www-form-urlencoded", form_body(&json))
    };
    let sig = signature::sign(SECRET.as_bytes(), &body);
    let id = format!("{}-{n}", ex.flavour);
    let headers = [
        ("Content-Type", content_type),
        ("X-GitHub-Event", ex.event.as_str()),
        ("X-GitHub-Delivery", id.as_str()),
        ("X-Hub-Signature-256", sig.as_str()),
        ("User-Agent", "GitHub-Hookshot/044aadd"),
    ];
    server.post(&headers, &body).await
}

fn str_at<'a>(v: &'a Value, path: &str) -> &'a str {
    v.pointer(path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{path} in example"))
}

/// The trigger for a push matches the payload, read both as raw JSON and by octocrab.
fn check_push(ex: &Example, t: &Trigger) {
    let p = &ex.payload;
    assert_eq!(t.repository, str_at(p, "/repository/full_name"));
    assert_eq!(t.clone_url, str_at(p, "/repository/clone_url"));
    assert_eq!(t.git_ref, str_at(p, "/ref"));
    assert_eq!(t.before, str_at(p, "/before"));
    assert_eq!(t.after, str_at(p, "/after"));
    let TriggerKind::Push {
        tag,
        created,
        deleted,
        forced,
    } = t.kind.clone()
    else {
        panic!("push gave {t:?}")
    };
    assert_eq!(tag, t.git_ref.starts_with("refs/tags/"));
    assert_eq!(
        (created, deleted, forced),
        (
            p["created"] == true,
            p["deleted"] == true,
            p["forced"] == true
        )
    );

    let event =
        WebhookEvent::try_from_header_and_body("push", &serde_json::to_vec(p).unwrap()).unwrap();
    let WebhookEventPayload::Push(o) = event.specific else {
        panic!("octocrab: not a push")
    };
    let repo = event.repository.unwrap();
    assert_eq!(Some(&t.repository), repo.full_name.as_ref());
    assert_eq!(
        Some(t.clone_url.as_str()),
        repo.clone_url.as_ref().map(|u| u.as_str())
    );
    assert_eq!(
        (&t.git_ref, &t.before, &t.after),
        (&o.r#ref, &o.before, &o.after)
    );
    assert_eq!((created, deleted, forced), (o.created, o.deleted, o.forced));
}

/// The dry-run trigger for a pull request matches the payload, raw and by octocrab.
fn check_pull_request(ex: &Example, t: &Trigger) {
    let p = &ex.payload;
    let number = p["number"].as_u64().unwrap();
    assert_eq!(t.repository, str_at(p, "/repository/full_name"));
    assert_eq!(t.clone_url, str_at(p, "/repository/clone_url"));
    assert_eq!(t.git_ref, format!("refs/pull/{number}/head"));
    assert_eq!(t.after, str_at(p, "/pull_request/head/sha"));
    assert_eq!(t.before, str_at(p, "/pull_request/base/sha"));
    let TriggerKind::PullRequest {
        number: n,
        action,
        head_ref,
        base_ref,
    } = t.kind.clone()
    else {
        panic!("pull_request gave {t:?}")
    };
    assert_eq!(n, number);
    assert_eq!(serde_json::to_value(action).unwrap(), p["action"]);
    assert_eq!(head_ref, str_at(p, "/pull_request/head/ref"));
    assert_eq!(base_ref, str_at(p, "/pull_request/base/ref"));

    let event =
        WebhookEvent::try_from_header_and_body("pull_request", &serde_json::to_vec(p).unwrap())
            .unwrap();
    let WebhookEventPayload::PullRequest(o) = event.specific else {
        panic!("octocrab: not a pull_request")
    };
    assert_eq!(o.number, number);
    assert_eq!(
        (&t.after, &head_ref),
        (&o.pull_request.head.sha, &o.pull_request.head.ref_field)
    );
    assert_eq!(
        (&t.before, &base_ref),
        (&o.pull_request.base.sha, &o.pull_request.base.ref_field)
    );
    assert_eq!(
        Some(&t.repository),
        event.repository.unwrap().full_name.as_ref()
    );
}

#[tokio::test]
async fn every_github_example_is_accepted_and_understood() {
    let server = start(common::config()).await;
    let all = examples();
    let (mut pushes, mut pings, mut prs, mut others) = (0, 0, 0, 0);
    let mut events = std::collections::BTreeSet::new();
    for (n, ex) in all.iter().enumerate() {
        let (status, body) = send(&server, n, ex).await;
        let what = format!("{} {} #{n} ({status} {body})", ex.flavour, ex.event);
        events.insert(ex.event.clone());
        match ex.event.as_str() {
            "push" => {
                assert_eq!(
                    (status, body.as_str()),
                    (202, r#"{"outcome":"queued"}"#),
                    "{what}"
                );
                check_push(ex, &server.next_trigger().await);
                pushes += 1;
            }
            "ping" => {
                assert_eq!(
                    (status, body.as_str()),
                    (200, r#"{"outcome":"pong"}"#),
                    "{what}"
                );
                pings += 1;
            }
            "pull_request"
                if TRIGGERING_PR_ACTIONS.contains(&ex.payload["action"].as_str().unwrap()) =>
            {
                assert_eq!(status, 202, "{what}");
                check_pull_request(ex, &server.next_trigger().await);
                prs += 1;
            }
            _ => {
                assert_eq!(
                    (status, body.as_str()),
                    (200, r#"{"outcome":"ignored"}"#),
                    "{what}"
                );
                others += 1;
            }
        }
    }
    server.no_trigger().await;
    // The package as pinned: 7 github.com pushes, 4 pings, 29 pull_request examples, 58 event types.
    assert!(
        pushes >= 7 && pings >= 4 && prs >= 7 && others >= 250,
        "{pushes} {pings} {prs} {others}"
    );
    assert!(events.len() >= 58, "{events:?}");
    let queued = server
        .metric(r#"keelson_webhook_deliveries_total{host="github",event="push",outcome="queued"}"#)
        .await;
    assert_eq!(queued, pushes);
    assert_eq!(
        server
            .metric("keelson_webhook_signature_failures_total")
            .await,
        0
    );
    server.shutdown().await;
}

#[tokio::test]
async fn github_examples_with_a_wrong_signature_are_refused() {
    let server = start(common::config()).await;
    for ex in examples()
        .iter()
        .filter(|e| e.flavour == "api.github.com")
        .step_by(7)
    {
        let body = serde_json::to_vec(&ex.payload).unwrap();
        let sig = signature::sign(b"not the secret", &body);
        let headers = [
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", ex.event.as_str()),
            ("X-GitHub-Delivery", "d"),
            ("X-Hub-Signature-256", sig.as_str()),
        ];
        assert_eq!(server.post(&headers, &body).await.0, 401, "{}", ex.event);
    }
    server.no_trigger().await;
    server.shutdown().await;
}

/// GitHub caps a push payload's `commits` at 2,048; such a push is ordinary.
#[tokio::test]
async fn push_with_2048_commits() {
    let server = start(common::config()).await;
    let mut ex = examples()
        .into_iter()
        .find(|e| {
            e.event == "push"
                && e.payload["commits"]
                    .as_array()
                    .is_some_and(|c| !c.is_empty())
        })
        .unwrap();
    let commit = ex.payload["commits"][0].clone();
    ex.payload["commits"] = Value::Array(vec![commit; 2048]);
    let body = serde_json::to_vec(&ex.payload).unwrap();
    assert!(body.len() > 1_000_000, "{}", body.len());
    assert_eq!(server.deliver("push", "big", &body).await.0, 202);
    check_push(&ex, &server.next_trigger().await);
    server.shutdown().await;
}
