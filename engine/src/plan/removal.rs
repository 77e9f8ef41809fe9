//! Targets a repository no longer has: found by the parents its syncs labelled with its
//! identity, planned by the removal policy each parent remembers.

use std::collections::BTreeSet;

use kube::api::{Api, ListParams};

use super::{Plan, PlanError, Prunes, api_message, keep_reason, members, read_parent};
use crate::cluster::{Cluster, Discovery};
use crate::config::OnRemoval;
use crate::inventory::{self, Origin, Removal};

/// A target synced from a repository to a cluster, and no longer in its `keelson.yaml`.
#[derive(Debug, Clone)]
pub struct Removed {
    pub target: String,
    pub set: inventory::Set,
    pub removal: Removal,
}

/// The targets `origin` synced to `cluster` that are not among `present`.
pub async fn removed(
    cluster: &Cluster,
    origin: &Origin,
    present: &BTreeSet<String>,
) -> Result<Vec<Removed>, PlanError> {
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(cluster.inventory.clone(), inventory::PARENT_NAMESPACE);
    let selector = format!("{}={}", inventory::SOURCE_LABEL, origin.id);
    let list = match secrets.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => list,
        // No inventory namespace: nothing was ever synced here.
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Vec::new()),
        Err(e) => {
            return Err(PlanError::Api {
                cluster: cluster.name.clone(),
                message: format!("listing inventories: {}", api_message(&e)),
            });
        }
    };
    let mut out: Vec<Removed> = list
        .items
        .into_iter()
        .filter(|s| s.type_.as_deref() == Some(inventory::PARENT_TYPE))
        .filter_map(|s| {
            let a = s.metadata.annotations.unwrap_or_default();
            let target = a.get(inventory::TARGET)?.clone();
            // A parent written before removal policies were recorded is orphaned.
            let removal = a
                .get(inventory::REMOVAL)
                .and_then(|r| serde_json::from_str(r).ok())
                .unwrap_or_default();
            let set = inventory::Set::new(&target, Some(origin));
            // Only the repository's keyed inventories: an unkeyed one is anyone's.
            (s.metadata.name.as_deref() == Some(set.parent_name().as_str())).then_some(Removed {
                target,
                set,
                removal,
            })
        })
        .filter(|r| !present.contains(&r.target))
        .collect();
    out.sort_by(|a, b| a.target.cmp(&b.target));
    Ok(out)
}

/// What removing the target does on `cluster`: its members pruned through its guards
/// (`onRemoval: prune`) or left in place (`orphan`); then its parent goes.
pub async fn plan_removal(
    cluster: &Cluster,
    removed: &Removed,
) -> Result<(Plan, Prunes), PlanError> {
    let target = &removed.target;
    let mut plan = Plan {
        target: target.clone(),
        cluster: cluster.name.clone(),
        removed: Some(removed.removal.on_removal),
        ..Plan::default()
    };
    let mut prunes = Prunes::default();
    let Some(parent) = read_parent(cluster, &removed.set).await? else {
        return Ok((plan, prunes));
    };
    let mut discovery = Discovery::default();
    let all = members(
        cluster,
        &mut discovery,
        &removed.set,
        &parent.group_kinds,
        &parent.namespaces,
    )
    .await?;
    plan.inventory = all.len();
    plan.parent_version = parent.resource_version;
    let policy = removed.removal.policy();
    for m in all {
        let reason = match removed.removal.on_removal {
            OnRemoval::Orphan => {
                Some("the target left keelson.yaml; onRemoval: orphan".to_string())
            }
            OnRemoval::Prune => keep_reason(&m, &policy),
        };
        prunes.sort(m, reason, &mut plan.changes, &mut plan.kept);
    }
    Ok((plan, prunes))
}
