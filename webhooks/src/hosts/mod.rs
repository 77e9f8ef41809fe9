//! Each host's payloads, read into the same [`Event`]s: only the fields a trigger needs
//! are required, everything else is skipped unparsed.

mod bitbucket;
mod bitbucket_server;
mod gitea;
mod gitlab;

use serde::de::DeserializeOwned;

use crate::event::{self, Event, EventError, NO_COMMIT, Push, Repository};
use crate::host::Host;

/// The events of one verified delivery (a Bitbucket push of several refs is several).
pub fn parse(host: Host, event: &str, json: &str) -> Result<Vec<Event>, EventError> {
    match host {
        Host::GitHub => event::parse(event, json).map(|e| vec![e]),
        Host::GitLab => gitlab::parse(event, json),
        Host::Gitea => gitea::parse(event, json),
        Host::Bitbucket => bitbucket::parse(event, json),
        Host::BitbucketServer => bitbucket_server::parse(event, json),
    }
}

/// Reads `json` as `T`, naming `event` in errors.
fn read<T: DeserializeOwned>(event: &'static str, json: &str) -> Result<T, EventError> {
    serde_json::from_str(json).map_err(|e| EventError::from_serde(event, e))
}

/// A push of `git_ref` from `before` to `after` (either all zeros: created, deleted),
/// checked as GitHub's are.
fn push(
    event: &'static str,
    git_ref: String,
    before: String,
    after: String,
    forced: bool,
    repository: Repository,
) -> Result<Event, EventError> {
    event::check_ref(event, "ref", &git_ref)?;
    event::check_sha(event, "before", &before)?;
    event::check_sha(event, "after", &after)?;
    Ok(Event::Push(Push {
        // A ref that goes from nothing to nothing (Gitea's `delete`) was not created.
        created: before == NO_COMMIT && after != NO_COMMIT,
        deleted: after == NO_COMMIT,
        git_ref,
        before,
        after,
        forced,
        repository,
    }))
}

/// `refs/heads/NAME` or `refs/tags/NAME` for a ref a host names by its short name.
fn full_ref(tag: bool, name: &str) -> String {
    if name.starts_with("refs/") {
        return name.to_string();
    }
    match tag {
        true => format!("refs/tags/{name}"),
        false => format!("refs/heads/{name}"),
    }
}

/// Any JSON object (anything else is an invalid payload).
fn object(event: &'static str, json: &str) -> Result<(), EventError> {
    read::<serde_json::Map<String, serde_json::Value>>(event, json).map(|_| ())
}
