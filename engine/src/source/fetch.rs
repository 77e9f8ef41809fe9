//! Fetching with libgit2: list the remote's refs once, resolve the revision, download only
//! what the mirror lacks (shallow where asked and allowed), under a deadline.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use git2::{AutotagOption, CredentialType, Direction, FetchOptions, Oid, RemoteCallbacks};

use super::credentials::{LoadedAuth, scrub};
use super::mirror::{self, MirrorLock};
use super::url::{RepoUrl, Scheme};
use super::{RepoSpec, SourceError, known_hosts};

/// A revision: a full commit id, or a name resolved against the remote's refs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rev {
    /// A full (40 hex digit) commit id.
    Commit(Oid),
    /// A branch, tag or full ref (`main`, `v1.2.0`, `refs/heads/main`, `HEAD`); when no
    /// ref has that name and it looks like an abbreviated commit id, it is taken as one.
    /// A `~N`/`^N` suffix walks back from it (`main~1`).
    Name(String),
}

impl Rev {
    /// Parses a revision as given on the command line.
    pub fn parse(text: &str) -> Result<Rev, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty revision".into());
        }
        if text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Oid::from_str(text)
                .map(Rev::Commit)
                .map_err(|e| e.message().to_string());
        }
        if text.contains("..") || text.contains(char::is_whitespace) || text.ends_with('/') {
            return Err(format!("{text:?} is not a ref name or commit id"));
        }
        Ok(Rev::Name(text.to_string()))
    }

    fn looks_abbreviated(&self) -> bool {
        matches!(self, Rev::Name(n) if n.len() >= 4 && n.bytes().all(|b| b.is_ascii_hexdigit()))
    }
}

impl std::fmt::Display for Rev {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rev::Commit(oid) => write!(f, "{oid}"),
            Rev::Name(n) => f.write_str(n),
        }
    }
}

/// The outcome of a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The commit the revision names.
    pub commit: Oid,
    /// The ref it was resolved through (`refs/heads/main`), if any.
    pub reference: Option<String>,
    /// Whether the remote was contacted (false: the commit was already cached).
    pub contacted: bool,
    /// Whether objects were downloaded (false: a ref listing was all it took).
    pub downloaded: bool,
    /// Objects and bytes received.
    pub received_objects: usize,
    pub received_bytes: usize,
    /// Whether a corrupt cache was thrown away and cloned afresh.
    pub recloned: bool,
    /// Whether the fetch was shallow.
    pub shallow: bool,
}

impl Fetched {
    fn cached(commit: Oid) -> Self {
        Fetched {
            commit,
            reference: None,
            contacted: false,
            downloaded: false,
            received_objects: 0,
            received_bytes: 0,
            recloned: false,
            shallow: false,
        }
    }
}

/// What went wrong inside one attempt: the cache (re-clone and retry) or anything else.
enum Failure {
    Corrupt(String),
    Source(SourceError),
}

impl From<SourceError> for Failure {
    fn from(e: SourceError) -> Self {
        Failure::Source(e)
    }
}

/// Fetches `rev` of `spec` into its mirror under `cache_root`. Blocking; gives up when
/// `cancel` is set or `deadline` passes (as soon as libgit2 next calls back).
pub(crate) fn fetch_blocking(
    cache_root: &Path,
    spec: &RepoSpec,
    rev: &Rev,
    cancel: &AtomicBool,
    deadline: Instant,
) -> Result<Fetched, SourceError> {
    let url = spec.url.to_string();
    let auth = spec
        .auth
        .load()
        .map_err(|message| SourceError::Credentials {
            url: url.clone(),
            message,
        })?;
    let dir = mirror::mirror_dir(cache_root, &spec.url);
    let _lock = MirrorLock::acquire(&dir, deadline).map_err(|message| SourceError::Cache {
        path: dir.clone(),
        message,
    })?;
    let cache_err = |message: String| SourceError::Cache {
        path: dir.clone(),
        message,
    };
    let (repo, recloned) = mirror::open_or_init(&dir).map_err(cache_err)?;
    let job = Job {
        spec,
        rev,
        auth: &auth,
        cancel,
        deadline,
    };
    match job.attempt(&repo) {
        Ok(mut f) => {
            f.recloned = recloned;
            if f.downloaded
                && let Err(e) = mirror::consolidate(&repo, mirror::MAX_PACKS)
            {
                tracing::warn!(url = %url, error = %e.message(), "could not merge the cache's packs");
            }
            Ok(f)
        }
        Err(Failure::Source(e)) => Err(e),
        Err(Failure::Corrupt(message)) if !recloned => {
            tracing::warn!(url = %url, mirror = %dir.display(), error = %message, "corrupt git cache; re-cloning");
            drop(repo);
            let repo = mirror::reset(&dir).map_err(cache_err)?;
            match job.attempt(&repo) {
                Ok(mut f) => {
                    f.recloned = true;
                    Ok(f)
                }
                Err(Failure::Source(e)) => Err(e),
                Err(Failure::Corrupt(message)) => Err(cache_err(message)),
            }
        }
        Err(Failure::Corrupt(message)) => Err(cache_err(message)),
    }
}

