//! The source stage: fetch exact commits of git repositories with libgit2 into a cache of
//! bare mirrors, hand the renderer a read-only view of a commit's tree, and work out which
//! targets a range of commits touches.
//!
//! - [`url`]: repository URLs (https, ssh, git://, file://, local paths);
//! - [`credentials`]: tokens, passwords and ssh keys named in configuration, never printed;
//! - [`known_hosts`]: ssh host key checking;
//! - `mirror`: the cache directory (one bare mirror per URL, locked, re-cloned when corrupt);
//! - [`fetch`]: ref listing and incremental, optionally shallow fetches under a deadline;
//! - [`tree`]: a commit's tree as a [`crate::render::FileSystem`], or a worktree on disk;
//! - [`changes`]: changed paths between commits, targets they touch, the render cache;
//! - [`poll`]: cron schedules and the poller (back-off, last good commit).

pub mod changes;
pub mod credentials;
pub mod fetch;
pub mod known_hosts;
mod mirror;
pub mod poll;
pub mod sockets;
pub mod tree;
pub mod url;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use credentials::{Auth, Secret, SecretRef};
pub use fetch::{Fetched, Rev};
pub use git2::Oid;
use serde::Deserialize;
pub use tree::GitTreeFs;
pub use url::RepoUrl;

use crate::config::{ConfigError, Project};
use crate::render::{DiskFs, FileSystem, RenderOptions};

/// A source operation failed. Every variant names the repository (its URL holds no
/// secret) and text from the server is scrubbed of the configured secrets.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{url}: {message}")]
    Url { url: String, message: String },
    #[error("{url}: credentials: {message}")]
    Credentials { url: String, message: String },
    #[error("{url}: authentication failed: {message}")]
    Auth { url: String, message: String },
    #[error("{url}: ssh host key of {host} refused: {message}")]
    HostKey {
        url: String,
        host: String,
        message: String,
    },
    #[error("{url}: repository unreachable: {message}")]
    Unreachable { url: String, message: String },
    #[error("{url}: fetch timed out after {}s", after.as_secs_f32())]
    Timeout { url: String, after: Duration },
    #[error("{url}: no branch, tag or ref named {rev:?} on the remote")]
    RefNotFound { url: String, rev: String },
    #[error("{url}: branch {branch:?} was deleted on the remote (it was at {last})")]
    BranchDeleted {
        url: String,
        branch: String,
        last: String,
    },
    #[error("{url}: commit {sha} not found: no branch or tag of the remote reaches it")]
    CommitNotFound { url: String, sha: String },
    #[error("{url}: {op}: {message}")]
    Git {
        url: String,
        op: &'static str,
        message: String,
    },
    #[error("git cache {}: {message}", path.display())]
    Cache { path: PathBuf, message: String },
    #[error("{url} at {commit}: {message}")]
    Tree {
        url: String,
        commit: String,
        message: String,
    },
    #[error("{url} at {commit}: {source}")]
    Config {
        url: String,
        commit: String,
        source: ConfigError,
    },
}

/// How to reach one repository.
#[derive(Debug, Clone)]
pub struct RepoSpec {
    pub url: RepoUrl,
    pub auth: Auth,
    /// Fetch only this many commits of history, where the server allows it.
    pub depth: Option<u32>,
    /// Give up on a fetch (connect, list, download) after this long.
    pub timeout: Duration,
}

impl RepoSpec {
    /// A repository reached without credentials, full history, a 2 minute timeout.
    pub fn new(url: RepoUrl) -> Self {
        RepoSpec {
            url,
            auth: Auth::default(),
            depth: None,
            timeout: Duration::from_secs(120),
        }
    }
}

