//! Which events were delivered already, so that each is delivered once — across watch
//! restarts (in memory) and engine restarts (in a ConfigMap next to the run).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource};

use super::WatchError;
use crate::model::PipelineRun;

/// Remembers delivered event keys.
///
/// The follower records a key right after the callback for it returns: an engine that
/// dies between the two re-delivers that one event when it comes back.
pub trait DeliveryLog: Send {
    /// Whether the event with this key was delivered.
    fn contains(&self, key: &str) -> bool;
    /// Remembers that it was.
    fn record(&mut self, key: &str) -> impl Future<Output = Result<(), WatchError>> + Send;
}

/// A log in memory: survives watch restarts and relists, not the process.
#[derive(Debug, Clone, Default)]
pub struct MemoryLog(pub BTreeSet<String>);

impl DeliveryLog for MemoryLog {
    fn contains(&self, key: &str) -> bool {
        self.0.contains(key)
    }

    async fn record(&mut self, key: &str) -> Result<(), WatchError> {
        self.0.insert(key.to_string());
        Ok(())
    }
}

/// Label on the ConfigMaps holding delivery logs.
pub const LOG_LABEL: &str = "keelson.dev/delivery-log-of";

/// A log kept in a ConfigMap named after the PipelineRun and owned by it (so it goes
/// away with the run): survives engine restarts and moves between engine replicas.
#[derive(Debug, Clone)]
pub struct ConfigMapLog {
    api: Api<ConfigMap>,
    name: String,
    keys: BTreeSet<String>,
}

impl ConfigMapLog {
    /// The ConfigMap's name for a run.
    pub fn name_for(run_name: &str) -> String {
        format!("{run_name}-keelson-events")
    }

    /// Loads (or creates) the log of `run`, which must exist (its uid owns the log).
    pub async fn load(client: Client, run: &PipelineRun) -> Result<Self, WatchError> {
        let namespace = run.metadata.namespace.clone().unwrap_or_default();
        let run_name = run.metadata.name.clone().unwrap_or_default();
        let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
        let name = Self::name_for(&run_name);
        let existing = api.get_opt(&name).await.map_err(WatchError::Api)?;
        let keys = match existing {
            Some(cm) => cm.data.unwrap_or_default().into_keys().collect(),
            None => {
                let owner = OwnerReference {
                    api_version: PipelineRun::api_version(&()).into(),
                    kind: PipelineRun::kind(&()).into(),
                    name: run_name.clone(),
                    uid: run.metadata.uid.clone().unwrap_or_default(),
                    block_owner_deletion: None,
                    controller: None,
                };
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        labels: Some(BTreeMap::from([(LOG_LABEL.to_string(), run_name)])),
                        owner_references: Some(vec![owner]),
                        ..ObjectMeta::default()
                    },
                    ..ConfigMap::default()
                };
                match api.create(&PostParams::default(), &cm).await {
                    Ok(_) => BTreeSet::new(),
                    // Another replica created it first: read what it holds.
                    Err(kube::Error::Api(s)) if s.code == 409 => api
                        .get(&name)
                        .await
                        .map_err(WatchError::Api)?
                        .data
                        .unwrap_or_default()
                        .into_keys()
                        .collect(),
                    Err(e) => return Err(WatchError::Api(e)),
                }
            }
        };
        Ok(ConfigMapLog { api, name, keys })
    }

    /// The keys delivered so far.
    pub fn keys(&self) -> &BTreeSet<String> {
        &self.keys
    }
}

impl DeliveryLog for ConfigMapLog {
    fn contains(&self, key: &str) -> bool {
        self.keys.contains(key)
    }

    async fn record(&mut self, key: &str) -> Result<(), WatchError> {
        let patch = serde_json::json!({"data": {key: "1"}});
        self.api
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(WatchError::Api)?;
        self.keys.insert(key.to_string());
        Ok(())
    }
}
