//! `keelson pipeline check`: the project's own Tekton definitions pass; problems name
//! file, object and field and exit 1; `--print` re-emits objects that check again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn keelson(args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(args)
        .output()
        .expect("keelson runs");
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn tekton_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines/tekton")
}

#[test]
fn the_projects_own_pipelines_pass() {
    let dir = tekton_dir();
    let out = keelson(&["pipeline", "check", dir.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("ok: 5 Tekton object(s)"),
        "{}",
        out.stderr
    );
}

#[test]
fn problems_name_file_object_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata:\n  name: bad\nspec:\n  tasks:\n  \
         - name: Build\n    taskSpec:\n      steps:\n      - name: s\n        image: busybox\n        \
         workspaces:\n        - name: w\n          mountpath: /w\n",
    )
    .unwrap();
    let out = keelson(&["pipeline", "check", file.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let f = file.display();
    for line in [
        format!("{f}: Pipeline/bad: .spec.tasks[0].name: invalid task name \"Build\""),
        format!(
            "{f}: Pipeline/bad: .spec.tasks[0].taskSpec.steps[0].workspaces[0].mountpath: unknown field (did you mean \"mountPath\"?"
        ),
    ] {
        assert!(out.stderr.contains(&line), "missing {line}\n{}", out.stderr);
    }
}

#[test]
fn print_re_emits_objects_that_check_again() {
    let dir = tekton_dir();
    let out = keelson(&["pipeline", "check", "--print", dir.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout.matches("\n---\n").count() + 1,
        5,
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("kind: Pipeline\n"), "{}", out.stdout);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("all.yaml");
    std::fs::write(&file, &out.stdout).unwrap();
    let again = keelson(&["pipeline", "check", "--print", file.to_str().unwrap()]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(again.stdout, out.stdout);
}

#[test]
fn missing_files_are_errors() {
    let out = keelson(&["pipeline", "check", "/nonexistent/keelson.yaml"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot read /nonexistent/keelson.yaml"),
        "{}",
        out.stderr
    );
}
