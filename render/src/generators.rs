//! configMapGenerator and secretGenerator.

use std::path::Path;

use base64::Engine;
use serde_json::{Map, Value};

use super::RenderError;
use super::kustomization::{GeneratorArgs, GeneratorOptions};
use super::loader::Loader;
use super::resource::{Behavior, Resource};

/// Which generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneratedKind {
    ConfigMap,
    Secret,
}

/// Builds the object one generator entry describes.
pub fn generate(
    loader: &Loader<'_>,
    dir: &Path,
    kind: GeneratedKind,
    args: &GeneratorArgs,
    global: Option<&GeneratorOptions>,
) -> Result<Resource, RenderError> {
    let field = match kind {
        GeneratedKind::ConfigMap => "configMapGenerator",
        GeneratedKind::Secret => "secretGenerator",
    };
    let at = |msg: String| RenderError::Field {
        path: loader.kustomization_file(dir),
        field: format!("{field}[{}]", args.name),
        message: msg,
    };
    let mut pairs: Vec<(String, String, bool)> = Vec::new(); // (key, value, is_binary)
    let mut envs: Vec<&String> = args.envs.iter().collect();
    if let Some(env) = &args.env {
        envs.push(env);
    }
    for env in envs {
        let text = loader.read_text(dir, env)?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_start_matches('\u{feff}');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let (k, v) = match line.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None if loader.env_lookups == crate::EnvLookups::Refused => {
                    return Err(at(format!(
                        "{env}:{}: {:?} has no '=': its value would come from the engine's environment, which keelson serve does not read",
                        n + 1,
                        line.trim()
                    )));
                }
                None => (line.to_string(), std::env::var(line).unwrap_or_default()),
            };
            if k.trim().is_empty() || k.contains(char::is_whitespace) {
                return Err(at(format!(
                    "{env}:{}: invalid key {k:?} in env file",
                    n + 1
                )));
            }
            pairs.push((k, v, false));
        }
    }
    for literal in &args.literals {
        let Some((k, v)) = literal.split_once('=') else {
            return Err(at(format!("literal {literal:?} is not KEY=VALUE")));
        };
        pairs.push((k.to_string(), unquote(v).to_string(), false));
    }
    for file in &args.files {
        let (key, path) = match file.split_once('=') {
            Some((k, p)) => {
                if k.is_empty() {
                    return Err(at(format!("file {file:?} has an empty key")));
                }
                (k.to_string(), p)
            }
            None => {
                let base = Path::new(file)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (base, file.as_str())
            }
        };
        let bytes = loader.read_bytes(dir, path)?;
        match String::from_utf8(bytes) {
            Ok(text) => pairs.push((key, text, false)),
            Err(e) => pairs.push((
                key,
                base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
                true,
            )),
        }
    }

    let mut data = Map::new();
    let mut binary = Map::new();
    for (k, v, is_binary) in pairs {
        if data.contains_key(&k) || binary.contains_key(&k) {
            return Err(at(format!("duplicate key {k:?}")));
        }
        let v = match kind {
            GeneratedKind::Secret if !is_binary => {
                base64::engine::general_purpose::STANDARD.encode(v.as_bytes())
            }
            _ => v,
        };
        if is_binary && kind == GeneratedKind::ConfigMap {
            binary.insert(k, Value::String(v));
        } else {
            data.insert(k, Value::String(v));
        }
    }

    let mut obj = Map::new();
    obj.insert("apiVersion".into(), Value::String("v1".into()));
    let kind_name = match kind {
        GeneratedKind::ConfigMap => "ConfigMap",
        GeneratedKind::Secret => "Secret",
    };
    obj.insert("kind".into(), Value::String(kind_name.into()));
    let mut meta = Map::new();
    meta.insert("name".into(), Value::String(args.name.clone()));
    if let Some(ns) = args.namespace.as_ref().filter(|ns| !ns.is_empty()) {
        meta.insert("namespace".into(), Value::String(ns.clone()));
    }
    let options = merge_options(global, args.options.as_ref());
    if !options.labels.is_empty() {
        meta.insert("labels".into(), string_map(&options.labels));
    }
    if !options.annotations.is_empty() {
        meta.insert("annotations".into(), string_map(&options.annotations));
    }
    obj.insert("metadata".into(), Value::Object(meta));
    if kind == GeneratedKind::Secret {
        obj.insert(
            "type".into(),
            Value::String(args.type_.clone().unwrap_or_else(|| "Opaque".into())),
        );
    }
    if !data.is_empty() {
        obj.insert("data".into(), Value::Object(data));
    }
    if !binary.is_empty() {
        obj.insert("binaryData".into(), Value::Object(binary));
    }
    if options.immutable == Some(true) {
        obj.insert("immutable".into(), Value::Bool(true));
    }
    let mut res = Resource::new(obj, &loader.kustomization_file(dir).display().to_string());
    res.needs_hash = options.disable_name_suffix_hash != Some(true);
    res.behavior = Some(match args.behavior.as_deref().unwrap_or("create") {
        "" | "create" => Behavior::Create,
        "merge" => Behavior::Merge,
        "replace" => Behavior::Replace,
        other => return Err(at(format!("unknown behavior {other:?}"))),
    });
    Ok(res)
}

/// Per-generator options override the global ones key by key.
fn merge_options(
    global: Option<&GeneratorOptions>,
    own: Option<&GeneratorOptions>,
) -> GeneratorOptions {
    let mut merged = global.cloned().unwrap_or_default();
    if let Some(own) = own {
        merged.labels.extend(own.labels.clone());
        merged.annotations.extend(own.annotations.clone());
        if own.disable_name_suffix_hash.is_some() {
            merged.disable_name_suffix_hash = own.disable_name_suffix_hash;
        }
        if own.immutable.is_some() {
            merged.immutable = own.immutable;
        }
    }
    merged
}

fn string_map(m: &std::collections::BTreeMap<String, String>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// kustomize strips one pair of matching quotes around a literal's value.
fn unquote(v: &str) -> &str {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// Combines a generated resource with an existing one of the same name (merge/replace).
pub fn combine(existing: &mut Resource, generated: Resource) {
    let behavior = generated.behavior.unwrap_or(Behavior::Create);
    for field in ["data", "binaryData"] {
        let new = generated.obj.get(field).and_then(Value::as_object).cloned();
        match behavior {
            Behavior::Replace => {
                existing.obj.remove(field);
                if let Some(new) = new {
                    existing.obj.insert(field.into(), Value::Object(new));
                }
            }
            _ => {
                if let Some(new) = new {
                    let entry = existing
                        .obj
                        .entry(field)
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(m) = entry {
                        m.extend(new);
                    }
                }
            }
        }
    }
    for field in ["labels", "annotations"] {
        let new = generated
            .obj
            .get("metadata")
            .and_then(|m| m.get(field))
            .and_then(Value::as_object)
            .cloned();
        if let Some(new) = new {
            let meta = existing.metadata_mut();
            let entry = meta
                .entry(field)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = entry {
                // Build annotations (origin, transformations) stay those of the resource
                // merged into.
                for (k, v) in new {
                    let build =
                        k == super::buildmeta::ORIGIN || k == super::buildmeta::TRANSFORMATIONS;
                    if !(build && m.contains_key(&k)) {
                        m.insert(k, v);
                    }
                }
            }
        }
    }
    if let (Some(t), Behavior::Replace) = (generated.obj.get("type"), behavior) {
        existing.obj.insert("type".into(), t.clone());
    }
    // The hash follows the object being merged into: a plain resource from a base stays
    // unhashed.
}
