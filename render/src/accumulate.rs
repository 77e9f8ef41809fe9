//! Walks a kustomization tree: resources, bases, generators, components, transformers —
//! in kustomize's order — and finishes at the root (hash suffixes, name references).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::buildmeta::{self, Configured, Tracking};
use super::config::{self, TransformerConfig};
use super::generators::{GeneratedKind, combine, generate};
use super::kustomization::Kustomization;
use super::loader::Loader;
use super::plugins::{self, Role};
use super::resource::{Behavior, Resource};
use super::{RenderError, Reorder, hash, helm, nameref, transform, vars};

/// What the root kustomization produced, before ordering.
pub struct Built {
    pub resources: Vec<Resource>,
    pub sort: Reorder,
    pub legacy_first: Vec<String>,
    pub legacy_last: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Kustomization,
    Component,
    /// The build's root: `kustomize build` takes a Component there too.
    Root,
}

/// How a kustomization is entered: as what, and with which origin (when build metadata
/// tracks origins).
struct Entered {
    expect: Expect,
    track: Option<Tracking>,
}

/// Builds the root kustomization in `root` (an absolute, canonical path).
pub fn build_root(loader: &Loader<'_>, root: &Path) -> Result<Built, RenderError> {
    let mut stack = Vec::new();
    let mut declared = Vec::new();
    let mut config = TransformerConfig::default();
    let (mut resources, k) = accumulate(
        loader,
        root,
        Vec::new(),
        Entered {
            expect: Expect::Root,
            track: None,
        },
        &mut stack,
        &mut declared,
        &mut config,
    )?;
    for r in resources.iter_mut().filter(|r| r.needs_hash) {
        let name = format!("{}-{}", r.name(), hash::suffix(&r.obj));
        r.set_name(&name);
    }
    nameref::fix(&mut resources, &config.name_reference).map_err(|message| {
        RenderError::Invalid {
            path: loader.kustomization_file(root),
            message,
        }
    })?;
    vars::resolve(&declared, &mut resources, &config.var_reference).map_err(|message| {
        RenderError::Field {
            path: loader.kustomization_file(root),
            field: "vars".into(),
            message,
        }
    })?;
    if !k.build_metadata.is_empty() {
        buildmeta::finish(&mut resources, buildmeta::Options::parse(&k.build_metadata));
    }
    let (mut sort, mut first, mut last) = (Reorder::Legacy, Vec::new(), Vec::new());
    if let Some(options) = &k.sort_options {
        match options.order.as_deref() {
            Some("fifo") => sort = Reorder::None,
            Some("legacy") | None => {}
            Some(other) => {
                return Err(RenderError::Field {
                    path: loader.kustomization_file(root),
                    field: "sortOptions.order".into(),
                    message: format!("unknown order {other:?} (legacy or fifo)"),
                });
            }
        }
        if let Some(legacy) = &options.legacy_sort_options {
            first = legacy.order_first.clone();
            last = legacy.order_last.clone();
        }
    }
    Ok(Built {
        resources,
        sort,
        legacy_first: first,
        legacy_last: last,
    })
}

