//! The renderer reads files only through [`FileSystem`], so it can run over a directory,
//! a git tree or memory, and so every file it read can be recorded.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Read-only access to a tree of files.
pub trait FileSystem: Send + Sync {
    /// The bytes of a file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Whether `path` is a directory.
    fn is_dir(&self, path: &Path) -> bool;
    /// Whether `path` is a regular file.
    fn is_file(&self, path: &Path) -> bool;
    /// The entries of a directory, sorted by name.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>>;
    /// The absolute path with symlinks resolved.
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;
    /// Whether `path` itself is a symlink (an error when it does not exist); `None` when
    /// this file system cannot tell, and only [`FileSystem::canonicalize`] can.
    fn is_symlink(&self, _path: &Path) -> io::Result<Option<bool>> {
        Ok(None)
    }
    /// Where `path` is on the local disk, for an external tool (helm, kustomize) that
    /// reads files itself. A tree that is not on disk may write itself out on first use;
    /// one that cannot says so.
    fn on_disk(&self, path: &Path) -> io::Result<PathBuf> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{} is not on disk, and an external tool needs it there",
                path.display()
            ),
        ))
    }
}

/// The local disk.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiskFs;

impl FileSystem for DiskFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<_>>()?;
        entries.sort();
        Ok(entries)
    }
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }
    fn is_symlink(&self, path: &Path) -> io::Result<Option<bool>> {
        Ok(Some(
            std::fs::symlink_metadata(path)?.file_type().is_symlink(),
        ))
    }
    fn on_disk(&self, path: &Path) -> io::Result<PathBuf> {
        Ok(path.to_path_buf())
    }
}

/// Wraps a [`FileSystem`] for one build: records the path of every file read through it,
/// and remembers resolved paths and file kinds (each entry and its directory are looked
/// at several times, and resolving a path costs a system call per component).
pub struct Recording<'a> {
    inner: &'a dyn FileSystem,
    read: Mutex<BTreeSet<PathBuf>>,
    canonical: Mutex<HashMap<PathBuf, PathBuf>>,
    dirs: Mutex<HashMap<PathBuf, bool>>,
    files: Mutex<HashMap<PathBuf, bool>>,
}

/// The value remembered for `path`, or `compute`d and remembered.
fn remembered<T: Clone>(
    cache: &Mutex<HashMap<PathBuf, T>>,
    path: &Path,
    compute: impl FnOnce() -> io::Result<T>,
) -> io::Result<T> {
    let lock = || {
        cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    };
    if let Some(known) = lock().get(path) {
        return Ok(known.clone());
    }
    let value = compute()?;
    lock().insert(path.to_path_buf(), value.clone());
    Ok(value)
}

impl<'a> Recording<'a> {
    /// Starts recording reads of `inner`.
    pub fn new(inner: &'a dyn FileSystem) -> Self {
        Recording {
            inner,
            read: Mutex::new(BTreeSet::new()),
            canonical: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
        }
    }

    /// Every file read so far, sorted.
    pub fn files_read(&self) -> Vec<PathBuf> {
        let set = self.read.lock().unwrap_or_else(|p| p.into_inner());
        set.iter().cloned().collect()
    }
}

impl FileSystem for Recording<'_> {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let bytes = self.inner.read(path)?;
        let mut set = self.read.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(path.to_path_buf());
        Ok(bytes)
    }
    fn is_dir(&self, path: &Path) -> bool {
        remembered(&self.dirs, path, || Ok(self.inner.is_dir(path))).unwrap_or(false)
    }
    fn is_file(&self, path: &Path) -> bool {
        remembered(&self.files, path, || Ok(self.inner.is_file(path))).unwrap_or(false)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        self.inner.read_dir(path)
    }
    fn on_disk(&self, path: &Path) -> io::Result<PathBuf> {
        self.inner.on_disk(path)
    }
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        remembered(&self.canonical, path, || {
            // A resolved parent plus a last component that is no symlink: one lstat
            // instead of a readlink per component.
            match (path.parent(), path.file_name()) {
                (Some(parent), Some(name)) if path.is_absolute() => {
                    match self.inner.is_symlink(path)? {
                        Some(false) => Ok(self.canonicalize(parent)?.join(name)),
                        _ => self.inner.canonicalize(path),
                    }
                }
                _ => self.inner.canonicalize(path),
            }
        })
    }
}

/// Files held in memory (tests, fuzzing, and trees read straight from git objects).
#[derive(Debug, Default, Clone)]
pub struct MemFs {
    files: std::collections::BTreeMap<PathBuf, Vec<u8>>,
}

impl MemFs {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file at an absolute path.
    pub fn insert(&mut self, path: impl Into<PathBuf>, bytes: impl Into<Vec<u8>>) {
        self.files.insert(path.into(), bytes.into());
    }
}

impl FileSystem for MemFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }
    fn is_dir(&self, path: &Path) -> bool {
        self.files.keys().any(|p| p.starts_with(path) && p != path)
    }
    fn is_file(&self, path: &Path) -> bool {
        self.files.contains_key(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out: Vec<PathBuf> = self
            .files
            .keys()
            .filter_map(|p| p.strip_prefix(path).ok()?.components().next())
            .map(|c| path.join(c))
            .collect();
        out.dedup();
        Ok(out)
    }
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        // Normalise `.` and `..` lexically: memory trees have no symlinks.
        let mut out = PathBuf::new();
        for c in path.components() {
            match c {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                std::path::Component::CurDir => {}
                other => out.push(other),
            }
        }
        if self.is_file(&out) || self.is_dir(&out) {
            Ok(out)
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no such file or directory",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The remembered, component-wise resolution gives what the OS gives, through
    /// directory and file symlinks and `..`, and fails where the OS fails.
    #[test]
    fn recorded_canonicalize_matches_the_os() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        std::fs::create_dir_all(root.join("real/sub")).unwrap();
        std::fs::write(root.join("real/sub/a.yaml"), "a: 1\n").unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("dirlink")).unwrap();
        std::os::unix::fs::symlink(root.join("real/sub/a.yaml"), root.join("filelink")).unwrap();
        let fs = Recording::new(&DiskFs);
        for path in [
            "real/sub/a.yaml",
            "dirlink/sub/a.yaml",
            "dirlink/sub/../sub/a.yaml",
            "filelink",
            "real/sub/.",
            "dirlink",
        ] {
            let path = root.join(path);
            for _ in 0..2 {
                assert_eq!(
                    fs.canonicalize(&path).unwrap(),
                    std::fs::canonicalize(&path).unwrap(),
                    "{}",
                    path.display()
                );
            }
        }
        assert!(fs.canonicalize(&root.join("dirlink/missing.yaml")).is_err());
        assert!(fs.canonicalize(&root.join("missing/../real")).is_err());
    }
}
