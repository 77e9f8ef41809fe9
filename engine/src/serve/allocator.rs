//! glibc's allocator gives threads that allocate at the same time arenas of their own, up
//! to eight per core, and hands little of a freed arena back to the system. `keelson
//! serve`'s fetch and render threads come and go, so its resident memory crept up while
//! its heap stayed under 5 MiB (heaptrack over a 7-minute soak: 4.8 MiB peak). Over 60
//! minutes of pushes, RSS grew 75 → 88 MiB. Two arenas are plenty for an engine that
//! mostly waits on the network.
#![allow(unsafe_code)]

/// The arenas `keelson serve` allows, unless `MALLOC_ARENA_MAX` says otherwise.
pub const ARENAS: i32 = 2;

/// Limits glibc's malloc arenas to [`ARENAS`]. Call it before any thread starts. An
/// operator's `MALLOC_ARENA_MAX` wins; other C libraries are left alone.
pub fn limit_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt sets one of the allocator's tunables. It is called before the
    // process starts any thread, so nothing allocates concurrently with the change.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}
