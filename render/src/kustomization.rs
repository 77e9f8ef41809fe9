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
    #[serde(deserialize_with = "nullable")]
    pub resources: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub bases: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub components: Vec<String>,
    pub namespace: Option<String>,
    pub name_prefix: Option<String>,
    pub name_suffix: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub common_labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub labels: Vec<Labels>,
    #[serde(deserialize_with = "nullable")]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub config_map_generator: Vec<GeneratorArgs>,
    #[serde(deserialize_with = "nullable")]
    pub secret_generator: Vec<GeneratorArgs>,
    pub generator_options: Option<GeneratorOptions>,
    #[serde(deserialize_with = "nullable")]
    pub images: Vec<Image>,
    #[serde(deserialize_with = "nullable")]
    pub replicas: Vec<Replica>,
    #[serde(deserialize_with = "nullable")]
    pub patches: Vec<Patch>,
    #[serde(deserialize_with = "nullable")]
    pub patches_strategic_merge: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub patches_json6902: Vec<Patch>,
    #[serde(deserialize_with = "nullable")]
    pub replacements: Vec<Value>,
    #[serde(deserialize_with = "nullable")]
    pub vars: Vec<super::vars::Var>,
    #[serde(deserialize_with = "nullable")]
    pub crds: Vec<String>,
    pub openapi: Option<Value>,
    #[serde(deserialize_with = "nullable")]
    pub configurations: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub generators: Vec<Value>,
    #[serde(deserialize_with = "nullable")]
    pub transformers: Vec<Value>,
    #[serde(deserialize_with = "nullable")]
    pub validators: Vec<Value>,
    pub sort_options: Option<SortOptions>,
    #[serde(deserialize_with = "nullable")]
    pub build_metadata: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub helm_charts: Vec<Value>,
    pub helm_globals: Option<Value>,
    #[serde(deserialize_with = "nullable")]
    pub helm_chart_inflation_generator: Vec<Value>,
}

/// A list or map left null (every entry commented out, as kubebuilder's scaffolds leave
/// them) reads as empty, the way Go's encoding/json reads null into a slice or a map.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
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
