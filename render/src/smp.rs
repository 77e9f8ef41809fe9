//! Strategic merge: the patch metadata of a schema (Kubernetes' built-in table
//! `patch_meta.tsv`, or a custom OpenAPI document given by `openapi:`) decides which lists
//! merge by key; everything else is replaced or merged as a map.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Value};

/// One field of a type, as far as strategic merge cares.
#[derive(Debug, Clone)]
pub struct FieldMeta {
    /// o: object, l: list of objects, p: list of scalars, m: map of objects.
    pub shape: u8,
    /// The type of the object, of the list's elements or of the map's values.
    pub child: String,
    /// `x-kubernetes-patch-strategy` includes `merge`.
    pub merge: bool,
    /// `x-kubernetes-patch-merge-key`.
    pub key: String,
}

/// The patch metadata strategic merge consults.
#[derive(Debug, Default)]
pub struct Schema {
    /// (group, kind) → type, for the built-in table (one version per kind suffices there).
    kinds: HashMap<(String, String), String>,
    /// (group, version, kind) → type, from `x-kubernetes-group-version-kind` of a custom
    /// schema (kustomize indexes it by apiVersion and kind).
    versioned: HashMap<(String, String, String), String>,
    /// type → field → metadata.
    fields: HashMap<String, HashMap<String, FieldMeta>>,
}

impl Schema {
    /// Kubernetes' own types (kustomize's built-in schema).
    pub fn builtin() -> &'static Schema {
        static BUILTIN: OnceLock<Schema> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            let mut m = Schema::default();
            let mut current: Option<String> = None;
            for line in include_str!("patch_meta.tsv").lines() {
                let cols: Vec<&str> = line.split('\t').collect();
                match cols.first() {
                    Some(&"G") if cols.len() >= 5 => {
                        m.kinds
                            .entry((cols[1].to_string(), cols[3].to_string()))
                            .or_insert_with(|| cols[4].to_string());
                    }
                    Some(&"D") if cols.len() >= 2 => current = Some(cols[1].to_string()),
                    Some(&"F") if cols.len() >= 6 => {
                        if let Some(def) = &current {
                            m.add_field(
                                def,
                                cols[1],
                                FieldMeta {
                                    shape: cols[2].as_bytes().first().copied().unwrap_or(b'o'),
                                    child: cols[3].to_string(),
                                    merge: cols[4].split(',').any(|s| s == "merge"),
                                    key: cols[5].to_string(),
                                },
                            );
                        }
                    }
                    _ => {}
                }
            }
            m
        })
    }

    /// Registers the type of resources of group/version/kind.
    pub fn add_kind(&mut self, group: &str, version: &str, kind: &str, def: &str) {
        self.versioned.insert(
            (group.to_string(), version.to_string(), kind.to_string()),
            def.to_string(),
        );
    }

    /// Registers a field of a type.
    pub fn add_field(&mut self, def: &str, field: &str, meta: FieldMeta) {
        self.fields
            .entry(def.to_string())
            .or_default()
            .insert(field.to_string(), meta);
    }

    fn def_of(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        if !self.versioned.is_empty() {
            let key = (group.to_string(), version.to_string(), kind.to_string());
            if let Some(d) = self.versioned.get(&key) {
                return Some(d);
            }
        }
        self.kinds
            .get(&(group.to_string(), kind.to_string()))
            .map(String::as_str)
    }

    fn field<'a>(&'a self, def: Def<'a>, field: &str) -> Option<FieldView<'a>> {
        match def {
            Def::None => None,
            Def::MapOf(child) => Some(FieldView {
                shape: b'o',
                child,
                merge: false,
                key: "",
            }),
            Def::Type(def) => self.fields.get(def)?.get(field).map(|f| FieldView {
                shape: f.shape,
                child: &f.child,
                merge: f.merge,
                key: &f.key,
            }),
        }
    }
}

/// The type a map is merged with.
#[derive(Clone, Copy)]
enum Def<'a> {
    None,
    Type(&'a str),
    /// A map whose values are all of one type (`additionalProperties`).
    MapOf(&'a str),
}

#[derive(Clone, Copy)]
struct FieldView<'a> {
    shape: u8,
    child: &'a str,
    merge: bool,
    key: &'a str,
}

/// What a patch asks for a map: keep it (merged) or delete it.
pub enum Outcome {
    Keep,
    Delete,
}

/// Applies a strategic merge patch to an object of `group`/`version`/`kind`.
pub fn strategic_merge(
    schema: &Schema,
    dst: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    group: &str,
    version: &str,
    kind: &str,
) -> Outcome {
    let def = match schema.def_of(group, version, kind) {
        Some(d) => Def::Type(d),
        None => Def::None,
    };
    merge_map(schema, dst, patch, def)
}

