//! The render stage: the pure renderer of `keelson-render`, and [`target`], the one entry
//! point that renders a target whichever renderer it asks for.

use std::path::{Path, PathBuf};

pub use keelson_render::*;

use crate::config::{Renderer, Target};

/// Renders `target` of the repository at `root`, read through `fs` (a directory or a git
/// tree), with the renderer the target asks for:
/// - `native`: this crate's renderer (helmCharts run `helm` on the tree as written out
///   by [`FileSystem::on_disk`]);
/// - `kustomize`: the external binary (`$KEELSON_KUSTOMIZE`, else `kustomize` on `PATH`)
///   on the tree as written out by [`FileSystem::on_disk`].
///
/// `files_read` of an external render is what the native renderer reads for the same
/// kustomization (the files kustomize reads, where the two agree), or every file of the
/// tree when the native renderer cannot read it: a change to any of them renders again.
pub fn target(
    fs: &dyn FileSystem,
    root: &Path,
    target: &Target,
    options: RenderOptions,
) -> Result<Rendered, RenderError> {
    let dir = root.join(&target.path);
    match target.renderer {
        Renderer::Native => build(fs, &dir, options),
        Renderer::Kustomize => {
            let objects = external_kustomize(fs, &dir)?;
            options.budget.check_objects(&dir, objects.len())?;
            let files_read = match build(fs, &dir, options) {
                Ok(native) => native.files_read,
                Err(_) => every_file(fs, root),
            };
            Ok(Rendered {
                objects,
                files_read,
            })
        }
    }
}

/// `kustomize build` of `dir`, parsed.
fn external_kustomize(
    fs: &dyn FileSystem,
    dir: &Path,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, RenderError> {
    let fail = |message: String| RenderError::External {
        path: dir.to_path_buf(),
        tool: "kustomize build".into(),
        message,
    };
    let on_disk = fs.on_disk(dir).map_err(|e| fail(e.to_string()))?;
    let bin = std::env::var_os("KEELSON_KUSTOMIZE")
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "kustomize".into());
    // The child sees no more of the engine's environment than it needs to run, and the
    // directory comes after `--`.
    let args = [
        "build".to_string(),
        "--".to_string(),
        on_disk.display().to_string(),
    ];
    let stdout = crate::render::tool::run(
        std::path::Path::new(&bin),
        &args,
        b"",
        &[],
        crate::render::tool::TIMEOUT,
    )
    .map_err(fail)?;
    let text = String::from_utf8_lossy(&stdout);
    let docs = crate::yaml::documents(&text).map_err(|e| fail(e.to_string()))?;
    Ok(docs
        .into_iter()
        .filter_map(|d| match d {
            serde_json::Value::Object(m) => Some(m),
            _ => None,
        })
        .collect())
}

/// Every regular file under `root`, sorted (a conservative record of what a render read).
fn every_file(fs: &dyn FileSystem, root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs.read_dir(&dir).unwrap_or_default() {
            if entry.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            let link = fs.is_symlink(&entry).ok().flatten().unwrap_or(false);
            if fs.is_dir(&entry) {
                // A linked directory may lead back up: its files are found where it leads.
                if !link {
                    stack.push(entry);
                }
            } else if fs.is_file(&entry) {
                out.push(entry);
            }
        }
    }
    out.sort();
    out
}
