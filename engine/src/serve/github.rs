//! GitHub commit statuses: one status per target and cluster on the commit being synced
//! (`keelson/<target>/<cluster>`: pending → success/failure), sent with octocrab.
//!
//! Reporting is best effort for the sync loop, but each call is careful: the token never
//! reaches a log line or an error, descriptions are cut to GitHub's limit instead of being
//! refused, and only failures that can pass on their own (5xx, secondary rate limits,
//! transport errors) are retried, a few times with a short capped backoff.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use octocrab::Octocrab;
use octocrab::models::StatusState;
use rand::Rng;

/// GitHub's public API, used when the serve config names no other.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// The most characters GitHub keeps in a status description.
pub const DESCRIPTION_LIMIT: usize = 140;

/// The REST API version the requests are written against (GitHub's `X-GitHub-Api-Version`).
const API_VERSION: &str = "2022-11-28";

/// How long one attempt (connect, send, read the answer) may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// A GitHub token read from a file. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Token(Arc<str>);

impl Token {
    /// Reads a token from `path` (a mounted Secret): the trailing newline is dropped; an empty
    /// file, or one holding characters an HTTP header cannot carry, is an error naming it.
    pub fn from_file(path: &Path) -> Result<Self, StatusError> {
        let text = std::fs::read_to_string(path).map_err(|source| StatusError::TokenFile {
            path: path.to_path_buf(),
            source,
        })?;
        let token = text.trim_end_matches(['\n', '\r']);
        if token.is_empty() {
            return Err(StatusError::EmptyToken {
                path: path.to_path_buf(),
            });
        }
        // The token goes into `Authorization: Bearer …`; reject what would corrupt the header
        // here, with the file's name, rather than as an opaque error on the first request.
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(StatusError::MalformedToken {
                path: path.to_path_buf(),
            });
        }
        Ok(Self(Arc::from(token)))
    }

    /// Replaces every occurrence of the token in `text` (defence in depth for messages that
    /// echo a request back).
    fn scrub(&self, text: &str) -> String {
        text.replace(&*self.0, "<redacted>")
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The state of a commit status, as GitHub names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The sync has started.
    Pending,
    /// The commit is applied and healthy.
    Success,
    /// The sync ran and failed (render, apply, health, pipeline gate).
    Failure,
    /// Keelson could not run the sync (configuration, cluster unreachable).
    Error,
}

impl State {
    fn to_octocrab(self) -> StatusState {
        match self {
            State::Pending => StatusState::Pending,
            State::Success => StatusState::Success,
            State::Failure => StatusState::Failure,
            State::Error => StatusState::Error,
        }
    }

    /// GitHub's name for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Success => "success",
            State::Failure => "failure",
            State::Error => "error",
        }
    }
}

/// One commit status to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    /// Where the sync is.
    pub state: State,
    /// Which status on the commit this is, e.g. `keelson/shop-prod/prod` (see [`context`]).
    pub context: String,
    /// A short human description; cut to [`DESCRIPTION_LIMIT`] characters when sent.
    pub description: String,
    /// A link shown next to the status.
    pub target_url: Option<String>,
}

/// The status context of a target on a cluster: `keelson/<target>/<cluster>`.
pub fn context(target: &str, cluster: &str) -> String {
    format!("keelson/{target}/{cluster}")
}

/// Cuts `description` to GitHub's limit on a character boundary, ending it with `…` when
/// something was cut so the reader knows there is more (in the logs).
pub fn trim_description(description: &str) -> String {
    if description.chars().count() <= DESCRIPTION_LIMIT {
        return description.to_string();
    }
    let mut cut: String = description.chars().take(DESCRIPTION_LIMIT - 1).collect();
    cut.push('…');
    cut
}

/// How often and how long to retry a failure that may pass on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// The wait before the second attempt; it doubles after each further failure.
    pub initial_delay: Duration,
    /// No wait is longer, not even one a `Retry-After` header asks for: statuses are reports,
    /// and the sync loop must not stall behind them.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempt counts from 1): exponential with jitter
    /// (50–100 % of the step, so replicas do not retry in lockstep), raised to what the server
    /// asked for, and capped.
    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let step = self
            .initial_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_delay);
        let jittered = step.mul_f64(rand::rng().random_range(0.5..=1.0));
        jittered
            .max(retry_after.unwrap_or_default())
            .min(self.max_delay)
    }
}

