//! How a target is applied: pruning, drift, conflicts with other field managers, and the
//! differences Git gives away.
//!
//! ```yaml
//! sync:
//!   conflicts: takeOver          # default: Git wins; `fail` refuses and names the manager
//!   ignoreDifferences:           # fields another manager owns (an HPA, an operator)
//!   - group: apps
//!     kind: Deployment
//!     name: web                  # optional, as is namespace
//!     jsonPointers: [/spec/replicas]
//!   - kind: ConfigMap
//!     managedFieldsManagers: [cert-injector]
//!   onRemoval: orphan            # or prune, when the target leaves keelson.yaml
//! ```

use serde::{Deserialize, Serialize};

use crate::time::Period;

/// How a target is applied.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SyncPolicy {
    /// Delete inventory members the render no longer holds.
    pub prune: bool,
    /// Correct drift on a schedule, not only on new commits.
    pub self_heal: bool,
    /// What happens to a field the render declares and another field manager owns.
    pub conflicts: Conflicts,
    /// Differences Git gives away to other managers: never shown, never applied.
    pub ignore_differences: Vec<IgnoreDifference>,
    /// What happens to the target's objects once the target leaves `keelson.yaml`.
    pub on_removal: OnRemoval,
    /// Refuse a prune that deletes more than this share of the inventory.
    pub prune_guard_percent: u8,
    /// Kinds that may be pruned only when allowed here.
    pub prune_namespaces: bool,
    pub prune_crds: bool,
    pub prune_pvcs: bool,
    /// Wait for the applied objects to become healthy.
    pub wait: bool,
    /// How long to wait (`30s`, `5m`, `1h`).
    pub timeout: Period,
    /// The setting `conflicts` replaced; kept only to say so.
    #[serde(rename = "forceConflicts")]
    pub replaced_force_conflicts: Option<serde_json::Value>,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        SyncPolicy {
            prune: true,
            self_heal: false,
            conflicts: Conflicts::TakeOver,
            ignore_differences: Vec::new(),
            on_removal: OnRemoval::Orphan,
            prune_guard_percent: 50,
            prune_namespaces: false,
            prune_crds: false,
            prune_pvcs: false,
            wait: false,
            timeout: Period::from_secs(300),
            replaced_force_conflicts: None,
        }
    }
}

/// A field the render declares is owned by another field manager (someone ran `kubectl
/// edit`, `scale` or `patch`, or a controller wrote it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Conflicts {
    /// Git wins: the apply takes the field over, and the diff, the Event and the commit
    /// status name the field and the manager that lost it.
    #[default]
    TakeOver,
    /// Nothing of the cluster is applied until a person decides (the server's conflict
    /// message names the manager and the fields).
    Fail,
}

/// What happens to a removed target's objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum OnRemoval {
    /// They stay, no longer managed (Argo CD without its finalizer).
    #[default]
    Orphan,
    /// They are pruned through the target's prune guards; the inventory goes last.
    Prune,
}

/// Fields of matching objects that Git gives away, Argo CD's `ignoreDifferences`: the
/// diff does not show them and the apply leaves them to whoever owns them.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IgnoreDifference {
    /// The API group (`""` for the core group); any group when left out.
    #[serde(default)]
    pub group: Option<String>,
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    /// RFC 6901 pointers into the object (`/spec/replicas`).
    #[serde(default)]
    pub json_pointers: Vec<String>,
    /// Every field these managers own, as the live object's `managedFields` say.
    #[serde(default)]
    pub managed_fields_managers: Vec<String>,
}

impl IgnoreDifference {
    /// Whether the rule covers an object.
    pub fn matches(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        self.kind == kind
            && self.group.as_deref().is_none_or(|g| g == group)
            && self.name.as_deref().is_none_or(|n| n == name)
            && self
                .namespace
                .as_deref()
                .is_none_or(|n| Some(n) == namespace)
    }
}

/// Parts of an object no rule may give away: without them there is no object to apply.
const IDENTITY: &[&str] = &[
    "/apiVersion",
    "/kind",
    "/metadata",
    "/metadata/name",
    "/metadata/namespace",
];

