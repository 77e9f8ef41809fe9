//! `keelson serve` as the e2e tests drive it: the real binary started on a ServeConfig,
//! a repository served by `git daemon` whose targets write ConfigMaps to the harness's two
//! clusters, signed deliveries of GitHub's real push payload, and readers of the clusters.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use keelson_e2e::{ControlPlane, unique};
use kube::Api;
use serde_json::Value;

use super::{GitDaemon, Served, Work};

pub const SECRET: &str = "serve-test-secret";

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A client of one harness cluster (`e2e-1`, `e2e-2`).
pub fn client(rt: &tokio::runtime::Runtime, context: &str) -> kube::Client {
    let cluster = ControlPlane::shared().cluster(context).unwrap();
    rt.block_on(cluster.client()).unwrap()
}

/// Polls `check` every 100 ms until it holds or `timeout` passes.
pub fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The ConfigMaps of `ns` in one cluster: name → data.v.
pub fn config_maps(
    rt: &tokio::runtime::Runtime,
    c: &kube::Client,
    ns: &str,
) -> Vec<(String, String)> {
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), ns);
    let list = match rt.block_on(api.list(&Default::default())) {
        Ok(l) => l.items,
        Err(_) => return Vec::new(),
    };
    let mut out: Vec<(String, String)> = list
        .into_iter()
        .filter(|cm| cm.metadata.name.as_deref() != Some("kube-root-ca.crt"))
        .map(|cm| {
            let v = cm
                .data
                .and_then(|d| d.get("v").cloned())
                .unwrap_or_default();
            (cm.metadata.name.unwrap_or_default(), v)
        })
        .collect();
    out.sort();
    out
}

/// The ApplySet parents of a target (one per repository that has a target of that
/// name), found by the target they name.
pub fn parents(rt: &tokio::runtime::Runtime, c: &kube::Client, target: &str) -> Vec<Secret> {
    let api: Api<Secret> = Api::namespaced(c.clone(), "keelson-system");
    let Ok(list) = rt.block_on(api.list(&Default::default())) else {
        return Vec::new();
    };
    list.items
        .into_iter()
        .filter(|s| {
            s.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("keelson.dev/target"))
                .is_some_and(|t| t == target)
        })
        .collect()
}

/// The commit a target's ApplySet parent records.
pub fn synced_commit(
    rt: &tokio::runtime::Runtime,
    c: &kube::Client,
    target: &str,
) -> Option<String> {
    parents(rt, c, target)
        .into_iter()
        .next()
        .and_then(|s| s.metadata.annotations)
        .and_then(|a| a.get("keelson.dev/last-synced-commit").cloned())
}

/// A GitOps repository served by `git daemon`: targets `<id>-a` and `<id>-b` on both
/// clusters, each an overlay of ConfigMaps in its own namespace.
pub struct Repo {
    pub _served: Served,
    pub work: Work,
    pub daemon: GitDaemon,
    pub id: String,
}

impl Repo {
    pub fn new(prefix: &str) -> Self {
        let served = Served::new();
        let work = served.repo("deploy");
        let daemon = GitDaemon::start(served.base());
        let id = unique(prefix);
        let repo = Repo {
            _served: served,
            work,
            daemon,
            id,
        };
        repo.work.write(
            "keelson.yaml",
            &format!(
                "clusters:\n\
                 - name: one\n  labels: {{all: \"yes\"}}\n\
                 - name: two\n  labels: {{all: \"yes\"}}\n\
                 targets:\n\
                 - name: {id}-a\n  path: a\n  clusterSelector: {{all: \"yes\"}}\n\
                 - name: {id}-b\n  path: b\n  clusterSelector: {{all: \"yes\"}}\n",
                id = repo.id
            ),
        );
        repo
    }

    pub fn url(&self) -> String {
        self.daemon.url("deploy")
    }

    pub fn target(&self, t: &str) -> String {
        format!("{}-{t}", self.id)
    }

    pub fn ns(&self, t: &str) -> String {
        format!("{}-{t}", self.id)
    }

    /// Writes overlay `t` (`a` or `b`): ConfigMaps `cm-<i>` for `range`, data `v`.
    pub fn overlay(&self, t: &str, range: std::ops::Range<usize>, v: &str) {
        let mut docs = vec![format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}\n",
            self.ns(t)
        )];
        for i in range {
            docs.push(format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  namespace: {}\ndata:\n  v: \"{v}\"\n",
                self.ns(t)
            ));
        }
        self.work
            .write(&format!("{t}/objects.yaml"), &docs.join("---\n"));
        self.work.write(
            &format!("{t}/kustomization.yaml"),
            "resources:\n- objects.yaml\n",
        );
    }

    /// Commits and pushes; returns the commit.
    pub fn push(&self, message: &str) -> String {
        let c = self.work.commit(message);
        self.work.push(&["main"]);
        c
    }
}

/// A `keelson serve` process.
pub struct Serve {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
    pub dir: PathBuf,
}

/// How to configure an engine.
#[derive(Clone)]
pub struct EngineOptions {
    pub poll: Option<&'static str>,
    pub kubeconfig: PathBuf,
    pub self_heal: Option<&'static str>,
    /// More settings (YAML lines of the top level).
    pub extra: String,
    /// The replica's name (`POD_NAME`).
    pub identity: Option<String>,
    /// More settings of the repository's entry (YAML lines indented by two).
    pub repository: String,
    /// More entries of `repositories` (YAML lines).
    pub repositories: String,
    /// The ServeConfig's `clusters` (YAML lines): by default `one` and `two`, the
    /// harness's contexts `e2e-1` and `e2e-2`, labelled `all: "yes"`.
    pub clusters: String,
}

