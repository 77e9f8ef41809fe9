//! Real git servers on loopback for the source tests: `git daemon` (git://) and git's
//! smart HTTP (`git http-backend` run as CGI behind a small HTTP/1.1 server with basic
//! auth), a server that accepts connections and never answers, and helpers that build
//! repositories with the git CLI. Every server listens on 127.0.0.1, on a free port, and
//! stops when dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod serve;
pub mod ssh;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs git in `dir` with a fixed identity and no user or system configuration.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_cmd(dir).args(args).output().expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn git_cmd(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("-C").arg(dir);
    c.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Keelson Test")
        .env("GIT_AUTHOR_EMAIL", "test@keelson.invalid")
        .env("GIT_COMMITTER_NAME", "Keelson Test")
        .env("GIT_COMMITTER_EMAIL", "test@keelson.invalid")
        .env_remove("GIT_DIR");
    c
}

/// A directory of bare repositories, served by the servers below.
pub struct Served {
    pub dir: tempfile::TempDir,
}

impl Served {
    pub fn new() -> Self {
        Served {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn base(&self) -> &Path {
        self.dir.path()
    }

    /// Creates the bare repository `name.git` and a working clone of it to commit in.
    pub fn repo(&self, name: &str) -> Work {
        let bare = self.base().join(format!("{name}.git"));
        std::fs::create_dir_all(&bare).unwrap();
        git(&bare, &["init", "-q", "--bare", "-b", "main"]);
        let work = self.base().join(format!("work-{name}"));
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        Work { dir: work, bare }
    }
}

/// A working repository whose `origin` is a served bare repository.
pub struct Work {
    pub dir: PathBuf,
    pub bare: PathBuf,
}

impl Work {
    pub fn write(&self, rel: &str, text: &str) -> &Self {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    pub fn remove(&self, rel: &str) -> &Self {
        git(&self.dir, &["rm", "-q", "-r", rel]);
        self
    }

    pub fn mv(&self, from: &str, to: &str) -> &Self {
        if let Some(parent) = self.dir.join(to).parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        git(&self.dir, &["mv", from, to]);
        self
    }

    /// Copies a directory tree into the work tree.
    pub fn copy_dir(&self, from: &Path, to: &str) -> &Self {
        for entry in walk(from) {
            let rel = entry.strip_prefix(from).unwrap();
            let dest = self.dir.join(to).join(rel);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&entry, dest).unwrap();
        }
        self
    }

    /// Commits everything; returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        git(&self.dir, &["add", "-A"]);
        git(&self.dir, &["commit", "-q", "--allow-empty", "-m", message]);
        self.head()
    }

    pub fn head(&self) -> String {
        git(&self.dir, &["rev-parse", "HEAD"])
    }

    pub fn run(&self, args: &[&str]) -> String {
        git(&self.dir, args)
    }

    /// `git push --force origin <refspecs>`.
    pub fn push(&self, refspecs: &[&str]) {
        let mut args = vec!["push", "-q", "--force", "origin"];
        args.extend_from_slice(refspecs);
        git(&self.dir, &args);
    }

    /// Sets a config value in the served bare repository.
    pub fn serve_config(&self, key: &str, value: &str) {
        git(&self.bare, &["config", key, value]);
    }
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "server on port {port} did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `git daemon` serving every repository under a directory over git://.
pub struct GitDaemon {
    child: Child,
    pub port: u16,
    base: PathBuf,
}

impl GitDaemon {
    pub fn start(base: &Path) -> Self {
        Self::start_on(base, free_port())
    }

    pub fn start_on(base: &Path, port: u16) -> Self {
        // Run git-daemon itself: `git daemon` would run it as a child, which a kill of
        // `git` leaves behind.
        let exec_path = git(base, &["--exec-path"]);
        let cmd = git_cmd(base);
        let mut daemon = Command::new(Path::new(&exec_path).join("git-daemon"));
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => daemon.env(k, v),
                None => daemon.env_remove(k),
            };
        }
        let child = daemon
            .args([
                "--export-all",
                "--reuseaddr",
                "--informative-errors",
                "--enable=receive-pack",
                "--listen=127.0.0.1",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start git daemon");
        wait_for_port(port);
        GitDaemon {
            child,
            port,
            base: base.to_path_buf(),
        }
    }

    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}.git", self.port)
    }

