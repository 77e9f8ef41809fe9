//! Keelson's renderer: kustomize-style overlays to objects, natively, and the YAML
//! boundary every Keelson crate reads and writes through.
//!
//! Output is byte-identical to `kustomize build` (v5.5.0) for the features implemented
//! here; see `engine/tests/kustomize_diff.rs` for the differential suite. Rendering is
//! pure: it reads through a [`FileSystem`], records every file read, and touches neither
//! the network nor a cluster (this crate depends on no Kubernetes, git or async client).

mod accumulate;
mod buildmeta;
mod config;
mod fieldspec;
pub mod fs;
mod generators;
mod hash;
mod helm;
pub mod kustomization;
mod loader;
mod nameref;
mod openapi;
mod order;
pub use order::install_rank;
mod patch;
mod plugins;
mod replacements;
mod resource;
mod smp;
pub mod tool;
mod transform;
mod vars;
pub mod yaml;

use std::path::{Path, PathBuf};

pub use fs::{DiskFs, FileSystem, MemFs};
pub use hash::go_json;
pub use loader::MAX_FILE_BYTES;
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

/// Where an env file's bare `KEY` line (no `=`) takes its value from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EnvLookups {
    /// The process environment, as `kustomize build` does on a laptop.
    #[default]
    Process,
    /// Nowhere: a bare key is an error. `keelson serve` renders this way, so a repository
    /// cannot copy the engine's environment into a ConfigMap.
    Refused,
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
    /// Env files' bare keys.
    pub env_lookups: EnvLookups,
    /// What one render may consume.
    pub budget: Budget,
}

/// What one render may consume; past it the render fails, naming the budget. Unlimited by
/// default (kustomize has none); `keelson serve` sets the operator's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Bytes of files read, over every file of the render.
    pub bytes: u64,
    /// Objects rendered.
    pub objects: usize,
    /// YAML nodes parsed (every scalar, sequence and mapping), over every file of the
    /// render: what bounds its memory, which bytes do not (a short line can be a node).
    pub nodes: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            bytes: u64::MAX,
            objects: usize::MAX,
            nodes: usize::MAX,
        }
    }
}

impl Budget {
    /// Fails when `objects` (rendered from `path`) are over the budget.
    pub fn check_objects(&self, path: &Path, objects: usize) -> Result<(), RenderError> {
        if objects > self.objects {
            return Err(RenderError::Budget {
                path: path.to_path_buf(),
                what: "objects",
                limit: self.objects as u64,
            });
        }
        Ok(())
    }
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
        self.yaml_chunks().concat()
    }

    /// The same text in pieces, to write out one after the other without joining them.
    pub fn yaml_chunks(&self) -> Vec<String> {
        use rayon::prelude::*;
        // Documents are emitted independently, in parallel chunks, kept in order.
        self.objects
            .par_chunks(8)
            .enumerate()
            .map(|(n, objects)| {
                let mut out = String::with_capacity(16 * 1024);
                for (i, obj) in objects.iter().enumerate() {
                    if n > 0 || i > 0 {
                        out.push_str("---\n");
                    }
                    crate::yaml::emit::mapping_document(obj, &mut out);
                }
                out
            })
            .collect()
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
    #[error("{}: {tool}: {message}", path.display())]
    External {
        path: PathBuf,
        tool: String,
        message: String,
    },
    #[error("{}: the render is over its budget of {limit} {what} (a limit set by the engine's operator)", path.display())]
    Budget {
        path: PathBuf,
        what: &'static str,
        limit: u64,
    },
}

