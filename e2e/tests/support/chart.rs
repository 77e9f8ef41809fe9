//! Shared by the chart tests: helm (built by e2e/tools/helm.sh), `helm template` of
//! `chart/` as parsed objects, and lookups in them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// The chart under test.
pub fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../chart")
}

/// The least a release needs: one repository to watch.
pub const MINIMAL: &[&str] = &["config.repositories[0].url=https://github.com/example/deploy.git"];

/// Values that turn every option of the chart on.
pub const FULL: &[&str] = &[
    "replicaCount=3",
    "clusters.kubeconfig.existingSecret=keelson-kubeconfig",
    "webhook.existingSecret=keelson-webhook",
    "github.existingSecret=keelson-github",
    "gitCredentials[0].name=deploy-git",
    "clusters.kubeconfigSecrets[0].name=prod-kubeconfig",
    "clusters.kubeconfigSecrets[0].access=api",
    "clusters.kubeconfigSecrets[1].name=edge-kubeconfig",
    "clusters.kubeconfigSecrets[1].access=mount",
    "serviceMonitor.enabled=true",
    "rbac.tekton.enabled=true",
    "config.repositories[0].url=https://github.com/example/deploy.git",
    "config.repositories[0].ref=main",
];

/// helm: `$KEELSON_HELM` when set, else built (once, cached) by e2e/tools/helm.sh.
pub fn helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        if let Some(p) = std::env::var_os("KEELSON_HELM").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/helm.sh");
        let out = Command::new("bash").arg(&script).output().unwrap();
        assert!(
            out.status.success(),
            "building helm failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

/// Runs helm with `args` then `--set` for each of `set`: stdout, or stderr on failure.
pub fn run_helm(args: &[&str], set: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new(helm());
    cmd.args(args);
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The Kubernetes version of the test clusters (`e2e/controlplane/versions.env`): helm
/// built with `go install` carries no default of its own that the chart would accept.
pub fn kube_version() -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("controlplane/versions.env");
    std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("KUBE_VERSION="))
        .unwrap_or_else(|| panic!("{} has no KUBE_VERSION", file.display()))
        .trim()
        .to_string()
}

/// `helm template RELEASE chart/ --namespace NAMESPACE --set …`, as YAML text.
pub fn template_text(release: &str, namespace: &str, set: &[&str]) -> Result<String, String> {
    let chart = chart().display().to_string();
    let kube = kube_version();
    run_helm(
        &[
            "template",
            release,
            &chart,
            "--namespace",
            namespace,
            "--kube-version",
            &kube,
        ],
        set,
    )
}

/// The rendered objects of [`template_text`].
pub fn template(release: &str, namespace: &str, set: &[&str]) -> Vec<Value> {
    let text = template_text(release, namespace, set).unwrap_or_else(|e| panic!("{e}"));
    keelson::yaml::documents(&text).unwrap()
}

pub fn kind_name(o: &Value) -> String {
    format!(
        "{}/{}",
        o["kind"].as_str().unwrap_or("?"),
        o["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// The one object of this kind whose name ends with `suffix`.
pub fn one<'a>(objects: &'a [Value], kind: &str, suffix: &str) -> &'a Value {
    let found: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .filter(|o| o["metadata"]["name"].as_str().unwrap().ends_with(suffix))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {kind} named …{suffix}, got {:?}",
        found.iter().map(|o| kind_name(o)).collect::<Vec<_>>()
    );
    found[0]
}

pub fn of_kind<'a>(objects: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> {
    objects.iter().filter(move |o| o["kind"] == kind)
}

pub fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}
