//! Scale-out with Leases against a real API server: one replica owns every cluster, two
//! split them without overlap, a crashed replica's clusters move within a lease duration
//! plus a renew period, and a graceful stop hands them over at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use keelson::serve::lease::{Shard, rendezvous};
use keelson_e2e::ControlPlane;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};

/// Short leases keep the test quick: renewed every second.
const DURATION: Duration = Duration::from_secs(3);
const PERIOD: Duration = Duration::from_secs(1);

async fn client() -> Client {
    let file = Kubeconfig::read_from(ControlPlane::shared().kubeconfig()).unwrap();
    let options = KubeConfigOptions {
        context: Some("e2e-1".into()),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(file, &options)
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// A fresh namespace for one test's leases, deleted when dropped.
struct TestNamespace {
    client: Client,
    name: String,
}

impl TestNamespace {
    async fn new(prefix: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("{prefix}-{:x}", nanos % 0xffffff);
        let client = client().await;
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name}
        }))
        .unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        TestNamespace { client, name }
    }

    async fn start(&self, identity: &str) -> Shard {
        self.start_for(identity, DURATION).await
    }

    async fn start_for(&self, identity: &str, duration: Duration) -> Shard {
        let shard = Shard::start(self.client.clone(), &self.name, identity, duration)
            .await
            .unwrap();
        shard.set_clusters(clusters());
        shard
    }

    async fn leases(&self) -> Vec<Lease> {
        Api::<Lease>::namespaced(self.client.clone(), &self.name)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    }

    async fn delete(self) {
        // No controller manager runs: the namespace stays Terminating, which is harmless.
        let _ = Api::<Namespace>::all(self.client.clone())
            .delete(&self.name, &DeleteParams::default())
            .await;
    }
}

fn clusters() -> BTreeSet<String> {
    // Names rendezvous hashing splits 2/2 between keelson-a and keelson-b.
    ["one", "two", "three", "four"]
        .into_iter()
        .map(String::from)
        .collect()
}

/// Waits until `done` holds, checking every 50 ms; returns how long it took.
async fn until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

fn assert_disjoint(a: &Shard, b: &Shard) {
    for c in clusters() {
        assert!(!(a.owns(&c) && b.owns(&c)), "{c} owned by both replicas");
    }
}

#[tokio::test]
async fn one_replica_owns_every_cluster() {
    let ns = TestNamespace::new("lease-one").await;
    let shard = ns.start("keelson-a").await;
    let mut changed = shard.changed();
    until(DURATION, "one replica owns all", || {
        shard.owned() == clusters()
    })
    .await;
    assert!(clusters().iter().all(|c| shard.owns(c)));
    assert!(!shard.owns("unknown"));
    // The engine hears about it.
    tokio::time::timeout(DURATION, changed.wait_for(|owned| *owned == clusters()))
        .await
        .unwrap()
        .unwrap();
    // The leases say so too: a member lease and one lease per cluster, all held by it.
    let leases = ns.leases().await;
    assert_eq!(leases.len(), 5, "{leases:?}");
    for lease in &leases {
        let spec = lease.spec.as_ref().unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("keelson-a"));
        assert_eq!(spec.lease_duration_seconds, Some(3));
    }
    // A cluster the engine forgets is released.
    let mut fewer = clusters();
    fewer.remove("four");
    shard.set_clusters(fewer.clone());
    until(DURATION, "released a forgotten cluster", || {
        shard.owned() == fewer
    })
    .await;
    shard.stop().await;
    assert!(ns.leases().await.is_empty(), "stop releases every lease");
    ns.delete().await;
}

