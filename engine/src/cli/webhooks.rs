//! `keelson webhooks serve`: the receiver alone, printing each trigger as a JSON line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use keelson_webhooks::{Config, HOOK_PATH, Receiver, Secret};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Receive deliveries from GitHub, GitLab, Gitea/Forgejo/Gogs and Bitbucket (Cloud,
    /// Server) and print each trigger as one JSON line on stdout.
    ///
    /// Each host has its route (/hooks/github, /hooks/gitlab, /hooks/gitea,
    /// /hooks/bitbucket, /hooks/bitbucket-server) and its proof: an HMAC signature of the
    /// body, or GitLab's token. Repeated delivery ids are dropped and pushes to the same
    /// ref that arrive while one waits fold into one trigger for the newest commit.
    /// Nothing is synced: the output is what `keelson serve` would act on. Logs go to
    /// stderr (RUST_LOG=debug for every delivery).
    #[command(after_help = "Example:\n  \
        keelson webhooks serve --listen 0.0.0.0:8080 --secret-file ./webhook-secret\n  \
        # GitHub hook: Payload URL http://HOST:8080/hooks/github, the same secret,\n  \
        # content type application/json or application/x-www-form-urlencoded\n  \
        keelson webhooks serve --secret-file ./secret --host-secret-file gitlab=./gitlab-token")]
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed on stderr).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// File holding the webhook secret (trailing newlines ignored); without it the secret
    /// itself is read from KEELSON_WEBHOOK_SECRET.
    #[arg(long, value_name = "FILE", env = "KEELSON_WEBHOOK_SECRET_FILE")]
    secret_file: Option<PathBuf>,
    /// A secret of one host's own, as HOST=FILE (HOST: github, gitlab, gitea, bitbucket,
    /// bitbucket-server); other hosts use --secret-file's. Repeatable.
    #[arg(long, value_name = "HOST=FILE", value_parser = host_secret)]
    host_secret_file: Vec<(keelson_webhooks::Host, PathBuf)>,
    /// How long a trigger waits for newer pushes to its ref before it is printed
    /// (e.g. 0, 250ms, 2s).
    #[arg(long, default_value = "1s", value_parser = keelson::time::parse_duration)]
    coalesce_window: Duration,
    /// Largest delivery body accepted, up to GitHub's cap of 26214400 (25 MiB).
    #[arg(long, default_value_t = keelson_webhooks::DEFAULT_MAX_BODY_BYTES as u32,
          value_parser = clap::value_parser!(u32).range(1..=keelson_webhooks::GITHUB_MAX_BODY_BYTES as i64))]
    max_body_bytes: u32,
}

pub(super) fn run(command: Command) -> anyhow::Result<super::exit::Exit> {
    match command {
        Command::Serve(args) => serve(args).map(|()| super::exit::Exit::Success),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logging();
    // Without --secret-file, KEELSON_WEBHOOK_SECRET holds the secret itself.
    let secret = Secret::load(args.secret_file.as_deref())?;
    let mut config = Config::new(secret);
    for (host, file) in &args.host_secret_file {
        config.host_secrets.insert(*host, Secret::from_file(file)?);
    }
    config.coalesce_window = args.coalesce_window;
    config.limits.max_body_bytes = args.max_body_bytes as usize;
    super::runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        eprintln!("keelson webhooks: listening on http://{addr}{HOOK_PATH}");
        let (receiver, triggers) = Receiver::new(config);
        let server = tokio::spawn(receiver.serve(listener, shutdown_signal()));
        while let Some(trigger) = triggers.recv().await {
            println!("{}", serde_json::to_string(&trigger)?);
        }
        server.await.context("receiver task")??;
        eprintln!("keelson webhooks: stopped");
        anyhow::Ok(())
    })
}

/// `HOST=FILE` of `--host-secret-file`.
fn host_secret(text: &str) -> Result<(keelson_webhooks::Host, PathBuf), String> {
    let (host, file) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not HOST=FILE"))?;
    let names: Vec<&str> = keelson_webhooks::Host::ALL
        .iter()
        .map(|h| h.label())
        .collect();
    let host = keelson_webhooks::Host::ALL
        .into_iter()
        .find(|h| h.label() == host)
        .ok_or_else(|| format!("{host:?} is not a host ({})", names.join(", ")))?;
    Ok((host, PathBuf::from(file)))
}

/// Ctrl-C or SIGTERM.
pub(super) async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

pub(super) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
