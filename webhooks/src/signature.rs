//! Delivery proofs. GitHub's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw
//! body>` (Bitbucket's `X-Hub-Signature` is the same); Gitea's bare hex of that HMAC;
//! GitLab's secret token, or its Standard Webhooks signature over
//! `<webhook-id>.<webhook-timestamp>.<body>`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

type HmacSha256 = Hmac<Sha256>;

/// The header GitHub puts the SHA-256 signature in.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

const PREFIX: &str = "sha256=";

/// Why a delivery's signature was refused. Never carries the signature itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature header (GitHub: an only-SHA-1 `X-Hub-Signature` counts as none).
    #[error("missing signature header")]
    Missing,
    /// The header is not `sha256=` followed by 64 hex digits (or, where the host sends
    /// them bare, 64 hex digits).
    #[error("malformed signature header")]
    Malformed,
    /// Well-formed, but not the HMAC of this body under our secret.
    #[error("signature does not match the body")]
    Mismatch,
    /// A Standard Webhooks timestamp more than [`TOLERANCE`] away from now.
    #[error("signature timestamp is too far from now")]
    Stale,
}

/// How far a Standard Webhooks timestamp may be from now (the spec's advice).
pub const TOLERANCE: std::time::Duration = std::time::Duration::from_secs(300);

/// Checks `header` (the raw `X-Hub-Signature-256` value, if any) against `body`.
///
/// The comparison of the MAC is constant-time (`hmac`'s `verify_slice`, built on `subtle`).
pub fn verify(secret: &Secret, header: Option<&[u8]>, body: &[u8]) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_part = header
        .strip_prefix(PREFIX.as_bytes())
        .ok_or(SignatureError::Malformed)?;
    let mut expected = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut expected).map_err(|_| SignatureError::Malformed)?;
    mac(secret.expose())
        .chain_update(body)
        .verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// Checks a bare hex HMAC-SHA256 of `body` (Gitea's `X-Gitea-Signature`).
