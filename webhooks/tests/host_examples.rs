//! Real webhook payloads of GitLab, Gitea/Gogs and Bitbucket Cloud and Server (the
//! testdata of `github.com/go-playground/webhooks`, fetched from the Go module proxy by
//! `e2e/tools/host-webhook-examples.sh`), each proved the way its host proves it, through
//! the real server: pushes of branches and tags and deletions give the right trigger,
//! everything else the right ignore, and a wrong proof is 401 on every route.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::{SECRET, Server, config, start};
use keelson_webhooks::{Host, Trigger, TriggerKind, signature};
use serde_json::Value;

fn examples() -> Option<PathBuf> {
    let dir = std::env::var_os("KEELSON_HOST_WEBHOOK_EXAMPLES").map(PathBuf::from);
    if dir.is_none() {
        eprintln!("skipped: KEELSON_HOST_WEBHOOK_EXAMPLES is not set (./e2e/test.sh sets it)");
    }
    dir
}

/// The host's headers for `body` (`proof`: sign it right, or not).
fn headers(host: Host, event: &str, id: &str, body: &[u8], proof: bool) -> Vec<(String, String)> {
    let key = if proof { SECRET } else { "not the secret" };
    let sig = signature::sign(key.as_bytes(), body);
    let mut h = vec![("Content-Type".to_string(), "application/json".to_string())];
    let mut add = |k: &str, v: &str| h.push((k.to_string(), v.to_string()));
    match host {
        Host::GitHub => unreachable!("GitHub's examples have their own test"),
        Host::GitLab => {
            add("X-Gitlab-Event", event);
            add("X-Gitlab-Event-UUID", id);
            add("X-Gitlab-Token", key);
        }
        Host::Gitea => {
            add("X-Gitea-Event", event);
            add("X-Gitea-Delivery", id);
            add("X-Gitea-Signature", &sig["sha256=".len()..]);
        }
        Host::Bitbucket => {
            add("X-Event-Key", event);
            add("X-Request-UUID", id);
            add("X-Hub-Signature", &sig);
        }
        Host::BitbucketServer => {
            add("X-Event-Key", event);
            add("X-Request-Id", id);
            add("X-Hub-Signature", &sig);
        }
    }
    h
}

async fn send(
    server: &Server,
    host: Host,
    event: &str,
    id: &str,
    body: &[u8],
    proof: bool,
) -> (u16, String) {
    let h = headers(host, event, id, body, proof);
    let refs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    server.post_to(host.path(), &refs, body).await
}

/// The event header each host sends a file of the testdata with: the ones keelson acts on
/// by name, the rest as the kind of event they are (all of them ignored).
fn event_of(host: Host, file: &str) -> String {
    let name = file.trim_end_matches(".json");
    match (host, name) {
        (Host::GitLab, "push-event") => "Push Hook".into(),
        (Host::GitLab, "tag-event") => "Tag Push Hook".into(),
        (Host::GitLab, "merge-request-event") => "Merge Request Hook".into(),
        (Host::GitLab, n) if n.starts_with("system-") => "System Hook".into(),
        (Host::GitLab, n) => format!("{} Hook", n.trim_end_matches("-event")),
        (Host::Gitea, n) => n.trim_end_matches("-event").replace('-', "_"),
        (Host::Bitbucket, n) => match n {
            "repo-push" => "repo:push".into(),
            n if n.starts_with("pull-request-") => {
                format!("pullrequest:{}", n.trim_start_matches("pull-request-"))
            }
            n => n.replacen('-', ":", 1),
        },
        (Host::BitbucketServer, n) => match n {
            "repo-refs-changed" => "repo:refs_changed".into(),
            n => n.replacen('-', ":", 1),
        },
        (Host::GitHub, _) => unreachable!(),
    }
}

fn str_at<'a>(v: &'a Value, path: &str) -> &'a str {
    v.pointer(path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{path}"))
}

