//! Field specs: where in which kinds a transformer acts (kustomize's `fieldSpecs`).

use serde_json::{Map, Value};

use super::resource::{Gvk, Resource};

/// A path in resources of a kind (or every kind when `kind` is empty).
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    /// API group to match; `None` matches any.
    pub group: Option<&'static str>,
    /// Kind to match; `None` matches any.
    pub kind: Option<&'static str>,
    /// Slash-separated path; lists along the way are entered element by element.
    pub path: &'static str,
    /// Create missing maps along the path.
    pub create: bool,
}

impl FieldSpec {
    /// Whether this spec applies to resources of `gvk`.
    pub fn applies_to(&self, gvk: &Gvk) -> bool {
        self.kind.is_none_or(|k| k == gvk.kind) && self.group.is_none_or(|g| g == gvk.group)
    }
}

const fn spec(kind: Option<&'static str>, path: &'static str, create: bool) -> FieldSpec {
    FieldSpec {
        group: None,
        kind,
        path,
        create,
    }
}

/// Workload kinds whose pod template sits at `spec/template`.
pub const TEMPLATED: [&str; 6] = [
    "Deployment",
    "ReplicaSet",
    "DaemonSet",
    "StatefulSet",
    "Job",
    "ReplicationController",
];

/// Pod (anti-)affinity and topology-spread selectors that select the workload's own pods.
const SELECTOR_TERMS: [&str; 5] = [
    "spec/template/spec/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels",
    "spec/template/spec/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
    "spec/template/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels",
    "spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
    "spec/template/spec/topologySpreadConstraints/labelSelector/matchLabels",
];

/// Where common labels go when they also select (commonLabels, labels.includeSelectors).
pub fn label_specs(selectors: bool, templates: bool) -> Vec<FieldSpec> {
    let mut specs = vec![spec(None, "metadata/labels", true)];
    if templates || selectors {
        for kind in TEMPLATED {
            specs.push(spec(Some(kind), "spec/template/metadata/labels", true));
        }
        specs.push(spec(
            Some("CronJob"),
            "spec/jobTemplate/metadata/labels",
            true,
        ));
        specs.push(spec(
            Some("CronJob"),
            "spec/jobTemplate/spec/template/metadata/labels",
            true,
        ));
        specs.push(spec(
            Some("StatefulSet"),
            "spec/volumeClaimTemplates/metadata/labels",
            true,
        ));
    }
    if selectors {
        specs.push(spec(Some("Service"), "spec/selector", true));
        specs.push(spec(Some("ReplicationController"), "spec/selector", true));
        for kind in ["Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"] {
            specs.push(spec(Some(kind), "spec/selector/matchLabels", true));
        }
        for kind in ["Deployment", "StatefulSet"] {
            for path in SELECTOR_TERMS {
                specs.push(spec(Some(kind), path, false));
            }
        }
        specs.push(spec(Some("Job"), "spec/selector/matchLabels", false));
        specs.push(spec(
            Some("CronJob"),
            "spec/jobTemplate/spec/selector/matchLabels",
            false,
        ));
        specs.push(spec(
            Some("PodDisruptionBudget"),
            "spec/selector/matchLabels",
            false,
        ));
        specs.push(spec(
            Some("NetworkPolicy"),
            "spec/podSelector/matchLabels",
            false,
        ));
        specs.push(spec(
            Some("NetworkPolicy"),
            "spec/ingress/from/podSelector/matchLabels",
            false,
        ));
        specs.push(spec(
            Some("NetworkPolicy"),
            "spec/egress/to/podSelector/matchLabels",
            false,
        ));
    }
    specs
}

/// Where common annotations go.
pub fn annotation_specs() -> Vec<FieldSpec> {
    let mut specs = vec![spec(None, "metadata/annotations", true)];
    for kind in TEMPLATED {
        specs.push(spec(Some(kind), "spec/template/metadata/annotations", true));
    }
    specs.push(spec(
        Some("CronJob"),
        "spec/jobTemplate/metadata/annotations",
        true,
    ));
    specs.push(spec(
        Some("CronJob"),
        "spec/jobTemplate/spec/template/metadata/annotations",
        true,
    ));
    specs
}

/// Calls `f` on every map at `path` in `obj` (creating maps when `create`).
pub fn for_each_map(
    obj: &mut Map<String, Value>,
    path: &str,
    create: bool,
    f: &mut dyn FnMut(&mut Map<String, Value>),
) {
    let segments = split_path(path);
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    walk_map(obj, &segments, create, f);
}

/// Splits a field-spec path at `/`, except where escaped as `\/` (annotation keys).
pub fn split_path(path: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'/') => {
                chars.next();
                if let Some(last) = out.last_mut() {
                    last.push('/');
                }
            }
            '/' => out.push(String::new()),
            c => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out
}

fn walk_map(
    obj: &mut Map<String, Value>,
    segments: &[&str],
    create: bool,
    f: &mut dyn FnMut(&mut Map<String, Value>),
) {
    let Some((first, rest)) = segments.split_first() else {
        f(obj);
        return;
    };
    if !obj.contains_key(*first) {
        if !create {
            return;
        }
        obj.insert(first.to_string(), Value::Object(Map::new()));
    }
    match obj.get_mut(*first) {
        Some(Value::Object(m)) => walk_map(m, rest, create, f),
        Some(Value::Array(items)) => {
            for item in items {
                if let Value::Object(m) = item {
                    walk_map(m, rest, create, f);
                }
            }
        }
        Some(v @ Value::Null) if create => {
            *v = Value::Object(Map::new());
            if let Value::Object(m) = v {
                walk_map(m, rest, create, f);
            }
        }
        _ => {}
    }
}

/// Calls `f` on every value at `path` (the last segment names the field), never creating.
pub fn for_each_field(obj: &mut Map<String, Value>, path: &str, f: &mut dyn FnMut(&mut Value)) {
    let segments = split_path(path);
    let Some((field, parent)) = segments.split_last() else {
        return;
    };
    let parent: Vec<&str> = parent.iter().map(String::as_str).collect();
    walk_map(obj, &parent, false, &mut |m| {
        if let Some(v) = m.get_mut(field.as_str()) {
            f(v);
        }
    });
}

/// Calls `f` on every value at `path`; with `create`, missing maps along the way and a
/// missing last field (as `null`) are created first.
pub fn for_each_field_creating(
    obj: &mut Map<String, Value>,
    path: &str,
    create: bool,
    f: &mut dyn FnMut(&mut Value),
) {
    let segments = split_path(path);
    let Some((field, parent)) = segments.split_last() else {
        return;
    };
    let parent: Vec<&str> = parent.iter().map(String::as_str).collect();
    walk_map(obj, &parent, create, &mut |m| {
        if create && !m.contains_key(field.as_str()) {
            m.insert(field.clone(), Value::Null);
        }
        if let Some(v) = m.get_mut(field.as_str()) {
            f(v);
        }
    });
}

/// Applies `specs` that match the resource, calling `f` on each map found.
pub fn apply_to_maps(
    res: &mut Resource,
    specs: &[FieldSpec],
    f: &mut dyn FnMut(&mut Map<String, Value>),
) {
    let gvk = res.gvk();
    for s in specs.iter().filter(|s| s.applies_to(&gvk)) {
        for_each_map(&mut res.obj, s.path, s.create, f);
    }
}
