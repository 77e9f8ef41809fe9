//! The render stage: kustomize-style overlays to objects, natively.
//!
//! Output is byte-identical to `kustomize build` (v5.5.0) for the features implemented
//! here; see `engine/tests/kustomize_diff.rs` for the differential suite. Rendering is
//! pure: it reads through a [`FileSystem`], records every file read, and touches neither
//! the network nor a cluster.

mod accumulate;
mod fieldspec;
pub mod fs;
mod generators;
mod hash;
pub mod kustomization;
mod loader;
mod nameref;
mod order;
mod patch;
mod resource;
mod transform;

use std::path::{Path, PathBuf};

pub use fs::{DiskFs, FileSystem};
pub use resource::Resource;

/// Whether files outside a kustomization's directory may be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadRestrictor {
    /// Only files under the kustomization's own directory (kustomize's default).
    #[default]
    RootOnly,
    /// Any file.
    None,
}

/// Output order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reorder {
    /// kustomize's legacy kind order (Namespaces first, webhooks last).
    #[default]
    Legacy,
    /// The order resources were loaded in.
    None,
}

/// How to render.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderOptions {
    /// Which files may be read.
    pub load_restrictor: LoadRestrictor,
    /// Output order; `None` defers to the kustomization's `sortOptions`.
    pub reorder: Option<Reorder>,
}

/// The result of a render.
#[derive(Debug)]
pub struct Rendered {
    /// The objects, in output order.
    pub objects: Vec<serde_json::Map<String, serde_json::Value>>,
    /// Every file the render read, sorted.
    pub files_read: Vec<PathBuf>,
}

impl Rendered {
    /// The objects as `kustomize build` prints them.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        for (i, obj) in self.objects.iter().enumerate() {
            if i > 0 {
                out.push_str("---\n");
            }
            out.push_str(&crate::yaml::emit::document(&serde_json::Value::Object(
                obj.clone(),
            )));
        }
        out
    }
}

/// A render failed; every variant names the file (and field or object) concerned.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{}: unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization'", dir.display())]
    NoKustomization { dir: PathBuf },
    #[error("{}: {message}", path.display())]
    Yaml { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{}: field {field}: {message}", path.display())]
    Field {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("{}: '{entry}' is a remote target; fetch it with a git source (--repo/--ref) instead", path.display())]
    Remote { path: PathBuf, entry: String },
    #[error("{}: '{entry}' not found: {message}", path.display())]
    Missing {
        path: PathBuf,
        entry: String,
        message: String,
    },
    #[error("{}: '{entry}' is outside '{}' (load restrictor LoadRestrictionsRootOnly; use --load-restrictor LoadRestrictionsNone to allow)", path.display(), root.display())]
    Restricted {
        path: PathBuf,
        entry: String,
        root: PathBuf,
    },
    #[error("{}: cycle: {chain}", path.display())]
    Cycle { path: PathBuf, chain: String },
    #[error("{}: {object}: {message}", path.display())]
    Object {
        path: PathBuf,
        object: String,
        message: String,
    },
    #[error("{}: field {field} is not supported by keelson's native renderer yet", path.display())]
    Unsupported { path: PathBuf, field: String },
}

/// Renders the kustomization in `dir`.
pub fn build(
    fs: &dyn FileSystem,
    dir: &Path,
    options: RenderOptions,
) -> Result<Rendered, RenderError> {
    let recording = fs::Recording::new(fs);
    let loader = loader::Loader {
        fs: &recording,
        restrictor: options.load_restrictor,
    };
    let root = fs.canonicalize(dir).map_err(|e| RenderError::Io {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let built = accumulate::build_root(&loader, &root)?;
    let mut resources = built.resources;
    let reorder = options.reorder.unwrap_or(built.sort);
    if reorder == Reorder::Legacy {
        order::legacy_sort(&mut resources, &built.legacy_first, &built.legacy_last);
    }
    Ok(Rendered {
        objects: resources.into_iter().map(|r| r.obj).collect(),
        files_read: recording.files_read(),
    })
}
