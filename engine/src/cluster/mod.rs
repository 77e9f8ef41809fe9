//! Reaching clusters: a client per configured cluster, and API discovery of the kinds a
//! render contains (cached per cluster, refreshed when a sync adds CRDs).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use kube::api::{ApiResource, GroupVersionKind};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::Scope;

use crate::config;

/// Every request to a cluster gives up after this long.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A cluster could not be reached or asked.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster {cluster}: {message}")]
    Connect { cluster: String, message: String },
    #[error("cluster {cluster}: kind {kind} ({api_version}) is not served: {message}")]
    UnknownKind {
        cluster: String,
        api_version: String,
        kind: String,
        message: String,
    },
}

/// A connected cluster.
#[derive(Clone)]
pub struct Cluster {
    /// The name from keelson.yaml.
    pub name: String,
    /// The client objects are planned, applied and pruned with: impersonating the
    /// repository's ServiceAccount where the operator grants one.
    pub client: kube::Client,
    /// The engine's own client, for its inventory (parents in `keelson-system`, Events):
    /// a tenant's ServiceAccount needs no access there, and gets none to other tenants'.
    pub inventory: kube::Client,
}

/// Connects to a configured cluster. `kubeconfig` overrides the file the config names.
pub async fn connect(
    cluster: &config::Cluster,
    kubeconfig: Option<&Path>,
) -> Result<Cluster, ClusterError> {
    let fail = |message: String| ClusterError::Connect {
        cluster: cluster.name.clone(),
        message,
    };
    // No connection settings: the kubeconfig context named like the cluster.
    let by_name = config::KubeconfigRef {
        context: cluster.name.clone(),
        path: None,
    };
    let context = cluster
        .kubeconfig
        .as_ref()
        .or((!cluster.in_cluster && cluster.kubeconfig_secret.is_none()).then_some(&by_name));
    let mut cfg = if cluster.in_cluster {
        kube::Config::incluster().map_err(|e| fail(e.to_string()))?
    } else if let Some(k) = context {
        let file = match (kubeconfig, &k.path) {
            (Some(p), _) => Kubeconfig::read_from(p).map_err(|e| fail(e.to_string()))?,
            (None, Some(p)) => Kubeconfig::read_from(p).map_err(|e| fail(e.to_string()))?,
            (None, None) => Kubeconfig::read().map_err(|e| fail(e.to_string()))?,
        };
        let options = KubeConfigOptions {
            context: Some(k.context.clone()),
            ..KubeConfigOptions::default()
        };
        kube::Config::from_custom_kubeconfig(file, &options)
            .await
            .map_err(|e| fail(e.to_string()))?
    } else if let Some(secret) = &cluster.kubeconfig_secret {
        let local = kube::Config::incluster().map_err(|e| fail(e.to_string()))?;
        let client = kube::Client::try_from(local).map_err(|e| fail(e.to_string()))?;
        let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
            kube::Api::namespaced(client, &secret.namespace);
        let s = secrets.get(&secret.name).await.map_err(|e| {
            fail(format!(
                "reading Secret {}/{}: {e}",
                secret.namespace, secret.name
            ))
        })?;
        let bytes = s
            .data
            .and_then(|d| d.get(&secret.key).cloned())
            .ok_or_else(|| {
                fail(format!(
                    "Secret {}/{} has no key {:?}",
                    secret.namespace, secret.name, secret.key
                ))
            })?;
        let text =
            String::from_utf8(bytes.0).map_err(|_| fail("kubeconfig is not UTF-8".into()))?;
        let file = Kubeconfig::from_yaml(&text).map_err(|e| fail(e.to_string()))?;
        kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
            .await
            .map_err(|e| fail(e.to_string()))?
    } else {
        return Err(fail("no connection settings".into()));
    };
    cfg.connect_timeout = Some(Duration::from_secs(5));
    cfg.read_timeout = Some(REQUEST_TIMEOUT);
    cfg.write_timeout = Some(REQUEST_TIMEOUT);
    let inventory = kube::Client::try_from(cfg.clone()).map_err(|e| fail(e.to_string()))?;
    // The operator's ServiceAccount for this repository: Kubernetes RBAC bounds it.
    let client = match &cluster.impersonate {
        None => inventory.clone(),
        Some(user) => {
            cfg.auth_info.impersonate = Some(user.clone());
            kube::Client::try_from(cfg).map_err(|e| fail(e.to_string()))?
        }
    };
    Ok(Cluster {
        name: cluster.name.clone(),
        client,
        inventory,
    })
}

/// What discovery knows of a kind.
#[derive(Debug, Clone)]
pub struct Kind {
    pub resource: ApiResource,
    pub namespaced: bool,
}

/// Discovery results of one cluster, cached by group/version/kind.
#[derive(Default)]
pub struct Discovery {
    kinds: HashMap<(String, String, String), Kind>,
}

impl Discovery {
    /// Resolves a kind, asking the cluster once per kind.
    pub async fn kind(
        &mut self,
        cluster: &Cluster,
        api_version: &str,
        kind: &str,
    ) -> Result<Kind, ClusterError> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        let key = (group.clone(), version.clone(), kind.to_string());
        if let Some(k) = self.kinds.get(&key) {
            return Ok(k.clone());
        }
        let gvk = GroupVersionKind::gvk(&group, &version, kind);
        let (resource, caps) = kube::discovery::pinned_kind(&cluster.client, &gvk)
            .await
            .map_err(|e| ClusterError::UnknownKind {
                cluster: cluster.name.clone(),
                api_version: api_version.to_string(),
                kind: kind.to_string(),
                message: e.to_string(),
            })?;
        let k = Kind {
            resource,
            namespaced: caps.scope == Scope::Namespaced,
        };
        self.kinds.insert(key, k.clone());
        Ok(k)
    }

    /// Forgets what was learned (after CRDs were added).
    pub fn clear(&mut self) {
        self.kinds.clear();
    }
}
