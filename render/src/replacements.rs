//! `replacements:` copy a field of one resource into fields of others.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::RenderError;
use super::kustomization::Selector;
use super::loader::Loader;
use super::patch::Target;
use super::resource::Resource;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Replacement {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    source: Option<Source>,
    #[serde(default)]
    targets: Vec<TargetSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Source {
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    field_path: Option<String>,
    #[serde(default)]
    options: Options,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Options {
    #[serde(default)]
    delimiter: Option<String>,
    #[serde(default)]
    index: i64,
    #[serde(default)]
    create: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TargetSpec {
    select: Option<Selector>,
    #[serde(default)]
    reject: Vec<Selector>,
    #[serde(default)]
    field_paths: Vec<String>,
    #[serde(default)]
    options: Options,
}

/// Applies the kustomization's `replacements` entries (inline or from files).
pub fn apply(
    loader: &Loader<'_>,
    dir: &Path,
    kpath: &Path,
    entries: &[Value],
    res: &mut [Resource],
) -> Result<(), RenderError> {
    for (i, entry) in entries.iter().enumerate() {
        let field = format!("replacements[{i}]");
        let err = |m: String| RenderError::Field {
            path: kpath.to_path_buf(),
            field: field.clone(),
            message: m,
        };
        let r: Replacement =
            serde_json::from_value(entry.clone()).map_err(|e| err(e.to_string()))?;
        let list: Vec<Replacement> = match &r.path {
            Some(path) => {
                let text = loader.read_text(dir, path)?;
                let mut out = Vec::new();
                for doc in
                    crate::yaml::kustomize_documents(&text).map_err(|e| err(e.to_string()))?
                {
                    match doc {
                        Value::Array(items) => {
                            for item in items {
                                out.push(
                                    serde_json::from_value(item).map_err(|e| err(e.to_string()))?,
                                );
                            }
                        }
                        other => {
                            out.push(serde_json::from_value(other).map_err(|e| err(e.to_string()))?)
                        }
                    }
                }
                out
            }
            None => vec![r],
        };
        for r in list {
            apply_one(&r, res).map_err(&err)?;
        }
    }
    Ok(())
}

fn apply_one(r: &Replacement, res: &mut [Resource]) -> Result<(), String> {
    let source = r.source.as_ref().ok_or("a replacement needs a source")?;
    let selector = Selector {
        group: source.group.clone(),
        version: source.version.clone(),
        kind: source.kind.clone(),
        name: source.name.clone(),
        namespace: source.namespace.clone(),
        ..Selector::default()
    };
    let target = Target::new(&selector)?;
    let mut found = Vec::new();
    for r in res.iter() {
        if target.matches(r)? {
            found.push(r);
        }
    }
    let src = match found.as_slice() {
        [one] => *one,
        [] => return Err("the source selects no resource".into()),
        _ => {
            return Err(format!(
                "the source selects {} resources, not one",
                found.len()
            ));
        }
    };
    let path = parse_path(source.field_path.as_deref().unwrap_or("metadata.name"));
    let mut value = get(&Value::Object(src.obj.clone()), &path).ok_or_else(|| {
        format!(
            "field {} not found in {}",
            source.field_path.as_deref().unwrap_or("metadata.name"),
            src.describe()
        )
    })?;
    if let (Some(d), Value::String(s)) = (&source.options.delimiter, &value) {
        let parts: Vec<&str> = s.split(d.as_str()).collect();
        let i = usize::try_from(source.options.index).map_err(|_| "negative index")?;
        value = Value::String(parts.get(i).ok_or("index out of range")?.to_string());
    }
    for t in &r.targets {
        let select = t.select.as_ref().map(Target::new).transpose()?;
        let rejects = t
            .reject
            .iter()
            .map(Target::new)
            .collect::<Result<Vec<_>, _>>()?;
        for res in res.iter_mut() {
            if let Some(s) = &select
                && !s.matches(res)?
            {
                continue;
            }
            let mut rejected = false;
            for rj in &rejects {
                rejected |= rj.matches(res)?;
            }
            if rejected {
                continue;
            }
            for fp in &t.field_paths {
                let path = parse_path(fp);
                let mut doc = Value::Object(std::mem::take(&mut res.obj));
                let result = set(&mut doc, &path, &value, &t.options);
                if let Value::Object(m) = doc {
                    res.obj = m;
                }
                result.map_err(|m| format!("{}: {fp}: {m}", res.describe()))?;
            }
        }
    }
    Ok(())
}

/// A segment of a replacement field path.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    /// `[name=value]`: the list element whose `name` is `value`.
    Match(String, String),
    Index(usize),
    Any,
}

/// `spec.template.spec.containers.[name=app].image`, `metadata.labels.[a.b/c]`, `0`, `*`.
fn parse_path(path: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        let (seg, next) = if let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']').unwrap_or(inner.len());
            let after = inner.get(end + 1..).unwrap_or("");
            (
                format!("[{}]", &inner[..end]),
                after.strip_prefix('.').unwrap_or(after),
            )
        } else {
            match rest.find('.') {
                Some(i) => (rest[..i].to_string(), &rest[i + 1..]),
                None => (rest.to_string(), ""),
            }
        };
        segs.push(
            if let Some(inner) = seg.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                match inner.split_once('=') {
                    Some((k, v)) => Seg::Match(k.to_string(), v.to_string()),
                    None => Seg::Key(inner.to_string()),
                }
            } else if seg == "*" {
                Seg::Any
            } else if let Ok(i) = seg.parse::<usize>() {
                Seg::Index(i)
            } else {
                Seg::Key(seg)
            },
        );
        rest = next;
    }
    segs
}

