//! From a raw body to JSON text: content type, form decoding, UTF-8 and nesting checks.
//!
//! GitHub sends the JSON either as the body (`application/json`) or URL-encoded in the
//! `payload` field of a form (`application/x-www-form-urlencoded`). The signature covers the
//! raw body as sent, so decoding happens only after verification.

use std::borrow::Cow;

/// The two content types GitHub can be configured to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// `application/json`: the body is the payload.
    Json,
    /// `application/x-www-form-urlencoded`: the payload is the `payload` field.
    Form,
}

/// Why a body is not a usable payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Neither JSON nor a form (carries the media type, cut short).
    #[error(
        "unsupported content type {0:?}: send application/json or application/x-www-form-urlencoded"
    )]
    UnsupportedMediaType(String),
    /// A form without exactly one `payload` field.
    #[error("form body has no single `payload` field")]
    MissingFormPayload,
    /// A `%` escape that is not two hex digits.
    #[error("malformed percent-encoding in form body")]
    MalformedForm,
    /// The payload is not UTF-8.
    #[error("payload is not valid UTF-8")]
    InvalidUtf8,
    /// The payload nests arrays/objects deeper than allowed.
    #[error("payload nests deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// Valid or not, the payload does not start as a JSON object.
    #[error("payload is not a JSON object")]
    NotAnObject,
}

/// Reads the `Content-Type` header: media type only, parameters such as `charset` ignored.
pub fn content_type(header: Option<&[u8]>) -> Result<ContentType, PayloadError> {
    let raw = header.unwrap_or_default();
    let media = raw
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if media.eq_ignore_ascii_case(b"application/json") {
        Ok(ContentType::Json)
    } else if media.eq_ignore_ascii_case(b"application/x-www-form-urlencoded") {
        Ok(ContentType::Form)
    } else {
        let shown = String::from_utf8_lossy(&media[..media.len().min(64)]).into_owned();
        Err(PayloadError::UnsupportedMediaType(shown))
    }
}

/// The payload's JSON text, checked to be UTF-8, an object, and no deeper than `max_depth`.
pub fn json_text(
    content_type: ContentType,
    body: &[u8],
    max_depth: usize,
) -> Result<Cow<'_, str>, PayloadError> {
    let bytes: Cow<'_, [u8]> = match content_type {
        ContentType::Json => Cow::Borrowed(body),
        ContentType::Form => Cow::Owned(form_payload(body)?),
    };
    let text = match bytes {
        Cow::Borrowed(b) => {
            Cow::Borrowed(std::str::from_utf8(b).map_err(|_| PayloadError::InvalidUtf8)?)
        }
        Cow::Owned(b) => Cow::Owned(String::from_utf8(b).map_err(|_| PayloadError::InvalidUtf8)?),
    };
    if !text.trim_start().starts_with('{') {
        return Err(PayloadError::NotAnObject);
    }
    check_depth(text.as_bytes(), max_depth)?;
    Ok(text)
}

/// The decoded value of the single `payload` field of a URL-encoded form.
fn form_payload(body: &[u8]) -> Result<Vec<u8>, PayloadError> {
    let mut found = None;
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        if url_decode(key)? == b"payload" {
            if found.is_some() {
                return Err(PayloadError::MissingFormPayload);
            }
            found = Some(url_decode(value)?);
        }
    }
    found.ok_or(PayloadError::MissingFormPayload)
}