/// Applies a strategic merge patch to `target`, an object of `group`/`kind`, as the
/// renderer's patches do; returns false when the patch deletes the object.
pub fn strategic_merge(
    target: &mut serde_json::Map<String, serde_json::Value>,
    patch: &serde_json::Map<String, serde_json::Value>,
    group: &str,
    kind: &str,
) -> bool {
    let version = target
        .get("apiVersion")
        .and_then(serde_json::Value::as_str)
        .and_then(|v| v.rsplit('/').next())
        .unwrap_or("")
        .to_string();
    matches!(
        smp::strategic_merge(smp::Schema::builtin(), target, patch, group, &version, kind),
        smp::Outcome::Keep
    )
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
        env_lookups: options.env_lookups,
        budget: options.budget,
        bytes_read: Default::default(),
        nodes_read: Default::default(),
        openapi: std::sync::OnceLock::new(),
    };
    let root = fs.canonicalize(dir).map_err(|e| RenderError::Io {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let built = accumulate::build_root(&loader, &root)?;
    options.budget.check_objects(&root, built.resources.len())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> MemFs {
        let mut fs = MemFs::new();
        for (path, text) in files {
            fs.insert(format!("/repo/{path}"), text.as_bytes().to_vec());
        }
        fs
    }

    #[test]
    fn records_every_file_read() {
        let fs = tree(&[
            (
                "app/kustomization.yaml",
                "resources:\n- ../base\npatches:\n- path: p.yaml\nconfigMapGenerator:\n- name: c\n  files:\n  - f.txt\n",
            ),
            (
                "app/p.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata:\n  x: y\n",
            ),
            ("app/f.txt", "hello\n"),
            ("app/unused.yaml", "not read\n"),
            ("base/kustomization.yaml", "resources:\n- cm.yaml\n"),
            (
                "base/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
            ),
        ]);
        let r = build(&fs, Path::new("/repo/app"), RenderOptions::default()).unwrap();
        let read: Vec<String> = r
            .files_read
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            read,
            [
                "/repo/app/f.txt",
                "/repo/app/kustomization.yaml",
                "/repo/app/p.yaml",
                "/repo/base/cm.yaml",
                "/repo/base/kustomization.yaml"
            ]
        );
        assert_eq!(r.objects.len(), 2);
    }

    #[test]
    fn alias_bomb_in_a_resource_is_an_error_not_a_hang() {
        let mut bomb =
            String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\nl0: &l0 [a, a]\n");
        for i in 1..40 {
            bomb.push_str(&format!("l{i}: &l{i} [*l{p}, *l{p}]\n", p = i - 1));
        }
        let fs = tree(&[
            ("kustomization.yaml", "resources:\n- bomb.yaml\n"),
            ("bomb.yaml", &bomb),
        ]);
        let started = std::time::Instant::now();
        let err = build(&fs, Path::new("/repo"), RenderOptions::default()).unwrap_err();
        assert!(err.to_string().contains("bomb.yaml"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn symlink_out_of_the_root_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.yaml");
        std::fs::write(
            &outside,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\n",
        )
        .unwrap();
        let root = dir.path().join("app");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link.yaml")).unwrap();
        std::fs::write(root.join("kustomization.yaml"), "resources:\n- link.yaml\n").unwrap();
        let err = build(&DiskFs, &root, RenderOptions::default()).unwrap_err();
        assert!(matches!(err, RenderError::Restricted { .. }), "{err}");
        let lifted = RenderOptions {
            load_restrictor: LoadRestrictor::None,
            ..RenderOptions::default()
        };
        assert_eq!(build(&DiskFs, &root, lifted).unwrap().objects.len(), 1);
    }

    #[test]
    fn a_bare_env_file_key_reads_the_environment_only_when_lookups_are_allowed() {
        let fs = tree(&[
            (
                "kustomization.yaml",
                "configMapGenerator:\n- name: cm\n  envs: [a.env]\n",
            ),
            ("a.env", "X=1\nPATH\n"),
        ]);
        let r = build(&fs, Path::new("/repo"), RenderOptions::default()).unwrap();
        assert_eq!(r.objects[0]["data"]["PATH"], std::env::var("PATH").unwrap());
        let sealed = RenderOptions {
            env_lookups: EnvLookups::Refused,
            ..RenderOptions::default()
        };
        let err = build(&fs, Path::new("/repo"), sealed)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("kustomization.yaml")
                && err.contains("a.env:2")
                && err.contains("\"PATH\""),
            "{err}"
        );
    }

    #[test]
    fn a_render_over_its_budget_fails_naming_it() {
        let cm = |i: usize| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\n");
        let objects: Vec<String> = (0..10).map(cm).collect();
        let fs = tree(&[
            ("kustomization.yaml", "resources:\n- cms.yaml\n"),
            ("cms.yaml", &objects.join("---\n")),
        ]);
        let with = |budget: Budget| RenderOptions {
            budget,
            ..RenderOptions::default()
        };
        let root = Path::new("/repo");
        assert_eq!(
            build(&fs, root, RenderOptions::default())
                .unwrap()
                .objects
                .len(),
            10
        );
        let few = Budget {
            objects: 9,
            ..Budget::default()
        };
        let err = build(&fs, root, with(few)).unwrap_err().to_string();
        assert!(err.contains("budget of 9 objects"), "{err}");
        let small = Budget {
            bytes: 100,
            ..Budget::default()
        };
        let err = build(&fs, root, with(small)).unwrap_err().to_string();
        assert!(
            err.contains("cms.yaml") && err.contains("budget of 100 bytes read"),
            "{err}"
        );
        // Each ConfigMap is 5 nodes: the object, apiVersion, kind, metadata and its name.
        let nodes = |n| Budget {
            nodes: n,
            ..Budget::default()
        };
        assert!(build(&fs, root, with(nodes(50))).is_ok());
        let err = build(&fs, root, with(nodes(49))).unwrap_err().to_string();
        assert!(
            err.contains("cms.yaml") && err.contains("budget of 49 YAML nodes"),
            "{err}"
        );
    }
}
