//! The kustomization file: its fields, read strictly (an unknown field is an error, as in
//! kustomize).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The file names kustomize accepts, in the order it looks for them.
pub const FILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// A `kustomization.yaml` (kinds `Kustomization` and `Component`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Kustomization {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub metadata: Option<Value>,
    pub resources: Vec<String>,
    pub bases: Vec<String>,
    pub components: Vec<String>,
    pub namespace: Option<String>,
    pub name_prefix: Option<String>,
    pub name_suffix: Option<String>,
    pub common_labels: BTreeMap<String, String>,
    pub labels: Vec<Labels>,
    pub common_annotations: BTreeMap<String, String>,
    pub config_map_generator: Vec<GeneratorArgs>,
    pub secret_generator: Vec<GeneratorArgs>,
    pub generator_options: Option<GeneratorOptions>,
    pub images: Vec<Image>,
    pub replicas: Vec<Replica>,
    pub patches: Vec<Patch>,
    pub patches_strategic_merge: Vec<String>,
    pub patches_json6902: Vec<Patch>,
    pub replacements: Vec<Value>,
    pub vars: Vec<super::vars::Var>,
    pub crds: Vec<String>,
    pub openapi: Option<Value>,
    pub configurations: Vec<String>,
    pub generators: Vec<Value>,
    pub transformers: Vec<Value>,
    pub validators: Vec<Value>,
    pub sort_options: Option<SortOptions>,
    pub build_metadata: Vec<String>,
    pub helm_charts: Vec<Value>,
    pub helm_globals: Option<Value>,
    pub helm_chart_inflation_generator: Vec<Value>,
}

/// One entry of `labels:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Labels {
    pub pairs: BTreeMap<String, String>,
    pub include_selectors: bool,
    pub include_templates: bool,
    pub fields: Vec<super::config::Spec>,
}

/// A `configMapGenerator` or `secretGenerator` entry.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct GeneratorArgs {
    pub name: String,
    pub namespace: Option<String>,
    pub behavior: Option<String>,
    pub literals: Vec<String>,
    pub files: Vec<String>,
    pub envs: Vec<String>,
    pub env: Option<String>,
    pub options: Option<GeneratorOptions>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
}

/// `generatorOptions` (global) or a generator's own `options`.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct GeneratorOptions {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub disable_name_suffix_hash: Option<bool>,
    pub immutable: Option<bool>,
}

/// An `images:` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Image {
    pub name: String,
    pub new_name: Option<String>,
    pub new_tag: Option<String>,
    pub digest: Option<String>,
    pub tag_suffix: Option<String>,
}

/// A `replicas:` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Replica {
    pub name: String,
    pub count: i64,
}

/// A `patches:` or `patchesJson6902:` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Patch {
    pub path: Option<String>,
    pub patch: Option<String>,
    pub target: Option<Selector>,
    pub options: BTreeMap<String, bool>,
}

/// Which resources a patch applies to.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Selector {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
    pub annotation_selector: Option<String>,
}

/// `sortOptions`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SortOptions {
    pub order: Option<String>,
    pub legacy_sort_options: Option<LegacySortOptions>,
}

/// `sortOptions.legacySortOptions`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct LegacySortOptions {
    pub order_first: Vec<String>,
    pub order_last: Vec<String>,
}
