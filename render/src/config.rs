//! Custom transformer configuration: the field specs that `configurations:` files and
//! `crds:` (OpenAPI definitions with kustomize's `x-kubernetes-*` annotations) add to the
//! built-in ones, for namePrefix, namespace, labels, annotations, images, replicas, name
//! references and var references.
//!
//! The built-in specs stay in the transformers themselves; this holds only what a tree
//! adds. As in kustomize, a kustomization's config is merged into its parent's (so a
//! parent's transformers see what its bases declared), a spec that an existing one already
//! covers is dropped, and the same field with a different `create` is an error.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::RenderError;
use super::fieldspec::{annotation_specs, label_specs};
use super::loader::Loader;
use super::resource::{Gvk, Resource};

/// A field spec as kustomize writes it: which resources (group/version/kind, empty = any)
/// and a slash-separated path (`[]` marks a list, lists are entered either way).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Spec {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub path: String,
    #[serde(rename = "create")]
    pub create: bool,
}

impl Spec {
    /// Whether this spec's gvk selects resources of `gvk`.
    pub fn selects(&self, gvk: &Gvk) -> bool {
        (self.group.is_empty() || self.group == gvk.group)
            && (self.version.is_empty() || self.version == gvk.version)
            && (self.kind.is_empty() || self.kind == gvk.kind)
    }

    /// Whether this spec applies to `r` (kustomize selects by the original id; group,
    /// version and kind never change in a render).
    pub fn applies_to(&self, r: &Resource) -> bool {
        self.selects(&r.gvk())
    }

    /// The path with kustomize's `[]` list markers removed, as `fieldspec` walks it.
    pub fn walk_path(&self) -> String {
        self.path.replace("[]", "")
    }

    fn gvk(&self) -> Gvk {
        Gvk {
            group: self.group.clone(),
            version: self.version.clone(),
            kind: self.kind.clone(),
        }
    }
}

/// A `nameReference` entry: fields (`fieldSpecs`) that hold the name of a `kind` object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NameRef {
    pub group: String,
    pub version: String,
    pub kind: String,
    #[serde(rename = "fieldSpecs")]
    pub referrers: Vec<Spec>,
}

/// The field specs a tree adds (kustomize's `TransformerConfig`, minus the defaults).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct TransformerConfig {
    pub name_prefix: Vec<Spec>,
    pub name_suffix: Vec<Spec>,
    pub namespace: Vec<Spec>,
    pub common_labels: Vec<Spec>,
    pub labels: Vec<Spec>,
    pub template_labels: Vec<Spec>,
    pub common_annotations: Vec<Spec>,
    pub name_reference: Vec<NameRef>,
    pub var_reference: Vec<Spec>,
    pub images: Vec<Spec>,
    pub replicas: Vec<Spec>,
}

fn builtin(kind: Option<&str>, path: &str, create: bool) -> Spec {
    Spec {
        kind: kind.unwrap_or("").to_string(),
        path: path.to_string(),
        create,
        ..Spec::default()
    }
}

fn from_static(specs: &[super::fieldspec::FieldSpec]) -> Vec<Spec> {
    specs
        .iter()
        .map(|s| Spec {
            group: s.group.unwrap_or("").to_string(),
            kind: s.kind.unwrap_or("").to_string(),
            path: s.path.to_string(),
            create: s.create,
            ..Spec::default()
        })
        .collect()
}

/// The built-in specs a custom one is checked against (duplicates and conflicts).
fn defaults(field: &str) -> Vec<Spec> {
    match field {
        "namePrefix" | "nameSuffix" => vec![builtin(None, "metadata/name", false)],
        "namespace" => vec![
            builtin(Some("Namespace"), "metadata/name", true),
            builtin(Some("APIService"), "spec/service/namespace", true),
            builtin(
                Some("CustomResourceDefinition"),
                "spec/conversion/webhook/clientConfig/service/namespace",
                false,
            ),
        ],
        "commonLabels" => from_static(&label_specs(true, true)),
        "templateLabels" => from_static(&label_specs(false, true))
            .into_iter()
            .filter(|s| s.path != "metadata/labels")
            .collect(),
        "commonAnnotations" => from_static(&annotation_specs()),
        "images" => [
            "spec/containers[]/image",
            "spec/initContainers[]/image",
            "spec/template/spec/containers[]/image",
            "spec/template/spec/initContainers[]/image",
        ]
        .iter()
        .map(|p| builtin(None, p, true))
        .collect(),
        "replicas" => [
            "Deployment",
            "ReplicationController",
            "ReplicaSet",
            "StatefulSet",
        ]
        .iter()
        .map(|k| builtin(Some(k), "spec/replicas", true))
        .collect(),
        _ => Vec::new(),
    }
}

