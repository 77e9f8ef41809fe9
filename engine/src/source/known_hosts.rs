//! ssh host key checking against an OpenSSH `known_hosts` file: plain, `[host]:port`,
//! wildcard and hashed (`|1|salt|hash`) host patterns, `@revoked` markers.

use std::path::Path;

use base64::Engine as _;
use sha1::{Digest, Sha1};

/// Why a host key was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum HostKeyError {
    /// The file could not be read.
    Unreadable(String),
    /// No entry names the host.
    Unknown { host: String, file: String },
    /// Entries name the host, none with this key.
    Mismatch { host: String, file: String },
    /// The key is marked `@revoked`.
    Revoked { host: String, file: String },
}

impl std::fmt::Display for HostKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostKeyError::Unreadable(m) => write!(f, "known_hosts: {m}"),
            HostKeyError::Unknown { host, file } => write!(
                f,
                "{host} is not in {file}; add its key (ssh-keyscan) before fetching"
            ),
            HostKeyError::Mismatch { host, file } => write!(
                f,
                "the key {host} presented does not match {file} (host key changed, or someone is intercepting)"
            ),
            HostKeyError::Revoked { host, file } => {
                write!(f, "the key {host} presented is marked @revoked in {file}")
            }
        }
    }
}

/// The name a host is looked up under: `host`, or `[host]:port` off port 22.
pub fn lookup_name(host: &str, port: Option<u16>) -> String {
    match port {
        Some(p) if p != 22 => format!("[{host}]:{p}"),
        _ => host.to_string(),
    }
}

/// Checks `key` (the ssh wire-format public key blob) for `host` against `file`.
pub fn check(file: &Path, host: &str, port: Option<u16>, key: &[u8]) -> Result<(), HostKeyError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| HostKeyError::Unreadable(format!("cannot read {}: {e}", file.display())))?;
    check_text(&text, &file.display().to_string(), host, port, key)
}

pub(crate) fn check_text(
    text: &str,
    file: &str,
    host: &str,
    port: Option<u16>,
    key: &[u8],
) -> Result<(), HostKeyError> {
    let name = lookup_name(host, port);
    let mut known = false;
    let mut matched = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let mut first = fields.next().unwrap_or_default();
        let marker = if first.starts_with('@') {
            let m = first;
            first = fields.next().unwrap_or_default();
            Some(m)
        } else {
            None
        };
        let (Some(_kind), Some(blob)) = (fields.next(), fields.next()) else {
            continue;
        };
        if marker == Some("@cert-authority") || !host_matches(first, &name) {
            continue;
        }
        let Ok(blob) = base64::engine::general_purpose::STANDARD.decode(blob) else {
            continue;
        };
        let same = blob == key;
        if marker == Some("@revoked") {
            if same {
                return Err(HostKeyError::Revoked {
                    host: name,
                    file: file.into(),
                });
            }
            continue;
        }
        known = true;
        matched |= same;
    }
    match (known, matched) {
        (_, true) => Ok(()),
        (true, false) => Err(HostKeyError::Mismatch {
            host: name,
            file: file.into(),
        }),
        (false, false) => Err(HostKeyError::Unknown {
            host: name,
            file: file.into(),
        }),
    }
}

/// Whether a comma-separated pattern list (or a hashed entry) names `name`.
fn host_matches(patterns: &str, name: &str) -> bool {
    if let Some(hashed) = patterns.strip_prefix("|1|") {
        return hashed_matches(hashed, name);
    }
    let mut hit = false;
    for p in patterns.split(',') {
        if let Some(neg) = p.strip_prefix('!') {
            if glob(neg, name) {
                return false;
            }
        } else if glob(p, name) {
            hit = true;
        }
    }
    hit
}

fn hashed_matches(entry: &str, name: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let Some((salt, hash)) = entry.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else {
        return false;
    };
    hmac_sha1(&salt, name.as_bytes()) == hash.as_slice()
}

/// A hashed host pattern for `name` (as from [`lookup_name`]) with `salt`, in the form
/// `ssh-keygen -H` writes: `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`.
pub fn hashed_pattern(name: &str, salt: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    format!(
        "|1|{}|{}",
        b64.encode(salt),
        b64.encode(hmac_sha1(salt, name.as_bytes()))
    )
}

/// HMAC-SHA1 (RFC 2104), the hash of OpenSSH's hashed known_hosts entries.
fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha1::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha1::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// `*` and `?` wildcards, case-insensitive, as OpenSSH matches host patterns.
fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] =
        b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn line(hosts: &str, key: &[u8]) -> String {
        let b = base64::engine::general_purpose::STANDARD.encode(key);
        format!("{hosts} ssh-ed25519 {b}\n")
    }

    #[test]
    fn plain_port_wildcard_and_negation() {
        let t = line("example.com,[10.0.0.1]:2222", KEY);
        assert!(check_text(&t, "kh", "example.com", None, KEY).is_ok());
        assert!(check_text(&t, "kh", "EXAMPLE.com", Some(22), KEY).is_ok());
        assert!(check_text(&t, "kh", "10.0.0.1", Some(2222), KEY).is_ok());
        assert!(matches!(
            check_text(&t, "kh", "10.0.0.1", None, KEY),
            Err(HostKeyError::Unknown { .. })
        ));
        let t = line("*.example.com,!bad.example.com", KEY);
        assert!(check_text(&t, "kh", "git.example.com", None, KEY).is_ok());
        assert!(check_text(&t, "kh", "bad.example.com", None, KEY).is_err());
    }

    #[test]
    fn mismatch_and_revoked() {
        let other = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        let t = line("example.com", other);
        assert!(matches!(
            check_text(&t, "kh", "example.com", None, KEY),
            Err(HostKeyError::Mismatch { .. })
        ));
        let t = format!(
            "@revoked {}{}",
            line("example.com", KEY),
            line("example.com", KEY)
        );
        assert!(matches!(
            check_text(&t, "kh", "example.com", None, KEY),
            Err(HostKeyError::Revoked { .. })
        ));
    }

    #[test]
    fn hashed_entries() {
        let hosts = hashed_pattern("[127.0.0.1]:2222", &[7u8; 20]);
        let t = line(&hosts, KEY);
        assert!(check_text(&t, "kh", "127.0.0.1", Some(2222), KEY).is_ok());
        assert!(check_text(&t, "kh", "127.0.0.1", Some(22), KEY).is_err());
    }

    #[test]
    fn hmac_matches_rfc2202() {
        // RFC 2202 test case 2.
        let mac = hmac_sha1(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    }
}
