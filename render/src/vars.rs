//! `vars:` (kustomize's older substitution): `$(NAME)` in a fixed set of fields is
//! replaced by a field of a named object, after every name has settled.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::config::Spec;
use super::fieldspec::for_each_field;
use super::resource::Resource;

/// One `vars:` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Var {
    pub name: String,
    pub objref: ObjRef,
    #[serde(default)]
    pub fieldref: Option<FieldRef>,
}

/// The object a var reads. kustomize's target inlines a group/version/kind, so `group` and
/// `version` are fields too (a written `apiVersion` wins over them).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjRef {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// The field a var reads (default `metadata.name`). Go's encoding/json, which kustomize
/// reads it with, matches the field name in any case (`fieldpath` is common).
#[derive(Debug, Clone, Default)]
pub struct FieldRef {
    pub field_path: String,
}

impl<'de> Deserialize<'de> for FieldRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<String, String>::deserialize(d)?;
        let mut out = FieldRef::default();
        for (k, v) in map {
            if k.eq_ignore_ascii_case("fieldPath") {
                out.field_path = v;
            } else {
                return Err(serde::de::Error::unknown_field(&k, &["fieldPath"]));
            }
        }
        Ok(out)
    }
}

/// Fields where `$(VAR)` is replaced: (kind, path); an empty kind means every kind.
const REFERENCES: &[(&str, &str)] = &[
    ("Ingress", "spec/rules/host"),
    ("Ingress", "spec/tls/hosts"),
    ("Ingress", "spec/tls/secretName"),
    ("Service", "spec/ports/port"),
    ("Service", "spec/ports/targetPort"),
    ("Deployment", "spec/template/metadata/annotations"),
    ("PersistentVolume", "spec/nfs/server"),
    ("StatefulSet", "spec/volumeClaimTemplates/spec/nfs/server"),
    (
        "CronJob",
        "spec/jobTemplate/spec/template/volumes/nfs/server",
    ),
    ("", "metadata/labels"),
    ("", "metadata/annotations"),
];

/// Container fields where `$(VAR)` is replaced, under each kind's pod spec.
const CONTAINER_FIELDS: &[&str] = &["args", "command", "env/value", "volumeMounts/mountPath"];

const POD_SPECS: &[(&str, &str, bool)] = &[
    ("Pod", "spec", true),
    ("Deployment", "spec/template/spec", true),
    ("ReplicaSet", "spec/template/spec", true),
    ("DaemonSet", "spec/template/spec", true),
    ("Job", "spec/template/spec", true),
    ("StatefulSet", "spec/template/spec", false),
    ("CronJob", "spec/jobTemplate/spec/template/spec", false),
];

fn reference_paths(kind: &str) -> Vec<String> {
    let mut out: Vec<String> = REFERENCES
        .iter()
        .filter(|(k, _)| k.is_empty() || *k == kind)
        .map(|(_, p)| p.to_string())
        .collect();
    for (k, prefix, nfs_volumes) in POD_SPECS {
        if *k != kind {
            continue;
        }
        for containers in ["containers", "initContainers"] {
            for field in CONTAINER_FIELDS {
                out.push(format!("{prefix}/{containers}/{field}"));
            }
        }
        if *nfs_volumes {
            out.push(format!("{prefix}/volumes/nfs/server"));
        }
    }
    out
}

/// Whether `r` is the object `var` names, by its current or any earlier id.
fn names(var: &Var, r: &Resource) -> bool {
    let o = &var.objref;
    let gvk = r.gvk();
    let (group, version) = match o.api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None if o.api_version.is_empty() => (o.group.as_str(), o.version.as_str()),
        None => ("", o.api_version.as_str()),
    };
    // An empty version selects any version (a bare kind, or a group alone).
    let any_version = o.api_version.is_empty() && version.is_empty();
    if gvk.kind != o.kind || gvk.group != group || !(any_version || gvk.version == version) {
        return false;
    }
    let current = (r.name().to_string(), r.namespace().map(str::to_string));
    let mut ids = r.previous.iter().chain(std::iter::once(&current));
    match o.namespace.as_deref().filter(|n| !n.is_empty()) {
        Some(ns) => ids.any(|(n, s)| *n == o.name && s.as_deref().unwrap_or("default") == ns),
        None => ids.any(|(n, _)| *n == o.name),
    }
}

