//! Child processes that cannot outlive the test that started them.
//!
//! Each server runs under a tiny `bash` watchdog whose stdin is a pipe from this process.
//! When the pipe closes — because the harness was dropped, the test panicked, or the test
//! binary died or was killed outright — the watchdog stops the server (TERM, then KILL
//! after a grace period). No `unsafe`, no reliance on destructors running.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::HarnessError;

/// Stops the child when stdin reaches EOF; exits with the child's status.
/// (Background jobs of a non-interactive shell get /dev/null as stdin, hence fd 3.)
const WATCHDOG: &str = r#"
exec 3<&0
"$@" </dev/null 3<&- &
child=$!
{
  while read -r _ <&3; do :; done
  kill -TERM "$child" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$child" 2>/dev/null || exit 0; sleep 0.1; done
  kill -KILL "$child" 2>/dev/null
} &
watcher=$!
wait "$child"; status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

/// A server process under a watchdog; stopped when dropped.
#[derive(Debug)]
pub struct Supervised {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
}

impl Supervised {
    /// Starts `program args…` with stdout and stderr appended to `log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        log: &Path,
    ) -> Result<Self, HarnessError> {
        let io = |e| HarnessError::Io {
            what: format!("starting {name}"),
            source: e,
        };
        let out = File::create(log).map_err(io)?;
        let err = out.try_clone().map_err(io)?;
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("keelson-e2e-watchdog")
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            // Its own process group: Ctrl-C in a terminal reaches the harness, which then
            // stops the servers in order, instead of reaching every server at once.
            .process_group(0)
            .spawn()
            .map_err(io)?;
        let stdin = child.stdin.take();
        Ok(Supervised {
            name: name.to_string(),
            child,
            stdin,
            log: log.to_path_buf(),
        })
    }

    /// The process has exited (it should not have): returns its log tail as an error.
    pub fn check_running(&mut self) -> Result<(), HarnessError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(HarnessError::Exited {
                name: self.name.clone(),
                status: status.to_string(),
                log_tail: log_tail(&self.log),
            }),
            Err(e) => Err(HarnessError::Io {
                what: format!("checking {}", self.name),
                source: e,
            }),
        }
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`, …) to the server itself, not its watchdog:
    /// the watchdog's child whose process name is `program`'s file name.
    pub fn signal(&self, program: &Path, signal: &str) -> Result<(), HarnessError> {
        let comm: String = program
            .file_name()
            .map(|n| n.to_string_lossy().chars().take(15).collect())
            .unwrap_or_default();
        let status = Command::new("pkill")
            .arg(format!("-{signal}"))
            .args(["-P", &self.child.id().to_string(), "-x", &comm])
            .status()
            .map_err(|e| HarnessError::Io {
                what: format!("signalling {}", self.name),
                source: e,
            })?;
        if status.success() {
            Ok(())
        } else {
            Err(HarnessError::Io {
                what: format!("signalling {}", self.name),
                source: std::io::Error::other(format!("pkill -{signal} found no {comm}")),
            })
        }
    }

    /// Waits (bounded) for the process to exit, e.g. after [`Supervised::signal`].
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The log file of the process.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Stops the process and waits (bounded) for it to go.
    pub fn stop(&mut self) {
        // Closing the pipe is the stop signal.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The error lines (klog `E`/`F`) and the last lines of a log file, for error messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let is_error = |l: &&&str| {
        let b = l.as_bytes();
        b.len() > 5 && matches!(b[0], b'E' | b'F') && b[1..5].iter().all(u8::is_ascii_digit)
    };
    let errors: Vec<&str> = lines.iter().filter(is_error).copied().collect();
    let tail = &lines[lines.len().saturating_sub(10)..];
    let errors = &errors[errors.len().saturating_sub(10)..];
    let mut out: Vec<&str> = errors.to_vec();
    out.extend(tail.iter().filter(|l| !errors.contains(l)));
    out.join("\n")
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16, HarnessError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| HarnessError::Io {
        what: "finding a free port".into(),
        source: e,
    })?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| HarnessError::Io {
            what: "finding a free port".into(),
            source: e,
        })
}
