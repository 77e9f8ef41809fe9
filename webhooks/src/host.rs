//! The git hosts whose webhooks the receiver takes: one route each, and for each the
//! headers that name the event and the delivery and carry its proof.

use serde::Serialize;

/// A git host (its route: [`Host::path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Host {
    /// GitHub: `X-Hub-Signature-256`.
    #[serde(rename = "github")]
    GitHub,
    /// GitLab: `X-Gitlab-Token` (or a Standard Webhooks signature, for a `whsec_` secret).
    #[serde(rename = "gitlab")]
    GitLab,
    /// Gitea, Forgejo and Gogs: `X-Gitea-Signature` (or `X-Forgejo-`/`X-Gogs-Signature`).
    Gitea,
    /// Bitbucket Cloud: `X-Hub-Signature: sha256=…`.
    Bitbucket,
    /// Bitbucket Server and Data Center: `X-Hub-Signature: sha256=…`.
    BitbucketServer,
}

/// How a host proves a delivery is from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// `sha256=<hex HMAC-SHA256 of the body>` in this header.
    PrefixedHmac(&'static str),
    /// `<hex HMAC-SHA256 of the body>` in the first of these headers that is present.
    HexHmac(&'static [&'static str]),
    /// The secret itself in `X-Gitlab-Token`, or a Standard Webhooks signature.
    GitLab,
}

impl Host {
    /// Every host, in route order.
    pub const ALL: [Host; 5] = [
        Host::GitHub,
        Host::GitLab,
        Host::Gitea,
        Host::Bitbucket,
        Host::BitbucketServer,
    ];

    /// Where the host posts deliveries.
    pub fn path(self) -> &'static str {
        match self {
            Host::GitHub => "/hooks/github",
            Host::GitLab => "/hooks/gitlab",
            Host::Gitea => "/hooks/gitea",
            Host::Bitbucket => "/hooks/bitbucket",
            Host::BitbucketServer => "/hooks/bitbucket-server",
        }
    }

    /// The `host` label of metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Host::GitHub => "github",
            Host::GitLab => "gitlab",
            Host::Gitea => "gitea",
            Host::Bitbucket => "bitbucket",
            Host::BitbucketServer => "bitbucket-server",
        }
    }

    /// The header naming the event.
    pub fn event_header(self) -> &'static str {
        match self {
            Host::GitHub => "x-github-event",
            Host::GitLab => "x-gitlab-event",
            Host::Gitea => "x-gitea-event",
            Host::Bitbucket | Host::BitbucketServer => "x-event-key",
        }
    }

    /// The headers naming the delivery, best first (the id deduplication keys on).
    /// GitLab's `Idempotency-Key` stays the same when a delivery is retried; its event
    /// UUID is the fallback of older versions.
    pub fn delivery_headers(self) -> &'static [&'static str] {
        match self {
            Host::GitHub => &["x-github-delivery"],
            Host::GitLab => &["idempotency-key", "x-gitlab-event-uuid"],
            Host::Gitea => &["x-gitea-delivery", "x-forgejo-delivery", "x-gogs-delivery"],
            Host::Bitbucket => &["x-request-uuid"],
            Host::BitbucketServer => &["x-request-id"],
        }
    }

    /// How a delivery proves where it comes from.
    pub fn proof(self) -> Proof {
        match self {
            Host::GitHub => Proof::PrefixedHmac("x-hub-signature-256"),
            Host::GitLab => Proof::GitLab,
            Host::Gitea => Proof::HexHmac(&[
                "x-gitea-signature",
                "x-forgejo-signature",
                "x-gogs-signature",
            ]),
            Host::Bitbucket | Host::BitbucketServer => Proof::PrefixedHmac("x-hub-signature"),
        }
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_labels_are_distinct() {
        let paths: std::collections::BTreeSet<_> = Host::ALL.iter().map(|h| h.path()).collect();
        assert_eq!(paths.len(), Host::ALL.len());
        for h in Host::ALL {
            assert_eq!(h.path(), format!("/hooks/{}", h.label()));
            assert_eq!(
                serde_json::to_value(h).unwrap(),
                serde_json::Value::String(h.label().into())
            );
        }
    }
}
