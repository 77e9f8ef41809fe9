//! The engine loop. Per watched repository a poller fetches the ref on its cron schedule
//! and whenever a webhook for the repository arrives (a webhook is "poll now", so both
//! paths fetch, render and decide the same way). A commit that moves the ref is rendered
//! once per target (reusing renders whose inputs did not change); the targets whose
//! inputs it touched are queued, and workers sync each queued target to its clusters.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use git2::Oid;
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::config::{Settings, Watched};
use super::events;
use super::github::{self, CommitStatus, State, StatusReporter};
use super::lease::Shard;
use super::queue::{Job, Queue, Reason};
use super::repositories::RepositoryStatus;
use super::state::{Board, Outcome, Phase};
use crate::apply;
use crate::cluster;
use crate::config::{self, Project, Target, Verdict};
use crate::gate;
use crate::inventory;
use crate::render::RenderOptions;
use crate::source::poll::{Backoff, PollEvent, Poller};
use crate::source::{Source, TreeMode, changes};
use crate::sync::Error;

/// A target's render at a commit: the objects, or the render error.
type Render = Result<Arc<Vec<Map<String, Value>>>, Arc<crate::render::RenderError>>;

/// A commit of a repository, rendered.
#[derive(Debug)]
struct Current {
    commit: Oid,
    project: Project,
    /// Per target: the objects or the render error.
    renders: BTreeMap<String, Render>,
}

#[derive(Debug)]
struct Repo {
    watched: Watched,
    current: Mutex<Option<Arc<Current>>>,
    wake: mpsc::Sender<()>,
    health: Mutex<RepositoryStatus>,
}

/// The running engine. Shared by its tasks and the HTTP handlers.
pub struct Engine {
    settings: Settings,
    source: Source,
    pub board: Arc<Board>,
    queue: Queue,
    repos: Vec<Repo>,
    clients: Mutex<HashMap<String, cluster::Cluster>>,
    /// Retry backoff per (target, cluster) that failed and has not synced since.
    failures: Mutex<HashMap<(String, String), Backoff>>,
    /// Which clusters this replica syncs.
    shard: Shard,
    /// GitHub commit statuses, sent in order per context without holding up syncs.
    statuses: Option<Statuses>,
    /// The gate verdict of each target's latest gated commit: (commit, verdict).
    gates: Mutex<HashMap<(usize, String), (String, gate::Verdict)>>,
    /// Names this replica in Events and statuses.
    pub identity: String,
    /// Set when shutdown begins.
    draining: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// Handles of a started engine.
pub struct Started {
    pub engine: Arc<Engine>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Started {
    /// Stops polling and taking jobs, lets the syncs in flight finish for up to `grace`,
    /// then abandons the rest. Returns how many were still running at the deadline.
    pub async fn shutdown(self, grace: std::time::Duration) -> usize {
        self.engine.queue.close_now();
        for t in &self.tasks {
            t.abort();
        }
        let deadline = tokio::time::Instant::now() + grace;
        let mut abandoned = 0;
        for mut w in self.workers {
            if tokio::time::timeout_at(deadline, &mut w).await.is_err() {
                w.abort();
                abandoned += 1;
            }
        }
        abandoned
    }
}

/// What the engine reports to and shares with, besides its settings.
pub struct Extras {
    /// Cluster ownership among replicas ([`Shard::single`]: all of them).
    pub shard: Shard,
    /// Commit statuses on GitHub, when configured.
    pub statuses: Option<StatusReporter>,
}

/// Status senders: a context always goes to the same worker, so its statuses keep their
/// order (pending before success); different contexts go out in parallel.
struct Statuses {
    workers: Vec<mpsc::Sender<(String, String, CommitStatus)>>,
}

/// Statuses waiting per sender; past it (GitHub down or slow for long) new ones are dropped
/// rather than held in memory: each is superseded by the next sync's anyway.
const STATUS_BACKLOG: usize = 512;

impl Statuses {
    fn start(reporter: StatusReporter) -> Self {
        let workers = (0..4)
            .map(|_| {
                let (tx, mut rx) = mpsc::channel::<(String, String, CommitStatus)>(STATUS_BACKLOG);
                let reporter = reporter.clone();
                tokio::spawn(async move {
                    while let Some((repo, sha, status)) = rx.recv().await {
                        if let Err(error) = reporter.report(&repo, &sha, &status).await {
                            tracing::warn!(%error, "commit status not sent");
                        }
                    }
                });
                tx
            })
            .collect();
        Statuses { workers }
    }

