//! The engine's settings (`keelson serve --config FILE`): what to watch and where to listen.
//!
//! ```yaml
//! apiVersion: keelson.dev/v1alpha1
//! kind: ServeConfig
//! listen: 0.0.0.0:8080                 # webhooks, /healthz, /readyz, /api/v1/targets
//! metricsListen: 0.0.0.0:9090          # /metrics (default: on `listen`)
//! stateDir: /var/lib/keelson           # git mirrors and the render cache
//! kubeconfig: /etc/keelson/kubeconfig  # the file keelson.yaml's contexts are read from
//! webhook: {secretFile: /etc/keelson/webhook/secret, hostSecretFiles: {gitlab: /etc/keelson/gitlab/token}}
//! github: {tokenFile: /etc/keelson/github/token}
//! selfHeal: "*/5 * * * *"              # drift checks of targets with sync.selfHeal
//! retry: {base: 2s, max: 60s}          # failed cluster syncs retry with backoff
//! leases: {inCluster: true, namespace: keelson-system, duration: 15s}   # scale-out
//! fingerprintKeyFile: /etc/keelson/fingerprint/key   # keys Secret fingerprints in diffs
//! limits:                              # every field optional; these are the defaults
//!   maxBodyBytes: 4194304              # a delivery's body; at most GitHub's 25 MB
//!   inflightBodyBytes: 67108864        # all bodies being read at once; past it, 503
//!   headerTimeout: 10s                 # to send a request head (and idle keep-alive)
//!   bodyTimeout: 10s                   # to send a body
//!   maxConnections: 1024               # per listener
//!   maxWait: 10m                       # cap on a target's sync.timeout
//!   maxGate: 1h                        # cap on a pipeline gate's run
//!   fetchTimeout: 60s                  # git: no data for this long ends a fetch
//!   shutdownGrace: 25s                 # SIGTERM: how long running syncs may finish
//!   renderBytes: 268435456             # bytes of files one target's render may read
//!   renderObjects: 20000               # objects one target's render may produce
//!   renderNodes: 4000000               # YAML nodes one target's render may parse
//! clusters:                            # how to reach each cluster: only here
//! - name: staging
//!   labels: {env: staging}
//!   kubeconfig: {context: staging}     # of `kubeconfig`; or inCluster, or kubeconfigSecret
//! repositories:
//! - url: https://git.example.com/acme/deploy.git
//!   ref: main
//!   poll: "*/2 * * * *"
//!   github: acme/deploy                # webhooks and commit statuses
//!   allowLoadRestrictionsNone: false   # targets may read outside their kustomization
//!   destinations:                      # what it may write (default: everything)
//!     clusters: [staging]
//!     namespaces: ["shop-*"]
//!     clusterKinds: [Namespace]
//!   serviceAccount: tenants/shop       # impersonated on every cluster
//! defaultServiceAccount: tenants/default   # for repositories without one
//! ```
//!
//! The repository chooses what is deployed (`keelson.yaml`, naming clusters by name);
//! this file, owned by whoever runs the engine, chooses the clusters, how they are
//! reached and what each repository may write there.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::lease::LeaseSettings;
use crate::config::ConfigError;
use crate::source::{RepoSpec, RepositoryConfig, Rev};
use crate::time::{Cron, Period, parse_duration};

/// `keelson serve`'s settings file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServeConfig {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    /// Webhooks, health and the status API.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// `/metrics`; default: served on `listen` too.
    #[serde(default)]
    pub metrics_listen: Option<String>,
    /// Git mirrors and the render cache.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// The kubeconfig file for clusters reached through a context.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    #[serde(default)]
    pub webhook: WebhookSettings,
    /// Commit statuses; none without it.
    #[serde(default)]
    pub github: Option<GithubSettings>,
    /// When targets with `sync.selfHeal` re-plan and correct drift.
    #[serde(default)]
    pub self_heal: Option<String>,
    #[serde(default)]
    pub retry: RetrySettings,
    /// Syncs running at once across all targets.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Replicas share the clusters out through Leases; without it one engine owns all.
    #[serde(default)]
    pub leases: Option<LeaseSettings>,
    #[serde(default)]
    pub limits: LimitSettings,
    /// The key of Secret fingerprints in diffs and events (the chart creates one per
    /// installation); without it a random key per process.
    #[serde(default)]
    pub fingerprint_key_file: Option<PathBuf>,
    /// The clusters and how to reach them.
    #[serde(default)]
    pub clusters: Vec<crate::config::Cluster>,
    /// `namespace/name` of the ServiceAccount repositories without a `serviceAccount` of
    /// their own act as (Flux's `--default-service-account`).
    #[serde(default)]
    pub default_service_account: Option<String>,
    pub repositories: Vec<RepositoryConfig>,
}

