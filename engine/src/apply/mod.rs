//! Sync of a target on a cluster: validate every object with a server dry-run, then
//! server-side apply in install order (Namespaces and CRDs first), prune what the render no
//! longer holds (guarded), keep the ApplySet inventory, and optionally wait for health.

pub mod health;
mod removal;
#[cfg(test)]
mod tests;

pub use removal::remove;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::cluster::{Cluster, Discovery};
use crate::config::{Conflicts, SyncPolicy};
use crate::inventory;
use crate::plan::{self, Action, Desired, Member, ObjectError, Plan, PlanError, api_message};
use crate::render::install_rank;
use health::Health;

/// How to sync.
#[derive(Debug, Clone)]
pub struct Options {
    /// The target's policy (`wait` as overridden by the caller).
    pub policy: SyncPolicy,
    /// How long to wait for health: the policy's, as capped or overridden.
    pub timeout: Duration,
    /// Prune even past the guard.
    pub force_prune: bool,
    /// The commit being synced, recorded on the inventory parent.
    pub commit: Option<String>,
    /// The repository synced from, recorded on the parent: a target it removes later is
    /// found by it.
    pub origin: Option<inventory::Origin>,
    /// Where the repository may write (`keelson serve`'s grant); objects outside stop the
    /// sync before its first write.
    pub destinations: Option<crate::tenancy::Destinations>,
    /// Checked before every phase that writes; a sync whose fence fails stops there.
    pub fence: Option<Fence>,
}

/// "May this sync still write?": `keelson serve` asks whether this replica still holds the
/// cluster's Lease, so a replica that lost it stops before its next phase.
#[derive(Clone)]
pub struct Fence(Arc<dyn Fn() -> bool + Send + Sync>);

impl Fence {
    pub fn new(holds: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Fence(Arc::new(holds))
    }

    fn check(fence: Option<&Fence>, cluster: &str, phase: &'static str) -> Result<(), SyncError> {
        match fence {
            Some(f) if !(f.0)() => Err(SyncError::Fenced {
                cluster: cluster.to_string(),
                phase,
            }),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Debug for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fence")
    }
}

impl Options {
    /// Options from a target's sync policy.
    pub fn from_policy(p: &SyncPolicy) -> Self {
        Options {
            policy: p.clone(),
            timeout: p.timeout.get(),
            force_prune: false,
            commit: None,
            origin: None,
            destinations: None,
            fence: None,
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub plan: Plan,
    pub applied: Vec<String>,
    pub pruned: Vec<String>,
}

impl Report {
    /// Every field taken over from another manager, as `Kind/ns/name: `.f` owned by `m`,
    /// taken over`: for the Event and the commit status.
    pub fn takeovers(&self) -> Vec<String> {
        self.plan
            .changes
            .iter()
            .flat_map(|c| c.takeovers.iter().map(move |t| format!("{}: {t}", c.id())))
            .collect()
    }
}

/// A sync stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("cluster {cluster}: nothing applied; {} object(s) failed validation:\n{}", errors.len(), errors.iter().map(|e| format!("  {}: {}", e.object, e.message)).collect::<Vec<_>>().join("\n"))]
    Invalid {
        cluster: String,
        errors: Vec<ObjectError>,
    },
    /// Objects the repository may not write there (`keelson serve`'s destinations).
    #[error("cluster {cluster}: nothing applied; {} object(s) outside what this repository may write:\n{}", errors.len(), errors.iter().map(|e| format!("  {}: {}", e.object, e.message)).collect::<Vec<_>>().join("\n"))]
    NotGranted {
        cluster: String,
        errors: Vec<ObjectError>,
    },
    #[error("cluster {cluster}: prune refused: {reason} (use --force-prune to override)")]
    PruneRefused { cluster: String, reason: String },
    #[error("cluster {cluster}: {object}: {message}")]
    Apply {
        cluster: String,
        object: String,
        message: String,
    },
    #[error("cluster {cluster}: not healthy after {timeout:?}: {pending}")]
    Unhealthy {
        cluster: String,
        timeout: Duration,
        pending: String,
    },
    #[error("cluster {cluster}: {object} failed: {message}")]
    Failed {
        cluster: String,
        object: String,
        message: String,
    },
    /// The fence failed: this engine may no longer write to the cluster.
    #[error(
        "cluster {cluster}: stopped before {phase}: this replica no longer holds the cluster's lease"
    )]
    Fenced {
        cluster: String,
        phase: &'static str,
    },
    /// Another writer changed the inventory parent since this sync read it.
    #[error(
        "cluster {cluster}: inventory {parent} was written by another sync meanwhile; this one stops (the next plan starts from what it wrote)"
    )]
    ParentChanged { cluster: String, parent: String },
}

