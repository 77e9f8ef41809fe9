//! Name references: after prefixes, suffixes and hashes changed names, fields that refer
//! to a renamed object by its old name are updated (kustomize's `nameReference`).

use std::collections::HashMap;

use serde_json::Value;

use super::fieldspec::{TEMPLATED, for_each_field};
use super::resource::Resource;
use super::transform::CLUSTER_SCOPED;

/// Who refers to a kind, and where.
struct Ref {
    /// The kind referred to.
    target: &'static str,
    /// Referrer kinds; `None`: every kind with a pod spec, at `path` under the pod spec.
    referrers: Option<&'static [&'static str]>,
    path: &'static str,
    /// The map holding the field names the target's kind in a `kind` field.
    needs_kind: bool,
}

const fn pod(target: &'static str, path: &'static str) -> Ref {
    Ref {
        target,
        referrers: None,
        path,
        needs_kind: false,
    }
}

const fn field(
    target: &'static str,
    referrers: &'static [&'static str],
    path: &'static str,
    needs_kind: bool,
) -> Ref {
    Ref {
        target,
        referrers: Some(referrers),
        path,
        needs_kind,
    }
}

const BINDINGS: &[&str] = &["RoleBinding", "ClusterRoleBinding"];
const SCALABLE: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "ReplicaSet",
    "ReplicationController",
];

const REFS: &[Ref] = &[
    pod("ConfigMap", "volumes/configMap/name"),
    pod("ConfigMap", "volumes/projected/sources/configMap/name"),
    pod("ConfigMap", "containers/env/valueFrom/configMapKeyRef/name"),
    pod(
        "ConfigMap",
        "initContainers/env/valueFrom/configMapKeyRef/name",
    ),
    pod("ConfigMap", "containers/envFrom/configMapRef/name"),
    pod("ConfigMap", "initContainers/envFrom/configMapRef/name"),
    pod("Secret", "volumes/secret/secretName"),
    pod("Secret", "volumes/projected/sources/secret/name"),
    pod("Secret", "containers/env/valueFrom/secretKeyRef/name"),
    pod("Secret", "initContainers/env/valueFrom/secretKeyRef/name"),
    pod("Secret", "containers/envFrom/secretRef/name"),
    pod("Secret", "initContainers/envFrom/secretRef/name"),
    pod("Secret", "imagePullSecrets/name"),
    field(
        "Secret",
        &["ServiceAccount"],
        "imagePullSecrets/name",
        false,
    ),
    field("Secret", &["ServiceAccount"], "secrets/name", false),
    field("Secret", &["Ingress"], "spec/tls/secretName", false),
    pod("ServiceAccount", "serviceAccountName"),
    field("ServiceAccount", BINDINGS, "subjects/name", true),
    pod(
        "PersistentVolumeClaim",
        "volumes/persistentVolumeClaim/claimName",
    ),
    pod("PriorityClass", "priorityClassName"),
    field("Service", &["StatefulSet"], "spec/serviceName", false),
    field(
        "Service",
        &["Ingress"],
        "spec/rules/http/paths/backend/service/name",
        false,
    ),
    field(
        "Service",
        &["Ingress"],
        "spec/defaultBackend/service/name",
        false,
    ),
    field("Role", &["RoleBinding"], "roleRef/name", true),
    field("ClusterRole", BINDINGS, "roleRef/name", true),
    field(
        "PersistentVolume",
        &["PersistentVolumeClaim"],
        "spec/volumeName",
        false,
    ),
    field(
        "StorageClass",
        &["PersistentVolumeClaim"],
        "spec/storageClassName",
        false,
    ),
    field(
        "StorageClass",
        &["StatefulSet"],
        "spec/volumeClaimTemplates/spec/storageClassName",
        false,
    ),
];

/// Where a kind keeps its pod spec.
fn pod_spec_prefix(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" => Some("spec"),
        "CronJob" => Some("spec/jobTemplate/spec/template/spec"),
        k if TEMPLATED.contains(&k) => Some("spec/template/spec"),
        _ => None,
    }
}

/// A renamed object's new name and namespace, indexed by (kind, old name).
type Renamed = (String, Option<String>);

/// Updates every reference to a renamed object.
pub fn fix(res: &mut [Resource]) {
    let mut renamed: HashMap<(String, String), Vec<Renamed>> = HashMap::new();
    for r in res.iter().filter(|r| r.name() != r.original_name) {
        renamed
            .entry((r.kind().to_string(), r.original_name.clone()))
            .or_default()
            .push((r.name().to_string(), r.namespace().map(str::to_string)));
    }
    if renamed.is_empty() {
        return;
    }
    let lookup = |kind: &str, old: &str| renamed.get(&(kind.to_string(), old.to_string()));
    for referrer in res.iter_mut() {
        let kind = referrer.kind().to_string();
        let ns = referrer.namespace().map(str::to_string);
        for r in REFS {
            let path = match r.referrers {
                Some(kinds) if kinds.contains(&kind.as_str()) => r.path.to_string(),
                Some(_) => continue,
                None => match pod_spec_prefix(&kind) {
                    Some(prefix) => format!("{prefix}/{}", r.path),
                    None => continue,
                },
            };
            for_each_field(&mut referrer.obj, &path, &mut |value, parent| {
                if r.needs_kind && parent.get("kind").and_then(Value::as_str) != Some(r.target) {
                    return;
                }
                let Some(old) = value.as_str() else { return };
                let any_namespace = CLUSTER_SCOPED.contains(&r.target)
                    || ns.is_none()
                    || CLUSTER_SCOPED.contains(&kind.as_str());
                let candidate = lookup(r.target, old).and_then(|c| {
                    c.iter()
                        .find(|(_, target_ns)| any_namespace || target_ns == &ns)
                });
                if let Some((new, _)) = candidate {
                    *value = Value::String(new.clone());
                }
            });
        }
        if kind == "HorizontalPodAutoscaler" {
            for_each_field(
                &mut referrer.obj,
                "spec/scaleTargetRef/name",
                &mut |value, parent| {
                    let target_kind = parent.get("kind").and_then(Value::as_str).unwrap_or("");
                    if !SCALABLE.contains(&target_kind) {
                        return;
                    }
                    let Some(old) = value.as_str() else { return };
                    let candidate = lookup(target_kind, old)
                        .and_then(|c| c.iter().find(|(_, target_ns)| target_ns == &ns));
                    if let Some((new, _)) = candidate {
                        *value = Value::String(new.clone());
                    }
                },
            );
        }
    }
}