fn non_empty(child: &str) -> Def<'_> {
    if child.is_empty() {
        Def::None
    } else {
        Def::Type(child)
    }
}

fn merge_map(
    schema: &Schema,
    dst: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    def: Def<'_>,
) -> Outcome {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("delete") => return Outcome::Delete,
        Some("replace") => {
            *dst = clean_map(patch);
            return Outcome::Keep;
        }
        _ => {}
    }
    for (key, pv) in patch {
        if let Some(list) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Value::Array(remove)) = (dst.get_mut(list), pv) {
                items.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        let fm = schema.field(def, key);
        match pv {
            Value::Null => {
                dst.remove(key);
            }
            Value::Object(pm) => match dst.get_mut(key) {
                Some(Value::Object(dm)) => {
                    let child_def = match fm {
                        Some(f) if f.shape == b'm' && !f.child.is_empty() => Def::MapOf(f.child),
                        Some(f) if f.shape == b'o' => non_empty(f.child),
                        _ => Def::None,
                    };
                    if let Outcome::Delete = merge_map(schema, dm, pm, child_def) {
                        dst.remove(key);
                    }
                }
                _ => {
                    if pm.get("$patch").and_then(Value::as_str) != Some("delete") {
                        dst.insert(key.clone(), Value::Object(clean_map(pm)));
                    }
                }
            },
            Value::Array(items) => match fm {
                Some(f) if f.merge && f.shape == b'l' && !f.key.is_empty() => {
                    let mut current = match dst.remove(key) {
                        Some(Value::Array(v)) => v,
                        _ => Vec::new(),
                    };
                    merge_list(schema, &mut current, items, f.key, non_empty(f.child));
                    dst.insert(key.clone(), Value::Array(current));
                }
                Some(f) if f.merge && f.shape == b'p' => {
                    let current = match dst.remove(key) {
                        Some(Value::Array(v)) => v,
                        _ => Vec::new(),
                    };
                    dst.insert(key.clone(), Value::Array(merge_scalars(current, items)));
                }
                // A list without merge metadata is replaced by the patch's list as written
                // (kustomize keeps even `$patch` keys inside it).
                _ => {
                    dst.insert(key.clone(), pv.clone());
                }
            },
            scalar => {
                dst.insert(key.clone(), scalar.clone());
            }
        }
    }
    Outcome::Keep
}

/// A merged list of scalars, in kustomize's order: the patch's values first (once each),
/// then the original values the patch does not mention.
fn merge_scalars(current: Vec<Value>, patch: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(current.len() + patch.len());
    for item in patch {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    let mentioned = out.len();
    for item in current {
        if !out[..mentioned].contains(&item) {
            out.push(item);
        }
    }
    out
}

fn merge_list(schema: &Schema, dst: &mut Vec<Value>, patch: &[Value], key: &str, def: Def<'_>) {
    if patch
        .iter()
        .any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *dst = patch
            .iter()
            .filter(|p| p.get("$patch").is_none() || p.as_object().is_some_and(|m| m.len() > 1))
            .map(clean)
            .collect();
        return;
    }
    // kustomize's order: the patch's elements first (merged with the matching element of
    // the original), then the original elements the patch does not mention.
    let mut original: Vec<Option<Value>> = std::mem::take(dst).into_iter().map(Some).collect();
    let mut merged = Vec::new();
    for item in patch {
        let Some(pm) = item.as_object() else {
            merged.push(item.clone());
            continue;
        };
        let id = pm.get(key);
        let pos = id.and_then(|id| {
            original
                .iter()
                .position(|d| d.as_ref().is_some_and(|d| d.get(key) == Some(id)))
        });
        let existing = pos.and_then(|i| original[i].take());
        match (existing, pm.get("$patch").and_then(Value::as_str)) {
            (_, Some("delete")) => {}
            (Some(Value::Object(mut dm)), _) => {
                if let Outcome::Keep = merge_map(schema, &mut dm, pm, def) {
                    merged.push(Value::Object(dm));
                }
            }
            _ => merged.push(Value::Object(clean_map(pm))),
        }
    }
    merged.extend(original.into_iter().flatten());
    *dst = merged;
}

/// A patch value without its `$patch`-style directives.
pub fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(clean_map(m)),
        Value::Array(items) => Value::Array(items.iter().map(clean).collect()),
        other => other.clone(),
    }
}

fn clean_map(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), clean(v)))
        .collect()
}
