//! Differential suite: every case in `tests/kustomize/` is rendered by the real
//! `kustomize` v5.5.0 (built by `e2e/tools/kustomize.sh`) and by keelson; the outputs must
//! be byte-identical, and where kustomize fails keelson must fail too, naming the file.
//!
//! A case is a directory. It builds its `ROOT` subdirectory when that file exists (else
//! the case directory itself) and passes the flags in `ARGS` to both tools. The overlays
//! of `overlays-example/` are cases too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use keelson::render::{self, LoadRestrictor, RenderOptions, Reorder};

/// The reference kustomize (`KEELSON_KUSTOMIZE` when the test script set it).
fn kustomize() -> PathBuf {
    pinned_tool("KEELSON_KUSTOMIZE", "kustomize.sh")
}

/// A tool the test script builds at a pinned version: the path in `env` when set, else the
/// one `e2e/tools/<script>` builds (and caches).
fn pinned_tool(env: &str, script: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../e2e/tools")
        .join(script);
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .expect("the tool script runs");
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

struct Case {
    name: String,
    root: PathBuf,
    args: Vec<String>,
}

fn cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kustomize");
    let mut cases: Vec<Case> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| {
            let root = match std::fs::read_to_string(p.join("ROOT")) {
                Ok(r) => p.join(r.trim()),
                Err(_) => p.clone(),
            };
            let args = std::fs::read_to_string(p.join("ARGS"))
                .map(|a| a.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default();
            Case {
                name: p.file_name().unwrap().to_string_lossy().into_owned(),
                root,
                args,
            }
        })
        .collect();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../overlays-example/overlays");
    for overlay in std::fs::read_dir(&example).unwrap() {
        let root = overlay.unwrap().path();
        cases.push(Case {
            name: format!(
                "overlays-example/overlays/{}",
                root.file_name().unwrap().to_string_lossy()
            ),
            root,
            args: Vec::new(),
        });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

fn options(args: &[String]) -> RenderOptions {
    let mut o = RenderOptions::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--reorder" => {
                o.reorder = Some(match it.next().map(String::as_str) {
                    Some("none") => Reorder::None,
                    _ => Reorder::Legacy,
                })
            }
            "--load-restrictor" => {
                if it.next().map(String::as_str) == Some("LoadRestrictionsNone") {
                    o.load_restrictor = LoadRestrictor::None;
                }
            }
            other => panic!("unknown flag in ARGS: {other}"),
        }
    }
    o
}

