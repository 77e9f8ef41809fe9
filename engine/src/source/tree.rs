//! Read-only views of the tree of one commit for the renderer: [`GitTreeFs`] reads
//! blobs straight from the object database (the default: nothing is written), and
//! [`checkout`] writes a content-addressed worktree for tools that need real files.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use git2::{ObjectType, Oid};

use crate::render::FileSystem;

/// What a tree entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    File,
    Executable,
    Symlink,
    Dir,
    /// A submodule (a commit of another repository): neither file nor directory here.
    Submodule,
}

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub oid: Oid,
    pub kind: EntryKind,
}

fn kind_of(mode: i32) -> EntryKind {
    match mode {
        0o040000 => EntryKind::Dir,
        0o120000 => EntryKind::Symlink,
        0o100755 => EntryKind::Executable,
        0o160000 => EntryKind::Submodule,
        _ => EntryKind::File,
    }
}

/// The tree of one commit as a [`FileSystem`] rooted at a virtual absolute path.
/// Directories are read lazily, so opening a tree of any size costs one object read.
/// Symlinks are followed inside the tree; a link pointing out of it reads as missing.
pub struct GitTreeFs {
    repo: Mutex<git2::Repository>,
    root: PathBuf,
    tree: Oid,
    dirs: Mutex<HashMap<PathBuf, Arc<Vec<Entry>>>>,
    /// Where the tree is written out when an external tool needs real files
    /// ([`FileSystem::on_disk`]): a directory of worktrees, and how many to keep.
    worktrees: Option<(PathBuf, usize)>,
    /// The worktree, once written.
    written: std::sync::OnceLock<Result<PathBuf, String>>,
}

impl std::fmt::Debug for GitTreeFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitTreeFs")
            .field("root", &self.root)
            .field("tree", &self.tree)
            .finish()
    }
}

/// The resolved form of a path: its real (symlink-free) relative path and entry.
struct Resolved {
    path: PathBuf,
    /// `None` for the root directory.
    entry: Option<Entry>,
}

impl GitTreeFs {
    /// The tree `tree` of `repo`, seen at the absolute path `root`.
    pub fn new(repo: git2::Repository, tree: Oid, root: PathBuf) -> io::Result<Self> {
        repo.find_tree(tree).map_err(git_io)?;
        Ok(GitTreeFs {
            repo: Mutex::new(repo),
            root,
            tree,
            dirs: Mutex::new(HashMap::new()),
            worktrees: None,
            written: std::sync::OnceLock::new(),
        })
    }

    /// Lets [`FileSystem::on_disk`] write the tree out under `dir` (see [`checkout`]),
    /// once, when an external tool first asks for a path.
    pub fn with_worktrees(mut self, dir: PathBuf, keep: usize) -> Self {
        self.worktrees = Some((dir, keep));
        self
    }

    /// The absolute path the tree is seen at.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The root tree's id.
    pub fn tree_id(&self) -> Oid {
        self.tree
    }

    fn repo(&self) -> std::sync::MutexGuard<'_, git2::Repository> {
        self.repo.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entries of the real directory `rel` (no symlinks in it), sorted by name.
    pub fn listing(&self, rel: &Path) -> Option<Arc<Vec<Entry>>> {
        if let Some(hit) = self.dirs.lock().unwrap_or_else(|p| p.into_inner()).get(rel) {
            return Some(hit.clone());
        }
        let oid = match rel.parent() {
            None => self.tree,
            Some(parent) => {
                let name = rel.file_name()?.to_str()?;
                let parent = self.listing(parent)?;
                let e = parent.iter().find(|e| e.name == name)?;
                if e.kind != EntryKind::Dir {
                    return None;
                }
                e.oid
            }
        };
        let entries = {
            let repo = self.repo();
            let tree = repo.find_tree(oid).ok()?;
            let mut entries: Vec<Entry> = tree
                .iter()
                .filter_map(|e| {
                    Some(Entry {
                        name: e.name().ok()?.to_string(),
                        oid: e.id(),
                        kind: kind_of(e.filemode()),
                    })
                })
                .collect();
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            Arc::new(entries)
        };
        self.dirs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(rel.to_path_buf(), entries.clone());
        Some(entries)
    }