fn accumulate(
    loader: &Loader<'_>,
    dir: &Path,
    input: Vec<Resource>,
    entered: Entered,
    stack: &mut Vec<PathBuf>,
    vars: &mut Vec<vars::Var>,
    config: &mut TransformerConfig,
) -> Result<(Vec<Resource>, Kustomization), RenderError> {
    let Entered { expect, track } = entered;
    if let Some(pos) = stack.iter().position(|d| d == dir) {
        let chain: Vec<String> = stack[pos..]
            .iter()
            .chain(std::iter::once(&dir.to_path_buf()))
            .map(|p| p.display().to_string())
            .collect();
        return Err(RenderError::Cycle {
            path: loader.kustomization_file(dir),
            chain: chain.join(" -> "),
        });
    }
    stack.push(dir.to_path_buf());
    let (k, kpath) = loader.load_kustomization(dir)?;
    // Origin tracking is on for the whole tree when the root asks for build metadata.
    let track = match track {
        None if stack.len() == 1 && !k.build_metadata.is_empty() => Some(Tracking::default()),
        t => t,
    }
    .map(|mut t| {
        t.file = kpath
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        t
    });
    check_kind(&k, &kpath, expect)?;
    check_supported(&k, &kpath)?;
    if let Some(field) = &k.openapi {
        super::openapi::apply_field(loader, dir, &kpath, field)?;
    }

    let mut res = input;
    let mut ids: HashSet<Id> = res.iter().map(id).collect();
    let mut parsed = parse_files_ahead(loader, dir, k.resources.iter().chain(&k.bases));
    for (i, entry) in k.resources.iter().chain(&k.bases).enumerate() {
        let resolved = loader.resolve(dir, entry, false)?;
        if loader.fs.is_dir(&resolved) {
            let mut sub_config = TransformerConfig::default();
            let (sub, _) = accumulate(
                loader,
                &resolved,
                Vec::new(),
                Entered {
                    expect: Expect::Kustomization,
                    track: track.as_ref().map(|t| t.child(entry)),
                },
                stack,
                vars,
                &mut sub_config,
            )?;
            merge_config(config, sub_config, &kpath)?;
            for r in sub {
                append(&mut res, &mut ids, r, &kpath)?;
            }
        } else {
            let path = loader.resolve(dir, entry, true)?;
            let mut loaded = match parsed.get_mut(i).and_then(Option::take) {
                Some(result) => {
                    let objects = result?;
                    loader.count_nodes(&path, &objects)?;
                    objects
                }
                None => load_resources(loader, &path)?,
            };
            if let Some(t) = &track {
                buildmeta::set_file_origin(&mut loaded, &t.file_origin(entry));
            }
            for r in loaded {
                append(&mut res, &mut ids, r, &kpath)?;
            }
        }
    }

    let custom = config::load_configurations(loader, dir, &kpath, &k.configurations)?;
    merge_config(config, custom, &kpath)?;
    let from_crds = config::load_crds(loader, dir, &kpath, &k.crds)?;
    merge_config(config, from_crds, &kpath)?;

    let global = k.generator_options.as_ref();
    let generated = k
        .config_map_generator
        .iter()
        .map(|a| (GeneratedKind::ConfigMap, a))
        .chain(
            k.secret_generator
                .iter()
                .map(|a| (GeneratedKind::Secret, a)),
        );
    for (kind, args) in generated {
        let mut r = generate(loader, dir, kind, args, global)?;
        if let Some(t) = &track {
            let by = match kind {
                GeneratedKind::ConfigMap => "ConfigMapGenerator",
                GeneratedKind::Secret => "SecretGenerator",
            };
            buildmeta::set_generated_origin(&mut r, &Configured::builtin(t, by));
        }
        add_generated(&mut res, &mut ids, r, &kpath)?;
    }
    if !k.helm_charts.is_empty() {
        let inflated = helm::inflate(loader, dir, &kpath, &k.helm_charts, k.helm_globals.as_ref())?;
        for mut r in inflated {
            if let Some(t) = &track {
                let by = Configured::builtin(t, "HelmChartInflationGenerator");
                buildmeta::set_generated_origin(&mut r, &by);
            }
            add_generated(&mut res, &mut ids, r, &kpath)?;
        }
    }
    if !k.generators.is_empty() {
        let configs = plugin_configs(
            loader,
            dir,
            &kpath,
            &k.generators,
            "generators",
            stack,
            track.as_ref(),
        )?;
        for (mut r, config) in plugins::generate_all(loader, dir, &kpath, &configs)? {
            if track.is_some()
                && let Some(by) = Configured::plugin(config)
            {
                buildmeta::set_generated_origin(&mut r, &by);
            }
            add_generated(&mut res, &mut ids, r, &kpath)?;
        }
    }

    for entry in &k.components {
        let resolved = loader.resolve(dir, entry, false)?;
        let (out, _) = accumulate(
            loader,
            &resolved,
            res,
            Entered {
                expect: Expect::Component,
                track: track.as_ref().map(|t| t.child(entry)),
            },
            stack,
            vars,
            config,
        )?;
        res = out;
    }

    transform::apply_all(loader, dir, &kpath, &k, &mut res, config)?;
    if let Some(t) = &track {
        // The built-ins only change resources, never add any, so recording them all once
        // they ran gives what recording each in turn gives.
        for kind in transform::configured(&k) {
            buildmeta::record(&mut res, &Configured::builtin(t, kind));
        }
    }
    for (entries, field, role) in [
        (&k.transformers, "transformers", Role::Transformer),
        (&k.validators, "validators", Role::Validator),
    ] {
        if !entries.is_empty() {
            let configs =
                plugin_configs(loader, dir, &kpath, entries, field, stack, track.as_ref())?;
            plugins::transform_all(loader, dir, &kpath, &configs, &mut res, role)?;
            if track.is_some() && role == Role::Transformer {
                for by in configs.iter().filter_map(Configured::plugin) {
                    buildmeta::record(&mut res, &by);
                }
            }
        }
    }
    vars::merge(&k.vars, &mut res, vars).map_err(|message| RenderError::Field {
        path: kpath.clone(),
        field: "vars".into(),
        message,
    })?;
    stack.pop();
    Ok((res, k))
}

