//! Go duration strings (`metav1.Duration`), kept as written.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A Go duration as written (`"2m"`, `"1h0m0s"`, `"0"`): the text is kept for a lossless
/// round trip (Go would re-serialise `"1h"` as `"1h0m0s"`); [`Duration::parse`] reads it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Duration(pub String);

/// A duration text Go's `time.ParseDuration` would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {text:?}: {reason}")]
pub struct DurationError {
    /// The text as written.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Duration {
    /// Wraps a duration text without checking it.
    pub fn new(text: impl Into<String>) -> Self {
        Duration(text.into())
    }

    /// A duration written the way Go writes it (`1h2m3s`, `90s` → `1m30s`).
    pub fn from_std(d: std::time::Duration) -> Self {
        Duration(go_format(d))
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses the text like Go's `time.ParseDuration`: signed, in nanoseconds.
    pub fn nanos(&self) -> Result<i128, DurationError> {
        parse_go(&self.0)
    }

    /// Parses the text into a non-negative duration (negative ones are an error).
    pub fn parse(&self) -> Result<std::time::Duration, DurationError> {
        let nanos = self.nanos()?;
        if nanos < 0 {
            return Err(DurationError {
                text: self.0.clone(),
                reason: "must not be negative",
            });
        }
        let nanos = u64::try_from(nanos).map_err(|_| DurationError {
            text: self.0.clone(),
            reason: "too large",
        })?;
        Ok(std::time::Duration::from_nanos(nanos))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Duration {
    fn from(text: &str) -> Self {
        Duration(text.to_string())
    }
}

/// Go's `time.Duration.String()` for whole seconds and above; sub-second parts in ms.
fn go_format(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let millis = d.subsec_millis();
    if secs == 0 {
        return if millis == 0 {
            "0s".into()
        } else {
            format!("{millis}ms")
        };
    }
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let sec = if millis == 0 {
        format!("{s}s")
    } else {
        let frac = format!("{millis:03}");
        format!("{s}.{}s", frac.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{h}h{m}m{sec}")
    } else if m > 0 {
        format!("{m}m{sec}")
    } else {
        sec
    }
}

/// `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or `0`.
fn parse_go(text: &str) -> Result<i128, DurationError> {
    let err = |reason| DurationError {
        text: text.to_string(),
        reason,
    };
    let mut s = text;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(err("empty"));
    }
    let mut total: i128 = 0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, rest) = s.split_at(int_len);
        let (frac_part, rest) = match rest.strip_prefix('.') {
            Some(r) => {
                let n = r.bytes().take_while(u8::is_ascii_digit).count();
                r.split_at(n)
            }
            None => ("", rest),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err("expected a number"));
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let (unit, rest) = rest.split_at(unit_len);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(err("missing unit")),
            _ => return Err(err("unknown unit")),
        };
        let int: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| err("number too large"))?
        };
        let mut value = int.checked_mul(scale).ok_or_else(|| err("overflow"))?;
        if !frac_part.is_empty() {
            let digits = frac_part.len().min(30) as u32;
            let frac: i128 = frac_part[..digits as usize]
                .parse()
                .map_err(|_| err("number too large"))?;
            value += frac * scale / 10_i128.pow(digits);
        }
        total = total.checked_add(value).ok_or_else(|| err("overflow"))?;
        if total > i128::from(i64::MAX) {
            return Err(err("overflow"));
        }
        s = rest;
    }
    Ok(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_tekton_examples_use() {
        let cases: &[(&str, u64)] = &[
            ("10s", 10),
            ("60s", 60),
            ("2m", 120),
            ("0", 0),
            ("0s", 0),
            ("0h0m0s", 0),
            ("1h0m0s", 3600),
            ("2m0s", 120),
            ("12h0m0s", 43200),
            ("96h0m0s", 345_600),
            ("1h50m0s", 6600),
            ("1.5h", 5400),
        ];
        for (text, secs) in cases {
            assert_eq!(
                Duration::new(*text).parse().unwrap(),
                std::time::Duration::from_secs(*secs),
                "{text}"
            );
        }
        assert_eq!(
            Duration::new("1500ms").parse().unwrap(),
            std::time::Duration::from_millis(1500)
        );
    }

    #[test]
    fn refuses_what_go_refuses() {
        for text in ["", "5", "1x", "h", ".s", "-", "1h-2m"] {
            assert!(Duration::new(text).nanos().is_err(), "{text:?}");
        }
        assert!(Duration::new("-1s").parse().is_err());
        assert_eq!(Duration::new("-1s").nanos().unwrap(), -1_000_000_000);
    }

    #[test]
    fn text_is_kept_and_formatting_follows_go() {
        let d: Duration = serde_json::from_str("\"2m\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"2m\"");
        assert_eq!(
            Duration::from_std(std::time::Duration::from_secs(3600)).as_str(),
            "1h0m0s"
        );
        assert_eq!(
            Duration::from_std(std::time::Duration::from_secs(90)).as_str(),
            "1m30s"
        );
        assert_eq!(
            Duration::from_std(std::time::Duration::from_millis(1500)).as_str(),
            "1.5s"
        );
    }
}
