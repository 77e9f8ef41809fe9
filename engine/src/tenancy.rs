//! What a repository may reach in `keelson serve`: the operator owns the clusters and how
//! to reach them, and grants each repository destinations (clusters, namespaces,
//! cluster-scoped kinds) and optionally a ServiceAccount to act as. A repository's
//! `keelson.yaml` only names clusters among those granted (Argo CD's AppProjects, Flux's
//! multi-tenancy lockdown).
//!
//! ```yaml
//! # ServeConfig
//! clusters:
//! - {name: staging, labels: {env: staging}, kubeconfig: {context: staging}}
//! repositories:
//! - url: https://git.example/shop/deploy.git
//!   destinations:
//!     clusters: [staging]            # names or globs; default: every cluster
//!     namespaces: ["shop-*"]         # namespaced objects (and Namespaces) only there
//!     clusterKinds: [Namespace]      # cluster-scoped kinds, as Kind.group; default: any
//!   serviceAccount: tenants/shop     # every request as system:serviceaccount:tenants:shop
//! ```

use std::path::Path;

use serde::Deserialize;

use crate::config::{Cluster, ConfigError, Project};
use crate::inventory;
use crate::plan::{Desired, Member, ObjectError};

/// Where a repository may write. Every list defaults to `["*"]`: without destinations a
/// repository may write anywhere the engine (or its ServiceAccount) can.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Destinations {
    pub clusters: Vec<String>,
    pub namespaces: Vec<String>,
    /// Cluster-scoped kinds as `Kind` (core) or `Kind.group`; `Namespace` and
    /// `CustomResourceDefinition.apiextensions.k8s.io` among them.
    pub cluster_kinds: Vec<String>,
}

impl Default for Destinations {
    fn default() -> Self {
        let any = || vec!["*".to_string()];
        Destinations {
            clusters: any(),
            namespaces: any(),
            cluster_kinds: any(),
        }
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn any(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| glob(p, name))
}

impl Destinations {
    /// Whether the repository may use the cluster.
    pub fn allows_cluster(&self, name: &str) -> bool {
        any(&self.clusters, name)
    }