/// A repository as configured for the engine (not in the repository itself: it names
/// where credentials are, which a repository must not choose).
///
/// ```yaml
/// url: https://git.example.com/org/deploy.git
/// ref: main
/// poll: "*/2 * * * *"        # cron, fallback to webhooks; 5, 6 or 7 fields
/// depth: 1                   # shallow, where the server allows it
/// timeout: 60s
/// github: org/deploy        # webhooks and commit statuses (default: from a GitHub URL)
/// auth:
///   username: deploy-bot
///   token: {env: KEELSON_GIT_TOKEN}       # or password: {file: /run/secrets/git}
///   # sshKey: {file: /run/secrets/id_ed25519}, knownHosts: /etc/keelson/known_hosts
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RepositoryConfig {
    pub url: String,
    #[serde(rename = "ref", default = "default_ref")]
    pub reference: String,
    #[serde(default)]
    pub poll: Option<String>,
    #[serde(default)]
    pub auth: Auth,
    #[serde(default)]
    pub depth: Option<u32>,
    #[serde(default)]
    pub timeout: Option<String>,
    /// `owner/name` on GitHub (webhooks, commit statuses); default: from a GitHub URL.
    #[serde(default)]
    pub github: Option<String>,
    /// `keelson serve`: the repository's targets may render with kustomize's
    /// `LoadRestrictionsNone` (files outside a kustomization's directory, never outside
    /// the repository). For trusted repositories only; off by default.
    #[serde(default)]
    pub allow_load_restrictions_none: bool,
    /// `keelson serve`: the clusters, namespaces and cluster-scoped kinds its targets may
    /// write (default: all of them).
    #[serde(default)]
    pub destinations: crate::tenancy::Destinations,
    /// `keelson serve`: `namespace/name` of a ServiceAccount every request for this
    /// repository impersonates, on every cluster, so RBAC bounds what it can do.
    #[serde(default)]
    pub service_account: Option<String>,
}

fn default_ref() -> String {
    "HEAD".into()
}

impl RepositoryConfig {
    /// Validates; errors are (field, message) with `field` prefixed.
    pub fn resolve(
        &self,
        field: &str,
    ) -> Result<(RepoSpec, Rev, Option<crate::time::Cron>), (String, String)> {
        let url = RepoUrl::parse(&self.url).map_err(|m| (format!("{field}.url"), m))?;
        let rev = Rev::parse(&self.reference).map_err(|m| (format!("{field}.ref"), m))?;
        let poll = self
            .poll
            .as_deref()
            .map(crate::time::Cron::parse)
            .transpose()
            .map_err(|m| (format!("{field}.poll"), m))?;
        self.auth.validate(&format!("{field}.auth"))?;
        if self.depth == Some(0) {
            return Err((format!("{field}.depth"), "must be at least 1".into()));
        }
        let mut spec = RepoSpec::new(url);
        spec.auth = self.auth.clone();
        spec.depth = self.depth;
        if let Some(t) = &self.timeout {
            spec.timeout = crate::time::parse_duration(t)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    (
                        format!("{field}.timeout"),
                        format!("{t:?} is not a duration like 30s, 5m or 1h (above zero)"),
                    )
                })?;
        }
        Ok((spec, rev, poll))
    }
}

/// How a commit's tree is handed to the renderer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TreeMode {
    /// Read blobs straight from the object database (nothing written; the default:
    /// faster, see BENCHMARKS.md).
    #[default]
    Objects,
    /// Write a content-addressed worktree and read it from disk.
    Checkout,
}

/// The cache of git repositories and the operations on it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Source {
    root: PathBuf,
    /// Worktrees kept per repository (checkout mode).
    pub keep_trees: usize,
}

