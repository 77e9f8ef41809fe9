//! The `generators:`, `transformers:` and `validators:` fields: configurations of
//! kustomize's built-in plugins (`apiVersion: builtin`), run with exactly the field specs
//! they give. External plugins are refused, as kustomize refuses them without
//! `--enable-alpha-plugins`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::config::Spec;
use super::generators::{GeneratedKind, generate};
use super::kustomization::{GeneratorArgs, Image, Patch, Selector};
use super::loader::Loader;
use super::resource::Resource;
use super::transform::{CLUSTER_SCOPED, add_pairs_custom, images, set_strings};
use super::{RenderError, hash, patch, replacements};

/// Which list a plugin configuration was named in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Generator,
    Transformer,
    Validator,
}

const GENERATORS: &[&str] = &[
    "ConfigMapGenerator",
    "SecretGenerator",
    "HelmChartInflationGenerator",
    "IAMPolicyGenerator",
];

const TRANSFORMERS: &[&str] = &[
    "AnnotationsTransformer",
    "HashTransformer",
    "ImageTagTransformer",
    "LabelTransformer",
    "NamespaceTransformer",
    "PatchJson6902Transformer",
    "PatchStrategicMergeTransformer",
    "PatchTransformer",
    "PrefixSuffixTransformer",
    "PrefixTransformer",
    "ReplacementTransformer",
    "ReplicaCountTransformer",
    "SuffixTransformer",
    "ValueAddTransformer",
];

/// A plugin configuration and where it was read.
struct Config<'a> {
    r: &'a Resource,
    file: PathBuf,
}

impl Config<'_> {
    fn kind(&self) -> &str {
        self.r.kind()
    }

    fn err(&self, message: impl Into<String>) -> RenderError {
        RenderError::Object {
            path: self.file.clone(),
            object: format!("{}/{}", self.r.kind(), self.r.name()),
            message: message.into(),
        }
    }

    fn parse<T: for<'de> Deserialize<'de>>(&self) -> Result<T, RenderError> {
        serde_json::from_value(Value::Object(self.r.obj.clone()))
            .map_err(|e| self.err(format!("plugin fails configuration: {e}")))
    }
}

/// Checks that `r` configures a built-in plugin usable in `role`.
fn check<'a>(r: &'a Resource, role: Role, kpath: &Path) -> Result<Config<'a>, RenderError> {
    let file = if r.source.is_empty() {
        kpath.to_path_buf()
    } else {
        PathBuf::from(&r.source)
    };
    let c = Config { r, file };
    let gvk = r.gvk();
    if !(gvk.group.is_empty() && gvk.version == "builtin") {
        return Err(c.err(format!(
            "external plugins disabled; unable to load external plugin '{}' (keelson runs only the built-in ones, apiVersion: builtin)",
            gvk.kind
        )));
    }
    let generator = GENERATORS.contains(&gvk.kind.as_str());
    let transformer = TRANSFORMERS.contains(&gvk.kind.as_str());
    if !generator && !transformer {
        return Err(c.err(format!(
            "unable to load builtin {}: no such plugin",
            gvk.kind
        )));
    }
    match role {
        Role::Generator if !generator => Err(c.err("plugin is not a generator")),
        Role::Transformer | Role::Validator if !transformer => {
            Err(c.err("plugin is not a transformer"))
        }
        _ => Ok(c),
    }
}

/// Runs generator configurations; returns what they generate (to be added with their
/// behavior).
pub fn generate_all<'a>(
    loader: &Loader<'_>,
    dir: &Path,
    kpath: &Path,
    configs: &'a [Resource],
) -> Result<Vec<(Resource, &'a Resource)>, RenderError> {
    let mut out = Vec::new();
    for r in configs {
        let c = check(r, Role::Generator, kpath)?;
        let kind = match c.kind() {
            "ConfigMapGenerator" => GeneratedKind::ConfigMap,
            "SecretGenerator" => GeneratedKind::Secret,
            "HelmChartInflationGenerator" => {
                return Err(c.err(
                    "HelmChartInflationGenerator as a generator config is not supported; use the helmCharts field",
                ));
            }
            other => {
                return Err(c.err(format!(
                    "{other} is not supported by keelson's native renderer"
                )));
            }
        };
        out.push((generate(loader, dir, kind, &generator_args(&c)?, None)?, r));
    }
    Ok(out)
}