/// What the operator bounds: request sizes and times, and how long a repository's sync
/// or gate may hold a worker, whatever its `keelson.yaml` asks for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct LimitSettings {
    pub max_body_bytes: usize,
    pub inflight_body_bytes: usize,
    pub header_timeout: Period,
    pub body_timeout: Period,
    pub max_connections: usize,
    pub max_wait: Period,
    pub max_gate: Period,
    pub fetch_timeout: Period,
    pub shutdown_grace: Period,
    pub render_bytes: u64,
    pub render_objects: usize,
    pub render_nodes: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        let receiver = keelson_webhooks::Limits::default();
        LimitSettings {
            max_body_bytes: receiver.max_body_bytes,
            inflight_body_bytes: receiver.max_inflight_body_bytes,
            header_timeout: Period::from_secs(receiver.connection.header_read_timeout.as_secs()),
            body_timeout: Period::from_secs(receiver.body_read_timeout.as_secs()),
            max_connections: receiver.connection.max_connections,
            max_wait: Period::from_secs(600),
            max_gate: Period::from_secs(3600),
            fetch_timeout: Period::from_secs(60),
            shutdown_grace: Period::from_secs(25),
            render_bytes: 256 * 1024 * 1024,
            render_objects: 20_000,
            render_nodes: 4_000_000,
        }
    }
}

impl LimitSettings {
    fn validate(&self) -> Result<(), (String, String)> {
        let max = keelson_webhooks::GITHUB_MAX_BODY_BYTES;
        let checks = [
            (
                "maxBodyBytes",
                self.max_body_bytes == 0 || self.max_body_bytes > max,
                format!(
                    "{} is not between 1 and GitHub's cap of {max} bytes",
                    self.max_body_bytes
                ),
            ),
            (
                "inflightBodyBytes",
                self.inflight_body_bytes < self.max_body_bytes,
                format!(
                    "{} is less than maxBodyBytes ({})",
                    self.inflight_body_bytes, self.max_body_bytes
                ),
            ),
            (
                "maxConnections",
                self.max_connections == 0,
                "must be at least 1".to_string(),
            ),
            (
                "headerTimeout",
                self.header_timeout.get().is_zero(),
                "must be more than 0".to_string(),
            ),
            (
                "bodyTimeout",
                self.body_timeout.get().is_zero(),
                "must be more than 0".to_string(),
            ),
            (
                "fetchTimeout",
                self.fetch_timeout.get() < Duration::from_secs(1),
                "must be at least 1s".to_string(),
            ),
        ];
        match checks.into_iter().find(|(_, bad, _)| *bad) {
            Some((field, _, message)) => Err((format!("limits.{field}"), message)),
            None => Ok(()),
        }
    }

    /// The receiver's limits.
    pub fn receiver(&self) -> keelson_webhooks::Limits {
        keelson_webhooks::Limits {
            max_body_bytes: self.max_body_bytes,
            max_inflight_body_bytes: self.inflight_body_bytes,
            body_read_timeout: self.body_timeout.get(),
            connection: self.connection(),
            ..keelson_webhooks::Limits::default()
        }
    }

    /// What one render of a target may consume.
    pub fn render_budget(&self) -> crate::render::Budget {
        crate::render::Budget {
            bytes: self.render_bytes,
            objects: self.render_objects,
            nodes: self.render_nodes,
        }
    }

    /// Every listener's limits.
    pub fn connection(&self) -> keelson_webhooks::ConnectionLimits {
        keelson_webhooks::ConnectionLimits {
            header_read_timeout: self.header_timeout.get(),
            max_connections: self.max_connections,
            ..keelson_webhooks::ConnectionLimits::default()
        }
    }
}

/// The webhook receiver.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookSettings {
    /// The HMAC secret shared with GitHub; default `$KEELSON_WEBHOOK_SECRET`. Without
    /// either, webhooks are off and polling alone finds new commits.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Secrets of single hosts (`gitlab`, `gitea`, `bitbucket`, `bitbucket-server`,
    /// `github`): the file of each; other hosts use `secretFile`'s.
    #[serde(default)]
    pub host_secret_files: std::collections::BTreeMap<String, PathBuf>,
}