impl Source {
    /// A cache rooted at `root` (created on first use).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Source {
            root: root.into(),
            keep_trees: 4,
        }
    }

    /// `$KEELSON_CACHE_DIR`, else `$XDG_CACHE_HOME/keelson`, else `~/.cache/keelson`.
    pub fn default_root() -> PathBuf {
        if let Some(d) = std::env::var_os("KEELSON_CACHE_DIR") {
            return PathBuf::from(d);
        }
        if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
            return Path::new(&d).join("keelson");
        }
        match std::env::var_os("HOME") {
            Some(h) => Path::new(&h).join(".cache/keelson"),
            None => std::env::temp_dir().join("keelson-cache"),
        }
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The bare mirror of `url`.
    pub fn mirror_dir(&self, url: &RepoUrl) -> PathBuf {
        mirror::mirror_dir(&self.root, url)
    }

    /// Fetches `rev` (blocking). A commit already cached costs nothing; a name costs one
    /// ref listing, plus a download of the objects the cache lacks. Times out after
    /// `spec.timeout` even when the server stops answering.
    pub fn fetch(&self, spec: &RepoSpec, rev: &Rev) -> Result<Fetched, SourceError> {
        // `main~2`, `v1.4^`: fetch what the name before the suffix names, then walk
        // its (fetched) history.
        if let Rev::Name(name) = rev
            && let Some(i) = name.find(['~', '^'])
            && i > 0
        {
            let base = Rev::parse(&name[..i]).map_err(|message| SourceError::Url {
                url: spec.url.to_string(),
                message,
            })?;
            let mut fetched = self.fetch(spec, &base)?;
            let expr = format!("{}{}", fetched.commit, &name[i..]);
            fetched.commit = self
                .open_mirror(&spec.url)?
                .revparse_single(&expr)
                .and_then(|o| o.peel_to_commit())
                .map(|c| c.id())
                .map_err(|e| SourceError::Tree {
                    url: spec.url.to_string(),
                    commit: name.clone(),
                    message: format!("{} (a shallow fetch lacks older history)", e.message()),
                })?;
            return Ok(fetched);
        }
        sockets::configure(sockets::DEFAULT_READ_TIMEOUT);
        let cancel = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + spec.timeout;
        let (tx, rx) = std::sync::mpsc::channel();
        let (root, job_spec, job_rev, job_cancel) =
            (self.root.clone(), spec.clone(), rev.clone(), cancel.clone());
        // libgit2 cannot be interrupted while it waits on a silent socket; the worker is
        // left to finish on its own (holding only its repository's lock).
        let spawned = std::thread::Builder::new()
            .name(format!("keelson-fetch-{}", spec.url.name()))
            .spawn(move || {
                let r = fetch::fetch_blocking(&root, &job_spec, &job_rev, &job_cancel, deadline);
                let _ = tx.send(r);
            });
        if let Err(e) = spawned {
            return Err(SourceError::Git {
                url: spec.url.to_string(),
                op: "fetch",
                message: format!("cannot start a fetch thread: {e}"),
            });
        }
        match rx.recv_timeout(spec.timeout + Duration::from_millis(500)) {
            Ok(r) => r,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                cancel.store(true, Ordering::Relaxed);
                Err(SourceError::Timeout {
                    url: spec.url.to_string(),
                    after: spec.timeout,
                })
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(SourceError::Git {
                url: spec.url.to_string(),
                op: "fetch",
                message: "the fetch thread stopped without an answer".into(),
            }),
        }
    }

    /// [`Source::fetch`] for async callers.
    pub async fn fetch_async(&self, spec: &RepoSpec, rev: &Rev) -> Result<Fetched, SourceError> {
        let (me, spec2, rev2) = (self.clone(), spec.clone(), rev.clone());
        tokio::task::spawn_blocking(move || me.fetch(&spec2, &rev2))
            .await
            .unwrap_or_else(|e| {
                Err(SourceError::Git {
                    url: spec.url.to_string(),
                    op: "fetch",
                    message: e.to_string(),
                })
            })
    }

    fn open_mirror(&self, url: &RepoUrl) -> Result<git2::Repository, SourceError> {
        let dir = self.mirror_dir(url);
        mirror::open(&dir).map_err(|message| SourceError::Cache { path: dir, message })
    }

    /// A read-only view of the tree of `commit`, which must have been fetched.
    pub fn snapshot(
        &self,
        url: &RepoUrl,
        commit: Oid,
        mode: TreeMode,
    ) -> Result<Snapshot, SourceError> {
        let tree_err = |message: String| SourceError::Tree {
            url: url.to_string(),
            commit: commit.to_string(),
            message,
        };
        let repo = self.open_mirror(url)?;
        let tree = repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map(|t| t.id())
            .map_err(|e| tree_err(e.message().to_string()))?;
        let trees = self.root.join("trees").join(url.cache_key());
        let checkout = match mode {
            TreeMode::Objects => None,
            TreeMode::Checkout => Some(
                tree::checkout(&repo, tree, &trees, self.keep_trees)
                    .map_err(|e| tree_err(format!("checkout: {e}")))?,
            ),
        };
        let short = &commit.to_string()[..12];
        let root = PathBuf::from(format!("/{}@{short}", url.name()));
        // External tools (helm, a kustomize binary) get the same worktree, written the
        // first time one asks.
        let objects = GitTreeFs::new(repo, tree, root)
            .map_err(|e| tree_err(e.to_string()))?
            .with_worktrees(trees, self.keep_trees);
        Ok(Snapshot {
            url: url.to_string(),
            commit,
            objects,
            checkout,
        })
    }

    /// Fetches `rev` and opens its tree.
    pub fn open(
        &self,
        spec: &RepoSpec,
        rev: &Rev,
        mode: TreeMode,
    ) -> Result<(Fetched, Snapshot), SourceError> {
        let fetched = self.fetch(spec, rev)?;
        let snapshot = self.snapshot(&spec.url, fetched.commit, mode)?;
        Ok((fetched, snapshot))
    }

    /// The paths that differ between the trees of two fetched commits.
    pub fn diff(
        &self,
        url: &RepoUrl,
        from: Oid,
        to: Oid,
    ) -> Result<Vec<changes::PathChange>, SourceError> {
        let repo = self.open_mirror(url)?;
        changes::diff_commits(&repo, from, to).map_err(|e| SourceError::Tree {
            url: url.to_string(),
            commit: format!("{from}..{to}"),
            message: e.message().to_string(),
        })
    }

    /// Whether `descendant` has `ancestor` in its history (false after a force-push).
    pub fn is_ancestor(&self, url: &RepoUrl, ancestor: Oid, descendant: Oid) -> bool {
        self.open_mirror(url).is_ok_and(|r| {
            ancestor == descendant || r.graph_descendant_of(descendant, ancestor).unwrap_or(false)
        })
    }

    /// The render cache of a repository, for renders made with `options`.
    pub fn renders(&self, url: &RepoUrl, options: RenderOptions) -> changes::RenderCache {
        changes::RenderCache::new(self.root.join("renders").join(url.cache_key()), options)
    }

    /// The targets the commits from `from` to `to` touch: fetches both, learns what each
    /// target's render at `from` reads (from the render cache, else by rendering), and
    /// intersects that with the diff of the two trees.
    pub fn changed(
        &self,
        spec: &RepoSpec,
        from: &Rev,
        to: &Rev,
        options: RenderOptions,
    ) -> Result<changes::ChangeReport, SourceError> {
        let a = self.fetch(spec, from)?.commit;
        let b = self.fetch(spec, to)?.commit;
        let config_err = |commit: Oid| {
            let url = spec.url.to_string();
            move |source| SourceError::Config {
                url,
                commit: commit.to_string(),
                source,
            }
        };
        let project_b = self
            .snapshot(&spec.url, b, TreeMode::Objects)?
            .project()
            .map_err(config_err(b))?;
        let paths = self.diff(&spec.url, a, b)?;
        let cache = self.renders(&spec.url, options);
        let snap_a = self.snapshot(&spec.url, a, TreeMode::Objects)?;
        // Without a valid keelson.yaml at `from`, every target at `to` is new.
        let (project_a, inputs, rendered) = match snap_a.project() {
            Err(_) => (None, Default::default(), 0),
            Ok(p) => match cache.inputs_at(a) {
                Some(inputs) => (Some(p), inputs, 0),
                None => {
                    let r = cache.render_all(&snap_a, &p, None);
                    (Some(p), r.inputs(), r.rendered)
                }
            },
        };
        let targets = changes::affected(project_a.as_ref(), &project_b, &inputs, &paths);
        Ok(changes::ChangeReport {
            from: a.to_string(),
            to: b.to_string(),
            paths,
            targets,
            rendered_at_from: rendered,
        })
    }
}