fn record_key(d: &Desired) -> String {
    inventory::record_key(&d.api_version, &d.kind, d.namespace.as_deref(), &d.name)
}

fn record_key_of_change(c: &plan::Change) -> String {
    inventory::record_key(&c.api_version, &c.kind, c.namespace.as_deref(), &c.name)
}

fn is_prerequisite(kind: &str) -> bool {
    kind == "Namespace" || kind == "CustomResourceDefinition"
}

/// Syncs `objects` (the target's render) to `cluster`.
pub async fn sync(
    cluster: &Cluster,
    target: &str,
    objects: &[Map<String, Value>],
    options: &Options,
) -> Result<Report, SyncError> {
    let cname = cluster.name.clone();
    // 1. Validate: every object dry-run (objects waiting for a Namespace/CRD of this
    //    render are validated once those exist, before anything else is written).
    let policy = &options.policy;
    let set = inventory::Set::new(target, options.origin.as_ref());
    let set = &set;
    let removal = inventory::Removal::of(policy);
    let provenance = inventory::Provenance {
        origin: options.origin.as_ref(),
        removal: &removal,
    };
    let (plan, desired, prunes) =
        plan::plan(cluster, set, objects, policy, plan::View::default()).await?;
    if let Some(d) = &options.destinations {
        let outside = d.check(&desired, &prunes.delete);
        if !outside.is_empty() {
            return Err(SyncError::NotGranted {
                cluster: cname,
                errors: outside,
            });
        }
    }
    if !plan.errors.is_empty() {
        return Err(SyncError::Invalid {
            cluster: cname,
            errors: plan.errors.clone(),
        });
    }
    // 2. The prune guard, before any write.
    let to_prune = &prunes.delete;
    if !to_prune.is_empty() && !options.force_prune && plan.inventory > 0 {
        if desired.is_empty() {
            return Err(SyncError::PruneRefused {
                cluster: cname,
                reason: format!(
                    "the render is empty and would delete all {} objects of the inventory",
                    plan.inventory
                ),
            });
        }
        share_guard(to_prune.len(), plan.inventory, policy.prune_guard_percent).map_err(
            |reason| SyncError::PruneRefused {
                cluster: cname.clone(),
                reason,
            },
        )?;
    }
    // 3. The inventory parent first lists old and new members, so an interrupted sync
    //    leaves every member findable.
    let new_gks: BTreeSet<String> = desired
        .iter()
        .map(|d| inventory::group_kind(&d.api_version, &d.kind))
        .collect();
    let new_ns: BTreeSet<String> = desired.iter().filter_map(|d| d.namespace.clone()).collect();
    let mut all_gks = new_gks.clone();
    let mut all_ns = new_ns.clone();
    for m in prunes.delete.iter().chain(&prunes.keep) {
        all_gks.insert(inventory::group_kind(&m.api_version, &m.kind));
        if let Some(ns) = &m.namespace {
            all_ns.insert(ns.clone());
        }
    }
    // (A parent that already lists them all needs no write: the common case of a sync
    // that changes objects but adds no kind or namespace.)
    let listed = plan
        .listed
        .as_ref()
        .is_some_and(|(gks, ns)| all_gks.is_subset(gks) && all_ns.is_subset(ns));
    let fence = options.fence.as_ref();
    // Each parent write is conditional on the version the last one left (or the plan read).
    let mut parent_version = plan.parent_version.clone();
    if !listed {
        Fence::check(fence, &cname, "recording the inventory")?;
        ensure_parent_namespace(cluster).await?;
        parent_version = Some(
            write_parent(
                cluster,
                set,
                provenance,
                (&all_gks, &all_ns),
                None,
                None,
                parent_version,
            )
            .await?,
        );
    }

    // What the plan proved unchanged is not applied again.
    let planned: HashMap<String, &plan::Change> = plan
        .changes
        .iter()
        .map(|c| (record_key_of_change(c), c))
        .collect();
    let needs_apply = |d: &Desired| {
        planned
            .get(&record_key(d))
            .is_none_or(|c| c.action != Action::Unchanged)
    };

    // 4. Prerequisites, then the rest in install order.
    let (first, rest): (Vec<Desired>, Vec<Desired>) =
        desired.into_iter().partition(|d| is_prerequisite(&d.kind));
    let mut applied = Vec::new();
    let mut versions: HashMap<String, inventory::Applied> = HashMap::new();
    let first_todo: Vec<Desired> = first.iter().filter(|d| needs_apply(d)).cloned().collect();
    Fence::check(fence, &cname, "applying")?;
    apply_in_order(cluster, &first_todo, options, &mut applied, &mut versions).await?;
    if first.iter().any(|d| d.kind == "CustomResourceDefinition") {
        wait_established(cluster, &first, Duration::from_secs(60)).await?;
    }
    let mut discovery = Discovery::default();
    let rest = revalidate_pending(cluster, &mut discovery, set, rest, options).await?;
    let rest_todo: Vec<Desired> = rest.iter().filter(|d| needs_apply(d)).cloned().collect();
    Fence::check(fence, &cname, "applying")?;
    apply_in_order(cluster, &rest_todo, options, &mut applied, &mut versions).await?;

    // 5. Prune in reverse install order.
    let pruned = prune_in_order(cluster, to_prune, fence).await?;
    // 6. The final inventory: what is rendered, plus members kept by policy.
    let mut final_gks = new_gks;
    let mut final_ns = new_ns;
    for m in &prunes.keep {
        final_gks.insert(inventory::group_kind(&m.api_version, &m.kind));
        if let Some(ns) = &m.namespace {
            final_ns.insert(ns.clone());
        }
    }
    // Remember what was applied (resourceVersion and fingerprint per member), so the next
    // plan can prove "unchanged" without asking the server.
    let mut record = inventory::Record::new();
    for d in first.iter().chain(rest.iter()) {
        let key = record_key(d);
        let applied = versions.get(&key).cloned().or_else(|| {
            let c = planned.get(&key)?;
            Some(inventory::Applied {
                resource_version: c.resource_version.clone()?,
                hash: c.desired_hash.clone(),
                generation: c.generation,
                meta: c.meta_hash.clone(),
            })
        });
        if let Some(applied) = applied {
            record.insert(key, applied);
        }
    }
    // With a wait, the commit is recorded only once the objects are healthy: a commit on
    // the parent means "synced", and a retry after a failed wait must not take it so.
    Fence::check(fence, &cname, "recording the inventory")?;
    let parent_version = write_parent(
        cluster,
        set,
        provenance,
        (&final_gks, &final_ns),
        options.commit.as_deref().filter(|_| !policy.wait),
        Some(&record),
        parent_version,
    )
    .await?;
    // The unkeyed inventory this one took over goes once every member is recorded here.
    if let Some(legacy) = &plan.takes_over {
        Fence::check(fence, &cname, "retiring the unkeyed inventory")?;
        removal::delete_parent(cluster, legacy, None).await?;
    }
    if policy.wait {
        // Objects keelson leaves alone (`keelson.dev/ssa`) are not waited for.
        let all: Vec<&Desired> = first
            .iter()
            .chain(rest.iter())
            .filter(|d| {
                planned
                    .get(&record_key(d))
                    .is_none_or(|c| c.skipped.is_none())
            })
            .collect();
        wait_healthy(cluster, &all, options.timeout, fence).await?;
        if options.commit.is_some() {
            Fence::check(fence, &cname, "recording the synced commit")?;
            write_parent(
                cluster,
                set,
                provenance,
                (&final_gks, &final_ns),
                options.commit.as_deref(),
                Some(&record),
                Some(parent_version),
            )
            .await?;
        }
    }
    Ok(Report {
        plan,
        applied,
        pruned,
    })
}

