//! `keelson serve` end to end: the real binary, a git server on loopback (`git daemon`),
//! two real clusters from the harness, and GitHub's real push payloads, signed.
//!
//! Each test has its own repository, targets and namespaces, so they share the clusters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use keelson_e2e::ControlPlane;
use kube::Api;
use support::serve::*;

#[test]
fn a_signed_push_deploys_to_both_clusters_prunes_and_resyncs_only_what_it_touches() {
    let rt = runtime();
    let (one, two) = (client(&rt, "e2e-1"), client(&rt, "e2e-2"));
    let repo = Repo::new("push");
    repo.overlay("a", 0..3, "1");
    repo.overlay("b", 0..2, "1");
    let c1 = repo.push("first");
    let state = tempfile::tempdir().unwrap();
    // Webhooks only: no poll schedule (the engine still fetches once at start).
    let serve = Serve::start(&repo, state.path(), &EngineOptions::new());
    wait_for(
        "the first commit on both clusters",
        Duration::from_secs(60),
        || {
            [&one, &two].iter().all(|c| {
                config_maps(&rt, c, &repo.ns("a")).len() == 3
                    && config_maps(&rt, c, &repo.ns("b")).len() == 2
            })
        },
    );
    wait_for(
        "the status API to show both targets synced",
        Duration::from_secs(10),
        || {
            let t = serve.targets();
            t.len() == 4
                && t.iter()
                    .all(|r| r["phase"] == "synced" && r["syncedCommit"] == c1.as_str())
        },
    );
    assert_eq!(serve.get("/readyz").0, 200);

    // A push removing cm-2 from overlay a: pruned on both clusters.
    repo.overlay("a", 0..2, "1");
    let c2 = repo.push("drop cm-2");
    assert_eq!(serve.deliver_push(&repo, &c1, &c2), 202);
    wait_for(
        "cm-2 pruned on both clusters",
        Duration::from_secs(30),
        || {
            [&one, &two]
                .iter()
                .all(|c| config_maps(&rt, c, &repo.ns("a")).len() == 2)
        },
    );
    for c in [&one, &two] {
        wait_for(
            "the parent to record the commit",
            Duration::from_secs(10),
            || synced_commit(&rt, c, &repo.target("a")).as_deref() == Some(c2.as_str()),
        );
    }

    // A push touching only overlay b: only target b syncs again (the metrics say so).
    let (a_before, b_before) = (
        serve.successes(&repo.target("a"), "one"),
        serve.successes(&repo.target("b"), "one"),
    );
    repo.overlay("b", 0..2, "2");
    let c3 = repo.push("b gets v=2");
    assert_eq!(serve.deliver_push(&repo, &c2, &c3), 202);
    wait_for(
        "overlay b's change on both clusters",
        Duration::from_secs(30),
        || {
            [&one, &two].iter().all(|c| {
                config_maps(&rt, c, &repo.ns("b"))
                    .iter()
                    .all(|(_, v)| v == "2")
            })
        },
    );
    wait_for("b's sync to be counted", Duration::from_secs(10), || {
        serve.successes(&repo.target("b"), "one") == b_before + 1.0
    });
    assert_eq!(
        serve.successes(&repo.target("a"), "one"),
        a_before,
        "target a was not touched"
    );
    assert!(serve.metric("keelson_triggers_total{source=\"webhook\"}") >= 2.0);
    // Target a's clusters still record c2: nothing was applied there.
    assert_eq!(
        synced_commit(&rt, &one, &repo.target("a")).as_deref(),
        Some(c2.as_str())
    );

    // A bad signature changes nothing.
    let (code, _) = serve.request(
        "POST /hooks/github HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 2\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: x\r\nX-Hub-Signature-256: sha256=00\r\n\r\n",
        b"{}",
    );
    assert_eq!(code, 401);
}

#[test]
fn polling_finds_commits_when_webhooks_are_silent() {
    let rt = runtime();
    let one = client(&rt, "e2e-1");
    let repo = Repo::new("poll");
    repo.overlay("a", 0..1, "1");
    repo.overlay("b", 0..1, "1");
    repo.push("first");
    let state = tempfile::tempdir().unwrap();
    let mut options = EngineOptions::new();
    options.poll = Some("*/1 * * * * *");
    let serve = Serve::start(&repo, state.path(), &options);
    wait_for("the first commit", Duration::from_secs(60), || {
        config_maps(&rt, &one, &repo.ns("a")).len() == 1
    });
    repo.overlay("a", 0..2, "1");
    let c2 = repo.push("cm-1, no webhook");
    wait_for(
        "the poll to pick the commit up",
        Duration::from_secs(30),
        || config_maps(&rt, &one, &repo.ns("a")).len() == 2,
    );
    wait_for("the record", Duration::from_secs(10), || {
        synced_commit(&rt, &one, &repo.target("a")).as_deref() == Some(c2.as_str())
    });
    assert!(serve.metric("keelson_triggers_total{source=\"poll\"}") >= 2.0);
}