struct Job<'a> {
    spec: &'a RepoSpec,
    rev: &'a Rev,
    auth: &'a LoadedAuth,
    cancel: &'a AtomicBool,
    deadline: Instant,
}

/// What the callbacks saw, to turn libgit2's errors into clear ones.
#[derive(Default)]
struct CallState {
    userpass_attempts: Cell<u32>,
    key_attempts: Cell<u32>,
    cred_error: RefCell<Option<String>>,
    hostkey_error: RefCell<Option<String>>,
    timed_out: Cell<bool>,
}

/// Where a ref fetched into the mirror is stored.
fn local_name(remote_ref: &str) -> String {
    if remote_ref == "HEAD" {
        "refs/keelson/HEAD".into()
    } else {
        remote_ref.to_string()
    }
}

const ALL_REFS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

impl Job<'_> {
    fn url(&self) -> String {
        self.spec.url.to_string()
    }

    fn attempt(&self, repo: &git2::Repository) -> Result<Fetched, Failure> {
        if let Rev::Commit(oid) = self.rev
            && has_commit(repo, *oid)?
        {
            return Ok(Fetched::cached(*oid));
        }
        let state = CallState::default();
        let mut remote = repo
            .remote_anonymous(self.spec.url.as_str())
            .map_err(|e| self.classify(e, &state, "open remote"))?;
        let mut conn = remote
            .connect_auth(Direction::Fetch, Some(self.callbacks(&state)), None)
            .map_err(|e| self.classify(e, &state, "list refs"))?;
        let heads: Vec<(String, Oid)> = conn
            .list()
            .map_err(|e| self.classify(e, &state, "list refs"))?
            .iter()
            .map(|h| (h.name().to_string(), h.oid()))
            .collect();
        let find = |name: &str| heads.iter().find(|(n, _)| n == name).map(|(_, o)| *o);

        let mut fetched = Fetched::cached(Oid::ZERO_SHA1);
        fetched.contacted = true;
        let (refspecs, want): (Vec<String>, Want) = match self.rev {
            Rev::Name(name) => match resolve_name(name, &find) {
                Some((refname, target, peeled)) => {
                    fetched.reference = Some(refname.clone());
                    fetched.commit = peeled;
                    let dst = local_name(&refname);
                    let have = repo.odb().map(|o| o.exists(target)).unwrap_or(false)
                        && has_commit(repo, peeled)?;
                    if have {
                        repo.reference(&dst, target, true, "keelson: ref moved to a cached commit")
                            .map_err(|e| Failure::Corrupt(e.message().to_string()))?;
                        return Ok(fetched);
                    }
                    (vec![format!("+{refname}:{dst}")], Want::Commit(peeled))
                }
                None if self.rev.looks_abbreviated() => (
                    ALL_REFS.iter().map(|s| s.to_string()).collect(),
                    Want::Abbrev(name.clone()),
                ),
                None => {
                    let branch = format!("refs/heads/{name}");
                    let local = repo.find_reference(&branch).ok().and_then(|r| r.target());
                    // The mirror keeps its copy of the ref, so the error stays this clear
                    // on every later attempt too.
                    return Err(match local {
                        Some(last) => SourceError::BranchDeleted {
                            url: self.url(),
                            branch: name.clone(),
                            last: last.to_string(),
                        },
                        None => SourceError::RefNotFound {
                            url: self.url(),
                            rev: name.clone(),
                        },
                    }
                    .into());
                }
            },
            Rev::Commit(oid) => {
                let advertised = heads
                    .iter()
                    .find(|(n, o)| *o == *oid && n.starts_with("refs/") && !n.ends_with("^{}"))
                    .or_else(|| heads.iter().find(|(n, o)| *o == *oid && n.ends_with("^{}")));
                match advertised {
                    Some((name, _)) => {
                        let name = name.trim_end_matches("^{}").to_string();
                        fetched.reference = Some(name.clone());
                        (
                            vec![format!("+{name}:{}", local_name(&name))],
                            Want::Commit(*oid),
                        )
                    }
                    // Ask for the id itself; servers that refuse get a full fetch below.
                    None => (
                        vec![format!("+{oid}:refs/keelson/commits/{oid}")],
                        Want::Commit(*oid),
                    ),
                }
            }
        };

        let depth = self
            .spec
            .depth
            .filter(|_| self.spec.url.scheme() != Scheme::File);
        let first = self.download(conn.remote(), &refspecs, depth, &state);
        drop(conn);
        let mut shallow = depth.is_some();
        if let Err(e) = first {
            let err = self.classify(e, &state, "fetch");
            if !retryable(&err) {
                return Err(err);
            }
            tracing::debug!(url = %self.url(), error = %DisplayFailure(&err), "retrying the fetch in full");
            // Shallow refused, or a bare commit id refused: fetch every branch and tag.
            let mut specs = refspecs.clone();
            if matches!(self.rev, Rev::Commit(_)) && fetched.reference.is_none() {
                specs = ALL_REFS.iter().map(|s| s.to_string()).collect();
            }
            let state = CallState::default();
            let mut opts = self.options(&state, None);
            remote
                .fetch(&specs, Some(&mut opts), Some("keelson fetch"))
                .map_err(|e| self.classify(e, &state, "fetch"))?;
            shallow = false;
        }
        let stats = remote.stats();
        fetched.received_objects = stats.received_objects();
        fetched.received_bytes = stats.received_bytes();
        fetched.downloaded = true;
        fetched.shallow = shallow;
        fetched.commit = match want {
            Want::Commit(oid) => oid,
            Want::Abbrev(a) => repo
                .revparse_single(&a)
                .and_then(|o| o.peel_to_commit())
                .map(|c| c.id())
                .map_err(|_| SourceError::RefNotFound {
                    url: self.url(),
                    rev: a.clone(),
                })?,
        };
        if !has_commit(repo, fetched.commit)? {
            return Err(SourceError::CommitNotFound {
                url: self.url(),
                sha: fetched.commit.to_string(),
            }
            .into());
        }
        Ok(fetched)
    }

    /// Downloads on the open connection and updates the mirror's refs.
    fn download(
        &self,
        remote: &mut git2::Remote<'_>,
        refspecs: &[String],
        depth: Option<u32>,
        state: &CallState,
    ) -> Result<(), git2::Error> {
        let mut opts = self.options(state, depth);
        remote.download(refspecs, Some(&mut opts))?;
        let mut cbs = self.callbacks(state);
        remote.update_tips(
            Some(&mut cbs),
            git2::RemoteUpdateFlags::empty(),
            AutotagOption::None,
            Some("keelson fetch"),
        )
    }

    fn options<'s>(&'s self, state: &'s CallState, depth: Option<u32>) -> FetchOptions<'s> {
        let mut opts = FetchOptions::new();
        opts.remote_callbacks(self.callbacks(state));
        opts.download_tags(AutotagOption::None);
        opts.follow_redirects(git2::RemoteRedirect::Initial);
        if let Some(d) = depth {
            opts.depth(i32::try_from(d).unwrap_or(i32::MAX));
        }
        opts
    }

    fn callbacks<'s>(&'s self, state: &'s CallState) -> RemoteCallbacks<'s> {
        let mut cbs = RemoteCallbacks::new();
        let auth = self.auth;
        let url = &self.spec.url;
        cbs.credentials(move |asking, user_from_url, allowed| {
            // Credentials go to the configured host only: a redirect elsewhere gets none.
            match RepoUrl::parse(asking) {
                Ok(a) if a.host() == url.host() && a.port() == url.port() => {
                    credential(auth, url, user_from_url, allowed, state)
                }
                _ => {
                    let m = format!(
                        "credentials for {} are not sent to {}: it was reached by a redirect",
                        url.host(),
                        scrub_url(asking)
                    );
                    *state.cred_error.borrow_mut() = Some(m.clone());
                    Err(git2::Error::from_str(&m))
                }
            }
        });
        cbs.certificate_check(move |cert, _host| {
            let Some(hostkey) = cert.as_hostkey() else {
                // TLS: libgit2 has already verified the chain against the system's CAs.
                return Ok(git2::CertificateCheckStatus::CertificatePassthrough);
            };
            let Some(file) = auth.known_hosts_file() else {
                let m = "no known_hosts file (set auth.knownHosts or $HOME)".to_string();
                *state.hostkey_error.borrow_mut() = Some(m.clone());
                return Err(git2::Error::from_str(&m));
            };
            let Some(key) = hostkey.hostkey() else {
                let m = "the ssh transport did not hand over the host key".to_string();
                *state.hostkey_error.borrow_mut() = Some(m.clone());
                return Err(git2::Error::from_str(&m));
            };
            match known_hosts::check(&file, url.host(), url.port(), key) {
                Ok(()) => Ok(git2::CertificateCheckStatus::CertificateOk),
                Err(e) => {
                    *state.hostkey_error.borrow_mut() = Some(e.to_string());
                    Err(git2::Error::from_str(&e.to_string()))
                }
            }
        });
        let keep_going = move || {
            let go = !self.cancel.load(Ordering::Relaxed) && Instant::now() < self.deadline;
            if !go {
                state.timed_out.set(true);
            }
            go
        };
        cbs.transfer_progress(move |_| keep_going());
        cbs.sideband_progress(move |_| keep_going());
        cbs
    }

    /// Turns a libgit2 error into a clear one, without secrets.
    fn classify(&self, e: git2::Error, state: &CallState, op: &'static str) -> Failure {
        let url = self.url();
        let message = scrub(e.message(), self.auth);
        if state.timed_out.get() || self.cancel.load(Ordering::Relaxed) {
            return SourceError::Timeout {
                url,
                after: self.spec.timeout,
            }
            .into();
        }
        if let Some(m) = state.hostkey_error.borrow().clone() {
            return SourceError::HostKey {
                url,
                host: known_hosts::lookup_name(self.spec.url.host(), self.spec.url.port()),
                message: m,
            }
            .into();
        }
        if let Some(m) = state.cred_error.borrow().clone() {
            return SourceError::Auth { url, message: m }.into();
        }
        let lower = message.to_ascii_lowercase();
        if looks_like_auth_failure(e.code(), &message) {
            return SourceError::Auth { url, message }.into();
        }
        use git2::ErrorClass as C;
        match e.class() {
            C::Odb | C::Object | C::Zlib | C::Repository | C::Reference | C::Indexer | C::Index => {
                Failure::Corrupt(format!("{op}: {message}"))
            }
            C::Net | C::Os | C::Ssl | C::Ssh | C::Http
                if op == "list refs" || lower.contains("connect") || lower.contains("resolve") =>
            {
                SourceError::Unreachable { url, message }.into()
            }
            _ if op == "list refs" && self.spec.url.scheme() == Scheme::File => {
                SourceError::Unreachable { url, message }.into()
            }
            _ => SourceError::Git { url, op, message }.into(),
        }
    }
}

