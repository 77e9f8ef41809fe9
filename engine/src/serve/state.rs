//! What the engine knows about each (target, cluster): served as `GET /api/v1/targets`
//! and as Prometheus metrics. Memory only; the durable state (the last synced commit) is
//! in the clusters, on each target's ApplySet parent.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a (target, cluster) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Known, not synced by this engine yet.
    Pending,
    /// A sync runs.
    Syncing,
    /// The last sync succeeded.
    Synced,
    /// The last sync failed; a retry is scheduled.
    Failed,
    /// A deny window (or no allow window) holds the sync back.
    Waiting,
    /// Another replica owns the cluster.
    Elsewhere,
}

/// One row of `GET /api/v1/targets`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetStatus {
    pub repository: String,
    pub target: String,
    pub cluster: String,
    pub phase: Phase,
    /// The commit the cluster is known to be synced to.
    #[serde(default)]
    pub synced_commit: Option<String>,
    /// The commit the engine wants there.
    #[serde(default)]
    pub desired_commit: Option<String>,
    #[serde(default)]
    pub message: String,
    /// Why the last attempt failed, as a stable label (`render`, `connect`, `plan`,
    /// `invalid`, `apply`, `prune`, `health`, `window`, `gate`); none after a success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub last_sync: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_attempt: Option<DateTime<Utc>>,
    /// Syncs that changed or checked this pair since the engine started.
    #[serde(default)]
    pub syncs: u64,
}

/// How a sync ended, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Success,
    Failure,
    /// The cluster was already at the commit.
    Skipped,
    /// Held back by a sync window.
    Deferred,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Skipped => "skipped",
            Outcome::Deferred => "deferred",
        }
    }
}

/// Upper bounds of the sync duration histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The board: statuses and the metrics derived from syncs.
#[derive(Debug, Default)]
pub struct Board {
    rows: Mutex<BTreeMap<(String, String), TargetStatus>>,
    results: Mutex<BTreeMap<(String, String, &'static str), u64>>,
    failures: Mutex<BTreeMap<(String, String, &'static str), u64>>,
    durations: Mutex<BTreeMap<(String, String), Histogram>>,
    triggers: Mutex<BTreeMap<&'static str, u64>>,
    pub queue_depth: AtomicU64,
    pub coalesced: AtomicU64,
}

impl Board {
    fn rows(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), TargetStatus>> {
        self.rows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Updates (or creates) the row of (target, cluster).
    pub fn update(
        &self,
        repository: &str,
        target: &str,
        cluster: &str,
        change: impl FnOnce(&mut TargetStatus),
    ) {
        let mut rows = self.rows();
        let row = rows
            .entry((target.to_string(), cluster.to_string()))
            .or_insert_with(|| TargetStatus {
                repository: repository.to_string(),
                target: target.to_string(),
                cluster: cluster.to_string(),
                phase: Phase::Pending,
                synced_commit: None,
                desired_commit: None,
                message: String::new(),
                reason: None,
                last_sync: None,
                last_attempt: None,
                syncs: 0,
            });
        change(row);
    }

    /// The commit a (target, cluster) is known to be synced to.
    pub fn synced_commit(&self, target: &str, cluster: &str) -> Option<String> {
        self.rows()
            .get(&(target.to_string(), cluster.to_string()))
            .and_then(|r| r.synced_commit.clone())
    }

    /// Forgets every (target, cluster) not in `keep`: rows and metric series of targets
    /// removed from their repository, or of clusters a target no longer selects. (A
    /// process that runs for months must not keep them.)
    pub fn retain(&self, keep: &BTreeSet<(String, String)>) {
        self.rows().retain(|k, _| keep.contains(k));
        let pair = |t: &String, c: &String| keep.contains(&(t.clone(), c.clone()));
        self.results
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(t, c, _), _| pair(t, c));
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(t, c, _), _| pair(t, c));
        self.durations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(t, c), _| pair(t, c));
    }

    /// Every row, sorted by target then cluster.
    pub fn snapshot(&self) -> Vec<TargetStatus> {
        self.rows().values().cloned().collect()
    }

    /// Counts a trigger by source (`webhook`, `poll`, `selfHeal`).
    pub fn trigger(&self, source: &'static str) {
        *self
            .triggers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(source)
            .or_default() += 1;
    }

