//! `keelson serve` under faults: the real binary, real clusters, a real git daemon, and
//! things broken on purpose. Each test says what was done and asserts what must still hold.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::Value;
use support::serve::*;
use support::{BlackHole, GitDaemon};

/// A `/proc/<pid>/status` figure in KiB (`VmRSS`, `VmHWM`: the peak resident set).
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn repositories(serve: &Serve) -> Vec<Value> {
    let (code, body) = serve.get("/api/v1/repositories");
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["repositories"].as_array().unwrap().clone()
}

fn values(rt: &tokio::runtime::Runtime, c: &kube::Client, ns: &str) -> Vec<String> {
    config_maps(rt, c, ns).into_iter().map(|(_, v)| v).collect()
}

#[test]
fn slow_clients_and_unsigned_uploads_neither_stop_signed_pushes_nor_grow_memory() {
    let rt = runtime();
    let one = client(&rt, "e2e-1");
    let repo = Repo::new("load");
    repo.overlay("a", 0..3, "1");
    repo.overlay("b", 0..1, "1");
    let first = repo.push("first");
    let state = tempfile::tempdir().unwrap();
    let mut options = EngineOptions::new();
    // The operator allows GitHub's largest payloads: the budget, not the limit, protects.
    options.extra = "limits: {maxBodyBytes: 26214400}\n".into();
    let serve = Serve::start(&repo, state.path(), &options);
    let ns = repo.ns("a");
    wait_for("the first commit", Duration::from_secs(60), || {
        values(&rt, &one, &ns) == ["1", "1", "1"]
    });
    let pid = serve.child.id();
    let settled = proc_kib(pid, "VmRSS");

    let stop = Arc::new(AtomicBool::new(false));
    let mut attackers = Vec::new();
    // Slowloris: 200 connections, each sending a head a byte at a time, reconnecting when cut.
    for _ in 0..200 {
        let (stop, addr) = (stop.clone(), serve.addr);
        attackers.push(std::thread::spawn(move || {
            let head = b"POST /hooks/github HTTP/1.1\r\nHost: t\r\nX-A: ";
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut s) = TcpStream::connect(addr) else {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                };
                for b in head.iter().cycle() {
                    if stop.load(Ordering::Relaxed) || s.write_all(&[*b]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }));
    }
    // 30 unsigned uploads announcing 24 MB each, sent slowly and never finished.
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..30 {
        let (stop, addr, refused) = (stop.clone(), serve.addr, refused.clone());
        attackers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut s) = TcpStream::connect(addr) else {
                    continue;
                };
                let head = format!(
                    "POST /hooks/github HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: x\r\n\r\n",
                    24_000_000
                );
                if s.write_all(head.as_bytes()).is_err() {
                    continue;
                }
                let chunk = vec![b' '; 1 << 20];
                s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
                for _ in 0..23 {
                    if stop.load(Ordering::Relaxed) || s.write_all(&chunk).is_err() {
                        break;
                    }
                    let mut b = [0u8; 16];
                    if matches!(s.read(&mut b), Ok(n) if n > 0) {
                        refused.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(100));
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(3));
    // Meanwhile, signed pushes are taken and deployed.
    let mut before = first;
    for round in 2..=4 {
        repo.overlay("a", 0..3, &round.to_string());
        let after = repo.push(&format!("round {round}"));
        let code = serve.deliver_push(&repo, &before, &after);
        assert_eq!(code, 202, "a signed push under load");
        let want = vec![round.to_string(); 3];
        wait_for("the pushed commit", Duration::from_secs(60), || {
            values(&rt, &one, &ns) == want
        });
        before = after;
    }
    let (code, _) = serve.get("/readyz");
    assert_eq!(code, 200);
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        a.join().unwrap();
    }
    let peak = proc_kib(pid, "VmHWM");
    eprintln!(
        "resident: {} MiB settled, {} MiB peak under load; {} uploads refused early",
        settled / 1024,
        peak / 1024,
        refused.load(Ordering::Relaxed)
    );
    assert!(peak < 150 * 1024, "peak RSS {} MiB", peak / 1024);
    assert!(refused.load(Ordering::Relaxed) > 0);
    let busy = serve.metric(
        "keelson_webhook_deliveries_total{host=\"github\",event=\"unknown\",outcome=\"busy\"}",
    );
    assert!(busy > 0.0, "uploads past the budget are counted as busy");
}

