//! Sync windows: times when syncs of some targets on some clusters are allowed or denied,
//! as Argo CD's project sync windows work.
//!
//! ```yaml
//! syncWindows:
//! - kind: deny              # allow | deny
//!   schedule: "0 22 * * *"  # when the window opens (cron: 5 fields, or 6–7 with seconds)
//!   duration: 8h            # how long it stays open
//!   timeZone: Europe/Berlin # the schedule's time zone (IANA); default UTC
//!   targets: [shop-prod]    # target names or globs (`*`, `?`); empty: every target
//!   clusters: [prod]        # cluster names or globs; empty: every cluster
//!   manualSync: true        # `keelson sync --override-windows` may run in this window
//! ```
//!
//! For a target on a cluster, only the windows matching both apply (unlike Argo CD, whose
//! lists are OR-ed, an empty list here means "all", so the lists combine with AND). Then:
//! an active deny window denies; otherwise, if allow windows apply and none is active, the
//! sync is denied; otherwise it is allowed. Deny wins over allow.
//!
//! Time: the schedule runs on the wall clock of its time zone. A start that falls in the
//! hour skipped when clocks go forward does not happen that day; a start in the hour
//! repeated when they go back counts once, at its first occurrence. The duration is
//! elapsed time, so an 8h window opening at 22:00 the night clocks go forward closes at
//! 07:00 local time.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeDelta, TimeZone, Utc};
use serde::Deserialize;

use crate::time::{Cron, Period, Zone};

/// The `syncWindows:` list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct SyncWindows(pub Vec<SyncWindow>);

/// One allow or deny window.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SyncWindow {
    pub kind: WindowKind,
    /// When the window opens. Evaluated on naive wall-clock time (the zone is applied
    /// afterwards), so that daylight-saving transitions follow the rules above.
    pub schedule: Cron,
    /// How long the window stays open after each start (`30m`, `8h`, `1h30m`).
    pub duration: Period,
    /// The schedule's time zone; default UTC.
    #[serde(default)]
    pub time_zone: Option<Zone>,
    /// Target names or globs; empty: all targets.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Cluster names or globs; empty: all clusters.
    #[serde(default)]
    pub clusters: Vec<String>,
    /// A manual sync that overrides windows may run while this window denies.
    #[serde(default)]
    pub manual_sync: bool,
}

/// Whether a window allows or denies syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowKind {
    Allow,
    Deny,
}

/// Whether a sync may run now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Denied(Denial),
}

/// Why a sync may not run now, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Which window(s) deny.
    pub reason: String,
    /// The earliest time the sync will be allowed (None: not within the look-ahead).
    pub until: Option<DateTime<Utc>>,
    /// A manual sync overriding windows may run anyway.
    pub manual_sync: bool,
}

/// The one wording of a refusal, for the CLI, logs, statuses and the status API.
impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sync window: {}", self.reason)?;
        match self.until {
            Some(u) => write!(f, "; allowed from {}", u.format("%Y-%m-%d %H:%M:%S UTC")),
            None => write!(f, "; no opening found in the look-ahead"),
        }
    }
}

impl Verdict {
    /// True when the sync may run.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Verdict::Allowed)
    }
}

/// How many window openings and closings `until` follows before giving up.
const MAX_STEPS: usize = 1000;

/// How far wall-clock time can jump at a time-zone transition; bounds the search for the
/// starts around an instant.
const MAX_ZONE_JUMP: TimeDelta = TimeDelta::hours(3);

impl SyncWindows {
    /// Checks what the types cannot: durations above zero, no empty name patterns. The
    /// error names the field, e.g. `syncWindows[1].duration`.
    pub fn validate(&self, field_prefix: &str) -> Result<(), (String, String)> {
        for (i, window) in self.0.iter().enumerate() {
            let err = |field: &str, message: String| {
                Err((format!("{field_prefix}[{i}].{field}"), message))
            };
            if window.duration.get().is_zero() || window.delta().is_none() {
                return err(
                    "duration",
                    format!(
                        "{:?} is not a duration like 30m, 8h or 1h30m (above zero)",
                        window.duration.to_string()
                    ),
                );
            }
            for (field, patterns) in [("targets", &window.targets), ("clusters", &window.clusters)]
            {
                if patterns.iter().any(|p| p.is_empty()) {
                    return err(field, "names must not be empty".into());
                }
            }
        }
        Ok(())
    }

