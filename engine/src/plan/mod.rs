//! The plan of a target on a cluster: what a server-side apply would create, update or
//! leave alone, and what a prune would delete — asked of the server with `dryRun=All`, so
//! defaulted fields never show as drift.

#[cfg(test)]
pub(crate) mod fake;
pub mod ignore;
pub mod normalize;
pub mod opt_out;
pub mod removal;
pub mod takeover;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};

use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::cluster::{Cluster, ClusterError, Discovery, Kind};
use crate::config::{Conflicts, SyncPolicy};
use crate::inventory;
pub use takeover::Takeover;

/// Requests in flight at once against one cluster.
pub const CONCURRENCY: usize = 32;
/// The field manager every target applied with before each had its own
/// ([`inventory::Set::field_manager`]); a target's first sync renames its entries.
pub const LEGACY_FIELD_MANAGER: &str = "keelson";

/// What happens to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Unchanged,
    Prune,
}

/// One object's planned change.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub action: Action,
    pub api_version: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// A unified diff of the normalised live and desired objects (Secret values masked).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub diff: String,
    /// Where an update changes the object (see [`changed_fields`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// The server could not dry-run it because a Namespace or CRD of this render does not
    /// exist yet; it is shown as rendered.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    /// Fields the render declares that another field manager owns: the apply takes them
    /// over (`conflicts: takeOver`), or refuses the object (`conflicts: fail`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub takeovers: Vec<Takeover>,
    /// With `conflicts: fail`, the server's conflict message (an error of the plan).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflict: Option<String>,
    /// What `ignoreDifferences` gave away from this object (`/spec/replicas (owned by
    /// hpa)`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
    /// Why the object is left as it is although it is rendered (its `keelson.dev/ssa`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The live object's resourceVersion (for the inventory's record).
    #[serde(skip)]
    pub resource_version: Option<String>,
    /// The fingerprint of the desired object (for the inventory's record).
    #[serde(skip)]
    pub desired_hash: String,
    /// The live object's generation and the fingerprint of the labels and annotations
    /// keelson sets (for the inventory's record).
    #[serde(skip)]
    pub generation: Option<i64>,
    #[serde(skip)]
    pub meta_hash: String,
}

impl Change {
    fn new(
        action: Action,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Self {
        Change {
            action,
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            diff: String::new(),
            fields: Vec::new(),
            pending: false,
            takeovers: Vec::new(),
            conflict: None,
            ignored: Vec::new(),
            skipped: None,
            resource_version: None,
            desired_hash: String::new(),
            generation: None,
            meta_hash: String::new(),
        }
    }

    /// `kind/namespace/name`.
    pub fn id(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }

    /// One line for people: what happens to the object and to whom its fields go.
    pub fn summary(&self) -> String {
        let mut line = match self.action {
            Action::Create => format!("create {}", self.id()),
            Action::Update if self.fields.is_empty() => format!("update {}", self.id()),
            Action::Update => format!("update {}: {}", self.id(), self.fields.join(", ")),
            Action::Unchanged => format!("unchanged {}", self.id()),
            Action::Prune => format!("prune {}", self.id()),
        };
        if !self.takeovers.is_empty() {
            let t: Vec<String> = self.takeovers.iter().map(ToString::to_string).collect();
            line.push_str(&format!("; {}", t.join("; ")));
        }
        if !self.ignored.is_empty() {
            line.push_str(&format!("; ignored {}", self.ignored.join(", ")));
        }
        if let Some(why) = &self.skipped {
            line.push_str(&format!(" ({why})"));
        }
        line
    }
}

/// The paths where two objects differ (`.data.allowedRegistries`,
/// `.spec.template.spec.containers[name="web"].image`), at most [`FIELD_DEPTH`] deep and
/// [`MAX_FIELDS`] of them: enough to say what changed in one line.
pub fn changed_fields(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    differing(old, new, String::new(), 0, &mut out);
    out
}

const FIELD_DEPTH: usize = 6;
const MAX_FIELDS: usize = 12;

fn differing(old: &Value, new: &Value, at: String, depth: usize, out: &mut Vec<String>) {
    if old == new || out.len() >= MAX_FIELDS {
        return;
    }
    let leaf = |out: &mut Vec<String>, at: String| {
        if out.len() < MAX_FIELDS {
            out.push(if at.is_empty() { ".".into() } else { at });
        }
    };
    if depth >= FIELD_DEPTH {
        return leaf(out, at);
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let (x, y) = (
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                );
                differing(x, y, format!("{at}.{k}"), depth + 1, out);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                let key = match y.get("name").and_then(Value::as_str) {
                    Some(n) => format!("[name={n:?}]"),
                    None => format!("[{i}]"),
                };
                differing(x, y, format!("{at}{key}"), depth + 1, out);
            }
        }
        _ => leaf(out, at),
    }
}

