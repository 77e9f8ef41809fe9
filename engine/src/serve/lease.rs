//! Scale-out: several `keelson serve` replicas split the managed clusters between them with
//! `coordination.k8s.io/v1` Leases, so that each cluster is synced by exactly one replica.
//!
//! - Membership: each replica keeps a Lease `keelson-member-<identity>` renewed every
//!   duration/3. A member whose lease has expired (`renewTime + leaseDurationSeconds` in the
//!   past) is dead.
//! - Assignment: rendezvous (highest-random-weight) hashing of each cluster name over the
//!   live members, so a replica joining or leaving moves only its own share.
//! - Ownership: a replica syncs a cluster only while it holds the Lease
//!   `keelson-cluster-<name>`. It creates the lease, or takes it over once expired, with
//!   resourceVersion preconditions so that two replicas never both win; renews it; and
//!   releases (deletes) the leases of clusters assigned elsewhere. It never takes a lease
//!   another live holder renews, so while the members disagree (one has not yet seen
//!   another join) ownership waits instead of doubling.
//!
//! A replica stops claiming a cluster a little before its lease can expire in the eyes of
//! the others (a fifth of the duration early), which absorbs clock skew between replicas
//! up to that much. When a replica dies, its clusters move within about one lease duration
//! plus one renew period; on graceful shutdown ([`Shard::stop`]) they move within one
//! renew period of the others.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams, Preconditions};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The `leases:` settings of `keelson serve`.
///
/// ```yaml
/// leases:
///   inCluster: true          # or kubeconfig: {context: x, path: f}
///   namespace: keelson-system
///   duration: 15s
///   identity: keelson-0      # default: $POD_NAME, else the host name
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LeaseSettings {
    /// The leases live in the cluster keelson runs in (its service account).
    #[serde(default)]
    pub in_cluster: bool,
    /// Or in the cluster of this kubeconfig context.
    #[serde(default)]
    pub kubeconfig: Option<crate::config::KubeconfigRef>,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// How long a lease lasts without renewal (`15s`); renewed every third of it.
    #[serde(default = "default_duration")]
    pub duration: crate::time::Period,
    /// This replica's name among the others; unique per replica.
    #[serde(default)]
    pub identity: Option<String>,
}

fn default_namespace() -> String {
    "keelson-system".into()
}

fn default_duration() -> crate::time::Period {
    crate::time::Period::from_secs(15)
}

/// A replica's name when none is configured: `$POD_NAME` (the chart sets it), else the
/// host name.
pub fn default_identity() -> Option<String> {
    std::env::var("POD_NAME")
        .ok()
        .filter(|i| !i.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .or_else(|_| std::fs::read_to_string("/etc/hostname"))
                .ok()
                .map(|h| h.trim().to_string())
        })
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|i| !i.is_empty())
}

impl LeaseSettings {
    /// Checks the settings; the error names the field under `field_prefix` (`leases`).
    pub fn validate(&self, field_prefix: &str) -> Result<(), (String, String)> {
        let err = |field: &str, message: String| Err((format!("{field_prefix}.{field}"), message));
        if self.in_cluster == self.kubeconfig.is_some() {
            return err(
                "inCluster",
                "set exactly one of inCluster: true and kubeconfig".into(),
            );
        }
        if !is_dns_label(&self.namespace) {
            return err(
                "namespace",
                format!("{:?} is not a namespace name", self.namespace),
            );
        }
        if self.duration.get() < Duration::from_secs(3) {
            return err(
                "duration",
                format!(
                    "{:?} is not a duration of 3s or more, like 15s or 1m",
                    self.duration.to_string()
                ),
            );
        }
        if self.identity.as_deref() == Some("") {
            return err("identity", "must not be empty".into());
        }
        Ok(())
    }

    /// The lease duration (validation has checked it).
    pub fn duration(&self) -> Duration {
        self.duration.get()
    }

    /// This replica's identity: the setting, else `$POD_NAME`, else the host name.
    pub fn identity(&self) -> Option<String> {
        self.identity
            .clone()
            .filter(|i| !i.is_empty())
            .or_else(default_identity)
    }