/// Something went wrong setting up or sending a commit status.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The token file could not be read.
    #[error("reading the GitHub token file {path}: {source}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The token file is empty.
    #[error("the GitHub token file {path} is empty")]
    EmptyToken {
        /// The file.
        path: PathBuf,
    },
    /// The token holds whitespace or control characters (other than a trailing newline).
    #[error("the GitHub token file {path} holds whitespace or control characters inside the token")]
    MalformedToken {
        /// The file.
        path: PathBuf,
    },
    /// The API URL is not usable.
    #[error("GitHub API URL {url:?}: {reason}")]
    ApiUrl {
        /// The URL as configured.
        url: String,
        /// Why it is not usable.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("building the GitHub client for {url}: {reason}")]
    Client {
        /// The API URL.
        url: String,
        /// Why (e.g. no trusted root certificates on this machine).
        reason: String,
    },
    /// The repository is not `owner/name`.
    #[error("GitHub repository {repo:?} is not of the form owner/name")]
    Repository {
        /// The repository as given.
        repo: String,
    },
    /// GitHub refused or failed the request.
    #[error(
        "commit status {context:?} for {repo}@{sha}: {}after {attempts} attempt{}: {message}",
        status.map(|s| format!("HTTP {s} ")).unwrap_or_default(),
        if *attempts == 1 { "" } else { "s" }
    )]
    Api {
        /// `owner/name`.
        repo: String,
        /// The commit.
        sha: String,
        /// The status context.
        context: String,
        /// The HTTP status of the last answer, if there was one.
        status: Option<u16>,
        /// How many requests were sent.
        attempts: u32,
        /// GitHub's message (and validation errors), or the transport error.
        message: String,
    },
}

/// Sends commit statuses to GitHub (or GitHub Enterprise). Cheap to clone.
#[derive(Clone)]
pub struct StatusReporter {
    client: Octocrab,
    token: Token,
    api_url: Arc<str>,
    retry: RetryPolicy,
}

impl fmt::Debug for StatusReporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusReporter")
            .field("api_url", &self.api_url)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl StatusReporter {
    /// A reporter for the API at `api_url` (e.g. [`DEFAULT_API_URL`], or
    /// `https://ghe.example.com/api/v3`). Call it inside the tokio runtime that will use it:
    /// the client's request queue runs as a task there.
    pub fn new(api_url: &str, token: Token) -> Result<Self, StatusError> {
        let api_error = |reason: &str| StatusError::ApiUrl {
            url: api_url.to_string(),
            reason: reason.to_string(),
        };
        let uri: http::Uri = api_url
            .trim_end_matches('/')
            .parse()
            .map_err(|e: http::uri::InvalidUri| api_error(&e.to_string()))?;
        if !matches!(uri.scheme_str(), Some("https" | "http")) || uri.host().is_none() {
            return Err(api_error("expected an absolute http(s) URL"));
        }
        if uri.query().is_some() {
            return Err(api_error("a query string is not allowed"));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StatusError::Client {
                url: api_url.to_string(),
                reason: "no tokio runtime is running here".to_string(),
            });
        }
        let client = Octocrab::builder()
            .base_uri(uri)
            .map_err(|e| api_error(&e.to_string()))?
            .personal_token(token.0.to_string())
            .add_header(
                http::header::ACCEPT,
                "application/vnd.github+json".to_string(),
            )
            .add_header(
                http::HeaderName::from_static("x-github-api-version"),
                API_VERSION.to_string(),
            )
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(ATTEMPT_TIMEOUT))
            .set_write_timeout(Some(ATTEMPT_TIMEOUT))
            .build()
            .map_err(|e| StatusError::Client {
                url: api_url.to_string(),
                reason: token.scrub(&e.to_string()),
            })?;
        Ok(Self {
            client,
            token,
            api_url: Arc::from(api_url),
            retry: RetryPolicy::default(),
        })
    }

    /// The same reporter with another retry policy (tests use short delays).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = RetryPolicy {
            attempts: retry.attempts.max(1),
            ..retry
        };
        self
    }

    /// Sets `status` on commit `sha` of `repo` (`owner/name`).
    pub async fn report(
        &self,
        repo: &str,
        sha: &str,
        status: &CommitStatus,
    ) -> Result<(), StatusError> {
        let (owner, name) = split_repo(repo)?;
        let description = trim_description(&status.description);
        let mut attempt = 0;
        loop {
            attempt += 1;
            tracing::debug!(repo, sha, context = %status.context, state = status.state.as_str(), attempt, "reporting commit status");
            let handler = self.client.repos(owner, name);
            let mut request = handler
                .create_status(sha.to_string(), status.state.to_octocrab())
                .context(status.context.clone());
            if !description.is_empty() {
                request = request.description(description.clone());
            }
            if let Some(url) = &status.target_url {
                request = request.target(url.clone());
            }
            let failure = match tokio::time::timeout(ATTEMPT_TIMEOUT, request.send()).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(error)) => Failure::from_octocrab(&error, &self.token),
                Err(_) => Failure {
                    status: None,
                    message: format!("no answer within {ATTEMPT_TIMEOUT:?}"),
                    retryable: true,
                    retry_after: None,
                },
            };
            if !failure.retryable || attempt >= self.retry.attempts {
                return Err(StatusError::Api {
                    repo: repo.to_string(),
                    sha: sha.to_string(),
                    context: status.context.clone(),
                    status: failure.status,
                    attempts: attempt,
                    message: failure.message,
                });
            }
            let delay = self.retry.delay(attempt, failure.retry_after);
            tracing::warn!(repo, sha, context = %status.context, status = ?failure.status, message = %failure.message, ?delay, "commit status failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }
}

