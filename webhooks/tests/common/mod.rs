//! Shared test helpers: a receiver on 127.0.0.1:0, a raw HTTP/1.1 client, signing, and
//! GitHub's example payloads.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use keelson_webhooks::{Config, Receiver, Secret, Trigger, Triggers, signature};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

pub const SECRET: &str = "It's a Secret to Everybody";

/// A receiver serving on loopback; dropping it shuts the server down.
pub struct Server {
    pub addr: SocketAddr,
    pub triggers: Triggers,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Stops accepting, waits for the server to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }

    /// The next trigger, failing the test if none comes within 5 s.
    pub async fn next_trigger(&self) -> Trigger {
        tokio::time::timeout(Duration::from_secs(5), self.triggers.recv())
            .await
            .expect("a trigger within 5 s")
            .expect("trigger stream open")
    }

    /// Asserts no trigger is waiting (within 200 ms).
    pub async fn no_trigger(&self) {
        let got = tokio::time::timeout(Duration::from_millis(200), self.triggers.recv()).await;
        assert!(got.is_err(), "unexpected trigger {got:?}");
    }

    /// `GET path` → (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        response(&raw(self.addr, req.as_bytes()).await)
    }

    /// A signed JSON delivery → (status, body).
    pub async fn deliver(&self, event: &str, id: &str, body: &[u8]) -> (u16, String) {
        deliver_to(self.addr, event, id, body).await
    }

    /// `POST /hooks/github` with these headers (plus Host, Content-Length, Connection: close).
    pub async fn post(&self, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
        self.post_to("/hooks/github", headers, body).await
    }

    /// `POST path` with these headers (plus Host, Content-Length, Connection: close).
    pub async fn post_to(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        let request = request(headers, body);
        let request = [
            format!("POST {path}").as_bytes(),
            &request["POST /hooks/github".len()..],
        ]
        .concat();
        response(&raw(self.addr, &request).await)
    }

    /// The value of one metric line (`name{labels}`), 0 if absent.
    pub async fn metric(&self, series: &str) -> u64 {
        let (status, text) = self.get("/metrics").await;
        assert_eq!(status, 200);
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .map(|v| v.parse().unwrap())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub const SHA1: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
pub const SHA2: &str = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";

/// A minimal valid push of `after` to `git_ref` in `o/r`.
pub fn push(git_ref: &str, after: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "ref": git_ref, "before": SHA1, "after": after,
        "created": false, "deleted": false, "forced": false,
        "repository": {"full_name": "o/r", "clone_url": "https://example.invalid/o/r.git"},
    }))
    .unwrap()
}

/// The four headers of a JSON delivery.
pub fn signed_headers<'a>(event: &'a str, id: &'a str, sig: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("Content-Type", "application/json"),
        ("X-GitHub-Event", event),
        ("X-GitHub-Delivery", id),
        ("X-Hub-Signature-256", sig),
    ]
}

/// A signed JSON delivery to `addr` → (status, body).
pub async fn deliver_to(addr: SocketAddr, event: &str, id: &str, body: &[u8]) -> (u16, String) {
    let sig = signature::sign(SECRET.as_bytes(), body);
    let headers = [
        ("Content-Type", "application/json"),
        ("X-GitHub-Event", event),
        ("X-GitHub-Delivery", id),
        ("X-Hub-Signature-256", sig.as_str()),
    ];
    response(&raw(addr, &request(&headers, body)).await)
}

/// Test config: the GitHub test-vector secret, short timeouts, default sizes.
pub fn config() -> Config {
    let mut config = Config::new(Secret::new(SECRET.as_bytes().to_vec()).unwrap());
    config.limits.connection.header_read_timeout = Duration::from_secs(1);
    config.limits.body_read_timeout = Duration::from_secs(1);
    config
}

pub async fn start(config: Config) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (receiver, triggers) = Receiver::new(config);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(receiver.serve(listener, async {
        let _ = stopped.await;
    }));
    Server {
        addr,
        triggers,
        stop: Some(stop),
        task: Some(task),
    }
}

/// The bytes of a `POST /hooks/github` request.
pub fn request(headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut req =
        String::from("POST /hooks/github HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Writes `bytes`, reads until the server closes (10 s at most).
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer (and close) before taking the whole request.
    let _ = stream.write_all(bytes).await;
    read_all(&mut stream, Duration::from_secs(10)).await
}

/// Reads until EOF or error, failing the test after `limit`.
pub async fn read_all(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "server did not close the connection within {limit:?}"
    );
    out
}

/// (status, body) of a raw HTTP/1.1 response; status 0 when there is none.
pub fn response(bytes: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(bytes);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `application/x-www-form-urlencoded` encoding of `payload=<json>`, as GitHub sends it.
pub fn form_body(json: &[u8]) -> Vec<u8> {
    let mut out = b"payload=".to_vec();
    for &b in json {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => out.push(b),
            b' ' => out.push(b'+'),
            _ => out.extend_from_slice(format!("%{b:02X}").as_bytes()),
        }
    }
    out
}

/// The `@octokit/webhooks-examples` package directory (installed by `e2e/test.sh`).
pub fn examples_dir() -> PathBuf {
    const HINT: &str = "GitHub's example payloads are missing: run ./e2e/test.sh once (it installs \
        @octokit/webhooks-examples@7.6.1 with npm), or set KEELSON_WEBHOOK_EXAMPLES to that \
        package's directory";
    let dir = match std::env::var_os("KEELSON_WEBHOOK_EXAMPLES") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let cache = std::env::var_os("KEELSON_E2E_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").expect(HINT)).join(".cache/keelson-e2e")
                });
            cache.join("npm/node_modules/@octokit/webhooks-examples")
        }
    };
    assert!(
        dir.join("api.github.com/index.json").is_file(),
        "{HINT} (looked in {})",
        dir.display()
    );
    dir
}

/// One example payload: which GitHub flavour, the event name, and the payload.
pub struct Example {
    pub flavour: String,
    pub event: String,
    pub payload: serde_json::Value,
}

/// Every example of every event, for github.com and each GitHub Enterprise Server version.
pub fn examples() -> Vec<Example> {
    let dir = examples_dir();
    let mut out = Vec::new();
    let mut flavours: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("index.json").is_file())
        .collect();
    flavours.sort();
    for flavour in flavours {
        let defs: serde_json::Value =
            serde_json::from_slice(&std::fs::read(flavour.join("index.json")).unwrap()).unwrap();
        for def in defs.as_array().unwrap() {
            for payload in def["examples"].as_array().unwrap() {
                out.push(Example {
                    flavour: flavour.file_name().unwrap().to_string_lossy().into_owned(),
                    event: def["name"].as_str().unwrap().to_owned(),
                    payload: payload.clone(),
                });
            }
        }
    }
    out
}