/// The field manager of inventory parents.
const PARENT_MANAGER: &str = "keelson";

/// The field manager of the inventory's own Namespace.
const INVENTORY_MANAGER: &str = "keelson-inventory";

async fn ensure_parent_namespace(cluster: &Cluster) -> Result<(), SyncError> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(cluster.inventory.clone());
    let ns = serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": inventory::PARENT_NAMESPACE}
    });
    // A manager of its own: a target that also renders this Namespace (with labels, say)
    // must not have them removed by this bare apply, nor remove what this one owns.
    api.patch(
        inventory::PARENT_NAMESPACE,
        &PatchParams::apply(INVENTORY_MANAGER),
        &Patch::Apply(&ns),
    )
    .await
    .map(|_| ())
    .map_err(|e| SyncError::Apply {
        cluster: cluster.name.clone(),
        object: format!("Namespace/{}", inventory::PARENT_NAMESPACE),
        message: api_message(&e),
    })
}

/// Writes the parent; with `expected`, only over that resourceVersion (the server answers
/// 409 when someone wrote since). Returns the version written.
async fn write_parent(
    cluster: &Cluster,
    set: &inventory::Set,
    provenance: inventory::Provenance<'_>,
    (gks, namespaces): (&BTreeSet<String>, &BTreeSet<String>),
    commit: Option<&str>,
    record: Option<&inventory::Record>,
    expected: Option<String>,
) -> Result<String, SyncError> {
    let api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(cluster.inventory.clone(), inventory::PARENT_NAMESPACE);
    let name = set.parent_name();
    let mut parent = inventory::parent_object(set, gks, namespaces, commit, record, provenance);
    if let (Some(v), Some(meta)) = (expected, parent["metadata"].as_object_mut()) {
        // In an apply patch a resourceVersion is a precondition.
        meta.insert("resourceVersion".into(), Value::String(v));
    }
    match api
        .patch(
            &name,
            &PatchParams::apply(PARENT_MANAGER).force(),
            &Patch::Apply(&parent),
        )
        .await
    {
        Ok(written) => Ok(written.metadata.resource_version.unwrap_or_default()),
        Err(e) => Err(parent_error(cluster, &name, e)),
    }
}

