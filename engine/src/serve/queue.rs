//! The engine's work queue: one entry per target. A new job for a target that is already
//! waiting folds into it (the newest commit wins), and a target being synced is never
//! handed out again until it is done, so two syncs of one target never overlap.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// A target of a watched repository: (repository index, target name).
pub type TargetKey = (usize, String);

/// Why a target is synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Reason {
    /// A new commit touches it.
    Commit,
    /// A scheduled drift check (self-heal): sync even if the commit is already synced.
    SelfHeal,
    /// A retry of clusters that failed or waited for a sync window.
    Retry,
}

/// Work for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub key: TargetKey,
    /// The commit to sync (hex).
    pub commit: String,
    pub reason: Reason,
    /// Only these clusters (`None`: every cluster the target selects).
    pub clusters: Option<BTreeSet<String>>,
}

impl Job {
    /// Folds a newer job for the same target into this one: the newer commit wins, the
    /// cluster sets join, and a self-heal or commit reason outranks a retry.
    fn absorb(&mut self, newer: Job) {
        self.clusters = match (self.clusters.take(), newer.clusters) {
            (Some(mut a), Some(b)) => {
                a.extend(b);
                Some(a)
            }
            _ => None,
        };
        if newer.commit != self.commit {
            // A new commit concerns every cluster of the target again.
            self.clusters = None;
        }
        self.commit = newer.commit;
        self.reason = self.reason.min(newer.reason);
    }

    /// A self-heal is forced: it applies even when the commit is recorded as synced.
    pub fn forced(&self) -> bool {
        self.reason == Reason::SelfHeal
    }
}

#[derive(Debug, Default)]
struct Inner {
    waiting: HashMap<TargetKey, Job>,
    order: VecDeque<TargetKey>,
    running: HashSet<TargetKey>,
    /// Jobs due later, one per target (retries and window ends fold together), with when.
    later: HashMap<TargetKey, (Job, tokio::time::Instant)>,
    closed: bool,
}

