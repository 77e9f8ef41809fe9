//! Change detection and the render cache.
//!
//! A render reads a set of files (the renderer records them). Its output can only differ
//! at another commit if one of those files differs, or if a directory it looked in gained,
//! lost or retyped an entry (a new `kustomization.yml` next to a `kustomization.yaml`, a
//! symlink retargeted). So a target is affected by a range of commits when the diff of
//! the range touches one of those, when its definition in `keelson.yaml` changed, or when
//! its previous render failed. Rendered output is cached under a hash of exactly those
//! inputs' contents, so an unchanged target, or one changed back, is never rendered twice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use git2::Oid;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Snapshot;
use crate::config::{Project, Target};
use crate::render::{self, RenderOptions};

/// How a path changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Added,
    Deleted,
    Modified,
    /// A file became a symlink, or the reverse.
    TypeChanged,
}

/// A path that differs between two trees. A rename is a deletion plus an addition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathChange {
    pub path: PathBuf,
    pub status: Status,
    /// Whether either side is a symlink.
    pub symlink: bool,
}

/// The paths that differ between the trees of two commits. Subtrees with the same id
/// are skipped without being read, so the cost follows the size of the change, not of
/// the repository.
pub fn diff_commits(
    repo: &git2::Repository,
    from: Oid,
    to: Oid,
) -> Result<Vec<PathChange>, git2::Error> {
    let old = repo.find_commit(from)?.tree_id();
    let new = repo.find_commit(to)?.tree_id();
    let mut out = Vec::new();
    diff_trees(repo, Some(old), Some(new), Path::new(""), &mut out)?;
    Ok(out)
}

const TREE: i32 = 0o040000;
const LINK: i32 = 0o120000;

fn tree_entries(
    repo: &git2::Repository,
    tree: Option<Oid>,
) -> Result<Vec<(String, Oid, i32)>, git2::Error> {
    let Some(tree) = tree else {
        return Ok(Vec::new());
    };
    let tree = repo.find_tree(tree)?;
    let mut entries: Vec<(String, Oid, i32)> = tree
        .iter()
        .filter_map(|e| Some((e.name().ok()?.to_string(), e.id(), e.filemode())))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

fn diff_trees(
    repo: &git2::Repository,
    old: Option<Oid>,
    new: Option<Oid>,
    prefix: &Path,
    out: &mut Vec<PathChange>,
) -> Result<(), git2::Error> {
    if old == new {
        return Ok(());
    }
    let (a, b) = (tree_entries(repo, old)?, tree_entries(repo, new)?);
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let order = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => x.0.cmp(&y.0),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        let (left, right) = match order {
            std::cmp::Ordering::Less => {
                i += 1;
                (a.get(i - 1), None)
            }
            std::cmp::Ordering::Greater => {
                j += 1;
                (None, b.get(j - 1))
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
                (a.get(i - 1), b.get(j - 1))
            }
        };
        let name = left.or(right).map(|e| e.0.as_str()).unwrap_or_default();
        let path = prefix.join(name);
        type E<'e> = Option<&'e (String, Oid, i32)>;
        fn dir(e: E<'_>) -> Option<Oid> {
            e.filter(|e| e.2 == TREE).map(|e| e.1)
        }
        fn file(e: E<'_>) -> E<'_> {
            e.filter(|e| e.2 != TREE)
        }
        if left.map(|e| (e.1, e.2)) == right.map(|e| (e.1, e.2)) {
            continue;
        }
        // Directories on either side: recurse (a directory replaced by a file shows as
        // its files deleted plus the file added).
        if dir(left).is_some() || dir(right).is_some() {
            diff_trees(repo, dir(left), dir(right), &path, out)?;
        }
        let (l, r) = (file(left), file(right));
        let status = match (l, r) {
            (None, None) => continue,
            (Some(_), None) => Status::Deleted,
            (None, Some(_)) => Status::Added,
            (Some(x), Some(y)) if (x.2 == LINK) != (y.2 == LINK) => Status::TypeChanged,
            (Some(_), Some(_)) => Status::Modified,
        };
        out.push(PathChange {
            path,
            status,
            symlink: l.is_some_and(|e| e.2 == LINK) || r.is_some_and(|e| e.2 == LINK),
        });
    }
    Ok(())
}

/// What one render of a target read, with the content ids at that commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    /// The target's kustomization directory.
    pub path: PathBuf,
    /// Every file read (relative to the repository root) and its blob id.
    pub files: Vec<(PathBuf, String)>,
    /// Every directory looked in and a hash of its entry names and kinds.
    pub dirs: Vec<(PathBuf, String)>,
    /// The hash of all of the above: the key of the cached output.
    pub key: String,
    /// The render's error, when it failed.
    pub error: Option<String>,
}

