//! The built-in transformers of one kustomization, in kustomize's order: strategic-merge
//! patches, patches, namespace, name prefix/suffix, labels, annotations, JSON 6902
//! patches, replicas, images, replacements.

use std::path::Path;

use serde_json::{Map, Value};

use super::config::{Spec, TransformerConfig};
use super::fieldspec::{
    annotation_specs, apply_to_maps, for_each_field_creating, for_each_map, label_specs,
};
use super::kustomization::Kustomization;
use super::loader::Loader;
use super::resource::Resource;
use super::{RenderError, patch};

/// Kinds that are not namespaced (no namespace is set on them).
pub const CLUSTER_SCOPED: &[&str] = &[
    "APIService",
    "CertificateSigningRequest",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterTrustBundle",
    "ComponentStatus",
    "CSIDriver",
    "CSINode",
    "CustomResourceDefinition",
    "DeviceClass",
    "FlowSchema",
    "IngressClass",
    "IPAddress",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PodSecurityPolicy",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "ResourceSlice",
    "RuntimeClass",
    "SelfSubjectAccessReview",
    "SelfSubjectRulesReview",
    "ServiceCIDR",
    "StorageClass",
    "StorageVersionMigration",
    "SubjectAccessReview",
    "TokenReview",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
    "VolumeAttributesClass",
];

/// The built-in transformers a kustomization configures, in the order they run (one per
/// patch, label set, image and replica entry), as kustomize records them.
pub fn configured(k: &Kustomization) -> Vec<&'static str> {
    let mut out = Vec::new();
    if !k.patches_strategic_merge.is_empty() {
        out.push("PatchStrategicMergeTransformer");
    }
    out.extend(k.patches.iter().map(|_| "PatchTransformer"));
    if k.namespace.as_deref().is_some_and(|n| !n.is_empty()) {
        out.push("NamespaceTransformer");
    }
    if k.name_prefix.as_deref().is_some_and(|n| !n.is_empty()) {
        out.push("PrefixTransformer");
    }
    if k.name_suffix.as_deref().is_some_and(|n| !n.is_empty()) {
        out.push("SuffixTransformer");
    }
    if !k.labels.is_empty() || !k.common_labels.is_empty() {
        // One per `labels:` entry, and one for commonLabels even when it is empty.
        out.extend(k.labels.iter().map(|_| "LabelTransformer"));
        out.push("LabelTransformer");
    }
    if !k.common_annotations.is_empty() {
        out.push("AnnotationsTransformer");
    }
    out.extend(
        k.patches_json6902
            .iter()
            .map(|_| "PatchJson6902Transformer"),
    );
    out.extend(k.replicas.iter().map(|_| "ReplicaCountTransformer"));
    out.extend(k.images.iter().map(|_| "ImageTagTransformer"));
    if !k.replacements.is_empty() {
        out.push("ReplacementTransformer");
    }
    out
}