/// Marks the object each var reads (at the level that declares it); duplicate names and
/// ambiguous references are errors.
pub fn merge(declared: &[Var], res: &mut [Resource], all: &mut Vec<Var>) -> Result<(), String> {
    for var in declared {
        let matched: Vec<usize> = (0..res.len()).filter(|&i| names(var, &res[i])).collect();
        if matched.len() > 1 {
            return Err(format!(
                "found {} resId matches for var {} (unable to disambiguate)",
                matched.len(),
                var.name
            ));
        }
        if let Some(&i) = matched.first() {
            res[i].ref_vars.push(var.name.clone());
        }
        if all.iter().any(|v| v.name == var.name) {
            return Err(format!("var '{}' already encountered", var.name));
        }
        all.push(var.clone());
    }
    Ok(())
}

/// Replaces `$(VAR)` in every reference field, once all names are final.
/// `extra` are the `varReference` field specs of a tree's `configurations:`.
pub fn resolve(vars: &[Var], res: &mut [Resource], extra: &[Spec]) -> Result<(), String> {
    let mut values: Vec<(String, Value)> = Vec::new();
    for var in vars {
        let holder = res
            .iter()
            .find(|r| r.ref_vars.contains(&var.name))
            .ok_or_else(|| {
                format!(
                    "var '{}' cannot be mapped to a field in the set of known resources",
                    var.name
                )
            })?;
        let path = var
            .fieldref
            .as_ref()
            .map(|f| f.field_path.as_str())
            .filter(|p| !p.is_empty())
            .unwrap_or("metadata.name");
        let value = field_value(&holder.obj, path).ok_or_else(|| {
            format!(
                "field specified in var '{}' not found in corresponding resource",
                var.name
            )
        })?;
        values.push((var.name.clone(), value));
    }
    if values.is_empty() {
        return Ok(());
    }
    for r in res.iter_mut() {
        for path in reference_paths(r.kind()) {
            for_each_field(&mut r.obj, &path, &mut |v| substitute(v, &values));
        }
        for spec in extra {
            if spec.applies_to(r) {
                for_each_field(&mut r.obj, &spec.walk_path(), &mut |v| {
                    substitute(v, &values)
                });
            }
        }
    }
    Ok(())
}

fn substitute(v: &mut Value, values: &[(String, Value)]) {
    match v {
        Value::String(s) => *v = expand(s, values),
        Value::Array(items) => {
            for item in items.iter_mut() {
                if let Value::String(s) = item {
                    *item = expand(s, values);
                }
            }
        }
        Value::Object(m) => {
            for (_, item) in m.iter_mut() {
                if let Value::String(s) = item {
                    *item = expand(s, values);
                }
            }
        }
        _ => {}
    }
}

/// Kubernetes-style expansion: `$(NAME)` is replaced (the bare reference keeps the value's
/// type), `$$` is a literal `$`, unknown names stay as written.
fn expand(input: &str, values: &[(String, Value)]) -> Value {
    let lookup = |name: &str| values.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    if let Some(name) = input.strip_prefix("$(").and_then(|s| s.strip_suffix(')'))
        && !name.contains(')')
    {
        return lookup(name)
            .cloned()
            .unwrap_or_else(|| Value::String(input.to_string()));
    }
    let b = input.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            match b[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                }
                b'(' => match input[i + 2..].find(')') {
                    Some(end) => {
                        let name = &input[i + 2..i + 2 + end];
                        match lookup(name) {
                            Some(Value::String(s)) => out.push_str(s),
                            Some(other) => out.push_str(&other.to_string()),
                            None => out.push_str(&format!("$({name})")),
                        }
                        i += 3 + end;
                    }
                    None => {
                        out.push_str("$(");
                        i += 2;
                    }
                },
                _ => {
                    out.push('$');
                    i += 1;
                }
            }
        } else {
            let ch = input[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    Value::String(out)
}

/// The value at a dotted path (`spec.ports[0].port`, `a.[name=x].b`).
fn field_value(obj: &Map<String, Value>, path: &str) -> Option<Value> {
    let mut cur = Value::Object(obj.clone());
    let mut segments = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in path.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            '.' if depth == 0 => {
                segments.push(&path[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    segments.push(&path[start..]);
    for seg in segments {
        let (key, selector) = match seg.find('[') {
            Some(i) => (&seg[..i], Some(seg[i + 1..].trim_end_matches(']'))),
            None => (seg, None),
        };
        if !key.is_empty() {
            cur = match &cur {
                Value::Object(m) => m.get(key)?.clone(),
                Value::Array(items) => items.get(key.parse::<usize>().ok()?)?.clone(),
                _ => return None,
            };
        }
        if let Some(sel) = selector {
            let items = cur.as_array()?;
            cur = match sel.split_once('=') {
                Some((k, v)) => items
                    .iter()
                    .find(|it| it.get(k).and_then(Value::as_str) == Some(v))?
                    .clone(),
                None => items.get(sel.parse::<usize>().ok()?)?.clone(),
            };
        }
    }
    Some(cur)
}