    /// Resolves a path relative to the root, following symlinks (the last one only when
    /// `follow_last`); `None` when it does not exist or leaves the tree.
    fn resolve(&self, rel: &Path, follow_last: bool) -> Option<Resolved> {
        let mut todo: VecDeque<PathBuf> = VecDeque::new();
        for c in rel.components() {
            match c {
                Component::Normal(n) => todo.push_back(PathBuf::from(n)),
                Component::ParentDir => todo.push_back(PathBuf::from("..")),
                Component::CurDir => {}
                Component::RootDir | Component::Prefix(_) => return None,
            }
        }
        let mut cur = PathBuf::new();
        let mut last: Option<Entry> = None;
        let mut hops = 0;
        while let Some(part) = todo.pop_front() {
            if part.as_os_str() == ".." {
                if !cur.pop() {
                    return None;
                }
                last = None;
                if let Some(parent) = cur.parent() {
                    let name = cur.file_name()?.to_str()?;
                    last = self
                        .listing(parent)?
                        .iter()
                        .find(|e| e.name == name)
                        .cloned();
                }
                continue;
            }
            if last.as_ref().is_some_and(|e| e.kind != EntryKind::Dir) {
                return None;
            }
            let name = part.to_str()?;
            let entry = self.listing(&cur)?.iter().find(|e| e.name == name)?.clone();
            if entry.kind == EntryKind::Symlink && (follow_last || !todo.is_empty()) {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                let target = self.blob(entry.oid)?;
                let target = PathBuf::from(String::from_utf8(target).ok()?);
                if target.is_absolute() {
                    return None;
                }
                let mut parts: Vec<PathBuf> = Vec::new();
                for c in target.components() {
                    match c {
                        Component::Normal(n) => parts.push(PathBuf::from(n)),
                        Component::ParentDir => parts.push(PathBuf::from("..")),
                        _ => {}
                    }
                }
                for p in parts.into_iter().rev() {
                    todo.push_front(p);
                }
                continue;
            }
            cur.push(name);
            last = Some(entry);
        }
        Some(Resolved {
            path: cur,
            entry: last,
        })
    }

    fn blob(&self, oid: Oid) -> Option<Vec<u8>> {
        read_blob(&self.repo(), oid).ok()
    }

    fn relative<'p>(&self, path: &'p Path) -> io::Result<&'p Path> {
        path.strip_prefix(&self.root)
            .map_err(|_| io::Error::new(io::ErrorKind::NotFound, "outside the git tree"))
    }

    /// The entry at `rel` without following a final symlink (for change detection).
    pub fn entry(&self, rel: &Path) -> Option<Entry> {
        self.resolve(rel, false)?.entry
    }

    /// The blob a file path resolves to (symlinks followed).
    pub fn file_id(&self, rel: &Path) -> Option<Oid> {
        match self.resolve(rel, true)?.entry {
            Some(e) if matches!(e.kind, EntryKind::File | EntryKind::Executable) => Some(e.oid),
            _ => None,
        }
    }

    /// A hash of a directory's names and entry kinds (not contents): it changes when an
    /// entry is added, removed or changes type, which can change what a render finds.
    pub fn listing_id(&self, rel: &Path) -> Option<String> {
        use sha2::{Digest, Sha256};
        let resolved = self.resolve(rel, true)?;
        if resolved
            .entry
            .as_ref()
            .is_some_and(|e| e.kind != EntryKind::Dir)
        {
            return None;
        }
        let listing = self.listing(&resolved.path)?;
        let mut h = Sha256::new();
        for e in listing.iter() {
            h.update(e.name.as_bytes());
            h.update([0, e.kind as u8]);
        }
        Some(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// A blob's bytes, its size checked from the object header first: a repository's huge
/// file is refused without being inflated into memory.
fn read_blob(repo: &git2::Repository, oid: Oid) -> io::Result<Vec<u8>> {
    let (size, _) = repo
        .odb()
        .and_then(|o| o.read_header(oid))
        .map_err(git_io)?;
    if size > crate::render::MAX_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "file is {size} bytes, over the limit of {}",
                crate::render::MAX_FILE_BYTES
            ),
        ));
    }
    let blob = repo.find_blob(oid).map_err(git_io)?;
    Ok(blob.content().to_vec())
}