pub fn verify_hex(
    secret: &Secret,
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header
        .filter(|h| !h.is_empty())
        .ok_or(SignatureError::Missing)?;
    let mut expected = [0u8; 32];
    hex::decode_to_slice(header, &mut expected).map_err(|_| SignatureError::Malformed)?;
    mac(secret.expose())
        .chain_update(body)
        .verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// Checks a shared token (GitLab's `X-Gitlab-Token`) in constant time: both sides go
/// through one HMAC, so neither their lengths nor their bytes show in the timing.
pub fn verify_token(secret: &Secret, token: Option<&[u8]>) -> Result<(), SignatureError> {
    let token = token.ok_or(SignatureError::Missing)?;
    let expected = mac(b"keelson token check")
        .chain_update(secret.expose())
        .finalize()
        .into_bytes();
    mac(b"keelson token check")
        .chain_update(token)
        .verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// The Standard Webhooks headers of a delivery.
#[derive(Debug, Clone, Copy, Default)]
pub struct StandardWebhook<'a> {
    /// `webhook-id`.
    pub id: Option<&'a [u8]>,
    /// `webhook-timestamp`: Unix seconds.
    pub timestamp: Option<&'a [u8]>,
    /// `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256>` entries.
    pub signature: Option<&'a [u8]>,
}

/// Checks a Standard Webhooks signature (GitLab's signing tokens): the key is the base64
/// part of a `whsec_` secret, the MAC covers `<id>.<timestamp>.<body>`, and the
/// timestamp must be within [`TOLERANCE`] of `now` (Unix seconds).
pub fn verify_standard(
    secret: &Secret,
    headers: StandardWebhook<'_>,
    body: &[u8],
    now: u64,
) -> Result<(), SignatureError> {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let key = secret
        .expose()
        .strip_prefix(b"whsec_")
        .and_then(|k| engine.decode(k).ok())
        .ok_or(SignatureError::Mismatch)?;
    let (id, timestamp, signature) = match (headers.id, headers.timestamp, headers.signature) {
        (Some(i), Some(t), Some(s)) => (i, t, s),
        _ => return Err(SignatureError::Missing),
    };
    let seconds: u64 = std::str::from_utf8(timestamp)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or(SignatureError::Malformed)?;
    if seconds.abs_diff(now) > TOLERANCE.as_secs() {
        return Err(SignatureError::Stale);
    }
    let signed = mac(&key)
        .chain_update(id)
        .chain_update(b".")
        .chain_update(timestamp)
        .chain_update(b".")
        .chain_update(body);
    let mut any = false;
    for entry in signature.split(|b| *b == b' ').filter(|e| !e.is_empty()) {
        let Some(tag) = entry.strip_prefix(b"v1,") else {
            continue;
        };
        any = true;
        if let Ok(tag) = engine.decode(tag)
            && signed.clone().verify_slice(&tag).is_ok()
        {
            return Ok(());
        }
    }
    Err(if any {
        SignatureError::Mismatch
    } else {
        SignatureError::Malformed
    })
}

/// The header value GitHub would send for `body` under `secret` (for clients and tests).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let tag = mac(secret).chain_update(body).finalize().into_bytes();
    format!("{PREFIX}{}", hex::encode(tag))
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    <HmacSha256 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // GitHub's documented test vector ("Validating webhook deliveries").
    const GH_SECRET: &str = "It's a Secret to Everybody";
    const GH_BODY: &str = "Hello, World!";
    const GH_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn secret(s: &str) -> Secret {
        Secret::new(s.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn github_documented_vector() {
        assert_eq!(sign(GH_SECRET.as_bytes(), GH_BODY.as_bytes()), GH_SIG);
        assert_eq!(
            verify(
                &secret(GH_SECRET),
                Some(GH_SIG.as_bytes()),
                GH_BODY.as_bytes()
            ),
            Ok(())
        );
    }

    #[test]
    fn bare_hex_and_tokens() {
        let s = secret(GH_SECRET);
        let body = GH_BODY.as_bytes();
        let hex = &GH_SIG[7..];
        assert_eq!(verify_hex(&s, Some(hex.as_bytes()), body), Ok(()));
        assert_eq!(
            verify_hex(&s, Some(b""), body),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_hex(&s, Some(GH_SIG.as_bytes()), body),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_hex(&s, Some(hex.as_bytes()), b"other"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify_token(&s, Some(GH_SECRET.as_bytes())), Ok(()));
        for wrong in ["", "It's a Secret", "It's a Secret to Everybody!"] {
            assert_eq!(
                verify_token(&s, Some(wrong.as_bytes())),
                Err(SignatureError::Mismatch)
            );
        }
        assert_eq!(verify_token(&s, None), Err(SignatureError::Missing));
    }

    // The Standard Webhooks specification's own example (its README): secret, id,
    // timestamp, payload and the signature it gives.
    #[test]
    fn standard_webhooks_documented_vector() {
        let s = secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let headers = StandardWebhook {
            id: Some(b"msg_p5jXN8AQM9LWM0D4loKWxJek"),
            timestamp: Some(b"1614265330"),
            signature: Some(b"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
        };
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(verify_standard(&s, headers, body, 1614265330), Ok(()));
        assert_eq!(
            verify_standard(&s, headers, body, 1614265330 + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_standard(&s, headers, b"{}", 1614265330),
            Err(SignatureError::Mismatch)
        );
        let rotated = StandardWebhook {
            signature: Some(b"v1,AAAA v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
            ..headers
        };
        assert_eq!(verify_standard(&s, rotated, body, 1614265330), Ok(()));
        let v2 = StandardWebhook {
            signature: Some(b"v2,xyz"),
            ..headers
        };
        assert_eq!(
            verify_standard(&s, v2, body, 1614265330),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn defects_are_refused() {
        let s = secret(GH_SECRET);
        let body = GH_BODY.as_bytes();
        let upper = GH_SIG.to_ascii_uppercase().replace("SHA256=", "sha256=");
        let cases: &[(Option<&str>, SignatureError)] = &[
            (None, SignatureError::Missing),
            (Some(""), SignatureError::Malformed),
            (Some("sha256="), SignatureError::Malformed),
            (
                Some("sha1=0123456789abcdef0123456789abcdef01234567"),
                SignatureError::Malformed,
            ),
            (Some(&GH_SIG[7..]), SignatureError::Malformed),
            (Some(&GH_SIG[..GH_SIG.len() - 2]), SignatureError::Malformed),
            (Some(&format!("{GH_SIG}00")), SignatureError::Malformed),
            (Some(&GH_SIG.replace('7', "g")), SignatureError::Malformed),
            (Some(&format!(" {GH_SIG}")), SignatureError::Malformed),
            (
                Some(&GH_SIG.replace("sha256=", "SHA256=")),
                SignatureError::Malformed,
            ),
            (
                Some(&GH_SIG.replace("e17", "e18")),
                SignatureError::Mismatch,
            ),
            (
                Some(&format!("sha256={}", "0".repeat(64))),
                SignatureError::Mismatch,
            ),
        ];
        for (header, want) in cases {
            assert_eq!(
                verify(&s, header.map(str::as_bytes), body),
                Err(*want),
                "{header:?}"
            );
        }
        // Hex digits are case-insensitive, as in any hex decoder.
        assert_eq!(verify(&s, Some(upper.as_bytes()), body), Ok(()));
        // Another secret, another body.
        assert_eq!(
            verify(&secret("other"), Some(GH_SIG.as_bytes()), body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&s, Some(GH_SIG.as_bytes()), b"Hello, World"),
            Err(SignatureError::Mismatch)
        );
    }
}