/// Whether libgit2's error is the server refusing credentials. Whole phrases only: object
/// ids in messages contain digit runs such as 401.
fn looks_like_auth_failure(code: git2::ErrorCode, message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    code == git2::ErrorCode::Auth
        || lower.contains("status code: 401")
        || lower.contains("status code: 403")
        || lower.contains("authentication")
}

enum Want {
    Commit(Oid),
    Abbrev(String),
}

struct DisplayFailure<'a>(&'a Failure);

impl std::fmt::Display for DisplayFailure<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Failure::Corrupt(m) => f.write_str(m),
            Failure::Source(e) => write!(f, "{e}"),
        }
    }
}

/// Errors worth a second, full fetch (never auth, host key, timeout or corruption).
fn retryable(f: &Failure) -> bool {
    matches!(f, Failure::Source(SourceError::Git { .. }))
}

/// Resolves a name to (remote ref, its target, the commit it peels to).
fn resolve_name(name: &str, find: &dyn Fn(&str) -> Option<Oid>) -> Option<(String, Oid, Oid)> {
    let candidates: Vec<String> = if name == "HEAD" || name.starts_with("refs/") {
        vec![name.to_string()]
    } else {
        vec![format!("refs/heads/{name}"), format!("refs/tags/{name}")]
    };
    candidates.into_iter().find_map(|c| {
        let target = find(&c)?;
        let peeled = find(&format!("{c}^{{}}")).unwrap_or(target);
        Some((c, target, peeled))
    })
}