/// One object could not be planned.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectError {
    pub object: String,
    pub message: String,
}

/// An inventory member no longer rendered that stays on the cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    pub object: String,
    pub reason: String,
}

/// The plan of one target on one cluster.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Plan {
    pub target: String,
    pub cluster: String,
    pub changes: Vec<Change>,
    /// Members no longer rendered that the policy keeps (prune off, a kind not allowed,
    /// `keelson.dev/prune: disabled`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<Kept>,
    /// Set when the target left `keelson.yaml`: what its policy does with its objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<crate::config::OnRemoval>,
    /// The unkeyed inventory this plan takes over (its parent goes once the keyed one is
    /// written).
    #[serde(skip)]
    pub takes_over: Option<inventory::Set>,
    /// Objects the server refused (invalid, conflicting, forbidden).
    pub errors: Vec<ObjectError>,
    /// Members of the inventory before this plan.
    pub inventory: usize,
    /// The group-kinds and namespaces the inventory parent listed before this plan (none:
    /// no parent yet).
    #[serde(skip)]
    pub listed: Option<(BTreeSet<String>, BTreeSet<String>)>,
    /// The parent's resourceVersion as read: a sync's parent writes are conditional on it,
    /// so a write by another engine since this plan makes them fail instead of undoing it.
    #[serde(skip)]
    pub parent_version: Option<String>,
}

/// A target's ApplySet parent as read from the cluster.
#[derive(Debug, Clone)]
pub struct Parent {
    pub group_kinds: BTreeSet<String>,
    pub namespaces: BTreeSet<String>,
    pub record: inventory::Record,
    pub resource_version: Option<String>,
    /// The repository identity it was written for, if any.
    pub source: Option<String>,
}

impl Plan {
    /// How many objects take each action.
    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }

    /// Whether anything would change (a removed target's inventory goes, at least).
    pub fn has_changes(&self) -> bool {
        self.removed.is_some() || self.changes.iter().any(|c| c.action != Action::Unchanged)
    }
}

/// A planning step failed for the whole cluster.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("cluster {cluster}: {message}")]
    Api { cluster: String, message: String },
}

/// A rendered object prepared for one cluster: labelled as an inventory member, with its
/// kind resolved and a namespace when the kind is namespaced.
#[derive(Debug, Clone)]
pub struct Desired {
    pub obj: Value,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    /// Discovery result; `None` when the kind comes from a CRD of this same render.
    pub resolved: Option<Kind>,
    /// The ApplySet id of the target's inventory from before inventories were keyed by
    /// repository: an object labelled with it is the target's own, relabelled on apply.
    pub adopts: Option<String>,
    /// The field manager it is applied with.
    pub manager: String,
    /// The live object's `managedFields` with [`LEGACY_FIELD_MANAGER`]'s apply entry
    /// renamed to `manager`: written before the first apply under the new name, so the
    /// fields keelson owned stay its own (and the ones it no longer declares go).
    pub renamed_fields: Option<Value>,
}

impl Desired {
    /// `kind/namespace/name`.
    pub fn id(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }

    /// The API handle for this object.
    pub fn api(&self, client: &kube::Client) -> Option<Api<DynamicObject>> {
        let k = self.resolved.as_ref()?;
        Some(match &self.namespace {
            Some(ns) if k.namespaced => Api::namespaced_with(client.clone(), ns, &k.resource),
            _ => Api::all_with(client.clone(), &k.resource),
        })
    }
}

fn str_at<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    let mut v = obj;
    for p in path {
        match v.get(p) {
            Some(x) => v = x,
            None => return "",
        }
    }
    v.as_str().unwrap_or("")
}

