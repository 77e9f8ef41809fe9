//! `keelson serve` as a library call: bind the listeners, start leases, the GitHub status
//! reporter, the webhook receiver and the engine, and serve until told to stop. The CLI
//! only parses the flag, prints the addresses and waits for a signal.

use std::future::Future;
use std::net::SocketAddr;

use keelson_webhooks::{Config, Receiver, Secret, TriggerKind, listener};
use tokio::net::TcpListener;

use super::config::Settings;
use super::engine::{Engine, Extras};
use super::github::{self, StatusError, StatusReporter, Token};
use super::http;
use super::lease::{self, Shard};
use crate::source::Source;

/// `keelson serve` could not start, or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("leases: {0}")]
    LeaseClient(#[source] crate::cluster::ClusterError),
    #[error("starting leases in namespace {namespace}: {source}")]
    Leases {
        namespace: String,
        source: kube::Error,
    },
    #[error("GitHub statuses: {0}")]
    Statuses(#[from] StatusError),
    #[error("serving HTTP: {0}")]
    Http(#[source] std::io::Error),
    #[error("fingerprint key: {0}")]
    FingerprintKey(String),
    #[error("webhook secret: {0}")]
    HostSecret(#[from] keelson_webhooks::ConfigError),
}

/// The engine's listeners, bound, with its leases started (the replica is a member).
pub struct Bound {
    settings: Settings,
    secret: Option<Secret>,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    identity: String,
    shard: Shard,
    leases_in: Option<String>,
}

/// Binds the listeners and joins the leases; nothing is synced yet.
pub async fn bind(settings: Settings, secret: Option<Secret>) -> Result<Bound, RunError> {
    let listen = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| RunError::Listen { addr, source })
    };
    let listener = listen(settings.listen).await?;
    // Free pages back to the system now and then (see `allocator`).
    tokio::spawn(async {
        let mut every = tokio::time::interval(super::allocator::TRIM_EVERY);
        loop {
            every.tick().await;
            super::allocator::trim();
        }
    });
    let metrics = match settings.metrics_listen {
        Some(a) => Some(listen(a).await?),
        None => None,
    };
    let mut identity =
        lease::default_identity().unwrap_or_else(|| format!("keelson-{}", std::process::id()));
    let (shard, leases_in) = match &settings.leases {
        Some(l) => {
            let client = l.client().await.map_err(RunError::LeaseClient)?;
            identity = l.identity().unwrap_or(identity);
            let shard = Shard::start(client, &l.namespace, &identity, l.duration())
                .await
                .map_err(|source| RunError::Leases {
                    namespace: l.namespace.clone(),
                    source,
                })?;
            (shard, Some(l.namespace.clone()))
        }
        None => (Shard::single(), None),
    };
    Ok(Bound {
        settings,
        secret,
        listener,
        metrics,
        identity,
        shard,
        leases_in,
    })
}

impl Bound {
    /// Where webhooks, the status API and (unless separate) metrics are served.
    pub fn addr(&self) -> Result<SocketAddr, RunError> {
        self.listener.local_addr().map_err(RunError::Http)
    }

    /// Where metrics are served, when on a listener of their own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|m| m.local_addr().ok())
    }

    /// This replica's name, and the namespace of its leases when it shares clusters.
    pub fn replica(&self) -> (&str, Option<&str>) {
        (&self.identity, self.leases_in.as_deref())
    }

    /// Runs the engine and serves HTTP until `shutdown` completes; then stops syncing and
    /// hands this replica's clusters over rather than waiting for its leases to expire.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), RunError> {
        let Bound {
            settings,
            secret,
            listener,
            metrics,
            identity,
            shard,
            ..
        } = self;
        let statuses = match &settings.github {
            Some(g) => Some(StatusReporter::new(
                g.api_url.as_deref().unwrap_or(github::DEFAULT_API_URL),
                Token::from_file(&g.token_file)?,
            )?),
            None => None,
        };
        let source = Source::new(
            settings
                .state_dir
                .clone()
                .unwrap_or_else(Source::default_root),
        );
        crate::source::sockets::configure(settings.limits.fetch_timeout.get());
        if let Some(path) = &settings.fingerprint_key_file {
            let key = crate::plan::normalize::load_fingerprint_key(path)
                .map_err(RunError::FingerprintKey)?;
            crate::plan::normalize::set_fingerprint_key(key);
        }
        let separate_metrics = metrics.is_some();
        let limits = settings.limits.clone();
        let mut host_secrets = std::collections::HashMap::new();
        for (host, file) in &settings.webhook_host_secret_files {
            host_secrets.insert(*host, Secret::from_file(file)?);
        }
        let extras = Extras {
            shard: shard.clone(),
            statuses,
        };
        let started = Engine::start(settings, source, identity, extras);
        let engine = started.engine.clone();
        let receiver = secret.map(|secret| {
            let mut config = Config::new(secret);
            config.host_secrets = host_secrets;
            config.limits = limits.receiver();
            // The engine's queue folds pushes per target; waiting here would only add latency.
            config.coalesce_window = std::time::Duration::ZERO;
            let (receiver, triggers) = Receiver::new(config);
            let engine = engine.clone();
            tokio::spawn(async move {
                while let Some(t) = triggers.recv().await {
                    match t.kind {
                        TriggerKind::Push { deleted: false, .. } => {
                            if !engine.wake(&t) {
                                tracing::info!(repository = %t.repository, "push for a repository not watched");
                            }
                        }
                        _ => tracing::debug!(repository = %t.repository, git_ref = %t.git_ref, "trigger ignored"),
                    }
                }
            });
            receiver
        });
        // Every listener gets the same hardening; they stop together, last of all.
        let (stop_http, http_stopped) = tokio::sync::watch::channel(false);
        let serve_on = |listener: TcpListener, router: axum::Router| {
            let connection = limits.connection();
            let mut stopped = http_stopped.clone();
            tokio::spawn(async move {
                let stop = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                listener::serve(listener, router, &connection, stop).await
            })
        };
        let metrics_served =
            metrics.map(|m| serve_on(m, http::metrics_router(engine.clone(), receiver.clone())));
        let mut served = serve_on(
            listener,
            http::router(engine.clone(), receiver.clone(), !separate_metrics),
        );
        let early = tokio::select! {
            () = shutdown => None,
            r = &mut served => Some(r),
        };
        // Shutting down: deliveries get 503 (GitHub shows them failed, to redeliver), the
        // syncs in flight get the grace to finish, then the leases are handed over.
        if let Some(r) = &receiver {
            r.drain();
        }
        engine.drain();
        let grace = limits.shutdown_grace.get();
        let abandoned = started.shutdown(grace).await;
        if abandoned > 0 {
            tracing::warn!(
                abandoned,
                ?grace,
                "syncs still running at the end of the grace period"
            );
        }
        shard.stop().await;
        let _ = stop_http.send(true);
        if let Some(m) = metrics_served {
            let _ = m.await;
        }
        let served = match early {
            Some(r) => r,
            None => served.await,
        };
        match served {
            Ok(r) => r.map_err(RunError::Http),
            Err(e) => Err(RunError::Http(std::io::Error::other(e))),
        }
    }
}