#[test]
fn an_engine_killed_mid_sync_converges_after_a_restart() {
    let rt = runtime();
    let (one, two) = (client(&rt, "e2e-1"), client(&rt, "e2e-2"));
    let repo = Repo::new("kill");
    repo.overlay("a", 0..300, "1");
    repo.overlay("b", 0..1, "1");
    let c1 = repo.push("first");
    let state = tempfile::tempdir().unwrap();
    let mut serve = Serve::start(&repo, state.path(), &EngineOptions::new());
    wait_for("the first commit", Duration::from_secs(120), || {
        [&one, &two]
            .iter()
            .all(|c| synced_commit(&rt, c, &repo.target("a")).as_deref() == Some(c1.as_str()))
    });
    let uid_of = |c: &kube::Client, name: &str| {
        let api: Api<ConfigMap> = Api::namespaced(c.clone(), &repo.ns("a"));
        rt.block_on(api.get(name)).unwrap().metadata.uid.unwrap()
    };
    let kept_uid = uid_of(&one, "cm-250");

    // Commit 2: cm-0..49 go, cm-50..299 change, cm-300..349 are new.
    repo.overlay("a", 50..350, "2");
    let c2 = repo.push("second");
    assert_eq!(serve.deliver_push(&repo, &c1, &c2), 202);
    // Kill -9 as soon as the sync has started writing on cluster one.
    wait_for("the second sync to start", Duration::from_secs(60), || {
        config_maps(&rt, &one, &repo.ns("a"))
            .iter()
            .any(|(_, v)| v == "2")
    });
    serve.kill9();
    let interrupted = synced_commit(&rt, &one, &repo.target("a"));
    assert_ne!(
        interrupted.as_deref(),
        Some(c2.as_str()),
        "the kill came after the sync ended"
    );
    let half = config_maps(&rt, &one, &repo.ns("a"));
    assert!(
        half.iter().any(|(_, v)| v == "1") || half.len() != 300,
        "the sync was interrupted midway"
    );

    // The restarted engine (same state directory, nothing in memory) converges.
    let serve = Serve::start(&repo, state.path(), &EngineOptions::new());
    for c in [&one, &two] {
        wait_for(
            "convergence after the restart",
            Duration::from_secs(120),
            || synced_commit(&rt, c, &repo.target("a")).as_deref() == Some(c2.as_str()),
        );
        let cms = config_maps(&rt, c, &repo.ns("a"));
        let expected: Vec<(String, String)> = {
            let mut e: Vec<_> = (50..350)
                .map(|i| (format!("cm-{i}"), "2".to_string()))
                .collect();
            e.sort();
            e
        };
        assert_eq!(cms, expected, "exactly the second commit's objects");
    }
    // Nothing the second commit keeps was deleted and re-created.
    assert_eq!(uid_of(&one, "cm-250"), kept_uid);
    drop(serve);
}

