//! Polling, the fallback to webhooks: a cron schedule per repository, and a poller that
//! costs one ref listing when nothing moved, keeps serving the last good commit when the
//! remote fails, and backs off exponentially (with jitter, capped) until it recovers.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use git2::Oid;

use super::{Fetched, RepoSpec, Rev, Source, SourceError};

/// A cron schedule: 5 fields (minute precision, as crontab), or 6–7 (with seconds,
/// and years).
#[derive(Debug, Clone)]
pub struct PollSchedule(cron::Schedule);

impl PollSchedule {
    /// Parses `*/5 * * * *`, `0 */5 * * * *`, `@hourly`, ….
    pub fn parse(text: &str) -> Result<Self, String> {
        parse_cron(text).map(PollSchedule)
    }

    /// The first time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0.after(&after).next()
    }
}

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
    schedule: Option<PollSchedule>,
    serving: Option<Oid>,
    backoff: Backoff,
    retry_at: Option<DateTime<Utc>>,
}

impl Poller {
    /// A poller of `rev` of `spec`, on `schedule` (none: only when asked).
    pub fn new(source: Source, spec: RepoSpec, rev: Rev, schedule: Option<PollSchedule>) -> Self {
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

/// Crontab's 5 fields (a zero seconds field is added, and numeric days of the week are
/// read as crontab does: 0 or 7 Sunday, 1 Monday … 6 Saturday), or 6–7 fields with seconds
/// (and years) in the `cron` crate's own notation (1 Sunday … 7 Saturday), or `@daily` and
/// friends.
pub fn parse_cron(text: &str) -> Result<cron::Schedule, String> {
    let text = text.trim();
    let fields: Vec<&str> = text.split_whitespace().collect();
    let full = match fields.as_slice() {
        [minute, hour, day, month, weekday] => {
            let weekday = crontab_weekdays(weekday)
                .map_err(|e| format!("{text:?} is not a cron schedule: {e}"))?;
            format!("0 {minute} {hour} {day} {month} {weekday}")
        }
        _ => text.to_string(),
    };
    cron::Schedule::from_str(&full).map_err(|e| format!("{text:?} is not a cron schedule: {e}"))
}

/// Rewrites crontab's numeric days of the week (0–7, Sunday twice) as the `cron` crate's
/// (1–7 from Sunday) by listing them; names (`MON-FRI`) and `*` mean the same in both.
fn crontab_weekdays(field: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for item in field.split(',') {
        if item == "*" || item.chars().any(|c| c.is_ascii_alphabetic()) {
            out.push(item.to_string());
            continue;
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        let number = |t: &str| -> Result<u32, String> {
            t.parse::<u32>()
                .ok()
                .filter(|n| *n <= 7)
                .ok_or_else(|| format!("{t:?} is not a day of the week (0-7)"))
        };
        let (first, last) = match range.split_once('-') {
            _ if range == "*" => (0, 6),
            Some((a, b)) => (number(a)?, number(b)?),
            // `5/2`: from 5 to the end of the week, as crontab reads it.
            None if step.is_some() => (number(range)?, 6),
            None => (number(range)?, number(range)?),
        };
        let step = match step {
            Some(s) => s
                .parse::<usize>()
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| format!("{s:?} is not a step"))?,
            None => 1,
        };
        if first > last {
            return Err(format!("{item:?}: the range runs backwards"));
        }
        out.extend(
            (first..=last)
                .step_by(step)
                .map(|d| (d % 7 + 1).to_string()),
        );
    }
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        let s = PollSchedule::parse("*/5 * * * *").unwrap();
        let t = DateTime::parse_from_rfc3339("2026-01-01T10:02:30Z")
            .unwrap()
            .with_timezone(&Utc);
        let next = s.next_after(t).unwrap();
        assert_eq!(next.to_rfc3339(), "2026-01-01T10:05:00+00:00");
        assert!(PollSchedule::parse("*/10 * * * * *").is_ok());
        assert!(PollSchedule::parse("@hourly").is_ok());
        let e = PollSchedule::parse("every minute").unwrap_err();
        assert!(e.contains("every minute"), "{e}");
    }

    #[test]
    fn crontab_weekdays_mean_what_crontab_says() {
        // 2026-01-04 is a Sunday: "1-5" (Monday to Friday) next fires on Monday.
        let s = PollSchedule::parse("0 9 * * 1-5").unwrap();
        let sunday = DateTime::parse_from_rfc3339("2026-01-04T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            s.next_after(sunday).unwrap().to_rfc3339(),
            "2026-01-05T09:00:00+00:00"
        );
        let s = PollSchedule::parse("0 9 * * 0").unwrap();
        assert_eq!(
            s.next_after(sunday).unwrap().to_rfc3339(),
            "2026-01-11T09:00:00+00:00"
        );
    }

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
