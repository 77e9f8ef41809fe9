//! GitLab: `Push Hook`, `Tag Push Hook` and `Merge Request Hook` (and the same bodies
//! under `System Hook`, told apart by `object_kind`).

use serde::Deserialize;

use super::{object, push, read};
use crate::event::{
    self, Event, EventError, NO_COMMIT, PullRequest, PullRequestAction, PullRequestRef, Repository,
};

#[derive(Deserialize)]
struct Kind {
    #[serde(default)]
    object_kind: Option<String>,
    #[serde(default)]
    event_name: Option<String>,
    #[serde(default)]
    event_type: Option<String>,
}

#[derive(Deserialize)]
struct Project {
    path_with_namespace: String,
    git_http_url: String,
    #[serde(default)]
    git_ssh_url: Option<String>,
}

impl From<Project> for Repository {
    fn from(p: Project) -> Self {
        Repository {
            full_name: p.path_with_namespace,
            clone_url: p.git_http_url,
            ssh_url: p.git_ssh_url,
        }
    }
}

#[derive(Deserialize)]
struct PushPayload {
    #[serde(rename = "ref")]
    git_ref: String,
    before: String,
    after: String,
    /// The commit a tag points to (`after` may be the tag object); null on a delete.
    #[serde(default)]
    checkout_sha: Option<String>,
    project: Project,
}

#[derive(Deserialize)]
struct MergeRequestPayload {
    project: Project,
    object_attributes: MergeRequest,
}

#[derive(Deserialize)]
struct MergeRequest {
    iid: u64,
    #[serde(default)]
    action: Option<String>,
    source_branch: String,
    target_branch: String,
    last_commit: LastCommit,
    /// Present on an `update` that brought new commits.
    #[serde(default)]
    oldrev: Option<String>,
}

#[derive(Deserialize)]
struct LastCommit {
    id: String,
}

pub fn parse(event: &str, json: &str) -> Result<Vec<Event>, EventError> {
    // The header names the hook; a system hook's body says what it is.
    let kind = match event {
        "Push Hook" => "push".to_string(),
        "Tag Push Hook" => "tag_push".to_string(),
        "Merge Request Hook" => "merge_request".to_string(),
        "System Hook" => {
            let k: Kind = read("System Hook", json)?;
            k.object_kind
                .or(k.event_name)
                .or(k.event_type)
                .unwrap_or_default()
        }
        _ => {
            object("webhook", json)?;
            return Ok(vec![Event::Ignored]);
        }
    };
    match kind.as_str() {
        "push" | "tag_push" => {
            let p: PushPayload = read("push", json)?;
            let after = match p.checkout_sha {
                Some(sha) if p.after != NO_COMMIT => sha,
                _ => p.after,
            };
            Ok(vec![push(
                "push",
                p.git_ref,
                p.before,
                after,
                false,
                p.project.into(),
            )?])
        }
        "merge_request" => {
            let m: MergeRequestPayload = read("merge_request", json)?;
            let mr = m.object_attributes;
            let action = match (mr.action.as_deref(), &mr.oldrev) {
                (Some("open"), _) => PullRequestAction::Opened,
                (Some("reopen"), _) => PullRequestAction::Reopened,
                (Some("update"), Some(_)) => PullRequestAction::Synchronize,
                _ => return Ok(vec![Event::Ignored]),
            };
            event::check_sha(
                "merge_request",
                "object_attributes.last_commit.id",
                &mr.last_commit.id,
            )?;
            Ok(vec![Event::PullRequest(PullRequest {
                action,
                number: mr.iid,
                git_ref: format!("refs/merge-requests/{}/head", mr.iid),
                head: PullRequestRef {
                    branch: mr.source_branch,
                    sha: mr.last_commit.id,
                },
                // GitLab does not say where the target branch is.
                base: PullRequestRef {
                    branch: mr.target_branch,
                    sha: NO_COMMIT.to_string(),
                },
                repository: m.project.into(),
            })])
        }
        _ => Ok(vec![Event::Ignored]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "95790bf891e76fee5e1747ab589903a6a1f80f22";
    const B: &str = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";

    fn push_json(before: &str, after: &str, git_ref: &str, checkout: Option<&str>) -> String {
        json!({"object_kind": "push", "before": before, "after": after, "ref": git_ref,
               "checkout_sha": checkout, "project": {"path_with_namespace": "grp/app",
               "git_http_url": "https://gitlab.example/grp/app.git",
               "git_ssh_url": "git@gitlab.example:grp/app.git"}})
        .to_string()
    }

    #[test]
    fn pushes_of_branches_and_tags_and_deletions() {
        let Event::Push(p) = parse("Push Hook", &push_json(A, B, "refs/heads/main", Some(B)))
            .unwrap()
            .remove(0)
        else {
            panic!()
        };
        assert_eq!((p.after.as_str(), p.created, p.deleted), (B, false, false));
        assert_eq!(
            p.repository.ssh_url.as_deref(),
            Some("git@gitlab.example:grp/app.git")
        );
        let Event::Push(p) = parse(
            "Push Hook",
            &push_json(A, NO_COMMIT, "refs/heads/gone", None),
        )
        .unwrap()
        .remove(0) else {
            panic!()
        };
        assert!(p.deleted);
        // An annotated tag: `after` is the tag object, checkout_sha its commit.
        let Event::Push(p) = parse(
            "Tag Push Hook",
            &push_json(NO_COMMIT, A, "refs/tags/v1", Some(B)),
        )
        .unwrap()
        .remove(0) else {
            panic!()
        };
        assert_eq!((p.after.as_str(), p.created), (B, true));
        let sys = parse("System Hook", &push_json(A, B, "refs/heads/main", Some(B))).unwrap();
        assert!(matches!(sys[0], Event::Push(_)));
    }

    #[test]
    fn merge_requests_with_new_commits_only() {
        let mr = |action: &str, oldrev: Option<&str>| {
            json!({"object_kind": "merge_request", "project": {"path_with_namespace": "grp/app",
                   "git_http_url": "https://gitlab.example/grp/app.git"},
                   "object_attributes": {"iid": 7, "action": action, "source_branch": "feat",
                   "target_branch": "main", "last_commit": {"id": B}, "oldrev": oldrev}})
            .to_string()
        };
        let Event::PullRequest(p) = parse("Merge Request Hook", &mr("update", Some(A)))
            .unwrap()
            .remove(0)
        else {
            panic!()
        };
        assert_eq!(
            (p.action, p.git_ref.as_str()),
            (PullRequestAction::Synchronize, "refs/merge-requests/7/head")
        );
        assert_eq!(
            parse("Merge Request Hook", &mr("update", None)).unwrap(),
            [Event::Ignored]
        );
        assert_eq!(
            parse("Merge Request Hook", &mr("approved", None)).unwrap(),
            [Event::Ignored]
        );
        assert!(matches!(
            parse("Merge Request Hook", &mr("open", None)).unwrap()[0],
            Event::PullRequest(_)
        ));
    }

    #[test]
    fn other_hooks_are_ignored_and_bad_bodies_refused() {
        assert_eq!(parse("Pipeline Hook", "{}").unwrap(), [Event::Ignored]);
        assert!(parse("Pipeline Hook", "[]").is_err());
        assert!(parse("Push Hook", "{}").is_err());
        assert!(parse("Push Hook", &push_json(A, "xyz", "refs/heads/main", None)).is_err());
    }
}