/// GitHub commit statuses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GithubSettings {
    pub token_file: PathBuf,
    #[serde(default)]
    pub api_url: Option<String>,
}

/// Backoff of failed cluster syncs (unreachable cluster, failed apply).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct RetrySettings {
    pub base: String,
    pub max: String,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            base: "2s".into(),
            max: "60s".into(),
        }
    }
}

fn default_listen() -> String {
    "0.0.0.0:8080".into()
}

fn default_concurrency() -> usize {
    8
}

/// A repository ready to watch.
#[derive(Debug, Clone)]
pub struct Watched {
    pub spec: RepoSpec,
    pub rev: Rev,
    pub poll: Option<Cron>,
    /// `owner/name` on GitHub, for webhooks and statuses.
    pub github: Option<String>,
    /// Targets may render with `LoadRestrictionsNone`.
    pub allow_load_restrictions_none: bool,
    /// What it may write.
    pub destinations: crate::tenancy::Destinations,
    /// The user its requests impersonate (`system:serviceaccount:NS:NAME`).
    pub impersonate: Option<String>,
}

/// The validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub metrics_listen: Option<SocketAddr>,
    pub state_dir: Option<PathBuf>,
    pub kubeconfig: Option<PathBuf>,
    pub webhook_secret_file: Option<PathBuf>,
    pub webhook_host_secret_files: Vec<(keelson_webhooks::Host, PathBuf)>,
    pub github: Option<GithubSettings>,
    pub self_heal: Option<Cron>,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub concurrency: usize,
    pub leases: Option<LeaseSettings>,
    pub limits: LimitSettings,
    pub fingerprint_key_file: Option<PathBuf>,
    pub clusters: Vec<crate::config::Cluster>,
    pub repositories: Vec<Watched>,
}

impl Settings {
    /// What repository `i` is granted.
    pub fn grant(&self, i: usize) -> crate::tenancy::Grant<'_> {
        let w = &self.repositories[i];
        crate::tenancy::Grant {
            clusters: &self.clusters,
            destinations: &w.destinations,
            impersonate: w.impersonate.as_deref(),
        }
    }
}

