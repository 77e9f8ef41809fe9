//! `keelson serve` (the engine) and `keelson status` (its status API as a table).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;
use keelson_webhooks::Secret;

use super::exit::Exit;

use keelson::serve::config::ServeConfig;
use keelson::serve::http::{TARGETS_PATH, TargetList};
use keelson::serve::run;

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
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

/// `-o`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

pub(super) fn serve(args: ServeArgs) -> anyhow::Result<Exit> {
    // Before the runtime starts a thread.
    keelson::serve::allocator::tune();
    init_logging();
    let settings = ServeConfig::load(&args.config)?;
    let secret = match &settings.webhook_secret_file {
        Some(f) => Some(Secret::from_file(f)?),
        None => Secret::from_env()?,
    };
    super::runtime()?.block_on(async move {
        let bound = run::bind(settings, secret).await?;
        if let (identity, Some(namespace)) = bound.replica() {
            eprintln!("keelson serve: replica {identity}, leases in {namespace}");
        }
        eprintln!("keelson serve: listening on http://{}", bound.addr()?);
        if let Some(m) = bound.metrics_addr() {
            eprintln!("keelson serve: metrics on http://{m}/metrics");
        }
        bound.serve(shutdown_signal()).await?;
        eprintln!("keelson serve: stopped");
        anyhow::Ok(Exit::Success)
    })
}

pub(super) fn status(args: StatusArgs) -> anyhow::Result<Exit> {
    let body = super::runtime()?.block_on(get(&args.server, TARGETS_PATH))?;
    let list: TargetList = serde_json::from_slice(&body)
        .with_context(|| format!("{}{TARGETS_PATH}: not a target list", args.server))?;
    match args.output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&list)?),
        Format::Table => print!("{}", keelson::serve::state::table(&list.targets)),
    }
    Ok(Exit::Success)
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
