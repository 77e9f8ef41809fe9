//! Socket timeouts for libgit2's own transports (git://, http(s), ssh). Without them a
//! server that accepts a connection and never answers holds the fetch thread, and with it
//! the repository's mirror, for ever: keelson's deadline is only checked when libgit2
//! calls back, and a silent socket never does.
#![allow(unsafe_code)]

use std::sync::OnceLock;
use std::time::Duration;

/// No data for this long ends a fetch, unless the process chose otherwise first.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Connecting takes at most this long (or the read timeout, when shorter).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

static APPLIED: OnceLock<Duration> = OnceLock::new();

/// Sets libgit2's connect and read timeouts for the whole process, once: the first call
/// wins (`keelson serve` calls it with the operator's `limits.fetchTimeout` before any
/// fetch; a fetch calls it with the default). Returns the read timeout in force.
pub fn configure(read: Duration) -> Duration {
    *APPLIED.get_or_init(|| {
        let ms = |d: Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX).max(1);
        // SAFETY: these set two process-wide integers in libgit2 (git_libgit2_opts); the
        // OnceLock runs this once, before this process starts any fetch that reads them.
        let set = unsafe {
            git2::opts::set_server_connect_timeout_in_milliseconds(ms(read.min(CONNECT_TIMEOUT)))
                .and_then(|()| git2::opts::set_server_timeout_in_milliseconds(ms(read)))
        };
        if let Err(error) = set {
            tracing::warn!(%error, "libgit2 socket timeouts not set");
        }
        read
    })
}