/// A failed write of the parent `name`: a 409 means another writer came first.
fn parent_error(cluster: &Cluster, name: &str, e: kube::Error) -> SyncError {
    match e {
        kube::Error::Api(s) if s.code == 409 => SyncError::ParentChanged {
            cluster: cluster.name.clone(),
            parent: format!("Secret/{}/{name}", inventory::PARENT_NAMESPACE),
        },
        e => SyncError::Apply {
            cluster: cluster.name.clone(),
            object: format!("inventory {name}"),
            message: api_message(&e),
        },
    }
}

/// Applies objects rank by rank (install order); objects of one rank go concurrently.
async fn apply_in_order(
    cluster: &Cluster,
    objects: &[Desired],
    options: &Options,
    applied: &mut Vec<String>,
    versions: &mut HashMap<String, inventory::Applied>,
) -> Result<(), SyncError> {
    let mut ranks: Vec<i64> = objects.iter().map(|d| install_rank(&d.kind)).collect();
    ranks.sort();
    ranks.dedup();
    for rank in ranks {
        let batch: Vec<&Desired> = objects
            .iter()
            .filter(|d| install_rank(&d.kind) == rank)
            .collect();
        let requests: Vec<_> = batch
            .into_iter()
            .map(|d| apply_one(cluster, d, options))
            .collect();
        let results: Vec<Result<(String, String, inventory::Applied), SyncError>> =
            futures::stream::iter(requests)
                .buffer_unordered(plan::CONCURRENCY)
                .collect()
                .await;
        for r in results {
            let (id, key, record) = r?;
            applied.push(id);
            versions.insert(key, record);
        }
    }
    Ok(())
}

async fn apply_one(
    cluster: &Cluster,
    d: &Desired,
    options: &Options,
) -> Result<(String, String, inventory::Applied), SyncError> {
    let fail = |message: String| SyncError::Apply {
        cluster: cluster.name.clone(),
        object: d.id(),
        message,
    };
    let api = d
        .api(&cluster.client)
        .ok_or_else(|| fail("kind not served".into()))?;
    if let Some(fields) = &d.renamed_fields {
        // Once per object: the entry of the manager all targets shared becomes this
        // target's, so this apply owns what that one owned.
        let patch = serde_json::json!({"metadata": {"managedFields": fields}});
        api.patch(&d.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| fail(format!("renaming its field manager: {}", api_message(&e))))?;
    }
    let mut params = PatchParams::apply(&d.manager);
    // The plan named every field this takes over; `fail` stops at a conflict instead.
    params.force = options.policy.conflicts == Conflicts::TakeOver;
    let result = api
        .patch(&d.name, &params, &Patch::Apply(&d.obj))
        .await
        .map_err(|e| fail(api_message(&e)))?;
    let live = serde_json::to_value(&result).unwrap_or(Value::Null);
    let record = inventory::Applied {
        resource_version: result.metadata.resource_version.clone().unwrap_or_default(),
        hash: plan::desired_hash(d),
        generation: result.metadata.generation,
        meta: plan::meta_hash(&d.obj, &live),
    };
    Ok((d.id(), record_key(d), record))
}

