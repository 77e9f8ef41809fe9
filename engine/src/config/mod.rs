//! `keelson.yaml`: the clusters of a GitOps repository and the targets synced to them.
//!
//! ```yaml
//! apiVersion: keelson.dev/v1alpha1
//! kind: Project
//! clusters:
//! - name: staging
//!   labels: {env: staging}
//!   kubeconfig: {context: e2e-1}        # or: inCluster: true, or: kubeconfigSecret: {...}
//! targets:
//! - name: shop-staging
//!   path: overlays/staging
//!   clusterSelector: {env: staging}
//!   sync: {prune: true, pruneGuardPercent: 50, wait: true, timeout: 5m}
//! ```
//!
//! Every mistake is reported with the field it concerns, before anything touches a cluster.

pub mod policy;
pub mod windows;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::time::{Cron, Period};
pub use policy::{Conflicts, IgnoreDifference, OnRemoval, SyncPolicy};
pub use windows::{Denial, SyncWindows, Verdict};

/// The file name looked for at a repository's root.
pub const FILE_NAME: &str = "keelson.yaml";

/// A parsed and validated `keelson.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Project {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    /// Left out in a repository `keelson serve` watches: every cluster granted to it.
    #[serde(default)]
    pub clusters: Vec<Cluster>,
    pub targets: Vec<Target>,
    /// Reserved for the pipeline gates (typed Tekton runs) of later versions.
    #[serde(default)]
    pub pipelines: Option<serde_json::Value>,
    /// When to poll the repository (a fallback to webhooks) and re-check for drift.
    #[serde(default)]
    pub schedule: Schedule,
    /// When `keelson serve` may sync which targets to which clusters (allow/deny windows).
    #[serde(default)]
    pub sync_windows: SyncWindows,
}

/// Cron schedules (5 fields as crontab, or 6–7 with seconds).
///
/// ```yaml
/// schedule:
///   poll: "*/2 * * * *"      # look for new commits every 2 minutes
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Schedule {
    /// Poll the repository for new commits.
    #[serde(default)]
    pub poll: Option<Cron>,
    /// Correct drift of targets with `sync.selfHeal`.
    #[serde(default)]
    pub self_heal: Option<Cron>,
}

/// A cluster and how to reach it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cluster {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// A context of a kubeconfig file.
    #[serde(default)]
    pub kubeconfig: Option<KubeconfigRef>,
    /// The cluster keelson runs in (its service account).
    #[serde(default)]
    pub in_cluster: bool,
    /// A kubeconfig held in a Secret of the cluster keelson runs in.
    #[serde(default)]
    pub kubeconfig_secret: Option<SecretRef>,
    /// The user every request impersonates (`system:serviceaccount:NS:NAME`): set by
    /// `keelson serve` from the operator's grant, never read from a file.
    #[serde(skip)]
    pub impersonate: Option<String>,
}

impl Cluster {
    /// The connection settings the entry names (`kubeconfig`, `inCluster`,
    /// `kubeconfigSecret`): at most one is valid, none means the kubeconfig context of its
    /// name.
    pub fn ways(&self) -> Vec<&'static str> {
        [
            (self.kubeconfig.is_some(), "kubeconfig"),
            (self.in_cluster, "inCluster"),
            (self.kubeconfig_secret.is_some(), "kubeconfigSecret"),
        ]
        .into_iter()
        .filter_map(|(set, way)| set.then_some(way))
        .collect()
    }
}

/// A context of a kubeconfig file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubeconfigRef {
    pub context: String,
    /// The file; default `$KUBECONFIG`, then `~/.kube/config`.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

/// A key of a Secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretRef {
    pub namespace: String,
    pub name: String,
    #[serde(default = "default_secret_key")]
    pub key: String,
}

fn default_secret_key() -> String {
    "kubeconfig".into()
}

/// An overlay synced to the clusters a selector picks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Target {
    pub name: String,
    /// The kustomization directory, relative to the repository root.
    pub path: PathBuf,
    /// Labels a cluster must all carry to be selected.
    pub cluster_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub sync: SyncPolicy,
    /// `native` (default) or `kustomize` (run an external kustomize binary).
    #[serde(default)]
    pub renderer: Renderer,
    /// kustomize's load restrictor: `LoadRestrictionsRootOnly` (default) or
    /// `LoadRestrictionsNone` (files outside a kustomization's directory, still inside the
    /// repository). The CLI honours it; `keelson serve` only where the operator grants it.
    #[serde(default)]
    pub load_restrictor: TargetRestrictor,
    /// A CI pipeline that must succeed on a commit before `keelson serve` deploys it.
    #[serde(default)]
    pub gate: Option<Gate>,
}