impl ServeConfig {
    /// Reads and validates the file.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let config: ServeConfig = crate::yaml::from_str(&text).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        config
            .validate()
            .map_err(|(field, message)| ConfigError::Field {
                path: path.to_path_buf(),
                field,
                message,
            })
    }

    /// Checks every field; errors are (field, message).
    pub fn validate(&self) -> Result<Settings, (String, String)> {
        if let Some(v) = &self.api_version
            && v != "keelson.dev/v1alpha1"
        {
            return Err((
                "apiVersion".into(),
                format!("{v:?} is not keelson.dev/v1alpha1"),
            ));
        }
        if let Some(k) = &self.kind
            && k != "ServeConfig"
        {
            return Err(("kind".into(), format!("{k:?} is not ServeConfig")));
        }
        let addr = |field: &str, text: &str| {
            text.parse::<SocketAddr>().map_err(|_| {
                (
                    field.to_string(),
                    format!("{text:?} is not an address like 0.0.0.0:8080"),
                )
            })
        };
        let listen = addr("listen", &self.listen)?;
        let metrics_listen = self
            .metrics_listen
            .as_deref()
            .map(|m| addr("metricsListen", m))
            .transpose()?;
        let self_heal = self
            .self_heal
            .as_deref()
            .map(Cron::parse)
            .transpose()
            .map_err(|m| ("selfHeal".to_string(), m))?;
        let duration = |field: &str, text: &str| {
            parse_duration(text)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    (
                        field.to_string(),
                        format!("{text:?} is not a duration like 2s, 5m or 1h"),
                    )
                })
        };
        let retry_base = duration("retry.base", &self.retry.base)?;
        let retry_max = duration("retry.max", &self.retry.max)?;
        if retry_max < retry_base {
            return Err(("retry.max".into(), "must not be below retry.base".into()));
        }
        if self.concurrency == 0 {
            return Err(("concurrency".into(), "must be at least 1".into()));
        }
        if let Some(l) = &self.leases {
            l.validate("leases")?;
        }
        if self.repositories.is_empty() {
            return Err(("repositories".into(), "name at least one repository".into()));
        }
        if self.clusters.is_empty() {
            return Err((
                "clusters".into(),
                "name at least one cluster (repositories name clusters; only this file says \
                 how to reach them)"
                    .into(),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, c) in self.clusters.iter().enumerate() {
            let field = format!("clusters[{i}]");
            if c.name.is_empty() || !names.insert(c.name.as_str()) {
                return Err((
                    format!("{field}.name"),
                    format!("{:?} is empty or listed twice", c.name),
                ));
            }
            if c.ways().len() > 1 {
                return Err((
                    field,
                    "takes at most one of kubeconfig, inCluster, kubeconfigSecret".into(),
                ));
            }
        }
        let mut repositories = Vec::new();
        for (i, r) in self.repositories.iter().enumerate() {
            let field = format!("repositories[{i}]");
            let (spec, rev, poll) = r.resolve(&field)?;
            let github = match &r.github {
                Some(g) if g.split('/').count() != 2 || g.split('/').any(str::is_empty) => {
                    return Err((
                        format!("{field}.github"),
                        format!("{g:?} is not owner/name"),
                    ));
                }
                Some(g) => Some(g.clone()),
                None => github_name(&r.url),
            };
            if repositories
                .iter()
                .any(|w: &Watched| w.spec.url == spec.url && w.rev == rev)
            {
                return Err((
                    format!("{field}.url"),
                    "listed twice with the same ref".into(),
                ));
            }
            if let Some(c) = r
                .destinations
                .clusters
                .iter()
                .find(|c| !c.contains('*') && !names.contains(c.as_str()))
            {
                return Err((
                    format!("{field}.destinations.clusters"),
                    format!("{c:?} is not among clusters"),
                ));
            }
            let chosen = match (&r.service_account, &self.default_service_account) {
                (Some(sa), _) => Some((format!("{field}.serviceAccount"), sa)),
                (None, Some(sa)) => Some(("defaultServiceAccount".to_string(), sa)),
                (None, None) => None,
            };
            let impersonate = match chosen {
                None => None,
                Some((f, sa)) => Some(
                    crate::tenancy::service_account_user(sa)
                        .ok_or_else(|| (f, format!("{sa:?} is not namespace/name")))?,
                ),
            };
            repositories.push(Watched {
                spec,
                rev,
                poll,
                github,
                allow_load_restrictions_none: r.allow_load_restrictions_none,
                destinations: r.destinations.clone(),
                impersonate,
            });
        }
        self.limits.validate()?;
        let mut webhook_host_secret_files = Vec::new();
        for (name, file) in &self.webhook.host_secret_files {
            let host = keelson_webhooks::Host::ALL
                .into_iter()
                .find(|h| h.label() == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = keelson_webhooks::Host::ALL
                        .iter()
                        .map(|h| h.label())
                        .collect();
                    (
                        format!("webhook.hostSecretFiles.{name}"),
                        format!("{name:?} is not a host ({})", names.join(", ")),
                    )
                })?;
            webhook_host_secret_files.push((host, file.clone()));
        }
        if let Some(g) = &self.github
            && let Some(url) = &g.api_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err((
                "github.apiUrl".into(),
                format!("{url:?} is not an http(s) URL"),
            ));
        }
        Ok(Settings {
            listen,
            metrics_listen,
            state_dir: self.state_dir.clone(),
            kubeconfig: self.kubeconfig.clone(),
            webhook_secret_file: self.webhook.secret_file.clone(),
            webhook_host_secret_files,
            github: self.github.clone(),
            self_heal,
            retry_base,
            retry_max,
            concurrency: self.concurrency,
            leases: self.leases.clone(),
            limits: self.limits.clone(),
            fingerprint_key_file: self.fingerprint_key_file.clone(),
            clusters: self.clusters.clone(),
            repositories,
        })
    }
}

