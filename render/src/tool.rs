//! Running an external tool (helm, kustomize) on a repository's behalf. The repository
//! chooses some of its arguments, so the child gets only what it needs: positionals after
//! `--` (the caller's job), an environment cleared down to `PATH`, `HOME` and what the
//! caller names, and a deadline after which it is killed.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a tool may run before it is killed.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `program args…` with `stdin`, returning its standard output, or a message with the
/// command line, the exit status and its standard error.
pub fn run(
    program: &Path,
    args: &[String],
    stdin: &[u8],
    env: &[(&str, OsString)],
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let shown = format!("{} {}", program.display(), args.join(" "));
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for keep in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("unable to run '{shown}': {e}"))?;
    // Pipes are drained on threads, so a chatty child never blocks on a full pipe while
    // this thread watches the clock.
    let input = child.stdin.take().map(|mut pipe| {
        let bytes = stdin.to_vec();
        // A tool that exits without reading its input only loses it: not our error.
        std::thread::spawn(move || drop(pipe.write_all(&bytes)))
    });
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "'{shown}' did not finish within {timeout:?} and was killed"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("unable to wait for '{shown}': {e}")),
        }
    };
    if let Some(t) = input {
        let _ = t.join();
    }
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        return Err(format!(
            "'{shown}' failed ({status}): {}",
            String::from_utf8_lossy(&stderr).trim()
        ));
    }
    Ok(stdout)
}

/// A DNS-1123 label of at most `max` characters (a Helm release name: 53).
pub fn is_dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_sees_a_cleared_environment_and_is_killed_at_the_deadline() {
        let sh = Path::new("/bin/sh");
        let out = run(
            sh,
            &["-c".into(), "env; cat".into()],
            b"in",
            &[("ONLY_THIS", "1".into())],
            TIMEOUT,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("ONLY_THIS=1") && text.ends_with("in"),
            "{text}"
        );
        assert!(
            !text.contains("CARGO"),
            "the engine's environment leaked: {text}"
        );
        let started = Instant::now();
        let e = run(
            sh,
            &["-c".into(), "sleep 30".into()],
            b"",
            &[],
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert!(e.contains("did not finish"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn release_names_are_dns_labels() {
        assert!(is_dns_label("shop-1", 53));
        for bad in [
            "",
            "--post-renderer=x",
            "Shop",
            "a_b",
            "-a",
            &"a".repeat(54),
        ] {
            assert!(!is_dns_label(bad, 53), "{bad}");
        }
    }
}
