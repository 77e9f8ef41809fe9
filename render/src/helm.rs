//! `helmCharts:` inflated by an external `helm` binary (`helm template`), as kustomize does
//! with `--enable-helm`, for charts already in the chart home (`charts/` by default).
//!
//! Rendering never touches the network, so a chart is never pulled: vendor it into the
//! chart home (`helm pull --untar --untardir charts/ …`). The binary is `$KEELSON_HELM`
//! when set, else `helm` on `PATH`; without one, a `helmCharts` field is an error.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::RenderError;
use super::loader::Loader;
use super::resource::Resource;
use super::tool;

/// One `helmCharts:` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct HelmChart {
    name: String,
    version: String,
    repo: String,
    release_name: String,
    namespace: String,
    name_template: String,
    additional_values_files: Vec<String>,
    values_file: String,
    values_inline: Map<String, Value>,
    values_merge: String,
    #[serde(rename = "includeCRDs")]
    include_crds: bool,
    skip_hooks: bool,
    skip_tests: bool,
    api_versions: Vec<String>,
    kube_version: String,
    debug: bool,
}

/// `helmGlobals`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct HelmGlobals {
    chart_home: String,
    config_home: String,
}

/// The `helm` binary to run, if any.
pub fn helm_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KEELSON_HELM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| d.join("helm"))
        .find(|p| p.is_file())
}

/// Inflates the kustomization's charts, in order.
pub fn inflate(
    loader: &Loader<'_>,
    dir: &Path,
    kpath: &Path,
    charts: &[Value],
    globals: Option<&Value>,
) -> Result<Vec<Resource>, RenderError> {
    let field_err = |field: String, message: String| RenderError::Field {
        path: kpath.to_path_buf(),
        field,
        message,
    };
    let globals: HelmGlobals = match globals {
        Some(g) => serde_json::from_value(g.clone())
            .map_err(|e| field_err("helmGlobals".into(), e.to_string()))?,
        None => HelmGlobals::default(),
    };
    let mut out = Vec::new();
    for (i, chart) in charts.iter().enumerate() {
        let field = format!("helmCharts[{i}]");
        let chart: HelmChart = serde_json::from_value(chart.clone())
            .map_err(|e| field_err(field.clone(), e.to_string()))?;
        let err = |m: String| field_err(format!("{field} ({})", chart.name), m);
        if chart.name.is_empty() {
            return Err(field_err(field, "chart name cannot be empty".into()));
        }
        let Some(helm) = helm_binary() else {
            return Err(err(
                "helmCharts needs the `helm` binary (on PATH, or KEELSON_HELM), and none was found"
                    .into(),
            ));
        };
        let home = if globals.chart_home.is_empty() {
            "charts"
        } else {
            globals.chart_home.as_str()
        };
        let mut chart_home = if Path::new(home).is_absolute() {
            PathBuf::from(home)
        } else {
            dir.join(home)
        };
        if !chart.version.is_empty() && !chart.repo.is_empty() {
            chart_home = chart_home.join(format!("{}-{}", chart.name, chart.version));
        }
        let chart_dir = chart_home.join(&chart.name);
        if !loader.fs.is_dir(&chart_dir) {
            return Err(err(if chart.repo.is_empty() {
                format!(
                    "no repo specified for pull, no chart found at '{}'",
                    chart_dir.display()
                )
            } else {
                format!(
                    "chart not found at '{}'; keelson renders without network access and does not pull charts: vendor it with `helm pull --untar --untardir {} {}{}`",
                    chart_dir.display(),
                    chart_home.display(),
                    if chart.repo.starts_with("oci://") {
                        format!("{}/{}", chart.repo.trim_end_matches('/'), chart.name)
                    } else {
                        format!("--repo {} {}", chart.repo, chart.name)
                    },
                    if chart.version.is_empty() {
                        String::new()
                    } else {
                        format!(" --version {}", chart.version)
                    }
                )
            }));
        }
        // The chart is read by helm, not by us: read it through the file system anyway so
        // the render records (and the root-only restrictor checks) every file it uses.
        let chart_rel = chart_dir
            .strip_prefix(dir)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| chart_dir.display().to_string());
        loader.resolve(dir, &chart_rel, true)?;
        record_tree(loader, &chart_dir, 0)?;
        let values = values(loader, dir, &chart, &chart_dir).map_err(&err)?;
        // Every value the repository chooses goes in `--flag=value` form and the
        // positionals after `--`: none of them can become a flag of its own (a release
        // named `--post-renderer=…` would run a command).
        if !chart.release_name.is_empty() && !tool::is_dns_label(&chart.release_name, 53) {
            return Err(field_err(
                format!("{field}.releaseName"),
                format!(
                    "{:?} is not a valid release name (lowercase letters, digits and '-', at most 53)",
                    chart.release_name
                ),
            ));
        }
        if !chart.namespace.is_empty() && !tool::is_dns_label(&chart.namespace, 63) {
            return Err(field_err(
                format!("{field}.namespace"),
                format!("{:?} is not a valid namespace name", chart.namespace),
            ));
        }
        let mut args: Vec<String> = vec!["template".into()];
        if chart.release_name.is_empty() {
            args.push("--generate-name".into());
        }
        if !chart.namespace.is_empty() {
            args.push(format!("--namespace={}", chart.namespace));
        }
        if !chart.name_template.is_empty() {
            args.push(format!("--name-template={}", chart.name_template));
        }
        // The (merged) values go through stdin: nothing is written to disk.
        args.push("--values=-".into());
        for file in &chart.additional_values_files {
            loader.read_text(dir, file)?;
            args.push(format!(
                "--values={}",
                on_disk(loader, &dir.join(file)).map_err(&err)?
            ));
        }
        for v in &chart.api_versions {
            args.push(format!("--api-versions={v}"));
        }
        if !chart.kube_version.is_empty() {
            args.push(format!("--kube-version={}", chart.kube_version));
        }
        for (on, flag) in [
            (chart.include_crds, "--include-crds"),
            (chart.skip_tests, "--skip-tests"),
            (chart.skip_hooks, "--no-hooks"),
            (chart.debug, "--debug"),
        ] {
            if on {
                args.push(flag.into());
            }
        }
        args.push("--".into());
        if !chart.release_name.is_empty() {
            args.push(chart.release_name.clone());
        }
        args.push(on_disk(loader, &chart_dir).map_err(&err)?);
        let stdout = run(&helm, &args, &values, &globals.config_home).map_err(&err)?;
        let source = chart_dir.join("templates");
        let objects = super::accumulate::parse_resources(&stdout, &source)?;
        loader.count_nodes(&source, &objects)?;
        out.extend(objects);
    }
    Ok(out)
}

