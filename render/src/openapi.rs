//! `openapi:` — a custom OpenAPI (swagger v2) document whose patch metadata
//! (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`) drives strategic merge.
//!
//! As in kustomize, the schema is global to a build and set once: the first kustomization
//! in traversal order (the root first) that names one wins, and a custom schema replaces
//! the built-in Kubernetes one entirely (built-in kinds then merge lists as plain values).

use std::path::Path;

use serde_json::{Map, Value};

use super::RenderError;
use super::loader::Loader;
use super::smp::{FieldMeta, Schema};

/// The only built-in schema version kustomize v5.5.0 carries.
pub const BUILTIN_VERSION: &str = "v1.21.2";

/// Which schema a build uses, once decided.
#[derive(Debug)]
pub enum Choice {
    /// Kubernetes' own (also when a kustomization asks for the built-in version).
    Builtin,
    /// A document read from `openapi.path`, parsed when a strategic merge first needs it
    /// (kustomize too only fails on a bad schema once it uses it).
    Custom {
        path: std::path::PathBuf,
        text: String,
        parsed: std::sync::OnceLock<Result<Schema, String>>,
    },
}

impl Choice {
    /// The schema to merge with.
    pub fn schema(&self) -> Result<&Schema, RenderError> {
        match self {
            Choice::Builtin => Ok(Schema::builtin()),
            Choice::Custom { path, text, parsed } => parsed
                .get_or_init(|| parse(text))
                .as_ref()
                .map_err(|message| RenderError::Invalid {
                    path: path.clone(),
                    message: format!("invalid schema file: {message}"),
                }),
        }
    }
}

/// Applies a kustomization's `openapi:` field: checks it, reads the file it names, and
/// makes it the build's schema unless one was chosen before.
pub fn apply_field(
    loader: &Loader<'_>,
    dir: &Path,
    kpath: &Path,
    field: &Value,
) -> Result<(), RenderError> {
    let err = |message: String| RenderError::Field {
        path: kpath.to_path_buf(),
        field: "openapi".into(),
        message,
    };
    let Value::Object(m) = field else {
        return Err(err("expected a map (path: or version:)".into()));
    };
    let get = |k: &str| -> Result<Option<&str>, RenderError> {
        match m.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(err(format!("{k} must be a string"))),
        }
    };
    let path = get("path")?;
    let version = get("version")?;
    // kustomize reads the file before it looks at anything else.
    let text = path.map(|p| loader.read_text(dir, p)).transpose()?;
    if loader.openapi.get().is_some() {
        return Ok(());
    }
    match (text, version) {
        (Some(_), Some(_)) => Err(err(
            "builtin version and custom schema provided, cannot use both".into(),
        )),
        (Some(text), None) => {
            let file = loader.resolve(dir, path.unwrap_or_default(), true)?;
            let _ = loader.openapi.set(Choice::Custom {
                path: file,
                text,
                parsed: std::sync::OnceLock::new(),
            });
            Ok(())
        }
        (None, Some("")) | (None, None) => Ok(()),
        (None, Some(v)) if v == BUILTIN_VERSION => {
            let _ = loader.openapi.set(Choice::Builtin);
            Ok(())
        }
        (None, Some(v)) => Err(err(format!(
            "the specified OpenAPI version {v:?} is not built in (only {BUILTIN_VERSION})"
        ))),
    }
}

/// Reads a swagger document (JSON, or YAML) into strategic-merge metadata.
pub fn parse(text: &str) -> Result<Schema, String> {
    let doc: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| e.to_string())?
    } else {
        crate::yaml::kustomize_documents(text)
            .map_err(|e| e.to_string())?
            .into_iter()
            .next()
            .unwrap_or(Value::Null)
    };
    let Value::Object(doc) = doc else {
        return Err("not a mapping".into());
    };
    let empty = Map::new();
    let defs = match doc.get("definitions") {
        Some(Value::Object(d)) => d,
        None | Some(Value::Null) => &empty,
        Some(_) => return Err("definitions must be a mapping".into()),
    };
    let mut schema = Schema::default();
    for (name, def) in defs {
        if let Some(Value::Array(gvks)) = def.get("x-kubernetes-group-version-kind") {
            for gvk in gvks {
                let s = |k: &str| gvk.get(k).and_then(Value::as_str).unwrap_or("");
                schema.add_kind(s("group"), s("version"), s("kind"), name);
            }
        }
        add_fields(&mut schema, defs, name, def, 0);
    }
    Ok(schema)
}

