//! The trigger queue: one entry per (repository, ref); a newer push replaces a queued one.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::trigger::Trigger;

/// (host, repository, ref): the same `owner/name` on two hosts is two repositories.
type Key = (crate::host::Host, String, String);

/// What became of a trigger handed to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// It waits as a new entry.
    Queued,
    /// It replaced a queued trigger for the same repository and ref.
    Coalesced,
}

/// The queue holds as many distinct refs as it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("trigger queue is full")]
pub struct QueueFull;

#[derive(Debug)]
struct Entry {
    trigger: Trigger,
    ready_at: Instant,
}

#[derive(Debug, Default)]
struct State {
    order: VecDeque<Key>,
    entries: HashMap<Key, Entry>,
    closed: bool,
}

/// The shared queue between the HTTP side (producer) and a [`Triggers`] consumer.
#[derive(Debug)]
pub(crate) struct TriggerQueue {
    state: Mutex<State>,
    notify: Notify,
    capacity: usize,
    window: Duration,
    metrics: Arc<Metrics>,
}

impl TriggerQueue {
    pub(crate) fn new(capacity: usize, window: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            state: Mutex::default(),
            notify: Notify::new(),
            capacity: capacity.max(1),
            window,
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `trigger`, or folds it into the queued trigger for the same repository and ref.
    pub(crate) fn push(&self, trigger: Trigger) -> Result<Enqueued, QueueFull> {
        let key = (
            trigger.host,
            trigger.repository.clone(),
            trigger.git_ref.clone(),
        );
        let mut state = self.lock();
        let outcome = if let Some(entry) = state.entries.get_mut(&key) {
            entry.trigger.absorb(trigger);
            self.metrics.coalesced();
            Enqueued::Coalesced
        } else {
            if state.entries.len() >= self.capacity || state.closed {
                return Err(QueueFull);
            }
            let ready_at = Instant::now() + self.window;
            state.order.push_back(key.clone());
            state.entries.insert(key, Entry { trigger, ready_at });
            Enqueued::Queued
        };
        self.metrics.set_queue_depth(state.entries.len());
        drop(state);
        // Folding into a waiting entry changes nothing the consumer waits on (the head and its
        // deadline): waking it for every push of a burst would only cost a context switch.
        if outcome == Enqueued::Queued {
            self.notify.notify_one();
        }
        Ok(outcome)
    }

    /// Whether a new ref could be queued now.
    pub(crate) fn has_room(&self) -> bool {
        let state = self.lock();
        !state.closed && state.entries.len() < self.capacity
    }

    /// No new triggers; the consumer gets what is queued, then `None`.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// The oldest trigger once its coalescing window has passed; `None` once closed and empty.
    async fn recv(&self) -> Option<Trigger> {
        loop {
            let wait_until = {
                let mut state = self.lock();
                match state.order.front() {
                    None if state.closed => return None,
                    None => None,
                    Some(key) => {
                        let ready_at = state.entries.get(key).map(|e| e.ready_at);
                        match ready_at {
                            // After close, hand out what is left without waiting.
                            Some(at) if at > Instant::now() && !state.closed => Some(at),
                            _ => {
                                let key = state.order.pop_front();
                                let entry = key.and_then(|k| state.entries.remove(&k));
                                self.metrics.set_queue_depth(state.entries.len());
                                if let Some(entry) = entry {
                                    return Some(entry.trigger);
                                }
                                continue;
                            }
                        }
                    }
                }
            };
            match wait_until {
                Some(at) => {
                    // Woken early by a push or close: look again.
                    let _ = tokio::time::timeout_at(at, self.notify.notified()).await;
                }
                None => self.notify.notified().await,
            }
        }
    }
}

/// The consumer's end: triggers in arrival order of their first delivery, coalesced per ref.
#[derive(Debug, Clone)]
pub struct Triggers {
    queue: Arc<TriggerQueue>,
}

impl Triggers {
    pub(crate) fn new(queue: Arc<TriggerQueue>) -> Self {
        Self { queue }
    }