/// kustomize replaces the text of an existing scalar but keeps its YAML type: a string
/// "3" copied into `replicas: 1` stays a number.
fn keep_scalar_type(current: &Value, new: &Value) -> Value {
    match (current, new) {
        (Value::Number(_), Value::String(s)) => s
            .parse::<i64>()
            .map(Value::from)
            .ok()
            .or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
            })
            .unwrap_or_else(|| new.clone()),
        (Value::Bool(_), Value::String(s)) => match s.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => new.clone(),
        },
        _ => new.clone(),
    }
}

fn get(v: &Value, path: &[Seg]) -> Option<Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(v.clone());
    };
    match (first, v) {
        (Seg::Key(k), Value::Object(m)) => get(m.get(k)?, rest),
        (Seg::Index(i), Value::Array(items)) => get(items.get(*i)?, rest),
        (Seg::Match(k, want), Value::Array(items)) => items
            .iter()
            .find(|it| it.get(k).and_then(Value::as_str) == Some(want.as_str()))
            .and_then(|it| get(it, rest)),
        _ => None,
    }
}

fn set(v: &mut Value, path: &[Seg], value: &Value, options: &Options) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else {
        match (&options.delimiter, v.as_str(), value.as_str()) {
            (Some(d), Some(current), Some(new)) => {
                let mut parts: Vec<String> =
                    current.split(d.as_str()).map(str::to_string).collect();
                let i = usize::try_from(options.index).map_err(|_| "negative index")?;
                if i >= parts.len() {
                    parts.resize(i + 1, String::new());
                }
                parts[i] = new.to_string();
                *v = Value::String(parts.join(d));
            }
            _ => *v = keep_scalar_type(v, value),
        }
        return Ok(());
    };
    match (first, v) {
        (Seg::Key(k), Value::Object(m)) => {
            if !m.contains_key(k) {
                if !options.create {
                    return Ok(());
                }
                m.insert(
                    k.clone(),
                    if rest.is_empty() {
                        Value::Null
                    } else {
                        Value::Object(Map::new())
                    },
                );
            }
            match m.get_mut(k) {
                Some(child) => set(child, rest, value, options),
                None => Ok(()),
            }
        }
        (Seg::Index(i), Value::Array(items)) => match items.get_mut(*i) {
            Some(child) => set(child, rest, value, options),
            None => Ok(()),
        },
        (Seg::Match(k, want), Value::Array(items)) => {
            for it in items.iter_mut() {
                if it.get(k).and_then(Value::as_str) == Some(want.as_str()) {
                    set(it, rest, value, options)?;
                }
            }
            Ok(())
        }
        (Seg::Any, Value::Array(items)) => {
            for it in items.iter_mut() {
                set(it, rest, value, options)?;
            }
            Ok(())
        }
        (Seg::Any, Value::Object(m)) => {
            for (_, it) in m.iter_mut() {
                set(it, rest, value, options)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