/// Splits `owner/name`, refusing anything that could change the request's path.
fn split_repo(repo: &str) -> Result<(&str, &str), StatusError> {
    let valid = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    match repo.split_once('/') {
        Some((owner, name)) if valid(owner) && valid(name) => Ok((owner, name)),
        _ => Err(StatusError::Repository {
            repo: repo.to_string(),
        }),
    }
}

/// One failed attempt, classified.
#[derive(Debug)]
struct Failure {
    status: Option<u16>,
    message: String,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl Failure {
    fn from_octocrab(error: &octocrab::Error, token: &Token) -> Self {
        match error {
            octocrab::Error::GitHub { source, .. } => {
                let status = source.status_code;
                let mut message = source.message.clone();
                for detail in source.errors.iter().flatten() {
                    message.push_str("; ");
                    message.push_str(&match detail {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    });
                }
                let retry_after = source
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(http::header::RETRY_AFTER))
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                Self {
                    status: Some(status.as_u16()),
                    retryable: status.is_server_error()
                        || is_secondary_rate_limit(status, &source.message, retry_after.is_some()),
                    message: token.scrub(&message),
                    retry_after,
                }
            }
            // Connection refused or reset, timeouts: the request may not have reached GitHub.
            // A duplicate status is harmless (the newest per context wins), so retry.
            octocrab::Error::Hyper { .. }
            | octocrab::Error::Service { .. }
            | octocrab::Error::Other { .. } => Self {
                status: None,
                message: token.scrub(&error_chain(error)),
                retryable: true,
                retry_after: None,
            },
            // GitHub accepted the status but the answer did not parse, or the request could not
            // be built: sending it again would not help.
            _ => Self {
                status: None,
                message: token.scrub(&error_chain(error)),
                retryable: false,
                retry_after: None,
            },
        }
    }
}

/// GitHub's secondary rate limits answer 403 or 429 with a message saying so, or with a
/// `Retry-After` header (its documentation's rules). The primary rate limit (an hour's quota)
/// is not worth a short retry and stays an error.
fn is_secondary_rate_limit(status: http::StatusCode, message: &str, retry_after: bool) -> bool {
    (status == http::StatusCode::FORBIDDEN || status == http::StatusCode::TOO_MANY_REQUESTS)
        && (retry_after
            || message
                .to_ascii_lowercase()
                .contains("secondary rate limit"))
}

