//! The receiver's settings: the shared secret and the limits it enforces on every delivery.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::listener::ConnectionLimits;

/// The environment variable the secret may come from.
pub const SECRET_ENV: &str = "KEELSON_WEBHOOK_SECRET";

/// Why the secret could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The secret file could not be read.
    #[error("cannot read webhook secret file {path}: {source}")]
    ReadSecret {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The secret is empty (after trailing line breaks are dropped).
    #[error("webhook secret from {origin} is empty")]
    EmptySecret {
        /// Where it came from: a file path or the variable name.
        origin: String,
    },
    /// Neither a secret file nor the environment variable was given.
    #[error("no webhook secret: pass a secret file or set {SECRET_ENV}")]
    NoSecret,
}

/// The webhook secret shared with GitHub. Its `Debug` output never shows it.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps raw secret bytes; `None` for an empty secret (it would authenticate anyone).
    pub fn new(bytes: Vec<u8>) -> Option<Self> {
        (!bytes.is_empty()).then_some(Self(bytes))
    }

    /// Reads the secret from a file, dropping trailing line breaks (`echo s > file`).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let mut bytes = std::fs::read(path).map_err(|source| ConfigError::ReadSecret {
            path: path.to_owned(),
            source,
        })?;
        while matches!(bytes.last(), Some(b'\n' | b'\r')) {
            bytes.pop();
        }
        Self::new(bytes).ok_or_else(|| ConfigError::EmptySecret {
            origin: path.display().to_string(),
        })
    }

    /// Reads the secret from `KEELSON_WEBHOOK_SECRET`, if set.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        match std::env::var_os(SECRET_ENV) {
            None => Ok(None),
            Some(value) => Self::new(value.into_encoded_bytes())
                .map(Some)
                .ok_or_else(|| ConfigError::EmptySecret {
                    origin: SECRET_ENV.to_owned(),
                }),
        }
    }

    /// The file if one is given, else the environment variable.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        match file {
            Some(path) => Self::from_file(path),
            None => Self::from_env()?.ok_or(ConfigError::NoSecret),
        }
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// GitHub's own cap on a payload: the most a receiver can ever need to accept.
pub const GITHUB_MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// The default body limit: push payloads are rarely over a few hundred KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Limits set on purpose. Push payloads are rarely over a few hundred KiB, so the default
/// body limit is well below GitHub's 25 MB cap, which an operator can raise it to.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest body accepted; announced larger by `Content-Length` is refused unread.
    pub max_body_bytes: usize,
    /// Bytes of request bodies held at once, over all connections; past it, 503. This
    /// bounds the memory unsigned uploads can take, whatever their number.
    pub max_inflight_body_bytes: usize,
    /// Time a client has to send the whole body.
    pub body_read_timeout: Duration,
    /// Deepest JSON nesting accepted (GitHub's payloads nest about 7 deep).
    pub max_json_depth: usize,
    /// Head timeout, head size and connection cap of the receiver's listener.
    pub connection: ConnectionLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_inflight_body_bytes: 64 * 1024 * 1024,
            body_read_timeout: Duration::from_secs(10),
            max_json_depth: 64,
            connection: ConnectionLimits::default(),
        }
    }
}

/// Everything the receiver needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The secret every host signs deliveries with (GitLab: sends as its token), unless
    /// `host_secrets` has one of its own.
    pub secret: Secret,
    /// Secrets of single hosts.
    pub host_secrets: std::collections::HashMap<crate::host::Host, Secret>,
    /// Request limits.
    pub limits: Limits,
    /// Delivery ids remembered for deduplication (oldest forgotten first).
    pub dedupe_capacity: usize,
    /// Distinct (repository, ref) triggers that may wait at once; beyond that, 503.
    pub queue_capacity: usize,
    /// How long a queued trigger waits for newer pushes to the same ref before it is handed
    /// out. Zero hands it out at once; pushes still coalesce while the consumer is busy.
    pub coalesce_window: Duration,
}

impl Config {
    /// Default limits and sizes around `secret`.
    pub fn new(secret: Secret) -> Self {
        Self {
            secret,
            host_secrets: Default::default(),
            limits: Limits::default(),
            dedupe_capacity: 100_000,
            queue_capacity: 10_000,
            coalesce_window: Duration::ZERO,
        }
    }
}

impl Config {
    /// The secret deliveries from `host` are checked with.
    pub fn secret_for(&self, host: crate::host::Host) -> &Secret {
        self.host_secrets.get(&host).unwrap_or(&self.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_file_drops_trailing_newlines_and_debug_hides_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cr3t\r\n\n").unwrap();
        let s = Secret::load(Some(&path)).unwrap();
        assert_eq!(s.expose(), b"s3cr3t");
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }

    #[test]
    fn empty_or_missing_secret_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            Secret::from_file(&path),
            Err(ConfigError::EmptySecret { .. })
        ));
        assert!(matches!(
            Secret::from_file(&dir.path().join("absent")),
            Err(ConfigError::ReadSecret { .. })
        ));
        assert!(Secret::new(Vec::new()).is_none());
    }
}