/// Applies the kustomization's transformers to `res`.
pub fn apply_all(
    loader: &Loader<'_>,
    dir: &Path,
    kpath: &Path,
    k: &Kustomization,
    res: &mut Vec<Resource>,
    config: &TransformerConfig,
) -> Result<(), RenderError> {
    patch::strategic_merge_entries(loader, dir, kpath, &k.patches_strategic_merge, res)?;
    patch::patches(loader, dir, kpath, &k.patches, res)?;
    if let Some(ns) = k.namespace.as_deref().filter(|ns| !ns.is_empty()) {
        namespace(ns, res);
        for r in res.iter_mut() {
            set_strings(r, &config.namespace, &mut |_| ns.to_string());
        }
    }
    let prefix = k.name_prefix.as_deref().unwrap_or("");
    let suffix = k.name_suffix.as_deref().unwrap_or("");
    if !prefix.is_empty() || !suffix.is_empty() {
        for r in res.iter_mut() {
            // kustomize never renames these: their names are fixed by the API.
            let gvk = r.gvk();
            let fixed = matches!(gvk.kind.as_str(), "CustomResourceDefinition" | "Namespace")
                || (gvk.kind == "APIService" && gvk.group == "apiregistration.k8s.io");
            if fixed {
                continue;
            }
            let name = format!("{prefix}{}{suffix}", r.name());
            r.set_name(&name);
            if !prefix.is_empty() {
                set_strings(r, &config.name_prefix, &mut |v| format!("{prefix}{v}"));
            }
            if !suffix.is_empty() {
                set_strings(r, &config.name_suffix, &mut |v| format!("{v}{suffix}"));
            }
        }
    }
    if !k.common_labels.is_empty() {
        add_pairs(res, &label_specs(true, true), &k.common_labels);
        add_pairs_custom(res, &config.common_labels, &k.common_labels);
    }
    for set in &k.labels {
        add_pairs(
            res,
            &label_specs(set.include_selectors, set.include_templates),
            &set.pairs,
        );
        let mut custom: Vec<Spec> = set.fields.clone();
        if set.include_selectors {
            custom.extend(config.common_labels.iter().cloned());
        } else {
            custom.extend(config.labels.iter().cloned());
            if set.include_templates {
                custom.extend(config.template_labels.iter().cloned());
            }
        }
        add_pairs_custom(res, &custom, &set.pairs);
    }
    if !k.common_annotations.is_empty() {
        add_pairs(res, &annotation_specs(), &k.common_annotations);
        add_pairs_custom(res, &config.common_annotations, &k.common_annotations);
    }
    patch::json6902_entries(loader, dir, kpath, &k.patches_json6902, res)?;
    for replica in &k.replicas {
        for r in res.iter_mut().filter(|r| {
            (r.name() == replica.name || r.original_name == replica.name)
                && matches!(
                    r.kind(),
                    "Deployment" | "ReplicaSet" | "StatefulSet" | "ReplicationController"
                )
        }) {
            let spec = r
                .obj
                .entry("spec")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(spec) = spec {
                spec.insert("replicas".into(), Value::from(replica.count));
            }
        }
        if !config.replicas.is_empty() {
            for r in res
                .iter_mut()
                .filter(|r| r.name() == replica.name || r.original_name == replica.name)
            {
                let gvk = r.gvk();
                for spec in config.replicas.iter().filter(|s| s.selects(&gvk)) {
                    for_each_field_creating(&mut r.obj, &spec.walk_path(), spec.create, &mut |v| {
                        *v = Value::from(replica.count)
                    });
                }
            }
        }
    }
    for image in &k.images {
        for r in res.iter_mut() {
            images(&mut r.obj, image);
            let gvk = r.gvk();
            for spec in config.images.iter().filter(|s| s.selects(&gvk)) {
                for_each_field_creating(&mut r.obj, &spec.walk_path(), false, &mut |v| {
                    if let Value::String(current) = v
                        && let Some(updated) = update_image(current, image)
                    {
                        *current = updated;
                    }
                });
            }
        }
    }
    super::replacements::apply(loader, dir, kpath, &k.replacements, res)?;
    Ok(())
}

fn add_pairs(
    res: &mut [Resource],
    specs: &[super::fieldspec::FieldSpec],
    pairs: &std::collections::BTreeMap<String, String>,
) {
    for r in res.iter_mut() {
        apply_to_maps(r, specs, &mut |m| {
            for (k, v) in pairs {
                m.insert(k.clone(), Value::String(v.clone()));
            }
        });
    }
}

/// Adds `pairs` to the maps custom field specs name (created where the spec says so).
pub fn add_pairs_custom(
    res: &mut [Resource],
    specs: &[Spec],
    pairs: &std::collections::BTreeMap<String, String>,
) {
    if specs.is_empty() {
        return;
    }
    for r in res.iter_mut() {
        let gvk = r.gvk();
        for spec in specs.iter().filter(|s| s.selects(&gvk)) {
            for_each_map(&mut r.obj, &spec.walk_path(), spec.create, &mut |m| {
                for (k, v) in pairs {
                    m.insert(k.clone(), Value::String(v.clone()));
                }
            });
        }
    }
}