    /// A client for the cluster holding the leases.
    pub async fn client(&self) -> Result<kube::Client, crate::cluster::ClusterError> {
        let cluster = crate::config::Cluster {
            name: "leases".into(),
            labels: BTreeMap::new(),
            kubeconfig: self.kubeconfig.clone(),
            in_cluster: self.in_cluster,
            kubeconfig_secret: None,
            impersonate: None,
        };
        Ok(crate::cluster::connect(&cluster, None).await?.client)
    }
}

/// Which clusters this replica may sync. Cheap to clone; dropping the last clone stops
/// renewing without releasing anything (as a crash would).
#[derive(Clone)]
pub struct Shard(Arc<Inner>);

struct Inner {
    state: Arc<State>,
    /// None for [`Shard::single`].
    renewer: Option<Renewer>,
}

struct Renewer {
    leases: Leases,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Renewer {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

/// What the renew loop and the engine share.
struct State {
    /// The clusters the engine knows.
    clusters: watch::Sender<BTreeSet<String>>,
    /// Clusters whose lease this replica holds, with the instant its claim ends.
    held: Mutex<BTreeMap<String, Instant>>,
    /// The clusters owned, published on change.
    owned: watch::Sender<BTreeSet<String>>,
}

impl State {
    fn new() -> Self {
        State {
            clusters: watch::Sender::new(BTreeSet::new()),
            held: Mutex::new(BTreeMap::new()),
            owned: watch::Sender::new(BTreeSet::new()),
        }
    }

    fn owned_now(&self) -> BTreeSet<String> {
        let now = Instant::now();
        lock(&self.held)
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(c, _)| c.clone())
            .collect()
    }

    fn publish(&self) {
        let owned = self.owned_now();
        self.owned.send_if_modified(|current| {
            let changed = *current != owned;
            *current = owned;
            changed
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind: keep using it.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shard {
    /// One replica alone: owns every cluster, no leases.
    pub fn single() -> Shard {
        Shard(Arc::new(Inner {
            state: Arc::new(State::new()),
            renewer: None,
        }))
    }

    /// Joins the members in `namespace` (which must exist) as `identity`, with leases
    /// lasting `duration`, and starts renewing in the background.
    pub async fn start(
        client: kube::Client,
        namespace: &str,
        identity: &str,
        duration: Duration,
    ) -> Result<Shard, kube::Error> {
        let leases = Leases::new(client, namespace, identity, duration);
        // Fail early (RBAC, a missing namespace) rather than in the background.
        leases.renew_member(Timestamp::now()).await?;
        let state = Arc::new(State::new());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(renew_loop(leases.clone(), state.clone(), stopped));
        Ok(Shard(Arc::new(Inner {
            state,
            renewer: Some(Renewer {
                leases,
                stop,
                task: Mutex::new(Some(task)),
            }),
        })))
    }

    /// The clusters known to the engine (the ones to share out).
    pub fn set_clusters(&self, names: BTreeSet<String>) {
        let state = &self.0.state;
        if self.0.renewer.is_none() {
            state.owned.send_if_modified(|owned| {
                let changed = *owned != names;
                owned.clone_from(&names);
                changed
            });
        }
        state.clusters.send_if_modified(|known| {
            let changed = *known != names;
            *known = names;
            changed
        });
    }

    /// True while this replica holds the cluster's lease (always, for [`Shard::single`]).
    pub fn owns(&self, cluster: &str) -> bool {
        if self.0.renewer.is_none() {
            return true;
        }
        lock(&self.0.state.held)
            .get(cluster)
            .is_some_and(|until| *until > Instant::now())
    }

    /// The clusters owned right now.
    pub fn owned(&self) -> BTreeSet<String> {
        match self.0.renewer {
            None => self.0.state.clusters.borrow().clone(),
            Some(_) => self.0.state.owned_now(),
        }
    }

    /// Changes of the owned set: re-check newly owned clusters when it moves.
    pub fn changed(&self) -> watch::Receiver<BTreeSet<String>> {
        self.0.state.owned.subscribe()
    }

    /// This replica's identity (`None` for [`Shard::single`]).
    pub fn identity(&self) -> Option<&str> {
        self.0.renewer.as_ref().map(|r| r.leases.identity.as_str())
    }

    /// Stops renewing and releases this replica's leases, so that the others take its
    /// clusters over at their next renewal instead of after the lease duration.
    pub async fn stop(self) {
        let Some(renewer) = &self.0.renewer else {
            return;
        };
        let _ = renewer.stop.send(true);
        let task = lock(&renewer.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        lock(&self.0.state.held).clear();
        self.0.state.publish();
        if let Err(e) = renewer.leases.release_all().await {
            tracing::warn!(identity = %renewer.leases.identity, "releasing leases: {e}");
        }
    }
}

/// Renews every duration/3, and at once when the known clusters change.
async fn renew_loop(leases: Leases, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let mut clusters = state.clusters.subscribe();
    let period = leases.period();
    loop {
        let started = Instant::now();
        match tokio::time::timeout(period, leases.tick(&state, started)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(identity = %leases.identity, "renewing leases: {e}"),
            Err(_) => tracing::warn!(
                identity = %leases.identity,
                "renewing leases took longer than {period:?}"
            ),
        }
        state.publish();
        tokio::select! {
            _ = tokio::time::sleep_until(started + period) => {}
            _ = clusters.changed() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// Label on every lease keelson keeps: `member` or `cluster`.
const KIND_LABEL: &str = "keelson.dev/lease";
/// Annotation holding a cluster lease's cluster name (object names are sanitised).
const CLUSTER_ANNOTATION: &str = "keelson.dev/cluster";
/// Leases of clusters no longer configured, and of members long dead, are deleted by any
/// replica after this many lease durations past their expiry.
const FORGET_AFTER: u32 = 10;
/// Cluster lease writes in flight at once.
const CONCURRENT_WRITES: usize = 8;

/// The leases of one replica in one namespace.
#[derive(Clone)]
struct Leases {
    api: Api<Lease>,
    identity: String,
    /// Whole seconds, as the lease records it.
    duration: Duration,
    /// This replica's member lease as last written.
    member: Arc<Mutex<Option<Lease>>>,
}

/// A cluster lease as listed.
struct Listed {
    cluster: String,
    lease: Lease,
}

impl Leases {
    fn new(client: kube::Client, namespace: &str, identity: &str, duration: Duration) -> Self {
        Leases {
            api: Api::namespaced(client, namespace),
            identity: identity.to_string(),
            duration: Duration::from_secs(duration.as_secs_f64().ceil().max(1.0) as u64),
            member: Arc::new(Mutex::new(None)),
        }
    }

    fn period(&self) -> Duration {
        self.duration / 3
    }

    fn seconds(&self) -> i32 {
        i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX)
    }

    /// How long after a renewal that started at `started` this replica may rely on it.
    fn claim_until(&self, started: Instant) -> Instant {
        started + self.duration - self.duration / 5
    }

    /// Creates or renews this replica's member lease. Plain create/replace (no patch), so
    /// the RBAC it needs is the same as for the cluster leases.
    async fn renew_member(&self, now: Timestamp) -> Result<(), kube::Error> {
        let name = object_name("keelson-member-", &self.identity);
        // The last written lease carries the resourceVersion to replace; read it again
        // only when someone else changed it.
        let cached = lock(&self.member).clone();
        let mut current = match cached {
            Some(lease) => Some(lease),
            None => self.api.get_opt(&name).await?,
        };
        for _ in 0..2 {
            let written = match current.take() {
                None => {
                    let lease = Lease {
                        metadata: ObjectMeta {
                            name: Some(name.clone()),
                            labels: Some(labels("member")),
                            ..ObjectMeta::default()
                        },
                        spec: Some(self.member_spec(now)),
                    };
                    self.api.create(&PostParams::default(), &lease).await
                }
                Some(mut lease) => {
                    lease.spec = Some(self.member_spec(now));
                    self.api
                        .replace(&name, &PostParams::default(), &lease)
                        .await
                }
            };
            match written {
                Ok(lease) => {
                    *lock(&self.member) = Some(lease);
                    return Ok(());
                }
                Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                    *lock(&self.member) = None;
                    current = self.api.get_opt(&name).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(kube::Error::Api(Box::new(
            kube::core::Status::failure(
                &format!(
                    "lease {name} keeps changing: is another replica using identity {:?}?",
                    self.identity
                ),
                "Conflict",
            )
            .with_code(409),
        )))
    }

    fn member_spec(&self, now: Timestamp) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.seconds()),
            renew_time: Some(MicroTime(now)),
            ..LeaseSpec::default()
        }
    }

    async fn list(&self) -> Result<(Vec<Lease>, Vec<Listed>), kube::Error> {
        let all = self
            .api
            .list(&ListParams::default().labels(KIND_LABEL))
            .await?;
        let mut members = Vec::new();
        let mut clusters = Vec::new();
        for lease in all.items {
            let kind = lease
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(KIND_LABEL))
                .map(String::as_str);
            let cluster = lease
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CLUSTER_ANNOTATION))
                .cloned();
            match (kind, cluster) {
                (Some("member"), _) => members.push(lease),
                (Some("cluster"), Some(cluster)) => clusters.push(Listed { cluster, lease }),
                _ => {}
            }
        }
        Ok((members, clusters))
    }

    /// One round: announce this member, work out the assignment, acquire or renew the
    /// leases of the clusters assigned here, release the others.
    async fn tick(&self, state: &State, started: Instant) -> Result<(), kube::Error> {
        // One timestamp for every lease written this round, so that this replica's
        // member and cluster leases expire together in the eyes of the others.
        let now = Timestamp::now();
        self.renew_member(now).await?;
        let (members, cluster_leases) = self.list().await?;
        let mut live: Vec<String> = members
            .iter()
            .filter(|l| !expired(l, now, 0))
            .filter_map(|l| l.spec.as_ref()?.holder_identity.clone())
            .collect();
        live.push(self.identity.clone());
        live.sort();
        live.dedup();

        let known = state.clusters.borrow().clone();
        let mine: BTreeSet<String> = known
            .iter()
            .filter(|c| rendezvous(&live, c) == Some(&self.identity))
            .cloned()
            .collect();
        let mut existing: BTreeMap<&str, &Lease> = cluster_leases
            .iter()
            .map(|l| (l.cluster.as_str(), &l.lease))
            .collect();

        // Release first: the new owners are waiting for these.
        let mut releases = Vec::new();
        for listed in &cluster_leases {
            if holder(&listed.lease) == Some(&self.identity) && !mine.contains(&listed.cluster) {
                lock(&state.held).remove(&listed.cluster);
                releases.push(&listed.lease);
            }
        }
        lock(&state.held).retain(|c, _| mine.contains(c));
        state.publish();
        for lease in releases {
            self.delete(lease).await?;
        }

        let mut planned: Vec<(String, Write)> = Vec::new();
        for cluster in &mine {
            let write = match existing.remove(cluster.as_str()) {
                None => Write::Create,
                Some(l) if holder(l) == Some(&self.identity) => Write::Renew(l.clone()),
                Some(l) if holder(l).is_none() || expired(l, now, 0) => Write::TakeOver(l.clone()),
                Some(_) => {
                    // Another live holder: wait for it to release or expire.
                    lock(&state.held).remove(cluster.as_str());
                    continue;
                }
            };
            planned.push((cluster.clone(), write));
        }
        let results: Vec<(String, Result<(), kube::Error>)> =
            futures::stream::iter(planned.into_iter().map(|(cluster, write)| async move {
                let result = self.write(&cluster, write, now).await;
                (cluster, result)
            }))
            .buffer_unordered(CONCURRENT_WRITES)
            .collect()
            .await;
        let mut first_error = None;
        for (cluster, result) in results {
            match result {
                Ok(()) => {
                    lock(&state.held).insert(cluster.clone(), self.claim_until(started));
                }
                Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                    // Someone else wrote it first: not ours this round.
                    lock(&state.held).remove(cluster.as_str());
                }
                Err(e) => {
                    // Keep the earlier claim: it runs out on its own.
                    first_error.get_or_insert(e);
                }
            }
        }

        self.forget(&members, existing.values().copied(), &known, now)
            .await;
        first_error.map_or(Ok(()), Err)
    }

    async fn write(&self, cluster: &str, write: Write, now: Timestamp) -> Result<(), kube::Error> {
        let renew = |lease: &Lease, acquire: bool| {
            let mut lease = lease.clone();
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if acquire {
                spec.holder_identity = Some(self.identity.clone());
                spec.acquire_time = Some(MicroTime(now));
                spec.lease_transitions =
                    Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
            }
            spec.lease_duration_seconds = Some(self.seconds());
            spec.renew_time = Some(MicroTime(now));
            lease
        };
        match write {
            Write::Create => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(object_name("keelson-cluster-", cluster)),
                        labels: Some(labels("cluster")),
                        annotations: Some(BTreeMap::from([(
                            CLUSTER_ANNOTATION.to_string(),
                            cluster.to_string(),
                        )])),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(self.seconds()),
                        acquire_time: Some(MicroTime(now)),
                        renew_time: Some(MicroTime(now)),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                self.api.create(&PostParams::default(), &lease).await?;
            }
            // The listed resourceVersion rides along: a concurrent writer makes this a 409.
            Write::Renew(lease) => self.replace(&renew(&lease, false)).await?,
            Write::TakeOver(lease) => {
                tracing::info!(cluster, identity = %self.identity, previous = ?holder(&lease), "taking over cluster lease");
                self.replace(&renew(&lease, true)).await?
            }
        }
        Ok(())
    }

    async fn replace(&self, lease: &Lease) -> Result<(), kube::Error> {
        let name = lease.metadata.name.clone().unwrap_or_default();
        self.api
            .replace(&name, &PostParams::default(), lease)
            .await?;
        Ok(())
    }

    /// Deletes a lease unless it changed since listed.
    async fn delete(&self, lease: &Lease) -> Result<(), kube::Error> {
        let name = lease.metadata.name.clone().unwrap_or_default();
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: lease.metadata.resource_version.clone(),
                uid: lease.metadata.uid.clone(),
            }),
            ..DeleteParams::default()
        };
        match self.api.delete(&name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes the leases of members long dead and of clusters long unheld and no longer
    /// configured, so that a Deployment's changing pod names do not pile up leases.
    async fn forget<'a>(
        &self,
        members: &'a [Lease],
        unassigned: impl Iterator<Item = &'a Lease>,
        known: &BTreeSet<String>,
        now: Timestamp,
    ) {
        let stale_members = members.iter().filter(|l| expired(l, now, FORGET_AFTER));
        let stale_clusters = unassigned.filter(|l| {
            let cluster = l
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CLUSTER_ANNOTATION));
            cluster.is_some_and(|c| !known.contains(c)) && expired(l, now, FORGET_AFTER)
        });
        for lease in stale_members.chain(stale_clusters) {
            if let Err(e) = self.delete(lease).await {
                tracing::debug!("deleting a stale lease: {e}");
            }
        }
    }

    /// Deletes this member's lease and every cluster lease it holds.
    async fn release_all(&self) -> Result<(), kube::Error> {
        let (members, clusters) = self.list().await?;
        let own = clusters
            .iter()
            .map(|l| &l.lease)
            .chain(members.iter())
            .filter(|l| holder(l) == Some(&self.identity));
        for lease in own {
            self.delete(lease).await?;
        }
        Ok(())
    }
}

