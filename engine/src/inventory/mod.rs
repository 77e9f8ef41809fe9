//! The inventory of a target on a cluster: an ApplySet (KEP-3659), so `kubectl` sees the
//! same set. The parent is a Secret `keelson-<target>.<repository id>` ([`Set`]) in
//! [`PARENT_NAMESPACE`]; members carry the `applyset.kubernetes.io/part-of` label; the
//! parent lists their group-kinds and namespaces so they can be found again.

use std::collections::BTreeSet;

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Where ApplySet parents live.
pub const PARENT_NAMESPACE: &str = "keelson-system";
/// The label every member carries.
pub const PART_OF: &str = "applyset.kubernetes.io/part-of";
/// The parent's id label.
pub const ID_LABEL: &str = "applyset.kubernetes.io/id";
/// The parent's tooling annotation.
pub const TOOLING: &str = "applyset.kubernetes.io/tooling";
/// The parent's list of member group-kinds.
pub const GROUP_KINDS: &str = "applyset.kubernetes.io/contains-group-kinds";
/// The parent's list of namespaces other than its own that members live in.
pub const NAMESPACES: &str = "applyset.kubernetes.io/additional-namespaces";
/// The commit last synced (keelson's own annotation on the parent).
pub const COMMIT: &str = "keelson.dev/last-synced-commit";

/// The parent's label naming the repository it was synced from ([`Origin::id`]), so the
/// targets a repository no longer has can be found.
pub const SOURCE_LABEL: &str = "keelson.dev/source";
/// The parent's annotations: the repository's URL, the target's name, and what its owner
/// said should happen once it leaves `keelson.yaml` ([`Removal`], JSON).
pub const SOURCE_URL: &str = "keelson.dev/source-url";
pub const TARGET: &str = "keelson.dev/target";
pub const REMOVAL: &str = "keelson.dev/on-removal";
/// The parent Secret's `type`.
pub const PARENT_TYPE: &str = "keelson.dev/applyset";

/// The repository a target is synced from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// [`crate::source::RepoUrl::identity`].
    pub id: String,
    /// The URL, for people.
    pub url: String,
}

impl Origin {
    pub fn of(url: &crate::source::RepoUrl) -> Self {
        Origin {
            id: url.identity(),
            url: url.to_string(),
        }
    }
}

/// A target's removal policy as its parent remembers it: the target's own settings are
/// gone from `keelson.yaml` by the time they are needed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Removal {
    pub on_removal: crate::config::OnRemoval,
    pub prune_guard_percent: u8,
    #[serde(default)]
    pub prune_namespaces: bool,
    #[serde(default)]
    pub prune_crds: bool,
    #[serde(default)]
    pub prune_pvcs: bool,
}

impl Removal {
    pub fn of(p: &crate::config::SyncPolicy) -> Self {
        Removal {
            on_removal: p.on_removal,
            prune_guard_percent: p.prune_guard_percent,
            prune_namespaces: p.prune_namespaces,
            prune_crds: p.prune_crds,
            prune_pvcs: p.prune_pvcs,
        }
    }

    /// The sync policy that prunes (or keeps) a removed target's members.
    pub fn policy(&self) -> crate::config::SyncPolicy {
        crate::config::SyncPolicy {
            prune: self.on_removal == crate::config::OnRemoval::Prune,
            prune_guard_percent: self.prune_guard_percent,
            prune_namespaces: self.prune_namespaces,
            prune_crds: self.prune_crds,
            prune_pvcs: self.prune_pvcs,
            ..crate::config::SyncPolicy::default()
        }
    }
}

/// Where a parent comes from and how its target goes.
#[derive(Debug, Clone, Copy)]
pub struct Provenance<'a> {
    pub origin: Option<&'a Origin>,
    pub removal: &'a Removal,
}

/// The parent Secret's data key holding [`Record`].
pub const RECORD_KEY: &str = "keelson.applied.json";

/// What keelson last applied of one member: the resourceVersion the apply produced and the
/// fingerprint of the desired object. If the live object still has that resourceVersion
/// and the render the same fingerprint, nothing has changed and no request is needed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    #[serde(rename = "rv")]
    pub resource_version: String,
    pub hash: String,
    /// `metadata.generation` after the apply, for kinds the server versions: their spec
    /// changes bump it and their status updates do not, so a controller writing status
    /// does not force a re-check.
    #[serde(default, rename = "gen", skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Fingerprint of the labels and annotations keelson sets, as they were after the apply.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub meta: String,
}

/// Every member's [`Applied`], keyed by [`record_key`].
pub type Record = std::collections::BTreeMap<String, Applied>;

/// The key of a member in the [`Record`].
pub fn record_key(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> String {
    format!("{api_version}|{kind}|{}|{name}", namespace.unwrap_or(""))
}

/// One target's inventory, keyed by the target and the repository it comes from: two
/// repositories with a target of the same name have two inventories on one cluster, and
/// each prunes only its own members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    pub target: String,
    /// [`Origin::id`]; none for a tree of unknown origin (a plain directory).
    pub origin: Option<String>,
}

