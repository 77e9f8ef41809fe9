//! `keelson serve` (the engine) and `keelson status` (its status API as a table).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use keelson_webhooks::{Config, Receiver, Secret, TriggerKind};

use keelson::serve::config::ServeConfig;
use keelson::serve::engine::{Engine, Extras};
use keelson::serve::github::{self, StatusReporter, Token};
use keelson::serve::http::{self, TARGETS_PATH, TargetList};
use keelson::serve::lease::{self, Shard};
use keelson::source::Source;

use super::webhooks::{init_logging, shutdown_signal};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The engine's settings file (see `keelson::serve::config`).
    #[arg(long, value_name = "FILE", env = "KEELSON_SERVE_CONFIG")]
    config: PathBuf,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The engine's address.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "KEELSON_SERVER")]
    server: String,
    /// `table` or `json`.
    #[arg(short, long, default_value = "table")]
    output: String,
}

pub(super) fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let settings = ServeConfig::load(&args.config)?;
    let secret = match &settings.webhook_secret_file {
        Some(f) => Some(Secret::from_file(f)?),
        None => Secret::from_env()?,
    };
    let identity =
        lease::default_identity().unwrap_or_else(|| format!("keelson-{}", std::process::id()));
    let source = Source::new(
        settings
            .state_dir
            .clone()
            .unwrap_or_else(Source::default_root),
    );
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let separate_metrics = settings.metrics_listen.is_some();
        let metrics_listener = match settings.metrics_listen {
            Some(a) => Some(
                tokio::net::TcpListener::bind(a)
                    .await
                    .with_context(|| format!("cannot listen on {a}"))?,
            ),
            None => None,
        };
        let shard = match &settings.leases {
            Some(l) => {
                let client = l.client().await?;
                let identity = l.identity().unwrap_or_else(|| identity.clone());
                let shard = Shard::start(client, &l.namespace, &identity, l.duration())
                    .await
                    .with_context(|| format!("starting leases in namespace {}", l.namespace))?;
                eprintln!("keelson serve: replica {identity}, leases in {}", l.namespace);
                shard
            }
            None => Shard::single(),
        };
        let statuses = match &settings.github {
            Some(g) => Some(StatusReporter::new(
                g.api_url.as_deref().unwrap_or(github::DEFAULT_API_URL),
                Token::from_file(&g.token_file)?,
            )?),
            None => None,
        };
        let extras = Extras {
            shard: shard.clone(),
            statuses,
        };
        let started = Engine::start(settings, source, identity, extras);
        let engine = started.engine.clone();
        let receiver = secret.map(|secret| {
            let mut config = Config::new(secret);
            // The engine's queue folds pushes per target; waiting here would only add latency.
            config.coalesce_window = std::time::Duration::ZERO;
            let (receiver, triggers) = Receiver::new(config);
            let engine = engine.clone();
            tokio::spawn(async move {
                while let Some(t) = triggers.recv().await {
                    match t.kind {
                        TriggerKind::Push { deleted: false, .. } => {
                            if !engine.wake(&t.repository, &t.clone_url) {
                                tracing::info!(repository = %t.repository, "push for a repository not watched");
                            }
                        }
                        _ => tracing::debug!(repository = %t.repository, git_ref = %t.git_ref, "trigger ignored"),
                    }
                }
            });
            receiver
        });
        let addr = listener.local_addr()?;
        eprintln!("keelson serve: listening on http://{addr}");
        if let Some(m) = metrics_listener {
            eprintln!("keelson serve: metrics on http://{}/metrics", m.local_addr()?);
            let router = http::metrics_router(engine.clone(), receiver.clone());
            tokio::spawn(async move { axum::serve(m, router).await });
        }
        let router = http::router(engine.clone(), receiver, !separate_metrics);
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving HTTP")?;
        started.abort();
        // Hand this replica's clusters over now rather than when its leases expire.
        shard.stop().await;
        eprintln!("keelson serve: stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

pub(super) fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let body = runtime.block_on(get(&args.server, TARGETS_PATH))?;
    let list: TargetList = serde_json::from_slice(&body)
        .with_context(|| format!("{}{TARGETS_PATH}: not a target list", args.server))?;
    match args.output.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&list)?),
        "table" => print!("{}", keelson::serve::state::table(&list.targets)),
        other => bail!("unknown output {other:?}: use table or json"),
    }
    Ok(ExitCode::SUCCESS)
}

/// A plain HTTP/1.1 GET (the status API is served without TLS, inside the cluster or on
/// loopback through a port-forward).
async fn get(server: &str, path: &str) -> anyhow::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(authority) = server.strip_prefix("http://") else {
        bail!("--server {server:?}: only http:// addresses are supported");
    };
    let authority = authority.trim_end_matches('/');
    let mut stream = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::net::TcpStream::connect(authority),
    )
    .await
    .with_context(|| format!("connecting to {server}: timed out"))?
    .with_context(|| format!("connecting to {server}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut response),
    )
    .await
    .with_context(|| format!("{server}{path}: no answer in 30 s"))??;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| format!("{server}{path}: not an HTTP response"))?;
    let head = String::from_utf8_lossy(&response[..split]);
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200 ") {
        bail!("{server}{path}: {status}");
    }
    Ok(response[split + 4..].to_vec())
}