/// A pipeline gate: a typed Tekton PipelineRun of a Pipeline defined in the repository,
/// run for each new commit of the target; the target is deployed only once it succeeds.
///
/// ```yaml
/// gate:
///   pipeline: shop-ci              # a Pipeline among `definitions`
///   definitions: pipelines/tekton  # files or directories in the repository
///   cluster: staging               # where Tekton runs it
///   namespace: keelson-ci
///   params: {revision: $(keelson.commit), repo-url: $(keelson.repository)}
///   timeout: 30m
///   attempts: 2                    # failed runs are re-submitted with backoff
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Gate {
    pub pipeline: String,
    #[serde(default = "default_definitions")]
    pub definitions: PathBuf,
    pub cluster: String,
    #[serde(default = "default_gate_namespace")]
    pub namespace: String,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    #[serde(default)]
    pub service_account: Option<String>,
    /// Workspace bindings (`emptyDir`, `volumeClaimTemplate`, …) as in a PipelineRun.
    #[serde(default)]
    pub workspaces: Vec<keelson_pipelines::model::WorkspaceBinding>,
    #[serde(default)]
    pub timeout: Option<Period>,
    #[serde(default = "default_attempts")]
    pub attempts: u32,
}

fn default_definitions() -> PathBuf {
    "pipelines/tekton".into()
}

fn default_gate_namespace() -> String {
    "keelson-ci".into()
}

fn default_attempts() -> u32 {
    1
}

/// How a target renders.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum Renderer {
    #[default]
    Native,
    Kustomize,
}

/// A target's load restrictor, spelled as kustomize's `--load-restrictor` values.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum TargetRestrictor {
    #[default]
    LoadRestrictionsRootOnly,
    LoadRestrictionsNone,
}

impl TargetRestrictor {
    /// The renderer's setting.
    pub fn get(self) -> crate::render::LoadRestrictor {
        match self {
            TargetRestrictor::LoadRestrictionsRootOnly => crate::render::LoadRestrictor::RootOnly,
            TargetRestrictor::LoadRestrictionsNone => crate::render::LoadRestrictor::None,
        }
    }
}

/// A mistake in `keelson.yaml`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("{}: {field}: {message}", path.display())]
    Field {
        path: PathBuf,
        field: String,
        message: String,
    },
}

