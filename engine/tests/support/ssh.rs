//! An sshd-free ssh git server for tests: russh on loopback, public-key auth against one
//! authorised key, `git-upload-pack` run for the exec request and piped over the channel.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use russh::server::{Auth, ChannelOpenHandle, Handler, Msg, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct GitSsh {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GitSsh {
    /// Serves the repositories under `root` with host key `host_key` (an OpenSSH private
    /// key file), letting in the holder of the key whose public half is `authorized`.
    pub fn start(root: &Path, host_key: &Path, authorized: &Path) -> Self {
        let host = russh::keys::load_secret_key(host_key, None).unwrap();
        let allowed = russh::keys::load_public_key(authorized).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let root = root.to_path_buf();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let config = Arc::new(russh::server::Config {
                    keys: vec![host],
                    auth_rejection_time: Duration::from_millis(10),
                    auth_rejection_time_initial: Some(Duration::ZERO),
                    inactivity_timeout: Some(Duration::from_secs(60)),
                    ..Default::default()
                });
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let handler = GitHandler {
                                root: root.clone(),
                                allowed: allowed.clone(),
                                stdins: HashMap::new(),
                            };
                            let config = config.clone();
                            tokio::spawn(async move {
                                if let Ok(session) = russh::server::run_stream(config, stream, handler).await {
                                    let _ = session.await;
                                }
                            });
                        }
                    }
                }
            });
        });
        GitSsh {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn url(&self, name: &str) -> String {
        format!("ssh://git@127.0.0.1:{}/{name}.git", self.port)
    }
}

impl Drop for GitSsh {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct GitHandler {
    root: PathBuf,
    allowed: russh::keys::PublicKey,
    stdins: HashMap<ChannelId, tokio::process::ChildStdin>,
}

impl Handler for GitHandler {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if key.public_key.key_data() == self.allowed.key_data() {
            Ok(Auth::Accept)
        } else {
            Ok(Auth::reject())
        }
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).to_string();
        let Some(("git-upload-pack", path)) = command.split_once(' ') else {
            session.channel_failure(channel)?;
            return Ok(());
        };
        let path = path.trim_matches(|c| c == '\'' || c == '"');
        let repo = self.root.join(path.trim_start_matches('/'));
        let mut child = tokio::process::Command::new("git")
            .arg("upload-pack")
            .arg(&repo)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(russh::Error::IO)?;
        self.stdins.insert(channel, child.stdin.take().unwrap());
        let mut stdout = child.stdout.take().unwrap();
        let handle = session.handle();
        session.channel_success(channel)?;
        tokio::spawn(async move {
            let mut buf = vec![0; 32 * 1024];
            while let Ok(n) = stdout.read(&mut buf).await {
                if n == 0 || handle.data(channel, buf[..n].to_vec()).await.is_err() {
                    break;
                }
            }
            let code = child.wait().await.ok().and_then(|s| s.code()).unwrap_or(1);
            let _ = handle.exit_status_request(channel, code as u32).await;
            let _ = handle.eof(channel).await;
            let _ = handle.close(channel).await;
        });
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(stdin) = self.stdins.get_mut(&channel) {
            let _ = stdin.write_all(data).await;
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.stdins.remove(&channel);
        Ok(())
    }
}
