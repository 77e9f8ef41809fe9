//! The cache: one bare mirror per repository URL under `<cache>/mirrors/`, locked so
//! fetches of one repository are serialised (across threads and processes), re-created
//! from scratch when it is found corrupt.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, LazyLock, Mutex};
use std::time::{Duration, Instant};

use super::url::RepoUrl;

/// The bare mirror of `url` under `cache_root`.
pub(crate) fn mirror_dir(cache_root: &Path, url: &RepoUrl) -> PathBuf {
    cache_root
        .join("mirrors")
        .join(format!("{}.git", url.cache_key()))
}

static BUSY: LazyLock<(Mutex<HashSet<PathBuf>>, Condvar)> =
    LazyLock::new(|| (Mutex::new(HashSet::new()), Condvar::new()));

/// Exclusive use of one mirror, for this process (a set of busy mirrors) and for others
/// (an advisory file lock next to the mirror).
#[derive(Debug)]
pub(crate) struct MirrorLock {
    dir: PathBuf,
    _file: File,
}

impl MirrorLock {
    /// Waits until `dir` is free or `deadline` passes.
    pub fn acquire(dir: &Path, deadline: Instant) -> Result<Self, String> {
        let (busy, freed) = &*BUSY;
        {
            let mut set = busy.lock().unwrap_or_else(|p| p.into_inner());
            while set.contains(dir) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(
                        "another fetch of this repository is still running (or hung)".into(),
                    );
                }
                set = freed
                    .wait_timeout(set, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            set.insert(dir.to_path_buf());
        }
        // From here the in-process claim is ours; release it if the file lock fails.
        let release = |msg: String| {
            let mut set = busy.lock().unwrap_or_else(|p| p.into_inner());
            set.remove(dir);
            freed.notify_all();
            msg
        };
        let lock_path = dir.with_extension("lock");
        if let Some(parent) = lock_path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| release(format!("cannot create {}: {e}", parent.display())))?;
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| release(format!("cannot open {}: {e}", lock_path.display())))?;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(release(format!(
                        "another process holds {}",
                        lock_path.display()
                    )));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(release(format!("cannot lock {}: {e}", lock_path.display())));
                }
            }
        }
        Ok(MirrorLock {
            dir: dir.to_path_buf(),
            _file: file,
        })
    }
}

impl Drop for MirrorLock {
    fn drop(&mut self) {
        let (busy, freed) = &*BUSY;
        let mut set = busy.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&self.dir);
        freed.notify_all();
    }
}

/// Opens the mirror at `dir`, creating it when absent and re-creating it when it cannot
/// be opened; the flag says whether an existing cache was thrown away.
pub(crate) fn open_or_init(dir: &Path) -> Result<(git2::Repository, bool), String> {
    if dir.exists() {
        match open(dir) {
            Ok(repo) => return Ok((repo, false)),
            Err(e) => {
                tracing::warn!(mirror = %dir.display(), error = %e, "corrupt git cache; re-cloning");
                return Ok((reset(dir)?, true));
            }
        }
    }
    Ok((init(dir)?, false))
}

/// Opens an existing mirror and checks it is sound enough to use.
pub(crate) fn open(dir: &Path) -> Result<git2::Repository, String> {
    let repo = git2::Repository::open_bare(dir).map_err(|e| e.message().to_string())?;
    if !repo.is_bare() {
        return Err("not a bare repository".into());
    }
    repo.config()
        .and_then(|mut c| c.snapshot())
        .map_err(|e| e.message().to_string())?;
    repo.odb().map_err(|e| e.message().to_string())?;
    Ok(repo)
}

/// Deletes the mirror and starts an empty one.
pub(crate) fn reset(dir: &Path) -> Result<git2::Repository, String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| format!("cannot remove corrupt cache {}: {e}", dir.display()))?;
    }
    init(dir)
}

fn init(dir: &Path) -> Result<git2::Repository, String> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    // Build next to the final place and rename, so a crash never leaves half a mirror.
    let tmp = dir.with_extension(format!("init-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    git2::Repository::init_bare(&tmp)
        .map_err(|e| format!("cannot create {}: {}", tmp.display(), e.message()))?;
    std::fs::rename(&tmp, dir)
        .map_err(|e| format!("cannot move {} into place: {e}", tmp.display()))?;
    open(dir)
}

/// Packs kept before they are merged into one: every incremental fetch adds a pack, and
/// object lookups slow down with their number (git's CLI repacks for the same reason).
pub(crate) const MAX_PACKS: usize = 32;

/// Merges the mirror's packs into one when there are more than `max`: everything
/// reachable from its refs is written to a new pack, then the old packs are deleted. On any
/// error the old packs stay. Returns whether it repacked.
pub(crate) fn consolidate(repo: &git2::Repository, max: usize) -> Result<bool, git2::Error> {
    let pack_dir = repo.path().join("objects/pack");
    let packs = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|r| {
                r.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "pack"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let old = packs(&pack_dir);
    if old.len() <= max {
        return Ok(false);
    }
    let mut walk = repo.revwalk()?;
    let mut tags = Vec::new();
    for r in repo.references()? {
        let r = r?;
        let Some(target) = r.target() else { continue };
        match repo.find_object(target, None)?.kind() {
            Some(git2::ObjectType::Commit) => walk.push(target)?,
            Some(git2::ObjectType::Tag) => {
                tags.push(target);
                if let Ok(c) = r.peel_to_commit() {
                    walk.push(c.id())?;
                }
            }
            _ => {}
        }
    }
    let mut pb = repo.packbuilder()?;
    pb.insert_walk(&mut walk)?;
    for t in tags {
        pb.insert_recursive(t, None)?;
    }
    pb.write(&pack_dir, 0o444)?;
    let Some(name) = pb.name()?.map(str::to_string) else {
        return Ok(false);
    };
    let keep = format!("pack-{name}");
    for pack in old {
        let Some(stem) = pack.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if stem == keep {
            continue;
        }
        for ext in ["pack", "idx", "rev", "bitmap"] {
            let _ = std::fs::remove_file(pack.with_extension(ext));
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_garbage_cache_is_recreated() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("m.git");
        let (_r, recloned) = open_or_init(&dir).unwrap();
        assert!(!recloned);
        std::fs::write(dir.join("config"), "[[[not a config").unwrap();
        std::fs::write(dir.join("HEAD"), "garbage").unwrap();
        let (_r, recloned) = open_or_init(&dir).unwrap();
        assert!(recloned);
        let (_r, recloned) = open_or_init(&dir).unwrap();
        assert!(!recloned);
    }

    #[test]
    fn locks_serialise_and_time_out() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("m.git");
        let far = Instant::now() + Duration::from_secs(5);
        let held = MirrorLock::acquire(&dir, far).unwrap();
        let soon = Instant::now() + Duration::from_millis(100);
        assert!(MirrorLock::acquire(&dir, soon).is_err());
        let other = root.path().join("other.git");
        assert!(MirrorLock::acquire(&other, soon).is_ok());
        drop(held);
        assert!(MirrorLock::acquire(&dir, far).is_ok());
    }
}