#[test]
fn a_git_server_that_accepts_and_never_answers_then_answers_again_is_recovered_from() {
    let rt = runtime();
    let one = client(&rt, "e2e-1");
    let mut repo = Repo::new("hung");
    repo.overlay("a", 0..2, "1");
    repo.overlay("b", 0..1, "1");
    let first = repo.push("first");
    // The daemon's port now accepts connections and never answers.
    repo.daemon.stop();
    let port = repo.daemon.port;
    let hole = BlackHole::start_on(port);
    let state = tempfile::tempdir().unwrap();
    let mut options = EngineOptions::new();
    options.extra = "limits: {fetchTimeout: 2s}\n".into();
    options.repository = "  timeout: 4s\n".into();
    let serve = Serve::start(&repo, state.path(), &options);
    wait_for(
        "the hung fetch to be reported",
        Duration::from_secs(30),
        || repositories(&serve)[0]["fetchError"].is_string(),
    );
    let (code, _) = serve.get("/readyz");
    assert_eq!(
        code, 200,
        "one repository's trouble does not make the engine unready"
    );
    let up = format!(
        "keelson_repository_up{{repository=\"{}\",ref=\"main\"}}",
        repo.url()
    );
    assert_eq!(serve.metric(&up), 0.0);
    // The server answers again, on the same address: the next push is fetched and deployed.
    drop(hole);
    repo.daemon = GitDaemon::start_on(repo._served.base(), port);
    let recovered = Instant::now();
    let ns = repo.ns("a");
    wait_for(
        "recovery without a restart",
        Duration::from_secs(30),
        || {
            let _ = serve.deliver_push(&repo, "0000000000000000000000000000000000000000", &first);
            std::thread::sleep(Duration::from_millis(400));
            values(&rt, &one, &ns) == ["1", "1"]
        },
    );
    eprintln!(
        "recovered {:?} after the server came back",
        recovered.elapsed()
    );
    let health = &repositories(&serve)[0];
    assert_eq!(health["fetchedCommit"], first.as_str(), "{health}");
    assert!(health["fetchError"].is_null(), "{health}");
    assert_eq!(serve.metric(&up), 1.0);
    assert!(
        !serve.log().contains("still running (or hung)"),
        "{}",
        serve.log()
    );
}