fn git_io(e: git2::Error) -> io::Error {
    io::Error::other(e.message().to_string())
}

fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such file or directory")
}

impl FileSystem for GitTreeFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let rel = self.relative(path)?;
        let r = self.resolve(rel, true).ok_or_else(not_found)?;
        match r.entry {
            Some(e) if matches!(e.kind, EntryKind::File | EntryKind::Executable) => {
                read_blob(&self.repo(), e.oid)
            }
            Some(e) if e.kind == EntryKind::Dir => Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            )),
            None => Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            )),
            _ => Err(not_found()),
        }
    }

    fn is_dir(&self, path: &Path) -> bool {
        let Ok(rel) = self.relative(path) else {
            return false;
        };
        match self.resolve(rel, true) {
            Some(r) => r.entry.is_none_or(|e| e.kind == EntryKind::Dir),
            None => false,
        }
    }

    fn is_file(&self, path: &Path) -> bool {
        let Ok(rel) = self.relative(path) else {
            return false;
        };
        self.resolve(rel, true).is_some_and(|r| {
            r.entry
                .is_some_and(|e| matches!(e.kind, EntryKind::File | EntryKind::Executable))
        })
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let rel = self.relative(path)?;
        let r = self.resolve(rel, true).ok_or_else(not_found)?;
        if r.entry.as_ref().is_some_and(|e| e.kind != EntryKind::Dir) {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        let listing = self.listing(&r.path).ok_or_else(not_found)?;
        let mut out: Vec<PathBuf> = listing.iter().map(|e| path.join(&e.name)).collect();
        out.sort();
        Ok(out)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        let rel = self.relative(path)?;
        let r = self.resolve(rel, true).ok_or_else(not_found)?;
        Ok(self.root.join(r.path))
    }

    fn on_disk(&self, path: &Path) -> io::Result<PathBuf> {
        let rel = self.relative(path)?.to_path_buf();
        let Some((dir, keep)) = &self.worktrees else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{} is a git tree with no worktree directory",
                    path.display()
                ),
            ));
        };
        let written = self.written.get_or_init(|| {
            checkout(&self.repo(), self.tree, dir, *keep).map_err(|e| e.to_string())
        });
        match written {
            Ok(root) => Ok(root.join(rel)),
            Err(e) => Err(io::Error::other(format!(
                "writing out {} for an external tool: {e}",
                self.root.display()
            ))),
        }
    }
}

/// Writes the tree `tree` of `repo` into `dest` (which must not exist) as plain files,
/// executables and symlinks; submodules become empty directories. A symlink that leads
/// out of the tree (or nowhere) is left out, as [`GitTreeFs`] reads it as missing: a tool
/// run on the worktree must not reach the engine's own files through the repository.
pub fn write_tree(repo: &git2::Repository, tree: Oid, dest: &Path) -> io::Result<usize> {
    std::fs::create_dir_all(dest)?;
    let tree = repo.find_tree(tree).map_err(git_io)?;
    let mut count = 0;
    let mut links = Vec::new();
    let mut stack = vec![(tree, dest.to_path_buf())];
    while let Some((tree, dir)) = stack.pop() {
        for e in tree.iter() {
            let Ok(name) = e.name() else { continue };
            if name.contains('/') || name == ".." || name == "." || name == ".git" {
                continue;
            }
            let path = dir.join(name);
            match kind_of(e.filemode()) {
                EntryKind::Dir => {
                    std::fs::create_dir(&path)?;
                    let sub = repo.find_tree(e.id()).map_err(git_io)?;
                    stack.push((sub, path));
                }
                EntryKind::Submodule => std::fs::create_dir(&path)?,
                kind => {
                    if e.kind() != Some(ObjectType::Blob) {
                        continue;
                    }
                    let content = read_blob(repo, e.id())?;
                    match kind {
                        EntryKind::Symlink => {
                            let target = String::from_utf8_lossy(&content).into_owned();
                            std::os::unix::fs::symlink(target, &path)?;
                            links.push(path);
                        }
                        _ => {
                            std::fs::write(&path, &content)?;
                            if kind == EntryKind::Executable {
                                use std::os::unix::fs::PermissionsExt;
                                std::fs::set_permissions(
                                    &path,
                                    std::fs::Permissions::from_mode(0o755),
                                )?;
                            }
                        }
                    }
                    count += 1;
                }
            }
        }
    }
    // Resolved only once every link exists: links may lead through other links.
    let root = std::fs::canonicalize(dest)?;
    for link in links {
        if !std::fs::canonicalize(&link).is_ok_and(|to| to.starts_with(&root)) {
            std::fs::remove_file(&link)?;
            count -= 1;
        }
    }
    Ok(count)
}

