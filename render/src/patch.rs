//! Patches: strategic merge (see `smp`) and JSON 6902, selected by target or by the patch's
//! own identity.

use std::path::Path;

use serde_json::{Map, Value};

use super::RenderError;
use super::kustomization::{Patch, Selector};
use super::loader::Loader;
use super::resource::Resource;
use super::smp::{Outcome, Schema, strategic_merge};

/// Applies JSON 6902 operations to `doc`.
fn json6902(doc: &mut Value, ops: &[Value]) -> Result<(), String> {
    for (i, op) in ops.iter().enumerate() {
        let name = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op.get("path").and_then(Value::as_str).unwrap_or("");
        let fail = |m: &str| format!("operation {i} ({name} {path}): {m}");
        match name {
            "add" => add(doc, path, op.get("value").cloned().unwrap_or(Value::Null))
                .map_err(|m| fail(&m))?,
            "remove" => {
                remove(doc, path).map_err(|m| fail(&m))?;
            }
            "replace" => {
                let target = doc
                    .pointer_mut(path)
                    .ok_or_else(|| fail("path not found"))?;
                *target = op.get("value").cloned().unwrap_or(Value::Null);
            }
            "move" | "copy" => {
                let from = op.get("from").and_then(Value::as_str).unwrap_or("");
                let value = if name == "move" {
                    remove(doc, from).map_err(|m| fail(&m))?
                } else {
                    doc.pointer(from)
                        .cloned()
                        .ok_or_else(|| fail("from not found"))?
                };
                add(doc, path, value).map_err(|m| fail(&m))?;
            }
            "test" => {
                let want = op.get("value").cloned().unwrap_or(Value::Null);
                if doc.pointer(path) != Some(&want) {
                    return Err(fail("test failed"));
                }
            }
            other => return Err(fail(&format!("unknown op {other:?}"))),
        }
    }
    Ok(())
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    let (parent, last) = path.rsplit_once('/').ok_or("path must start with '/'")?;
    Ok((
        parent.to_string(),
        last.replace("~1", "/").replace("~0", "~"),
    ))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    match doc.pointer_mut(&parent) {
        Some(Value::Object(m)) => {
            m.insert(last, value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            if last == "-" {
                items.push(value);
                return Ok(());
            }
            let i: usize = last.parse().map_err(|_| format!("bad index {last:?}"))?;
            if i > items.len() {
                return Err(format!("index {i} out of range"));
            }
            items.insert(i, value);
            Ok(())
        }
        _ => Err("parent path not found".into()),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    match doc.pointer_mut(&parent) {
        Some(Value::Object(m)) => m.remove(&last).ok_or_else(|| "path not found".into()),
        Some(Value::Array(items)) => {
            let i: usize = last.parse().map_err(|_| format!("bad index {last:?}"))?;
            if i >= items.len() {
                return Err(format!("index {i} out of range"));
            }
            Ok(items.remove(i))
        }
        _ => Err("path not found".into()),
    }
}

/// A patch target with its patterns compiled once (names and the like are anchored
/// regexes, as in kustomize).
pub struct Target {
    patterns: [Option<Pattern>; 5],
    labels: Option<String>,
    annotations: Option<String>,
}

/// One field of a selector: kustomize matches it as an anchored regular expression.
#[derive(Debug, Clone)]
enum Pattern {
    Literal(String),
    Regex(regex::Regex),
}

impl Pattern {
    fn matches(&self, value: &str) -> bool {
        match self {
            Pattern::Literal(l) => l == value,
            Pattern::Regex(r) => r.is_match(value),
        }
    }
}

impl Target {
    /// Compiles a selector.
    pub fn new(sel: &Selector) -> Result<Self, String> {
        let compile = |o: &Option<String>| -> Result<Option<Pattern>, String> {
            match o.as_deref().filter(|s| !s.is_empty()) {
                // most selectors are plain names: compare those instead of compiling them
                Some(p) if regex::escape(p) == p => Ok(Some(Pattern::Literal(p.to_owned()))),
                Some(p) => regex::Regex::new(&format!("^(?:{p})$"))
                    .map(|r| Some(Pattern::Regex(r)))
                    .map_err(|e| e.to_string()),
                None => Ok(None),
            }
        };
        let present = |o: &Option<String>| o.clone().filter(|s| !s.is_empty());
        Ok(Target {
            patterns: [
                compile(&sel.group)?,
                compile(&sel.version)?,
                compile(&sel.kind)?,
                compile(&sel.name)?,
                compile(&sel.namespace)?,
            ],
            labels: present(&sel.label_selector),
            annotations: present(&sel.annotation_selector),
        })
    }

    /// Whether `r` is selected. Name and namespace match the current or the original
    /// ones (before prefixes, suffixes and the namespace transformer), as kustomize's
    /// selector does.
    pub fn matches(&self, r: &Resource) -> Result<bool, String> {
        let gvk = r.gvk();
        let original_ns = r.original_namespace.as_deref().unwrap_or("");
        let values: [[&str; 2]; 5] = [
            [gvk.group.as_str(); 2],
            [gvk.version.as_str(); 2],
            [gvk.kind.as_str(); 2],
            [r.name(), r.original_name.as_str()],
            [r.namespace().unwrap_or(""), original_ns],
        ];
        for (pattern, either) in self.patterns.iter().zip(values) {
            if pattern
                .as_ref()
                .is_some_and(|p| !either.iter().any(|v| p.matches(v)))
            {
                return Ok(false);
            }
        }
        if let Some(ls) = &self.labels
            && !label_selector_matches(ls, &r.labels())?
        {
            return Ok(false);
        }
        match &self.annotations {
            Some(a) => label_selector_matches(a, &r.annotations()),
            None => Ok(true),
        }
    }
}

/// Kubernetes label selector syntax: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a)`,
/// `k`, `!k`, joined by commas.
fn label_selector_matches(selector: &str, labels: &Map<String, Value>) -> Result<bool, String> {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    let mut requirements = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                requirements.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    requirements.push(&selector[start..]);
    for req in requirements
        .iter()
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
    {
        let set = |rest: &str| -> Vec<String> {
            rest.trim()
                .trim_start_matches('(')
                .trim_end_matches(')')
                .split(',')
                .map(|s| s.trim().to_string())
                .collect()
        };
        let ok = if let Some((k, v)) = req.split_once("!=") {
            get(k.trim()) != Some(v.trim())
        } else if let Some((k, v)) = req.split_once("==").or_else(|| req.split_once('=')) {
            get(k.trim()) == Some(v.trim())
        } else if let Some((k, rest)) = req.split_once(" notin ") {
            get(k.trim()).is_none_or(|v| !set(rest).iter().any(|s| s == v))
        } else if let Some((k, rest)) = req.split_once(" in ") {
            get(k.trim()).is_some_and(|v| set(rest).iter().any(|s| s == v))
        } else if let Some(k) = req.strip_prefix('!') {
            get(k.trim()).is_none()
        } else if req
            .chars()
            .all(|c| c.is_alphanumeric() || "-_./".contains(c))
        {
            get(req).is_some()
        } else {
            return Err(format!("invalid selector requirement {req:?}"));
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A patch's text: inline or from a file.
fn patch_text(
    loader: &Loader<'_>,
    dir: &Path,
    kpath: &Path,
    p: &Patch,
    field: &str,
) -> Result<String, RenderError> {
    match (&p.path, &p.patch) {
        (Some(path), None) => loader.read_text(dir, path),
        (None, Some(text)) => Ok(text.clone()),
        _ => Err(RenderError::Field {
            path: kpath.to_path_buf(),
            field: field.into(),
            message: "exactly one of path and patch must be set".into(),
        }),
    }
}

fn parse_patch(text: &str, kpath: &Path, field: &str) -> Result<Vec<Value>, RenderError> {
    crate::yaml::kustomize_documents(text).map_err(|e| RenderError::Field {
        path: kpath.to_path_buf(),
        field: field.into(),
        message: e.to_string(),
    })
}

/// What a patch may change of its target's identity (`patches[].options`).
#[derive(Debug, Clone, Copy, Default)]
struct Renames {
    name: bool,
    kind: bool,
}

impl Renames {
    fn of(options: &std::collections::BTreeMap<String, bool>) -> Self {
        let on = |k: &str| options.get(k).copied().unwrap_or(false);
        Renames {
            name: on("allowNameChange"),
            kind: on("allowKindChange"),
        }
    }
}

/// Applies one strategic-merge patch document, to `target`-selected resources or to the
/// resource with the patch's own kind, name and namespace. A patch identifies what it
/// patches; it keeps the target's name, kind and namespace unless its options allow a
/// change of name or kind.
fn apply_smp(
    schema: &Schema,
    doc: &Map<String, Value>,
    target: Option<&Selector>,
    renames: Renames,
    res: &mut Vec<Resource>,
    kpath: &Path,
    field: &str,
) -> Result<(), RenderError> {
    let patch_res = Resource::new(doc.clone(), "");
    let err = |m: String| RenderError::Field {
        path: kpath.to_path_buf(),
        field: field.into(),
        message: m,
    };
    let compiled = target.map(Target::new).transpose().map_err(&err)?;
    let mut matched = Vec::new();
    for (i, r) in res.iter().enumerate() {
        let hit = match &compiled {
            Some(t) => t.matches(r).map_err(&err)?,
            None => {
                let pg = patch_res.gvk();
                r.kind() == patch_res.kind()
                    && r.gvk().group == pg.group
                    && r.has_had_id(patch_res.name(), patch_res.namespace())
            }
        };
        if hit {
            matched.push(i);
        }
    }
    if matched.is_empty() && target.is_none() {
        return Err(err(format!(
            "no resource matches the patch for {}",
            patch_res.describe()
        )));
    }
    let mut patch = doc.clone();
    if target.is_some() {
        // The target decides what is patched; the patch's own identity (kind, apiVersion,
        // name, namespace) is not applied.
        if !renames.kind {
            patch.remove("apiVersion");
            patch.remove("kind");
        }
        if let Some(Value::Object(meta)) = patch.get_mut("metadata") {
            if !renames.name {
                meta.remove("name");
            }
            meta.remove("namespace");
        }
    }
    let mut deleted = Vec::new();
    for i in matched {
        let r = &mut res[i];
        let gvk = r.gvk();
        let (name, namespace) = (r.name().to_string(), r.namespace().map(str::to_string));
        let (api_version, kind) = (r.obj.get("apiVersion").cloned(), r.obj.get("kind").cloned());
        if let Outcome::Delete = strategic_merge(
            schema,
            &mut r.obj,
            &patch,
            &gvk.group,
            &gvk.version,
            &gvk.kind,
        ) {
            deleted.push(i);
            continue;
        }
        if !renames.kind {
            for (k, v) in [("apiVersion", api_version), ("kind", kind)] {
                if let Some(v) = v {
                    r.obj.insert(k.into(), v);
                }
            }
        }
        // Put back what the merge overwrote (not a rename: no earlier id to remember).
        if let Some(Value::Object(meta)) = r.obj.get_mut("metadata") {
            if !renames.name {
                meta.insert("name".into(), Value::String(name));
            }
            match namespace {
                Some(ns) => meta.insert("namespace".into(), Value::String(ns)),
                None => meta.remove("namespace"),
            };
        }
    }
    for i in deleted.into_iter().rev() {
        res.remove(i);
    }
    Ok(())
}

fn apply_6902(
    ops: &[Value],
    target: &Selector,
    res: &mut [Resource],
    kpath: &Path,
    field: &str,
) -> Result<(), RenderError> {
    let err = |m: String| RenderError::Field {
        path: kpath.to_path_buf(),
        field: field.into(),
        message: m,
    };
    let target = Target::new(target).map_err(&err)?;
    for r in res.iter_mut() {
        if !target.matches(r).map_err(&err)? {
            continue;
        }
        let mut doc = Value::Object(std::mem::take(&mut r.obj));
        let result = json6902(&mut doc, ops);
        if let Value::Object(m) = doc {
            r.obj = m;
        }
        result.map_err(|m| RenderError::Object {
            path: kpath.to_path_buf(),
            object: r.describe(),
            message: format!("{field}: {m}"),
        })?;
    }
    Ok(())
}

/// `patchesStrategicMerge:` entries (files, or inline patches).
pub fn strategic_merge_entries(
    loader: &Loader<'_>,
    dir: &Path,
    kpath: &Path,
    entries: &[String],
    res: &mut Vec<Resource>,
) -> Result<(), RenderError> {
    for (i, entry) in entries.iter().enumerate() {
        let field = format!("patchesStrategicMerge[{i}]");
        let text = if entry.contains('\n') || entry.trim_start().starts_with('{') {
            entry.clone()
        } else {
            loader.read_text(dir, entry)?
        };
        for doc in parse_patch(&text, kpath, &field)? {
            if let Value::Object(m) = doc {
                apply_smp(
                    loader.schema()?,
                    &m,
                    None,
                    Renames::default(),
                    res,
                    kpath,
                    &field,
                )?;
            }
        }
    }
    Ok(())
}

/// `patches:` entries: strategic merge or JSON 6902 (a list of operations).
pub fn patches(
    loader: &Loader<'_>,
    dir: &Path,
    kpath: &Path,
    entries: &[Patch],
    res: &mut Vec<Resource>,
) -> Result<(), RenderError> {
    for (i, p) in entries.iter().enumerate() {
        let field = format!("patches[{i}]");
        let text = patch_text(loader, dir, kpath, p, &field)?;
        let docs = parse_patch(&text, kpath, &field)?;
        match docs.as_slice() {
            [Value::Array(ops)] => {
                let Some(target) = &p.target else {
                    return Err(RenderError::Field {
                        path: kpath.to_path_buf(),
                        field,
                        message: "a JSON 6902 patch needs a target".into(),
                    });
                };
                apply_6902(ops, target, res, kpath, &field)?;
            }
            _ => {
                for doc in &docs {
                    if let Value::Object(m) = doc {
                        let renames = Renames::of(&p.options);
                        apply_smp(
                            loader.schema()?,
                            m,
                            p.target.as_ref(),
                            renames,
                            res,
                            kpath,
                            &field,
                        )?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// `patchesJson6902:` entries.
pub fn json6902_entries(
    loader: &Loader<'_>,
    dir: &Path,
    kpath: &Path,
    entries: &[Patch],
    res: &mut [Resource],
) -> Result<(), RenderError> {
    for (i, p) in entries.iter().enumerate() {
        let field = format!("patchesJson6902[{i}]");
        let text = patch_text(loader, dir, kpath, p, &field)?;
        let ops = match parse_patch(&text, kpath, &field)?.into_iter().next() {
            Some(Value::Array(ops)) => ops,
            _ => {
                return Err(RenderError::Field {
                    path: kpath.to_path_buf(),
                    field,
                    message: "expected a list of JSON 6902 operations".into(),
                });
            }
        };
        let Some(target) = &p.target else {
            return Err(RenderError::Field {
                path: kpath.to_path_buf(),
                field,
                message: "target is required".into(),
            });
        };
        apply_6902(&ops, target, res, kpath, &field)?;
    }
    Ok(())
}
