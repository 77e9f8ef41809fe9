//! The trigger handed to the engine: what changed, where, and which delivery said so.

use serde::Serialize;

use crate::event::{PullRequest, PullRequestAction, Push};

/// A request to the engine to look at one ref of one repository at one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trigger {
    /// The `X-GitHub-Delivery` id of the newest delivery folded into this trigger.
    pub delivery: String,
    /// The host that sent it.
    pub host: crate::host::Host,
    /// The repository, `owner/name`.
    pub repository: String,
    /// Where to fetch it from.
    pub clone_url: String,
    /// The same repository over SSH, when the payload says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh_url: Option<String>,
    /// The full ref: `refs/heads/…`, `refs/tags/…`, or `refs/pull/N/head`.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The commit before (push) or the base commit (pull request).
    pub before: String,
    /// The commit to act on: the ref's new head.
    pub after: String,
    /// What kind of change.
    pub kind: TriggerKind,
    /// How many later deliveries were folded into this one while it waited (0: none).
    pub coalesced: u32,
}

/// What kind of change a trigger reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TriggerKind {
    /// A push to a branch or tag: sync what it deploys.
    Push {
        /// The ref is a tag (`refs/tags/…`).
        tag: bool,
        /// The ref did not exist before.
        created: bool,
        /// The ref no longer exists (`after` is all zeros).
        deleted: bool,
        /// History was rewritten.
        forced: bool,
    },
    /// A pull request's head changed: a dry-run diff of head against base, nothing applied.
    PullRequest {
        /// The pull request number.
        number: u64,
        /// The newest action.
        action: PullRequestAction,
        /// The head branch.
        head_ref: String,
        /// The base branch it would merge into.
        base_ref: String,
    },
}

impl Trigger {
    /// The trigger for a push.
    pub fn from_push(host: crate::host::Host, delivery: &str, push: Push) -> Self {
        Self {
            delivery: delivery.to_owned(),
            host,
            repository: push.repository.full_name,
            clone_url: push.repository.clone_url,
            ssh_url: push.repository.ssh_url,
            kind: TriggerKind::Push {
                tag: push.git_ref.starts_with("refs/tags/"),
                created: push.created,
                deleted: push.deleted,
                forced: push.forced,
            },
            git_ref: push.git_ref,
            before: push.before,
            after: push.after,
            coalesced: 0,
        }
    }

    /// The dry-run trigger for a pull request, at the ref its head is fetched from.
    pub fn from_pull_request(host: crate::host::Host, delivery: &str, pr: PullRequest) -> Self {
        Self {
            delivery: delivery.to_owned(),
            host,
            repository: pr.repository.full_name,
            clone_url: pr.repository.clone_url,
            ssh_url: pr.repository.ssh_url,
            git_ref: pr.git_ref,
            before: pr.base.sha,
            after: pr.head.sha,
            kind: TriggerKind::PullRequest {
                number: pr.number,
                action: pr.action,
                head_ref: pr.head.branch,
                base_ref: pr.base.branch,
            },
            coalesced: 0,
        }
    }

    /// Folds `newer` (same repository and ref, arrived later) into this queued trigger: the
    /// newest commit wins, `before` stays the oldest so the range spans both, and a forced
    /// push anywhere in the range keeps the result forced.
    pub fn absorb(&mut self, newer: Trigger) {
        let forced_before = matches!(self.kind, TriggerKind::Push { forced: true, .. });
        let created_before = matches!(self.kind, TriggerKind::Push { created: true, .. });
        let before = std::mem::take(&mut self.before);
        let coalesced = self.coalesced;
        *self = newer;
        self.before = before;
        self.coalesced = self.coalesced.saturating_add(coalesced).saturating_add(1);
        if let TriggerKind::Push {
            forced,
            created,
            deleted,
            ..
        } = &mut self.kind
        {
            *forced |= forced_before;
            // Created earlier in the range and still there: created, from the range's view.
            *created |= created_before && !*deleted;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Repository;

    fn push(after: &str, forced: bool) -> Trigger {
        Trigger::from_push(
            crate::host::Host::GitHub,
            &format!("d-{after}"),
            Push {
                git_ref: "refs/heads/main".into(),
                before: format!("b-{after}"),
                after: after.into(),
                created: false,
                deleted: false,
                forced,
                repository: Repository {
                    full_name: "o/r".into(),
                    clone_url: "u".into(),
                    ssh_url: None,
                },
            },
        )
    }

    #[test]
    fn absorb_keeps_oldest_before_and_newest_after() {
        let mut t = push("1", true);
        t.absorb(push("2", false));
        t.absorb(push("3", false));
        assert_eq!(
            (t.before.as_str(), t.after.as_str(), t.delivery.as_str()),
            ("b-1", "3", "d-3")
        );
        assert_eq!(t.coalesced, 2);
        assert!(matches!(t.kind, TriggerKind::Push { forced: true, .. }));
    }

    #[test]
    fn serializes_as_one_flat_json_object() {
        let json = serde_json::to_value(push("a", false)).unwrap();
        assert_eq!(json["ref"], "refs/heads/main");
        assert_eq!(json["kind"]["type"], "push");
        assert_eq!(json["kind"]["tag"], false);
    }
}