#[test]
fn a_broken_keelson_yaml_in_one_repository_leaves_the_other_deploying() {
    let rt = runtime();
    let one = client(&rt, "e2e-1");
    let good = Repo::new("good");
    good.overlay("a", 0..1, "1");
    good.overlay("b", 0..1, "1");
    let good_first = good.push("first");
    let bad = Repo::new("bad");
    bad.overlay("a", 0..1, "1");
    bad.overlay("b", 0..1, "1");
    let bad_first = bad.push("first");
    let state = tempfile::tempdir().unwrap();
    let mut options = EngineOptions::new();
    options.repositories = format!(
        "- url: {}\n  ref: main\n  github: octo/{}\n",
        bad.url(),
        bad.id
    );
    let serve = Serve::start(&good, state.path(), &options);
    let (good_ns, bad_ns) = (good.ns("a"), bad.ns("a"));
    wait_for("both repositories", Duration::from_secs(60), || {
        values(&rt, &one, &good_ns) == ["1"] && values(&rt, &one, &bad_ns) == ["1"]
    });
    // A broken keelson.yaml reaches one repository; the other changes too.
    with_sync(&bad, &["a"], "{timeout: soon}");
    bad.overlay("a", 0..1, "2");
    let bad_second = bad.push("broken");
    assert_eq!(serve.deliver_push(&bad, &bad_first, &bad_second), 202);
    good.overlay("a", 0..1, "2");
    let good_second = good.push("second");
    assert_eq!(serve.deliver_push(&good, &good_first, &good_second), 202);
    wait_for(
        "the good repository's push",
        Duration::from_secs(60),
        || values(&rt, &one, &good_ns) == ["2"],
    );
    wait_for(
        "the bad commit to be reported",
        Duration::from_secs(30),
        || repositories(&serve)[1]["commitError"].is_string(),
    );
    let (code, _) = serve.get("/readyz");
    assert_eq!(code, 200);
    let health = &repositories(&serve)[1];
    let error = health["commitError"].as_str().unwrap();
    assert!(
        error.contains("keelson.yaml") && error.contains("targets[0].sync.timeout"),
        "{error}"
    );
    assert_eq!(health["fetchedCommit"], bad_second.as_str());
    assert_eq!(health["servingCommit"], bad_first.as_str());
    assert_eq!(
        values(&rt, &one, &bad_ns),
        ["1"],
        "nothing of the bad commit applied"
    );
    let up = |r: &Repo| {
        format!(
            "keelson_repository_up{{repository=\"{}\",ref=\"main\"}}",
            r.url()
        )
    };
    assert_eq!(serve.metric(&up(&good)), 1.0);
    assert_eq!(serve.metric(&up(&bad)), 0.0);
}

#[test]
fn sigterm_during_a_sync_of_300_objects_exits_0_and_a_restart_converges_keeping_uids() {
    let rt = runtime();
    let one = client(&rt, "e2e-1");
    let repo = Repo::new("term");
    repo.overlay("a", 0..150, "1");
    repo.overlay("b", 0..150, "1");
    let first = repo.push("first");
    let state = tempfile::tempdir().unwrap();
    let mut options = EngineOptions::new();
    options.extra = "limits: {shutdownGrace: 20s}\n".into();
    let mut serve = Serve::start(&repo, state.path(), &options);
    let (ns_a, ns_b) = (repo.ns("a"), repo.ns("b"));
    wait_for("the first commit", Duration::from_secs(120), || {
        values(&rt, &one, &ns_a).len() == 150 && values(&rt, &one, &ns_b).len() == 150
    });
    let kept_a = uids(&rt, &one, &ns_a);
    // The second commit changes all 300 objects; SIGTERM comes while they are applied.
    repo.overlay("a", 0..150, "2");
    repo.overlay("b", 0..150, "2");
    let second = repo.push("second");
    assert_eq!(serve.deliver_push(&repo, &first, &second), 202);
    wait_for("the sync to start", Duration::from_secs(30), || {
        values(&rt, &one, &ns_a).contains(&"2".to_string())
            || values(&rt, &one, &ns_b).contains(&"2".to_string())
    });
    let term = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &serve.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = loop {
        if let Some(s) = serve.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            term.elapsed() < Duration::from_secs(30),
            "still running 30 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("exited {exit:?} {:?} after SIGTERM", term.elapsed());
    assert!(exit.success(), "{exit:?}\n{}", serve.log());
    drop(serve);
    let restarted = Serve::start(&repo, state.path(), &options);
    wait_for(
        "convergence after the restart",
        Duration::from_secs(120),
        || {
            values(&rt, &one, &ns_a) == vec!["2".to_string(); 150]
                && values(&rt, &one, &ns_b) == vec!["2".to_string(); 150]
        },
    );
    assert_eq!(
        uids(&rt, &one, &ns_a),
        kept_a,
        "no kept object was deleted and created again"
    );
    wait_for("the commit recorded", Duration::from_secs(30), || {
        synced_commit(&rt, &one, &repo.target("a")).as_deref() == Some(second.as_str())
    });
    drop(restarted);
}

/// A Deployment that never becomes available (the clusters have no nodes): a sync that
/// waits for health waits for as long as it is allowed.
fn never_ready(ns: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: stuck\n  namespace: {ns}\n\
         spec:\n  selector: {{matchLabels: {{app: stuck}}}}\n  template:\n    metadata: {{labels: {{app: stuck}}}}\n\
         \x20   spec: {{containers: [{{name: c, image: registry.invalid/none:1}}]}}\n"
    )
}

