//! Targets whose render runs an external tool, from a git source: `renderer: kustomize`
//! (the real kustomize binary) and `helmCharts` (the real helm), through `keelson diff
//! --repo` and through `keelson serve`, against the real clusters of the harness.
//!
//! Both tools read real files, while a git source is read from the object database; the
//! engine writes the commit's tree out for them. Before that existed, both failed here
//! with a path under the virtual root `/<repo>@<sha>`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use keelson_e2e::{ControlPlane, unique};
use kube::Api;
use support::{GitDaemon, Served, Work};

/// The real tools, as `e2e/test.sh` exports them; a test without them cannot prove
/// anything, so it fails instead of passing empty.
fn tools() -> (String, String) {
    let get = |name: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} is not set: run the suite with ./e2e/test.sh"))
    };
    (get("KEELSON_KUSTOMIZE"), get("KEELSON_HELM"))
}

/// A repository with one target per external renderer, each a Namespace and ConfigMaps.
fn repository(work: &Work, id: &str, value: &str) {
    work.write(
        "keelson.yaml",
        &format!(
            // Named as their contexts, with no connection settings: the CLI reaches each
            // through the context of its name, `keelson serve` as its ServeConfig says.
            "clusters:\n\
             - name: e2e-1\n  labels: {{all: \"yes\"}}\n\
             - name: e2e-2\n  labels: {{all: \"yes\"}}\n\
             targets:\n\
             - name: {id}-kz\n  path: kz/overlay\n  renderer: kustomize\n  clusterSelector: {{all: \"yes\"}}\n\
             - name: {id}-helm\n  path: helm\n  clusterSelector: {{all: \"yes\"}}\n"
        ),
    );
    // kustomize: an overlay over a base elsewhere in the tree, with a generator.
    work.write("kz/base/kustomization.yaml", "resources:\n- cm.yaml\n");
    work.write(
        "kz/base/cm.yaml",
        &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {id}-kz\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: base\n  namespace: {id}-kz\ndata:\n  v: \"1\"\n"
        ),
    );
    work.write(
        "kz/overlay/kustomization.yaml",
        &format!(
            "resources:\n- ../base\nconfigMapGenerator:\n- name: generated\n  namespace: {id}-kz\n  literals:\n  - from=kustomize\n"
        ),
    );
    // helm: a vendored chart whose values file sets the ConfigMap's value.
    work.write(
        "helm/kustomization.yaml",
        &format!(
            "helmCharts:\n- name: web\n  releaseName: shop\n  namespace: {id}-helm\n  valuesFile: values.yaml\n\
             resources:\n- ns.yaml\n"
        ),
    );
    work.write(
        "helm/ns.yaml",
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {id}-helm\n"),
    );
    work.write("helm/values.yaml", &format!("colour: \"{value}\"\n"));
    work.write(
        "helm/charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    );
    work.write("helm/charts/web/values.yaml", "colour: grey\n");
    work.write(
        "helm/charts/web/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-web\n  namespace: {{ .Release.Namespace }}\ndata:\n  colour: {{ .Values.colour | quote }}\n",
    );
}