/// A content-addressed worktree of `tree` under `trees_dir` (`<trees_dir>/<tree id>`),
/// written once and reused; the `keep` most recently used others stay, older ones go.
pub fn checkout(
    repo: &git2::Repository,
    tree: Oid,
    trees_dir: &Path,
    keep: usize,
) -> io::Result<PathBuf> {
    std::fs::create_dir_all(trees_dir)?;
    let dest = trees_dir.join(tree.to_string());
    if !dest.is_dir() {
        let tmp = trees_dir.join(format!(
            ".tmp-{tree}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&tmp);
        write_tree(repo, tree, &tmp)?;
        if let Err(e) = std::fs::rename(&tmp, &dest) {
            // Another writer won the race: theirs is identical.
            let _ = std::fs::remove_dir_all(&tmp);
            if !dest.is_dir() {
                return Err(e);
            }
        }
    }
    // Mark as recently used, for the clean-up below.
    if let Ok(f) = std::fs::File::open(&dest) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
    prune_trees(trees_dir, keep, &dest);
    std::fs::canonicalize(&dest)
}

/// Removes worktrees beyond the `keep` most recently used (never `current`).
pub fn prune_trees(trees_dir: &Path, keep: usize, current: &Path) {
    let Ok(read) = std::fs::read_dir(trees_dir) else {
        return;
    };
    let mut trees: Vec<(std::time::SystemTime, PathBuf)> = read
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    trees.sort_by_key(|t| std::cmp::Reverse(t.0));
    for (_, path) in trees.into_iter().skip(keep.max(1)) {
        if path != current {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository with files, a nested directory, symlinks (inside and out) and an
    /// executable, built with libgit2 only.
    fn fixture() -> (tempfile::TempDir, git2::Repository, Oid) {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path().join("r.git")).unwrap();
        let tree = {
            let blob = |t: &str| repo.blob(t.as_bytes()).unwrap();
            let mut base = repo.treebuilder(None).unwrap();
            base.insert(
                "kustomization.yaml",
                blob("resources:\n- cm.yaml\n"),
                0o100644,
            )
            .unwrap();
            base.insert("cm.yaml", blob("kind: ConfigMap\n"), 0o100644)
                .unwrap();
            base.insert("run.sh", blob("#!/bin/sh\n"), 0o100755)
                .unwrap();
            let base = base.write().unwrap();
            let mut root = repo.treebuilder(None).unwrap();
            root.insert("base", base, 0o040000).unwrap();
            root.insert("link", blob("base/cm.yaml"), 0o120000).unwrap();
            root.insert("dirlink", blob("base"), 0o120000).unwrap();
            root.insert("escape", blob("../../etc/passwd"), 0o120000)
                .unwrap();
            root.insert("abs", blob("/etc/passwd"), 0o120000).unwrap();
            root.write().unwrap()
        };
        (dir, repo, tree)
    }

    #[test]
    fn reads_like_a_disk() {
        let (_d, repo, tree) = fixture();
        let fs = GitTreeFs::new(repo, tree, PathBuf::from("/r@x")).unwrap();
        let p = |s: &str| PathBuf::from("/r@x").join(s);
        assert_eq!(fs.read(&p("base/cm.yaml")).unwrap(), b"kind: ConfigMap\n");
        assert_eq!(fs.read(&p("link")).unwrap(), b"kind: ConfigMap\n");
        assert_eq!(
            fs.read(&p("dirlink/cm.yaml")).unwrap(),
            b"kind: ConfigMap\n"
        );
        assert_eq!(
            fs.read(&p("base/../base/cm.yaml")).unwrap(),
            b"kind: ConfigMap\n"
        );
        assert!(fs.is_dir(&p("base")) && fs.is_dir(&p("dirlink")) && fs.is_dir(&p("")));
        assert!(fs.is_file(&p("base/run.sh")) && !fs.is_file(&p("base")));
        assert!(!fs.is_file(&p("escape")) && !fs.is_file(&p("abs")));
        assert!(fs.read(&p("../etc/passwd")).is_err());
        assert!(fs.read(Path::new("/etc/passwd")).is_err());
        assert_eq!(
            fs.canonicalize(&p("dirlink/cm.yaml")).unwrap(),
            p("base/cm.yaml")
        );
        assert_eq!(
            fs.read_dir(&p("dirlink")).unwrap(),
            vec![
                p("dirlink/cm.yaml"),
                p("dirlink/kustomization.yaml"),
                p("dirlink/run.sh")
            ]
        );
        assert_eq!(
            fs.entry(Path::new("link")).unwrap().kind,
            EntryKind::Symlink
        );
        assert_eq!(
            fs.file_id(Path::new("link")),
            fs.file_id(Path::new("base/cm.yaml"))
        );
        assert!(fs.listing_id(Path::new("base")).is_some());
    }

    #[test]
    fn checkout_is_content_addressed_and_pruned() {
        let (d, repo, tree) = fixture();
        let trees = d.path().join("trees");
        let a = checkout(&repo, tree, &trees, 2).unwrap();
        assert_eq!(std::fs::read(a.join("link")).unwrap(), b"kind: ConfigMap\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(a.join("base/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
        assert_eq!(checkout(&repo, tree, &trees, 2).unwrap(), a);
        // Three other trees: only the two most recent survive.
        let mut made = vec![];
        for i in 0..3 {
            let mut b = repo.treebuilder(None).unwrap();
            b.insert("f", repo.blob(format!("{i}").as_bytes()).unwrap(), 0o100644)
                .unwrap();
            let t = b.write().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
            made.push(checkout(&repo, t, &trees, 2).unwrap());
        }
        assert!(!a.exists());
        assert!(made[1].exists() && made[2].exists() && !made[0].exists());
    }

    #[test]
    fn a_written_out_tree_holds_no_link_out_of_it() {
        let (d, repo, tree) = fixture();
        let trees = d.path().join("trees");
        let fs = GitTreeFs::new(repo, tree, PathBuf::from("/r@x"))
            .unwrap()
            .with_worktrees(trees.clone(), 2);
        let dir = fs.on_disk(Path::new("/r@x/base")).unwrap();
        assert!(dir.starts_with(&trees), "{}", dir.display());
        let root = dir.parent().unwrap();
        assert_eq!(
            std::fs::read(root.join("link")).unwrap(),
            b"kind: ConfigMap\n"
        );
        assert!(root.join("dirlink/cm.yaml").is_file());
        for gone in ["escape", "abs"] {
            assert!(
                std::fs::symlink_metadata(root.join(gone)).is_err(),
                "{gone} was written out"
            );
        }
        // Written once: a second path is in the same worktree.
        assert_eq!(
            fs.on_disk(Path::new("/r@x/link")).unwrap(),
            root.join("link")
        );
        assert!(fs.on_disk(Path::new("/elsewhere")).is_err());
        let plain = GitTreeFs::new(
            git2::Repository::open_bare(d.path().join("r.git")).unwrap(),
            tree,
            PathBuf::from("/r@x"),
        )
        .unwrap();
        assert!(plain.on_disk(Path::new("/r@x/base")).is_err());
    }

    #[test]
    fn a_blob_over_the_limit_is_refused_from_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path().join("r.git")).unwrap();
        let big = repo
            .blob(&vec![b'a'; crate::render::MAX_FILE_BYTES + 1])
            .unwrap();
        let tree = {
            let mut root = repo.treebuilder(None).unwrap();
            root.insert("big.yaml", big, 0o100644).unwrap();
            root.write().unwrap()
        };
        let fs = GitTreeFs::new(repo, tree, PathBuf::from("/r@x")).unwrap();
        let e = fs.read(Path::new("/r@x/big.yaml")).unwrap_err();
        assert!(e.to_string().contains("over the limit"), "{e}");
    }
}