fn merge_config(
    into: &mut TransformerConfig,
    other: TransformerConfig,
    kpath: &Path,
) -> Result<(), RenderError> {
    if other.is_empty() {
        return Ok(());
    }
    into.merge(other).map_err(|message| RenderError::Field {
        path: kpath.to_path_buf(),
        field: "configurations".into(),
        message,
    })
}

fn check_kind(k: &Kustomization, path: &Path, expect: Expect) -> Result<(), RenderError> {
    let kind = k.kind.as_deref().unwrap_or("Kustomization");
    let ok = match expect {
        Expect::Kustomization => kind == "Kustomization",
        Expect::Component => kind == "Component",
        Expect::Root => kind == "Kustomization" || kind == "Component",
    };
    if ok {
        return Ok(());
    }
    let want = match expect {
        Expect::Kustomization => "Kustomization",
        Expect::Component => "Component",
        Expect::Root => "Kustomization or Component",
    };
    Err(RenderError::Field {
        path: path.to_path_buf(),
        field: "kind".into(),
        message: format!("expected kind {want}, got {kind}"),
    })
}

/// Fields this renderer does not implement yet fail loudly instead of being ignored.
fn check_supported(k: &Kustomization, path: &Path) -> Result<(), RenderError> {
    if k.helm_chart_inflation_generator.is_empty() {
        return Ok(());
    }
    Err(RenderError::Unsupported {
        path: path.to_path_buf(),
        field: "helmChartInflationGenerator (use helmCharts)".into(),
    })
}

/// The plugin configurations a `generators:`/`transformers:`/`validators:` list names:
/// inline YAML, files, or kustomization directories (built, and their output used).
fn plugin_configs(
    loader: &Loader<'_>,
    dir: &Path,
    kpath: &Path,
    entries: &[Value],
    field: &str,
    stack: &mut Vec<PathBuf>,
    track: Option<&Tracking>,
) -> Result<Vec<Resource>, RenderError> {
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Value::String(entry) = entry else {
            return Err(RenderError::Field {
                path: kpath.to_path_buf(),
                field: format!("{field}[{i}]"),
                message: "expected a file or directory path, or an inline configuration (a string)"
                    .into(),
            });
        };
        // An entry that reads as YAML mappings is an inline configuration.
        if let Ok(docs) = crate::yaml::kustomize_documents(entry)
            && !docs.is_empty()
            && docs.iter().all(Value::is_object)
        {
            for doc in docs {
                if let Value::Object(obj) = doc {
                    let mut r = Resource::new(obj, &kpath.display().to_string());
                    if let Some(t) = track {
                        buildmeta::set_file_origin(
                            std::slice::from_mut(&mut r),
                            &format!("path: {}\n", t.configured_in()),
                        );
                    }
                    out.push(r);
                }
            }
            continue;
        }
        let resolved = loader.resolve(dir, entry, false)?;
        if loader.fs.is_dir(&resolved) {
            let (mut vars, mut config) = (Vec::new(), TransformerConfig::default());
            let (sub, _) = accumulate(
                loader,
                &resolved,
                Vec::new(),
                Entered {
                    expect: Expect::Kustomization,
                    track: track.map(|t| t.child(entry)),
                },
                stack,
                &mut vars,
                &mut config,
            )?;
            let source = loader.kustomization_file(&resolved).display().to_string();
            out.extend(sub.into_iter().map(|mut r| {
                r.source = source.clone();
                r
            }));
        } else {
            let path = loader.resolve(dir, entry, true)?;
            let mut loaded = load_resources(loader, &path)?;
            if let Some(t) = track {
                buildmeta::set_file_origin(&mut loaded, &t.file_origin(entry));
            }
            out.extend(loaded);
        }
    }
    Ok(out)
}

