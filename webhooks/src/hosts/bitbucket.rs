//! Bitbucket Cloud (`X-Event-Key`): `repo:push` holds one change per ref (a new ref has
//! no `old`, a deleted one no `new`); `pullrequest:created`/`updated`. Payloads carry no
//! clone URL: it is the repository's web address plus `.git` (and `git@host:name.git`).

use serde::Deserialize;

use super::{full_ref, object, push, read};
use crate::event::{
    Event, EventError, NO_COMMIT, PullRequest, PullRequestAction, PullRequestRef, Repository,
};

#[derive(Deserialize)]
struct Repo {
    full_name: String,
    links: Links,
}

#[derive(Deserialize)]
struct Links {
    html: Href,
}

#[derive(Deserialize)]
struct Href {
    href: String,
}

impl From<Repo> for Repository {
    fn from(r: Repo) -> Self {
        let web = r.links.html.href.trim_end_matches('/').to_string();
        let host = web
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or_default().to_string())
            .unwrap_or_default();
        Repository {
            ssh_url: (!host.is_empty()).then(|| format!("git@{host}:{}.git", r.full_name)),
            clone_url: format!("{web}.git"),
            full_name: r.full_name,
        }
    }
}

#[derive(Deserialize)]
struct PushPayload {
    repository: Repo,
    push: Changes,
}

#[derive(Deserialize)]
struct Changes {
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    new: Option<RefState>,
    #[serde(default)]
    old: Option<RefState>,
    #[serde(default)]
    forced: bool,
}

#[derive(Deserialize)]
struct RefState {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    target: Target,
}

#[derive(Deserialize)]
struct Target {
    hash: String,
}

#[derive(Deserialize)]
struct PullRequestPayload {
    repository: Repo,
    pullrequest: Pr,
}

#[derive(Deserialize)]
struct Pr {
    id: u64,
    source: Side,
    destination: Side,
}

#[derive(Deserialize)]
struct Side {
    branch: Branch,
    commit: Target,
}

#[derive(Deserialize)]
struct Branch {
    name: String,
}

pub fn parse(event: &str, json: &str) -> Result<Vec<Event>, EventError> {
    match event {
        "repo:push" => {
            let p: PushPayload = read("repo:push", json)?;
            let repository: Repository = p.repository.into();
            p.push
                .changes
                .into_iter()
                .filter_map(|c| {
                    let named = c.new.as_ref().or(c.old.as_ref())?;
                    let git_ref = full_ref(named.kind == "tag", &named.name);
                    let hash = |s: &Option<RefState>| {
                        s.as_ref()
                            .map_or(NO_COMMIT.to_string(), |s| s.target.hash.clone())
                    };
                    Some(push(
                        "repo:push",
                        git_ref,
                        hash(&c.old),
                        hash(&c.new),
                        c.forced,
                        repository.clone(),
                    ))
                })
                .collect()
        }
        "pullrequest:created" | "pullrequest:updated" => {
            let p: PullRequestPayload = read("pullrequest", json)?;
            let pr = p.pullrequest;
            Ok(vec![Event::PullRequest(PullRequest {
                action: if event == "pullrequest:created" {
                    PullRequestAction::Opened
                } else {
                    PullRequestAction::Synchronize
                },
                number: pr.id,
                // Bitbucket Cloud has no pull request refs: the source branch (whose
                // head the abbreviated hash names).
                git_ref: full_ref(false, &pr.source.branch.name),
                head: PullRequestRef {
                    branch: pr.source.branch.name,
                    sha: pr.source.commit.hash,
                },
                base: PullRequestRef {
                    branch: pr.destination.branch.name,
                    sha: pr.destination.commit.hash,
                },
                repository: p.repository.into(),
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
    use serde_json::json;

    const A: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
    const B: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567";

    fn state(kind: &str, name: &str, hash: &str) -> serde_json::Value {
        json!({"type": kind, "name": name, "target": {"type": "commit", "hash": hash}})
    }

    #[test]
    fn one_trigger_per_change_and_clone_urls_from_the_web_address() {
        let body = json!({
            "repository": {"full_name": "team/deploy", "links": {"html": {"href": "https://bitbucket.org/team/deploy"}}},
            "push": {"changes": [
                {"old": state("branch", "main", A), "new": state("branch", "main", B), "forced": true},
                {"old": null, "new": state("tag", "v1", B), "created": true},
                {"old": state("branch", "gone", A), "new": null, "closed": true},
            ]}
        });
        let events = parse("repo:push", &body.to_string()).unwrap();
        let pushes: Vec<_> = events
            .into_iter()
            .map(|e| match e {
                Event::Push(p) => p,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(pushes.len(), 3);
        assert!(pushes[0].forced && pushes[0].git_ref == "refs/heads/main");
        assert!(pushes[1].created && pushes[1].git_ref == "refs/tags/v1");
        assert!(pushes[2].deleted && pushes[2].before == A);
        assert_eq!(
            pushes[0].repository.clone_url,
            "https://bitbucket.org/team/deploy.git"
        );
        assert_eq!(
            pushes[0].repository.ssh_url.as_deref(),
            Some("git@bitbucket.org:team/deploy.git")
        );
    }

    #[test]
    fn pull_requests_fetch_their_source_branch() {
        let body = json!({
            "repository": {"full_name": "team/deploy", "links": {"html": {"href": "https://bitbucket.org/team/deploy"}}},
            "pullrequest": {"id": 4, "source": {"branch": {"name": "feat"}, "commit": {"hash": "d3022fc0ca3d"}},
                            "destination": {"branch": {"name": "main"}, "commit": {"hash": "ce5965ddd289"}}}
        });
        let Event::PullRequest(p) = parse("pullrequest:updated", &body.to_string())
            .unwrap()
            .remove(0)
        else {
            panic!()
        };
        assert_eq!(
            (p.git_ref.as_str(), p.head.sha.as_str()),
            ("refs/heads/feat", "d3022fc0ca3d")
        );
        assert_eq!(
            parse("pullrequest:fulfilled", "{}").unwrap(),
            [Event::Ignored]
        );
    }
}