    /// Why one object is outside the destinations, if it is.
    fn refusal(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<String> {
        let gk = inventory::group_kind(api_version, kind);
        if let Some(ns) = namespace {
            return (!any(&self.namespaces, ns)).then(|| {
                format!(
                    "metadata.namespace: {ns} is not among the repository's destinations ({})",
                    self.namespaces.join(", ")
                )
            });
        }
        if !any(&self.cluster_kinds, &gk) {
            return Some(format!(
                "kind: the repository may not write cluster-scoped {gk} (clusterKinds: {})",
                self.cluster_kinds.join(", ")
            ));
        }
        (kind == "Namespace" && !any(&self.namespaces, name)).then(|| {
            format!(
                "metadata.name: Namespace {name} is not among the repository's destinations ({})",
                self.namespaces.join(", ")
            )
        })
    }

    /// Every rendered object and every member to prune that lies outside the
    /// destinations, each with the field that puts it there.
    pub fn check(&self, desired: &[Desired], prunes: &[Member]) -> Vec<ObjectError> {
        let rendered = desired.iter().filter_map(|d| {
            let why = self.refusal(&d.api_version, &d.kind, d.namespace.as_deref(), &d.name)?;
            Some(ObjectError {
                object: d.id(),
                message: why,
            })
        });
        let pruned = prunes.iter().filter_map(|m| {
            let why = self.refusal(&m.api_version, &m.kind, m.namespace.as_deref(), &m.name)?;
            Some(ObjectError {
                object: format!("prune {}", m.id()),
                message: why,
            })
        });
        rendered.chain(pruned).collect()
    }
}

/// The ServiceAccount user of `namespace/name`.
pub fn service_account_user(reference: &str) -> Option<String> {
    let (ns, name) = reference.split_once('/')?;
    let label = |s: &str| {
        !s.is_empty()
            && s.len() <= 253
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    };
    (label(ns) && label(name)).then(|| format!("system:serviceaccount:{ns}:{name}"))
}

/// What `keelson serve` gives one repository: the operator's clusters it may use, and the
/// user its requests impersonate.
#[derive(Debug, Clone)]
pub struct Grant<'a> {
    pub clusters: &'a [Cluster],
    pub destinations: &'a Destinations,
    pub impersonate: Option<&'a str>,
}

impl Grant<'_> {
    /// Resolves a repository's clusters against the grant. Its `keelson.yaml` names
    /// clusters (and may add labels to select them by); it never says how to reach one. No
    /// `clusters:` at all means every granted cluster.
    pub fn apply(&self, project: &mut Project, path: &Path) -> Result<(), ConfigError> {
        let err = |field: String, message: String| ConfigError::Field {
            path: path.to_path_buf(),
            field,
            message,
        };
        let granted: Vec<&Cluster> = self
            .clusters
            .iter()
            .filter(|c| self.destinations.allows_cluster(&c.name))
            .collect();
        let names = || {
            granted
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let asked: Vec<Cluster> = if project.clusters.is_empty() {
            granted.iter().map(|c| (*c).clone()).collect()
        } else {
            let mut out = Vec::new();
            for (i, c) in project.clusters.iter().enumerate() {
                let field = format!("clusters[{i}]");
                if let Some(way) = c.ways().first() {
                    return Err(err(
                        format!("{field}.{way}"),
                        "keelson serve reaches clusters as its operator's ServeConfig says; \
                         a repository names a cluster and nothing else"
                            .into(),
                    ));
                }
                let Some(found) = granted.iter().find(|g| g.name == c.name) else {
                    return Err(err(
                        format!("{field}.name"),
                        format!(
                            "cluster {:?} is not granted to this repository (granted: {})",
                            c.name,
                            names()
                        ),
                    ));
                };
                let mut resolved = (*found).clone();
                // The repository's labels select; the operator's win where both say.
                let mut labels = c.labels.clone();
                labels.extend(found.labels.clone());
                resolved.labels = labels;
                out.push(resolved);
            }
            out
        };
        project.clusters = asked
            .into_iter()
            .map(|mut c| {
                c.impersonate = self.impersonate.map(str::to_string);
                c
            })
            .collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_prefixes_suffixes_and_middles() {
        for (p, n, ok) in [
            ("*", "anything", true),
            ("shop-*", "shop-prod", true),
            ("shop-*", "shopping", false),
            ("*-prod", "shop-prod", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxcyyb", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("a*a", "a", false),
        ] {
            assert_eq!(glob(p, n), ok, "{p} {n}");
        }
    }

    fn dest(namespaces: &[&str], kinds: &[&str]) -> Destinations {
        Destinations {
            clusters: vec!["*".into()],
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            cluster_kinds: kinds.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn objects_outside_the_destinations_are_named_with_the_field() {
        let d = dest(&["shop-*"], &["Namespace"]);
        assert_eq!(d.refusal("v1", "ConfigMap", Some("shop-a"), "c"), None);
        assert!(
            d.refusal("v1", "ConfigMap", Some("kube-system"), "c")
                .unwrap()
                .starts_with("metadata.namespace: kube-system is not among")
        );
        assert_eq!(d.refusal("v1", "Namespace", None, "shop-a"), None);
        assert!(
            d.refusal("v1", "Namespace", None, "default")
                .unwrap()
                .starts_with("metadata.name: Namespace default")
        );
        let crd = d
            .refusal(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                "x",
            )
            .unwrap();
        assert!(
            crd.contains("CustomResourceDefinition.apiextensions.k8s.io"),
            "{crd}"
        );
    }

    #[test]
    fn service_accounts_are_namespace_slash_name() {
        assert_eq!(
            service_account_user("tenants/shop").as_deref(),
            Some("system:serviceaccount:tenants:shop")
        );
        for bad in ["shop", "/shop", "a/", "A/b", "a/b:c"] {
            assert_eq!(service_account_user(bad), None, "{bad}");
        }
    }

    fn cluster(yaml: &str) -> Cluster {
        crate::yaml::from_str(yaml).unwrap()
    }

    fn project(yaml: &str) -> Project {
        Project::parse(yaml, Path::new("keelson.yaml")).unwrap()
    }

    #[test]
    fn a_repository_names_granted_clusters_and_never_credentials() {
        let operator = [
            cluster("{name: one, labels: {env: a}, kubeconfig: {context: e2e-1}}"),
            cluster("{name: two, kubeconfig: {context: e2e-2}}"),
        ];
        let only_one = Destinations {
            clusters: vec!["one".into()],
            ..Destinations::default()
        };
        let grant = Grant {
            clusters: &operator,
            destinations: &only_one,
            impersonate: Some("system:serviceaccount:t:shop"),
        };
        let path = Path::new("keelson.yaml");
        let mut p =
            project("clusters:\n- {name: one, labels: {env: mine, all: 'yes'}}\ntargets: []\n");
        grant.apply(&mut p, path).unwrap();
        let c = &p.clusters[0];
        assert_eq!(c.kubeconfig.as_ref().unwrap().context, "e2e-1");
        assert_eq!(
            (c.labels["env"].as_str(), c.labels["all"].as_str()),
            ("a", "yes")
        );
        assert_eq!(
            c.impersonate.as_deref(),
            Some("system:serviceaccount:t:shop")
        );

        let mut all = project("targets: []\n");
        grant.apply(&mut all, path).unwrap();
        assert_eq!(all.clusters.len(), 1, "only what is granted");

        for (yaml, field, says) in [
            (
                "- {name: one, kubeconfig: {context: e2e-2}}",
                "clusters[0].kubeconfig",
                "operator",
            ),
            (
                "- {name: one, inCluster: true}",
                "clusters[0].inCluster",
                "operator",
            ),
            (
                "- {name: two}",
                "clusters[0].name",
                "not granted to this repository (granted: one)",
            ),
        ] {
            let mut p = project(&format!("clusters:\n{yaml}\ntargets: []\n"));
            match grant.apply(&mut p, path).unwrap_err() {
                ConfigError::Field {
                    field: f, message, ..
                } => {
                    assert_eq!(f, field);
                    assert!(message.contains(says), "{message}");
                }
                other => panic!("{other}"),
            }
        }
    }
}