/// Adds `new` to `list` unless a spec there (or a built-in one) already covers it.
fn merge_one(list: &mut Vec<Spec>, new: Spec, field: &str) -> Result<(), String> {
    let gvk = new.gvk();
    let existing = defaults(field)
        .into_iter()
        .chain(list.iter().cloned())
        .find(|s| s.selects(&gvk) && s.path == new.path);
    match existing {
        Some(s) if s.create != new.create => Err(format!(
            "{field}: conflicting fieldspecs for path {} (create {} and {})",
            new.path, s.create, new.create
        )),
        Some(_) => Ok(()),
        None => {
            list.push(new);
            Ok(())
        }
    }
}

impl TransformerConfig {
    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.name_prefix.is_empty()
            && self.name_suffix.is_empty()
            && self.namespace.is_empty()
            && self.common_labels.is_empty()
            && self.labels.is_empty()
            && self.template_labels.is_empty()
            && self.common_annotations.is_empty()
            && self.name_reference.is_empty()
            && self.var_reference.is_empty()
            && self.images.is_empty()
            && self.replicas.is_empty()
    }

    /// Merges `other` into this config.
    pub fn merge(&mut self, other: TransformerConfig) -> Result<(), String> {
        let lists = [
            (&mut self.name_prefix, other.name_prefix, "namePrefix"),
            (&mut self.name_suffix, other.name_suffix, "nameSuffix"),
            (&mut self.namespace, other.namespace, "namespace"),
            (&mut self.common_labels, other.common_labels, "commonLabels"),
            (&mut self.labels, other.labels, "labels"),
            (
                &mut self.template_labels,
                other.template_labels,
                "templateLabels",
            ),
            (
                &mut self.common_annotations,
                other.common_annotations,
                "commonAnnotations",
            ),
            (&mut self.var_reference, other.var_reference, "varReference"),
            (&mut self.images, other.images, "images"),
            (&mut self.replicas, other.replicas, "replicas"),
        ];
        for (list, new, field) in lists {
            for spec in new {
                merge_one(list, spec, field)?;
            }
        }
        for nr in other.name_reference {
            let same = self
                .name_reference
                .iter_mut()
                .find(|x| x.group == nr.group && x.version == nr.version && x.kind == nr.kind);
            match same {
                Some(x) => {
                    for spec in nr.referrers {
                        merge_one(&mut x.referrers, spec, "nameReference")?;
                    }
                }
                None => self.name_reference.push(nr),
            }
        }
        Ok(())
    }
}

/// Reads the `configurations:` files of a kustomization.
pub fn load_configurations(
    loader: &Loader<'_>,
    dir: &Path,
    kpath: &Path,
    paths: &[String],
) -> Result<TransformerConfig, RenderError> {
    let mut out = TransformerConfig::default();
    for entry in paths {
        let file = loader.resolve(dir, entry, true)?;
        let text = loader.read_path(&file)?;
        let doc = crate::yaml::kustomize_documents(&text)
            .map_err(|e| RenderError::Yaml {
                path: file.clone(),
                message: e.to_string(),
            })?
            .into_iter()
            .next()
            .unwrap_or(Value::Object(Map::new()));
        let doc = if doc.is_null() {
            Value::Object(Map::new())
        } else {
            doc
        };
        let config: TransformerConfig =
            serde_json::from_value(doc).map_err(|e| RenderError::Invalid {
                path: file.clone(),
                message: format!("not a transformer configuration: {e}"),
            })?;
        out.merge(config).map_err(|message| RenderError::Field {
            path: kpath.to_path_buf(),
            field: format!("configurations ({entry})"),
            message,
        })?;
    }
    Ok(out)
}