/// Why a target is affected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "camelCase")]
pub enum Reason {
    /// New in `keelson.yaml`.
    Added,
    /// Gone from `keelson.yaml` (its objects need pruning).
    Removed,
    /// Its entry in `keelson.yaml` changed.
    Definition,
    /// A file its render read changed.
    File { path: PathBuf, status: Status },
    /// A directory its render looked in gained, lost or retyped an entry.
    Directory { dir: PathBuf, path: PathBuf },
    /// Its path (or a parent) itself changed.
    Path { path: PathBuf },
    /// The previous render failed, so what it reads is unknown.
    PreviousRenderFailed,
    /// No record of the previous render.
    Unknown,
}

/// A target a range of commits touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Affected {
    pub target: String,
    pub reasons: Vec<Reason>,
}

/// The targets whose render (or sync) the change from `from` to `to` can alter, given
/// what each target's render at `from` read. Sorted by target name.
pub fn affected(
    from: Option<&Project>,
    to: &Project,
    inputs: &BTreeMap<String, Inputs>,
    changes: &[PathChange],
) -> Vec<Affected> {
    let mut out = Vec::new();
    let old: BTreeMap<&str, &Target> = from
        .map(|p| p.targets.iter().map(|t| (t.name.as_str(), t)).collect())
        .unwrap_or_default();
    let mut names: Vec<&Target> = to.targets.iter().collect();
    names.sort_by(|a, b| a.name.cmp(&b.name));
    for t in names {
        let mut reasons = Vec::new();
        match old.get(t.name.as_str()) {
            None => reasons.push(Reason::Added),
            Some(before) if !same_definition(before, t) => reasons.push(Reason::Definition),
            Some(_) => {}
        }
        match inputs.get(&t.name) {
            _ if reasons.contains(&Reason::Added) => {}
            None => reasons.push(Reason::Unknown),
            Some(i) if i.error.is_some() => reasons.push(Reason::PreviousRenderFailed),
            Some(i) => reasons.extend(touching(i, &t.path, changes)),
        }
        if !reasons.is_empty() {
            out.push(Affected {
                target: t.name.clone(),
                reasons,
            });
        }
    }
    for name in old.keys() {
        if to.target(name).is_none() {
            out.push(Affected {
                target: (*name).to_string(),
                reasons: vec![Reason::Removed],
            });
        }
    }
    out.sort_by(|a, b| a.target.cmp(&b.target));
    out
}

fn same_definition(a: &Target, b: &Target) -> bool {
    // Compare through Debug: every field is plain data, and this stays right when fields
    // are added to the config.
    format!("{a:?}") == format!("{b:?}")
}

fn touching(inputs: &Inputs, target_path: &Path, changes: &[PathChange]) -> Vec<Reason> {
    let files: BTreeSet<&Path> = inputs.files.iter().map(|(p, _)| p.as_path()).collect();
    let dirs: BTreeSet<&Path> = inputs.dirs.iter().map(|(p, _)| p.as_path()).collect();
    let mut reasons = Vec::new();
    for c in changes {
        if files.contains(c.path.as_path()) {
            reasons.push(Reason::File {
                path: c.path.clone(),
                status: c.status,
            });
            continue;
        }
        let parent = c.path.parent().unwrap_or(Path::new(""));
        let relists = c.status != Status::Modified || c.symlink;
        if relists && dirs.contains(parent) {
            reasons.push(Reason::Directory {
                dir: parent.to_path_buf(),
                path: c.path.clone(),
            });
            continue;
        }
        if target_path.starts_with(&c.path) {
            reasons.push(Reason::Path {
                path: c.path.clone(),
            });
        }
    }
    reasons
}

