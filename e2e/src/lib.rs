//! The real control plane for Keelson's end-to-end tests.
//!
//! [`ControlPlane::start`] starts N independent Kubernetes clusters on loopback — each its
//! own etcd and kube-apiserver (built from the Go module proxy at the versions pinned in
//! `e2e/controlplane/versions.env`), with its own CA, admin client certificate and
//! service-account keys, RBAC authorization — and writes one kubeconfig with a context per
//! cluster (`e2e-1`, `e2e-2`, …). Every process stops when the harness is dropped, and also
//! when the test process dies without dropping it (see [`process`]).

mod binaries;
mod cluster;
pub mod github;
mod kubeconfig;
mod pki;
pub mod process;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

pub use binaries::Binaries;
pub use cluster::Cluster;
pub use pki::Pki;

/// How long a cluster may take to report `/readyz` before the start counts as failed.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Something went wrong while building or running the control plane.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The control-plane binaries could not be built.
    #[error("building the control plane failed (see the output above): {0}")]
    Build(String),
    /// Certificates could not be generated.
    #[error("generating certificates: {0}")]
    Pki(String),
    /// A server process exited while it should be running.
    #[error("{name} exited ({status}); last lines of its log:\n{log_tail}")]
    Exited {
        /// Which process.
        name: String,
        /// Its exit status.
        status: String,
        /// The end of its log.
        log_tail: String,
    },
    /// A cluster did not become ready in time.
    #[error("cluster {cluster} was not ready within {timeout:?}: {last}")]
    NotReady {
        /// The cluster's context name.
        cluster: String,
        /// How long we waited.
        timeout: Duration,
        /// The last thing `/readyz` said.
        last: String,
    },
    /// Talking to a cluster failed.
    #[error("cluster {cluster}: {message}")]
    Client {
        /// The cluster's context name.
        cluster: String,
        /// What failed.
        message: String,
    },
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Options {
    /// How many clusters (contexts `e2e-1` … `e2e-N`).
    pub clusters: usize,
    /// Also run kube-controller-manager (namespace deletion, garbage collection, workloads).
    pub controller_manager: bool,
    /// Where data, logs and the kubeconfig go; a fresh temporary directory when `None`.
    pub dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            clusters: 2,
            controller_manager: false,
            dir: None,
        }
    }
}

/// N running clusters and the kubeconfig that reaches them. Dropping it stops them all.
#[derive(Debug)]
pub struct ControlPlane {
    clusters: Vec<Cluster>,
    kubeconfig: PathBuf,
    // Dropped last, after every process has stopped.
    _tmp: Option<tempfile::TempDir>,
}

impl ControlPlane {
    /// Starts the clusters and waits until every one answers `/readyz`.
    ///
    /// Blocking: call it from a plain thread or a test's setup, not from inside a runtime.
    pub fn start(options: Options) -> Result<Self, HarnessError> {
        let binaries = Binaries::ensure()?;
        let (tmp, dir) = match &options.dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let tmp = run_dir()?;
                let dir = tmp.path().to_path_buf();
                (Some(tmp), dir)
            }
        };
        std::fs::create_dir_all(&dir).map_err(|e| HarnessError::Io {
            what: format!("creating {}", dir.display()),
            source: e,
        })?;

        // Start every server first, then wait for all: the clusters boot in parallel.
        let mut clusters = Vec::with_capacity(options.clusters);
        for i in 1..=options.clusters {
            clusters.push(Cluster::spawn(&binaries, &format!("e2e-{i}"), &dir)?);
        }
        let kubeconfig = dir.join("kubeconfig");
        kubeconfig::write(&kubeconfig, &clusters)?;

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| HarnessError::Io {
                what: "starting a runtime".into(),
                source: e,
            })?;
        for i in 0..clusters.len() {
            // A port found free can be taken before the server binds it (an outgoing
            // connection's ephemeral port comes from the same range): start that cluster
            // again on other ports.
            let mut tries = 1;
            loop {
                match runtime.block_on(clusters[i].wait_ready(READY_TIMEOUT)) {
                    Err(HarnessError::Exited { log_tail, .. })
                        if tries < 4 && log_tail.contains("address already in use") =>
                    {
                        tries += 1;
                        let name = clusters[i].name().to_string();
                        clusters[i].stop();
                        let _ = std::fs::remove_dir_all(dir.join(&name));
                        clusters[i] = Cluster::spawn(&binaries, &name, &dir)?;
                        kubeconfig::write(&kubeconfig, &clusters)?;
                    }
                    other => break other?,
                }
            }
        }
        if options.controller_manager {
            for cluster in &mut clusters {
                cluster.spawn_controller_manager(&binaries)?;
            }
            for cluster in &mut clusters {
                runtime.block_on(cluster.wait_controllers(READY_TIMEOUT))?;
            }
        }
        Ok(ControlPlane {
            clusters,
            kubeconfig,
            _tmp: tmp,
        })
    }

    /// The control plane shared by every test of this test binary (two clusters), started
    /// on first use. Panics with the reason if it cannot start: there is nothing to test.
    pub fn shared() -> &'static ControlPlane {
        static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
        let started = SHARED.get_or_init(|| {
            // Start on a plain thread: the caller may be inside a tokio runtime.
            std::thread::spawn(|| ControlPlane::start(Options::default()))
                .join()
                .map_err(|_| "the control plane start panicked".to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
        });
        match started {
            Ok(cp) => cp,
            Err(e) => panic!("cannot start the e2e control plane: {e}"),
        }
    }

    /// The kubeconfig file with one context per cluster.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A cluster by context name, to break it on purpose (tests with a control plane of
    /// their own: the shared one is shared).
    pub fn cluster_mut(&mut self, context: &str) -> Option<&mut Cluster> {
        self.clusters.iter_mut().find(|c| c.name() == context)
    }

    /// The clusters, in context order.
    pub fn clusters(&self) -> &[Cluster] {
        &self.clusters
    }

    /// The cluster with this context name.
    pub fn cluster(&self, context: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name() == context)
    }

    /// Stops every process (also done on drop).
    pub fn stop(&mut self) {
        for cluster in &mut self.clusters {
            cluster.stop();
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A fresh directory for one run, under a common root where directories of dead runs are
/// swept first (a killed test binary cannot remove its own).
fn run_dir() -> Result<tempfile::TempDir, HarnessError> {
    let root = std::env::temp_dir().join("keelson-e2e-runs");
    let io = |e| HarnessError::Io {
        what: format!("preparing {}", root.display()),
        source: e,
    };
    std::fs::create_dir_all(&root).map_err(io)?;
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').next().unwrap_or_default();
            if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    tempfile::Builder::new()
        .prefix(&format!("{}-", std::process::id()))
        .tempdir_in(&root)
        .map_err(io)
}

/// A name no other test of this process uses (tests share the clusters): `prefix`, a
/// time-derived part and a counter, short enough for Kubernetes names.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{:x}-{}",
        nanos % 0xfffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}