/// `application/x-www-form-urlencoded` decoding, strict about `%` escapes.
fn url_decode(input: &[u8]) -> Result<Vec<u8>, PayloadError> {
    let mut out = Vec::with_capacity(input.len());
    let mut bytes = input.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.next().and_then(|&h| hex_value(h));
                let lo = bytes.next().and_then(|&l| hex_value(l));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push((hi << 4) | lo),
                    _ => return Err(PayloadError::MalformedForm),
                }
            }
            _ => out.push(b),
        }
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Rejects nesting deeper than `max` with one pass over the bytes, before any parser
/// recurses: brackets inside strings do not count.
pub fn check_depth(json: &[u8], max: usize) -> Result<(), PayloadError> {
    let mut depth = 0usize;
    let mut rest = json;
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        match b {
            b'"' => rest = skip_string(rest),
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(PayloadError::TooDeep { max });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The bytes after the closing quote of a string whose opening quote was just consumed.
fn skip_string(mut rest: &[u8]) -> &[u8] {
    loop {
        // Strings are most of a payload's bytes: find their end with SIMD.
        match memchr::memchr2(b'"', b'\\', rest) {
            None => return &[],
            Some(i) => {
                let escaped = rest[i] == b'\\';
                // Skip the quote, or the backslash and the byte it escapes.
                rest = rest.get(i + 1 + usize::from(escaped)..).unwrap_or_default();
                if !escaped {
                    return rest;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let cases: &[(Option<&str>, Option<ContentType>)] = &[
            (Some("application/json"), Some(ContentType::Json)),
            (
                Some("Application/JSON; charset=utf-8"),
                Some(ContentType::Json),
            ),
            (
                Some("application/x-www-form-urlencoded"),
                Some(ContentType::Form),
            ),
            (
                Some(" application/x-www-form-urlencoded ;charset=UTF-8"),
                Some(ContentType::Form),
            ),
            (Some("text/plain"), None),
            (Some("application/jsonx"), None),
            (Some("multipart/form-data; boundary=x"), None),
            (Some(""), None),
            (None, None),
        ];
        for (header, want) in cases {
            let got = content_type(header.map(str::as_bytes)).ok();
            assert_eq!(got, *want, "{header:?}");
        }
    }

    #[test]
    fn form_payload_is_decoded() {
        let body = b"payload=%7B%22a%22%3A+%22b%2Bc%22%7D";
        assert_eq!(
            json_text(ContentType::Form, body, 64).unwrap(),
            r#"{"a": "b+c"}"#
        );
        let body = b"other=1&payload=%7B%7D&x";
        assert_eq!(json_text(ContentType::Form, body, 64).unwrap(), "{}");
    }

    #[test]
    fn form_defects() {
        let cases: &[(&[u8], PayloadError)] = &[
            (b"", PayloadError::MissingFormPayload),
            (b"payloads=%7B%7D", PayloadError::MissingFormPayload),
            (
                b"payload=%7B%7D&payload=%7B%7D",
                PayloadError::MissingFormPayload,
            ),
            (b"payload=%7B%7", PayloadError::MalformedForm),
            (b"payload=%zz", PayloadError::MalformedForm),
            (b"payload=%7B%FF%7D", PayloadError::InvalidUtf8),
            (b"payload=%5B%5D", PayloadError::NotAnObject),
        ];
        for (body, want) in cases {
            let got = json_text(ContentType::Form, body, 64);
            assert_eq!(
                got.as_ref().err(),
                Some(want),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn json_defects() {
        let cases: &[(&[u8], PayloadError)] = &[
            (b"[1,2]", PayloadError::NotAnObject),
            (b"", PayloadError::NotAnObject),
            (b"  \"s\"", PayloadError::NotAnObject),
            (b"{\"a\":\"\xff\"}", PayloadError::InvalidUtf8),
        ];
        for (body, want) in cases {
            let got = json_text(ContentType::Json, body, 64);
            assert_eq!(
                got.as_ref().err(),
                Some(want),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(check_depth(deep(64).as_bytes(), 64).is_ok());
        assert_eq!(
            check_depth(deep(65).as_bytes(), 64),
            Err(PayloadError::TooDeep { max: 64 })
        );
        // An unterminated, very deep prefix is rejected as soon as it passes the limit.
        assert!(check_depth("{\"a\":".repeat(1_000_000).as_bytes(), 64).is_err());
        let in_string = format!(r#"{{"s":"{}\"\\{}"}}"#, "[".repeat(100), "{".repeat(100));
        assert!(check_depth(in_string.as_bytes(), 2).is_ok());
        // An escaped quote does not end the string.
        assert!(check_depth(br#"{"s":"\"[[[["}"#, 1).is_ok());
        // A backslash at the very end does not run past the input.
        assert!(check_depth(b"{\"s\":\"\\", 1).is_ok());
    }
}