impl Set {
    pub fn new(target: &str, origin: Option<&Origin>) -> Self {
        Set {
            target: target.to_string(),
            origin: origin.map(|o| o.id.clone()),
        }
    }

    /// The parent Secret's name: `keelson-<target>.<repository id>`, or
    /// `keelson-<target>` without an origin.
    pub fn parent_name(&self) -> String {
        match &self.origin {
            Some(id) => format!("keelson-{}.{id}", self.target),
            None => format!("keelson-{}", self.target),
        }
    }

    /// The ApplySet id of the Secret parent:
    /// `applyset-<base64url(sha256(name.namespace.Secret.))>-v1`.
    pub fn id(&self) -> String {
        let key = format!("{}.{}.Secret.", self.parent_name(), PARENT_NAMESPACE);
        let digest = Sha256::digest(key.as_bytes());
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        format!("applyset-{encoded}-v1")
    }

    /// The field manager the target's objects are applied with: its parent's name, so two
    /// targets (or two repositories) declaring one field conflict, naming each other.
    pub fn field_manager(&self) -> String {
        self.parent_name()
    }

    /// The inventory the same target had before inventories were keyed by repository:
    /// a sync with an origin takes it over once.
    pub fn legacy(&self) -> Option<Set> {
        self.origin.as_ref().map(|_| Set {
            target: self.target.clone(),
            origin: None,
        })
    }
}

/// `Kind.group` (or `Kind` for the core group), as ApplySet writes group-kinds.
pub fn group_kind(api_version: &str, kind: &str) -> String {
    match api_version.split_once('/') {
        Some((group, _)) => format!("{kind}.{group}"),
        None => kind.to_string(),
    }
}

/// The parent Secret describing `members` (group-kinds and namespaces).
pub fn parent_object(
    set: &Set,
    group_kinds: &BTreeSet<String>,
    namespaces: &BTreeSet<String>,
    commit: Option<&str>,
    record: Option<&Record>,
    provenance: Provenance<'_>,
) -> Value {
    let others: Vec<&str> = namespaces
        .iter()
        .map(String::as_str)
        .filter(|n| *n != PARENT_NAMESPACE && !n.is_empty())
        .collect();
    let mut annotations = json!({
        TOOLING: format!("keelson/v{}", env!("CARGO_PKG_VERSION")),
        GROUP_KINDS: group_kinds.iter().cloned().collect::<Vec<_>>().join(","),
        NAMESPACES: others.join(","),
    });
    if let Some(c) = commit {
        annotations[COMMIT] = Value::String(c.to_string());
    }
    annotations[TARGET] = Value::String(set.target.clone());
    annotations[REMOVAL] =
        Value::String(serde_json::to_string(provenance.removal).unwrap_or_default());
    let mut labels = json!({ ID_LABEL: set.id() });
    if let Some(o) = provenance.origin {
        labels[SOURCE_LABEL] = Value::String(o.id.clone());
        annotations[SOURCE_URL] = Value::String(o.url.clone());
    }
    let mut parent = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": set.parent_name(),
            "namespace": PARENT_NAMESPACE,
            "labels": labels,
            "annotations": annotations,
        },
        "type": PARENT_TYPE,
    });
    if let Some(r) = record {
        let text = serde_json::to_string(r).unwrap_or_default();
        parent["stringData"] = json!({ RECORD_KEY: text });
    }
    parent
}

/// Splits a comma-separated annotation value.
pub fn split_list(value: Option<&str>) -> BTreeSet<String> {
    value
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_url_safe() {
        let set = |t: &str| Set::new(t, None);
        let id = set("shop-prod").id();
        assert!(id.starts_with("applyset-") && id.ends_with("-v1"));
        assert_eq!(id, set("shop-prod").id());
        assert_ne!(id, set("shop-staging").id());
        assert!(!id.contains('+') && !id.contains('/') && !id.contains('='));
        // 43 base64url characters for 32 bytes.
        assert_eq!(id.len(), "applyset-".len() + 43 + "-v1".len());
    }

    #[test]
    fn two_repositories_with_one_target_name_have_two_inventories() {
        let origin = |url: &str| Origin::of(&crate::source::RepoUrl::parse(url).unwrap());
        let (a, b) = (
            origin("https://git.example/a/deploy.git"),
            origin("https://git.example/b/deploy.git"),
        );
        let (sa, sb) = (Set::new("shop", Some(&a)), Set::new("shop", Some(&b)));
        assert_ne!(sa.id(), sb.id());
        assert_eq!(sa.parent_name(), format!("keelson-shop.{}", a.id));
        // The spelling of a URL does not change the inventory.
        let a2 = origin("https://git.example/a/deploy");
        assert_eq!(Set::new("shop", Some(&a2)), sa);
        assert_eq!(sa.legacy().unwrap().parent_name(), "keelson-shop");
        assert_eq!(Set::new("shop", None).legacy(), None);
    }

    #[test]
    fn group_kinds_follow_kubectl() {
        assert_eq!(group_kind("v1", "ConfigMap"), "ConfigMap");
        assert_eq!(group_kind("apps/v1", "Deployment"), "Deployment.apps");
    }
}
