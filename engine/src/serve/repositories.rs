//! Each watched repository's health, on its own: fetched or failing and why, the commit it
//! serves. One broken repository shows here (`GET /api/v1/repositories`,
//! `keelson_repository_up`) and never makes the whole engine unready.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One repository, as `GET /api/v1/repositories` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryStatus {
    /// The clone URL as configured.
    pub repository: String,
    /// The ref watched.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The commit the ref named at the last successful fetch.
    pub fetched_commit: Option<String>,
    /// The commit whose render the engine syncs (the last deployable one).
    pub serving_commit: Option<String>,
    pub last_fetch: Option<DateTime<Utc>>,
    /// Why the last fetch failed (none: it worked).
    pub fetch_error: Option<String>,
    /// Why the fetched commit cannot be deployed: a bad `keelson.yaml`, named by file and
    /// field. It stays until a deployable commit comes.
    pub commit_error: Option<String>,
    /// Failed fetches since the last good one.
    pub consecutive_failures: u64,
}

impl RepositoryStatus {
    pub fn new(repository: String, git_ref: String) -> Self {
        RepositoryStatus {
            repository,
            git_ref,
            ..Default::default()
        }
    }

    /// Fetched, and its commit is deployable.
    pub fn up(&self) -> bool {
        self.fetched_commit.is_some() && self.fetch_error.is_none() && self.commit_error.is_none()
    }

    /// A fetch found `commit`: a new one whose verdict is `deployable`, or (`None`) the
    /// commit of the last fetch, which keeps its verdict.
    pub fn fetched(&mut self, commit: String, deployable: Option<Result<(), String>>) {
        self.last_fetch = Some(Utc::now());
        self.consecutive_failures = 0;
        self.fetch_error = None;
        match deployable {
            Some(Ok(())) => {
                self.serving_commit = Some(commit.clone());
                self.commit_error = None;
            }
            Some(Err(message)) => self.commit_error = Some(message),
            None => {}
        }
        self.fetched_commit = Some(commit);
    }

    /// A fetch failed.
    pub fn failed(&mut self, message: String) {
        self.last_fetch = Some(Utc::now());
        self.consecutive_failures += 1;
        self.fetch_error = Some(message);
    }
}

/// `GET /api/v1/repositories`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RepositoryList {
    pub repositories: Vec<RepositoryStatus>,
}

/// The repositories' metrics in Prometheus' text format.
pub fn render_metrics(rows: &[RepositoryStatus]) -> String {
    let mut out = String::from(
        "# HELP keelson_repository_up 1 when the repository's last fetch worked and its commit is deployable.\n# TYPE keelson_repository_up gauge\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "keelson_repository_up{{repository=\"{}\",ref=\"{}\"}} {}",
            super::state::escape(&r.repository),
            super::state::escape(&r.git_ref),
            u8::from(r.up())
        );
    }
    out.push_str("# HELP keelson_repository_fetch_failures Failed fetches of the repository since its last good one.\n# TYPE keelson_repository_fetch_failures gauge\n");
    for r in rows {
        let _ = writeln!(
            out,
            "keelson_repository_fetch_failures{{repository=\"{}\",ref=\"{}\"}} {}",
            super::state::escape(&r.repository),
            super::state::escape(&r.git_ref),
            r.consecutive_failures
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_commit_stays_down_until_a_good_one_and_fetch_errors_clear_on_success() {
        let mut r = RepositoryStatus::new("git://h/r".into(), "main".into());
        assert!(!r.up());
        r.fetched("a".into(), Some(Ok(())));
        assert!(r.up());
        r.fetched(
            "b".into(),
            Some(Err("keelson.yaml: targets[0].path: missing".into())),
        );
        assert!(!r.up());
        r.fetched("b".into(), None);
        assert!(!r.up(), "an unchanged bad commit is still bad");
        assert_eq!(r.serving_commit.as_deref(), Some("a"));
        r.failed("timed out".into());
        r.failed("timed out".into());
        assert_eq!(r.consecutive_failures, 2);
        r.fetched("c".into(), Some(Ok(())));
        assert!(r.up());
        r.failed("refused".into());
        r.fetched("c".into(), None);
        assert!(r.up(), "the same good commit after a failed fetch");
        let text = render_metrics(&[r]);
        assert!(text.contains("keelson_repository_up{repository=\"git://h/r\",ref=\"main\"} 1"));
    }
}