impl SyncPolicy {
    /// Checks the policy; an error names the field (below `sync.`) and the mistake.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.replaced_force_conflicts.is_some() {
            return Err((
                "forceConflicts".into(),
                "replaced by `conflicts`: `takeOver` (the default) takes fields over from other \
                 field managers, `fail` refuses them"
                    .into(),
            ));
        }
        if self.prune_guard_percent > 100 {
            return Err(("pruneGuardPercent".into(), "must be 0..=100".into()));
        }
        for (i, rule) in self.ignore_differences.iter().enumerate() {
            let at = |field: &str| format!("ignoreDifferences[{i}]{field}");
            if rule.kind.is_empty() {
                return Err((at(".kind"), "must name a kind".into()));
            }
            if rule.json_pointers.is_empty() && rule.managed_fields_managers.is_empty() {
                return Err((
                    at(""),
                    "names neither jsonPointers nor managedFieldsManagers".into(),
                ));
            }
            for (j, p) in rule.json_pointers.iter().enumerate() {
                if !p.starts_with('/') || p.len() < 2 {
                    return Err((
                        at(&format!(".jsonPointers[{j}]")),
                        format!(
                            "{p:?} is not a JSON pointer (it starts with /, as /spec/replicas)"
                        ),
                    ));
                }
                if IDENTITY.contains(&p.trim_end_matches('/')) {
                    return Err((
                        at(&format!(".jsonPointers[{j}]")),
                        format!("{p} is the object's identity, which cannot be given away"),
                    ));
                }
            }
            if let Some(j) = rule
                .managed_fields_managers
                .iter()
                .position(|m| m.is_empty())
            {
                return Err((
                    at(&format!(".managedFieldsManagers[{j}]")),
                    "must name a field manager".into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> SyncPolicy {
        crate::yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn git_wins_and_removed_targets_are_orphaned_by_default() {
        let p = SyncPolicy::default();
        assert_eq!(p.conflicts, Conflicts::TakeOver);
        assert_eq!(p.on_removal, OnRemoval::Orphan);
        assert!(p.validate().is_ok());
        let p = policy("conflicts: fail\nonRemoval: prune\n");
        assert_eq!(
            (p.conflicts, p.on_removal),
            (Conflicts::Fail, OnRemoval::Prune)
        );
    }

    #[test]
    fn force_conflicts_names_its_replacement() {
        let (field, message) = policy("forceConflicts: true\n").validate().unwrap_err();
        assert_eq!(field, "forceConflicts");
        assert!(message.contains("conflicts"), "{message}");
    }

    #[test]
    fn ignore_rules_are_checked_field_by_field() {
        for (yaml, field) in [
            (
                "ignoreDifferences: [{kind: Deployment}]",
                "ignoreDifferences[0]",
            ),
            (
                "ignoreDifferences: [{kind: '', jsonPointers: [/a]}]",
                "ignoreDifferences[0].kind",
            ),
            (
                "ignoreDifferences: [{kind: D, jsonPointers: [/a, spec/replicas]}]",
                "ignoreDifferences[0].jsonPointers[1]",
            ),
            (
                "ignoreDifferences: [{kind: D, jsonPointers: [/metadata/name]}]",
                "ignoreDifferences[0].jsonPointers[0]",
            ),
            (
                "ignoreDifferences: [{kind: D, managedFieldsManagers: ['']}]",
                "ignoreDifferences[0].managedFieldsManagers[0]",
            ),
        ] {
            assert_eq!(policy(yaml).validate().unwrap_err().0, field, "{yaml}");
        }
    }

    #[test]
    fn a_rule_matches_by_group_kind_name_and_namespace() {
        let rule = |yaml: &str| -> IgnoreDifference { crate::yaml::from_str(yaml).unwrap() };
        let any_group = rule("{kind: Deployment, jsonPointers: [/spec/replicas]}");
        assert!(any_group.matches("apps/v1", "Deployment", Some("a"), "web"));
        let core = rule("{group: '', kind: ConfigMap, name: c, jsonPointers: [/data]}");
        assert!(core.matches("v1", "ConfigMap", Some("a"), "c"));
        assert!(!core.matches("v1", "ConfigMap", Some("a"), "d"));
        let apps = rule("{group: apps, kind: Deployment, namespace: a, jsonPointers: [/x]}");
        assert!(!apps.matches("extensions/v1beta1", "Deployment", Some("a"), "web"));
        assert!(!apps.matches("apps/v1", "Deployment", Some("b"), "web"));
    }
}
