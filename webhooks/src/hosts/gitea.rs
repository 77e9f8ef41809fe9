//! Gitea, Forgejo and Gogs (`X-Gitea-Event`). A new branch comes as `create` then a
//! `push` from zeros; a deleted branch only as `delete`; a tag as a `push` (and a
//! `create` or `delete`). Pushes carry no created/deleted/forced flags: zeros say it.

use serde::Deserialize;

use super::{full_ref, object, push, read};
use crate::event::{
    self, ActionOnly, Event, EventError, NO_COMMIT, PullRequest, PullRequestAction, PullRequestRef,
    Repository,
};

#[derive(Deserialize)]
struct PushPayload {
    #[serde(rename = "ref")]
    git_ref: String,
    before: String,
    after: String,
    repository: Repository,
}

#[derive(Deserialize)]
struct DeletePayload {
    /// The short name.
    #[serde(rename = "ref")]
    name: String,
    ref_type: String,
    repository: Repository,
}

#[derive(Deserialize)]
struct PullRequestPayload {
    number: u64,
    /// Null when Gitea failed to build it.
    pull_request: Option<Body>,
    repository: Repository,
}

/// Gogs' pull requests name branches only (`head_branch`): no head to act on.
#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    head: Option<PullRequestRef>,
    #[serde(default)]
    base: Option<PullRequestRef>,
}

pub fn parse(event: &str, json: &str) -> Result<Vec<Event>, EventError> {
    match event {
        "push" => {
            let p: PushPayload = read("push", json)?;
            Ok(vec![push(
                "push",
                p.git_ref,
                p.before,
                p.after,
                false,
                p.repository,
            )?])
        }
        // The only word of a deleted branch: a push of it to zeros (the commit it had is
        // not said).
        "delete" => {
            let d: DeletePayload = read("delete", json)?;
            let tag = match d.ref_type.as_str() {
                "branch" => false,
                "tag" => true,
                _ => return Ok(vec![Event::Ignored]),
            };
            let git_ref = full_ref(tag, &d.name);
            Ok(vec![push(
                "delete",
                git_ref,
                NO_COMMIT.into(),
                NO_COMMIT.into(),
                false,
                d.repository,
            )?])
        }
        "pull_request" => {
            let ActionOnly { action } = read("pull_request", json)?;
            let action = match action.as_str() {
                "opened" => PullRequestAction::Opened,
                "synchronized" | "synchronize" => PullRequestAction::Synchronize,
                "reopened" => PullRequestAction::Reopened,
                _ => return Ok(vec![Event::Ignored]),
            };
            let p: PullRequestPayload = read("pull_request", json)?;
            let Some(Body {
                head: Some(head),
                base: Some(base),
            }) = p.pull_request
            else {
                return Ok(vec![Event::Ignored]);
            };
            event::check_sha("pull_request", "pull_request.head.sha", &head.sha)?;
            event::check_sha("pull_request", "pull_request.base.sha", &base.sha)?;
            Ok(vec![Event::PullRequest(PullRequest {
                action,
                number: p.number,
                git_ref: format!("refs/pull/{}/head", p.number),
                head,
                base,
                repository: p.repository,
            })])
        }
        // `create` is followed (or preceded, for a tag) by the push that says it.
        _ => {
            object("webhook", json)?;
            Ok(vec![Event::Ignored])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "0bd5d85ec08fb6c6d4bce3bd3c2ac28d8667a532";
    const B: &str = "2a3c1f0ab5c4f06e7a0c9e4c1f3a7b6d5e4c3b2a";

    fn repo() -> serde_json::Value {
        json!({"full_name": "root1/demo", "clone_url": "http://127.0.0.1:3917/root1/demo.git",
               "ssh_url": "git@127.0.0.1:root1/demo.git"})
    }

    #[test]
    fn a_push_from_zeros_creates_and_a_delete_event_deletes() {
        let created = json!({"ref": "refs/heads/main", "before": NO_COMMIT, "after": A, "repository": repo()});
        let Event::Push(p) = parse("push", &created.to_string()).unwrap().remove(0) else {
            panic!()
        };
        assert!(p.created && !p.deleted);
        let gone = json!({"ref": "feature", "ref_type": "branch", "pusher_type": "user", "repository": repo()});
        let Event::Push(p) = parse("delete", &gone.to_string()).unwrap().remove(0) else {
            panic!()
        };
        assert_eq!(
            (p.git_ref.as_str(), p.deleted, p.created),
            ("refs/heads/feature", true, false)
        );
        let tag = json!({"ref": "v1", "ref_type": "tag", "repository": repo()});
        let Event::Push(p) = parse("delete", &tag.to_string()).unwrap().remove(0) else {
            panic!()
        };
        assert_eq!(p.git_ref, "refs/tags/v1");
        let create =
            json!({"ref": "feature", "ref_type": "branch", "sha": A, "repository": repo()});
        assert_eq!(
            parse("create", &create.to_string()).unwrap(),
            [Event::Ignored]
        );
    }

    #[test]
    fn pull_requests_synchronized_and_null_bodies() {
        let pr = |action: &str, body: serde_json::Value| {
            json!({"action": action, "number": 3, "pull_request": body, "repository": repo()})
                .to_string()
        };
        let body = json!({"head": {"ref": "feat", "sha": A}, "base": {"ref": "main", "sha": B}});
        let Event::PullRequest(p) = parse("pull_request", &pr("synchronized", body.clone()))
            .unwrap()
            .remove(0)
        else {
            panic!()
        };
        assert_eq!(
            (p.action, p.git_ref.as_str()),
            (PullRequestAction::Synchronize, "refs/pull/3/head")
        );
        assert_eq!(
            parse("pull_request", &pr("opened", serde_json::Value::Null)).unwrap(),
            [Event::Ignored]
        );
        assert_eq!(
            parse("pull_request", &pr("closed", body)).unwrap(),
            [Event::Ignored]
        );
    }
}