/// Reads the resource files among `entries` and parses them in parallel (the CPU-heavy
/// part of loading large trees), indexed like `entries`; directories are `None`. Reading
/// stays sequential and in order (it records what was read and applies the load
/// restrictor); any problem resolving or reading leaves the rest to the sequential path,
/// which reports it at its place in the order.
fn parse_files_ahead<'a>(
    loader: &Loader<'_>,
    dir: &Path,
    entries: impl Iterator<Item = &'a String>,
) -> Vec<Option<Result<Vec<Resource>, RenderError>>> {
    use rayon::prelude::*;
    let mut texts: Vec<Option<(PathBuf, String)>> = Vec::new();
    for entry in entries {
        let Ok(resolved) = loader.resolve(dir, entry, false) else {
            break;
        };
        if loader.fs.is_dir(&resolved) {
            texts.push(None);
            continue;
        }
        let Ok(path) = loader.resolve(dir, entry, true) else {
            break;
        };
        let Ok(text) = loader.read_path(&path) else {
            break;
        };
        texts.push(Some((path, text)));
    }
    // Waking the other threads costs more than reading a few small files.
    const PARALLEL_FROM: usize = 128 * 1024;
    let bytes: usize = texts.iter().flatten().map(|(_, text)| text.len()).sum();
    if texts.iter().flatten().count() < 2 || bytes < PARALLEL_FROM {
        return Vec::new();
    }
    texts
        .par_iter()
        .map(|t| t.as_ref().map(|(path, text)| parse_resources(text, path)))
        .collect()
}

/// Reads the objects of a resource file (flattening `List`s).
pub fn load_resources(loader: &Loader<'_>, path: &Path) -> Result<Vec<Resource>, RenderError> {
    let text = loader.read_path(path)?;
    let objects = parse_resources(&text, path)?;
    loader.count_nodes(path, &objects)?;
    Ok(objects)
}

/// The objects of a YAML stream read from `path` (flattening `List`s).
pub fn parse_resources(text: &str, path: &Path) -> Result<Vec<Resource>, RenderError> {
    let docs = crate::yaml::kustomize_documents(text).map_err(|e| RenderError::Yaml {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let source = path.display().to_string();
    let mut out = Vec::new();
    for doc in docs {
        let Value::Object(obj) = doc else {
            return Err(RenderError::Invalid {
                path: path.to_path_buf(),
                message: "a document is not a mapping".into(),
            });
        };
        let is_list = obj
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"))
            && obj.get("items").is_some_and(Value::is_array);
        if is_list {
            for item in obj
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Value::Object(o) = item {
                    out.push(checked(Resource::new(o.clone(), &source), path)?);
                }
            }
        } else {
            out.push(checked(Resource::new(obj, &source), path)?);
        }
    }
    Ok(out)
}

fn checked(r: Resource, path: &Path) -> Result<Resource, RenderError> {
    if r.kind().is_empty() {
        return Err(RenderError::Object {
            path: path.to_path_buf(),
            object: r.describe(),
            message: "missing kind".into(),
        });
    }
    if r.name().is_empty() {
        return Err(RenderError::Object {
            path: path.to_path_buf(),
            object: r.describe(),
            message: "missing metadata.name".into(),
        });
    }
    Ok(r)
}

/// What makes a resource unique in a render: group, version, kind, namespace, name.
type Id = (super::resource::Gvk, Option<String>, String);

fn id(r: &Resource) -> Id {
    (
        r.gvk(),
        r.namespace().map(str::to_string),
        r.name().to_string(),
    )
}

fn append(
    res: &mut Vec<Resource>,
    ids: &mut HashSet<Id>,
    r: Resource,
    kpath: &Path,
) -> Result<(), RenderError> {
    if !ids.insert(id(&r)) {
        return Err(RenderError::Object {
            path: kpath.to_path_buf(),
            object: r.describe(),
            message: format!(
                "may not add resource with an already registered id (from {})",
                r.source
            ),
        });
    }
    res.push(r);
    Ok(())
}

fn add_generated(
    res: &mut Vec<Resource>,
    ids: &mut HashSet<Id>,
    r: Resource,
    kpath: &Path,
) -> Result<(), RenderError> {
    match r.behavior.unwrap_or(Behavior::Create) {
        Behavior::Create => append(res, ids, r, kpath),
        Behavior::Merge | Behavior::Replace => {
            let target = res.iter_mut().find(|x| {
                x.kind() == r.kind()
                    && (x.original_name == r.name() || x.name() == r.name())
                    && (r.namespace().is_none() || x.namespace() == r.namespace())
            });
            match target {
                Some(existing) => {
                    combine(existing, r);
                    Ok(())
                }
                None => Err(RenderError::Object {
                    path: kpath.to_path_buf(),
                    object: r.describe(),
                    message: "cannot merge or replace: no such resource in the bases".into(),
                }),
            }
        }
    }
}
