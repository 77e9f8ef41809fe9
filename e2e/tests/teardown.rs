//! No process of the harness outlives it: not after a drop, not after a panic, and not
//! when the process holding it is killed outright.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keelson_e2e::{ControlPlane, Options};

/// Pids of processes whose command line mentions `dir` (the run's unique data directory).
fn processes_using(dir: &Path) -> Vec<String> {
    let out = Command::new("pgrep")
        .arg("-f")
        .arg(dir.to_string_lossy().as_ref())
        .output()
        .expect("pgrep runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_until_gone(dir: &Path, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let left = processes_using(dir);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn drop_and_panic_stop_every_process() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        clusters: 1,
        controller_manager: true,
        dir: Some(dir.path().to_path_buf()),
    };
    let result = std::panic::catch_unwind(|| {
        let cp = ControlPlane::start(options).unwrap();
        // etcd, kube-apiserver, kube-controller-manager and their three watchdogs.
        assert_eq!(processes_using(dir.path()).len(), 6);
        let _keep = cp;
        panic!("a failing test");
    });
    assert!(result.is_err());
    assert_eq!(
        wait_until_gone(dir.path(), Duration::from_secs(20)),
        Vec::<String>::new()
    );
}

#[test]
fn killing_the_owner_stops_every_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut owner = Command::new(env!("CARGO_BIN_EXE_keelson-e2e-cluster"))
        .arg("1")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for "ready" on its stdout.
    let stdout = owner.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    assert!(line.starts_with("ready"), "{line}");
    assert!(processes_using(dir.path()).len() >= 3);

    owner.kill().unwrap(); // SIGKILL: no destructor runs in the owner
    owner.wait().unwrap();
    assert_eq!(
        wait_until_gone(dir.path(), Duration::from_secs(20)),
        Vec::<String>::new()
    );
}