/// A read-only view of one commit's tree.
#[derive(Debug)]
pub struct Snapshot {
    url: String,
    commit: Oid,
    objects: GitTreeFs,
    checkout: Option<PathBuf>,
}

impl Snapshot {
    /// The commit.
    pub fn commit(&self) -> Oid {
        self.commit
    }

    /// The repository URL (no secrets).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The absolute path the tree is seen at through [`Snapshot::fs`].
    pub fn root(&self) -> &Path {
        self.checkout
            .as_deref()
            .unwrap_or_else(|| self.objects.root())
    }

    /// The tree, for the renderer.
    pub fn fs(&self) -> &dyn FileSystem {
        match self.checkout {
            Some(_) => &DiskFs,
            None => &self.objects,
        }
    }

    /// The tree read from the object database (ids, listings), whatever the mode.
    pub fn objects(&self) -> &GitTreeFs {
        &self.objects
    }

    /// `path` (as the renderer saw it, under [`Snapshot::root`]) relative to the root.
    pub fn relative<'p>(&self, path: &'p Path) -> Option<&'p Path> {
        path.strip_prefix(self.root()).ok()
    }

    /// Reads `keelson.yaml` at this commit, resolves its clusters against what the
    /// operator granted the repository, and validates it.
    pub fn project_granted(
        &self,
        grant: &crate::tenancy::Grant<'_>,
    ) -> Result<Project, ConfigError> {
        let path = self.root().join(crate::config::FILE_NAME);
        let mut project = Project::parse(&self.read_config(&path)?, &path)?;
        grant.apply(&mut project, &path)?;
        project.validate_in(self.fs(), self.root(), &path)?;
        Ok(project)
    }

    fn read_config(&self, path: &Path) -> Result<String, ConfigError> {
        let bytes = self.fs().read(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        String::from_utf8(bytes).map_err(|_| ConfigError::Read {
            path: path.to_path_buf(),
            message: "not UTF-8".into(),
        })
    }

    /// Reads and validates `keelson.yaml` at this commit.
    pub fn project(&self) -> Result<Project, ConfigError> {
        let path = self.root().join(crate::config::FILE_NAME);
        let project = Project::parse(&self.read_config(&path)?, &path)?;
        project.validate_in(self.fs(), self.root(), &path)?;
        Ok(project)
    }
}