/// Adds the never-ready Deployment to overlay `t`.
fn with_never_ready(repo: &Repo, t: &str) {
    let path = format!("{t}/objects.yaml");
    let objects = std::fs::read_to_string(repo.work.dir.join(&path)).unwrap();
    repo.work.write(
        &path,
        &format!("{objects}---\n{}", never_ready(&repo.ns(t))),
    );
}

/// Rewrites the repository's keelson.yaml: `sync` for target `a` (and `b`).
fn with_sync(repo: &Repo, targets: &[&str], sync: &str) {
    let mut text = std::fs::read_to_string(repo.work.dir.join("keelson.yaml")).unwrap();
    for t in targets {
        text = text.replacen(
            &format!("path: {t}\n"),
            &format!("path: {t}\n  sync: {sync}\n"),
            1,
        );
    }
    repo.work.write("keelson.yaml", &text);
}

fn row<'a>(rows: &'a [Value], target: &str, cluster: &str) -> Option<&'a Value> {
    rows.iter()
        .find(|r| r["target"] == target && r["cluster"] == cluster)
}

#[test]
fn a_lease_taken_away_mid_sync_stops_the_old_owner_and_the_new_owners_commit_stands() {
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::api::{ListParams, Patch, PatchParams};
    let rt = runtime();
    let (one, two) = (client(&rt, "e2e-1"), client(&rt, "e2e-2"));
    let repo = Repo::new("fence");
    let leases = repo.ns("leases");
    let ns_api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(one.clone());
    rt.block_on(ns_api.create(
        &Default::default(),
        &serde_json::from_value(serde_json::json!({"metadata": {"name": leases}})).unwrap(),
    ))
    .unwrap();
    with_sync(&repo, &["a"], "{wait: true, timeout: 5m}");
    repo.overlay("a", 0..2, "1");
    with_never_ready(&repo, "a");
    repo.overlay("b", 0..1, "1");
    let c1 = repo.push("first");
    let state = tempfile::tempdir().unwrap();
    let mut options = EngineOptions::new();
    options.extra = format!(
        "leases: {{kubeconfig: {{context: e2e-1, path: {}}}, namespace: {leases}, duration: 3s}}\n",
        options.kubeconfig.display()
    );
    options.identity = Some("old-owner".into());
    let serve = Serve::start(&repo, state.path(), &options);
    let target = repo.target("a");
    wait_for(
        "target a waiting for health on one",
        Duration::from_secs(60),
        || {
            let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
                Api::namespaced(one.clone(), &repo.ns("a"));
            row(&serve.targets(), &target, "one").is_some_and(|r| r["phase"] == "syncing")
                && rt
                    .block_on(deployments.get_opt("stuck"))
                    .ok()
                    .flatten()
                    .is_some()
        },
    );
    // Waiting for health: the commit is not recorded until the objects are healthy.
    assert_eq!(synced_commit(&rt, &one, &target), None);
    // The test takes cluster one's Lease, as a new owner would.
    let lease_api: Api<Lease> = Api::namespaced(one.clone(), &leases);
    let lease =
        rt.block_on(lease_api.list(&ListParams::default().labels("keelson.dev/lease=cluster")))
            .unwrap()
            .items
            .into_iter()
            .find(|l| {
                l.metadata.annotations.as_ref().is_some_and(|a| {
                    a.get("keelson.dev/cluster").map(String::as_str) == Some("one")
                })
            })
            .expect("cluster one's lease");
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now(),
    );
    let taken = Instant::now();
    rt.block_on(lease_api.patch(
        lease.metadata.name.as_deref().unwrap(),
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {
            "holderIdentity": "new-owner", "leaseDurationSeconds": 600,
            "acquireTime": now, "renewTime": now}})),
    ))
    .unwrap();
    // The new owner records its own commit on the target's parent.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(one.clone(), "keelson-system");
    let parent = parents(&rt, &one, &target).remove(0).metadata.name.unwrap();
    rt.block_on(secrets.patch(
        &parent,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"annotations": {
            "keelson.dev/last-synced-commit": "new-owner-commit"}}})),
    ))
    .unwrap();
    // The old owner stops its wait at once, and says why.
    wait_for("the old owner to stop", Duration::from_secs(15), || {
        row(&serve.targets(), &target, "one").is_some_and(|r| r["reason"] == "fenced")
    });
    eprintln!("stopped {:?} after the lease was taken", taken.elapsed());
    let message = row(&serve.targets(), &target, "one").unwrap()["message"].clone();
    assert!(
        message.as_str().unwrap().contains("no longer holds"),
        "{message}"
    );
    // A later commit goes to cluster two, which it still owns, and nowhere on cluster one.
    // (Target a still waits on cluster two, so target b shows it.)
    repo.overlay("b", 0..1, "2");
    let c2 = repo.push("second");
    assert_eq!(serve.deliver_push(&repo, &c1, &c2), 202);
    let ns_b = repo.ns("b");
    wait_for(
        "cluster two to get the second commit",
        Duration::from_secs(60),
        || values(&rt, &two, &ns_b) == ["2"],
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        values(&rt, &one, &ns_b),
        ["1"],
        "nothing written to cluster one"
    );
    let b_one = row(&serve.targets(), &repo.target("b"), "one").cloned();
    assert_eq!(b_one.unwrap()["phase"], "elsewhere");
    assert_eq!(
        synced_commit(&rt, &one, &target).as_deref(),
        Some("new-owner-commit"),
        "the new owner's record stands"
    );
}