/// What the trigger of `file` must be, checked against the payload read as plain JSON.
fn check(host: Host, file: &str, p: &Value, t: &Trigger) {
    assert_eq!(t.host, host);
    let push = |t: &Trigger| match t.kind {
        TriggerKind::Push {
            tag,
            created,
            deleted,
            ..
        } => (tag, created, deleted),
        _ => panic!("{file}: not a push: {t:?}"),
    };
    match (host, file) {
        (Host::GitLab, "push-event.json") | (Host::GitLab, "tag-event.json") => {
            assert_eq!(t.git_ref, str_at(p, "/ref"));
            assert_eq!(t.after, str_at(p, "/checkout_sha"));
            assert_eq!(t.clone_url, str_at(p, "/project/git_http_url"));
            assert_eq!(
                t.ssh_url.as_deref(),
                Some(str_at(p, "/project/git_ssh_url"))
            );
            let (tag, created, _) = push(t);
            assert_eq!(tag, file == "tag-event.json");
            assert_eq!(created, str_at(p, "/before").bytes().all(|b| b == b'0'));
        }
        (Host::GitLab, "merge-request-event.json") => {
            let iid = p.pointer("/object_attributes/iid").unwrap();
            assert_eq!(t.git_ref, format!("refs/merge-requests/{iid}/head"));
            assert_eq!(t.after, str_at(p, "/object_attributes/last_commit/id"));
        }
        (Host::GitLab, "system-push-event.json") | (Host::GitLab, "system-tag-event.json") => {
            assert_eq!(t.git_ref, str_at(p, "/ref"));
        }
        (Host::Gitea, "push-event.json") => {
            assert_eq!(
                (t.git_ref.as_str(), t.after.as_str()),
                (str_at(p, "/ref"), str_at(p, "/after"))
            );
            assert_eq!(t.clone_url, str_at(p, "/repository/clone_url"));
            assert!(push(t).1, "pushed from zeros: created");
        }
        (Host::Gitea, "delete-event.json") => {
            assert_eq!(t.git_ref, format!("refs/heads/{}", str_at(p, "/ref")));
            assert!(push(t).2, "deleted");
        }
        (Host::Gitea, "pull-request-event.json") => {
            assert_eq!(t.git_ref, format!("refs/pull/{}/head", p["number"]));
            assert_eq!(t.after, str_at(p, "/pull_request/head/sha"));
            assert_eq!(t.before, str_at(p, "/pull_request/base/sha"));
        }
        (Host::Bitbucket, "repo-push.json") => {
            let change = &p["push"]["changes"][0];
            assert_eq!(
                t.git_ref,
                format!("refs/heads/{}", str_at(change, "/new/name"))
            );
            assert_eq!(t.after, str_at(change, "/new/target/hash"));
            assert_eq!(
                t.clone_url,
                format!("{}.git", str_at(p, "/repository/links/html/href"))
            );
        }
        (Host::Bitbucket, f) if f.starts_with("pull-request-") => {
            assert_eq!(
                t.git_ref,
                format!(
                    "refs/heads/{}",
                    str_at(p, "/pullrequest/source/branch/name")
                )
            );
            assert_eq!(t.after, str_at(p, "/pullrequest/source/commit/hash"));
        }
        (Host::BitbucketServer, "repo-refs-changed.json") => {
            let change = &p["changes"][0];
            assert_eq!(t.git_ref, str_at(change, "/refId"));
            assert_eq!(push(t).2, str_at(change, "/type") == "DELETE");
            assert_eq!(
                t.clone_url,
                "https://server.bitbucket.local/scm/~gopher/webhook-test.git"
            );
        }
        (Host::BitbucketServer, "pr-opened.json") => {
            assert_eq!(t.git_ref, str_at(p, "/pullRequest/fromRef/id"));
            assert_eq!(t.after, str_at(p, "/pullRequest/fromRef/latestCommit"));
        }
        _ => panic!("{host}/{file} gave a trigger: {t:?}"),
    }
}

/// Files of each host that must give a trigger; every other file must be ignored.
const TRIGGERING: &[(Host, &str)] = &[
    (Host::GitLab, "push-event.json"),
    (Host::GitLab, "tag-event.json"),
    (Host::GitLab, "merge-request-event.json"),
    (Host::GitLab, "system-push-event.json"),
    (Host::GitLab, "system-tag-event.json"),
    (Host::Gitea, "push-event.json"),
    (Host::Gitea, "delete-event.json"),
    (Host::Gitea, "pull-request-event.json"),
    (Host::Bitbucket, "repo-push.json"),
    (Host::Bitbucket, "pull-request-created.json"),
    (Host::Bitbucket, "pull-request-updated.json"),
    (Host::BitbucketServer, "repo-refs-changed.json"),
    (Host::BitbucketServer, "pr-opened.json"),
];

#[tokio::test]
async fn every_hosts_real_payloads_give_the_right_trigger_or_ignore() {
    let Some(root) = examples() else { return };
    let server = start(config()).await;
    let mut seen = 0;
    for (host, dir) in [
        (Host::GitLab, "gitlab"),
        (Host::Gitea, "gitea"),
        (Host::Gitea, "gogs"),
        (Host::Bitbucket, "bitbucket"),
        (Host::BitbucketServer, "bitbucket-server"),
    ] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|f| f.ends_with(".json"))
            .collect();
        files.sort();
        for file in files {
            let body = std::fs::read(root.join(dir).join(&file)).unwrap();
            let payload: Value = serde_json::from_slice(&body).unwrap();
            let event = event_of(host, &file);
            let id = format!("{dir}-{file}");
            let (status, text) = send(&server, host, &event, &id, &body, true).await;
            let wants = TRIGGERING.contains(&(host, file.as_str())) && dir != "gogs";
            if wants {
                assert_eq!(status, 202, "{dir}/{file} ({event}): {text}");
                let t = server.next_trigger().await;
                check(host, &file, &payload, &t);
                seen += 1;
            } else {
                // Gogs' payloads are Gitea's ancestors: its pushes and deletions trigger too.
                if dir == "gogs" && matches!(event.as_str(), "push" | "delete" | "pull_request") {
                    assert!(
                        status == 202 || status == 200,
                        "{dir}/{file}: {status} {text}"
                    );
                    while let Ok(Some(_)) = tokio::time::timeout(
                        std::time::Duration::from_millis(200),
                        server.triggers.recv(),
                    )
                    .await
                    {}
                    continue;
                }
                assert_eq!(
                    (status, text.as_str()),
                    (200, r#"{"outcome":"ignored"}"#),
                    "{dir}/{file} ({event})"
                );
                server.no_trigger().await;
            }
            // The same delivery with a wrong proof: 401, whatever it holds.
            let (status, _) = send(&server, host, &event, &format!("{id}-x"), &body, false).await;
            assert_eq!(status, 401, "{dir}/{file}");
        }
    }
    assert_eq!(seen, TRIGGERING.len());
    assert!(
        server
            .metric(r#"keelson_webhook_deliveries_total{host="gitlab",event="push_hook",outcome="queued"}"#)
            .await
            >= 1
    );
}