/// Kinds that CRDs in `objects` will add (group, kind).
fn kinds_from_crds(objects: &[Map<String, Value>]) -> HashSet<(String, String)> {
    objects
        .iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition"))
        .map(|o| {
            let v = Value::Object(o.clone());
            (
                str_at(&v, &["spec", "group"]).to_string(),
                str_at(&v, &["spec", "names", "kind"]).to_string(),
            )
        })
        .collect()
}

/// Resolves kinds and namespaces and adds the inventory label.
pub async fn prepare(
    cluster: &Cluster,
    discovery: &mut Discovery,
    set: &inventory::Set,
    objects: &[Map<String, Value>],
) -> Result<(Vec<Desired>, Vec<ObjectError>), PlanError> {
    let from_crds = kinds_from_crds(objects);
    let id = set.id();
    let adopts = set.legacy().map(|l| l.id());
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for o in objects {
        let mut obj = Value::Object(o.clone());
        let api_version = str_at(&obj, &["apiVersion"]).to_string();
        let kind = str_at(&obj, &["kind"]).to_string();
        let name = str_at(&obj, &["metadata", "name"]).to_string();
        let group = api_version.split_once('/').map(|(g, _)| g).unwrap_or("");
        let resolved = match discovery.kind(cluster, &api_version, &kind).await {
            Ok(k) => Some(k),
            Err(_) if from_crds.contains(&(group.to_string(), kind.clone())) => None,
            Err(e) => {
                errors.push(ObjectError {
                    object: format!("{kind}/{name}"),
                    message: e.to_string(),
                });
                continue;
            }
        };
        let namespaced = resolved.as_ref().is_none_or(|k| k.namespaced);
        let namespace = if namespaced {
            let ns = str_at(&obj, &["metadata", "namespace"]);
            Some(if ns.is_empty() {
                "default".to_string()
            } else {
                ns.to_string()
            })
        } else {
            None
        };
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            if let Some(ns) = &namespace {
                meta.insert("namespace".into(), Value::String(ns.clone()));
            } else {
                meta.remove("namespace");
            }
            let labels = meta
                .entry("labels")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(l) = labels {
                l.insert(inventory::PART_OF.into(), Value::String(id.clone()));
            }
        }
        out.push(Desired {
            obj,
            api_version,
            kind,
            name,
            namespace,
            resolved,
            adopts: adopts.clone(),
            manager: set.field_manager(),
            renamed_fields: None,
        });
    }
    Ok((out, errors))
}

/// Text for a diff: sorted YAML of the normalised object.
pub fn yaml_of(obj: &Value) -> String {
    crate::yaml::emit::document(&normalize::normalize(obj))
}

/// What a diff shows beyond the objects' content.
#[derive(Debug, Clone, Copy, Default)]
pub struct View {
    /// `metadata.managedFields` (without their times), to see who owns what.
    pub managed_fields: bool,
}

impl View {
    fn text(self, obj: &Value) -> String {
        let mut shown = normalize::normalize(obj);
        if self.managed_fields
            && let (Some(Value::Array(entries)), Some(meta)) = (
                obj.pointer("/metadata/managedFields"),
                shown.get_mut("metadata").and_then(Value::as_object_mut),
            )
        {
            let entries: Vec<Value> = entries
                .iter()
                .cloned()
                .map(|mut e| {
                    if let Some(m) = e.as_object_mut() {
                        m.remove("time");
                    }
                    e
                })
                .collect();
            meta.insert("managedFields".into(), Value::Array(entries));
        }
        crate::yaml::emit::document(&shown)
    }
}

/// A unified diff between two texts, labelled with the object's id.
pub fn unified(id: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("live/{id}"), &format!("desired/{id}"))
        .to_string()
}

/// The server's message for a failed request, with the field-manager conflict spelled out.
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 409 && s.message.contains("conflict") => {
            format!("field-manager conflict: {}", s.message)
        }
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    }
}

