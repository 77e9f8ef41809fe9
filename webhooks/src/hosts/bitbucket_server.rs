//! Bitbucket Server and Data Center (`X-Event-Key`): `repo:refs_changed` with one change
//! per ref (`ADD`, `UPDATE`, `DELETE`), `pr:opened`, `pr:from_ref_updated`, and
//! `diagnostics:ping` from the "Test connection" button.

use serde::Deserialize;

use super::{object, push, read};
use crate::event::{
    self, Event, EventError, PullRequest, PullRequestAction, PullRequestRef, Repository,
};

#[derive(Deserialize)]
struct Repo {
    slug: String,
    project: Project,
    /// Clone links: in the payloads of most versions, not all.
    #[serde(default)]
    links: Option<Links>,
}

#[derive(Deserialize)]
struct Project {
    key: String,
}

#[derive(Deserialize)]
struct Links {
    #[serde(default)]
    clone: Vec<Clone>,
}

#[derive(Deserialize)]
struct Clone {
    href: String,
    name: String,
}

impl From<Repo> for Repository {
    fn from(r: Repo) -> Self {
        let clone = r.links.map(|l| l.clone).unwrap_or_default();
        let link = |name: &str| {
            clone
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.href.clone())
        };
        Repository {
            full_name: format!("{}/{}", r.project.key, r.slug),
            clone_url: link("http").unwrap_or_default(),
            ssh_url: link("ssh"),
        }
    }
}

#[derive(Deserialize)]
struct RefsChanged {
    repository: Repo,
    changes: Vec<RefChange>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefChange {
    ref_id: String,
    from_hash: String,
    to_hash: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PrPayload {
    pull_request: Pr,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pr {
    id: u64,
    from_ref: PrRef,
    to_ref: PrRef,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PrRef {
    id: String,
    display_id: String,
    latest_commit: String,
    repository: Repo,
}

pub fn parse(event: &str, json: &str) -> Result<Vec<Event>, EventError> {
    match event {
        "diagnostics:ping" => Ok(vec![Event::Ping]),
        "repo:refs_changed" => {
            let r: RefsChanged = read("repo:refs_changed", json)?;
            let repository: Repository = r.repository.into();
            r.changes
                .into_iter()
                .map(|c| {
                    push(
                        "repo:refs_changed",
                        c.ref_id,
                        c.from_hash,
                        c.to_hash,
                        false,
                        repository.clone(),
                    )
                })
                .collect()
        }
        "pr:opened" | "pr:from_ref_updated" => {
            let PrPayload { pull_request: pr } = read("pull_request", json)?;
            event::check_ref("pull_request", "pullRequest.fromRef.id", &pr.from_ref.id)?;
            event::check_sha(
                "pull_request",
                "pullRequest.fromRef.latestCommit",
                &pr.from_ref.latest_commit,
            )?;
            event::check_sha(
                "pull_request",
                "pullRequest.toRef.latestCommit",
                &pr.to_ref.latest_commit,
            )?;
            Ok(vec![Event::PullRequest(PullRequest {
                action: if event == "pr:opened" {
                    PullRequestAction::Opened
                } else {
                    PullRequestAction::Synchronize
                },
                number: pr.id,
                git_ref: pr.from_ref.id.clone(),
                head: PullRequestRef {
                    branch: pr.from_ref.display_id,
                    sha: pr.from_ref.latest_commit,
                },
                base: PullRequestRef {
                    branch: pr.to_ref.display_id,
                    sha: pr.to_ref.latest_commit,
                },
                repository: pr.to_ref.repository.into(),
            })])
        }
        _ => {
            object("webhook", json)?;
            Ok(vec![Event::Ignored])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NO_COMMIT;
    use serde_json::json;

    const A: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

    fn repo(links: bool) -> serde_json::Value {
        let mut r = json!({"slug": "deploy", "project": {"key": "OPS"}});
        if links {
            r["links"] = json!({"clone": [
                {"href": "https://bb.example/scm/ops/deploy.git", "name": "http"},
                {"href": "ssh://git@bb.example:7999/ops/deploy.git", "name": "ssh"}]});
        }
        r
    }

    #[test]
    fn each_ref_change_is_a_push_and_clone_links_are_optional() {
        let body = json!({"repository": repo(true), "changes": [
            {"ref": {"id": "refs/heads/main", "type": "BRANCH"}, "refId": "refs/heads/main",
             "fromHash": NO_COMMIT, "toHash": A, "type": "ADD"},
            {"ref": {"id": "refs/tags/v1", "type": "TAG"}, "refId": "refs/tags/v1",
             "fromHash": A, "toHash": NO_COMMIT, "type": "DELETE"}]});
        let events = parse("repo:refs_changed", &body.to_string()).unwrap();
        let [Event::Push(added), Event::Push(deleted)] = &events[..] else {
            panic!("{events:?}")
        };
        assert!(added.created && deleted.deleted);
        assert_eq!(added.repository.full_name, "OPS/deploy");
        assert_eq!(
            added.repository.clone_url,
            "https://bb.example/scm/ops/deploy.git"
        );
        let bare = json!({"repository": repo(false), "changes": []});
        assert!(
            parse("repo:refs_changed", &bare.to_string())
                .unwrap()
                .is_empty()
        );
        assert_eq!(parse("diagnostics:ping", "").unwrap(), [Event::Ping]);
    }
}