#[test]
fn byte_identical_to_kustomize() {
    let kustomize = kustomize();
    let cases = cases();
    assert!(
        cases.len() >= 20,
        "the corpus has only {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let reference = Command::new(&kustomize)
            .arg("build")
            .arg(&case.root)
            .args(&case.args)
            .output()
            .unwrap();
        let ours = render::build(&render::DiskFs, &case.root, options(&case.args));
        match (reference.status.success(), ours) {
            (true, Ok(rendered)) => {
                let want = String::from_utf8_lossy(&reference.stdout);
                let got = rendered.to_yaml();
                if got != want {
                    failures.push(format!(
                        "{}: output differs\n{}",
                        case.name,
                        first_difference(&want, &got)
                    ));
                }
            }
            (true, Err(e)) => failures.push(format!(
                "{}: kustomize succeeds, keelson fails: {e}",
                case.name
            )),
            (false, Ok(_)) => failures.push(format!(
                "{}: kustomize fails ({}), keelson succeeds",
                case.name,
                String::from_utf8_lossy(&reference.stderr).trim()
            )),
            (false, Err(e)) => {
                // Both fail: keelson's message must name a file of the case.
                let msg = e.to_string();
                if !msg.contains(&case.name) {
                    failures.push(format!(
                        "{}: error does not name the file: {msg}",
                        case.name
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from kustomize:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

fn first_difference(want: &str, got: &str) -> String {
    let w: Vec<&str> = want.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    let i = w
        .iter()
        .zip(&g)
        .position(|(a, b)| a != b)
        .unwrap_or(w.len().min(g.len()));
    let from = i.saturating_sub(3);
    format!(
        "  line {}\n  kustomize: {:?}\n  keelson:   {:?}",
        i + 1,
        &w[from..(i + 3).min(w.len())],
        &g[from..(i + 3).min(g.len())]
    )
}

/// The pinned helm (`KEELSON_HELM` when the test script set it).
fn helm() -> PathBuf {
    pinned_tool("KEELSON_HELM", "helm.sh")
}

/// `helmCharts` with the real helm (v3, built by `e2e/tools/helm.sh`): both tools render
/// the vendored charts of `tests/kustomize-helm/` through it, byte for byte. (Cases with a
/// chart `repo:` are left to the stand-in: the real helm would go to the network.)
#[test]
fn helm_charts_match_kustomize_with_helm() {
    helm_cases_match(&helm(), true);
}

/// `helmCharts` with `tests/kustomize-helm/fake-helm.sh`, a stand-in that answers `version`
/// and prints a fixed manifest for `template`: it pins down how both tools call helm and
/// what they do with its output (generator order, transformers, patches, errors).
#[test]
fn helm_charts_match_kustomize_with_a_stand_in_helm() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kustomize-helm");
    helm_cases_match(&dir.join("fake-helm.sh"), false);
}

fn helm_cases_match(helm: &Path, vendored_only: bool) {
    let kustomize = kustomize();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kustomize-helm");
    let mut failures = Vec::new();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    if vendored_only {
        cases.retain(|case| {
            let text = std::fs::read_to_string(case.join("kustomization.yaml")).unwrap();
            !text.contains("repo:")
        });
    }
    assert!(!cases.is_empty());
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let reference = Command::new(&kustomize)
            .args(["build", "--enable-helm", "--helm-command"])
            .arg(helm)
            .arg(case)
            .output()
            .unwrap();
        let ours = Command::new(env!("CARGO_BIN_EXE_keelson"))
            .arg("build")
            .arg(case)
            .env("KEELSON_HELM", helm)
            .output()
            .unwrap();
        match (reference.status.success(), ours.status.success()) {
            (true, true) if reference.stdout != ours.stdout => failures.push(format!(
                "{name}: output differs\n{}",
                first_difference(
                    &String::from_utf8_lossy(&reference.stdout),
                    &String::from_utf8_lossy(&ours.stdout)
                )
            )),
            (true, true) => {}
            (false, false) => {
                let msg = String::from_utf8_lossy(&ours.stderr);
                if !msg.contains(&name) {
                    failures.push(format!("{name}: error does not name the file: {msg}"));
                }
            }
            (k, o) => failures.push(format!(
                "{name}: kustomize succeeds: {k}, keelson succeeds: {o}\n{}",
                String::from_utf8_lossy(if k { &ours.stderr } else { &reference.stderr })
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Without a helm binary, `helmCharts` is a clear error naming the file and the field.
#[test]
fn helm_charts_without_helm_fail_clearly() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kustomize-helm/charts-local");
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .arg("build")
        .arg(&case)
        .env("PATH", empty.path())
        .env_remove("KEELSON_HELM")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(
        msg.contains("charts-local/kustomization.yaml")
            && msg.contains("helmCharts[0]")
            && msg.contains("`helm` binary"),
        "{msg}"
    );
}

/// A `releaseName` (or namespace) that helm would read as a flag is refused before helm
/// runs: `--post-renderer=…` would otherwise run a command of the repository's choosing.
#[test]
fn a_helm_value_that_is_a_flag_is_refused_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let script = dir.path().join("post.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ntouch {}\ncat\n", marker.display()),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("charts/demo")).unwrap();
    std::fs::write(
        dir.path().join("charts/demo/Chart.yaml"),
        "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    )
    .unwrap();
    let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kustomize-helm/fake-helm.sh");
    for (field, value) in [
        (
            "releaseName",
            format!("--post-renderer={}", script.display()),
        ),
        ("namespace", "--kube-context=prod".to_string()),
    ] {
        std::fs::write(
            dir.path().join("kustomization.yaml"),
            format!("helmCharts:\n- name: demo\n  {field}: \"{value}\"\n"),
        )
        .unwrap();
        let ours = Command::new(env!("CARGO_BIN_EXE_keelson"))
            .arg("build")
            .arg(dir.path())
            .env("KEELSON_HELM", &fake)
            .output()
            .unwrap();
        let msg = String::from_utf8_lossy(&ours.stderr);
        assert!(!ours.status.success());
        assert!(
            msg.contains(&format!("helmCharts[0].{field}")) && msg.contains("kustomization.yaml"),
            "{msg}"
        );
        assert!(!marker.exists());
    }
}