/// Rewrites the string fields custom field specs name (`f` gets the current value, empty
/// when the field is created).
pub fn set_strings(r: &mut Resource, specs: &[Spec], f: &mut dyn FnMut(&str) -> String) {
    for spec in specs {
        if !spec.applies_to(r) {
            continue;
        }
        for_each_field_creating(
            &mut r.obj,
            &spec.walk_path(),
            spec.create,
            &mut |v| match v {
                Value::String(s) => *s = f(s),
                Value::Null => *v = Value::String(f("")),
                _ => {}
            },
        );
    }
}

fn namespace(ns: &str, res: &mut [Resource]) {
    for r in res.iter_mut() {
        let kind = r.kind().to_string();
        let api_version = r
            .obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        if kind == "Namespace" && api_version == "v1" {
            r.set_name(ns);
        }
        if !CLUSTER_SCOPED.contains(&kind.as_str()) {
            r.set_namespace(ns);
        }
        match kind.as_str() {
            "RoleBinding" | "ClusterRoleBinding" => subjects_named_default(r, ns),
            "APIService" if r.gvk().group == "apiregistration.k8s.io" => {
                for_each_map(&mut r.obj, "spec/service", true, &mut |m| {
                    m.insert("namespace".into(), Value::String(ns.to_string()));
                });
            }
            "CustomResourceDefinition" if r.gvk().group == "apiextensions.k8s.io" => {
                for_each_map(
                    &mut r.obj,
                    "spec/conversion/webhook/clientConfig/service",
                    false,
                    &mut |m| {
                        m.insert("namespace".into(), Value::String(ns.to_string()));
                    },
                );
            }
            _ => {}
        }
    }
}

/// Binding subjects named `default` move into the new namespace (kustomize's
/// `setRoleBindingSubjects: defaultOnly`); service accounts of the render follow through
/// name references.
fn subjects_named_default(r: &mut Resource, ns: &str) {
    let Some(Value::Array(subjects)) = r.obj.get_mut("subjects") else {
        return;
    };
    for s in subjects.iter_mut().filter_map(Value::as_object_mut) {
        if s.get("name").and_then(Value::as_str) == Some("default") {
            s.insert("namespace".into(), Value::String(ns.to_string()));
        }
    }
}

/// Splits an image reference into name, tag and digest.
fn split_image(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    let slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..]), digest),
        None => (rest, None, digest),
    }
}

pub fn images(obj: &mut Map<String, Value>, image: &super::kustomization::Image) {
    for (key, value) in obj.iter_mut() {
        match value {
            Value::Array(items) if key == "containers" || key == "initContainers" => {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    if let Some(Value::String(current)) = item.get_mut("image")
                        && let Some(updated) = update_image(current, image)
                    {
                        *current = updated;
                    }
                    images(item, image);
                }
            }
            Value::Object(m) => images(m, image),
            Value::Array(items) => {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    images(item, image);
                }
            }
            _ => {}
        }
    }
}

pub fn update_image(current: &str, image: &super::kustomization::Image) -> Option<String> {
    let (name, tag, digest) = split_image(current);
    if name != image.name {
        return None;
    }
    let new_name = image.new_name.as_deref().unwrap_or(name);
    if let Some(d) = image.digest.as_deref() {
        return Some(format!("{new_name}@{d}"));
    }
    if let Some(t) = image.new_tag.as_deref() {
        return Some(format!("{new_name}:{t}"));
    }
    let mut out = new_name.to_string();
    if let Some(t) = tag {
        out.push(':');
        out.push_str(t);
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(d);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split() {
        assert_eq!(split_image("nginx"), ("nginx", None, None));
        assert_eq!(split_image("nginx:1.2"), ("nginx", Some("1.2"), None));
        assert_eq!(
            split_image("reg:5000/team/app:v1@sha256:ab"),
            ("reg:5000/team/app", Some("v1"), Some("sha256:ab"))
        );
        assert_eq!(split_image("reg:5000/app"), ("reg:5000/app", None, None));
    }
}