#[tokio::test]
async fn two_replicas_split_the_clusters_and_a_crashed_ones_move() {
    let ns = TestNamespace::new("lease-two").await;
    let a = ns.start("keelson-a").await;
    until(DURATION, "a owns all", || a.owned() == clusters()).await;
    let b = ns.start("keelson-b").await;

    // The assignment settles on the rendezvous split, never owned twice on the way.
    let members = vec!["keelson-a".to_string(), "keelson-b".to_string()];
    let expect_a: BTreeSet<String> = clusters()
        .into_iter()
        .filter(|c| rendezvous(&members, c).unwrap() == "keelson-a")
        .collect();
    let expect_b: BTreeSet<String> = clusters().difference(&expect_a).cloned().collect();
    assert!(
        !expect_a.is_empty() && !expect_b.is_empty(),
        "pick cluster names that split: {expect_a:?}"
    );
    until(3 * DURATION, "the split settles", || {
        assert_disjoint(&a, &b);
        a.owned() == expect_a && b.owned() == expect_b
    })
    .await;
    // And stays: full coverage, no overlap, over several renew periods.
    let watch_until = Instant::now() + 4 * PERIOD;
    while Instant::now() < watch_until {
        assert_disjoint(&a, &b);
        let mut all = a.owned();
        all.extend(b.owned());
        assert_eq!(all, clusters());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A crash: a stops renewing and releases nothing. Its clusters reach b within a lease
    // duration and a renew period (plus request time).
    drop(a);
    let moved = until(
        DURATION + PERIOD + Duration::from_secs(1),
        "b takes over",
        || b.owned() == clusters(),
    )
    .await;
    eprintln!("clusters moved {moved:?} after the crash");
    // The dead member's lease is still there (nobody released it), but b holds them all.
    let holders: BTreeSet<String> = ns
        .leases()
        .await
        .iter()
        .filter(|l| {
            l.metadata
                .name
                .as_deref()
                .unwrap()
                .starts_with("keelson-cluster-")
        })
        .filter_map(|l| l.spec.as_ref()?.holder_identity.clone())
        .collect();
    assert_eq!(holders, BTreeSet::from(["keelson-b".to_string()]));
    b.stop().await;
    ns.delete().await;
}

#[tokio::test]
async fn a_graceful_stop_hands_over_at_once() {
    // Longer leases here, so that a hand-over within one renew period cannot be mistaken
    // for one after expiry.
    let (duration, period) = (Duration::from_secs(9), Duration::from_secs(3));
    let ns = TestNamespace::new("lease-stop").await;
    let a = ns.start_for("keelson-a", duration).await;
    until(duration, "a owns all", || a.owned() == clusters()).await;
    let b = ns.start_for("keelson-b", duration).await;
    until(3 * duration, "the split settles", || {
        assert_disjoint(&a, &b);
        let mut all = a.owned();
        all.extend(b.owned());
        all == clusters() && !a.owned().is_empty() && !b.owned().is_empty()
    })
    .await;
    let a_had = a.owned();
    a.stop().await;
    // No waiting for expiry: b's next renewal sees the leases gone.
    let moved = until(period + Duration::from_millis(1500), "b takes over", || {
        b.owned() == clusters()
    })
    .await;
    eprintln!("{a_had:?} moved {moved:?} after a graceful stop");
    b.stop().await;
    ns.delete().await;
}

#[tokio::test]
async fn a_live_holder_is_never_displaced() {
    // A lease held by a replica that is not a member (another keelson version, say) but
    // renews: nobody takes it while it is renewed.
    let ns = TestNamespace::new("lease-held").await;
    let shard = ns.start("keelson-a").await;
    until(DURATION, "owns all", || shard.owned() == clusters()).await;
    // Another holder takes one lease over (without waiting for expiry, as no keelson
    // would) and keeps renewing it.
    let api = Api::<Lease>::namespaced(ns.client.clone(), &ns.name);
    let name = "keelson-cluster-four";
    let renew_as_intruder = || async {
        loop {
            let mut lease = api.get(name).await.unwrap();
            let spec = lease.spec.as_mut().unwrap();
            spec.holder_identity = Some("intruder".into());
            spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                k8s_openapi::jiff::Timestamp::now(),
            ));
            match api.replace(name, &PostParams::default(), &lease).await {
                Ok(_) => return,
                // The shard renewed in between: try again.
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => panic!("{e}"),
            }
        }
    };
    renew_as_intruder().await;
    until(PERIOD + Duration::from_secs(1), "the shard lets go", || {
        !shard.owns("four")
    })
    .await;
    let hold_until = Instant::now() + 2 * DURATION;
    while Instant::now() < hold_until {
        renew_as_intruder().await;
        assert!(!shard.owns("four"), "took a lease another holder renews");
        assert!(shard.owns("one"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Once the intruder stops renewing, the lease expires and comes back.
    until(
        DURATION + 2 * PERIOD,
        "takes the expired lease back",
        || shard.owns("four"),
    )
    .await;
    shard.stop().await;
    ns.delete().await;
}