/// `path` as helm finds it on disk (a git tree writes itself out for it).
fn on_disk(loader: &Loader<'_>, path: &Path) -> Result<String, String> {
    loader
        .fs
        .on_disk(path)
        .map(|p| p.display().to_string())
        .map_err(|e| format!("helm reads {} itself: {e}", path.display()))
}

/// Reads every file under `dir` (charts are small; this records them as read).
fn record_tree(loader: &Loader<'_>, dir: &Path, depth: usize) -> Result<(), RenderError> {
    if depth > 32 {
        return Ok(());
    }
    let entries = loader.fs.read_dir(dir).map_err(|e| RenderError::Io {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    for entry in entries {
        if loader.fs.is_dir(&entry) {
            record_tree(loader, &entry, depth + 1)?;
        } else if loader.fs.is_file(&entry) {
            loader.fs.read(&entry).map_err(|e| RenderError::Io {
                path: entry.clone(),
                message: e.to_string(),
            })?;
        }
    }
    Ok(())
}

/// The chart's values file combined with `valuesInline` per `valuesMerge` (override:
/// inline wins; merge: the file wins; replace: inline only).
fn values(
    loader: &Loader<'_>,
    dir: &Path,
    chart: &HelmChart,
    chart_dir: &Path,
) -> Result<String, String> {
    let file = if chart.values_file.is_empty() {
        chart_dir.join("values.yaml")
    } else {
        dir.join(&chart.values_file)
    };
    let from_file = if loader.fs.is_file(&file) {
        let text = loader.read_path(&file).map_err(|e| e.to_string())?;
        match crate::yaml::documents(&text)
            .map_err(|e| format!("{}: {e}", file.display()))?
            .into_iter()
            .next()
        {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        }
    } else if chart.values_file.is_empty() {
        Map::new()
    } else {
        return Err(format!("values file '{}' not found", file.display()));
    };
    let merged = match chart.values_merge.as_str() {
        "" | "override" => deep_merge(from_file, &chart.values_inline),
        "merge" => deep_merge(chart.values_inline.clone(), &from_file),
        "replace" if !chart.values_inline.is_empty() => chart.values_inline.clone(),
        "replace" => from_file,
        other => {
            return Err(format!(
                "valuesMerge must be one of [override replace merge], got {other:?}"
            ));
        }
    };
    serde_json::to_string(&Value::Object(merged)).map_err(|e| e.to_string())
}

/// `over`'s values win; maps merge key by key.
fn deep_merge(mut base: Map<String, Value>, over: &Map<String, Value>) -> Map<String, Value> {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(Value::Object(b)), Value::Object(o)) => {
                let merged = deep_merge(std::mem::take(b), o);
                *b = merged;
            }
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    base
}

/// `helm template …`: a cleared environment (helm's own homes only, when configured), the
/// tool deadline, the values on stdin.
fn run(helm: &Path, args: &[String], values: &str, config_home: &str) -> Result<String, String> {
    let mut env: Vec<(&str, std::ffi::OsString)> = Vec::new();
    if !config_home.is_empty() {
        env.push(("HELM_CONFIG_HOME", config_home.into()));
        env.push(("HELM_CACHE_HOME", format!("{config_home}/.cache").into()));
        env.push(("HELM_DATA_HOME", format!("{config_home}/.data").into()));
    }
    let out = tool::run(helm, args, values.as_bytes(), &env, tool::TIMEOUT)?;
    String::from_utf8(out).map_err(|_| format!("'{}' printed invalid UTF-8", helm.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inline_values_override_the_file_key_by_key() {
        let Value::Object(file) = json!({"a": {"b": 1, "c": 2}, "d": 3}) else {
            panic!()
        };
        let Value::Object(inline) = json!({"a": {"b": 9}}) else {
            panic!()
        };
        assert_eq!(
            Value::Object(deep_merge(file, &inline)),
            json!({"a": {"b": 9, "c": 2}, "d": 3})
        );
    }
}