fn data(rt: &tokio::runtime::Runtime, c: &kube::Client, ns: &str, name: &str) -> Option<String> {
    rt.block_on(Api::<ConfigMap>::namespaced(c.clone(), ns).get_opt(name))
        .ok()
        .flatten()
        .and_then(|cm| cm.data)
        .map(|d| {
            d.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
}

fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

fn keelson(args: &[&str], cache: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn kustomize_and_helm_targets_deploy_from_git_through_the_cli_and_serve() {
    tools();
    let cp = ControlPlane::shared();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let clients: Vec<kube::Client> = ["e2e-1", "e2e-2"]
        .iter()
        .map(|ctx| rt.block_on(cp.cluster(ctx).unwrap().client()).unwrap())
        .collect();
    let served = Served::new();
    let work = served.repo("deploy");
    let daemon = GitDaemon::start(served.base());
    let id = unique("ext");
    repository(&work, &id, "blue");
    let first = work.commit("first");
    work.push(&["main"]);
    let url = daemon.url("deploy");
    let kubeconfig = cp.kubeconfig().display().to_string();

    // The CLI, from the git source: both targets render and would create their objects.
    let cache = tempfile::tempdir().unwrap();
    let diff = keelson(
        &[
            "diff",
            "--repo",
            &url,
            "--ref",
            "main",
            "--kubeconfig",
            &kubeconfig,
            "-o",
            "json",
        ],
        cache.path(),
    );
    let err = String::from_utf8_lossy(&diff.stderr);
    let outcomes: serde_json::Value = serde_json::from_slice(&diff.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{err}", String::from_utf8_lossy(&diff.stdout)));
    assert_eq!(
        diff.status.code(),
        Some(1),
        "differences expected: {outcomes}\n{err}"
    );
    let mut created = std::collections::BTreeSet::new();
    for o in outcomes.as_array().unwrap() {
        let changes = o["ok"]["changes"]
            .as_array()
            .unwrap_or_else(|| panic!("a plan for every target and cluster: {o}"));
        for c in changes {
            assert_eq!(c["action"], "create", "{c}");
            created.insert(format!(
                "{}/{}",
                o["target"].as_str().unwrap(),
                c["name"].as_str().unwrap()
            ));
        }
    }
    let expected: Vec<String> = created
        .iter()
        .filter(|n| !n.contains("/generated-"))
        .cloned()
        .collect();
    assert_eq!(
        expected,
        [
            format!("{id}-helm/{id}-helm"),
            format!("{id}-helm/shop-web"),
            format!("{id}-kz/base"),
            format!("{id}-kz/{id}-kz"),
        ],
        "{created:?}"
    );
    assert!(
        created
            .iter()
            .any(|n| n.starts_with(&format!("{id}-kz/generated-"))),
        "{created:?}"
    );

    // `keelson serve` deploys both to both clusters.
    let state = tempfile::tempdir().unwrap();
    let config = state.path().join("serve.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:0\nstateDir: {}\nkubeconfig: {kubeconfig}\n\
             retry: {{base: 300ms, max: 1s}}\n\
             clusters: [{{name: e2e-1}}, {{name: e2e-2}}]\n\
             repositories:\n- url: {url}\n  ref: main\n  poll: \"* * * * * *\"\n",
            state.path().join("cache").display()
        ),
    )
    .unwrap();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = log.clone();
    let stderr = serve.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let on_all = |ns: &str, name_prefix: &str, want: &str| {
        clients.iter().all(|c| {
            let list = rt
                .block_on(Api::<ConfigMap>::namespaced(c.clone(), ns).list(&Default::default()))
                .map(|l| l.items)
                .unwrap_or_default();
            list.iter().any(|cm| {
                cm.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(name_prefix))
                    && cm
                        .data
                        .as_ref()
                        .is_some_and(|d| d.values().any(|v| v == want))
            })
        })
    };
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(
            "both targets on both clusters",
            Duration::from_secs(90),
            || {
                on_all(&format!("{id}-kz"), "generated-", "kustomize")
                    && on_all(&format!("{id}-kz"), "base", "1")
                    && on_all(&format!("{id}-helm"), "shop-web", "blue")
            },
        );
        // A change to the chart's values only: helm renders again, the new value lands.
        work.write("helm/values.yaml", "colour: \"green\"\n");
        let second = work.commit("green");
        work.push(&["main"]);
        assert_ne!(first, second);
        wait_for(
            "the new value on both clusters",
            Duration::from_secs(60),
            || on_all(&format!("{id}-helm"), "shop-web", "green"),
        );
    }));
    let _ = serve.kill();
    let _ = serve.wait();
    if let Err(panic) = waited {
        eprintln!("keelson serve's log:\n{}", log.lock().unwrap().join("\n"));
        std::panic::resume_unwind(panic);
    }
    assert_eq!(
        data(&rt, &clients[0], &format!("{id}-kz"), "base").as_deref(),
        Some("v=1")
    );
    // Nothing the tools saw was left where the engine keeps its own files.
    let log = log.lock().unwrap().join("\n");
    assert!(!log.contains("not on disk"), "{log}");
}