/// Fingerprint of the labels and annotations of `live` that `desired` sets: drift there
/// does not bump the generation, so it is checked this way.
pub fn meta_hash(desired: &Value, live: &Value) -> String {
    use sha2::{Digest, Sha256};
    let mut picked = serde_json::Map::new();
    for field in ["labels", "annotations"] {
        let keys = desired
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_object);
        let values = live.pointer(&format!("/metadata/{field}"));
        for key in keys.into_iter().flat_map(|m| m.keys()) {
            let v = values
                .and_then(|m| m.get(key))
                .cloned()
                .unwrap_or(Value::Null);
            picked.insert(format!("{field}/{key}"), v);
        }
    }
    let digest = Sha256::digest(crate::render::go_json(&Value::Object(picked)).as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Whether the record proves the live object is what keelson would apply now: the same
/// render, and either the same resourceVersion or (for generation-tracked kinds) the same
/// generation and the same values in the labels and annotations keelson sets.
pub fn proven_unchanged(change: &Change, record: &inventory::Applied) -> bool {
    if change.desired_hash != record.hash {
        return false;
    }
    if change.resource_version.as_deref() == Some(record.resource_version.as_str()) {
        return true;
    }
    change.generation.is_some()
        && change.generation == record.generation
        && !record.meta.is_empty()
        && change.meta_hash == record.meta
}

/// The fingerprint of a desired object: equal fingerprints, equal applies.
pub fn desired_hash(d: &Desired) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(crate::render::go_json(&d.obj).as_bytes());
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// Plans one object. `live` is the object as listed; `record` is what the inventory
/// remembers of keelson's last apply of it (resourceVersion and desired fingerprint):
/// when both still match, nothing can have changed and the server is not asked again.
pub async fn plan_object(
    client: &kube::Client,
    d: &Desired,
    conflicts: Conflicts,
    live: Option<&Value>,
    record: Option<&inventory::Applied>,
    view: View,
) -> Result<Change, ObjectError> {
    let fail = |message: String| ObjectError {
        object: d.id(),
        message,
    };
    let mut change = Change::new(
        Action::Create,
        &d.api_version,
        &d.kind,
        d.namespace.as_deref(),
        &d.name,
    );
    change.resource_version = live
        .and_then(|l| l.pointer("/metadata/resourceVersion"))
        .and_then(Value::as_str)
        .map(str::to_string);
    change.desired_hash = desired_hash(d);
    change.generation = live
        .and_then(|l| l.pointer("/metadata/generation"))
        .and_then(Value::as_i64);
    change.meta_hash = live.map(|l| meta_hash(&d.obj, l)).unwrap_or_default();
    // An object of another ApplySet is never adopted (relabelled, then pruned with ours).
    let label = |o: &Value| {
        o.pointer("/metadata/labels")
            .and_then(|l| l.get(inventory::PART_OF))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if let Some(theirs) = live.and_then(label)
        && Some(&theirs) != label(&d.obj).as_ref()
        && Some(&theirs) != d.adopts.as_ref()
    {
        return Err(fail(format!(
            "already belongs to another ApplySet ({}={theirs}); keelson does not adopt it",
            inventory::PART_OF
        )));
    }
    opt_out::check_prune(&d.obj).map_err(fail)?;
    match opt_out::ssa(&d.obj).map_err(fail)? {
        opt_out::Ssa::Ignore => {
            change.action = Action::Unchanged;
            change.skipped = Some(format!("{}: Ignore", opt_out::SSA));
            return Ok(change);
        }
        opt_out::Ssa::IfNotPresent if live.is_some() => {
            change.action = Action::Unchanged;
            change.skipped = Some(format!("{}: IfNotPresent, and it exists", opt_out::SSA));
            return Ok(change);
        }
        _ => {}
    }
    if let Some(r) = record
        && live.is_some()
        && proven_unchanged(&change, r)
    {
        change.action = Action::Unchanged;
        return Ok(change);
    }
    let Some(api) = d.api(client) else {
        change.pending = true;
        change.diff = unified(&d.id(), "", &yaml_of(&d.obj));
        return Ok(change);
    };
    // Dry-run the apply without forcing: a conflict names each field another manager
    // owns. Then, under `takeOver`, a forced dry-run shows the drift the apply undoes —
    // one request in the usual case, two only for a conflict.
    let attempt = |force: bool| {
        // An object still under the shared manager of old is dry-run as that manager:
        // what the rename and then the apply will do.
        let manager = match d.renamed_fields {
            Some(_) => LEGACY_FIELD_MANAGER,
            None => d.manager.as_str(),
        };
        let mut params = PatchParams::apply(manager).dry_run();
        params.force = force;
        let api = api.clone();
        async move { api.patch(&d.name, &params, &Patch::Apply(&d.obj)).await }
    };
    let result = match attempt(false).await {
        Err(kube::Error::Api(s)) if s.code == 409 => {
            change.takeovers = takeover::from_status(&s);
            if conflicts == Conflicts::Fail {
                change.conflict = Some(api_message(&kube::Error::Api(s)));
            }
            attempt(true).await
        }
        other => other,
    };
    let dry = match result {
        Ok(obj) => obj,
        // The namespace comes with this render and does not exist yet.
        Err(kube::Error::Api(s)) if s.code == 404 && live.is_none() => {
            change.pending = true;
            change.diff = unified(&d.id(), "", &yaml_of(&d.obj));
            return Ok(change);
        }
        Err(e) => return Err(fail(api_message(&e))),
    };
    let dry = serde_json::to_value(&dry).map_err(|e| fail(e.to_string()))?;
    match live {
        None => change.diff = unified(&d.id(), "", &view.text(&dry)),
        Some(live) => {
            let (current, desired) = (normalize::normalize(live), normalize::normalize(&dry));
            if current == desired {
                change.action = Action::Unchanged;
            } else {
                change.action = Action::Update;
                change.diff = unified(&d.id(), &view.text(live), &view.text(&dry));
                change.fields = changed_fields(&current, &desired);
            }
        }
    }
    Ok(change)
}

/// The live objects of the desired ones, listed once per kind and namespace instead of
/// fetched one by one.
pub async fn live_objects(
    cluster: &Cluster,
    desired: &[Desired],
) -> Result<HashMap<(String, Option<String>, String), Value>, PlanError> {
    let mut groups: HashMap<(String, Option<String>), Vec<&Desired>> = HashMap::new();
    for d in desired.iter().filter(|d| d.resolved.is_some()) {
        groups
            .entry((d.api_version.clone() + "/" + &d.kind, d.namespace.clone()))
            .or_default()
            .push(d);
    }
    // The futures are built before they enter the stream: a closure inside the stream
    // would make the whole future fail the `Send` proof that `tokio::spawn` needs
    // (rust-lang/rust#102211).
    let requests: Vec<_> = groups
        .into_values()
        .map(|group| async move {
            let d = group[0];
            let kind = (d.api_version.clone(), d.kind.clone());
            let Some(api) = d.api(&cluster.client) else {
                return Ok((kind, Vec::new()));
            };
            let failed = |e: &kube::Error| PlanError::Api {
                cluster: cluster.name.clone(),
                message: format!("listing {}: {}", kind.1, api_message(e)),
            };
            match api.list(&ListParams::default()).await {
                Ok(list) => Ok((kind, list.items)),
                // The namespace comes with this render: nothing lives there yet.
                Err(kube::Error::Api(s)) if s.code == 404 => Ok((kind, Vec::new())),
                // A ServiceAccount bound to named objects may get them, not list them all.
                Err(kube::Error::Api(s)) if s.code == 403 => {
                    let mut items = Vec::new();
                    for d in &group {
                        match api.get_opt(&d.name).await {
                            Ok(found) => items.extend(found),
                            Err(e) => {
                                return Err(PlanError::Api {
                                    cluster: cluster.name.clone(),
                                    message: format!("reading {}: {}", d.id(), api_message(&e)),
                                });
                            }
                        }
                    }
                    Ok((kind, items))
                }
                Err(e) => Err(failed(&e)),
            }
        })
        .collect();
    let lists = futures::stream::iter(requests)
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let mut out = HashMap::new();
    for l in lists {
        let ((api_version, kind), items) = l?;
        for item in items {
            let key = (
                kind.clone(),
                item.metadata.namespace.clone(),
                item.metadata.name.clone().unwrap_or_default(),
            );
            let mut value = serde_json::to_value(&item).unwrap_or(Value::Null);
            // Lists leave out apiVersion/kind on items.
            if let Value::Object(m) = &mut value {
                m.entry("kind")
                    .or_insert_with(|| Value::String(kind.clone()));
                m.entry("apiVersion")
                    .or_insert_with(|| Value::String(api_version.clone()));
            }
            out.insert(key, value);
        }
    }
    Ok(out)
}

/// A member of the inventory as found on the cluster.
#[derive(Debug, Clone)]
pub struct Member {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub resource: Kind,
    /// The live object carries `keelson.dev/prune: disabled`.
    pub prune_disabled: bool,
}

impl Member {
    /// `kind/namespace/name`.
    pub fn id(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

/// The target's ApplySet parent, if it exists.
pub async fn read_parent(
    cluster: &Cluster,
    set: &inventory::Set,
) -> Result<Option<Parent>, PlanError> {
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(cluster.inventory.clone(), inventory::PARENT_NAMESPACE);
    let parent = secrets
        .get_opt(&set.parent_name())
        .await
        .map_err(|e| PlanError::Api {
            cluster: cluster.name.clone(),
            message: format!("reading the inventory: {}", api_message(&e)),
        })?;
    Ok(parent.map(|p| {
        let record = p
            .data
            .as_ref()
            .and_then(|d| d.get(inventory::RECORD_KEY))
            .and_then(|b| serde_json::from_slice(&b.0).ok())
            .unwrap_or_default();
        let a = p.metadata.annotations.unwrap_or_default();
        let group_kinds = inventory::split_list(a.get(inventory::GROUP_KINDS).map(String::as_str));
        let mut namespaces =
            inventory::split_list(a.get(inventory::NAMESPACES).map(String::as_str));
        namespaces.insert(inventory::PARENT_NAMESPACE.to_string());
        Parent {
            group_kinds,
            namespaces,
            record,
            resource_version: p.metadata.resource_version,
            source: p
                .metadata
                .labels
                .and_then(|l| l.get(inventory::SOURCE_LABEL).cloned()),
        }
    }))
}

/// Finds the inventory's members: every object of the listed group-kinds, in the listed
/// namespaces, that carries this target's part-of label. Listed as the engine (the parent's
/// own namespace among them); deleting one is the repository's request.
pub async fn members(
    cluster: &Cluster,
    discovery: &mut Discovery,
    set: &inventory::Set,
    group_kinds: &BTreeSet<String>,
    namespaces: &BTreeSet<String>,
) -> Result<Vec<Member>, PlanError> {
    let selector = format!("{}={}", inventory::PART_OF, set.id());
    let lp = ListParams::default().labels(&selector);
    // Resolve the kinds first (discovery is cached), then list them all concurrently, in
    // a stable order.
    let mut lists = Vec::new();
    for gk in group_kinds {
        let (kind, group) = match gk.split_once('.') {
            Some((k, g)) => (k.to_string(), g.to_string()),
            None => (gk.clone(), String::new()),
        };
        let Some(resolved) = resolve_group_kind(cluster, discovery, &group, &kind).await? else {
            continue; // The kind is gone (its CRD was deleted): nothing left to prune.
        };
        let apis: Vec<Api<DynamicObject>> = if resolved.namespaced {
            namespaces
                .iter()
                .map(|ns| Api::namespaced_with(cluster.inventory.clone(), ns, &resolved.resource))
                .collect()
        } else {
            vec![Api::all_with(cluster.inventory.clone(), &resolved.resource)]
        };
        for api in apis {
            lists.push((gk.clone(), kind.clone(), resolved.clone(), api));
        }
    }
    let requests: Vec<_> = lists
        .into_iter()
        .map(|(gk, kind, resolved, api)| {
            let lp = &lp;
            async move {
                let list = api.list(lp).await.map_err(|e| PlanError::Api {
                    cluster: cluster.name.clone(),
                    message: format!("listing {gk}: {}", api_message(&e)),
                })?;
                Ok::<_, PlanError>(
                    list.items
                        .into_iter()
                        .map(|item| Member {
                            api_version: resolved.resource.api_version.clone(),
                            kind: kind.clone(),
                            namespace: item.metadata.namespace.clone(),
                            name: item.metadata.name.clone().unwrap_or_default(),
                            uid: item.metadata.uid.clone().unwrap_or_default(),
                            resource: resolved.clone(),
                            prune_disabled: opt_out::prune_disabled(
                                item.metadata.annotations.as_ref(),
                            ),
                        })
                        .collect::<Vec<_>>(),
                )
            }
        })
        .collect();
    let listed: Vec<Result<Vec<Member>, PlanError>> = futures::stream::iter(requests)
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let mut out = Vec::new();
    for l in listed {
        out.extend(l?);
    }
    Ok(out)
}

/// The preferred version of a group-kind on the cluster.
async fn resolve_group_kind(
    cluster: &Cluster,
    discovery: &mut Discovery,
    group: &str,
    kind: &str,
) -> Result<Option<Kind>, PlanError> {
    let group_versions = if group.is_empty() {
        vec!["v1".to_string()]
    } else {
        let groups = cluster
            .client
            .list_api_groups()
            .await
            .map_err(|e| PlanError::Api {
                cluster: cluster.name.clone(),
                message: format!("discovery: {}", api_message(&e)),
            })?;
        match groups.groups.iter().find(|g| g.name == group) {
            Some(g) => g.versions.iter().map(|v| v.group_version.clone()).collect(),
            None => return Ok(None),
        }
    };
    for gv in group_versions {
        if let Ok(k) = discovery.kind(cluster, &gv, kind).await {
            return Ok(Some(k));
        }
    }
    Ok(None)
}

/// `live`'s managedFields with the shared manager's apply entry renamed to `manager`,
/// when it has one and none of `manager` yet.
fn renamed_fields(live: &Value, manager: &str) -> Option<Value> {
    let entries = live.pointer("/metadata/managedFields")?.as_array()?;
    let is = |e: &Value, name: &str| e.get("manager").and_then(Value::as_str) == Some(name);
    let legacy = |e: &Value| {
        is(e, LEGACY_FIELD_MANAGER)
            && e.get("operation").and_then(Value::as_str) == Some("Apply")
            && e.get("subresource").is_none()
    };
    if !entries.iter().any(legacy) || entries.iter().any(|e| is(e, manager)) {
        return None;
    }
    let renamed = entries
        .iter()
        .cloned()
        .map(|mut e| {
            if legacy(&e) {
                e["manager"] = Value::String(manager.to_string());
            }
            e
        })
        .collect();
    Some(Value::Array(renamed))
}

/// The inventory's members the render no longer holds.
#[derive(Debug, Clone, Default)]
pub struct Prunes {
    /// To delete.
    pub delete: Vec<Member>,
    /// To keep, by policy (they stay inventory members).
    pub keep: Vec<Member>,
}

impl Prunes {
    /// Files a member the render no longer holds: kept for `reason`, else to delete (and
    /// shown as a prune).
    pub(crate) fn sort(
        &mut self,
        m: Member,
        reason: Option<String>,
        changes: &mut Vec<Change>,
        kept: &mut Vec<Kept>,
    ) {
        match reason {
            Some(reason) => {
                kept.push(Kept {
                    object: m.id(),
                    reason,
                });
                self.keep.push(m);
            }
            None => {
                changes.push(Change::new(
                    Action::Prune,
                    &m.api_version,
                    &m.kind,
                    m.namespace.as_deref(),
                    &m.name,
                ));
                self.delete.push(m);
            }
        }
    }
}

/// Why the policy keeps a member the render no longer holds, if it does.
pub(crate) fn keep_reason(m: &Member, policy: &SyncPolicy) -> Option<String> {
    let allowed = |yes: bool, setting: &str| {
        (!yes).then(|| format!("{} is not pruned without sync.{setting}", m.kind))
    };
    if !policy.prune {
        return Some("sync.prune is off".into());
    }
    if m.prune_disabled {
        return Some(format!("{}: disabled", opt_out::PRUNE));
    }
    match m.kind.as_str() {
        "Namespace" => allowed(policy.prune_namespaces, "pruneNamespaces"),
        "CustomResourceDefinition" => allowed(policy.prune_crds, "pruneCrds"),
        "PersistentVolumeClaim" => allowed(policy.prune_pvcs, "prunePvcs"),
        _ => None,
    }
}

/// Plans a target on one cluster: every rendered object dry-run (after `ignoreDifferences`
/// gave its fields away), and the inventory's members no longer rendered split into what
/// the policy prunes and what it keeps.
pub async fn plan(
    cluster: &Cluster,
    set: &inventory::Set,
    objects: &[Map<String, Value>],
    policy: &SyncPolicy,
    view: View,
) -> Result<(Plan, Vec<Desired>, Prunes), PlanError> {
    let target = set.target.as_str();
    let mut discovery = Discovery::default();
    let (mut desired, mut errors) = prepare(cluster, &mut discovery, set, objects).await?;
    // The target's inventory, else (once) the one it had before inventories were keyed by
    // repository, unless that one is another repository's.
    let (parent, parent_set) = match read_parent(cluster, set).await? {
        Some(p) => (Some(p), set.clone()),
        None => match set.legacy() {
            Some(legacy) => match read_parent(cluster, &legacy).await? {
                Some(p) if p.source.is_none() || p.source == set.origin => (Some(p), legacy),
                _ => (None, set.clone()),
            },
            None => (None, set.clone()),
        },
    };
    let takes_over = (parent_set != *set).then(|| parent_set.clone());
    let record = parent
        .as_ref()
        .map(|p| p.record.clone())
        .unwrap_or_default();
    let parent_version = parent.as_ref().and_then(|p| p.resource_version.clone());
    let live = live_objects(cluster, &desired).await?;
    let live_of = |d: &Desired| live.get(&(d.kind.clone(), d.namespace.clone(), d.name.clone()));
    for d in &mut desired {
        d.renamed_fields = live_of(d).and_then(|l| renamed_fields(l, &d.manager));
    }
    let mut ignored: HashMap<String, Vec<String>> = HashMap::new();
    if !policy.ignore_differences.is_empty() {
        for d in &mut desired {
            let id = (
                d.api_version.as_str(),
                d.kind.as_str(),
                d.namespace.as_deref(),
                d.name.as_str(),
            );
            let mut obj = d.obj.clone();
            let given = ignore::apply(
                &policy.ignore_differences,
                &mut obj,
                id,
                live_of(d),
                &d.manager,
            );
            if !given.is_empty() {
                ignored.insert(d.id(), given);
                d.obj = obj;
            }
        }
    }
    let requests: Vec<_> = desired
        .iter()
        .map(|d| {
            let applied = record.get(&inventory::record_key(
                &d.api_version,
                &d.kind,
                d.namespace.as_deref(),
                &d.name,
            ));
            plan_object(
                &cluster.client,
                d,
                policy.conflicts,
                live_of(d),
                applied,
                view,
            )
        })
        .collect();
    let results: Vec<Result<Change, ObjectError>> = futures::stream::iter(requests)
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let mut changes = Vec::new();
    for r in results {
        match r {
            Ok(mut c) => {
                if let Some(conflict) = &c.conflict {
                    errors.push(ObjectError {
                        object: c.id(),
                        message: conflict.clone(),
                    });
                }
                c.ignored = ignored.remove(&c.id()).unwrap_or_default();
                changes.push(c);
            }
            Err(e) => errors.push(e),
        }
    }
    let (members, inventory_size, listed) = match parent {
        Some(p) => {
            let m = members(
                cluster,
                &mut discovery,
                &parent_set,
                &p.group_kinds,
                &p.namespaces,
            )
            .await?;
            let n = m.len();
            (m, n, Some((p.group_kinds, p.namespaces)))
        }
        None => (Vec::new(), 0, None),
    };
    let rendered: HashSet<(String, Option<String>, String)> = desired
        .iter()
        .map(|d| (d.kind.clone(), d.namespace.clone(), d.name.clone()))
        .collect();
    let mut prunes = Prunes::default();
    let mut kept = Vec::new();
    for m in members
        .into_iter()
        .filter(|m| !rendered.contains(&(m.kind.clone(), m.namespace.clone(), m.name.clone())))
    {
        let reason = keep_reason(&m, policy);
        prunes.sort(m, reason, &mut changes, &mut kept);
    }
    Ok((
        Plan {
            target: target.to_string(),
            cluster: cluster.name.clone(),
            changes,
            kept,
            removed: None,
            takes_over,
            errors,
            inventory: inventory_size,
            listed,
            parent_version,
        },
        desired,
        prunes,
    ))
}
