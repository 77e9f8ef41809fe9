//! The git source against real servers on loopback: `git daemon` (git://), git's smart
//! HTTP behind basic auth, local paths; repositories built with the git CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use keelson::render::RenderOptions;
use keelson::source::poll::{Backoff, PollEvent, Poller};
use keelson::source::{
    Auth, Oid, RepoSpec, RepoUrl, Rev, SecretRef, Source, SourceError, TreeMode,
};
use support::{BlackHole, GitDaemon, GitHttp, Served};

fn spec(url: &str) -> RepoSpec {
    let mut s = RepoSpec::new(RepoUrl::parse(url).unwrap());
    s.timeout = Duration::from_secs(30);
    s
}

fn name(n: &str) -> Rev {
    Rev::Name(n.into())
}

fn commit(sha: &str) -> Rev {
    Rev::Commit(Oid::from_str(sha).unwrap())
}

fn read(source: &Source, spec: &RepoSpec, c: Oid, path: &str) -> String {
    let snap = source.snapshot(&spec.url, c, TreeMode::Objects).unwrap();
    let bytes = snap.fs().read(&snap.root().join(path)).unwrap();
    String::from_utf8(bytes).unwrap()
}

/// A repository with ten commits of `f.txt`, an annotated and a lightweight tag, a branch.
fn history(served: &Served, repo: &str) -> (support::Work, Vec<String>) {
    let w = served.repo(repo);
    let mut shas = vec![];
    for i in 0..10 {
        w.write("f.txt", &format!("{i}\n"));
        w.write(&format!("dir/n{}.txt", i % 3), &format!("{i}\n"));
        shas.push(w.commit(&format!("c{i}")));
    }
    w.run(&["tag", "-a", "v1", "-m", "release v1", &shas[3]]);
    w.run(&["tag", "light", &shas[5]]);
    w.run(&["branch", "feature", &shas[7]]);
    w.push(&["main", "feature", "v1", "light"]);
    (w, shas)
}

#[test]
fn branches_tags_and_exact_commits_over_git_daemon() {
    let served = Served::new();
    let (_w, shas) = history(&served, "app");
    let daemon = GitDaemon::start(served.base());
    let cache = tempfile::tempdir().unwrap();
    let source = Source::new(cache.path());
    let sp = spec(&daemon.url("app"));

    let cases = [
        ("main", 9),
        ("feature", 7),
        ("refs/heads/feature", 7),
        ("v1", 3),
        ("light", 5),
        ("main~2", 7),
        ("v1^", 2),
        ("HEAD~1", 8),
    ];
    for (rev, i) in cases {
        let f = source.fetch(&sp, &name(rev)).unwrap();
        assert_eq!(f.commit.to_string(), shas[i], "{rev}");
        assert_eq!(read(&source, &sp, f.commit, "f.txt"), format!("{i}\n"));
    }
    // An exact commit no ref points at: git daemon refuses unadvertised ids, so the
    // source falls back to fetching every branch and tag, then finds it.
    let fresh = tempfile::tempdir().unwrap();
    let s2 = Source::new(fresh.path());
    let f = s2.fetch(&sp, &commit(&shas[1])).unwrap();
    assert_eq!(f.commit.to_string(), shas[1]);
    assert_eq!(read(&s2, &sp, f.commit, "f.txt"), "1\n");
    // Already cached: no network at all.
    let again = s2.fetch(&sp, &commit(&shas[1])).unwrap();
    assert!(!again.contacted && !again.downloaded);
    // An abbreviated id.
    let short = &shas[2][..10];
    assert_eq!(
        s2.fetch(&sp, &name(short)).unwrap().commit.to_string(),
        shas[2]
    );

    let e = source.fetch(&sp, &name("nope")).unwrap_err();
    assert!(matches!(e, SourceError::RefNotFound { .. }), "{e}");
    assert!(e.to_string().contains("\"nope\""), "{e}");
    let e = source
        .fetch(&sp, &commit("0123456789012345678901234567890123456789"))
        .unwrap_err();
    assert!(matches!(e, SourceError::CommitNotFound { .. }), "{e}");
}

#[test]
fn exact_commit_fetched_directly_where_the_server_allows_it() {
    let served = Served::new();
    let (w, shas) = history(&served, "app");
    w.serve_config("uploadpack.allowAnySHA1InWant", "true");
    let http = GitHttp::start(served.base(), None);
    let cache = tempfile::tempdir().unwrap();
    let source = Source::new(cache.path());
    let sp = spec(&http.url("app"));
    let f = source.fetch(&sp, &commit(&shas[4])).unwrap();
    assert_eq!(read(&source, &sp, f.commit, "f.txt"), "4\n");
    // Only that commit's history came: the branches were never fetched.
    let mirror = git2::Repository::open_bare(source.mirror_dir(&sp.url)).unwrap();
    assert!(mirror.find_reference("refs/heads/main").is_err());
    assert!(
        mirror
            .find_commit(Oid::from_str(&shas[9]).unwrap())
            .is_err()
    );
}