    /// Whether `target` may sync to `cluster` at `now`.
    pub fn verdict(&self, target: &str, cluster: &str, now: DateTime<Utc>) -> Verdict {
        let applying: Vec<(usize, &SyncWindow)> = self
            .0
            .iter()
            .enumerate()
            .filter(|(_, w)| w.applies_to(target, cluster))
            .collect();
        if applying.is_empty() {
            return Verdict::Allowed;
        }
        let state = State::at(&applying, now);
        if state.allowed() {
            return Verdict::Allowed;
        }
        let (reason, manual_sync) = if state.active_denies.is_empty() {
            let names: Vec<String> = state.allows.iter().map(|(i, w)| w.describe(*i)).collect();
            (
                format!("no allow window is open: {}", names.join(", ")),
                state.allows.iter().any(|(_, w)| w.manual_sync),
            )
        } else {
            let names: Vec<String> = state
                .active_denies
                .iter()
                .map(|(i, w, _)| w.describe(*i))
                .collect();
            (
                format!("in {}", names.join(", ")),
                // Every denying window must let manual syncs through.
                state.active_denies.iter().all(|(_, w, _)| w.manual_sync),
            )
        };
        Verdict::Denied(Denial {
            reason,
            until: allowed_from(&applying, now),
            manual_sync,
        })
    }