/// Follows `$ref`s (`#/definitions/NAME`) to the schema they name; returns that name too.
fn resolve<'a>(defs: &'a Map<String, Value>, mut s: &'a Value) -> (Option<&'a str>, &'a Value) {
    let mut name = None;
    for _ in 0..32 {
        let Some(r) = s.get("$ref").and_then(Value::as_str) else {
            break;
        };
        let key = r.strip_prefix("#/definitions/").unwrap_or(r);
        match defs.get_key_value(key) {
            Some((k, v)) => {
                name = Some(k.as_str());
                s = v;
            }
            None => break,
        }
    }
    (name, s)
}

fn has_type(s: &Value, t: &str) -> bool {
    match s.get("type") {
        Some(Value::String(x)) => x == t,
        Some(Value::Array(xs)) => xs.len() == 1 && xs[0].as_str() == Some(t),
        _ => false,
    }
}

fn is_object(s: &Value) -> bool {
    s.get("properties").is_some_and(Value::is_object) || has_type(s, "object")
}

/// Registers the fields of type `def` (schema `s`); inline object schemas get synthetic
/// type names below `def`.
fn add_fields(schema: &mut Schema, defs: &Map<String, Value>, def: &str, s: &Value, depth: usize) {
    if depth > 64 {
        return;
    }
    let Some(Value::Object(props)) = s.get("properties") else {
        return;
    };
    for (field, prop) in props {
        let (name, resolved) = resolve(defs, prop);
        let strategy = resolved
            .get("x-kubernetes-patch-strategy")
            .and_then(Value::as_str)
            .unwrap_or("");
        let merge = strategy.split(',').any(|s| s == "merge");
        let key = resolved
            .get("x-kubernetes-patch-merge-key")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                resolved
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .and_then(|k| k.first())
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let child_of =
            |schema: &mut Schema, name: Option<&str>, inner: &Value, tag: &str| match name {
                Some(n) => n.to_string(),
                None => {
                    let synthetic = format!("{def}.{field}{tag}");
                    add_fields(schema, defs, &synthetic, inner, depth + 1);
                    synthetic
                }
            };
        let meta = if has_type(resolved, "array") {
            let (item_name, item) = match resolved.get("items") {
                Some(i) => resolve(defs, i),
                None => (None, &Value::Null),
            };
            if item_name.is_some() || is_object(item) {
                FieldMeta {
                    shape: b'l',
                    child: child_of(schema, item_name, item, "[]"),
                    merge,
                    key,
                }
            } else {
                FieldMeta {
                    shape: b'p',
                    child: String::new(),
                    merge,
                    key,
                }
            }
        } else if resolved.get("properties").is_some_and(Value::is_object) {
            FieldMeta {
                shape: b'o',
                child: child_of(schema, name, resolved, ""),
                merge,
                key,
            }
        } else if let Some(values) = resolved
            .get("additionalProperties")
            .filter(|v| v.is_object())
        {
            let (value_name, value) = resolve(defs, values);
            if value_name.is_none() && !is_object(value) {
                continue;
            }
            FieldMeta {
                shape: b'm',
                child: child_of(schema, value_name, value, "{}"),
                merge,
                key,
            }
        } else {
            continue;
        };
        schema.add_field(def, field, meta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smp::{Outcome, strategic_merge};
    use serde_json::json;

    #[test]
    fn custom_schema_merges_lists_by_key_through_refs_and_inline_types() {
        let schema = parse(
            r##"{"definitions": {
              "w.Widget": {"x-kubernetes-group-version-kind": [{"group": "ex.com", "version": "v1", "kind": "Widget"}],
                "properties": {"spec": {"$ref": "#/definitions/w.Spec"}}},
              "w.Spec": {"properties": {
                "items": {"type": "array", "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name",
                  "items": {"type": "object", "properties": {"ports": {"type": "array",
                    "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "port",
                    "items": {"type": "object"}}}}}}}
            }}"##,
        )
        .unwrap();
        let mut obj = json!({"spec": {"items": [{"name": "a", "ports": [{"port": 1, "x": 1}]}, {"name": "b"}]}});
        let patch = json!({"spec": {"items": [{"name": "a", "ports": [{"port": 1, "y": 2}]}]}});
        let Value::Object(dst) = &mut obj else {
            panic!()
        };
        let Value::Object(p) = &patch else { panic!() };
        assert!(matches!(
            strategic_merge(&schema, dst, p, "ex.com", "v1", "Widget"),
            Outcome::Keep
        ));
        assert_eq!(
            obj,
            json!({"spec": {"items": [{"name": "a", "ports": [{"port": 1, "x": 1, "y": 2}]}, {"name": "b"}]}})
        );
    }
}
