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

/// Every enumerated flag is checked by clap: a bad value is a usage error (exit 2) that
/// lists the valid values, before anything is read or fetched.
#[test]
fn enumerated_flags_list_their_values() {
    let cases: &[(&[&str], &str)] = &[
        (&["build", "--reorder", "x"], "legacy, none"),
        (
            &["build", "--load-restrictor", "x"],
            "LoadRestrictionsRootOnly, LoadRestrictionsNone",
        ),
        (&["build", "-o", "x"], "yaml, json"),
        (
            &["build", "--repo", "/r", "--tree", "x"],
            "objects, checkout",
        ),
        (&["changed", "--from", "a", "-o", "x"], "names, json"),
        (&["diff", "-o", "x"], "human, json"),
        (&["sync", "-o", "x"], "human, json"),
        (&["sync", "--timeout", "soon"], "is not a duration"),
        (&["status", "-o", "x"], "table, json"),
        (
            &["webhooks", "serve", "--coalesce-window", "1x"],
            "is not a duration",
        ),
    ];
    for (args, values) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
            .args(*args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(values), "{args:?}: {stderr}");
    }
}

#[test]
fn help_lists_the_exit_codes() {
    for verb in [&[][..], &["diff"], &["sync"], &["build"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
            .args(verb)
            .arg("--help")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Exit codes:"), "{verb:?}: {text}");
    }
}
