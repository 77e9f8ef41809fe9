//! The time grammar of every Keelson file and flag, in one leaf module: durations (`30s`,
//! `5m`, `1h30m`, `250ms`), cron schedules and IANA time zones.
//!
//! Each is parsed once, where the file or flag is read: the typed values below
//! deserialize from their text and refuse a bad one, so a mistake is a load error naming
//! its field, never a silent default at the time of use.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

/// `30s`, `5m`, `1h30m`, `250ms`, `1.5h`: numbers with `h`, `m`, `s` or `ms` units; and
/// `0`, the one number that needs no unit (as Go's durations read it).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration like 30s, 5m or 1h");
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut number = String::new();
    let mut chars = text.trim().chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            0.001
        } else {
            match c {
                'h' => 3600.0,
                'm' => 60.0,
                's' => 1.0,
                _ => return Err(bad()),
            }
        };
        let n: f64 = number.parse().map_err(|_| bad())?;
        total += Duration::try_from_secs_f64(n * unit).map_err(|_| bad())?;
        number.clear();
        any = true;
    }
    if any && number.is_empty() {
        Ok(total)
    } else {
        Err(bad())
    }
}

/// A duration as written in a file: keeps its text for messages.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Period {
    text: String,
    value: Duration,
}

impl Period {
    /// A whole number of seconds (`300s`).
    pub fn from_secs(secs: u64) -> Self {
        Period {
            text: format!("{secs}s"),
            value: Duration::from_secs(secs),
        }
    }

    /// The duration.
    pub fn get(&self) -> Duration {
        self.value
    }
}

impl TryFrom<String> for Period {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let value = parse_duration(&text)?;
        Ok(Period { text, value })
    }
}

impl FromStr for Period {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Period::try_from(text.to_string())
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A cron schedule: crontab's 5 fields, or 6–7 with seconds (and years), or `@daily` and
/// friends. Keeps its text for messages.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct Cron {
    text: String,
    schedule: cron::Schedule,
}

impl Cron {
    /// Parses `*/5 * * * *`, `0 */5 * * * *`, `@hourly`, ….
    pub fn parse(text: &str) -> Result<Self, String> {
        Ok(Cron {
            text: text.to_string(),
            schedule: parse_cron(text)?,
        })
    }

    /// The first time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.after(&after).next()
    }

    /// The schedule, for calendar arithmetic on wall-clock time.
    pub fn schedule(&self) -> &cron::Schedule {
        &self.schedule
    }
}

impl TryFrom<String> for Cron {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Cron::parse(&text)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// An IANA time zone (`Europe/Berlin`, `UTC`); default UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub struct Zone(pub Tz);

impl TryFrom<String> for Zone {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Tz::from_str(&text)
            .map(Zone)
            .map_err(|_| format!("{text:?} is not an IANA time zone like Europe/Berlin or UTC"))
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

/// Crontab's 5 fields (a zero seconds field is added, and numeric days of the week are
/// read as crontab does: 0 or 7 Sunday, 1 Monday … 6 Saturday), or 6–7 fields with seconds
/// (and years) in the `cron` crate's own notation (1 Sunday … 7 Saturday), or `@daily` and
/// friends.
fn parse_cron(text: &str) -> Result<cron::Schedule, String> {
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
        let s = Cron::parse("*/5 * * * *").unwrap();
        let t = DateTime::parse_from_rfc3339("2026-01-01T10:02:30Z")
            .unwrap()
            .with_timezone(&Utc);
        let next = s.next_after(t).unwrap();
        assert_eq!(next.to_rfc3339(), "2026-01-01T10:05:00+00:00");
        assert!(Cron::parse("*/10 * * * * *").is_ok());
        assert!(Cron::parse("@hourly").is_ok());
        let e = Cron::parse("every minute").unwrap_err();
        assert!(e.contains("every minute"), "{e}");
    }

    #[test]
    fn crontab_weekdays_mean_what_crontab_says() {
        // 2026-01-04 is a Sunday: "1-5" (Monday to Friday) next fires on Monday.
        let s = Cron::parse("0 9 * * 1-5").unwrap();
        let sunday = DateTime::parse_from_rfc3339("2026-01-04T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            s.next_after(sunday).unwrap().to_rfc3339(),
            "2026-01-05T09:00:00+00:00"
        );
        let s = Cron::parse("0 9 * * 0").unwrap();
        assert_eq!(
            s.next_after(sunday).unwrap().to_rfc3339(),
            "2026-01-11T09:00:00+00:00"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        for bad in ["5", "x", "", "1d", "m", "1e400h", "-1s", "00"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("is not a duration"), "{bad:?}: {e}");
        }
        let p: Period = "90s".parse().unwrap();
        assert_eq!(
            (p.get(), p.to_string()),
            (Duration::from_secs(90), "90s".into())
        );
    }
}