/// A TCP forwarder to a cluster that can be taken down (refusing and cutting connections)
/// and brought back: the cluster stays real, only the network path goes away.
struct Link {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Link {
    fn start(to: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (up2, conns2) = (up.clone(), conns.clone());
        std::thread::spawn(move || {
            for incoming in listener.incoming() {
                let Ok(client) = incoming else { continue };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(to) else {
                    continue;
                };
                {
                    let mut c = conns2.lock().unwrap();
                    c.push(client.try_clone().unwrap());
                    c.push(server.try_clone().unwrap());
                }
                for (mut from, mut into) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut into);
                        let _ = into.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Link { addr, up, conns }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_cluster_that_is_down_catches_up_when_it_returns_while_the_other_syncs() {
    let rt = runtime();
    let (one, two) = (client(&rt, "e2e-1"), client(&rt, "e2e-2"));
    // A kubeconfig whose e2e-2 goes through a link the test can cut.
    let cp = ControlPlane::shared();
    let server2 = cp.cluster("e2e-2").unwrap().server().to_string();
    let target: SocketAddr = server2.trim_start_matches("https://").parse().unwrap();
    let link = Link::start(target);
    let state = tempfile::tempdir().unwrap();
    let kubeconfig = state.path().join("kubeconfig");
    let text = std::fs::read_to_string(cp.kubeconfig()).unwrap();
    assert!(text.contains(&server2));
    std::fs::write(
        &kubeconfig,
        text.replace(&server2, &format!("https://{}", link.addr)),
    )
    .unwrap();

    let repo = Repo::new("down");
    repo.overlay("a", 0..1, "1");
    repo.overlay("b", 0..1, "1");
    let c1 = repo.push("first");
    let mut options = EngineOptions::new();
    options.kubeconfig = kubeconfig;
    let serve = Serve::start(&repo, &state.path().join("engine"), &options);
    wait_for("the first commit on both", Duration::from_secs(60), || {
        [&one, &two]
            .iter()
            .all(|c| synced_commit(&rt, c, &repo.target("a")).as_deref() == Some(c1.as_str()))
    });

    link.down();
    repo.overlay("a", 0..2, "1");
    let c2 = repo.push("second");
    assert_eq!(serve.deliver_push(&repo, &c1, &c2), 202);
    wait_for(
        "cluster one to sync while two is down",
        Duration::from_secs(30),
        || synced_commit(&rt, &one, &repo.target("a")).as_deref() == Some(c2.as_str()),
    );
    wait_for(
        "the status API to report cluster two failing",
        Duration::from_secs(30),
        || {
            serve.targets().iter().any(|r| {
                r["target"] == repo.target("a").as_str()
                    && r["cluster"] == "two"
                    && r["phase"] == "failed"
            })
        },
    );
    assert_eq!(
        config_maps(&rt, &two, &repo.ns("a")).len(),
        1,
        "two is unreachable"
    );

    link.restore();
    wait_for("cluster two to catch up", Duration::from_secs(30), || {
        synced_commit(&rt, &two, &repo.target("a")).as_deref() == Some(c2.as_str())
    });
    assert_eq!(config_maps(&rt, &two, &repo.ns("a")).len(), 2);
}

#[path = "../../e2e/tests/support/tekton.rs"]
mod tekton;

#[test]
fn a_pipeline_gate_holds_the_deploy_until_its_run_succeeds() {
    use keelson_pipelines::model::PipelineRun;
    let rt = runtime();
    let (one, two) = (client(&rt, "e2e-1"), client(&rt, "e2e-2"));
    rt.block_on(tekton::install_crds(&one));
    let repo = Repo::new("gate");
    let ci = repo.ns("ci");
    rt.block_on(tekton::namespace(&one, &ci));
    let driver = tekton::Driver {
        client: one.clone(),
        namespace: ci.clone(),
    };
    // Target a waits for pipeline `gate-ci` (defined in the repository) on cluster one.
    let config = std::fs::read_to_string(repo.work.dir.join("keelson.yaml")).unwrap();
    let gated = config.replace(
        "  path: a\n  clusterSelector: {all: \"yes\"}\n",
        &format!(
            "  path: a\n  clusterSelector: {{all: \"yes\"}}\n  gate: {{pipeline: gate-ci, definitions: ci, cluster: one, namespace: {ci}, params: {{revision: $(keelson.commit)}}}}\n"
        ),
    );
    assert_ne!(config, gated);
    repo.work.write("keelson.yaml", &gated);
    repo.work.write(
        "ci/pipeline.yaml",
        "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata:\n  name: gate-ci\nspec:\n  params:\n  - name: revision\n    type: string\n  tasks:\n  - name: test\n    params:\n    - name: revision\n      value: $(params.revision)\n    taskSpec:\n      params:\n      - name: revision\n        type: string\n      steps:\n      - name: test\n        image: busybox\n        script: echo testing $(params.revision)\n",
    );
    repo.overlay("a", 0..2, "1");
    repo.overlay("b", 0..1, "1");
    let c1 = repo.push("first");
    let state = tempfile::tempdir().unwrap();
    let serve = Serve::start(&repo, state.path(), &EngineOptions::new());

    let runs: Api<PipelineRun> = Api::namespaced(one.clone(), &ci);
    let run_of = |commit: &str| {
        rt.block_on(runs.list(
            &kube::api::ListParams::default().labels(&format!("keelson.dev/commit={commit}")),
        ))
        .unwrap()
        .items
        .into_iter()
        .next()
    };
    wait_for("the gate's PipelineRun", Duration::from_secs(60), || {
        run_of(&c1).is_some()
    });
    let run = run_of(&c1).unwrap();
    let params = serde_json::to_value(&run.spec).unwrap()["params"].clone();
    assert_eq!(
        params[0]["value"],
        c1.as_str(),
        "typed params carry the commit: {params}"
    );
    // The ungated target deploys; the gated one waits.
    wait_for("target b on both clusters", Duration::from_secs(60), || {
        [&one, &two]
            .iter()
            .all(|c| config_maps(&rt, c, &repo.ns("b")).len() == 1)
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        config_maps(&rt, &one, &repo.ns("a")).is_empty(),
        "deployed before the gate passed"
    );
    assert!(
        serve
            .targets()
            .iter()
            .any(|r| r["target"] == repo.target("a").as_str() && r["phase"] == "waiting")
    );

    // Tekton (played by the test) reports success: the deploy goes ahead on both clusters.
    let name = run.metadata.name.clone().unwrap();
    rt.block_on(driver.start_run(&name));
    rt.block_on(driver.finish_run(&name, "True", "Succeeded", "Tasks Completed: 1"));
    wait_for("target a after the gate", Duration::from_secs(60), || {
        [&one, &two]
            .iter()
            .all(|c| config_maps(&rt, c, &repo.ns("a")).len() == 2)
    });

    // A failing run keeps its commit away from the clusters.
    repo.overlay("a", 0..3, "1");
    let c2 = repo.push("second");
    assert_eq!(serve.deliver_push(&repo, &c1, &c2), 202);
    wait_for("the second gate run", Duration::from_secs(60), || {
        run_of(&c2).is_some()
    });
    let name = run_of(&c2).unwrap().metadata.name.unwrap();
    rt.block_on(driver.start_run(&name));
    rt.block_on(driver.finish_run(&name, "False", "Failed", "Tasks Completed: 1 (Failed: 1)"));
    wait_for(
        "the status API to show the failed gate",
        Duration::from_secs(60),
        || {
            serve.targets().iter().any(|r| {
                r["target"] == repo.target("a").as_str()
                    && r["phase"] == "failed"
                    && r["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("pipeline gate failed"))
            })
        },
    );
    assert_eq!(
        config_maps(&rt, &one, &repo.ns("a")).len(),
        2,
        "the failed commit was not deployed"
    );
    assert_eq!(
        synced_commit(&rt, &two, &repo.target("a")).as_deref(),
        Some(c1.as_str())
    );
}

#[test]
fn a_push_inside_a_deny_window_is_applied_when_the_window_ends() {
    let rt = runtime();
    let (one, two) = (client(&rt, "e2e-1"), client(&rt, "e2e-2"));
    let repo = Repo::new("window");
    repo.overlay("a", 0..1, "1");
    repo.overlay("b", 0..1, "1");
    let c1 = repo.push("first");
    let state = tempfile::tempdir().unwrap();
    let serve = Serve::start(&repo, state.path(), &EngineOptions::new());
    wait_for("the first commit", Duration::from_secs(60), || {
        [&one, &two]
            .iter()
            .all(|c| synced_commit(&rt, c, &repo.target("a")).as_deref() == Some(c1.as_str()))
    });
    // The next commit adds a deny window for target a on cluster two, open from a second
    // ago for 8 seconds (a cron start with seconds, in UTC), and changes both targets.
    // Whole seconds: the cron start has no sub-second part.
    let start = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() - 1, 0).unwrap();
    let ends = start + chrono::Duration::seconds(8);
    let config = std::fs::read_to_string(repo.work.dir.join("keelson.yaml")).unwrap();
    repo.work.write(
        "keelson.yaml",
        &format!(
            "{config}syncWindows:\n- kind: deny\n  schedule: \"{}\"\n  duration: 8s\n  targets: [{}]\n  clusters: [two]\n",
            start.format("%S %M %H * * *"),
            repo.target("a")
        ),
    );
    repo.overlay("a", 0..2, "1");
    repo.overlay("b", 0..2, "1");
    let c2 = repo.push("second, inside the window");
    assert_eq!(serve.deliver_push(&repo, &c1, &c2), 202);
    // Outside the window everything goes ahead at once.
    wait_for(
        "target a on cluster one and b on two",
        Duration::from_secs(30),
        || {
            config_maps(&rt, &one, &repo.ns("a")).len() == 2
                && config_maps(&rt, &two, &repo.ns("b")).len() == 2
        },
    );
    wait_for(
        "the status API to show a waiting on two",
        Duration::from_secs(10),
        || {
            serve.targets().iter().any(|r| {
                r["target"] == repo.target("a").as_str()
                    && r["cluster"] == "two"
                    && r["phase"] == "waiting"
            })
        },
    );
    assert!(
        chrono::Utc::now() < ends,
        "the test ran too slowly to see the window"
    );
    assert_eq!(
        config_maps(&rt, &two, &repo.ns("a")).len(),
        1,
        "applied inside the deny window"
    );
    assert!(
        serve.metric(&format!(
            "keelson_sync_results_total{{target=\"{}\",cluster=\"two\",outcome=\"deferred\"}}",
            repo.target("a")
        )) >= 1.0
    );
    // When the window ends, the sync runs by itself.
    wait_for("the sync after the window", Duration::from_secs(30), || {
        synced_commit(&rt, &two, &repo.target("a")).as_deref() == Some(c2.as_str())
    });
    assert!(chrono::Utc::now() >= ends, "synced before the window ended");
    assert_eq!(config_maps(&rt, &two, &repo.ns("a")).len(), 2);
}

#[test]
fn two_replicas_sync_each_cluster_exactly_once_and_a_dead_ones_clusters_move() {
    let rt = runtime();
    let (one, two) = (client(&rt, "e2e-1"), client(&rt, "e2e-2"));
    let repo = Repo::new("replicas");
    let leases = repo.ns("leases");
    rt.block_on(tekton::namespace(&one, &leases));
    repo.overlay("a", 0..1, "1");
    repo.overlay("b", 0..1, "1");
    let c1 = repo.push("first");
    let state = tempfile::tempdir().unwrap();
    let start = |name: &str| {
        let mut o = EngineOptions::new();
        o.extra = format!(
            "leases: {{kubeconfig: {{context: e2e-1, path: {}}}, namespace: {leases}, duration: 3s}}\n",
            o.kubeconfig.display()
        );
        o.identity = Some(name.to_string());
        Serve::start(&repo, &state.path().join(name), &o)
    };
    let mut replicas = vec![start("replica-1"), start("replica-2")];
    wait_for(
        "the first commit on both clusters",
        Duration::from_secs(60),
        || {
            [&one, &two].iter().all(|c| {
                ["a", "b"]
                    .iter()
                    .all(|t| synced_commit(&rt, c, &repo.target(t)).as_deref() == Some(c1.as_str()))
            })
        },
    );
    // Each (target, cluster) was synced by exactly one replica; the other says so.
    let owner_of = |replicas: &[Serve], cluster: &str| -> Vec<usize> {
        (0..replicas.len())
            .filter(|i| {
                replicas[*i]
                    .targets()
                    .iter()
                    .any(|r| r["cluster"] == cluster && r["phase"] == "synced")
            })
            .collect()
    };
    wait_for("ownership to settle", Duration::from_secs(20), || {
        ["one", "two"]
            .iter()
            .all(|c| owner_of(&replicas, c).len() == 1)
    });
    for cluster in ["one", "two"] {
        let owners = owner_of(&replicas, cluster);
        let total: f64 = replicas
            .iter()
            .map(|r| r.successes(&repo.target("a"), cluster))
            .sum();
        assert_eq!(
            total, 1.0,
            "cluster {cluster} synced once for target a, owners {owners:?}"
        );
    }

    // The owner of cluster one dies; the other replica takes its clusters over and
    // deploys the next commit everywhere.
    let victim = owner_of(&replicas, "one")[0];
    replicas[victim].kill9();
    let survivor = replicas.remove(1 - victim);
    repo.overlay("a", 0..2, "1");
    let c2 = repo.push("second");
    assert_eq!(survivor.deliver_push(&repo, &c1, &c2), 202);
    let died = Instant::now();
    wait_for(
        "the survivor to sync both clusters",
        Duration::from_secs(30),
        || {
            [&one, &two]
                .iter()
                .all(|c| synced_commit(&rt, c, &repo.target("a")).as_deref() == Some(c2.as_str()))
        },
    );
    assert!(
        died.elapsed() < Duration::from_secs(15),
        "took {:?}",
        died.elapsed()
    );
    drop(replicas);
}

#[test]
fn commit_statuses_reach_github_and_match_its_openapi_description() {
    let Some(fake) = keelson_e2e::github::FakeGitHub::from_env() else {
        eprintln!("skipped: KEELSON_GITHUB_OPENAPI is not set (./e2e/test.sh sets it)");
        return;
    };
    let fake = fake.unwrap();
    let rt = runtime();
    let one = client(&rt, "e2e-1");
    let repo = Repo::new("status");
    repo.overlay("a", 0..1, "1");
    repo.overlay("b", 0..1, "1");
    let c1 = repo.push("first");
    let state = tempfile::tempdir().unwrap();
    let token = state.path().join("token");
    std::fs::write(&token, "ghp_serve_test_token\n").unwrap();
    let mut options = EngineOptions::new();
    options.extra = format!(
        "github: {{tokenFile: {}, apiUrl: \"{}\"}}\n",
        token.display(),
        fake.url()
    );
    let serve = Serve::start(&repo, &state.path().join("engine"), &options);
    wait_for("the first commit", Duration::from_secs(60), || {
        synced_commit(&rt, &one, &repo.target("b")).as_deref() == Some(c1.as_str())
    });
    let path = format!("/repos/octo/{}/statuses/{c1}", repo.id);
    wait_for(
        "pending and success for every target and cluster",
        Duration::from_secs(30),
        || {
            let calls = fake.calls();
            ["a", "b"].iter().all(|t| {
                ["one", "two"].iter().all(|c| {
                    let context = format!("keelson/{}/{c}", repo.target(t));
                    let states: Vec<String> = calls
                        .iter()
                        .filter(|call| call.path == path)
                        .filter_map(|call| call.body.as_ref())
                        .filter(|b| b["context"] == context.as_str())
                        .map(|b| b["state"].as_str().unwrap_or_default().to_string())
                        .collect();
                    states == ["pending", "success"]
                })
            })
        },
    );
    let calls = fake.calls();
    assert!(
        calls
            .iter()
            .all(|c| c.operation.as_deref() == Some("repos/create-commit-status"))
    );
    assert!(calls.iter().all(|c| {
        c.headers
            .get("authorization")
            .is_some_and(|a| a.contains("ghp_serve_test_token"))
    }));
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
    assert!(
        !serve.log().contains("ghp_serve_test_token"),
        "the token reached the log"
    );
}

#[test]
fn self_heal_corrects_drift_of_targets_that_ask_for_it_only() {
    use kube::api::{Patch, PatchParams};
    let rt = runtime();
    let one = client(&rt, "e2e-1");
    let repo = Repo::new("heal");
    let config = std::fs::read_to_string(repo.work.dir.join("keelson.yaml")).unwrap();
    let healing = config.replace(
        "  path: a\n  clusterSelector: {all: \"yes\"}\n",
        "  path: a\n  clusterSelector: {all: \"yes\"}\n  sync: {selfHeal: true}\n",
    );
    assert_ne!(config, healing);
    repo.work.write("keelson.yaml", &healing);
    repo.overlay("a", 0..1, "1");
    repo.overlay("b", 0..1, "1");
    let c1 = repo.push("first");
    let state = tempfile::tempdir().unwrap();
    let mut options = EngineOptions::new();
    options.self_heal = Some("*/1 * * * * *");
    let serve = Serve::start(&repo, state.path(), &options);
    wait_for("the first commit", Duration::from_secs(60), || {
        ["a", "b"]
            .iter()
            .all(|t| synced_commit(&rt, &one, &repo.target(t)).as_deref() == Some(c1.as_str()))
    });
    // Someone edits both targets' ConfigMap by hand (their own field manager, forced).
    for t in ["a", "b"] {
        let api: Api<ConfigMap> = Api::namespaced(one.clone(), &repo.ns(t));
        let edit = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm-0"}, "data": {"v": "hacked"}});
        rt.block_on(api.patch(
            "cm-0",
            &PatchParams::apply("kubectl").force(),
            &Patch::Apply(&edit),
        ))
        .unwrap();
    }
    wait_for(
        "self-heal to restore target a",
        Duration::from_secs(30),
        || config_maps(&rt, &one, &repo.ns("a")) == [("cm-0".to_string(), "1".to_string())],
    );
    // Target b does not ask for self-heal: its drift stays until a sync.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        config_maps(&rt, &one, &repo.ns("b")),
        [("cm-0".to_string(), "hacked".to_string())]
    );
    assert!(serve.metric("keelson_triggers_total{source=\"selfHeal\"}") >= 1.0);
}