    /// Waits for the next trigger; `None` once the receiver has shut down (or been dropped)
    /// and the queue is empty.
    pub async fn recv(&self) -> Option<Trigger> {
        self.queue.recv().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::TriggerKind;

    fn trigger(repo: &str, git_ref: &str, after: &str) -> Trigger {
        Trigger {
            delivery: format!("d-{after}"),
            host: crate::host::Host::GitHub,
            repository: repo.into(),
            clone_url: String::new(),
            ssh_url: None,
            git_ref: git_ref.into(),
            before: format!("b-{after}"),
            after: after.into(),
            kind: TriggerKind::Push {
                tag: false,
                created: false,
                deleted: false,
                forced: false,
            },
            coalesced: 0,
        }
    }

    fn queue(capacity: usize, window: Duration) -> (Arc<TriggerQueue>, Triggers) {
        let q = Arc::new(TriggerQueue::new(
            capacity,
            window,
            Arc::new(Metrics::default()),
        ));
        (q.clone(), Triggers::new(q))
    }

    #[tokio::test]
    async fn same_ref_coalesces_other_refs_do_not() {
        let (q, rx) = queue(10, Duration::ZERO);
        assert_eq!(
            q.push(trigger("o/r", "refs/heads/a", "1")),
            Ok(Enqueued::Queued)
        );
        assert_eq!(
            q.push(trigger("o/r", "refs/heads/b", "2")),
            Ok(Enqueued::Queued)
        );
        assert_eq!(
            q.push(trigger("o/r", "refs/heads/a", "3")),
            Ok(Enqueued::Coalesced)
        );
        assert_eq!(
            q.push(trigger("o/s", "refs/heads/a", "4")),
            Ok(Enqueued::Queued)
        );
        let a = rx.recv().await.unwrap();
        assert_eq!(
            (a.after.as_str(), a.before.as_str(), a.coalesced),
            ("3", "b-1", 1)
        );
        assert_eq!(rx.recv().await.unwrap().after, "2");
        assert_eq!(rx.recv().await.unwrap().after, "4");
        // Taken: the next push to the ref queues anew.
        assert_eq!(
            q.push(trigger("o/r", "refs/heads/a", "5")),
            Ok(Enqueued::Queued)
        );
        q.close();
        assert_eq!(rx.recv().await.unwrap().after, "5");
        assert_eq!(rx.recv().await, None);
        assert_eq!(q.push(trigger("o/r", "refs/heads/z", "6")), Err(QueueFull));
    }

    #[tokio::test]
    async fn full_queue_refuses_new_refs_but_coalesces() {
        let (q, _rx) = queue(1, Duration::ZERO);
        assert_eq!(
            q.push(trigger("o/r", "refs/heads/a", "1")),
            Ok(Enqueued::Queued)
        );
        assert_eq!(q.push(trigger("o/r", "refs/heads/b", "2")), Err(QueueFull));
        assert_eq!(
            q.push(trigger("o/r", "refs/heads/a", "3")),
            Ok(Enqueued::Coalesced)
        );
        assert!(!q.has_room());
    }

    #[tokio::test(start_paused = true)]
    async fn window_holds_a_trigger_for_later_pushes() {
        let (q, rx) = queue(10, Duration::from_secs(1));
        q.push(trigger("o/r", "refs/heads/a", "1")).unwrap();
        let consumer = tokio::spawn(async move { rx.recv().await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        q.push(trigger("o/r", "refs/heads/a", "2")).unwrap();
        let t = consumer.await.unwrap().unwrap();
        assert_eq!((t.after.as_str(), t.coalesced), ("2", 1));
    }

    #[tokio::test]
    async fn recv_waits_for_a_push() {
        let (q, rx) = queue(10, Duration::ZERO);
        let consumer = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        q.push(trigger("o/r", "refs/heads/a", "1")).unwrap();
        assert_eq!(consumer.await.unwrap().unwrap().after, "1");
    }
}