/// `owner/name` of a GitHub clone URL (`https://github.com/o/n.git`, `git@github.com:o/n`).
pub fn github_name(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://github.com/")
        .or_else(|| url.strip_prefix("git@github.com:"))
        .or_else(|| url.strip_prefix("ssh://git@github.com/"))?;
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    let mut parts = rest.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(o), Some(n), None) if !o.is_empty() && !n.is_empty() => Some(format!("{o}/{n}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `text` after a cluster `c` (unless `text` names clusters).
    fn parse(text: &str) -> Result<Settings, (String, String)> {
        let text = if text.starts_with("clusters:") {
            text.to_string()
        } else {
            format!("clusters: [{{name: c}}]\n{text}")
        };
        let c: ServeConfig =
            crate::yaml::from_str(&text).map_err(|e| ("parse".into(), e.to_string()))?;
        c.validate()
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let s = parse("repositories:\n- url: https://github.com/acme/deploy.git\n  ref: main\n")
            .unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(s.repositories[0].github.as_deref(), Some("acme/deploy"));
        assert_eq!(s.retry_base, Duration::from_secs(2));
        assert!(s.self_heal.is_none());
        // Without destinations a repository may write wherever the engine can.
        let w = &s.repositories[0];
        assert_eq!(w.destinations, crate::tenancy::Destinations::default());
        assert_eq!(w.impersonate, None);
    }

    #[test]
    fn a_repository_is_granted_destinations_and_a_service_account() {
        let s = parse(
            "clusters: [{name: a}, {name: b}]\nrepositories:\n- url: /r\n  \
             destinations: {clusters: [b], namespaces: [shop-*], clusterKinds: []}\n  \
             serviceAccount: tenants/shop\n",
        )
        .unwrap();
        let grant = s.grant(0);
        assert!(grant.destinations.allows_cluster("b") && !grant.destinations.allows_cluster("a"));
        assert_eq!(
            grant.impersonate,
            Some("system:serviceaccount:tenants:shop")
        );
        let s = parse(
            "defaultServiceAccount: tenants/nobody\nrepositories: [{url: /r}, {url: /s, serviceAccount: t/s}]\n",
        )
        .unwrap();
        assert_eq!(
            s.grant(0).impersonate,
            Some("system:serviceaccount:tenants:nobody")
        );
        assert_eq!(s.grant(1).impersonate, Some("system:serviceaccount:t:s"));
    }

    #[test]
    fn mistakes_name_the_field() {
        let cases = [
            ("listen: nowhere\nrepositories: [{url: /r}]", "listen"),
            ("selfHeal: often\nrepositories: [{url: /r}]", "selfHeal"),
            (
                "retry: {base: 5s, max: 1s}\nrepositories: [{url: /r}]",
                "retry.max",
            ),
            ("repositories: []", "repositories"),
            (
                "repositories: [{url: /r, poll: sometimes}]",
                "repositories[0].poll",
            ),
            (
                "repositories: [{url: /r, github: justname}]",
                "repositories[0].github",
            ),
            (
                "repositories: [{url: /r}, {url: /r}]",
                "repositories[1].url",
            ),
            ("kind: Project\nrepositories: [{url: /r}]", "kind"),
            (
                "limits: {maxBodyBytes: 26214401}\nrepositories: [{url: /r}]",
                "limits.maxBodyBytes",
            ),
            ("clusters: []\nrepositories: [{url: /r}]", "clusters"),
            (
                "clusters: [{name: a}, {name: a}]\nrepositories: [{url: /r}]",
                "clusters[1].name",
            ),
            (
                "clusters: [{name: a, inCluster: true, kubeconfig: {context: a}}]\nrepositories: [{url: /r}]",
                "clusters[0]",
            ),
            (
                "repositories: [{url: /r, destinations: {clusters: [elsewhere]}}]",
                "repositories[0].destinations.clusters",
            ),
            (
                "repositories: [{url: /r, serviceAccount: shop}]",
                "repositories[0].serviceAccount",
            ),
            (
                "webhook: {hostSecretFiles: {gitlob: /x}}\nrepositories: [{url: /r}]",
                "webhook.hostSecretFiles.gitlob",
            ),
        ];
        for (text, field) in cases {
            let (f, m) = parse(text).unwrap_err();
            assert_eq!(f, field, "{text}: {m}");
        }
        let (_, m) = parse("limits: {maxWait: forever}\nrepositories: [{url: /r}]").unwrap_err();
        assert!(m.contains("limits.maxWait"), "{m}");
        let (f, m) = parse("repositories: [{url: /r}]\nlisten2: x").unwrap_err();
        assert!(m.contains("listen2"), "{f}: {m}");
    }

    #[test]
    fn github_names_from_urls() {
        assert_eq!(
            github_name("https://github.com/o/n.git").as_deref(),
            Some("o/n")
        );
        assert_eq!(github_name("git@github.com:o/n").as_deref(), Some("o/n"));
        assert_eq!(github_name("https://example.com/o/n.git"), None);
    }
}
