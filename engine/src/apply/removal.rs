//! A target that left `keelson.yaml`: its members pruned through its own guards
//! (`onRemoval: prune`) or left in place (`orphan`), then its ApplySet parent deleted, last.

use kube::api::{Api, DeleteParams, Preconditions};

use super::{Fence, Options, Report, SyncError, parent_error, prune_in_order, share_guard};
use crate::cluster::Cluster;
use crate::inventory;
use crate::plan::removal::{Removed, plan_removal};

/// Removes a target from `cluster`. `options` gives `force_prune` and the fence.
pub async fn remove(
    cluster: &Cluster,
    removed: &Removed,
    options: &Options,
) -> Result<Report, SyncError> {
    let (plan, prunes) = plan_removal(cluster, removed).await?;
    let Some(version) = plan.parent_version.clone() else {
        return Ok(Report {
            plan,
            applied: Vec::new(),
            pruned: Vec::new(),
        });
    };
    if !options.force_prune && !prunes.delete.is_empty() {
        share_guard(
            prunes.delete.len(),
            plan.inventory,
            removed.removal.prune_guard_percent,
        )
        .map_err(|why| SyncError::PruneRefused {
            cluster: cluster.name.clone(),
            reason: format!(
                "target {} left keelson.yaml with onRemoval: prune, but {why} (raise its \
                 pruneGuardPercent in the commit that removes it, or remove it with `keelson sync \
                 --force-prune`)",
                removed.target
            ),
        })?;
    }
    let fence = options.fence.as_ref();
    let pruned = prune_in_order(cluster, &prunes.delete, fence).await?;
    Fence::check(fence, &cluster.name, "deleting the inventory")?;
    delete_parent(cluster, &removed.set, Some(version)).await?;
    Ok(Report {
        plan,
        applied: Vec::new(),
        pruned,
    })
}

/// Deletes a parent; with `version`, only at that version (the one the plan read: a
/// target added back and synced meanwhile keeps its new inventory).
pub(super) async fn delete_parent(
    cluster: &Cluster,
    set: &inventory::Set,
    version: Option<String>,
) -> Result<(), SyncError> {
    let api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(cluster.inventory.clone(), inventory::PARENT_NAMESPACE);
    let name = set.parent_name();
    let params = DeleteParams {
        preconditions: version.map(|v| Preconditions {
            uid: None,
            resource_version: Some(v),
        }),
        ..DeleteParams::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(parent_error(cluster, &name, e)),
    }
}