impl Project {
    /// Reads and validates `keelson.yaml` in `root`.
    pub fn load(root: &Path) -> Result<Self, ConfigError> {
        let path = root.join(FILE_NAME);
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Read {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let project = Self::parse(&text, &path)?;
        project.validate(root, &path)?;
        Ok(project)
    }

    /// Parses without looking at the filesystem (`path` names the file in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        crate::yaml::from_str(text).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Checks names, selectors, connection settings, durations and overlay paths.
    pub fn validate(&self, root: &Path, path: &Path) -> Result<(), ConfigError> {
        self.validate_in(&crate::render::DiskFs, root, path)
    }

    /// [`Project::validate`] with overlay paths looked up in `fs` (a git tree, say).
    pub fn validate_in(
        &self,
        fs: &dyn crate::render::FileSystem,
        root: &Path,
        path: &Path,
    ) -> Result<(), ConfigError> {
        let err = |field: String, message: String| ConfigError::Field {
            path: path.to_path_buf(),
            field,
            message,
        };
        if let Some(kind) = self.kind.as_deref().filter(|k| *k != "Project") {
            return Err(err("kind".into(), format!("expected Project, got {kind}")));
        }
        self.sync_windows
            .validate("syncWindows")
            .map_err(|(field, message)| err(field, message))?;
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in self.clusters.iter().enumerate() {
            let field = format!("clusters[{i}]");
            if c.name.is_empty() {
                return Err(err(format!("{field}.name"), "must not be empty".into()));
            }
            if !seen.insert(&c.name) {
                return Err(err(
                    format!("{field}.name"),
                    format!("duplicate cluster {:?}", c.name),
                ));
            }
            if c.ways().len() > 1 {
                return Err(err(
                    field,
                    format!(
                        "cluster {:?} takes at most one of kubeconfig, inCluster, kubeconfigSecret \
                         (none: the kubeconfig context named {:?})",
                        c.name, c.name
                    ),
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, t) in self.targets.iter().enumerate() {
            let field = format!("targets[{i}]");
            if !seen.insert(&t.name) {
                return Err(err(
                    format!("{field}.name"),
                    format!("duplicate target {:?}", t.name),
                ));
            }
            if self.clusters_of(t).is_empty() {
                return Err(err(
                    format!("{field}.clusterSelector"),
                    format!("target {:?} selects no cluster", t.name),
                ));
            }
            if t.path.is_absolute()
                || t.path
                    .components()
                    .any(|c| c == std::path::Component::ParentDir)
            {
                return Err(err(
                    format!("{field}.path"),
                    "must be a path inside the repository".into(),
                ));
            }
            let dir = root.join(&t.path);
            let has_kustomization = crate::render::kustomization::FILE_NAMES
                .iter()
                .any(|n| fs.is_file(&dir.join(n)));
            if !has_kustomization {
                return Err(err(
                    format!("{field}.path"),
                    format!("{} holds no kustomization", dir.display()),
                ));
            }
            if let Some(g) = &t.gate {
                if !self.clusters.iter().any(|c| c.name == g.cluster) {
                    return Err(err(
                        format!("{field}.gate.cluster"),
                        format!("no cluster {:?} in keelson.yaml", g.cluster),
                    ));
                }
                if !fs.is_dir(&root.join(&g.definitions)) && !fs.is_file(&root.join(&g.definitions))
                {
                    return Err(err(
                        format!("{field}.gate.definitions"),
                        format!("{} does not exist", root.join(&g.definitions).display()),
                    ));
                }
                if g.attempts == 0 {
                    return Err(err(
                        format!("{field}.gate.attempts"),
                        "must be at least 1".into(),
                    ));
                }
            }
            t.sync
                .validate()
                .map_err(|(f, message)| err(format!("{field}.sync.{f}"), message))?;
        }
        Ok(())
    }

    /// The clusters a target's selector picks, in file order.
    pub fn clusters_of(&self, target: &Target) -> Vec<&Cluster> {
        self.clusters
            .iter()
            .filter(|c| {
                target
                    .cluster_selector
                    .iter()
                    .all(|(k, v)| c.labels.get(k) == Some(v))
            })
            .collect()
    }

    /// The target called `name`.
    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn repo(config: &str) -> (tempfile::TempDir, Result<Project, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("overlays/a")).unwrap();
        std::fs::write(
            dir.path().join("overlays/a/kustomization.yaml"),
            "resources: []\n",
        )
        .unwrap();
        std::fs::write(dir.path().join(FILE_NAME), config).unwrap();
        let p = Project::load(dir.path());
        (dir, p)
    }

    const CLUSTERS: &str =
        "clusters:\n- name: one\n  labels: {env: dev}\n  kubeconfig: {context: e2e-1}\n";

    #[test]
    fn a_valid_project_loads() {
        let (_d, p) = repo(&format!(
            "{CLUSTERS}targets:\n- name: a\n  path: overlays/a\n  clusterSelector: {{env: dev}}\n  sync: {{timeout: 90s}}\n"
        ));
        let p = p.unwrap();
        let t = p.target("a").unwrap();
        assert_eq!(p.clusters_of(t).len(), 1);
        assert_eq!(t.sync.timeout.get(), Duration::from_secs(90));
        assert!(t.sync.prune);
    }

    #[test]
    fn mistakes_name_their_field() {
        let cases = [
            (format!("{CLUSTERS}targets: []\nextra: 1\n"), "extra"),
            (format!("{CLUSTERS}targets:\n- name: a\n  path: overlays/a\n  clusterSelector: {{env: prod}}\n"), "targets[0].clusterSelector"),
            (format!("{CLUSTERS}targets:\n- name: a\n  path: overlays/missing\n  clusterSelector: {{env: dev}}\n"), "targets[0].path"),
            (format!("{CLUSTERS}targets:\n- name: a\n  path: ../outside\n  clusterSelector: {{env: dev}}\n"), "targets[0].path"),
            (format!("{CLUSTERS}targets:\n- name: a\n  path: overlays/a\n  clusterSelector: {{env: dev}}\n  sync: {{timeout: soon}}\n"), "targets[0].sync.timeout"),
            (format!("{CLUSTERS}targets:\n- name: a\n  path: overlays/a\n  clusterSelector: {{env: dev}}\n  sync: {{prnue: true}}\n"), "prnue"),
            ("clusters:\n- name: one\n  kubeconfig: {context: x}\n  inCluster: true\ntargets: []\n".to_string(), "clusters[0]"),
            (format!("{CLUSTERS}- name: one\n  inCluster: true\ntargets: []\n"), "clusters[1].name"),
            (format!("{CLUSTERS}targets: []\nschedule: {{poll: often}}\n"), "schedule.poll"),
            (format!("{CLUSTERS}targets: []\nschedule: {{pool: '* * * * *'}}\n"), "pool"),
        ];
        for (config, field) in cases {
            let (_d, p) = repo(&config);
            let e = p.unwrap_err().to_string();
            assert!(e.contains(field), "{field:?} not in {e:?}");
        }
    }
}

#[cfg(test)]
mod example {
    #[test]
    fn the_bundled_example_is_valid() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../overlays-example");
        let p = super::Project::load(&root).unwrap();
        assert_eq!(p.targets.len(), 2);
    }
}
