//! Kubeconfig files for the test clusters: one context per cluster, certs embedded.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

use crate::{Cluster, HarnessError};

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

/// The kubeconfig document for these clusters; the first one is the current context.
fn document(clusters: &[Cluster]) -> serde_json::Value {
    let entries = |f: &dyn Fn(&Cluster) -> serde_json::Value| -> Vec<serde_json::Value> {
        clusters.iter().map(f).collect()
    };
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": clusters.first().map(|c| c.name()).unwrap_or_default(),
        "clusters": entries(&|c| json!({
            "name": c.name(),
            "cluster": {"server": c.server(), "certificate-authority-data": b64(&c.pki().ca_cert)},
        })),
        "users": entries(&|c| json!({
            "name": format!("{}-admin", c.name()),
            "user": {
                "client-certificate-data": b64(&c.pki().admin_cert),
                "client-key-data": b64(&c.pki().admin_key),
            },
        })),
        "contexts": entries(&|c| json!({
            "name": c.name(),
            "context": {"cluster": c.name(), "user": format!("{}-admin", c.name())},
        })),
    })
}

/// Writes a kubeconfig with a context per cluster to `path`.
pub(crate) fn write(path: &Path, clusters: &[Cluster]) -> Result<(), HarnessError> {
    let text = serde_saphyr::to_string(&document(clusters))
        .map_err(|e| HarnessError::Pki(format!("writing kubeconfig: {e}")))?;
    std::fs::write(path, text).map_err(|e| HarnessError::Io {
        what: format!("writing {}", path.display()),
        source: e,
    })
}

/// A client configuration for one cluster, without touching the filesystem.
pub(crate) async fn config_for(cluster: &Cluster) -> Result<kube::Config, String> {
    let kubeconfig: Kubeconfig = serde_json::from_value(document(std::slice::from_ref(cluster)))
        .map_err(|e| e.to_string())?;
    let options = KubeConfigOptions {
        context: Some(cluster.name().to_string()),
        ..KubeConfigOptions::default()
    };
    kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| e.to_string())
}
