//! CPU cost of one delivery without the network: HMAC, payload checks, parse, and the
//! whole `inspect` path, on an 8 KB push shaped like GitHub's; octocrab's parse of the same
//! payload as the reference.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keelson_webhooks::payload::{self, ContentType};
use keelson_webhooks::{DeliveryHeaders, Host, Limits, Secret, event, inspect, signature};
use octocrab::models::webhook_events::WebhookEvent;
use serde_json::{Value, json};

const KEY: &[u8] = b"bench secret";

/// A GitHub account object (sender, owner).
fn account() -> Value {
    let mut user = serde_json::Map::new();
    for (k, v) in [
        ("login", json!("octocat")),
        ("id", json!(1)),
        ("node_id", json!("U_kgDOAbCdEf")),
        ("gravatar_id", json!("")),
        ("type", json!("User")),
        ("site_admin", json!(false)),
    ] {
        user.insert(k.into(), v);
    }
    for field in [
        "avatar",
        "html",
        "followers",
        "following",
        "gists",
        "starred",
        "subscriptions",
        "organizations",
        "repos",
        "events",
        "received_events",
    ] {
        user.insert(
            format!("{field}_url"),
            json!(format!("https://example.invalid/users/octocat/{field}")),
        );
    }
    user.insert("url".into(), json!("https://example.invalid/users/octocat"));
    Value::Object(user)
}

/// A push with three commits and a full repository object, padded to exactly 8,192 bytes.
fn push_8k() -> Vec<u8> {
    let user = json!({"name": "Octo Cat", "email": "octo@example.invalid", "username": "octocat"});
    let commit = |i: u32| {
        json!({
            "id": format!("{i:040x}"), "tree_id": format!("{:040x}", i + 1000), "distinct": true,
            "message": "Update the deployment overlays", "timestamp": "2026-01-01T12:00:00+00:00",
            "url": format!("https://example.invalid/octo/app/commit/{i:040x}"),
            "author": user, "committer": user,
            "added": [], "removed": [], "modified": ["overlays/prod/kustomization.yaml"],
        })
    };
    let mut repository = serde_json::Map::new();
    repository.insert("name".into(), json!("app"));
    repository.insert(
        "url".into(),
        json!("https://example.invalid/repos/octo/app"),
    );
    repository.insert("node_id".into(), json!("R_kgDOAbCdEf"));
    repository.insert("owner".into(), account());
    repository.insert("full_name".into(), json!("octo/app"));
    repository.insert(
        "clone_url".into(),
        json!("https://example.invalid/octo/app.git"),
    );
    for field in [
        "html",
        "forks",
        "keys",
        "collaborators",
        "teams",
        "hooks",
        "issue_events",
        "events",
        "assignees",
        "branches",
        "tags",
        "blobs",
        "git_tags",
        "git_refs",
        "trees",
        "statuses",
        "languages",
        "stargazers",
        "contributors",
        "subscribers",
        "subscription",
        "commits",
        "git_commits",
        "comments",
        "issue_comment",
        "contents",
        "compare",
        "merges",
        "archive",
        "downloads",
        "issues",
        "pulls",
        "milestones",
        "notifications",
        "labels",
        "releases",
        "deployments",
        "git",
        "ssh",
        "svn",
        "mirror",
    ] {
        repository.insert(
            format!("{field}_url"),
            json!(format!("https://example.invalid/repos/octo/app/{field}")),
        );
    }
    for (k, v) in [
        ("id", json!(123456789)),
        ("private", json!(false)),
        ("size", json!(42)),
        ("default_branch", json!("main")),
        ("stargazers_count", json!(7)),
        ("open_issues", json!(1)),
    ] {
        repository.insert(k.into(), v);
    }
    let mut push = json!({
        "ref": "refs/heads/main", "before": format!("{:040x}", 1), "after": format!("{:040x}", 3),
        "created": false, "deleted": false, "forced": false, "base_ref": null,
        "compare": "https://example.invalid/octo/app/compare/1...3",
        "commits": [commit(1), commit(2), commit(3)], "head_commit": commit(3),
        "repository": Value::Object(repository), "pusher": user,
        "sender": account(),
    });
    let len = serde_json::to_vec(&push).unwrap().len();
    assert!(len < 8192, "{len}");
    let message = push["head_commit"]["message"].as_str().unwrap().to_owned();
    push["head_commit"]["message"] = json!(format!("{message}{}", " ".repeat(8192 - len)));
    let body = serde_json::to_vec(&push).unwrap();
    assert_eq!(body.len(), 8192);
    body
}

fn bench(c: &mut Criterion) {
    let body = push_8k();
    let secret = Secret::new(KEY.to_vec()).unwrap();
    let sig = signature::sign(KEY, &body);
    let limits = Limits::default();
    let text = std::str::from_utf8(&body).unwrap();
    let headers = DeliveryHeaders {
        content_type: Some(b"application/json"),
        signature: Some(sig.as_bytes()),
        event: Some(b"push"),
        delivery: Some(b"72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ..DeliveryHeaders::default()
    };
    let mut g = c.benchmark_group("push_8k");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("hmac_verify", |b| {
        b.iter(|| signature::verify(&secret, Some(sig.as_bytes()), &body).unwrap())
    });
    g.bench_function("utf8_object_depth", |b| {
        b.iter(|| payload::json_text(ContentType::Json, &body, limits.max_json_depth).unwrap())
    });
    g.bench_function("parse_push", |b| {
        b.iter(|| event::parse("push", text).unwrap())
    });
    // The reference: octocrab's full webhook model of the same payload.
    g.bench_function("parse_push_octocrab", |b| {
        b.iter(|| WebhookEvent::try_from_header_and_body("push", &body).unwrap())
    });
    g.bench_function("inspect", |b| {
        b.iter(|| inspect(Host::GitHub, &secret, &limits, headers, &body).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
