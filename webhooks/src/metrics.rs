//! The receiver's Prometheus metrics, written in the text exposition format by hand.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0,
];

/// Distinct event label values kept before the rest are counted as `other`.
const MAX_EVENT_LABELS: usize = 128;

/// Deliveries per event name.
type EventCounts = BTreeMap<String, u64>;

/// Counters and the latency histogram.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (host, outcome) → event → count; looked up without allocating.
    deliveries: Mutex<BTreeMap<(&'static str, &'static str), EventCounts>>,
    signature_failures: AtomicU64,
    duplicates: AtomicU64,
    coalesced: AtomicU64,
    queue_depth: AtomicU64,
    /// Per bucket, not cumulative (one increment per request); summed when rendered.
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_nanos: AtomicU64,
}

impl Metrics {
    /// Counts one delivery by event name (`unknown` if not trusted) and outcome.
    pub fn delivery(
        &self,
        host: crate::host::Host,
        event: &str,
        outcome: &'static str,
        elapsed: Duration,
    ) {
        {
            let mut map = self
                .deliveries
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let events = map.entry((host.label(), outcome)).or_default();
            if let Some(n) = events.get_mut(event) {
                *n += 1;
            } else {
                let label = if events.len() >= MAX_EVENT_LABELS {
                    "other"
                } else {
                    event
                };
                *events.entry(label.to_owned()).or_default() += 1;
            }
        }
        let secs = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .zip(&self.latency_buckets)
            .find(|(bound, _)| secs <= **bound);
        if let Some((_, bucket)) = bucket {
            bucket.fetch_add(1, Relaxed);
        }
        self.latency_count.fetch_add(1, Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.latency_sum_nanos.fetch_add(nanos, Relaxed);
    }

    /// Counts a refused signature.
    pub fn signature_failure(&self) {
        self.signature_failures.fetch_add(1, Relaxed);
    }

    /// Counts a repeated delivery id.
    pub fn duplicate(&self) {
        self.duplicates.fetch_add(1, Relaxed);
    }

    /// Counts a trigger folded into a queued one.
    pub fn coalesced(&self) {
        self.coalesced.fetch_add(1, Relaxed);
    }

    pub(crate) fn set_queue_depth(&self, depth: usize) {
        self.queue_depth.store(depth as u64, Relaxed);
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        out.push_str(
            "# HELP keelson_webhook_deliveries_total Webhook deliveries received, by host, event and outcome.\n\
             # TYPE keelson_webhook_deliveries_total counter\n",
        );
        {
            let map = self
                .deliveries
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let mut series: Vec<_> = map
                .iter()
                .flat_map(|((host, outcome), events)| {
                    events
                        .iter()
                        .map(move |(event, n)| (*host, event, *outcome, n))
                })
                .collect();
            series.sort();
            for (host, event, outcome, n) in series {
                let _ = writeln!(
                    out,
                    "keelson_webhook_deliveries_total{{host=\"{host}\",event=\"{event}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        let counters = [
            (
                "signature_failures_total",
                "Deliveries refused for a missing or wrong signature.",
                &self.signature_failures,
            ),
            (
                "duplicates_total",
                "Deliveries whose id was already seen.",
                &self.duplicates,
            ),
            (
                "coalesced_total",
                "Triggers folded into a queued trigger for the same ref.",
                &self.coalesced,
            ),
        ];
        for (name, help, value) in counters {
            let _ = write!(
                out,
                "# HELP keelson_webhook_{name} {help}\n# TYPE keelson_webhook_{name} counter\nkeelson_webhook_{name} {}\n",
                value.load(Relaxed)
            );
        }
        let _ = write!(
            out,
            "# HELP keelson_webhook_queue_depth Triggers waiting for the consumer.\n\
             # TYPE keelson_webhook_queue_depth gauge\nkeelson_webhook_queue_depth {}\n",
            self.queue_depth.load(Relaxed)
        );
        out.push_str(
            "# HELP keelson_webhook_request_duration_seconds Time from request head to response.\n\
             # TYPE keelson_webhook_request_duration_seconds histogram\n",
        );
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.latency_buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(
                out,
                "keelson_webhook_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.latency_count.load(Relaxed);
        let sum = Duration::from_nanos(self.latency_sum_nanos.load(Relaxed)).as_secs_f64();
        let _ = write!(
            out,
            "keelson_webhook_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             keelson_webhook_request_duration_seconds_sum {sum}\n\
             keelson_webhook_request_duration_seconds_count {count}\n"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        let gh = crate::host::Host::GitHub;
        m.delivery(gh, "push", "queued", Duration::from_micros(300));
        m.delivery(gh, "push", "queued", Duration::from_millis(20));
        m.delivery(gh, "unknown", "unauthorized", Duration::from_micros(50));
        m.delivery(
            crate::host::Host::GitLab,
            "push_hook",
            "queued",
            Duration::ZERO,
        );
        m.signature_failure();
        m.coalesced();
        let text = m.render();
        for line in [
            "keelson_webhook_deliveries_total{host=\"github\",event=\"push\",outcome=\"queued\"} 2",
            "keelson_webhook_deliveries_total{host=\"github\",event=\"unknown\",outcome=\"unauthorized\"} 1",
            "keelson_webhook_deliveries_total{host=\"gitlab\",event=\"push_hook\",outcome=\"queued\"} 1",
            "keelson_webhook_signature_failures_total 1",
            "keelson_webhook_duplicates_total 0",
            "keelson_webhook_coalesced_total 1",
            "keelson_webhook_request_duration_seconds_bucket{le=\"0.0001\"} 2",
            "keelson_webhook_request_duration_seconds_bucket{le=\"0.0005\"} 3",
            "keelson_webhook_request_duration_seconds_bucket{le=\"0.025\"} 4",
            "keelson_webhook_request_duration_seconds_bucket{le=\"+Inf\"} 4",
            "keelson_webhook_request_duration_seconds_count 4",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn event_labels_are_bounded() {
        let m = Metrics::default();
        for i in 0..(MAX_EVENT_LABELS + 10) {
            m.delivery(
                crate::host::Host::GitHub,
                &format!("e{i}"),
                "ignored",
                Duration::ZERO,
            );
        }
        let text = m.render();
        assert!(
            text.contains("event=\"other\",outcome=\"ignored\"} 10"),
            "{text}"
        );
    }
}