#[test]
fn incremental_fetch_moves_only_new_objects_and_an_idle_poll_is_one_ref_listing() {
    let served = Served::new();
    let w = served.repo("big");
    for c in 0..30 {
        for f in 0..10 {
            let i = (c * 7 + f) % 200;
            w.write(&format!("d{}/f{i}.txt", i % 20), &format!("{c} {f}\n"));
        }
        w.commit(&format!("c{c}"));
    }
    w.push(&["main"]);
    let http = GitHttp::start(served.base(), None);
    let cache = tempfile::tempdir().unwrap();
    let source = Source::new(cache.path());
    let sp = spec(&http.url("big"));
    let first = source.fetch(&sp, &name("main")).unwrap();
    assert!(first.received_objects > 200, "{first:?}");

    w.write("d3/f3.txt", "changed\n");
    let new = w.commit("one more");
    w.push(&["main"]);
    let second = source.fetch(&sp, &name("main")).unwrap();
    assert_eq!(second.commit.to_string(), new);
    assert!(second.downloaded);
    // The commit, the root tree, d3's tree and one blob.
    assert!(
        second.received_objects > 0 && second.received_objects <= 4,
        "{second:?}"
    );

    http.clear();
    let idle = source.fetch(&sp, &name("main")).unwrap();
    assert!(idle.contacted && !idle.downloaded, "{idle:?}");
    assert_eq!(
        http.requests(),
        ["GET /big.git/info/refs?service=git-upload-pack"]
    );
}

#[test]
fn http_basic_auth_and_secrets_never_printed() {
    let served = Served::new();
    let (_w, shas) = history(&served, "private");
    let secret = "tok-9f8e7d6c5b4a-secret";
    let wrong = "wrong-1a2b3c4d5e6f-secret";
    let http = GitHttp::start(served.base(), Some(("deploy", secret)));
    let dir = tempfile::tempdir().unwrap();
    let good_file = dir.path().join("token");
    std::fs::write(&good_file, format!("{secret}\n")).unwrap();
    let wrong_file = dir.path().join("wrong");
    std::fs::write(&wrong_file, wrong).unwrap();
    let source = Source::new(dir.path().join("cache"));

    let mut sp = spec(&http.url("private"));
    sp.auth = Auth {
        username: Some("deploy".into()),
        token: Some(SecretRef::file(&good_file)),
        ..Auth::default()
    };
    let f = source.fetch(&sp, &name("main")).unwrap();
    assert_eq!(f.commit.to_string(), shas[9]);

    // No credentials configured.
    let anon = spec(&http.url("private"));
    let e = source.fetch(&anon, &name("main")).unwrap_err();
    assert!(matches!(e, SourceError::Auth { .. }), "{e}");
    assert!(e.to_string().contains("none are configured"), "{e}");

    // Wrong password: a clear error, and neither secret in its text or Debug form.
    let mut bad = spec(&http.url("private"));
    bad.auth = Auth {
        username: Some("deploy".into()),
        password: Some(SecretRef::file(&wrong_file)),
        ..Auth::default()
    };
    let e = source.fetch(&bad, &name("main")).unwrap_err();
    assert!(matches!(e, SourceError::Auth { .. }), "{e:?}");
    let shown = format!("{e} {e:?} {bad:?} {sp:?}");
    assert!(shown.contains("authentication failed"), "{shown}");
    assert!(shown.contains("127.0.0.1"), "{shown}");
    for s in [secret, wrong] {
        assert!(!shown.contains(s), "secret leaked: {shown}");
    }

    // The binary: a token from an environment variable named on the command line.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(["build", "--repo", &http.url("private"), "--ref", "main"])
        .args(["--git-username", "deploy", "--git-token-env", "KT_TEST"])
        .arg("--cache-dir")
        .arg(dir.path().join("cli-cache"))
        .env("KT_TEST", wrong)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success());
    assert!(all.contains("authentication failed"), "{all}");
    assert!(!all.contains(wrong) && !all.contains(secret), "{all}");
}