#[test]
fn the_operators_wait_cap_bounds_a_repositorys_timeout() {
    let rt = runtime();
    let repo = Repo::new("cap");
    with_sync(&repo, &["a"], "{wait: true, timeout: 1h}");
    repo.overlay("a", 0..1, "1");
    with_never_ready(&repo, "a");
    repo.overlay("b", 0..1, "1");
    repo.push("first");
    let state = tempfile::tempdir().unwrap();
    let mut options = EngineOptions::new();
    options.extra = "limits: {maxWait: 3s}\n".into();
    let serve = Serve::start(&repo, state.path(), &options);
    let target = repo.target("a");
    let started = Instant::now();
    wait_for("the capped wait to end", Duration::from_secs(60), || {
        row(&serve.targets(), &target, "one").is_some_and(|r| r["reason"] == "health")
    });
    let message = row(&serve.targets(), &target, "one").unwrap()["message"].clone();
    assert!(
        message.as_str().unwrap().contains("not healthy after 3s"),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(40));
    let _ = rt;
}

/// A control plane of the test's own (one cluster, `e2e-1`): these tests break it.
fn private_cluster() -> keelson_e2e::ControlPlane {
    keelson_e2e::ControlPlane::start(keelson_e2e::Options {
        clusters: 1,
        ..Default::default()
    })
    .unwrap()
}

/// Target `<id>-a` on the private cluster only, with `n` ConfigMaps of value `v`.
fn single_cluster_repo(prefix: &str, n: usize, v: &str) -> Repo {
    let repo = Repo::new(prefix);
    repo.work.write(
        "keelson.yaml",
        &format!(
            "clusters:\n- name: one\n  labels: {{all: \"yes\"}}\n\
             targets:\n- name: {}\n  path: a\n  clusterSelector: {{all: \"yes\"}}\n",
            repo.target("a")
        ),
    );
    repo.overlay("a", 0..n, v);
    repo
}

