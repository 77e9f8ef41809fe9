//! One test cluster: etcd + kube-apiserver (+ optionally kube-controller-manager).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::process::{Supervised, free_port};
use crate::{Binaries, HarnessError, Pki, kubeconfig};

/// A running cluster, reachable at `server` with the admin identity in `pki`.
#[derive(Debug)]
pub struct Cluster {
    name: String,
    server: String,
    dir: PathBuf,
    pki: Pki,
    // Declaration order is drop order: clients of etcd stop before etcd does.
    controller_manager: Option<Supervised>,
    apiserver: Supervised,
    etcd: Supervised,
    /// How the API server and etcd were started, to signal or start them again.
    apiserver_command: (PathBuf, Vec<String>),
    etcd_program: PathBuf,
    restarts: usize,
}

fn write(path: &Path, text: &str) -> Result<(), HarnessError> {
    std::fs::write(path, text).map_err(|e| HarnessError::Io {
        what: format!("writing {}", path.display()),
        source: e,
    })
}

impl Cluster {
    /// Starts etcd and kube-apiserver in `root/<name>`; does not wait for readiness.
    pub(crate) fn spawn(bins: &Binaries, name: &str, root: &Path) -> Result<Self, HarnessError> {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("etcd")).map_err(|e| HarnessError::Io {
            what: format!("creating {}", dir.display()),
            source: e,
        })?;
        let pki = Pki::generate(name)?;
        let file = |n: &str| dir.join(n).to_string_lossy().into_owned();
        write(&dir.join("ca.crt"), &pki.ca_cert)?;
        write(&dir.join("serving.crt"), &pki.serving_cert)?;
        write(&dir.join("serving.key"), &pki.serving_key)?;
        write(&dir.join("sa.key"), &pki.sa_key)?;
        write(&dir.join("sa.pub"), &pki.sa_pub)?;

        let (client, peer, secure) = (free_port()?, free_port()?, free_port()?);
        let etcd_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let etcd_args = vec![
            format!("--name={name}"),
            format!("--data-dir={}", file("etcd")),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster={name}={peer_url}"),
            // Test data is thrown away: skipping fsync makes writes ~10x faster.
            "--unsafe-no-fsync=true".into(),
            "--log-level=warn".into(),
        ];
        let etcd = Supervised::spawn(
            &format!("etcd of {name}"),
            &bins.etcd,
            &etcd_args,
            &dir.join("etcd.log"),
        )?;

        let apiserver_args = vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            // The endpoint reconciler refuses loopback addresses; tests need no Endpoints.
            "--endpoint-reconciler-type=none".into(),
            format!("--secure-port={secure}"),
            format!("--cert-dir={}", file("certs")),
            format!("--tls-cert-file={}", file("serving.crt")),
            format!("--tls-private-key-file={}", file("serving.key")),
            format!("--client-ca-file={}", file("ca.crt")),
            "--authorization-mode=RBAC".into(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", file("sa.pub")),
            format!("--service-account-signing-key-file={}", file("sa.key")),
            "--service-cluster-ip-range=10.96.0.0/16".into(),
            "--allow-privileged=true".into(),
            // Two cores host several clusters: drop what tests never exercise.
            "--enable-priority-and-fairness=false".into(),
            "--profiling=false".into(),
            "--v=0".into(),
        ];
        let apiserver = Supervised::spawn(
            &format!("kube-apiserver of {name}"),
            &bins.apiserver,
            &apiserver_args,
            &dir.join("kube-apiserver.log"),
        )?;
        let apiserver_command = (bins.apiserver.clone(), apiserver_args);