#[test]
fn shallow_where_the_server_allows_it() {
    let served = Served::new();
    let (_w, shas) = history(&served, "app");
    let daemon = GitDaemon::start(served.base());
    let http = GitHttp::start(served.base(), None);
    let local = served.base().join("app.git");
    for url in [
        daemon.url("app"),
        http.url("app"),
        local.display().to_string(),
    ] {
        let cache = tempfile::tempdir().unwrap();
        let source = Source::new(cache.path());
        let mut sp = spec(&url);
        sp.depth = Some(1);
        let f = source.fetch(&sp, &name("main")).unwrap();
        assert_eq!(f.commit.to_string(), shas[9]);
        let mirror = git2::Repository::open_bare(source.mirror_dir(&sp.url)).unwrap();
        let parent = Oid::from_str(&shas[8]).unwrap();
        if url.starts_with('/') {
            // The local transport has no shallow support: a full fetch.
            assert!(!f.shallow);
            assert!(mirror.find_commit(parent).is_ok());
        } else {
            assert!(f.shallow, "{url}");
            assert!(mirror.is_shallow(), "{url}");
            assert!(mirror.find_commit(parent).is_err(), "{url}");
        }
        assert_eq!(read(&source, &sp, f.commit, "f.txt"), "9\n");
    }
}

