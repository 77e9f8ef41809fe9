//! GitHub's delivery signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.

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
    /// No `X-Hub-Signature-256` header (an only-SHA-1 `X-Hub-Signature` counts as none).
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    /// The header is not `sha256=` followed by 64 hex digits.
    #[error("malformed X-Hub-Signature-256 header")]
    Malformed,
    /// Well-formed, but not the HMAC of this body under our secret.
    #[error("signature does not match the body")]
    Mismatch,
}

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