    fn send(&self, repo: &str, sha: &str, status: CommitStatus) {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        status.context.hash(&mut h);
        let i = (h.finish() as usize) % self.workers.len();
        if let Err(mpsc::error::TrySendError::Full(_)) =
            self.workers[i].try_send((repo.to_string(), sha.to_string(), status))
        {
            tracing::warn!(
                repository = repo,
                "commit status dropped: {STATUS_BACKLOG} already waiting"
            );
        }
    }
}

impl Engine {
    /// Starts pollers, workers and (with `self_heal`) the drift checks.
    pub fn start(settings: Settings, source: Source, identity: String, extras: Extras) -> Started {
        let board = Arc::new(Board::default());
        let mut pollers = Vec::new();
        let mut repos = Vec::new();
        for w in &settings.repositories {
            let (wake_tx, wake_rx) = mpsc::channel(1);
            let poller = Poller::new(
                source.clone(),
                w.spec.clone(),
                w.rev.clone(),
                w.poll.clone(),
            );
            pollers.push((poller, wake_rx));
            repos.push(Repo {
                watched: w.clone(),
                current: Mutex::new(None),
                wake: wake_tx,
                health: Mutex::new(RepositoryStatus::new(
                    w.spec.url.to_string(),
                    w.rev.to_string(),
                )),
            });
        }
        let engine = Arc::new(Engine {
            queue: Queue::default(),
            board,
            repos,
            clients: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            gates: Mutex::new(HashMap::new()),
            shard: extras.shard,
            statuses: extras.statuses.map(Statuses::start),
            identity,
            source,
            settings,
            draining: Default::default(),
        });
        let mut tasks = Vec::new();
        for (i, (poller, wake_rx)) in pollers.into_iter().enumerate() {
            let (events_tx, mut events_rx) = mpsc::channel(4);
            tasks.push(tokio::spawn(poller.run(events_tx, Some(wake_rx))));
            let me = engine.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(event) = events_rx.recv().await {
                    me.on_poll(i, event).await;
                }
            }));
            // The first poll, now.
            let _ = engine.repos[i].wake.try_send(());
        }
        let mut workers = Vec::new();
        for _ in 0..engine.settings.concurrency {
            let me = engine.clone();
            workers.push(tokio::spawn(async move {
                while let Some(job) = me.queue.next().await {
                    let key = job.key.clone();
                    me.run_job(job).await;
                    me.queue.done(&key);
                    me.board.queue_depth.store(
                        me.queue.depth() as u64,
                        std::sync::atomic::Ordering::Relaxed,
                    );
                }
            }));
        }
        {
            // Clusters this replica takes over (another one died or left): sync them.
            let me = engine.clone();
            let mut changes = engine.shard.changed();
            tasks.push(tokio::spawn(async move {
                let mut before = changes.borrow().clone();
                while changes.changed().await.is_ok() {
                    let now = changes.borrow().clone();
                    let gained: BTreeSet<String> = now.difference(&before).cloned().collect();
                    before = now;
                    if !gained.is_empty() {
                        tracing::info!(clusters = ?gained, "took over clusters");
                        me.resync_clusters(&gained);
                    }
                }
            }));
        }
        if let Some(schedule) = engine.settings.self_heal.clone() {
            let me = engine.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let now = chrono::Utc::now();
                    let Some(next) = schedule.next_after(now) else {
                        return;
                    };
                    tokio::time::sleep((next - now).to_std().unwrap_or_default()).await;
                    me.self_heal();
                }
            }));
        }
        Started {
            engine,
            tasks,
            workers,
        }
    }

    /// A webhook push: poll the repositories it names now, matched by their clone URLs
    /// (HTTPS or SSH, in any spelling of the same repository) or, from GitHub, by
    /// `owner/name`. Returns whether a watched repository matched.
    pub fn wake(&self, t: &keelson_webhooks::Trigger) -> bool {
        let identity = |url: &str| {
            crate::source::RepoUrl::parse(url)
                .ok()
                .map(|u| u.identity())
        };
        let sent: Vec<String> = std::iter::once(t.clone_url.as_str())
            .chain(t.ssh_url.as_deref())
            .filter_map(identity)
            .collect();
        let mut any = false;
        for r in &self.repos {
            let by_name = t.host == keelson_webhooks::Host::GitHub
                && r.watched.github.as_deref() == Some(t.repository.as_str());
            let by_url = sent.contains(&r.watched.spec.url.identity());
            if by_name || by_url {
                // A full channel already holds a wake-up: the poll it causes sees this push.
                let _ = r.wake.try_send(());
                any = true;
            }
        }
        if any {
            self.board.trigger("webhook");
        }
        any
    }

    /// The engine takes webhooks (for `/readyz`): it is not shutting down. A repository
    /// that cannot be fetched or read is that repository's problem, shown in its status;
    /// it does not take the others' webhooks away.
    pub fn ready(&self) -> bool {
        !self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Shutdown has begun: not ready any more.
    pub fn drain(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Every repository's health, in configuration order.
    pub fn repositories(&self) -> Vec<RepositoryStatus> {
        self.repos
            .iter()
            .map(|r| {
                r.health
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            })
            .collect()
    }

    fn health(&self, repo: usize, change: impl FnOnce(&mut RepositoryStatus)) {
        change(
            &mut self.repos[repo]
                .health
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
    }

    fn current(&self, repo: usize) -> Option<Arc<Current>> {
        self.repos[repo]
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn push(&self, job: Job) {
        if self.queue.push(job) {
            self.board
                .coalesced
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.board.queue_depth.store(
            self.queue.depth() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Queues every target that selects one of `clusters`, for those clusters.
    fn resync_clusters(&self, clusters: &BTreeSet<String>) {
        for (i, _) in self.repos.iter().enumerate() {
            let Some(current) = self.current(i) else {
                continue;
            };
            for t in &current.project.targets {
                let mine: BTreeSet<String> = current
                    .project
                    .clusters_of(t)
                    .into_iter()
                    .filter(|c| clusters.contains(&c.name))
                    .map(|c| c.name.clone())
                    .collect();
                if !mine.is_empty() {
                    self.push(Job {
                        key: (i, t.name.clone()),
                        commit: current.commit.to_string(),
                        reason: Reason::Retry,
                        clusters: Some(mine),
                    });
                }
            }
        }
    }

    /// Drops what is kept per target or cluster for targets and clusters no repository's
    /// current commit has any more: board rows and series, backoffs, gate verdicts.
    fn forget_removed(&self) {
        let currents: Vec<(usize, Arc<Current>)> = (0..self.repos.len())
            .filter_map(|i| self.current(i).map(|c| (i, c)))
            .collect();
        let pairs: BTreeSet<(String, String)> = currents
            .iter()
            .flat_map(|(_, c)| {
                c.project
                    .targets
                    .iter()
                    .flat_map(|t| {
                        c.project
                            .clusters_of(t)
                            .into_iter()
                            .map(|cl| (t.name.clone(), cl.name.clone()))
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        self.board.retain(&pairs);
        let configured: BTreeSet<String> = currents
            .iter()
            .flat_map(|(_, c)| c.project.clusters.iter().map(|cl| format!("{cl:?}")))
            .collect();
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|k, _| configured.contains(k));
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|k, _| pairs.contains(k));
        self.gates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(repo, target), _| {
                currents
                    .iter()
                    .any(|(i, c)| i == repo && c.project.target(target).is_some())
            });
    }

    /// Every cluster named by the current commit of any repository.
    fn known_clusters(&self) -> BTreeSet<String> {
        (0..self.repos.len())
            .filter_map(|i| self.current(i))
            .flat_map(|c| {
                c.project
                    .clusters
                    .iter()
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Sends a commit status for (target, cluster), when GitHub reporting is on.
    fn status(
        &self,
        repo: usize,
        commit: &str,
        target: &str,
        cluster: &str,
        state: State,
        description: &str,
    ) {
        if let (Some(statuses), Some(name)) = (&self.statuses, &self.repos[repo].watched.github) {
            statuses.send(
                name,
                commit,
                CommitStatus {
                    state,
                    context: github::context(target, cluster),
                    description: description.to_string(),
                    target_url: None,
                },
            );
        }
    }

    fn self_heal(&self) {
        self.board.trigger("selfHeal");
        for (i, _) in self.repos.iter().enumerate() {
            let Some(current) = self.current(i) else {
                continue;
            };
            for t in current.project.targets.iter().filter(|t| t.sync.self_heal) {
                self.push(Job {
                    key: (i, t.name.clone()),
                    commit: current.commit.to_string(),
                    reason: Reason::SelfHeal,
                    clusters: None,
                });
            }
        }
    }

    async fn on_poll(self: &Arc<Self>, repo: usize, event: PollEvent) {
        let (from, to) = match event {
            PollEvent::Moved { from, to, .. } => (from, to),
            PollEvent::Unchanged { commit } => {
                self.health(repo, |h| h.fetched(commit.to_string(), None));
                self.board.trigger("poll");
                return;
            }
            PollEvent::Failed { error, .. } => {
                tracing::warn!(repository = %self.repos[repo].watched.spec.url, %error, "fetch failed");
                self.health(repo, |h| h.failed(error.to_string()));
                return;
            }
        };
        self.board.trigger("poll");
        let url = self.repos[repo].watched.spec.url.clone();
        let span = tracing::info_span!("commit", repository = %url, commit = %to);
        let source = self.source.clone();
        let previous = self.current(repo);
        let options = RenderOptions {
            // A repository's env files never read the engine's environment.
            env_lookups: crate::render::EnvLookups::Refused,
            budget: self.settings.limits.render_budget(),
            // The most a target of this repository may ask for.
            load_restrictor: if self.repos[repo].watched.allow_load_restrictions_none {
                crate::render::LoadRestrictor::None
            } else {
                crate::render::LoadRestrictor::RootOnly
            },
            ..RenderOptions::default()
        };
        let granted = Granted {
            clusters: self.settings.clusters.clone(),
            destinations: self.repos[repo].watched.destinations.clone(),
            impersonate: self.repos[repo].watched.impersonate.clone(),
        };
        let prepared = tokio::task::spawn_blocking(move || {
            prepare(&source, &url, (from, to), previous, options, &granted)
        })
        .instrument(span.clone())
        .await;
        let (current, affected) = match prepared {
            Ok(Ok(p)) => p,
            Ok(Err(message)) => {
                let _g = span.enter();
                tracing::error!(%message, "commit not deployable");
                let message = format!("commit {to} is not deployable: {message}");
                self.health(repo, |h| h.fetched(to.to_string(), Some(Err(message))));
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "preparing the commit panicked");
                let message = format!("commit {to} could not be prepared: {e}");
                self.health(repo, |h| h.fetched(to.to_string(), Some(Err(message))));
                return;
            }
        };
        self.health(repo, |h| h.fetched(to.to_string(), Some(Ok(()))));
        let current = Arc::new(current);
        *self.repos[repo]
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(current.clone());
        self.shard.set_clusters(self.known_clusters());
        self.forget_removed();
        {
            let _g = span.enter();
            tracing::info!(targets = ?affected, "commit touches targets");
        }
        for t in &current.project.targets {
            if affected.as_ref().is_none_or(|a| a.contains(&t.name)) {
                self.push(Job {
                    key: (repo, t.name.clone()),
                    commit: to.to_string(),
                    reason: Reason::Commit,
                    clusters: None,
                });
            }
        }
        let me = self.clone();
        tokio::spawn(async move { me.sweep_removed(repo).await }.instrument(span));
    }

    /// Removes, from every cluster of its current commit that this replica owns, the
    /// targets this repository synced before and no longer has, as the policy each
    /// target's parent remembers (`onRemoval`) says. Found on the clusters, not in memory,
    /// so a target removed while the engine was down goes too.
    async fn sweep_removed(self: &Arc<Self>, repo: usize) {
        let Some(current) = self.current(repo) else {
            return;
        };
        let origin = inventory::Origin::of(&self.repos[repo].watched.spec.url);
        let present: BTreeSet<String> = current
            .project
            .targets
            .iter()
            .map(|t| t.name.clone())
            .collect();
        for c in &current.project.clusters {
            if !self.shard.owns(&c.name) {
                continue;
            }
            let found = match self.client(c).await {
                Ok(connected) => crate::plan::removal::removed(&connected, &origin, &present)
                    .await
                    .map(|r| (connected, r))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let (connected, removed) = match found {
                Ok(found) => found,
                Err(error) => {
                    tracing::warn!(cluster = %c.name, %error, "looking for removed targets");
                    continue;
                }
            };
            for r in removed {
                let mut options = apply::Options::from_policy(&r.removal.policy());
                let (shard, owned) = (self.shard.clone(), c.name.clone());
                options.fence = Some(apply::Fence::new(move || shard.owns(&owned)));
                let (kind, reason, note) = match apply::remove(&connected, &r, &options).await {
                    Ok(report) if report.plan.removed == Some(config::OnRemoval::Prune) => (
                        events::Kind::Normal,
                        "Removed",
                        format!(
                            "target {} left keelson.yaml: {} object(s) pruned, {} kept, inventory deleted",
                            r.target,
                            report.pruned.len(),
                            report.plan.kept.len()
                        ),
                    ),
                    Ok(report) => (
                        events::Kind::Normal,
                        "Orphaned",
                        format!(
                            "target {} left keelson.yaml: its {} object(s) stay, no longer managed; inventory deleted",
                            r.target,
                            report.plan.kept.len()
                        ),
                    ),
                    Err(e) => (events::Kind::Warning, "RemovalFailed", e.to_string()),
                };
                tracing::info!(target = %r.target, cluster = %c.name, %note, "removed target");
                events::record(&connected, &r.set, kind, reason, &note, &self.identity).await;
            }
        }
    }

    /// Syncs one target at its repository's current commit to the clusters of the job.
    async fn run_job(self: &Arc<Self>, job: Job) {
        let (repo, target_name) = &job.key;
        let Some(current) = self.current(*repo) else {
            return;
        };
        let Some(target) = current.project.target(target_name).cloned() else {
            tracing::info!(target = %target_name, "target no longer in keelson.yaml; left as is");
            return;
        };
        let commit = current.commit.to_string();
        let span = tracing::info_span!("target", target = %target.name, commit = %commit, reason = ?job.reason);
        let clusters: Vec<config::Cluster> = current
            .project
            .clusters_of(&target)
            .into_iter()
            .filter(|c| job.clusters.as_ref().is_none_or(|s| s.contains(&c.name)))
            .cloned()
            .collect();
        let Some(rendered) = current.renders.get(&target.name).cloned() else {
            return;
        };
        if let Some(g) = &target.gate
            && !self
                .gate_passed(&job, &current, &target, g, &clusters)
                .await
        {
            return;
        }
        let mut work = Vec::new();
        for c in clusters {
            let me = self.clone();
            let (rendered, target, current, job) = (
                rendered.clone(),
                target.clone(),
                current.clone(),
                job.clone(),
            );
            let span = tracing::info_span!(parent: &span, "cluster", cluster = %c.name);
            work.push(tokio::spawn(
                async move { me.sync_cluster(&job, &current, &target, &c, rendered).await }
                    .instrument(span),
            ));
        }
        for w in work {
            if let Err(e) = w.await {
                tracing::error!(error = %e, "a cluster sync panicked");
            }
        }
    }

    async fn sync_cluster(
        self: &Arc<Self>,
        job: &Job,
        current: &Current,
        target: &Target,
        cluster_cfg: &config::Cluster,
        rendered: Render,
    ) {
        let repository = self.repos[job.key.0].watched.spec.url.to_string();
        let commit_text = current.commit.to_string();
        let commit = commit_text.as_str();
        let (t, c) = (target.name.as_str(), cluster_cfg.name.as_str());
        if !self.shard.owns(c) {
            self.board.update(&repository, t, c, |r| {
                r.phase = Phase::Elsewhere;
                r.desired_commit = Some(commit.to_string());
                r.message = "synced by another replica".into();
            });
            return;
        }
        let started = Instant::now();
        let fail = |error: Error| {
            let message = error.to_string();
            let reason = error.metric_label();
            self.board.update(&repository, t, c, |r| {
                r.phase = Phase::Failed;
                r.message = message.clone();
                r.reason = Some(reason.to_string());
                r.last_attempt = Some(chrono::Utc::now());
            });
            self.board.result(t, c, Outcome::Failure, started.elapsed());
            self.board.failure(t, c, reason);
            self.status(job.key.0, commit, t, c, State::Failure, &message);
            // A permanent failure waits for a new commit (or a person), not a backoff.
            let retry = error.is_transient();
            tracing::warn!(%message, reason, retry, "sync failed");
            if retry {
                self.retry_later(job, c);
            }
        };
        let objects = match rendered {
            Ok(o) => o,
            Err(e) => return fail(Error::Render(e)),
        };
        let connected = match self.client(cluster_cfg).await {
            Ok(cl) => cl,
            Err(e) => return fail(e.into()),
        };
        let origin = inventory::Origin::of(&self.repos[job.key.0].watched.spec.url);
        let set = inventory::Set::new(t, Some(&origin));
        // Already there? The cluster's own record says (it survives our restarts).
        if !job.forced() {
            let known = match self.board.synced_commit(t, c) {
                Some(k) => Some(k),
                None => synced_commit(&connected, &set).await.unwrap_or(None),
            };
            if known.as_deref() == Some(commit) {
                self.board.update(&repository, t, c, |r| {
                    r.phase = Phase::Synced;
                    r.reason = None;
                    r.synced_commit = Some(commit.to_string());
                    r.desired_commit = Some(commit.to_string());
                    r.message = "already at this commit".into();
                });
                self.board.result(t, c, Outcome::Skipped, started.elapsed());
                return;
            }
        }
        if let Verdict::Denied(denial) =
            current
                .project
                .sync_windows
                .verdict(t, c, chrono::Utc::now())
        {
            let until = denial.until;
            let message = denial.to_string();
            self.board.update(&repository, t, c, |r| {
                r.phase = Phase::Waiting;
                r.desired_commit = Some(commit.to_string());
                r.message = message.clone();
            });
            self.board
                .result(t, c, Outcome::Deferred, started.elapsed());
            self.status(job.key.0, commit, t, c, State::Pending, &message);
            // Look again when the window ends (or in a minute, when no end is in sight).
            let delay = until
                .and_then(|u| (u - chrono::Utc::now()).to_std().ok())
                .unwrap_or(std::time::Duration::from_secs(60))
                + std::time::Duration::from_millis(50);
            self.queue.push_later(
                Job {
                    key: job.key.clone(),
                    commit: commit.to_string(),
                    reason: job.reason,
                    clusters: Some(BTreeSet::from([c.to_string()])),
                },
                delay,
            );
            return;
        }
        self.status(
            job.key.0,
            commit,
            t,
            c,
            State::Pending,
            &format!("syncing {}", &commit[..12]),
        );
        self.board.update(&repository, t, c, |r| {
            r.phase = Phase::Syncing;
            r.desired_commit = Some(commit.to_string());
            r.last_attempt = Some(chrono::Utc::now());
        });
        let mut options = apply::Options::from_policy(&target.sync);
        options.commit = Some(commit.to_string());
        options.origin = Some(origin);
        options.destinations = Some(self.repos[job.key.0].watched.destinations.clone());
        // The repository chooses how long to wait for health; the operator caps it.
        options.timeout = options.timeout.min(self.settings.limits.max_wait.get());
        let shard = self.shard.clone();
        let owned = c.to_string();
        options.fence = Some(apply::Fence::new(move || shard.owns(&owned)));
        match apply::sync(&connected, t, &objects, &options).await {
            Ok(report) => {
                let took = started.elapsed();
                let takeovers = report.takeovers();
                // Git won over someone's edit: said first, so the status's 140 characters
                // keep it.
                let took_over = match takeovers.as_slice() {
                    [] => String::new(),
                    [one] => format!("took over {one}; "),
                    [first, more @ ..] => {
                        format!("took over {first} and {} more field(s); ", more.len())
                    }
                };
                let note = format!(
                    "{took_over}synced {} to {}: {} applied, {} pruned, {} unchanged in {} ms",
                    t,
                    &commit[..commit.len().min(12)],
                    report.applied.len(),
                    report.pruned.len(),
                    report.plan.count(crate::plan::Action::Unchanged),
                    took.as_millis()
                );
                tracing::info!(
                    applied = report.applied.len(),
                    pruned = report.pruned.len(),
                    ms = took.as_millis() as u64,
                    "synced"
                );
                self.failures
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&(t.to_string(), c.to_string()));
                self.board.update(&repository, t, c, |r| {
                    r.phase = Phase::Synced;
                    r.reason = None;
                    r.synced_commit = Some(commit.to_string());
                    r.message = note.clone();
                    r.last_sync = Some(chrono::Utc::now());
                    r.syncs += 1;
                });
                self.board.result(t, c, Outcome::Success, took);
                self.status(job.key.0, commit, t, c, State::Success, &note);
                if !takeovers.is_empty() {
                    events::record(
                        &connected,
                        &set,
                        events::Kind::Normal,
                        "TookOver",
                        &format!(
                            "{} field(s) owned by other managers taken back for Git at {}: {}",
                            takeovers.len(),
                            &commit[..commit.len().min(12)],
                            takeovers.join("; ")
                        ),
                        &self.identity,
                    )
                    .await;
                }
                if !report.applied.is_empty() || !report.pruned.is_empty() {
                    events::record(
                        &connected,
                        &set,
                        events::Kind::Normal,
                        "Synced",
                        &note,
                        &self.identity,
                    )
                    .await;
                }
            }
            Err(e) => {
                let error = Error::from(e);
                let message = error.to_string();
                events::record(
                    &connected,
                    &set,
                    events::Kind::Warning,
                    "SyncFailed",
                    &message,
                    &self.identity,
                )
                .await;
                fail(error);
            }
        }
    }

    /// Runs (or recalls) the target's pipeline gate for the current commit. While it runs
    /// the target's clusters show `waiting`; a failed run marks them failed until a new
    /// commit comes; an error reaching Tekton retries later.
    async fn gate_passed(
        self: &Arc<Self>,
        job: &Job,
        current: &Arc<Current>,
        target: &Target,
        g: &config::Gate,
        clusters: &[config::Cluster],
    ) -> bool {
        let repository = self.repos[job.key.0].watched.spec.url.to_string();
        let commit = current.commit.to_string();
        let key = job.key.clone();
        let known = self
            .gates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .filter(|(c, _)| *c == commit)
            .map(|(_, v)| v.clone());
        let mark = |phase: Phase, message: &str| {
            for c in clusters {
                self.board.update(&repository, &target.name, &c.name, |r| {
                    r.phase = phase;
                    r.desired_commit = Some(commit.clone());
                    r.message = message.to_string();
                });
            }
        };
        let verdict = match known {
            Some(v) => Ok(v),
            None => {
                mark(
                    Phase::Waiting,
                    &format!("pipeline gate {} running", g.pipeline),
                );
                let verdict = self.run_gate(job.key.0, current, target, g).await;
                if let Ok(v) = &verdict {
                    self.gates
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(key, (commit.clone(), v.clone()));
                }
                verdict
            }
        };
        match verdict {
            Ok(gate::Verdict::Passed(_)) => true,
            Ok(gate::Verdict::Failed(message)) => {
                mark(Phase::Failed, &format!("pipeline gate failed: {message}"));
                false
            }
            Err(error) => {
                mark(Phase::Failed, &error.to_string());
                if error.is_transient() {
                    for c in clusters {
                        self.retry_later(job, &c.name);
                    }
                }
                false
            }
        }
    }

    async fn run_gate(
        &self,
        repo: usize,
        current: &Arc<Current>,
        target: &Target,
        g: &config::Gate,
    ) -> Result<gate::Verdict, Error> {
        let url = self.repos[repo].watched.spec.url.clone();
        let (source, commit, g2) = (self.source.clone(), current.commit, g.clone());
        let pipeline = tokio::task::spawn_blocking(move || {
            let snapshot = source
                .snapshot(&url, commit, TreeMode::Objects)
                .map_err(|e| gate::GateError::Tekton(e.to_string()))?;
            gate::pipeline_at(snapshot.fs(), snapshot.root(), &g2)
        })
        .await
        .map_err(|e| gate::GateError::Tekton(e.to_string()))??;
        // Validation checked that the gate's cluster exists.
        let cluster_cfg = current
            .project
            .clusters
            .iter()
            .find(|c| c.name == g.cluster)
            .ok_or_else(|| Error::Selection {
                what: "cluster",
                name: g.cluster.clone(),
            })?
            .clone();
        let client = self.client(&cluster_cfg).await?;
        let cap = self.settings.limits.max_gate.get();
        let repository = self.repos[repo]
            .watched
            .github
            .clone()
            .unwrap_or_else(|| self.repos[repo].watched.spec.url.to_string());
        let (clone_url, commit) = (
            self.repos[repo].watched.spec.url.to_string(),
            current.commit.to_string(),
        );
        let run = gate::run(
            client.client,
            &pipeline,
            g,
            &repository,
            &clone_url,
            &target.name,
            &commit,
        );
        // A gate holds a worker while it runs: the operator's cap ends the wait, whatever
        // timeout the repository gave its PipelineRun (which is left to Tekton).
        match tokio::time::timeout(cap, run).await {
            Ok(verdict) => verdict.map_err(Error::Gate),
            Err(_) => Err(Error::Gate(gate::GateError::Capped {
                pipeline: g.pipeline.clone(),
                cap,
            })),
        }
    }

    /// Queues this cluster of the job's target again, after an exponential backoff.
    fn retry_later(&self, job: &Job, cluster: &str) {
        let delay = self
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((job.key.1.clone(), cluster.to_string()))
            .or_insert_with(|| Backoff::new(self.settings.retry_base, self.settings.retry_max))
            .fail();
        self.queue.push_later(
            Job {
                key: job.key.clone(),
                commit: job.commit.clone(),
                reason: Reason::Retry,
                clusters: Some(BTreeSet::from([cluster.to_string()])),
            },
            delay,
        );
    }

    async fn client(&self, c: &config::Cluster) -> Result<cluster::Cluster, cluster::ClusterError> {
        let key = format!("{c:?}");
        if let Some(found) = self
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(found.clone());
        }
        let connected = cluster::connect(c, self.settings.kubeconfig.as_deref()).await?;
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, connected.clone());
        Ok(connected)
    }
}

/// What the operator grants a repository, owned, for a blocking task.
struct Granted {
    clusters: Vec<config::Cluster>,
    destinations: crate::tenancy::Destinations,
    impersonate: Option<String>,
}

/// Opens `to`, renders its targets (reusing renders whose inputs are unchanged since
/// `previous`), and works out which targets the change from `from` touches (`None`:
/// all, when there is no earlier commit to compare with).
fn prepare(
    source: &Source,
    url: &crate::source::RepoUrl,
    (from, to): (Option<Oid>, Oid),
    previous: Option<Arc<Current>>,
    options: RenderOptions,
    granted: &Granted,
) -> Result<(Current, Option<BTreeSet<String>>), String> {
    let grant = crate::tenancy::Grant {
        clusters: &granted.clusters,
        destinations: &granted.destinations,
        impersonate: granted.impersonate.as_deref(),
    };
    let snapshot = source
        .snapshot(url, to, TreeMode::Objects)
        .map_err(|e| e.to_string())?;
    let project = snapshot
        .project_granted(&grant)
        .map_err(|e| e.to_string())?;
    let cache = source.renders(url, options);
    let prior = from.and_then(|f| cache.inputs_at(f));
    let affected: Option<BTreeSet<String>> = match (from, prior.as_ref()) {
        (Some(f), Some(inputs)) => {
            let project_from = previous
                .as_ref()
                .filter(|p| p.commit == f)
                .map(|p| p.project.clone())
                .or_else(|| {
                    source
                        .snapshot(url, f, TreeMode::Objects)
                        .ok()
                        .and_then(|s| s.project_granted(&grant).ok())
                });
            match source.diff(url, f, to) {
                Ok(paths) => Some(
                    changes::affected(project_from.as_ref(), &project, inputs, &paths)
                        .into_iter()
                        .map(|a| a.target)
                        .collect(),
                ),
                Err(_) => None,
            }
        }
        _ => None,
    };
    // Every renderer goes through the cache: a target whose inputs this commit did not
    // touch keeps its earlier render, external tools included.
    let renders = cache
        .render_all(&snapshot, &project, prior.as_ref())
        .targets
        .into_iter()
        .map(|(name, r)| (name, r.output))
        .collect();
    Ok((
        Current {
            commit: to,
            project,
            renders,
        },
        affected,
    ))
}

/// The commit recorded on a target's ApplySet parent in a cluster (`None`: none, or no
/// parent yet).
pub async fn synced_commit(
    cluster: &cluster::Cluster,
    set: &inventory::Set,
) -> Result<Option<String>, kube::Error> {
    let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(cluster.inventory.clone(), inventory::PARENT_NAMESPACE);
    Ok(api
        .get_opt(&set.parent_name())
        .await?
        .and_then(|s| s.metadata.annotations)
        .and_then(|a| a.get(inventory::COMMIT).cloned()))
}