#[test]
fn force_push_is_followed_and_a_deleted_branch_is_a_clear_error() {
    let served = Served::new();
    let (w, shas) = history(&served, "app");
    let daemon = GitDaemon::start(served.base());
    let cache = tempfile::tempdir().unwrap();
    let source = Source::new(cache.path());
    let sp = spec(&daemon.url("app"));
    let mut poller = Poller::new(source.clone(), sp.clone(), name("main"), None);
    match poller.poll() {
        PollEvent::Moved {
            from: None,
            to,
            forced: false,
            ..
        } => {
            assert_eq!(to.to_string(), shas[9])
        }
        other => panic!("{other:?}"),
    }
    w.write("f.txt", "10\n");
    let next = w.commit("c10");
    w.push(&["main"]);
    match poller.poll() {
        PollEvent::Moved {
            to, forced: false, ..
        } => assert_eq!(to.to_string(), next),
        other => panic!("{other:?}"),
    }
    assert!(matches!(poller.poll(), PollEvent::Unchanged { .. }));
    // Rewrite history: main now forks from c5.
    w.run(&["reset", "-q", "--hard", &shas[5]]);
    w.write("f.txt", "rewritten\n");
    let rewritten = w.commit("rewritten");
    w.push(&["main"]);
    match poller.poll() {
        PollEvent::Moved {
            from, to, forced, ..
        } => {
            assert_eq!(from.unwrap().to_string(), next);
            assert_eq!(to.to_string(), rewritten);
            assert!(forced);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        read(&source, &sp, poller.serving().unwrap(), "f.txt"),
        "rewritten\n"
    );

    source.fetch(&sp, &name("feature")).unwrap();
    w.push(&[":feature"]);
    for _ in 0..2 {
        let e = source.fetch(&sp, &name("feature")).unwrap_err();
        assert!(matches!(e, SourceError::BranchDeleted { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("\"feature\" was deleted") && text.contains(&shas[7]),
            "{text}"
        );
    }
}

#[test]
fn unreachable_remote_keeps_the_last_good_commit_and_backs_off() {
    let served = Served::new();
    let (_w, shas) = history(&served, "app");
    let mut daemon = GitDaemon::start(served.base());
    let port = daemon.port;
    let cache = tempfile::tempdir().unwrap();
    let source = Source::new(cache.path());
    let sp = spec(&daemon.url("app"));
    let mut poller = Poller::new(source, sp, name("main"), None).with_backoff(Backoff::new(
        Duration::from_millis(100),
        Duration::from_millis(300),
    ));
    assert!(matches!(poller.poll(), PollEvent::Moved { .. }));
    daemon.stop();
    let mut waits = vec![];
    for _ in 0..3 {
        match poller.poll() {
            PollEvent::Failed {
                error,
                serving,
                retry_in,
            } => {
                assert!(matches!(error, SourceError::Unreachable { .. }), "{error}");
                assert!(
                    error.to_string().contains(&format!("127.0.0.1:{port}")),
                    "{error}"
                );
                assert_eq!(serving.unwrap().to_string(), shas[9]);
                waits.push(retry_in);
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(waits[0] <= Duration::from_millis(100));
    assert!(waits[1] >= Duration::from_millis(100) && waits[2] <= Duration::from_millis(300));
    assert!(poller.next_due(chrono::Utc::now()).is_some());
    assert_eq!(poller.serving().unwrap().to_string(), shas[9]);
    let _daemon = GitDaemon::start_on(served.base(), port);
    assert!(matches!(poller.poll(), PollEvent::Unchanged { .. }));
}

#[test]
fn a_server_that_never_answers_times_out() {
    let hole = BlackHole::start();
    let cache = tempfile::tempdir().unwrap();
    let source = Source::new(cache.path());
    for url in [
        format!("git://127.0.0.1:{}/x.git", hole.port),
        format!("http://127.0.0.1:{}/x.git", hole.port),
    ] {
        let mut sp = spec(&url);
        sp.timeout = Duration::from_secs(1);
        let started = Instant::now();
        let e = source.fetch(&sp, &name("main")).unwrap_err();
        assert!(matches!(e, SourceError::Timeout { .. }), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
    }
}

#[test]
fn the_cache_survives_a_restart_and_recovers_from_corruption() {
    let served = Served::new();
    let (_w, shas) = history(&served, "app");
    let cache = tempfile::tempdir().unwrap();
    let head = commit(&shas[9]);
    let url;
    {
        let daemon = GitDaemon::start(served.base());
        url = daemon.url("app");
        Source::new(cache.path())
            .fetch(&spec(&url), &name("main"))
            .unwrap();
    }
    // A new process (a new Source), the server gone: the cached commit is still served.
    let source = Source::new(cache.path());
    let sp = spec(&url);
    let f = source.fetch(&sp, &head).unwrap();
    assert!(!f.contacted);
    assert_eq!(read(&source, &sp, f.commit, "f.txt"), "9\n");

    let port: u16 = url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let _daemon = GitDaemon::start_on(served.base(), port);
    let mirror = source.mirror_dir(&sp.url);
    // 1. Garbage in HEAD and config.
    std::fs::write(mirror.join("HEAD"), "garbage").unwrap();
    std::fs::write(mirror.join("config"), "[[[").unwrap();
    let f = source.fetch(&sp, &head).unwrap();
    assert!(f.recloned, "{f:?}");
    assert_eq!(read(&source, &sp, f.commit, "f.txt"), "9\n");
    // 2. Packs truncated.
    for p in support::walk(&mirror.join("objects/pack")) {
        if p.extension().is_some_and(|e| e == "pack") {
            std::fs::write(&p, b"PACK").unwrap();
        }
    }
    let f = source.fetch(&sp, &head).unwrap();
    assert!(f.recloned, "{f:?}");
    assert_eq!(read(&source, &sp, f.commit, "f.txt"), "9\n");
    // 3. Objects gone altogether, refs still pointing at them.
    std::fs::remove_dir_all(mirror.join("objects")).unwrap();
    let f = source.fetch(&sp, &name("main")).unwrap();
    assert_eq!(f.commit.to_string(), shas[9]);
    assert_eq!(read(&source, &sp, f.commit, "f.txt"), "9\n");
}

#[test]
fn fetches_of_one_repository_are_serialised_and_different_ones_run_in_parallel() {
    let served = Served::new();
    let _a = history(&served, "one");
    let _b = history(&served, "two");
    let _c = history(&served, "three");
    let http = GitHttp::start(served.base(), None);
    // Every request takes this long, so two fetches that may overlap surely do, even on a
    // loaded machine.
    http.state
        .delay_ms
        .store(500, std::sync::atomic::Ordering::Relaxed);
    let cache = tempfile::tempdir().unwrap();
    let run = |repos: [&str; 2]| {
        std::thread::scope(|s| {
            for r in repos {
                let (source, sp) = (Source::new(cache.path()), spec(&http.url(r)));
                s.spawn(move || source.fetch(&sp, &name("main")).unwrap());
            }
        });
    };
    run(["one", "one"]);
    // Two repositories neither of which is cached yet: each fetch makes several slow
    // requests, so they overlap unless something serialises them.
    run(["two", "three"]);
    let max = http.state.max_in_flight.lock().unwrap().clone();
    assert_eq!(max["one.git"], 1, "{max:?}");
    assert_eq!(*http.state.max_in_flight_total.lock().unwrap(), 2);
}

/// The example repository, committed and served.
fn example(served: &Served) -> support::Work {
    let w = served.repo("example");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../overlays-example");
    w.copy_dir(&root, "");
    w.commit("example");
    w.push(&["main"]);
    w
}

#[test]
fn keelson_build_renders_the_example_from_a_served_repository() {
    let served = Served::new();
    let _w = example(&served);
    let daemon = GitDaemon::start(served.base());
    let cache = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_keelson");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../overlays-example");
    for overlay in ["overlays/staging", "overlays/prod"] {
        let local = std::process::Command::new(bin)
            .arg("build")
            .arg(root.join(overlay))
            .output()
            .unwrap();
        assert!(local.status.success());
        for tree in ["objects", "checkout"] {
            let remote = std::process::Command::new(bin)
                .args(["build", "--repo", &daemon.url("example"), "--ref", "main"])
                .args(["--tree", tree, overlay, "--cache-dir"])
                .arg(cache.path())
                .output()
                .unwrap();
            assert!(
                remote.status.success(),
                "{}",
                String::from_utf8_lossy(&remote.stderr)
            );
            assert_eq!(
                String::from_utf8_lossy(&remote.stdout),
                String::from_utf8_lossy(&local.stdout),
                "{overlay} via {tree}"
            );
        }
    }
}

#[test]
fn keelson_changed_prints_the_targets_a_range_touches() {
    let served = Served::new();
    let w = example(&served);
    let first = w.head();
    w.write("overlays/prod/patches/resources.yaml", &{
        let p = w.dir.join("overlays/prod/patches/resources.yaml");
        std::fs::read_to_string(p)
            .unwrap()
            .replace("memory", "memory ")
    });
    w.commit("prod only");
    w.push(&["main"]);
    let daemon = GitDaemon::start(served.base());
    let cache = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args([
            "changed",
            "--repo",
            &daemon.url("example"),
            "--from",
            &first,
        ])
        .args(["--to", "main", "--why", "--cache-dir"])
        .arg(cache.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text,
        "shop-prod\n  modified overlays/prod/patches/resources.yaml\n"
    );
}

/// The change-detection repository: three overlays over a base with a generator.
fn layered(served: &Served) -> support::Work {
    let w = served.repo("layered");
    w.write(
        "keelson.yaml",
        "clusters:\n- name: one\n  labels: {env: dev}\n  kubeconfig: {context: x}\ntargets:\n\
         - {name: a, path: overlays/a, clusterSelector: {env: dev}}\n\
         - {name: b, path: overlays/b, clusterSelector: {env: dev}}\n\
         - {name: c, path: overlays/c, clusterSelector: {env: dev}}\n",
    )
    .write(
        "base/kustomization.yaml",
        "resources:\n- deploy.yaml\nconfigMapGenerator:\n- name: cfg\n  files:\n  - config/app.properties\n",
    )
    .write(
        "base/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: web:1\n",
    )
    .write("base/config/app.properties", "level=info\n")
    .write("base/README.md", "docs\n")
    .write(
        "overlays/a/kustomization.yaml",
        "resources:\n- ../../base\npatches:\n- path: patch.yaml\n",
    )
    .write(
        "overlays/a/patch.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n",
    )
    .write(
        "overlays/b/kustomization.yaml",
        "resources:\n- ../../base\nconfigMapGenerator:\n- name: extra\n  files:\n  - extra.txt\n",
    )
    .write("overlays/b/extra.txt", "x\n")
    .write("overlays/c/kustomization.yaml", "resources:\n- svc.yaml\n")
    .write(
        "overlays/c/svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc\n",
    );
    w.commit("layout");
    w
}

#[test]
fn change_detection_across_edits_renames_moves_and_deletions() {
    let served = Served::new();
    let w = layered(&served);
    w.push(&["main"]);
    let daemon = GitDaemon::start(served.base());
    let cache = tempfile::tempdir().unwrap();
    let source = Source::new(cache.path());
    let sp = spec(&daemon.url("layered"));
    type Step = (&'static str, fn(&support::Work), &'static [&'static str]);
    let steps: &[Step] = &[
        (
            "generator file",
            |w| {
                w.write("base/config/app.properties", "level=debug\n");
            },
            &["a", "b"],
        ),
        (
            "patch edited",
            |w| {
                w.write(
                "overlays/a/patch.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n",
            );
            },
            &["a"],
        ),
        (
            "patch renamed",
            |w| {
                w.mv("overlays/a/patch.yaml", "overlays/a/patches/replicas.yaml");
                w.write(
                    "overlays/a/kustomization.yaml",
                    "resources:\n- ../../base\npatches:\n- path: patches/replicas.yaml\n",
                );
            },
            &["a"],
        ),
        (
            "generator input moved",
            |w| {
                w.mv("overlays/b/extra.txt", "overlays/b/data/extra.txt");
                w.write(
                "overlays/b/kustomization.yaml",
                "resources:\n- ../../base\nconfigMapGenerator:\n- name: extra\n  files:\n  - data/extra.txt\n",
            );
            },
            &["b"],
        ),
        (
            "unread files",
            |w| {
                w.write("base/README.md", "more docs\n");
                w.write("docs/notes.md", "notes\n");
            },
            &[],
        ),
        (
            "shared resource moved",
            |w| {
                w.mv("base/deploy.yaml", "base/apps/deploy.yaml");
                w.write(
                "base/kustomization.yaml",
                "resources:\n- apps/deploy.yaml\nconfigMapGenerator:\n- name: cfg\n  files:\n  - config/app.properties\n",
            );
            },
            &["a", "b"],
        ),
        (
            "a second kustomization file appears",
            |w| {
                w.write("overlays/c/Kustomization", "resources: []\n");
            },
            &["c"],
        ),
        (
            "it goes again",
            |w| {
                w.remove("overlays/c/Kustomization");
            },
            &["c"],
        ),
        (
            "resource deleted",
            |w| {
                w.remove("overlays/c/svc.yaml");
                w.write("overlays/c/kustomization.yaml", "resources: []\n");
            },
            &["c"],
        ),
        (
            "overlay directory moved",
            |w| {
                w.mv("overlays/c", "overlays/c2");
                let k = std::fs::read_to_string(w.dir.join("keelson.yaml")).unwrap();
                w.write(
                    "keelson.yaml",
                    &k.replace("path: overlays/c,", "path: overlays/c2,"),
                );
            },
            &["c"],
        ),
        (
            "patch deleted but still referenced",
            |w| {
                w.remove("overlays/a/patches/replicas.yaml");
            },
            &["a"],
        ),
        (
            "after a failed render",
            |w| {
                w.write("overlays/b/data/extra.txt", "y\n");
            },
            &["a", "b"],
        ),
        (
            "target removed",
            |w| {
                let k = std::fs::read_to_string(w.dir.join("keelson.yaml")).unwrap();
                let k: String = k
                    .lines()
                    .filter(|l| !l.contains("name: b,"))
                    .map(|l| format!("{l}\n"))
                    .collect();
                w.write("keelson.yaml", &k);
            },
            &["a", "b"], // a still fails to render, so it is always re-rendered
        ),
    ];
    let mut prev = w.head();
    for (what, change, expected) in steps {
        change(&w);
        let next = w.commit(what);
        w.push(&["main"]);
        let report = source
            .changed(&sp, &commit(&prev), &name("main"), RenderOptions::default())
            .unwrap();
        let got: Vec<&str> = report.targets.iter().map(|t| t.target.as_str()).collect();
        assert_eq!(got, *expected, "{what}: {:#?}", report.targets);
        // Asking again costs no render: what each target read at `from` is cached.
        let again = source
            .changed(
                &sp,
                &commit(&prev),
                &commit(&next),
                RenderOptions::default(),
            )
            .unwrap();
        assert_eq!(again.rendered_at_from, 0, "{what}");
        prev = next;
    }
}

#[test]
fn one_overlay_of_500_changed_is_one_render() {
    let served = Served::new();
    let w = served.repo("many");
    let mut config = String::from(
        "clusters:\n- name: one\n  labels: {env: dev}\n  kubeconfig: {context: x}\ntargets:\n",
    );
    w.write("base/kustomization.yaml", "resources:\n- cm.yaml\n");
    w.write(
        "base/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: b\n",
    );
    for i in 0..500 {
        w.write(
            &format!("overlays/o{i}/kustomization.yaml"),
            &format!("resources:\n- ../../base\nnamePrefix: o{i}-\n"),
        );
        config.push_str(&format!(
            "- {{name: o{i}, path: overlays/o{i}, clusterSelector: {{env: dev}}}}\n"
        ));
    }
    w.write("keelson.yaml", &config);
    let a = w.commit("500 overlays");
    w.write(
        "overlays/o123/kustomization.yaml",
        "resources:\n- ../../base\nnamePrefix: changed-\n",
    );
    let b = w.commit("touch one");
    w.run(&["revert", "--no-edit", "HEAD"]);
    let c = w.head();
    w.push(&["main"]);
    let cache = tempfile::tempdir().unwrap();
    let source = Source::new(cache.path());
    let sp = spec(&w.bare.display().to_string());
    for rev in [&c, &b, &a] {
        source.fetch(&sp, &commit(rev)).unwrap();
    }
    let renders = source.renders(&sp.url, RenderOptions::default());
    let snap = |c: &str| {
        source
            .snapshot(&sp.url, Oid::from_str(c).unwrap(), TreeMode::Objects)
            .unwrap()
    };
    let (sa, sb, sc) = (snap(&a), snap(&b), snap(&c));
    let ra = renders.render_all(&sa, &sa.project().unwrap(), None);
    assert_eq!((ra.rendered, ra.reused), (500, 0));

    let report = source
        .changed(&sp, &commit(&a), &commit(&b), RenderOptions::default())
        .unwrap();
    let touched: Vec<&str> = report.targets.iter().map(|t| t.target.as_str()).collect();
    assert_eq!(touched, ["o123"]);
    assert_eq!(report.rendered_at_from, 0);

    let rb = renders.render_all(&sb, &sb.project().unwrap(), Some(&ra.inputs()));
    assert_eq!((rb.rendered, rb.reused), (1, 499));
    let o123 = rb.targets["o123"].output.as_ref().unwrap();
    assert_eq!(o123[0]["metadata"]["name"], "changed-cfg");
    // Reverted: the old output is found by the content hash of its inputs; no render.
    let rc = renders.render_all(&sc, &sc.project().unwrap(), Some(&rb.inputs()));
    assert_eq!((rc.rendered, rc.reused), (0, 500));
    assert_eq!(
        rc.targets["o123"].output.as_ref().unwrap()[0]["metadata"]["name"],
        "o123-cfg"
    );
}

/// Writes an ed25519 key pair (OpenSSH format) made from a fixed seed: `name`, `name.pub`.
fn keygen(dir: &Path, name: &str, seed: u8) -> std::path::PathBuf {
    use russh::keys::ssh_key::{LineEnding, PrivateKey, private::Ed25519Keypair};
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]));
    let path = dir.join(name);
    std::fs::write(&path, key.to_openssh(LineEnding::LF).unwrap().as_bytes()).unwrap();
    std::fs::write(
        path.with_extension("pub"),
        key.public_key().to_openssh().unwrap(),
    )
    .unwrap();
    path
}

fn known_hosts_line(port: u16, public_key_file: &Path) -> String {
    let text = std::fs::read_to_string(public_key_file).unwrap();
    let mut fields = text.split_whitespace();
    let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
    format!("[127.0.0.1]:{port} {kind} {key}\n")
}

#[test]
fn ssh_with_a_key_checked_against_known_hosts() {
    let served = Served::new();
    let (_w, shas) = history(&served, "app");
    let keys = tempfile::tempdir().unwrap();
    let host = keygen(keys.path(), "host", 1);
    let client = keygen(keys.path(), "client", 2);
    let other = keygen(keys.path(), "other", 3);
    let server = support::ssh::GitSsh::start(served.base(), &host, &client.with_extension("pub"));
    let kh = keys.path().join("known_hosts");
    let cache = tempfile::tempdir().unwrap();
    let source = Source::new(cache.path());
    let with = |key: &Path| {
        let mut sp = spec(&server.url("app"));
        sp.auth = Auth {
            ssh_key: Some(SecretRef::file(key)),
            known_hosts: Some(kh.clone()),
            ..Auth::default()
        };
        sp
    };

    std::fs::write(
        &kh,
        known_hosts_line(server.port, &host.with_extension("pub")),
    )
    .unwrap();
    let f = source.fetch(&with(&client), &name("main")).unwrap();
    assert_eq!(f.commit.to_string(), shas[9]);
    assert_eq!(read(&source, &with(&client), f.commit, "f.txt"), "9\n");

    // Hashed entries (as `ssh-keygen -H` writes them) work too.
    let line = known_hosts_line(server.port, &host.with_extension("pub"));
    let (pattern, key) = line.split_once(' ').unwrap();
    let hashed = keelson::source::known_hosts::hashed_pattern(pattern, b"0123456789abcdefghij");
    std::fs::write(&kh, format!("{hashed} {key}")).unwrap();
    source.fetch(&with(&client), &name("v1")).unwrap();

    // A key the server does not know: refused, and no key material in the error.
    let e = source.fetch(&with(&other), &name("feature")).unwrap_err();
    assert!(matches!(e, SourceError::Auth { .. }), "{e}");
    let shown = format!("{e} {e:?}");
    let private = std::fs::read_to_string(&other).unwrap();
    for line in private.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!shown.contains(line), "key material leaked: {shown}");
    }

    // Host key changed, or the host unknown: refused before any credential is sent.
    std::fs::write(
        &kh,
        known_hosts_line(server.port, &other.with_extension("pub")),
    )
    .unwrap();
    let e = source.fetch(&with(&client), &name("feature")).unwrap_err();
    assert!(matches!(e, SourceError::HostKey { .. }), "{e}");
    assert!(e.to_string().contains("does not match"), "{e}");
    std::fs::write(&kh, "").unwrap();
    let e = source.fetch(&with(&client), &name("feature")).unwrap_err();
    assert!(matches!(e, SourceError::HostKey { .. }), "{e}");
    assert!(e.to_string().contains("is not in"), "{e}");
}

#[test]
fn the_poller_runs_on_its_schedule_and_when_woken() {
    use keelson::time::Cron;
    let served = Served::new();
    let (w, shas) = history(&served, "app");
    let daemon = GitDaemon::start(served.base());
    let cache = tempfile::tempdir().unwrap();
    let every_second = Cron::parse("* * * * * *").unwrap();
    let poller = Poller::new(
        Source::new(cache.path()),
        spec(&daemon.url("app")),
        name("main"),
        Some(every_second),
    );
    async fn next(rx: &mut tokio::sync::mpsc::Receiver<PollEvent>) -> PollEvent {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap()
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (events, mut rx) = tokio::sync::mpsc::channel(8);
        let (wake, woken) = tokio::sync::mpsc::channel(1);
        let task = tokio::spawn(poller.run(events, Some(woken)));
        match next(&mut rx).await {
            PollEvent::Moved { to, .. } => assert_eq!(to.to_string(), shas[9]),
            other => panic!("{other:?}"),
        }
        w.write("f.txt", "new\n");
        let new = w.commit("new");
        w.push(&["main"]);
        wake.send(()).await.unwrap();
        loop {
            match next(&mut rx).await {
                PollEvent::Unchanged { .. } => continue,
                PollEvent::Moved { to, forced, .. } => {
                    assert_eq!(to.to_string(), new);
                    assert!(!forced);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        drop(rx);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the poller stops when nobody listens")
            .unwrap();
    });
}

#[test]
fn many_incremental_fetches_do_not_pile_up_packs() {
    let served = Served::new();
    let (w, _) = history(&served, "app");
    let cache = tempfile::tempdir().unwrap();
    let source = Source::new(cache.path());
    let sp = spec(&w.bare.display().to_string());
    let mut last = String::new();
    for i in 0..40 {
        w.write("f.txt", &format!("round {i}\n"));
        last = w.commit(&format!("round {i}"));
        if i == 20 {
            w.run(&["tag", "-a", "mid", "-m", "mid"]);
            w.push(&["mid"]);
        }
        w.push(&["main"]);
        source.fetch(&sp, &name("main")).unwrap();
    }
    source.fetch(&sp, &name("mid")).unwrap();
    let packs = support::walk(&source.mirror_dir(&sp.url).join("objects/pack"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .count();
    // 42 downloads, one pack each: merged into one at 33, then 7 more.
    assert!(packs < 20, "{packs} packs");
    // Everything reachable is still there: history, tags, trees.
    let mirror = git2::Repository::open_bare(source.mirror_dir(&sp.url)).unwrap();
    let mut walk = mirror.revwalk().unwrap();
    walk.push(Oid::from_str(&last).unwrap()).unwrap();
    assert_eq!(walk.count(), 50);
    let f = source.fetch(&sp, &name("v1")).unwrap();
    assert_eq!(read(&source, &sp, f.commit, "f.txt"), "3\n");
    assert_eq!(
        read(&source, &sp, Oid::from_str(&last).unwrap(), "f.txt"),
        "round 39\n"
    );
}

/// A server that answers every request with a redirect to `to` (same path).
fn redirector(to: String) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().map_while(Result::ok) {
            use std::io::{BufRead, Write};
            let mut line = String::new();
            let _ = std::io::BufReader::new(&s).read_line(&mut line);
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let _ = write!(
                s,
                "HTTP/1.1 301 Moved Permanently\r\nLocation: {to}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    port
}

#[test]
fn credentials_are_not_sent_to_the_host_a_redirect_leads_to() {
    let served = Served::new();
    history(&served, "private");
    let secret = "tok-redirect-0a1b2c3d-secret";
    let http = GitHttp::start(served.base(), Some(("deploy", secret)));
    // The configured host redirects to another host name of the credentialed server.
    let port = redirector(format!("http://localhost:{}", http.port));
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, secret).unwrap();
    let source = Source::new(dir.path().join("cache"));
    let mut sp = spec(&format!("http://127.0.0.1:{port}/private.git"));
    sp.auth = Auth {
        username: Some("deploy".into()),
        token: Some(SecretRef::file(&token)),
        ..Auth::default()
    };
    let e = source.fetch(&sp, &name("main")).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("are not sent to http://localhost:"), "{text}");
    assert!(!text.contains(secret) && !format!("{e:?}").contains(secret));
    assert!(
        http.requests()
            .iter()
            .all(|r| r.starts_with("GET /private.git/info/refs")),
        "nothing past the refused ref listing: {:?}",
        http.requests()
    );
}