/// Bytes of rendered outputs one repository's cache keeps (most recently used first).
pub const OUTPUT_BYTES: u64 = 128 * 1024 * 1024;

/// The render cache of one repository: per commit, what each target's render read; per
/// input hash, the rendered objects. Plain JSON files, safe to delete at any time.
#[derive(Debug, Clone)]
pub struct RenderCache {
    dir: PathBuf,
    options: RenderOptions,
}

/// What `keelson changed` reports: the paths a range of commits changed and the targets
/// they touch.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeReport {
    pub from: String,
    pub to: String,
    pub paths: Vec<PathChange>,
    pub targets: Vec<Affected>,
    /// Targets rendered at `from` to learn what they read (0 when cached).
    pub rendered_at_from: usize,
}

/// Objects as rendered.
pub type Objects = Vec<serde_json::Map<String, serde_json::Value>>;

/// The render of one target at one commit.
#[derive(Debug, Clone)]
pub struct TargetRender {
    pub inputs: Inputs,
    /// The objects, or why there are none.
    pub output: Result<Arc<Objects>, Arc<render::RenderError>>,
    /// Whether the output came from the cache.
    pub cached: bool,
}

/// Every target rendered at one commit.
#[derive(Debug, Clone, Default)]
pub struct CommitRenders {
    pub targets: BTreeMap<String, TargetRender>,
    /// How many targets were rendered, and how many came from the cache.
    pub rendered: usize,
    pub reused: usize,
}

impl CommitRenders {
    /// What each target's render read.
    pub fn inputs(&self) -> BTreeMap<String, Inputs> {
        self.targets
            .iter()
            .map(|(k, v)| (k.clone(), v.inputs.clone()))
            .collect()
    }
}

impl RenderCache {
    /// A cache in `dir` (created on first write) of renders made with `options`.
    pub fn new(dir: PathBuf, options: RenderOptions) -> Self {
        RenderCache { dir, options }
    }

    fn inputs_file(&self, commit: Oid) -> PathBuf {
        let tag = Sha256::digest(format!("{:?}", self.options).as_bytes());
        let tag: String = tag[..4].iter().map(|b| format!("{b:02x}")).collect();
        self.dir
            .join("commits")
            .join(format!("{commit}-{tag}.json"))
    }

    fn output_file(&self, key: &str) -> PathBuf {
        self.dir.join("outputs").join(format!("{key}.json"))
    }