/// What to do with a cluster's lease this round.
enum Write {
    Create,
    Renew(Lease),
    TakeOver(Lease),
}

fn labels(kind: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (KIND_LABEL.to_string(), kind.to_string()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "keelson".to_string(),
        ),
    ])
}

fn holder(lease: &Lease) -> Option<&String> {
    lease
        .spec
        .as_ref()?
        .holder_identity
        .as_ref()
        .filter(|h| !h.is_empty())
}

/// True when the lease's last renewal is more than `1 + extra` lease durations old.
fn expired(lease: &Lease, now: Timestamp, extra: u32) -> bool {
    let Some(spec) = &lease.spec else {
        return true;
    };
    let Some(MicroTime(renewed)) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(0).max(0));
    let lasts = SignedDuration::from_secs(seconds.saturating_mul(1 + i64::from(extra)));
    renewed.checked_add(lasts).is_ok_and(|end| end < now)
}

/// The member a cluster belongs to: the highest hash of (member, cluster). SHA-256 keeps it
/// the same across replicas built by different compilers.
pub fn rendezvous<'a>(members: &'a [String], cluster: &str) -> Option<&'a String> {
    members.iter().max_by_key(|member| {
        let mut hasher = Sha256::new();
        hasher.update(member.as_bytes());
        hasher.update([0]);
        hasher.update(cluster.as_bytes());
        let digest = hasher.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(first), member.as_str())
    })
}