fn uids(rt: &tokio::runtime::Runtime, c: &kube::Client, ns: &str) -> Vec<(String, String)> {
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), ns);
    let mut v: Vec<(String, String)> = rt
        .block_on(api.list(&Default::default()))
        .unwrap()
        .items
        .into_iter()
        .map(|c| (c.metadata.name.unwrap(), c.metadata.uid.unwrap()))
        .filter(|(n, _)| n != "kube-root-ca.crt")
        .collect();
    v.sort();
    v
}

/// Syncs 300 objects, changes them all, breaks the cluster with `fault` once the second
/// sync is writing, and checks that the engine converges without recreating anything.
/// `fails`: the fault must make an attempt fail (a refused connection does; a stalled etcd
/// only holds requests until it answers again).
fn converges_through(
    prefix: &str,
    fails: bool,
    fault: impl FnOnce(&mut keelson_e2e::ControlPlane),
) {
    let mut cp = private_cluster();
    let rt = runtime();
    let c = rt.block_on(cp.cluster("e2e-1").unwrap().client()).unwrap();
    let repo = single_cluster_repo(prefix, 300, "1");
    let first = repo.push("first");
    let state = tempfile::tempdir().unwrap();
    let mut options = EngineOptions::new();
    options.kubeconfig = cp.kubeconfig().to_path_buf();
    let serve = Serve::start(&repo, state.path(), &options);
    let ns = repo.ns("a");
    wait_for("the first commit", Duration::from_secs(120), || {
        values(&rt, &c, &ns).len() == 300
    });
    let kept = uids(&rt, &c, &ns);
    repo.overlay("a", 0..300, "2");
    let second = repo.push("second");
    assert_eq!(serve.deliver_push(&repo, &first, &second), 202);
    wait_for("the second sync to write", Duration::from_secs(30), || {
        values(&rt, &c, &ns).iter().any(|v| v == "2")
    });
    let broken = Instant::now();
    fault(&mut cp);
    eprintln!("cluster back {:?} after the fault began", broken.elapsed());
    let c = rt.block_on(cp.cluster("e2e-1").unwrap().client()).unwrap();
    wait_for(
        "convergence after the fault",
        Duration::from_secs(120),
        || {
            values(&rt, &c, &ns) == vec!["2".to_string(); 300]
                && synced_commit(&rt, &c, &repo.target("a")).as_deref() == Some(second.as_str())
        },
    );
    eprintln!("converged {:?} after the fault began", broken.elapsed());
    assert_eq!(uids(&rt, &c, &ns), kept, "nothing pruned or recreated");
    let failures = serve.metric(&format!(
        "keelson_sync_results_total{{target=\"{}\",cluster=\"one\",outcome=\"failure\"}}",
        repo.target("a")
    ));
    eprintln!("failed attempts: {failures}");
    if fails {
        assert!(failures >= 1.0, "the fault hit a sync: {}", serve.log());
    }
    assert!(!serve.log().contains("panicked"), "{}", serve.log());
}

#[test]
fn the_api_server_killed_mid_apply_then_restarted_on_the_same_etcd_converges() {
    converges_through("apikill", true, |cp| {
        let cluster = cp.cluster_mut("e2e-1").unwrap();
        cluster.kill_apiserver().unwrap();
        std::thread::sleep(Duration::from_secs(3));
        runtime()
            .block_on(cluster.restart_apiserver(Duration::from_secs(90)))
            .unwrap();
    });
}

