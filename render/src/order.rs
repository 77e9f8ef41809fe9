//! kustomize's legacy output order: Namespaces and cluster plumbing first, workloads after
//! their configuration, webhooks last; ties by group, version, kind (as the string
//! `group_version_kind`, `~G`/`~V`/`~K` for empty parts), then namespace (`~X` when
//! empty, so namespaced objects come first), then name — as kustomize v5.5.0 prints.

use super::resource::Resource;

/// Kinds printed first, in this order.
const ORDER_FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];

/// Kinds printed last, in this order.
const ORDER_LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Where a kind goes in the install order: negative for the kinds installed first (most
/// negative first), positive for the ones installed last, 0 for everything else.
pub fn install_rank(kind: &str) -> i64 {
    if let Some(i) = ORDER_FIRST.iter().position(|k| *k == kind) {
        return i as i64 - ORDER_FIRST.len() as i64;
    }
    if let Some(i) = ORDER_LAST.iter().position(|k| *k == kind) {
        return i as i64 + 1;
    }
    0
}

/// Sorts `res` in legacy order (stable); `first`/`last` replace the default kind lists
/// when the kustomization's `sortOptions.legacySortOptions` give them.
pub fn legacy_sort(res: &mut [Resource], first: &[String], last: &[String]) {
    let first: Vec<&str> = if first.is_empty() {
        ORDER_FIRST.to_vec()
    } else {
        first.iter().map(String::as_str).collect()
    };
    let last: Vec<&str> = if last.is_empty() {
        ORDER_LAST.to_vec()
    } else {
        last.iter().map(String::as_str).collect()
    };
    let rank = |kind: &str| -> i64 {
        if let Some(i) = first.iter().position(|k| *k == kind) {
            return i as i64 - first.len() as i64;
        }
        if let Some(i) = last.iter().position(|k| *k == kind) {
            return i as i64 + 1;
        }
        0
    };
    let key = |r: &Resource| {
        let gvk = r.gvk();
        let or = |s: &str, missing: &str| {
            if s.is_empty() {
                missing.to_string()
            } else {
                s.to_string()
            }
        };
        (
            rank(&gvk.kind),
            format!(
                "{}_{}_{}",
                or(&gvk.group, "~G"),
                or(&gvk.version, "~V"),
                or(&gvk.kind, "~K")
            ),
            or(r.namespace().unwrap_or(""), "~X"),
            r.name().to_string(),
        )
    };
    res.sort_by_cached_key(key);
}