    /// Stops the daemon (the port stays reserved for a restart with `start_on`).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the HTTP server saw and how it behaves.
#[derive(Default)]
pub struct HttpState {
    /// `METHOD /path?query` of every request, in order.
    pub requests: Mutex<Vec<String>>,
    /// Requests in flight per repository, and the most seen at once.
    in_flight: Mutex<HashMap<String, usize>>,
    pub max_in_flight: Mutex<HashMap<String, usize>>,
    pub max_in_flight_total: Mutex<usize>,
    /// Milliseconds to wait before answering each request.
    pub delay_ms: AtomicU64,
    stop: AtomicBool,
}

/// Git's smart HTTP: `git http-backend` as CGI, behind basic auth when credentials are set.
pub struct GitHttp {
    pub port: u16,
    pub state: Arc<HttpState>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GitHttp {
    pub fn start(root: &Path, credentials: Option<(&str, &str)>) -> Self {
        use base64::Engine as _;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(HttpState::default());
        let expected = credentials.map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        });
        let (root, st) = (root.to_path_buf(), state.clone());
        let thread = std::thread::spawn(move || {
            while !st.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (root, st, expected) = (root.clone(), st.clone(), expected.clone());
                        std::thread::spawn(move || {
                            let _ = serve(stream, &root, &st, expected.as_deref());
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        GitHttp {
            port,
            state,
            thread: Some(thread),
        }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}.git", self.port)
    }

    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.state.requests.lock().unwrap().clear();
    }
}

impl Drop for GitHttp {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    root: &Path,
    st: &HttpState,
    expected: Option<&str>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers: HashMap<String, String> = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let mut body = Vec::new();
    if let Some(len) = headers.get("content-length") {
        body.resize(len.parse().unwrap_or(0), 0);
        reader.read_exact(&mut body)?;
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let repo = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    st.requests
        .lock()
        .unwrap()
        .push(format!("{method} {target}"));
    {
        let mut f = st.in_flight.lock().unwrap();
        let n = f.entry(repo.clone()).or_default();
        *n += 1;
        let now = *n;
        let total: usize = f.values().sum();
        let mut m = st.max_in_flight.lock().unwrap();
        let e = m.entry(repo.clone()).or_default();
        *e = (*e).max(now);
        let mut t = st.max_in_flight_total.lock().unwrap();
        *t = (*t).max(total);
    }
    let delay = st.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        std::thread::sleep(Duration::from_millis(delay));
    }
    let result = respond(
        &stream, root, &method, path, query, &headers, body, expected,
    );
    *st.in_flight.lock().unwrap().entry(repo).or_default() -= 1;
    result
}

#[allow(clippy::too_many_arguments)]
fn respond(
    mut stream: &TcpStream,
    root: &Path,
    method: &str,
    path: &str,
    query: &str,
    headers: &HashMap<String, String>,
    body: Vec<u8>,
    expected: Option<&str>,
) -> std::io::Result<()> {
    if let Some(expected) = expected
        && headers.get("authorization").map(String::as_str) != Some(expected)
    {
        let msg = b"authentication required\n";
        write!(
            stream,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"keelson-test\"\r\n\
             Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            msg.len()
        )?;
        stream.write_all(msg)?;
        return Ok(());
    }
    let mut cmd = Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("REQUEST_METHOD", method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("REMOTE_USER", "test")
        .env("CONTENT_LENGTH", body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(ct) = headers.get("content-type") {
        cmd.env("CONTENT_TYPE", ct);
    }
    if let Some(p) = headers.get("git-protocol") {
        cmd.env("GIT_PROTOCOL", p);
    }
    if let Some(enc) = headers.get("content-encoding") {
        cmd.env("HTTP_CONTENT_ENCODING", enc);
    }
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out)?;
    let _ = writer.join();
    child.wait()?;
    // CGI output: headers, a blank line, the body.
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let (head, payload) = match split {
        Some((i, n)) => (
            String::from_utf8_lossy(&out[..i]).to_string(),
            &out[i + n..],
        ),
        None => (String::new(), &out[..]),
    };
    let mut status = "200 OK".to_string();
    let mut lines = String::new();
    for h in head.lines() {
        if let Some(s) = h.strip_prefix("Status:") {
            status = s.trim().to_string();
        } else if !h.trim().is_empty() {
            lines.push_str(h.trim_end());
            lines.push_str("\r\n");
        }
    }
    write!(
        stream,
        "HTTP/1.1 {status}\r\n{lines}Content-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    )?;
    stream.write_all(payload)?;
    stream.flush()
}

/// Accepts connections and never answers: a fetch from it must time out.
pub struct BlackHole {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BlackHole {
    pub fn start() -> Self {
        Self::start_on(0)
    }

    /// On `port` (0: any free one), e.g. where a stopped `git daemon` listened.
    pub fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = vec![];
            while !s.load(Ordering::Relaxed) {
                if let Ok((c, _)) = listener.accept() {
                    held.push(c);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        BlackHole {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