/// Reads the `crds:` files of a kustomization: maps of OpenAPI definitions
/// (`{NAME: {Schema: …}}`) whose properties carry `x-kubernetes-annotation`,
/// `x-kubernetes-label-selector`, `x-kubernetes-identity` and
/// `x-kubernetes-object-ref-{api-version,kind,name-key}`.
pub fn load_crds(
    loader: &Loader<'_>,
    dir: &Path,
    kpath: &Path,
    paths: &[String],
) -> Result<TransformerConfig, RenderError> {
    let mut out = TransformerConfig::default();
    for entry in paths {
        let file = loader.resolve(dir, entry, true)?;
        let text = loader.read_path(&file)?;
        let invalid = |message: String| RenderError::Invalid {
            path: file.clone(),
            message: format!("unable to parse open API definition: {message}"),
        };
        let doc: Value = if text.starts_with('{') {
            serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?
        } else {
            crate::yaml::kustomize_documents(&text)
                .map_err(|e| invalid(e.to_string()))?
                .into_iter()
                .next()
                .unwrap_or(Value::Null)
        };
        let defs = match doc {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            _ => {
                return Err(invalid(
                    "expected a map of type names to definitions".into(),
                ));
            }
        };
        let config = crd_config(&defs).map_err(invalid)?;
        out.merge(config).map_err(|message| RenderError::Field {
            path: kpath.to_path_buf(),
            field: format!("crds ({entry})"),
            message,
        })?;
    }
    Ok(out)
}

fn crd_config(defs: &Map<String, Value>) -> Result<TransformerConfig, String> {
    let mut out = TransformerConfig::default();
    for (name, def) in defs {
        if !def.is_object() {
            return Err(format!("{name}: a definition must be a map"));
        }
        let props = properties(def);
        let is_kind = ["kind", "apiVersion", "metadata"]
            .iter()
            .all(|k| props.is_some_and(|p| p.contains_key(*k)));
        if !is_kind {
            continue;
        }
        // The kind is the last dot-separated part of the type name.
        let kind = name.rsplit('.').next().unwrap_or(name).to_string();
        let mut one = TransformerConfig::default();
        walk_crd(&mut one, &kind, defs, name, &mut Vec::new(), 0)?;
        out.merge(one)?;
    }
    Ok(out)
}

fn properties(def: &Value) -> Option<&Map<String, Value>> {
    def.get("Schema")?.get("properties")?.as_object()
}

fn walk_crd(
    out: &mut TransformerConfig,
    kind: &str,
    defs: &Map<String, Value>,
    type_name: &str,
    path: &mut Vec<String>,
    depth: usize,
) -> Result<(), String> {
    if depth > 64 {
        return Ok(());
    }
    let Some(props) = defs.get(type_name).and_then(properties) else {
        return Ok(());
    };
    for (prop, schema) in props {
        let ext = |k: &str| schema.get(k).and_then(Value::as_str);
        path.push(prop.clone());
        let spec = |p: &[String]| Spec {
            kind: kind.to_string(),
            path: p.join("/"),
            ..Spec::default()
        };
        if ext("x-kubernetes-annotation").is_some() {
            merge_one(&mut out.common_annotations, spec(path), "commonAnnotations")?;
        }
        if ext("x-kubernetes-label-selector").is_some() {
            merge_one(&mut out.common_labels, spec(path), "commonLabels")?;
        }
        if ext("x-kubernetes-identity").is_some() {
            merge_one(&mut out.name_prefix, spec(path), "namePrefix")?;
        }
        if let (Some(version), Some(target)) = (
            ext("x-kubernetes-object-ref-api-version"),
            ext("x-kubernetes-object-ref-kind"),
        ) {
            let key = ext("x-kubernetes-object-ref-name-key").unwrap_or("name");
            let mut p = path.clone();
            p.push(key.to_string());
            out.merge(TransformerConfig {
                name_reference: vec![NameRef {
                    kind: target.to_string(),
                    version: version.to_string(),
                    referrers: vec![spec(&p)],
                    ..NameRef::default()
                }],
                ..TransformerConfig::default()
            })?;
        }
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            walk_crd(out, kind, defs, r, path, depth + 1)?;
        }
        path.pop();
    }
    Ok(())
}