/// The queue. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Queue {
    inner: Arc<Mutex<Inner>>,
    notify: Arc<Notify>,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a job, folding it into a waiting one of the same target. Returns true when
    /// it was folded (coalesced).
    pub fn push(&self, job: Job) -> bool {
        let folded = {
            let mut inner = self.lock();
            if inner.closed {
                return false;
            }
            match inner.waiting.get_mut(&job.key) {
                Some(waiting) => {
                    waiting.absorb(job);
                    true
                }
                None => {
                    inner.order.push_back(job.key.clone());
                    inner.waiting.insert(job.key.clone(), job);
                    false
                }
            }
        };
        self.notify.notify_waiters();
        self.notify.notify_one();
        folded
    }

    /// Adds `job` after `delay` (retries, sync windows).
    /// A target has at most one job due later: a second one folds into it and keeps the
    /// earlier time, so retry chains never multiply however often a target fails.
    pub fn push_later(&self, job: Job, delay: std::time::Duration) {
        let at = tokio::time::Instant::now() + delay;
        let key = job.key.clone();
        let timer = {
            let mut inner = self.lock();
            if inner.closed {
                return;
            }
            match inner.later.get_mut(&key) {
                Some((pending, due)) => {
                    pending.absorb(job);
                    let sooner = at < *due;
                    *due = (*due).min(at);
                    sooner
                }
                None => {
                    inner.later.insert(key.clone(), (job, at));
                    true
                }
            }
        };
        if timer {
            let queue = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                // A timer that finds the job gone (taken by a sooner one) or not yet due
                // (taken, then a later job came) leaves it to that job's own timer.
                let due = {
                    let mut inner = queue.lock();
                    match inner.later.get(&key) {
                        Some((_, due)) if *due <= tokio::time::Instant::now() => {
                            inner.later.remove(&key).map(|(job, _)| job)
                        }
                        _ => None,
                    }
                };
                if let Some(job) = due {
                    queue.push(job);
                }
            });
        }
    }

    /// Jobs due later (one per target at most).
    pub fn delayed(&self) -> usize {
        self.lock().later.len()
    }

    /// Jobs waiting (not running).
    pub fn depth(&self) -> usize {
        self.lock().waiting.len()
    }

    /// Takes the oldest waiting job whose target is not running; waits for one. `None`
    /// once the queue is closed and drained.
    pub async fn next(&self) -> Option<Job> {
        loop {
            let notified = self.notify.notified();
            {
                let mut inner = self.lock();
                let position = inner.order.iter().position(|k| !inner.running.contains(k));
                if let Some(i) = position
                    && let Some(key) = inner.order.remove(i)
                    && let Some(job) = inner.waiting.remove(&key)
                {
                    inner.running.insert(key);
                    return Some(job);
                }
                if inner.closed && inner.waiting.is_empty() {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Marks a job's target as no longer running.
    pub fn done(&self, key: &TargetKey) {
        self.lock().running.remove(key);
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// No more jobs are accepted; workers drain what waits.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
    }

    /// Closes the queue and forgets what waits in it: workers finish the job they hold and
    /// stop. (Shutdown: the next start polls every repository again.)
    pub fn close_now(&self) {
        {
            let mut inner = self.lock();
            inner.closed = true;
            inner.waiting.clear();
            inner.order.clear();
            inner.later.clear();
        }
        self.notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn job(target: &str, commit: &str, reason: Reason) -> Job {
        Job {
            key: (0, target.into()),
            commit: commit.into(),
            reason,
            clusters: None,
        }
    }

    #[tokio::test]
    async fn newest_commit_wins_for_a_waiting_target() {
        let q = Queue::default();
        assert!(!q.push(job("a", "c1", Reason::Commit)));
        assert!(!q.push(job("b", "c1", Reason::Commit)));
        assert!(q.push(job("a", "c2", Reason::Commit)));
        assert_eq!(q.depth(), 2);
        let first = q.next().await.unwrap();
        assert_eq!((first.key.1.as_str(), first.commit.as_str()), ("a", "c2"));
        let second = q.next().await.unwrap();
        assert_eq!(second.key.1, "b");
    }

    #[tokio::test]
    async fn a_running_target_is_not_handed_out_twice() {
        let q = Queue::default();
        q.push(job("a", "c1", Reason::Commit));
        let running = q.next().await.unwrap();
        q.push(job("a", "c2", Reason::Commit));
        q.push(job("b", "c2", Reason::Commit));
        // `a` waits behind its running sync; `b` goes first.
        let next = q.next().await.unwrap();
        assert_eq!(next.key.1, "b");
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.next().await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        q.done(&running.key);
        let after = waiter.await.unwrap().unwrap();
        assert_eq!((after.key.1.as_str(), after.commit.as_str()), ("a", "c2"));
    }

    #[test]
    fn retries_of_clusters_join_and_a_new_commit_covers_all() {
        let mut a = job("a", "c1", Reason::Retry);
        a.clusters = Some(["x".to_string()].into());
        let mut b = job("a", "c1", Reason::Retry);
        b.clusters = Some(["y".to_string()].into());
        a.absorb(b);
        assert_eq!(a.clusters.as_ref().unwrap().len(), 2);
        a.absorb(job("a", "c1", Reason::SelfHeal));
        assert!(a.clusters.is_none() && a.forced());
        let mut c = job("a", "c1", Reason::Retry);
        c.clusters = Some(["x".to_string()].into());
        let mut d = job("a", "c2", Reason::Retry);
        d.clusters = Some(["x".to_string()].into());
        c.absorb(d);
        assert!(c.clusters.is_none());
        assert_eq!(c.commit, "c2");
    }

    #[tokio::test]
    async fn close_drains_then_ends() {
        let q = Queue::default();
        q.push(job("a", "c1", Reason::Commit));
        q.close();
        assert!(!q.push(job("b", "c1", Reason::Commit)));
        assert!(q.next().await.is_some());
        assert!(q.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn jobs_due_later_fold_into_one_per_target_at_the_earliest_time() {
        let q = Queue::default();
        for i in 0..100 {
            q.push_later(job("a", "c1", Reason::Retry), Duration::from_secs(10 + i));
        }
        q.push_later(job("a", "c2", Reason::Retry), Duration::from_secs(5));
        q.push_later(job("b", "c1", Reason::Retry), Duration::from_secs(60));
        assert_eq!(q.delayed(), 2, "one per target, however many retries");
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(q.depth(), 1);
        let got = q.next().await.unwrap();
        assert_eq!((got.key.1.as_str(), got.commit.as_str()), ("a", "c2"));
        q.done(&got.key);
        // The 100 later timers of "a" find nothing to do.
        tokio::time::sleep(Duration::from_secs(200)).await;
        assert_eq!(q.depth(), 1, "only b");
        assert_eq!(q.delayed(), 0);
    }
}