        Ok(Cluster {
            name: name.to_string(),
            server: format!("https://127.0.0.1:{secure}"),
            dir,
            pki,
            controller_manager: None,
            apiserver,
            etcd,
            apiserver_command,
            etcd_program: bins.etcd.clone(),
            restarts: 0,
        })
    }

    /// Polls `/readyz` until it answers `ok`, a process dies, or `timeout` passes.
    pub(crate) async fn wait_ready(&mut self, timeout: Duration) -> Result<(), HarnessError> {
        self.wait_for("/readyz", "kube-apiserver /readyz", timeout, |body| {
            body.trim() == "ok"
        })
        .await
    }

    /// Waits until the controllers work: the service-account controller has created the
    /// `default` ServiceAccount of the `default` namespace.
    pub(crate) async fn wait_controllers(&mut self, timeout: Duration) -> Result<(), HarnessError> {
        let path = "/api/v1/namespaces/default/serviceaccounts/default";
        self.wait_for(path, "kube-controller-manager", timeout, |_| true)
            .await
    }

    /// Polls GET `path` until `accept` takes the answer, checking that every process of
    /// the cluster is still running in between.
    async fn wait_for(
        &mut self,
        path: &str,
        what: &str,
        timeout: Duration,
        accept: fn(&str) -> bool,
    ) -> Result<(), HarnessError> {
        let client = self.client().await?;
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            self.etcd.check_running()?;
            self.apiserver.check_running()?;
            if let Some(cm) = self.controller_manager.as_mut() {
                cm.check_running()?;
            }
            if let Ok(req) = http::Request::get(path).body(Vec::new()) {
                match client.request_text(req).await {
                    Ok(body) if accept(&body) => return Ok(()),
                    Ok(body) => last = body,
                    Err(e) => last = e.to_string(),
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(HarnessError::NotReady {
            cluster: self.name.clone(),
            timeout,
            last: format!("{what}: {last}"),
        })
    }

    /// Starts kube-controller-manager for this cluster (after the API server is ready).
    pub(crate) fn spawn_controller_manager(&mut self, bins: &Binaries) -> Result<(), HarnessError> {
        let own = self.dir.join("admin.kubeconfig");
        kubeconfig::write(&own, std::slice::from_ref(self))?;
        let args = vec![
            format!("--kubeconfig={}", own.display()),
            format!("--authentication-kubeconfig={}", own.display()),
            format!("--authorization-kubeconfig={}", own.display()),
            "--bind-address=127.0.0.1".into(),
            "--secure-port=0".into(),
            "--leader-elect=false".into(),
            "--use-service-account-credentials=false".into(),
            format!(
                "--service-account-private-key-file={}",
                self.dir.join("sa.key").display()
            ),
            format!("--root-ca-file={}", self.dir.join("ca.crt").display()),
            // There are no nodes: skip the controllers that only manage them.
            "--controllers=*,-nodeipam,-nodelifecycle".into(),
            "--v=0".into(),
        ];
        self.controller_manager = Some(Supervised::spawn(
            &format!("kube-controller-manager of {}", self.name),
            &bins.controller_manager,
            &args,
            &self.dir.join("kube-controller-manager.log"),
        )?);
        Ok(())
    }

    /// The kubeconfig context name (`e2e-1`, …).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The API server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The certificates and keys of this cluster.
    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// A new admin client for this cluster, bound to the current tokio runtime.
    pub async fn client(&self) -> Result<kube::Client, HarnessError> {
        let config =
            kubeconfig::config_for(self)
                .await
                .map_err(|message| HarnessError::Client {
                    cluster: self.name.clone(),
                    message,
                })?;
        kube::Client::try_from(config).map_err(|e| HarnessError::Client {
            cluster: self.name.clone(),
            message: e.to_string(),
        })
    }

    /// Kills the API server outright (SIGKILL: no graceful shutdown), as a crash would.
    pub fn kill_apiserver(&mut self) -> Result<(), HarnessError> {
        self.apiserver.signal(&self.apiserver_command.0, "KILL")?;
        self.apiserver.wait_exit(Duration::from_secs(10));
        Ok(())
    }

    /// Starts the API server again, on the same port and the same etcd, and waits for it.
    pub async fn restart_apiserver(&mut self, timeout: Duration) -> Result<(), HarnessError> {
        self.restarts += 1;
        let (program, args) = &self.apiserver_command;
        self.apiserver = Supervised::spawn(
            &format!(
                "kube-apiserver of {} (restart {})",
                self.name, self.restarts
            ),
            program,
            args,
            &self
                .dir
                .join(format!("kube-apiserver.restart-{}.log", self.restarts)),
        )?;
        self.wait_ready(timeout).await
    }

    /// Stops etcd (SIGSTOP: its connections stay open and nothing answers) until
    /// [`Cluster::resume_etcd`].
    pub fn pause_etcd(&self) -> Result<(), HarnessError> {
        self.etcd.signal(&self.etcd_program, "STOP")
    }

    pub fn resume_etcd(&self) -> Result<(), HarnessError> {
        self.etcd.signal(&self.etcd_program, "CONT")
    }

    /// The API server's log, for debugging a failed test.
    pub fn apiserver_log(&self) -> &Path {
        self.apiserver.log()
    }

    /// Stops this cluster's processes (also done on drop).
    pub fn stop(&mut self) {
        if let Some(cm) = self.controller_manager.as_mut() {
            cm.stop();
        }
        self.apiserver.stop();
        self.etcd.stop();
    }
}