/// The error and its sources on one line: octocrab's own `Display` names only the outermost.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_file(contents: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, contents).unwrap();
        (dir, path)
    }

    #[test]
    fn token_drops_the_trailing_newline_and_hides_in_debug() {
        let (_dir, path) = token_file("ghp_secret123\n");
        let token = Token::from_file(&path).unwrap();
        assert_eq!(&*token.0, "ghp_secret123");
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
        let (_dir, path) = token_file("ghp_secret123\r\n");
        assert_eq!(&*Token::from_file(&path).unwrap().0, "ghp_secret123");
    }

    #[test]
    fn empty_or_malformed_token_files_are_errors_naming_the_file() {
        for contents in ["", "\n", "\r\n"] {
            let (_dir, path) = token_file(contents);
            let error = Token::from_file(&path).unwrap_err().to_string();
            assert!(error.contains(&path.display().to_string()), "{error}");
            assert!(error.contains("empty"), "{error}");
        }
        let (_dir, path) = token_file("ghp secret\n");
        let error = Token::from_file(&path).unwrap_err().to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(!error.contains("secret"), "{error}");
        let missing = Path::new("/nonexistent/keelson/token");
        let error = Token::from_file(missing).unwrap_err().to_string();
        assert!(error.contains("/nonexistent/keelson/token"), "{error}");
    }

    #[test]
    fn descriptions_are_cut_to_the_limit_on_a_char_boundary() {
        assert_eq!(trim_description("short"), "short");
        let exact = "a".repeat(DESCRIPTION_LIMIT);
        assert_eq!(trim_description(&exact), exact);
        // Multi-byte characters: a byte-based cut would split one.
        let long = "é".repeat(DESCRIPTION_LIMIT + 10);
        let cut = trim_description(&long);
        assert_eq!(cut.chars().count(), DESCRIPTION_LIMIT);
        assert!(cut.ends_with('…'));
        assert!(long.starts_with(cut.trim_end_matches('…')));
    }

    #[test]
    fn context_names_target_and_cluster() {
        assert_eq!(context("shop-prod", "prod"), "keelson/shop-prod/prod");
    }

    #[test]
    fn repositories_must_be_owner_slash_name() {
        assert_eq!(split_repo("acme/deploy").unwrap(), ("acme", "deploy"));
        assert_eq!(split_repo("a-b.c/d_e.git").unwrap(), ("a-b.c", "d_e.git"));
        for bad in [
            "acme",
            "acme/",
            "/deploy",
            "acme/deploy/x",
            "acme/../x",
            "a b/c",
            "a/?x",
        ] {
            let error = split_repo(bad).unwrap_err().to_string();
            assert!(error.contains(bad), "{error}");
        }
    }

    #[test]
    fn retry_delays_grow_are_capped_and_honour_retry_after_up_to_the_cap() {
        let policy = RetryPolicy {
            attempts: 5,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
        };
        for _ in 0..50 {
            let first = policy.delay(1, None);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = policy.delay(3, None);
            assert!(third >= Duration::from_millis(150) && third <= Duration::from_millis(300));
            assert_eq!(
                policy.delay(10, Some(Duration::from_secs(60))),
                policy.max_delay
            );
            assert!(
                policy.delay(1, Some(Duration::from_millis(200))) >= Duration::from_millis(200)
            );
        }
    }

    #[test]
    fn secondary_rate_limits_are_recognised() {
        use http::StatusCode;
        let msg = "You have exceeded a secondary rate limit. Please wait a few minutes.";
        assert!(is_secondary_rate_limit(StatusCode::FORBIDDEN, msg, false));
        assert!(is_secondary_rate_limit(
            StatusCode::TOO_MANY_REQUESTS,
            "x",
            true
        ));
        assert!(!is_secondary_rate_limit(
            StatusCode::FORBIDDEN,
            "Resource not accessible by integration",
            false
        ));
        assert!(!is_secondary_rate_limit(StatusCode::NOT_FOUND, msg, true));
    }

    #[test]
    fn scrub_removes_the_token() {
        let (_dir, path) = token_file("ghp_secret123\n");
        let token = Token::from_file(&path).unwrap();
        assert_eq!(
            token.scrub("bad credentials: Bearer ghp_secret123"),
            "bad credentials: Bearer <redacted>"
        );
    }

    #[tokio::test]
    async fn new_rejects_unusable_api_urls() {
        let (_dir, path) = token_file("ghp_secret123\n");
        let token = Token::from_file(&path).unwrap();
        for url in ["api.github.com", "ftp://x", "https://x/api?x=1", "http://"] {
            let error = StatusReporter::new(url, token.clone())
                .unwrap_err()
                .to_string();
            assert!(error.contains(url), "{error}");
        }
        let reporter = StatusReporter::new("https://ghe.example.com/api/v3/", token).unwrap();
        assert!(!format!("{reporter:?}").contains("ghp_secret123"));
    }
}