    /// What each target's render read at `commit`, if recorded.
    pub fn inputs_at(&self, commit: Oid) -> Option<BTreeMap<String, Inputs>> {
        let bytes = std::fs::read(self.inputs_file(commit)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Records what each target's render read at `commit`.
    pub fn save_inputs(&self, commit: Oid, inputs: &BTreeMap<String, Inputs>) {
        if let Ok(bytes) = serde_json::to_vec(inputs) {
            write_atomic(&self.inputs_file(commit), &bytes);
        }
    }

    /// The cached output for an input hash.
    pub fn output(&self, key: &str) -> Option<Objects> {
        let path = self.output_file(key);
        let bytes = std::fs::read(&path).ok()?;
        // Mark as recently used, for `prune`.
        if let Ok(f) = std::fs::File::options().append(true).open(&path) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
        serde_json::from_slice(&bytes).ok()
    }

    fn save_output(&self, key: &str, objects: &Objects) {
        if let Ok(bytes) = serde_json::to_vec(objects) {
            write_atomic(&self.output_file(key), &bytes);
        }
    }

    /// Renders every target of `project` at `snapshot`. A target whose recorded inputs
    /// (from `previous`, any earlier commit) have the same content here is not rendered:
    /// its output comes from the cache. Records the inputs at this commit.
    pub fn render_all(
        &self,
        snapshot: &Snapshot,
        project: &Project,
        previous: Option<&BTreeMap<String, Inputs>>,
    ) -> CommitRenders {
        let mut out = CommitRenders::default();
        for target in &project.targets {
            let prior = previous.and_then(|p| p.get(&target.name));
            let r = self.render_target(snapshot, target, prior);
            if r.cached {
                out.reused += 1;
            } else {
                out.rendered += 1;
            }
            out.targets.insert(target.name.clone(), r);
        }
        self.save_inputs(snapshot.commit(), &out.inputs());
        self.prune(256, 16 * 1024, OUTPUT_BYTES);
        out
    }

    /// Keeps the `commits` most recent commit records, and the most recently used outputs
    /// up to `outputs` files and `bytes` bytes in all; older ones are deleted.
    pub fn prune(&self, commits: usize, outputs: usize, bytes: u64) {
        for (dir, keep, budget) in [("commits", commits, u64::MAX), ("outputs", outputs, bytes)] {
            let Ok(read) = std::fs::read_dir(self.dir.join(dir)) else {
                continue;
            };
            let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = read
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let m = e.metadata().ok()?;
                    Some((m.modified().ok()?, m.len(), e.path()))
                })
                .collect();
            files.sort_by_key(|f| std::cmp::Reverse(f.0));
            let mut total = 0u64;
            for (i, (_, len, path)) in files.into_iter().enumerate() {
                total = total.saturating_add(len);
                if i >= keep || total > budget {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }

    /// Renders one target, or takes its output from the cache when `prior`'s inputs have
    /// the same content at this commit.
    pub fn render_target(
        &self,
        snapshot: &Snapshot,
        target: &Target,
        prior: Option<&Inputs>,
    ) -> TargetRender {
        // The cache's restrictor is the most a target may ask for: a target that asks to
        // read outside its kustomization where that was not granted fails, saying so.
        let mut options = self.options;
        let asked = target.load_restrictor.get();
        if asked == render::LoadRestrictor::None
            && self.options.load_restrictor == render::LoadRestrictor::RootOnly
        {
            let e = render::RenderError::Field {
                path: snapshot.root().join(crate::config::FILE_NAME),
                field: format!("target {}: loadRestrictor", target.name),
                message: "LoadRestrictionsNone is not granted to this repository by the engine's operator (ServeConfig repositories[].allowLoadRestrictionsNone)".into(),
            };
            let inputs = record(
                snapshot,
                &target.path,
                vec![],
                "refused",
                Some(e.to_string()),
            );
            return TargetRender {
                inputs,
                output: Err(Arc::new(e)),
                cached: false,
            };
        }
        options.load_restrictor = asked;
        // The same files rendered another way are another render.
        let how = format!("{options:?} {:?}", target.renderer);
        if let Some(prior) = prior.filter(|p| p.error.is_none() && p.path == target.path)
            && let Some(inputs) = inputs_at(snapshot, prior, &how)
            && let Some(objects) = self.output(&inputs.key)
        {
            return TargetRender {
                inputs,
                output: Ok(Arc::new(objects)),
                cached: true,
            };
        }
        match render::target(snapshot.fs(), snapshot.root(), target, options) {
            Ok(rendered) => {
                let files = rendered
                    .files_read
                    .iter()
                    .filter_map(|p| snapshot.relative(p).map(Path::to_path_buf))
                    .collect();
                let inputs = record(snapshot, &target.path, files, &how, None);
                self.save_output(&inputs.key, &rendered.objects);
                TargetRender {
                    inputs,
                    output: Ok(Arc::new(rendered.objects)),
                    cached: false,
                }
            }
            Err(e) => {
                let inputs = record(snapshot, &target.path, vec![], &how, Some(e.to_string()));
                TargetRender {
                    inputs,
                    output: Err(Arc::new(e)),
                    cached: false,
                }
            }
        }
    }
}

/// The inputs `prior` read, with their content at `snapshot`; `None` if one is gone.
fn inputs_at(snapshot: &Snapshot, prior: &Inputs, how: &str) -> Option<Inputs> {
    let tree = snapshot.objects();
    let files = prior
        .files
        .iter()
        .map(|(p, _)| Some((p.clone(), tree.file_id(p)?.to_string())))
        .collect::<Option<Vec<_>>>()?;
    let dirs = prior
        .dirs
        .iter()
        .map(|(p, _)| Some((p.clone(), tree.listing_id(p)?)))
        .collect::<Option<Vec<_>>>()?;
    Some(finish(prior.path.clone(), files, dirs, how, None))
}

fn record(
    snapshot: &Snapshot,
    target_path: &Path,
    files: Vec<PathBuf>,
    how: &str,
    error: Option<String>,
) -> Inputs {
    let tree = snapshot.objects();
    let mut dirs: BTreeSet<PathBuf> = files
        .iter()
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    dirs.insert(target_path.to_path_buf());
    let files = files
        .into_iter()
        .map(|f| {
            let id = tree.file_id(&f).map(|o| o.to_string()).unwrap_or_default();
            (f, id)
        })
        .collect();
    let dirs = dirs
        .into_iter()
        .map(|d| {
            let id = tree.listing_id(&d).unwrap_or_default();
            (d, id)
        })
        .collect();
    finish(target_path.to_path_buf(), files, dirs, how, error)
}

fn finish(
    path: PathBuf,
    files: Vec<(PathBuf, String)>,
    dirs: Vec<(PathBuf, String)>,
    how: &str,
    error: Option<String>,
) -> Inputs {
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(format!("\0{how}\0{}\0", path.display()).as_bytes());
    for (p, id) in files.iter().chain(&dirs) {
        h.update(p.as_os_str().as_encoded_bytes());
        h.update([0]);
        h.update(id.as_bytes());
        h.update([0]);
    }
    let key = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Inputs {
        path,
        files,
        dirs,
        key,
        error,
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) {
    let Some(parent) = path.parent() else { return };
    if std::fs::create_dir_all(parent).is_err() {
        return;
    }
    let tmp = parent.join(format!(
        ".tmp-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    if std::fs::write(&tmp, bytes).is_ok() && std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(files: &[&str], dirs: &[&str]) -> Inputs {
        Inputs {
            path: "overlays/a".into(),
            files: files
                .iter()
                .map(|f| (PathBuf::from(f), "x".into()))
                .collect(),
            dirs: dirs
                .iter()
                .map(|d| (PathBuf::from(d), "x".into()))
                .collect(),
            key: String::new(),
            error: None,
        }
    }

    fn change(path: &str, status: Status) -> PathChange {
        PathChange {
            path: path.into(),
            status,
            symlink: false,
        }
    }

    #[test]
    fn tree_diff_matches_libgit2() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let commit = |files: &[(&str, &str, i32)]| {
            let mut index = git2::Index::new().unwrap();
            for (path, text, mode) in files {
                let id = repo.blob(text.as_bytes()).unwrap();
                let mut e = git2::IndexEntry {
                    ctime: git2::IndexTime::new(0, 0),
                    mtime: git2::IndexTime::new(0, 0),
                    dev: 0,
                    ino: 0,
                    mode: *mode as u32,
                    uid: 0,
                    gid: 0,
                    file_size: 0,
                    id,
                    flags: 0,
                    flags_extended: 0,
                    path: path.as_bytes().to_vec(),
                };
                e.flags = path.len() as u16;
                index.add(&e).unwrap();
            }
            let tree = index.write_tree_to(&repo).unwrap();
            let tree = repo.find_tree(tree).unwrap();
            let sig = git2::Signature::now("t", "t@t").unwrap();
            repo.commit(None, &sig, &sig, "m", &tree, &[]).unwrap()
        };
        let a = commit(&[
            ("a/b/c.yaml", "1", 0o100644),
            ("a/b/d.yaml", "1", 0o100644),
            ("a/x", "1", 0o100644),
            ("keep/k", "1", 0o100644),
            ("link", "a/x", 0o120000),
            ("gone/deep/f", "1", 0o100644),
            ("run.sh", "1", 0o100644),
        ]);
        let b = commit(&[
            ("a/b/c.yaml", "2", 0o100644),
            ("a/b/e.yaml", "1", 0o100644),
            ("a/x/now-a-dir", "1", 0o100644),
            ("keep/k", "1", 0o100644),
            ("link", "a/b/c.yaml", 0o100644),
            ("new/n", "1", 0o100644),
            ("run.sh", "1", 0o100755),
        ]);
        let ours: Vec<(String, Status)> = diff_commits(&repo, a, b)
            .unwrap()
            .into_iter()
            .map(|c| (c.path.display().to_string(), c.status))
            .collect();
        let (ta, tb) = (
            repo.find_commit(a).unwrap().tree().unwrap(),
            repo.find_commit(b).unwrap().tree().unwrap(),
        );
        let mut opts = git2::DiffOptions::new();
        opts.include_typechange(true);
        let diff = repo
            .diff_tree_to_tree(Some(&ta), Some(&tb), Some(&mut opts))
            .unwrap();
        let mut theirs: Vec<(String, Status)> = diff
            .deltas()
            .map(|d| {
                let status = match d.status() {
                    git2::Delta::Added => Status::Added,
                    git2::Delta::Deleted => Status::Deleted,
                    git2::Delta::Typechange => Status::TypeChanged,
                    _ => Status::Modified,
                };
                let f = if status == Status::Deleted {
                    d.old_file()
                } else {
                    d.new_file()
                };
                (f.path().unwrap().display().to_string(), status)
            })
            .collect();
        let mut sorted = ours.clone();
        sorted.sort();
        theirs.sort();
        assert_eq!(sorted, theirs);
    }

    #[test]
    fn prune_keeps_the_most_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RenderCache::new(dir.path().to_path_buf(), RenderOptions::default());
        for i in 0..5 {
            cache.save_output(&format!("k{i}"), &vec![]);
            std::thread::sleep(std::time::Duration::from_millis(15));
        }
        assert!(cache.output("k0").is_some()); // used: now the most recent
        cache.prune(10, 2, u64::MAX);
        let left: Vec<bool> = (0..5)
            .map(|i| cache.output(&format!("k{i}")).is_some())
            .collect();
        assert_eq!(left, [true, false, false, false, true]);
    }

    #[test]
    fn prune_keeps_outputs_within_the_byte_budget() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RenderCache::new(dir.path().to_path_buf(), RenderOptions::default());
        let mut obj = serde_json::Map::new();
        obj.insert("data".into(), "x".repeat(1000).into());
        for i in 0..5 {
            cache.save_output(&format!("k{i}"), &vec![obj.clone()]);
            std::thread::sleep(std::time::Duration::from_millis(15));
        }
        // Room for two of the ~1 KB outputs: the two most recent stay.
        cache.prune(10, 100, 2500);
        let left: Vec<bool> = (0..5)
            .map(|i| cache.output(&format!("k{i}")).is_some())
            .collect();
        assert_eq!(left, [false, false, false, true, true]);
    }

    #[test]
    fn what_touches_a_target() {
        let i = inputs(
            &["overlays/a/kustomization.yaml", "base/cm.yaml"],
            &["overlays/a", "base"],
        );
        let p = Path::new("overlays/a");
        let cases = [
            (change("base/cm.yaml", Status::Modified), true),
            (change("base/README.md", Status::Modified), false),
            (change("base/kustomization.yml", Status::Added), true),
            (change("base/old.yaml", Status::Deleted), true),
            (
                change("overlays/b/kustomization.yaml", Status::Modified),
                false,
            ),
            (change("overlays/b/new.yaml", Status::Added), false),
            (change("overlays/a", Status::TypeChanged), true),
            (change("overlays", Status::Deleted), true),
        ];
        for (c, hit) in cases {
            let got = !touching(&i, p, std::slice::from_ref(&c)).is_empty();
            assert_eq!(got, hit, "{c:?}");
        }
    }
}