/// A generator config is a `configMapGenerator` entry with its name (and namespace) in
/// `metadata` unless given at the top level.
fn generator_args(c: &Config<'_>) -> Result<GeneratorArgs, RenderError> {
    const KEYS: [&str; 9] = [
        "name",
        "namespace",
        "behavior",
        "literals",
        "files",
        "envs",
        "env",
        "options",
        "type",
    ];
    let picked: Map<String, Value> =
        c.r.obj
            .iter()
            .filter(|(k, _)| KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    let mut args: GeneratorArgs = serde_json::from_value(Value::Object(picked))
        .map_err(|e| c.err(format!("plugin fails configuration: {e}")))?;
    if args.name.is_empty() {
        args.name = c.r.name().to_string();
    }
    if args.namespace.as_deref().unwrap_or("").is_empty() {
        args.namespace = c.r.namespace().map(str::to_string);
    }
    Ok(args)
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct PairsConfig {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    field_specs: Option<Vec<Spec>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct AffixConfig {
    prefix: String,
    suffix: String,
    field_specs: Option<Vec<Spec>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct NamespaceConfig {
    metadata: NamespaceMeta,
    field_specs: Vec<Spec>,
    unset_only: bool,
    set_role_binding_subjects: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NamespaceMeta {
    namespace: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ImageConfig {
    image_tag: Image,
    field_specs: Vec<Spec>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ReplicaConfig {
    replica: ReplicaSpec,
    field_specs: Vec<Spec>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ReplicaSpec {
    name: String,
    count: i64,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct PatchConfig {
    path: Option<String>,
    patch: Option<String>,
    target: Option<Selector>,
    options: BTreeMap<String, bool>,
    /// PatchStrategicMergeTransformer.
    paths: Vec<String>,
    patches: Option<String>,
    /// PatchJson6902Transformer.
    json_op: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ReplacementConfig {
    replacements: Vec<Value>,
}

/// Runs transformer configurations over `res`, in order.
pub fn transform_all(
    loader: &Loader<'_>,
    dir: &Path,
    kpath: &Path,
    configs: &[Resource],
    res: &mut Vec<Resource>,
    role: Role,
) -> Result<(), RenderError> {
    for r in configs {
        let c = check(r, role, kpath)?;
        if role == Role::Validator {
            // A validator may only look: run it on a copy and refuse any change.
            let mut copy = res.clone();
            transform_one(loader, dir, &c, &mut copy)?;
            let same =
                copy.len() == res.len() && copy.iter().zip(res.iter()).all(|(a, b)| a.obj == b.obj);
            if !same {
                return Err(c.err("validator shouldn't modify the resource map"));
            }
            continue;
        }
        transform_one(loader, dir, &c, res)?;
    }
    Ok(())
}

fn transform_one(
    loader: &Loader<'_>,
    dir: &Path,
    c: &Config<'_>,
    res: &mut Vec<Resource>,
) -> Result<(), RenderError> {
    let file = c.file.as_path();
    match c.kind() {
        "LabelTransformer" | "AnnotationsTransformer" => {
            let cfg: PairsConfig = c.parse()?;
            let pairs = if c.kind() == "LabelTransformer" {
                &cfg.labels
            } else {
                &cfg.annotations
            };
            add_pairs_custom(res, cfg.field_specs.as_deref().unwrap_or_default(), pairs);
        }
        "PrefixTransformer" | "SuffixTransformer" | "PrefixSuffixTransformer" => {
            let cfg: AffixConfig = c.parse()?;
            let Some(specs) = cfg.field_specs else {
                return Err(c.err("fieldSpecs is not expected to be nil"));
            };
            // PrefixSuffixTransformer is the prefix then the suffix plugin, one config.
            if c.kind() != "SuffixTransformer" {
                affix_names(res, &specs, &cfg.prefix, true);
            }
            if c.kind() != "PrefixTransformer" {
                affix_names(res, &specs, &cfg.suffix, false);
            }
        }
        "NamespaceTransformer" => {
            let cfg: NamespaceConfig = c.parse()?;
            namespace(res, &cfg).map_err(|m| c.err(m))?;
        }
        "ImageTagTransformer" => {
            let cfg: ImageConfig = c.parse()?;
            for r in res.iter_mut() {
                images(&mut r.obj, &cfg.image_tag);
                let gvk = r.gvk();
                for spec in cfg.field_specs.iter().filter(|s| s.selects(&gvk)) {
                    super::fieldspec::for_each_field_creating(
                        &mut r.obj,
                        &spec.walk_path(),
                        false,
                        &mut |v| {
                            if let Value::String(current) = v
                                && let Some(updated) =
                                    super::transform::update_image(current, &cfg.image_tag)
                            {
                                *current = updated;
                            }
                        },
                    );
                }
            }
        }
        "ReplicaCountTransformer" => {
            let cfg: ReplicaConfig = c.parse()?;
            replicas(res, &cfg).map_err(|m| c.err(m))?;
        }
        "PatchTransformer" => {
            let cfg: PatchConfig = c.parse()?;
            let p = Patch {
                path: cfg.path,
                patch: cfg.patch,
                target: cfg.target,
                options: cfg.options,
            };
            patch::patches(loader, dir, file, std::slice::from_ref(&p), res)?;
        }
        "PatchStrategicMergeTransformer" => {
            let cfg: PatchConfig = c.parse()?;
            let mut entries = cfg.paths;
            if let Some(inline) = cfg.patches.filter(|p| !p.trim().is_empty()) {
                // Inline patches are one YAML stream; the entry reader takes text as is.
                entries.push(if inline.contains('\n') {
                    inline
                } else {
                    format!("{inline}\n")
                });
            }
            if entries.is_empty() {
                return Err(c.err("empty file path and empty patch content"));
            }
            patch::strategic_merge_entries(loader, dir, file, &entries, res)?;
        }
        "PatchJson6902Transformer" => {
            let cfg: PatchConfig = c.parse()?;
            let p = Patch {
                path: cfg.path,
                patch: cfg.json_op,
                target: cfg.target,
                options: BTreeMap::new(),
            };
            patch::json6902_entries(loader, dir, file, std::slice::from_ref(&p), res)?;
        }
        "ReplacementTransformer" => {
            let cfg: ReplacementConfig = c.parse()?;
            replacements::apply(loader, dir, file, &cfg.replacements, res)?;
        }
        "HashTransformer" => {
            // kustomize leaves the resources marked: the root appends a second hash.
            for r in res.iter_mut().filter(|r| r.needs_hash) {
                let name = format!("{}-{}", r.name(), hash::suffix(&r.obj));
                r.set_name(&name);
            }
        }
        other => {
            return Err(c.err(format!(
                "{other} is not supported by keelson's native renderer"
            )));
        }
    }
    Ok(())
}

/// Kinds whose names are fixed by the API: a prefix or suffix never applies to them.
fn fixed_name(r: &Resource) -> bool {
    let gvk = r.gvk();
    matches!(gvk.kind.as_str(), "CustomResourceDefinition" | "Namespace")
        || (gvk.kind == "APIService" && gvk.group == "apiregistration.k8s.io")
}

fn affix_names(res: &mut [Resource], specs: &[Spec], affix: &str, prefix: bool) {
    let join = |v: &str| {
        if prefix {
            format!("{affix}{v}")
        } else {
            format!("{v}{affix}")
        }
    };
    for r in res.iter_mut().filter(|r| !fixed_name(r)) {
        let gvk = r.gvk();
        for spec in specs.iter().filter(|s| s.selects(&gvk)) {
            if spec.path == "metadata/name" {
                let name = join(r.name());
                r.set_name(&name);
            } else {
                set_strings(r, std::slice::from_ref(spec), &mut |v| join(v));
            }
        }
    }
}

fn namespace(res: &mut [Resource], cfg: &NamespaceConfig) -> Result<(), String> {
    let ns = cfg.metadata.namespace.as_str();
    if ns.is_empty() {
        return Ok(());
    }
    let mode = cfg.set_role_binding_subjects.as_str();
    if !matches!(mode, "" | "defaultOnly" | "none" | "allServiceAccounts") {
        return Err(format!(
            "invalid value {mode:?} for setRoleBindingSubjects: must be one of \"defaultOnly\", \"none\" or \"allServiceAccounts\""
        ));
    }
    for r in res.iter_mut() {
        let kind = r.kind().to_string();
        let v1 = r.obj.get("apiVersion").and_then(Value::as_str) == Some("v1");
        let keep_set = cfg.unset_only && r.namespace().is_some();
        if !CLUSTER_SCOPED.contains(&kind.as_str()) && !keep_set {
            r.set_namespace(ns);
        }
        let binding = matches!(kind.as_str(), "RoleBinding" | "ClusterRoleBinding");
        if binding && let Some(Value::Array(subjects)) = r.obj.get_mut("subjects") {
            for s in subjects.iter_mut().filter_map(Value::as_object_mut) {
                let hit = match mode {
                    "" | "defaultOnly" => s.get("name").and_then(Value::as_str) == Some("default"),
                    "allServiceAccounts" => {
                        s.get("kind").and_then(Value::as_str) == Some("ServiceAccount")
                    }
                    _ => false,
                };
                let empty = s
                    .get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty();
                if hit && (!cfg.unset_only || empty) {
                    s.insert("namespace".into(), Value::String(ns.to_string()));
                }
            }
        }
        let gvk = r.gvk();
        for spec in cfg.field_specs.iter().filter(|s| s.selects(&gvk)) {
            let path = spec.walk_path();
            if path == "metadata/namespace"
                || (path == "metadata/name" && !v1)
                || (binding && path == "subjects/namespace")
            {
                continue;
            }
            if path == "metadata/name" {
                if !cfg.unset_only || r.name().is_empty() {
                    r.set_name(ns);
                }
                continue;
            }
            let unset_only = cfg.unset_only;
            super::fieldspec::for_each_field_creating(&mut r.obj, &path, spec.create, &mut |v| {
                let empty = match v {
                    Value::Null => true,
                    Value::String(s) => s.is_empty(),
                    _ => false,
                };
                if !unset_only || empty {
                    *v = Value::String(ns.to_string());
                }
            });
        }
    }
    Ok(())
}

fn replicas(res: &mut [Resource], cfg: &ReplicaConfig) -> Result<(), String> {
    let mut found = false;
    for spec in &cfg.field_specs {
        for r in res.iter_mut() {
            let named = r.name() == cfg.replica.name
                || r.original_name == cfg.replica.name
                || r.previous.iter().any(|(n, _)| *n == cfg.replica.name);
            if !named || !spec.selects(&r.gvk()) {
                continue;
            }
            found = true;
            super::fieldspec::for_each_field_creating(
                &mut r.obj,
                &spec.walk_path(),
                spec.create,
                &mut |v| *v = Value::from(cfg.replica.count),
            );
        }
    }
    if !found {
        let gvks: Vec<String> = cfg
            .field_specs
            .iter()
            .map(|s| format!("{}/{}/{}", s.group, s.version, s.kind))
            .collect();
        return Err(format!(
            "resource with name {} does not match a config with the following GVK [{}]",
            cfg.replica.name,
            gvks.join(" ")
        ));
    }
    Ok(())
}