/// Whether the mirror holds `oid` as a readable commit with a readable root tree.
fn has_commit(repo: &git2::Repository, oid: Oid) -> Result<bool, Failure> {
    let exists = repo
        .odb()
        .map_err(|e| Failure::Corrupt(e.message().to_string()))?
        .exists(oid);
    if !exists {
        return Ok(false);
    }
    match repo.find_commit(oid).and_then(|c| c.tree()) {
        Ok(_) => Ok(true),
        // Listed in an index but unreadable: the cache is damaged.
        Err(e) => Err(Failure::Corrupt(format!(
            "commit {oid} is unreadable: {}",
            e.message()
        ))),
    }
}

/// A URL's scheme and host only (no user, password or path), for messages.
fn scrub_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split('/').next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    format!("{scheme}://{host}")
}

fn credential(
    auth: &LoadedAuth,
    url: &RepoUrl,
    user_from_url: Option<&str>,
    allowed: CredentialType,
    state: &CallState,
) -> Result<git2::Cred, git2::Error> {
    let fail = |m: &str| {
        *state.cred_error.borrow_mut() = Some(m.to_string());
        Err(git2::Error::from_str(m))
    };
    let ssh_user = user_from_url
        .or(url.user())
        .or(auth.username.as_deref())
        .unwrap_or("git")
        .to_string();
    if allowed.contains(CredentialType::USERNAME) {
        return git2::Cred::username(&ssh_user);
    }
    let key_ok = allowed.intersects(CredentialType::SSH_KEY | CredentialType::SSH_MEMORY);
    let pass_ok = allowed.contains(CredentialType::USER_PASS_PLAINTEXT);
    // ssh servers often offer passwords too: a configured key goes first.
    if key_ok && let Some(key) = &auth.ssh_key {
        let n = state.key_attempts.get() + 1;
        state.key_attempts.set(n);
        if n > 1 {
            return fail(&format!(
                "the server rejected the ssh key for user {ssh_user}"
            ));
        }
        return git2::Cred::ssh_key_from_memory(
            &ssh_user,
            None,
            key.expose(),
            auth.ssh_passphrase.as_ref().map(|p| p.expose()),
        );
    }
    if pass_ok && let Some(p) = &auth.password {
        let n = state.userpass_attempts.get() + 1;
        state.userpass_attempts.set(n);
        if n > 1 {
            return fail("the server rejected the configured credentials");
        }
        let user = if url.scheme() == Scheme::Ssh {
            ssh_user.as_str()
        } else {
            auth.http_user()
        };
        return git2::Cred::userpass_plaintext(user, p.expose());
    }
    if key_ok {
        return fail("the server asks for an ssh key and none is configured (auth.sshKey)");
    }
    if pass_ok {
        return fail(
            "the server asks for credentials and none are configured (auth.token or auth.password)",
        );
    }
    fail("the server asks for an authentication method keelson does not support")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert!(matches!(Rev::parse(sha), Ok(Rev::Commit(_))));
        assert_eq!(Rev::parse("main"), Ok(Rev::Name("main".into())));
        assert!(Rev::parse("a..b").is_err());
        assert!(Rev::parse("").is_err());
        assert!(Rev::Name("abc1234".into()).looks_abbreviated());
        assert!(!Rev::Name("main".into()).looks_abbreviated());
    }

    #[test]
    fn auth_failures_are_recognised_by_phrase_not_digits() {
        use git2::ErrorCode::{Auth, GenericError, NotFound};
        assert!(looks_like_auth_failure(Auth, "whatever"));
        assert!(looks_like_auth_failure(
            GenericError,
            "unexpected http status code: 401"
        ));
        assert!(looks_like_auth_failure(
            GenericError,
            "too many redirects or authentication replays"
        ));
        assert!(!looks_like_auth_failure(
            NotFound,
            "object not found - no match for id (266d3b75f8c0540149b732af8c6b17b15a4ae113)"
        ));
    }

    #[test]
    fn names_resolve_to_branches_then_tags() {
        let a = Oid::from_str("1111111111111111111111111111111111111111").unwrap();
        let b = Oid::from_str("2222222222222222222222222222222222222222").unwrap();
        let c = Oid::from_str("3333333333333333333333333333333333333333").unwrap();
        let heads = [
            ("refs/heads/main".to_string(), a),
            ("refs/tags/v1".to_string(), b),
            ("refs/tags/v1^{}".to_string(), c),
        ];
        let find = |n: &str| heads.iter().find(|(h, _)| h == n).map(|(_, o)| *o);
        assert_eq!(
            resolve_name("main", &find),
            Some(("refs/heads/main".into(), a, a))
        );
        assert_eq!(
            resolve_name("v1", &find),
            Some(("refs/tags/v1".into(), b, c))
        );
        assert_eq!(resolve_name("nope", &find), None);
    }
}