/// Objects that waited for a Namespace or CRD are resolved and dry-run now; one failure
/// stops the sync before anything but the prerequisites was written.
async fn revalidate_pending(
    cluster: &Cluster,
    discovery: &mut Discovery,
    set: &inventory::Set,
    rest: Vec<Desired>,
    options: &Options,
) -> Result<Vec<Desired>, SyncError> {
    if rest.iter().all(|d| d.resolved.is_some()) {
        return Ok(rest);
    }
    let objects: Vec<Map<String, Value>> = rest
        .iter()
        .filter_map(|d| d.obj.as_object().cloned())
        .collect();
    // A CRD just Established may not be in discovery yet (the API server installs its
    // group a moment later, and a loaded one takes longer): ask again, briefly, while the
    // only errors are kinds not served.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (resolved, mut errors) = loop {
        let (resolved, errors) = plan::prepare(cluster, discovery, set, &objects).await?;
        let only_unserved =
            !errors.is_empty() && errors.iter().all(|e| e.message.contains("is not served"));
        if !only_unserved || Instant::now() >= deadline {
            break (resolved, errors);
        }
        *discovery = Discovery::default();
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for d in &resolved {
        if let Err(e) = plan::plan_object(
            &cluster.client,
            d,
            options.policy.conflicts,
            None,
            None,
            plan::View::default(),
        )
        .await
        {
            errors.push(e);
        }
    }
    if !errors.is_empty() {
        return Err(SyncError::Invalid {
            cluster: cluster.name.clone(),
            errors,
        });
    }
    Ok(resolved)
}

/// The prune guard: deleting `delete` of an inventory of `inventory` objects must stay
/// within `percent` of it.
fn share_guard(delete: usize, inventory: usize, percent: u8) -> Result<(), String> {
    let share = delete * 100 / inventory.max(1);
    if share > percent as usize {
        return Err(format!(
            "{delete} of {inventory} inventory objects ({share} %) would be deleted, over the {percent} % guard"
        ));
    }
    Ok(())
}

/// Deletes members in reverse install order (workloads before their Namespace, objects
/// before their CRD), checking the fence before each.
async fn prune_in_order(
    cluster: &Cluster,
    members: &[Member],
    fence: Option<&Fence>,
) -> Result<Vec<String>, SyncError> {
    let mut order = members.to_vec();
    order.sort_by_key(|m| std::cmp::Reverse(install_rank(&m.kind)));
    let mut pruned = Vec::new();
    for m in &order {
        Fence::check(fence, &cluster.name, "pruning")?;
        prune_member(cluster, m).await?;
        pruned.push(m.id());
    }
    Ok(pruned)
}

async fn prune_member(cluster: &Cluster, m: &Member) -> Result<(), SyncError> {
    let api: Api<DynamicObject> = match &m.namespace {
        Some(ns) if m.resource.namespaced => {
            Api::namespaced_with(cluster.client.clone(), ns, &m.resource.resource)
        }
        _ => Api::all_with(cluster.client.clone(), &m.resource.resource),
    };
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(Preconditions {
            uid: Some(m.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&m.name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(SyncError::Apply {
            cluster: cluster.name.clone(),
            object: format!("prune {}", m.id()),
            message: api_message(&e),
        }),
    }
}

async fn wait_established(
    cluster: &Cluster,
    crds: &[Desired],
    timeout: Duration,
) -> Result<(), SyncError> {
    let crds: Vec<&Desired> = crds
        .iter()
        .filter(|d| d.kind == "CustomResourceDefinition")
        .collect();
    wait_healthy(cluster, &crds, timeout, None).await
}

/// Polls the objects until every one is healthy; a failed one ends the wait at once.
async fn wait_healthy(
    cluster: &Cluster,
    objects: &[&Desired],
    timeout: Duration,
    fence: Option<&Fence>,
) -> Result<(), SyncError> {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(100);
    loop {
        // A replica that lost the cluster stops waiting: the new owner waits for itself.
        Fence::check(fence, &cluster.name, "waiting for health")?;
        let mut pending = Vec::new();
        for d in objects {
            let Some(api) = d.api(&cluster.client) else {
                continue;
            };
            let live = api.get_opt(&d.name).await.map_err(|e| SyncError::Apply {
                cluster: cluster.name.clone(),
                object: d.id(),
                message: api_message(&e),
            })?;
            let Some(live) = live else {
                pending.push(format!("{} (missing)", d.id()));
                continue;
            };
            let value = serde_json::to_value(&live).unwrap_or(Value::Null);
            match health::health(&value) {
                Health::Ready => {}
                Health::Progressing(why) => pending.push(format!("{} ({why})", d.id())),
                Health::Failed(why) => {
                    return Err(SyncError::Failed {
                        cluster: cluster.name.clone(),
                        object: d.id(),
                        message: why,
                    });
                }
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(SyncError::Unhealthy {
                cluster: cluster.name.clone(),
                timeout,
                pending: pending.join(", "),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}
