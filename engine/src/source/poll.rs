//! Polling, the fallback to webhooks: a cron schedule per repository, and a poller that
//! costs one ref listing when nothing moved, keeps serving the last good commit when the
//! remote fails, and backs off exponentially (with jitter, capped) until it recovers.

use std::time::Duration;

use chrono::{DateTime, Utc};
use git2::Oid;

use super::{Fetched, RepoSpec, Rev, Source, SourceError};
use crate::time::Cron;

/// Exponential back-off with jitter: `base`, doubling per failure, capped at `cap`.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    failures: u32,
}

impl Backoff {
    /// Starts at `base`, never above `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            failures: 0,
        }
    }

    /// Records a failure and returns how long to wait before the next attempt.
    pub fn fail(&mut self) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.failures.min(20));
        self.failures = self.failures.saturating_add(1);
        let capped = exp.min(self.cap);
        // Jitter in [50%, 100%] so that many repositories failing at once spread out.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let frac = 0.5 + f64::from(nanos % 1000) / 2000.0;
        capped.mul_f64(frac)
    }

    /// Records a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// What one poll found.
#[derive(Debug)]
pub enum PollEvent {
    /// The revision still names the commit being served.
    Unchanged { commit: Oid },
    /// The revision moved (`forced`: the new commit does not descend from the old one).
    Moved {
        from: Option<Oid>,
        to: Oid,
        forced: bool,
        fetched: Fetched,
    },
    /// The poll failed; `serving` is the last good commit, still in use.
    Failed {
        error: SourceError,
        serving: Option<Oid>,
        retry_in: Duration,
    },
}

/// Polls one repository revision.
#[derive(Debug)]
pub struct Poller {
    source: Source,
    spec: RepoSpec,
    rev: Rev,
    schedule: Option<Cron>,
    serving: Option<Oid>,
    backoff: Backoff,
    retry_at: Option<DateTime<Utc>>,
}

impl Poller {
    /// A poller of `rev` of `spec`, on `schedule` (none: only when asked).
    pub fn new(source: Source, spec: RepoSpec, rev: Rev, schedule: Option<Cron>) -> Self {
        Poller {
            source,
            spec,
            rev,
            schedule,
            serving: None,
            backoff: Backoff::new(Duration::from_secs(5), Duration::from_secs(300)),
            retry_at: None,
        }
    }

    /// Sets the back-off (tests use short ones).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The commit being served: the last one fetched successfully.
    pub fn serving(&self) -> Option<Oid> {
        self.serving
    }

    /// Polls now (blocking): one ref listing, plus a download only when the revision moved.
    pub fn poll(&mut self) -> PollEvent {
        match self.source.fetch(&self.spec, &self.rev) {
            Ok(fetched) => {
                self.backoff.reset();
                self.retry_at = None;
                let from = self.serving;
                if from == Some(fetched.commit) {
                    return PollEvent::Unchanged {
                        commit: fetched.commit,
                    };
                }
                let forced = from.is_some_and(|old| {
                    !self.source.is_ancestor(&self.spec.url, old, fetched.commit)
                });
                self.serving = Some(fetched.commit);
                PollEvent::Moved {
                    from,
                    to: fetched.commit,
                    forced,
                    fetched,
                }
            }
            Err(error) => {
                let retry_in = self.backoff.fail();
                self.retry_at = chrono::Duration::from_std(retry_in)
                    .ok()
                    .map(|d| Utc::now() + d);
                tracing::warn!(url = %self.spec.url, error = %error, retry_in = ?retry_in,
                    serving = ?self.serving.map(|c| c.to_string()), "poll failed");
                PollEvent::Failed {
                    error,
                    serving: self.serving,
                    retry_in,
                }
            }
        }
    }

    /// When the next poll is due after `now`: the retry time after a failure, else the
    /// schedule's next time (`None`: no schedule, poll only when asked).
    pub fn next_due(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if let Some(at) = self.retry_at {
            return Some(at);
        }
        self.schedule.as_ref()?.next_after(now)
    }

    /// Polls on schedule (and whenever `wake` receives, e.g. from a webhook) until the
    /// receiver of `events` is dropped.
    pub async fn run(
        mut self,
        events: tokio::sync::mpsc::Sender<PollEvent>,
        mut wake: Option<tokio::sync::mpsc::Receiver<()>>,
    ) {
        loop {
            let wait = self
                .next_due(Utc::now())
                .map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO));
            let sleep = async {
                match wait {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            let woken = async {
                match wake.as_mut() {
                    Some(rx) => rx.recv().await.is_some(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = sleep => {}
                alive = woken => if !alive { wake = None; continue; },
                () = events.closed() => return,
            }
            let poller = self;
            let Ok((back, event)) = tokio::task::spawn_blocking(move || {
                let mut p = poller;
                let e = p.poll();
                (p, e)
            })
            .await
            else {
                return;
            };
            self = back;
            if events.send(event).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let waits: Vec<Duration> = (0..8).map(|_| b.fail()).collect();
        assert!(waits[0] >= Duration::from_millis(500) && waits[0] <= Duration::from_secs(1));
        assert!(waits[2] >= Duration::from_secs(2) && waits[2] <= Duration::from_secs(4));
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(10)));
        assert!(waits[7] >= Duration::from_secs(5));
        b.reset();
        assert_eq!(b.failures(), 0);
    }
}