/// Where a command's input comes from: a local directory, or a repository at a revision.
#[derive(Debug, Clone)]
pub enum Location {
    Local(PathBuf),
    Remote { spec: Box<RepoSpec>, rev: Rev },
}

impl Location {
    /// The repository the location is, as its syncs record it: the remote URL, or for a
    /// local directory inside a git work tree its `origin` remote (none otherwise, and
    /// none for a URL keelson cannot read).
    pub fn origin(&self) -> Option<RepoUrl> {
        match self {
            Location::Remote { spec, .. } => Some(spec.url.clone()),
            Location::Local(dir) => {
                let repo = git2::Repository::discover(dir).ok()?;
                let remote = repo.find_remote("origin").ok()?;
                RepoUrl::parse(remote.url().ok()?).ok()
            }
        }
    }
}

/// A tree to render: a local directory or a fetched commit.
#[derive(Debug)]
pub enum Tree {
    Local(PathBuf),
    Git {
        fetched: Fetched,
        snapshot: Box<Snapshot>,
    },
}

impl Tree {
    /// Resolves a location (fetching when it is remote) into a tree `build`, `diff` and
    /// `sync` can render from.
    pub fn open(source: &Source, location: &Location, mode: TreeMode) -> Result<Tree, SourceError> {
        match location {
            Location::Local(dir) => Ok(Tree::Local(dir.clone())),
            Location::Remote { spec, rev } => {
                let (fetched, snapshot) = source.open(spec, rev, mode)?;
                Ok(Tree::Git {
                    fetched,
                    snapshot: Box::new(snapshot),
                })
            }
        }
    }

    /// The files.
    pub fn fs(&self) -> &dyn FileSystem {
        match self {
            Tree::Local(_) => &DiskFs,
            Tree::Git { snapshot, .. } => snapshot.fs(),
        }
    }

    /// The root: the local directory, or the commit's tree.
    pub fn root(&self) -> &Path {
        match self {
            Tree::Local(dir) => dir,
            Tree::Git { snapshot, .. } => snapshot.root(),
        }
    }

    /// `rel` under the root.
    pub fn path(&self, rel: &Path) -> PathBuf {
        self.root().join(rel)
    }

    /// The commit, for a fetched tree.
    pub fn commit(&self) -> Option<Oid> {
        match self {
            Tree::Local(_) => None,
            Tree::Git { fetched, .. } => Some(fetched.commit),
        }
    }

    /// `keelson.yaml` at the root.
    pub fn project(&self) -> Result<Project, ConfigError> {
        match self {
            Tree::Local(dir) => Project::load(dir),
            Tree::Git { snapshot, .. } => snapshot.project(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(RepoSpec, Rev, Option<crate::time::Cron>), (String, String)> {
        let c: RepositoryConfig = crate::yaml::from_str(text).unwrap();
        c.resolve("repositories[0]")
    }

    #[test]
    fn repository_config() {
        let (spec, rev, poll) = parse(
            "url: https://git.example.com/org/deploy.git\nref: main\npoll: '*/2 * * * *'\n\
             depth: 1\ntimeout: 30s\nauth:\n  token: {env: GIT_TOKEN}\n",
        )
        .unwrap();
        assert_eq!(spec.url.host(), "git.example.com");
        assert_eq!(rev, Rev::Name("main".into()));
        assert!(poll.is_some());
        assert_eq!(spec.timeout, Duration::from_secs(30));
        assert_eq!(spec.depth, Some(1));
        let cases = [
            ("url: 'https://u:p@h/x'\n", "repositories[0].url"),
            ("url: /x\nref: 'a..b'\n", "repositories[0].ref"),
            ("url: /x\npoll: every minute\n", "repositories[0].poll"),
            ("url: /x\ntimeout: soon\n", "repositories[0].timeout"),
            ("url: /x\ndepth: 0\n", "repositories[0].depth"),
            (
                "url: /x\nauth: {token: {env: A, file: /b}}\n",
                "repositories[0].auth.token",
            ),
        ];
        for (text, field) in cases {
            let (f, m) = parse(text).unwrap_err();
            assert_eq!(f, field, "{m}");
        }
    }
}
