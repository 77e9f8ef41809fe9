//! `keelson webhooks serve` end to end: the real binary, signed deliveries over HTTP, and
//! the JSON lines it prints (deduplication and coalescing seen from outside).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use keelson_webhooks::signature::sign;
use serde_json::{Value, json};

const SECRET: &str = "cli test secret";

struct Serve {
    child: Child,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Serve {
    fn start(window: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("secret");
        std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_keelson"))
            .args([
                "webhooks",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--coalesce-window",
                window,
            ])
            .arg("--secret-file")
            .arg(&secret_file)
            .env_remove("KEELSON_WEBHOOK_SECRET")
            .env_remove("KEELSON_WEBHOOK_SECRET_FILE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("keelson runs");
        let lines = forward(child.stdout.take().unwrap());
        let stderr = forward(child.stderr.take().unwrap());
        let first = stderr
            .recv_timeout(Duration::from_secs(30))
            .expect("keelson prints its address");
        let addr = first
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .parse()
            .unwrap();
        Self {
            child,
            addr,
            lines,
            stderr,
            _dir: dir,
        }
    }

    fn deliver(&self, event: &str, id: &str, body: &Value) -> u16 {
        let body = serde_json::to_vec(body).unwrap();
        let sig = sign(SECRET.as_bytes(), &body);
        self.post(
            &[
                ("X-GitHub-Event", event),
                ("X-GitHub-Delivery", id),
                ("X-Hub-Signature-256", &sig),
            ],
            &body,
        )
    }

    fn post(&self, headers: &[(&str, &str)], body: &[u8]) -> u16 {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut req = format!(
            "POST /hooks/github HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut resp = String::new();
        stream.read_to_string(&mut resp).unwrap();
        resp.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    /// The next JSON line on stdout within `wait`.
    fn next_line(&self, wait: Duration) -> Option<Value> {
        self.lines
            .recv_timeout(wait)
            .ok()
            .map(|l| serde_json::from_str(&l).unwrap())
    }

    /// SIGTERM; the process must exit 0 and say so.
    fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "keelson did not stop"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "{status}");
        let rest: Vec<String> = self.lines.iter().collect();
        let stderr: Vec<String> = self.stderr.iter().collect();
        assert!(stderr.iter().any(|l| l.contains("stopped")), "{stderr:?}");
        rest
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward(out: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn sha(n: u32) -> String {
    format!("{n:040x}")
}

fn push(git_ref: &str, after: &str) -> Value {
    json!({
        "ref": git_ref, "before": sha(0), "after": after,
        "created": false, "deleted": false, "forced": false,
        "repository": {"full_name": "octo/app", "clone_url": "https://example.invalid/octo/app.git"},
        "commits": [], "head_commit": null,
    })
}

#[test]
fn serve_prints_deduplicated_coalesced_triggers() {
    let serve = Serve::start("2s");
    // One push, delivered three times (GitHub's redelivery keeps the id).
    assert_eq!(
        serve.deliver("push", "main-1", &push("refs/heads/main", &sha(1))),
        202
    );
    assert_eq!(
        serve.deliver("push", "main-1", &push("refs/heads/main", &sha(1))),
        200
    );
    assert_eq!(
        serve.deliver("push", "main-1", &push("refs/heads/main", &sha(1))),
        200
    );
    // A burst of 20 pushes to one ref while the first waits.
    for i in 1..=20 {
        assert_eq!(
            serve.deliver(
                "push",
                &format!("dev-{i}"),
                &push("refs/heads/dev", &sha(100 + i))
            ),
            202
        );
    }
    // Acknowledged, nothing printed.
    assert_eq!(
        serve.deliver(
            "ping",
            "ping-1",
            &json!({"zen": "Design for failure.", "hook_id": 1})
        ),
        200
    );
    assert_eq!(
        serve.deliver("issues", "issue-1", &json!({"action": "opened"})),
        200
    );
    assert_eq!(serve.deliver("brand_new_event", "new-1", &json!({})), 200);
    // Refused, nothing printed.
    let body = serde_json::to_vec(&push("refs/heads/evil", &sha(666))).unwrap();
    let forged = sign(b"guess", &body);
    assert_eq!(
        serve.post(
            &[
                ("X-GitHub-Event", "push"),
                ("X-GitHub-Delivery", "evil"),
                ("X-Hub-Signature-256", &forged)
            ],
            &body
        ),
        401
    );
    assert_eq!(
        serve.post(
            &[("X-GitHub-Event", "push"), ("X-GitHub-Delivery", "evil")],
            &body
        ),
        401
    );

    let main = serve
        .next_line(Duration::from_secs(10))
        .expect("the main trigger");
    assert_eq!(
        (main["ref"].as_str(), main["after"].as_str()),
        (Some("refs/heads/main"), Some(sha(1).as_str()))
    );
    assert_eq!(
        (main["delivery"].as_str(), main["coalesced"].as_u64()),
        (Some("main-1"), Some(0))
    );
    assert_eq!(main["kind"]["type"], "push");
    let dev = serve
        .next_line(Duration::from_secs(10))
        .expect("the dev trigger");
    assert_eq!(dev["ref"], "refs/heads/dev");
    assert_eq!(
        dev["after"].as_str(),
        Some(sha(120).as_str()),
        "the newest commit wins"
    );
    assert_eq!(dev["before"].as_str(), Some(sha(0).as_str()));
    assert_eq!(
        (dev["delivery"].as_str(), dev["coalesced"].as_u64()),
        (Some("dev-20"), Some(19))
    );
    assert_eq!(
        serve.next_line(Duration::from_millis(2500)),
        None,
        "nothing else is printed"
    );
    assert!(serve.stop().is_empty());
}

#[test]
fn serve_prints_pull_request_dry_runs_and_drains_on_sigterm() {
    let serve = Serve::start("30s");
    let pr = json!({
        "action": "opened", "number": 7,
        "pull_request": {"head": {"ref": "feature", "sha": sha(7)}, "base": {"ref": "main", "sha": sha(1)}},
        "repository": {"full_name": "octo/app", "clone_url": "https://example.invalid/octo/app.git"},
    });
    assert_eq!(serve.deliver("pull_request", "pr-7", &pr), 202);
    // The window is long: the trigger is still waiting when SIGTERM comes, and is printed then.
    assert_eq!(serve.next_line(Duration::from_millis(500)), None);
    let rest = serve.stop();
    assert_eq!(rest.len(), 1, "{rest:?}");
    let t: Value = serde_json::from_str(&rest[0]).unwrap();
    assert_eq!(t["ref"], "refs/pull/7/head");
    assert_eq!(t["after"].as_str(), Some(sha(7).as_str()));
    assert_eq!(
        t["kind"],
        json!({"type": "pull_request", "number": 7, "action": "opened", "head_ref": "feature", "base_ref": "main"})
    );
}

#[test]
fn serve_without_a_secret_fails_clearly() {
    let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(["webhooks", "serve", "--listen", "127.0.0.1:0"])
        .env_remove("KEELSON_WEBHOOK_SECRET")
        .env_remove("KEELSON_WEBHOOK_SECRET_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("KEELSON_WEBHOOK_SECRET"), "{stderr}");
}

#[test]
fn secret_from_the_environment() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keelson"))
        .args(["webhooks", "serve", "--listen", "127.0.0.1:0"])
        .env("KEELSON_WEBHOOK_SECRET", SECRET)
        .env_remove("KEELSON_WEBHOOK_SECRET_FILE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = forward(child.stderr.take().unwrap());
    let first = stderr.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(first.contains("listening on http://127.0.0.1:"), "{first}");
    child.kill().unwrap();
    child.wait().unwrap();
}