    /// Records a finished sync attempt.
    pub fn result(&self, target: &str, cluster: &str, outcome: Outcome, took: Duration) {
        *self
            .results
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((target.to_string(), cluster.to_string(), outcome.label()))
            .or_default() += 1;
        if matches!(outcome, Outcome::Success | Outcome::Failure) {
            let mut durations = self
                .durations
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let h = durations
                .entry((target.to_string(), cluster.to_string()))
                .or_default();
            let secs = took.as_secs_f64();
            if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
                h.buckets[i] += 1;
            }
            h.count += 1;
            h.sum += secs;
        }
    }

    /// Counts a failed attempt by its reason (a [`crate::sync::Error::metric_label`]).
    pub fn failure(&self, target: &str, cluster: &str, reason: &'static str) {
        *self
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((target.to_string(), cluster.to_string(), reason))
            .or_default() += 1;
    }

    /// The Prometheus text exposition of the engine's metrics.
    pub fn render_metrics(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP keelson_sync_results_total Sync attempts per target, cluster and outcome.\n# TYPE keelson_sync_results_total counter"
        );
        for ((t, c, o), n) in self
            .results
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "keelson_sync_results_total{{target=\"{}\",cluster=\"{}\",outcome=\"{o}\"}} {n}",
                escape(t),
                escape(c)
            );
        }
        let _ = writeln!(
            out,
            "# HELP keelson_sync_failures_total Failed sync attempts per target, cluster and reason.\n# TYPE keelson_sync_failures_total counter"
        );
        for ((t, c, r), n) in self
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "keelson_sync_failures_total{{target=\"{}\",cluster=\"{}\",reason=\"{r}\"}} {n}",
                escape(t),
                escape(c)
            );
        }
        let _ = writeln!(
            out,
            "# HELP keelson_sync_duration_seconds Time from the start of a cluster sync to its end.\n# TYPE keelson_sync_duration_seconds histogram"
        );
        for ((t, c), h) in self
            .durations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let labels = format!("target=\"{}\",cluster=\"{}\"", escape(t), escape(c));
            let mut cumulative = 0;
            for (b, n) in BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "keelson_sync_duration_seconds_bucket{{{labels},le=\"{b}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "keelson_sync_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\nkeelson_sync_duration_seconds_sum{{{labels}}} {}\nkeelson_sync_duration_seconds_count{{{labels}}} {}",
                h.count, h.sum, h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP keelson_last_successful_sync_timestamp_seconds When each target last synced successfully to each cluster.\n# TYPE keelson_last_successful_sync_timestamp_seconds gauge"
        );
        for r in self.rows().values() {
            if let Some(at) = r.last_sync {
                let _ = writeln!(
                    out,
                    "keelson_last_successful_sync_timestamp_seconds{{target=\"{}\",cluster=\"{}\"}} {}",
                    escape(&r.target),
                    escape(&r.cluster),
                    at.timestamp_millis() as f64 / 1000.0
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP keelson_triggers_total Triggers by source.\n# TYPE keelson_triggers_total counter"
        );
        for (source, n) in self
            .triggers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(out, "keelson_triggers_total{{source=\"{source}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP keelson_queue_depth Targets waiting for a sync.\n# TYPE keelson_queue_depth gauge\nkeelson_queue_depth {}\n# HELP keelson_queue_coalesced_total Jobs folded into a waiting job of the same target.\n# TYPE keelson_queue_coalesced_total counter\nkeelson_queue_coalesced_total {}",
            self.queue_depth.load(Relaxed),
            self.coalesced.load(Relaxed)
        );
        out
    }
}

/// Escapes a Prometheus label value.
pub(crate) fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `keelson status`: the rows as a table.
pub fn table(rows: &[TargetStatus]) -> String {
    let header = [
        "TARGET",
        "CLUSTER",
        "PHASE",
        "SYNCED",
        "LAST SYNC",
        "MESSAGE",
    ];
    let mut lines: Vec<[String; 6]> = vec![header.map(String::from)];
    for r in rows {
        lines.push([
            r.target.clone(),
            r.cluster.clone(),
            format!("{:?}", r.phase),
            r.synced_commit
                .as_deref()
                .map(|c| c.chars().take(10).collect())
                .unwrap_or_else(|| "-".into()),
            r.last_sync
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| "-".into()),
            r.message.lines().next().unwrap_or("").to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for l in &lines {
        let mut line = String::new();
        for (i, cell) in l.iter().enumerate() {
            if i == 5 {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_carry_results_durations_and_last_sync() {
        let b = Board::default();
        b.update("r", "shop", "prod", |r| {
            r.phase = Phase::Synced;
            r.last_sync = DateTime::from_timestamp(1_700_000_000, 0);
        });
        b.result("shop", "prod", Outcome::Success, Duration::from_millis(300));
        b.result("shop", "prod", Outcome::Skipped, Duration::ZERO);
        b.trigger("webhook");
        let text = b.render_metrics();
        assert!(text.contains(
            "keelson_sync_results_total{target=\"shop\",cluster=\"prod\",outcome=\"success\"} 1"
        ));
        assert!(text.contains(
            "keelson_sync_duration_seconds_bucket{target=\"shop\",cluster=\"prod\",le=\"0.5\"} 1"
        ));
        assert!(text.contains(
            "keelson_sync_duration_seconds_bucket{target=\"shop\",cluster=\"prod\",le=\"0.25\"} 0"
        ));
        assert!(text.contains("keelson_last_successful_sync_timestamp_seconds{target=\"shop\",cluster=\"prod\"} 1700000000"));
        assert!(text.contains("keelson_triggers_total{source=\"webhook\"} 1"));
        assert!(text.contains("keelson_queue_depth 0"));
    }

    #[test]
    fn table_lines_up() {
        let b = Board::default();
        b.update("r", "shop-staging", "staging", |r| {
            r.phase = Phase::Synced;
            r.synced_commit = Some("0123456789abcdef".into());
        });
        b.update("r", "shop-prod", "prod", |r| {
            r.message = "cluster down\nmore".into()
        });
        let t = table(&b.snapshot());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("TARGET        CLUSTER  PHASE"), "{t}");
        assert!(
            lines[1].contains("Pending") && lines[1].ends_with("cluster down"),
            "{t}"
        );
        assert!(lines[2].contains("0123456789 "), "{t}");
    }
}