impl EngineOptions {
    pub fn new() -> Self {
        EngineOptions {
            poll: None,
            kubeconfig: ControlPlane::shared().kubeconfig().to_path_buf(),
            self_heal: None,
            extra: String::new(),
            identity: None,
            repository: String::new(),
            repositories: String::new(),
            clusters: "clusters:\n\
                       - {name: one, labels: {all: \"yes\"}, kubeconfig: {context: e2e-1}}\n\
                       - {name: two, labels: {all: \"yes\"}, kubeconfig: {context: e2e-2}}\n"
                .into(),
        }
    }
}

impl Serve {
    pub fn start(repo: &Repo, state: &Path, options: &EngineOptions) -> Self {
        std::fs::create_dir_all(state).unwrap();
        let secret = state.join("webhook-secret");
        std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
        let mut config = format!(
            "apiVersion: keelson.dev/v1alpha1\nkind: ServeConfig\nlisten: 127.0.0.1:0\n\
             stateDir: {}\nkubeconfig: {}\nwebhook: {{secretFile: {}}}\n\
             retry: {{base: 300ms, max: 1s}}\n",
            state.join("cache").display(),
            options.kubeconfig.display(),
            secret.display()
        );
        if let Some(s) = options.self_heal {
            config.push_str(&format!("selfHeal: \"{s}\"\n"));
        }
        config.push_str(&options.extra);
        config.push_str(&options.clusters);
        config.push_str(&format!(
            "repositories:\n- url: {}\n  ref: main\n  github: octo/{}\n",
            repo.url(),
            repo.id
        ));
        if let Some(p) = options.poll {
            config.push_str(&format!("  poll: \"{p}\"\n"));
        }
        config.push_str(&options.repository);
        config.push_str(&options.repositories);
        let path = state.join("serve.yaml");
        std::fs::write(&path, config).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_keelson"));
        if let Some(id) = &options.identity {
            command.env("POD_NAME", id);
        }
        let mut child = command
            .args(["serve", "--config"])
            .arg(&path)
            .env("RUST_LOG", "info,keelson=debug")
            .env("NO_COLOR", "1")
            .env_remove("KEELSON_WEBHOOK_SECRET")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("keelson serve: listening on http://") {
                    let _ = tx.send(a.to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("keelson serve did not start: {:?}", log.lock().unwrap()))
            .parse()
            .unwrap();
        Serve {
            child,
            addr,
            log,
            dir: state.to_path_buf(),
        }
    }

    pub fn request(&self, head: &str, body: &[u8]) -> (u16, String) {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut resp = String::new();
        stream.read_to_string(&mut resp).unwrap();
        let code = resp.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (code, body)
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        self.request(
            &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
            b"",
        )
    }

    /// Sends GitHub's push example, pointed at this repository and commit, signed.
    pub fn deliver_push(&self, repo: &Repo, before: &str, after: &str) -> u16 {
        let mut payload = push_example();
        payload["ref"] = "refs/heads/main".into();
        payload["before"] = before.into();
        payload["after"] = after.into();
        payload["created"] = false.into();
        payload["deleted"] = false.into();
        payload["repository"]["full_name"] = format!("octo/{}", repo.id).into();
        payload["repository"]["clone_url"] = repo.url().into();
        let body = serde_json::to_vec(&payload).unwrap();
        let signature = keelson_webhooks::signature::sign(SECRET.as_bytes(), &body);
        let head = format!(
            "POST /hooks/github HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\
             X-GitHub-Event: push\r\nX-GitHub-Delivery: {}\r\nX-Hub-Signature-256: {signature}\r\n\r\n",
            body.len(),
            unique("delivery")
        );
        self.request(&head, &body).0
    }

    pub fn targets(&self) -> Vec<Value> {
        let (code, body) = self.get("/api/v1/targets");
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["targets"].as_array().unwrap().clone()
    }

    /// A metric's value (0 when absent).
    pub fn metric(&self, line_prefix: &str) -> f64 {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(line_prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    pub fn successes(&self, target: &str, cluster: &str) -> f64 {
        self.metric(&format!(
            "keelson_sync_results_total{{target=\"{target}\",cluster=\"{cluster}\",outcome=\"success\"}}"
        ))
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "--- keelson serve log ({}) ---\n{}",
                self.dir.display(),
                self.log()
            );
        }
    }
}

/// GitHub's push example from `@octokit/webhooks-examples` (a branch push).
pub fn push_example() -> Value {
    let dir = std::env::var_os("KEELSON_WEBHOOK_EXAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap())
                .join(".cache/keelson-e2e/npm/node_modules/@octokit/webhooks-examples")
        });
    let index: Value = serde_json::from_slice(
        &std::fs::read(dir.join("api.github.com/index.json"))
            .expect("GitHub's payload examples: run ./e2e/test.sh once (it installs them)"),
    )
    .unwrap();
    index
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "push")
        .flat_map(|e| e["examples"].as_array().unwrap().iter())
        .find(|p| {
            p["ref"]
                .as_str()
                .is_some_and(|r| r.starts_with("refs/heads/"))
                && p["deleted"] == false
        })
        .cloned()
        .expect("a branch push example")
}
