//! The `keelson` binary answers `--help` and `--version`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn keelson(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(args)
        .output()
        .expect("keelson runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn version_names_the_crate_version() {
    let (ok, out) = keelson(&["--version"]);
    assert!(ok);
    assert_eq!(out.trim(), format!("keelson {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn help_describes_keelson() {
    let (ok, out) = keelson(&["--help"]);
    assert!(ok);
    assert!(out.contains("Usage: keelson"), "{out}");
    assert!(out.contains("multi-cluster sync"), "{out}");
}
