//! Reads the files a kustomization names, relative to its directory, under the load
//! restrictor and size limits.

use std::path::{Path, PathBuf};

use super::fs::FileSystem;
use super::kustomization::{FILE_NAMES, Kustomization};
use super::{LoadRestrictor, RenderError};

/// Files larger than this are refused (a render input, not a data dump).
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

/// File access for one render.
pub struct Loader<'a> {
    pub fs: &'a dyn FileSystem,
    pub restrictor: LoadRestrictor,
    pub env_lookups: super::EnvLookups,
    pub budget: super::Budget,
    /// Bytes read so far by this render, against `budget.bytes`.
    pub bytes_read: std::sync::atomic::AtomicU64,
    /// YAML nodes parsed so far by this render, against `budget.nodes`.
    pub nodes_read: std::sync::atomic::AtomicUsize,
    /// The build's strategic-merge schema, once a kustomization chose one (`openapi:`).
    pub openapi: std::sync::OnceLock<super::openapi::Choice>,
}

/// Whether a resource entry names a remote target (kustomize would fetch it).
pub fn is_remote(entry: &str) -> bool {
    entry.contains("://")
        || entry.starts_with("git@")
        || entry.starts_with("github.com/")
        || entry.starts_with("gitlab.com/")
        || entry.starts_with("bitbucket.org/")
}

impl Loader<'_> {
    /// The patch metadata strategic merge uses in this build.
    pub fn schema(&self) -> Result<&super::smp::Schema, RenderError> {
        match self.openapi.get() {
            Some(choice) => choice.schema(),
            None => Ok(super::smp::Schema::builtin()),
        }
    }

    /// The kustomization file of `dir` (the first name that exists), for messages too.
    pub fn kustomization_file(&self, dir: &Path) -> PathBuf {
        FILE_NAMES
            .iter()
            .map(|n| dir.join(n))
            .find(|p| self.fs.is_file(p))
            .unwrap_or_else(|| dir.join(FILE_NAMES[0]))
    }

    /// Reads and parses the kustomization in `dir`.
    pub fn load_kustomization(&self, dir: &Path) -> Result<(Kustomization, PathBuf), RenderError> {
        let found: Vec<PathBuf> = FILE_NAMES
            .iter()
            .map(|n| dir.join(n))
            .filter(|p| self.fs.is_file(p))
            .collect();
        let path = match found.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(RenderError::NoKustomization {
                    dir: dir.to_path_buf(),
                });
            }
            _ => {
                return Err(RenderError::Invalid {
                    path: dir.to_path_buf(),
                    message: format!(
                        "found multiple kustomization files: {}",
                        found
                            .iter()
                            .filter_map(|p| p.file_name())
                            .map(|n| n.to_string_lossy().into_owned())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        };
        let text = self.read_path(&path)?;
        let k: Kustomization =
            crate::yaml::kustomize_from_str(&text).map_err(|e| RenderError::Yaml {
                path: path.clone(),
                message: e.to_string(),
            })?;
        Ok((k, path))
    }

    /// Resolves `entry` relative to `dir`: refuses remote targets, resolves symlinks, and
    /// under the root-only restrictor refuses anything outside `dir`.
    pub fn resolve(
        &self,
        dir: &Path,
        entry: &str,
        must_be_in_root: bool,
    ) -> Result<PathBuf, RenderError> {
        if is_remote(entry) {
            return Err(RenderError::Remote {
                path: self.kustomization_file(dir),
                entry: entry.to_string(),
            });
        }
        let joined = dir.join(entry);
        let real = self
            .fs
            .canonicalize(&joined)
            .map_err(|e| RenderError::Missing {
                path: self.kustomization_file(dir),
                entry: entry.to_string(),
                message: e.to_string(),
            })?;
        if must_be_in_root && self.restrictor == LoadRestrictor::RootOnly {
            let root = self
                .fs
                .canonicalize(dir)
                .unwrap_or_else(|_| dir.to_path_buf());
            if !real.starts_with(&root) {
                return Err(RenderError::Restricted {
                    path: self.kustomization_file(dir),
                    entry: entry.to_string(),
                    root,
                });
            }
        }
        Ok(real)
    }

    /// Reads a file named by the kustomization in `dir`, as text.
    pub fn read_text(&self, dir: &Path, entry: &str) -> Result<String, RenderError> {
        let path = self.resolve(dir, entry, true)?;
        self.read_path(&path)
    }

    /// Reads a file named by the kustomization in `dir`, as bytes.
    pub fn read_bytes(&self, dir: &Path, entry: &str) -> Result<Vec<u8>, RenderError> {
        let path = self.resolve(dir, entry, true)?;
        self.read_raw(&path)
    }

    fn read_raw(&self, path: &Path) -> Result<Vec<u8>, RenderError> {
        let bytes = self.fs.read(path).map_err(|e| RenderError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if bytes.len() > MAX_FILE_BYTES {
            return Err(RenderError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "file is {} bytes, over the limit of {MAX_FILE_BYTES}",
                    bytes.len()
                ),
            });
        }
        let total = self
            .bytes_read
            .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed)
            + bytes.len() as u64;
        if total > self.budget.bytes {
            return Err(RenderError::Budget {
                path: path.to_path_buf(),
                what: "bytes read",
                limit: self.budget.bytes,
            });
        }
        Ok(bytes)
    }

    /// Counts the nodes of objects parsed from `path` against the render's budget.
    pub fn count_nodes(
        &self,
        path: &Path,
        objects: &[super::resource::Resource],
    ) -> Result<(), RenderError> {
        fn nodes(v: &serde_json::Value) -> usize {
            1 + match v {
                serde_json::Value::Array(a) => a.iter().map(nodes).sum(),
                serde_json::Value::Object(m) => m.values().map(nodes).sum(),
                _ => 0,
            }
        }
        let n: usize = objects
            .iter()
            .map(|r| 1 + r.obj.values().map(nodes).sum::<usize>())
            .sum();
        let total = self
            .nodes_read
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed)
            + n;
        if total > self.budget.nodes {
            return Err(RenderError::Budget {
                path: path.to_path_buf(),
                what: "YAML nodes",
                limit: self.budget.nodes as u64,
            });
        }
        Ok(())
    }

    /// Reads a file as UTF-8 text.
    pub fn read_path(&self, path: &Path) -> Result<String, RenderError> {
        String::from_utf8(self.read_raw(path)?).map_err(|_| RenderError::Invalid {
            path: path.to_path_buf(),
            message: "not valid UTF-8".into(),
        })
    }
}