/// `prefix` + `name` when that is a valid object name, else a sanitised name with a hash
/// suffix so that distinct names stay distinct.
fn object_name(prefix: &str, name: &str) -> String {
    let plain = format!("{prefix}{name}");
    if plain.len() <= 253 && is_dns_subdomain(&plain) {
        return plain;
    }
    let cleaned: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(200)
        .collect();
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{}-{hex}", cleaned.trim_matches('-'))
}

fn is_dns_subdomain(name: &str) -> bool {
    name.split('.').all(is_dns_label_part)
}

fn is_dns_label(name: &str) -> bool {
    name.len() <= 63 && is_dns_label_part(name)
}

fn is_dns_label_part(part: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    !part.is_empty() && part.chars().all(ok_char) && !part.starts_with('-') && !part.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_moves_only_the_share_of_a_member_that_leaves() {
        let clusters: Vec<String> = (0..200).map(|i| format!("cluster-{i}")).collect();
        let three: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let two: Vec<String> = ["a", "c"].map(String::from).to_vec();
        let mut counts = BTreeMap::new();
        for c in &clusters {
            let before = rendezvous(&three, c).unwrap();
            let after = rendezvous(&two, c).unwrap();
            *counts.entry(before.clone()).or_insert(0) += 1;
            if before != "b" {
                assert_eq!(before, after, "{c} moved although its member stayed");
            }
        }
        // A fair share each (200/3 ≈ 67).
        for (member, n) in counts {
            assert!((40..=95).contains(&n), "{member} got {n}");
        }
        assert_eq!(rendezvous(&[], "x"), None);
    }

    #[test]
    fn object_names_are_valid_and_distinct() {
        assert_eq!(
            object_name("keelson-cluster-", "prod"),
            "keelson-cluster-prod"
        );
        let a = object_name("keelson-cluster-", "Prod_EU");
        let b = object_name("keelson-cluster-", "prod-eu");
        assert_ne!(a, b);
        assert!(is_dns_subdomain(&a), "{a}");
        let long = object_name("keelson-member-", &"x".repeat(300));
        assert!(long.len() <= 253 && is_dns_subdomain(&long), "{long}");
    }

    #[test]
    fn settings_validate_and_default() {
        let s: LeaseSettings = crate::yaml::from_str("inCluster: true\n").unwrap();
        s.validate("leases").unwrap();
        assert_eq!(s.namespace, "keelson-system");
        assert_eq!(s.duration(), Duration::from_secs(15));
        let s: LeaseSettings =
            crate::yaml::from_str("inCluster: true\nidentity: keelson-0\n").unwrap();
        assert_eq!(s.identity().as_deref(), Some("keelson-0"));
        for (yaml, field) in [
            ("namespace: x\n", "leases.inCluster"),
            (
                "inCluster: true\nkubeconfig: {context: a}\n",
                "leases.inCluster",
            ),
            ("inCluster: true\nduration: 1s\n", "leases.duration"),
            ("inCluster: true\nnamespace: Keelson\n", "leases.namespace"),
        ] {
            let s: LeaseSettings = crate::yaml::from_str(yaml).unwrap();
            assert_eq!(s.validate("leases").unwrap_err().0, field, "{yaml}");
        }
        assert!(crate::yaml::from_str::<LeaseSettings>("inCluster: true\nttl: 5s\n").is_err());
        let e = crate::yaml::from_str::<LeaseSettings>("inCluster: true\nduration: soon\n");
        assert!(e.unwrap_err().to_string().starts_with("duration: "));
    }

    #[test]
    fn expiry() {
        let now = Timestamp::now();
        let lease = |secs_ago: i64, duration: i32| Lease {
            spec: Some(LeaseSpec {
                renew_time: Some(MicroTime(now - SignedDuration::from_secs(secs_ago))),
                lease_duration_seconds: Some(duration),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        };
        assert!(!expired(&lease(2, 3), now, 0));
        assert!(expired(&lease(4, 3), now, 0));
        assert!(!expired(&lease(4, 3), now, 10));
        assert!(expired(&lease(40, 3), now, 10));
        assert!(expired(&Lease::default(), now, 0));
    }

    #[tokio::test]
    async fn a_single_replica_owns_everything() {
        let shard = Shard::single();
        let mut changed = shard.changed();
        shard.set_clusters(BTreeSet::from(["a".to_string(), "b".to_string()]));
        assert!(shard.owns("a") && shard.owns("anything"));
        assert_eq!(shard.owned().len(), 2);
        changed.changed().await.unwrap();
        assert_eq!(changed.borrow().len(), 2);
        shard.stop().await;
    }
}