#[test]
fn etcd_stopped_for_20_s_mid_apply_converges() {
    converges_through("etcdstop", false, |cp| {
        let cluster = cp.cluster_mut("e2e-1").unwrap();
        cluster.pause_etcd().unwrap();
        std::thread::sleep(Duration::from_secs(20));
        cluster.resume_etcd().unwrap();
    });
}

/// Open file descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Pushes to 20 targets, one commit a second, for `KEELSON_SOAK_SECS` (default 120; the
/// figures in BENCHMARKS.md come from a 2-hour run). After a warm-up quarter, resident
/// memory and open descriptors stay within 10 % of where they were.
#[test]
fn a_soak_of_pushes_to_20_targets_keeps_memory_and_descriptors_flat() {
    let secs: u64 = std::env::var("KEELSON_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let rt = runtime();
    let one = client(&rt, "e2e-1");
    let repo = Repo::new("soak");
    let names: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
    let mut config = String::from(
        "clusters:\n- name: one\n  labels: {all: \"yes\"}\n\
         - name: two\n  labels: {all: \"yes\"}\ntargets:\n",
    );
    for n in &names {
        config.push_str(&format!(
            "- name: {}\n  path: {n}\n  clusterSelector: {{all: \"yes\"}}\n",
            repo.target(n)
        ));
        repo.overlay(n, 0..3, "0");
    }
    repo.work.write("keelson.yaml", &config);
    let mut before = repo.push("first");
    let state = tempfile::tempdir().unwrap();
    let serve = Serve::start(&repo, state.path(), &EngineOptions::new());
    let pid = serve.child.id();
    let last_ns = repo.ns(&names[19]);
    wait_for("the first commit", Duration::from_secs(120), || {
        values(&rt, &one, &last_ns) == ["0", "0", "0"]
    });
    let started = Instant::now();
    let split = |pid| {
        (
            proc_kib(pid, "RssAnon") / 1024,
            proc_kib(pid, "RssFile") / 1024,
        )
    };
    let split_before = split(pid);
    let (mut rss, mut fds) = (Vec::new(), Vec::new());
    let mut round = 0u64;
    let mut last_sample = Instant::now();
    while started.elapsed() < Duration::from_secs(secs) {
        round += 1;
        let n = &names[(round % 20) as usize];
        repo.overlay(n, 0..3, &round.to_string());
        let after = repo.push(&format!("round {round}"));
        assert_eq!(serve.deliver_push(&repo, &before, &after), 202);
        before = after;
        if last_sample.elapsed() >= Duration::from_secs(2) {
            rss.push(proc_kib(pid, "VmRSS"));
            fds.push(open_fds(pid) as u64);
            last_sample = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(700));
    }
    let n = &names[(round % 20) as usize];
    let ns = repo.ns(n);
    wait_for("the last push", Duration::from_secs(60), || {
        values(&rt, &one, &ns) == vec![round.to_string(); 3]
    });
    let split_after = split(pid);
    eprintln!(
        "soak: anonymous / file-backed resident MiB {split_before:?} at the start, {split_after:?} at the end"
    );
    let quarter = rss.len() / 4;
    assert!(quarter >= 2, "too few samples: {}", rss.len());
    let (rss_warm, rss_end) = (
        median(rss[quarter..2 * quarter].to_vec()),
        median(rss[rss.len() - quarter..].to_vec()),
    );
    let (fds_warm, fds_end) = (
        median(fds[quarter..2 * quarter].to_vec()),
        median(fds[fds.len() - quarter..].to_vec()),
    );
    eprintln!(
        "soak: {round} pushes in {:?}; RSS {} → {} MiB, open fds {fds_warm} → {fds_end} (medians after warm-up, at the end)",
        started.elapsed(),
        rss_warm / 1024,
        rss_end / 1024
    );
    assert!(rss_end * 10 <= rss_warm * 11, "RSS grew: {rss:?}");
    assert!(
        fds_end * 10 <= fds_warm * 11 + 10,
        "descriptors grew: {fds:?}"
    );
}