    /// True when no window is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The windows applying to one target on one cluster, at one instant.
struct State<'a> {
    /// Open deny windows, with the end of their current opening.
    active_denies: Vec<(usize, &'a SyncWindow, DateTime<Utc>)>,
    allows: Vec<(usize, &'a SyncWindow)>,
    any_allow_open: bool,
}

impl<'a> State<'a> {
    fn at(applying: &[(usize, &'a SyncWindow)], at: DateTime<Utc>) -> Self {
        let mut state = State {
            active_denies: Vec::new(),
            allows: Vec::new(),
            any_allow_open: false,
        };
        for &(i, window) in applying {
            let open_until = window.open_until(at);
            if window.kind == WindowKind::Allow {
                state.allows.push((i, window));
                state.any_allow_open |= open_until.is_some();
            } else if let Some(end) = open_until {
                state.active_denies.push((i, window, end));
            }
        }
        state
    }

    fn allowed(&self) -> bool {
        self.active_denies.is_empty() && (self.allows.is_empty() || self.any_allow_open)
    }
}

/// The earliest instant at or after `now` when the windows allow a sync. Each step jumps to
/// a time before which the sync cannot be allowed (the end of the open deny windows, or the
/// next start of an allow window) and looks again, so chained and overlapping windows are
/// followed until the state is stable.
fn allowed_from(applying: &[(usize, &SyncWindow)], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut at = now;
    for _ in 0..MAX_STEPS {
        let state = State::at(applying, at);
        if state.allowed() {
            return Some(at);
        }
        let next = if state.active_denies.is_empty() {
            state
                .allows
                .iter()
                .filter_map(|(_, w)| w.next_start_after(at))
                .min()
        } else {
            state.active_denies.iter().map(|(_, _, end)| *end).max()
        };
        match next {
            Some(next) if next > at && next != DateTime::<Utc>::MAX_UTC => at = next,
            _ => return None,
        }
    }
    None
}

impl SyncWindow {
    fn applies_to(&self, target: &str, cluster: &str) -> bool {
        let any = |patterns: &[String], name: &str| {
            patterns.is_empty() || patterns.iter().any(|p| glob_match(p, name))
        };
        any(&self.targets, target) && any(&self.clusters, cluster)
    }

    /// `deny window 0 ("0 22 * * *" for 8h, Europe/Berlin)`.
    fn describe(&self, index: usize) -> String {
        let kind = match self.kind {
            WindowKind::Allow => "allow",
            WindowKind::Deny => "deny",
        };
        format!(
            "{kind} window {index} ({:?} for {}, {})",
            self.schedule.to_string(),
            self.duration,
            self.zone()
        )
    }

    fn zone(&self) -> Zone {
        self.time_zone.unwrap_or_default()
    }

    /// The duration as calendar arithmetic wants it (`None` past chrono's range).
    fn delta(&self) -> Option<TimeDelta> {
        TimeDelta::from_std(self.duration.get()).ok()
    }
    /// The instant a wall-clock start happens: the first of two in a repeated hour, none in
    /// a skipped one.
    fn instant(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.zone().0.from_local_datetime(&wall) {
            LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
            LocalResult::None => None,
        }
    }

    fn wall(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        // Naive wall-clock time carried in a UTC value: cron then does plain calendar math.
        Utc.from_utc_datetime(&at.with_timezone(&self.zone().0).naive_local())
    }

    /// The latest start at or before `at`. `instant` is increasing in wall-clock time, so
    /// walking back from a little past `at`'s wall time, the first start not after `at` is
    /// the latest.
    fn last_start_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule
            .schedule()
            .after(&(self.wall(at) + MAX_ZONE_JUMP))
            .rev()
            .filter_map(|wall| self.instant(wall.naive_utc()))
            .find(|start| *start <= at)
    }

    /// The first start strictly after `at`.
    fn next_start_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule
            .schedule()
            .after(&(self.wall(at) - MAX_ZONE_JUMP))
            .filter_map(|wall| self.instant(wall.naive_utc()))
            .find(|start| *start > at)
    }

    /// When the window is open at `at`: the end of its current opening.
    fn open_until(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = self.last_start_at_or_before(at)?;
        let end = start + self.delta()?;
        (end > at).then_some(end)
    }
}

/// Shell-style glob: `*` any run of characters, `?` one character, the rest literal.
fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with backtracking to the last `*`: linear in practice.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(yaml: &str) -> SyncWindows {
        crate::yaml::from_str(yaml).unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn denied_until(v: &Verdict) -> Option<DateTime<Utc>> {
        match v {
            Verdict::Denied(d) => d.until,
            Verdict::Allowed => panic!("expected a denial"),
        }
    }

    #[test]
    fn a_deny_window_denies_only_while_open() {
        let w = windows("- {kind: deny, schedule: '0 22 * * *', duration: 8h}\n");
        w.validate("syncWindows").unwrap();
        let cases = [
            ("2025-06-10T21:59:59Z", true),
            ("2025-06-10T22:00:00Z", false),
            ("2025-06-11T03:00:00Z", false),
            ("2025-06-11T05:59:59Z", false),
            ("2025-06-11T06:00:00Z", true),
            ("2025-06-11T12:00:00Z", true),
        ];
        for (now, allowed) in cases {
            let v = w.verdict("shop", "prod", utc(now));
            assert_eq!(v.is_allowed(), allowed, "at {now}: {v:?}");
        }
        let v = w.verdict("shop", "prod", utc("2025-06-11T01:00:00Z"));
        let Verdict::Denied(Denial {
            reason,
            until,
            manual_sync,
        }) = v
        else {
            panic!("denied")
        };
        assert!(reason.contains("deny window 0"), "{reason}");
        assert_eq!(until, Some(utc("2025-06-11T06:00:00Z")));
        assert!(!manual_sync);
    }

    #[test]
    fn allow_windows_deny_outside_them() {
        let w = windows(
            "- {kind: allow, schedule: '0 9 * * 1-5', duration: 2h, manualSync: true}\n\
             - {kind: allow, schedule: '0 14 * * 1-5', duration: 1h}\n",
        );
        // Tuesday 2025-06-10.
        assert!(
            w.verdict("a", "c", utc("2025-06-10T09:30:00Z"))
                .is_allowed()
        );
        assert!(
            w.verdict("a", "c", utc("2025-06-10T14:59:00Z"))
                .is_allowed()
        );
        let v = w.verdict("a", "c", utc("2025-06-10T12:00:00Z"));
        assert_eq!(denied_until(&v), Some(utc("2025-06-10T14:00:00Z")));
        assert!(
            matches!(v, Verdict::Denied(Denial { manual_sync: true, ref reason, .. }) if reason.contains("no allow window"))
        );
        // Friday evening: the next opening is Monday morning.
        let v = w.verdict("a", "c", utc("2025-06-13T18:00:00Z"));
        assert_eq!(denied_until(&v), Some(utc("2025-06-16T09:00:00Z")));
    }

    #[test]
    fn deny_wins_over_allow_and_until_follows_the_chain() {
        // Allow 08:00–18:00; deny 10:00–11:00 and 10:30–12:00 (overlapping) and
        // 12:00–13:00 (chained).
        let w = windows(
            "- {kind: allow, schedule: '0 8 * * *', duration: 10h}\n\
             - {kind: deny, schedule: '0 10 * * *', duration: 1h}\n\
             - {kind: deny, schedule: '30 10 * * *', duration: 90m}\n\
             - {kind: deny, schedule: '0 12 * * *', duration: 1h, manualSync: true}\n",
        );
        assert!(
            w.verdict("t", "c", utc("2025-06-10T09:00:00Z"))
                .is_allowed()
        );
        let v = w.verdict("t", "c", utc("2025-06-10T10:15:00Z"));
        assert_eq!(denied_until(&v), Some(utc("2025-06-10T13:00:00Z")));
        assert!(matches!(
            v,
            Verdict::Denied(Denial {
                manual_sync: false,
                ..
            })
        ));
        // Only the manual-sync deny window is open: manual syncs may run.
        let v = w.verdict("t", "c", utc("2025-06-10T12:30:00Z"));
        assert!(
            matches!(
                v,
                Verdict::Denied(Denial {
                    manual_sync: true,
                    ..
                })
            ),
            "{v:?}"
        );
        assert!(
            w.verdict("t", "c", utc("2025-06-10T13:00:00Z"))
                .is_allowed()
        );
        // After the allow window: denied until it opens again tomorrow.
        let v = w.verdict("t", "c", utc("2025-06-10T19:00:00Z"));
        assert_eq!(denied_until(&v), Some(utc("2025-06-11T08:00:00Z")));
    }

    #[test]
    fn a_deny_window_ending_outside_every_allow_window_waits_for_the_next_allow() {
        let w = windows(
            "- {kind: allow, schedule: '0 8 * * *', duration: 2h}\n\
             - {kind: deny, schedule: '0 9 * * *', duration: 2h}\n",
        );
        let v = w.verdict("t", "c", utc("2025-06-10T09:30:00Z"));
        assert_eq!(denied_until(&v), Some(utc("2025-06-11T08:00:00Z")));
    }

    #[test]
    fn a_window_longer_than_its_period_stays_open() {
        // Opens every hour for 90 minutes: always open once started.
        let w = windows("- {kind: deny, schedule: '0 * * * *', duration: 90m}\n");
        let v = w.verdict("t", "c", utc("2025-06-10T09:10:00Z"));
        assert_eq!(denied_until(&v), None, "never closes: {v:?}");
    }

    #[test]
    fn time_zones_follow_daylight_saving() {
        let w = windows(
            "- {kind: deny, schedule: '0 22 * * *', duration: 8h, timeZone: Europe/Berlin}\n",
        );
        w.validate("syncWindows").unwrap();
        // Summer: 22:00 CEST is 20:00 UTC.
        assert!(
            !w.verdict("t", "c", utc("2025-06-10T20:00:00Z"))
                .is_allowed()
        );
        assert!(
            w.verdict("t", "c", utc("2025-06-10T19:59:00Z"))
                .is_allowed()
        );
        // Winter: 22:00 CET is 21:00 UTC.
        assert!(
            w.verdict("t", "c", utc("2025-01-10T20:30:00Z"))
                .is_allowed()
        );
        assert!(
            !w.verdict("t", "c", utc("2025-01-10T21:00:00Z"))
                .is_allowed()
        );
        // Clocks go forward at 02:00 CET on 2025-03-30: the window opened at 22:00 CET on
        // the 29th (21:00 UTC) closes 8 elapsed hours later, 05:00 UTC = 07:00 CEST.
        let v = w.verdict("t", "c", utc("2025-03-30T04:00:00Z"));
        assert_eq!(denied_until(&v), Some(utc("2025-03-30T05:00:00Z")));
        // That evening the window opens at 22:00 CEST = 20:00 UTC.
        assert!(
            w.verdict("t", "c", utc("2025-03-30T19:59:00Z"))
                .is_allowed()
        );
        assert!(
            !w.verdict("t", "c", utc("2025-03-30T20:00:00Z"))
                .is_allowed()
        );
        // Clocks go back at 03:00 CEST on 2025-10-26: opened 22:00 CEST on the 25th (20:00
        // UTC), closes at 04:00 UTC = 05:00 CET.
        let v = w.verdict("t", "c", utc("2025-10-26T01:30:00Z"));
        assert_eq!(denied_until(&v), Some(utc("2025-10-26T04:00:00Z")));
    }

    #[test]
    fn starts_in_skipped_and_repeated_hours() {
        let w = windows(
            "- {kind: allow, schedule: '30 2 * * *', duration: 10m, timeZone: Europe/Berlin}\n",
        );
        // 2025-03-30 has no 02:30 in Berlin: the next opening is the 31st, 02:30 CEST.
        let v = w.verdict("t", "c", utc("2025-03-29T12:00:00Z"));
        assert_eq!(denied_until(&v), Some(utc("2025-03-31T00:30:00Z")));
        // 2025-10-26 has two: only the first (02:30 CEST = 00:30 UTC) opens the window.
        assert!(
            w.verdict("t", "c", utc("2025-10-26T00:35:00Z"))
                .is_allowed()
        );
        let v = w.verdict("t", "c", utc("2025-10-26T01:35:00Z"));
        assert_eq!(denied_until(&v), Some(utc("2025-10-27T01:30:00Z")));
    }

    #[test]
    fn windows_apply_to_matching_targets_and_clusters() {
        let w = windows(
            "- {kind: deny, schedule: '0 0 * * *', duration: 24h, targets: ['shop-*', billing], clusters: ['prod?']}\n",
        );
        let now = utc("2025-06-10T12:00:00Z");
        let cases = [
            ("shop-web", "prod1", false),
            ("billing", "prod2", false),
            ("shop-web", "prod", true),
            ("shop", "prod1", true),
            ("billing-x", "prod1", true),
            ("web", "prod1", true),
        ];
        for (target, cluster, allowed) in cases {
            assert_eq!(
                w.verdict(target, cluster, now).is_allowed(),
                allowed,
                "{target} on {cluster}"
            );
        }
        // Empty lists: every target on every cluster.
        let all = windows("- {kind: deny, schedule: '0 0 * * *', duration: 24h}\n");
        assert!(!all.verdict("any", "where", now).is_allowed());
        assert!(SyncWindows::default().verdict("a", "b", now).is_allowed());
    }

    #[test]
    fn globs() {
        for (p, n, m) in [
            ("*", "", true),
            ("*", "abc", true),
            ("a*c", "abbbc", true),
            ("a*c", "abcd", false),
            ("*-prod", "shop-prod", true),
            ("*-prod", "shop-prods", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*a*b", "xaxxb", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(glob_match(p, n), m, "{p} vs {n}");
        }
    }

    #[test]
    fn mistakes_name_their_field() {
        let ok = "- {kind: deny, schedule: '0 22 * * *', duration: 8h}\n";
        // Values that do not parse are refused when the file is read.
        let unreadable = [
            (
                "- {kind: maybe, schedule: '0 22 * * *', duration: 8h}\n",
                "[1].kind",
                "maybe",
            ),
            (
                "- {kind: deny, schedule: 'at ten', duration: 8h}\n",
                "[1].schedule",
                "at ten",
            ),
            (
                "- {kind: deny, schedule: '0 22 * * 8', duration: 8h}\n",
                "[1].schedule",
                "day of the week",
            ),
            (
                "- {kind: deny, schedule: '0 22 * * *', duration: 8 hours}\n",
                "[1].duration",
                "8 hours",
            ),
            (
                "- {kind: deny, schedule: '0 22 * * *', duration: 8h, timeZone: Mars/Olympus}\n",
                "[1].timeZone",
                "Mars/Olympus",
            ),
            (
                "- {kind: deny, schedule: '0 22 * * *', duration: 8h, timezone: UTC}\n",
                "",
                "timezone",
            ),
        ];
        for (bad, field, mention) in unreadable {
            let e = crate::yaml::from_str::<SyncWindows>(&format!("{ok}{bad}"))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(field) && e.contains(mention),
                "{field}, {mention}: {e}"
            );
        }
        // What the types cannot say is checked by validation.
        let invalid = [
            (
                "- {kind: deny, schedule: '0 22 * * *', duration: 0s}\n",
                "syncWindows[1].duration",
                "0s",
            ),
            (
                "- {kind: deny, schedule: '0 22 * * *', duration: 8h, clusters: ['']}\n",
                "syncWindows[1].clusters",
                "empty",
            ),
        ];
        for (bad, field, mention) in invalid {
            let w = windows(&format!("{ok}{bad}"));
            let (f, message) = w.validate("syncWindows").unwrap_err();
            assert_eq!(f, field);
            assert!(message.contains(mention), "{message}");
        }
    }

    #[test]
    fn crontab_days_of_the_week() {
        // 2025-06-08 is a Sunday.
        let days = |schedule: &str| -> Vec<u32> {
            let w = windows(&format!(
                "- {{kind: allow, schedule: '{schedule}', duration: 1h}}\n"
            ));
            w.validate("w").unwrap();
            (8..15)
                .filter(|d| {
                    w.verdict("t", "c", utc(&format!("2025-06-{d:02}T12:30:00Z")))
                        .is_allowed()
                })
                .map(|d| d - 8)
                .collect()
        };
        assert_eq!(days("0 12 * * 1-5"), vec![1, 2, 3, 4, 5]);
        assert_eq!(days("0 12 * * MON-FRI"), vec![1, 2, 3, 4, 5]);
        assert_eq!(days("0 12 * * 0"), vec![0]);
        assert_eq!(days("0 12 * * 7"), vec![0]);
        assert_eq!(days("0 12 * * 5-7"), vec![0, 5, 6]);
        assert_eq!(days("0 12 * * */2"), vec![0, 2, 4, 6]);
        assert_eq!(days("0 12 * * 1-5/2,SUN"), vec![0, 1, 3, 5]);
        assert_eq!(days("0 12 * * *"), vec![0, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn six_field_schedules_have_seconds() {
        let w = windows("- {kind: deny, schedule: '30 0 22 * * *', duration: 10s}\n");
        w.validate("w").unwrap();
        assert!(
            w.verdict("t", "c", utc("2025-06-10T22:00:29Z"))
                .is_allowed()
        );
        assert!(
            !w.verdict("t", "c", utc("2025-06-10T22:00:30Z"))
                .is_allowed()
        );
        assert!(
            w.verdict("t", "c", utc("2025-06-10T22:00:40Z"))
                .is_allowed()
        );
    }
}
