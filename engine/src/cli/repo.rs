//! `--repo URL` and its credentials, shared by the verbs that can work on a repository
//! at a revision instead of a local directory (`build`, `changed`, later `diff`/`sync`).

use std::path::PathBuf;

use anyhow::{Context, bail};
use keelson::source::{Auth, RepoSpec, RepoUrl, SecretRef, Source, TreeMode};

/// Where the repository is and how to reach it.
#[derive(Debug, Clone, clap::Args)]
pub struct RepoArgs {
    /// A git repository (https://, ssh://, user@host:path, git://, file:// or a path):
    /// work on it at a revision instead of on a local directory.
    #[arg(long, value_name = "URL", env = "KEELSON_REPO")]
    pub repo: Option<String>,
    /// User name for https (basic auth) or ssh.
    #[arg(long, value_name = "NAME", env = "KEELSON_GIT_USERNAME")]
    pub git_username: Option<String>,
    /// Name of an environment variable holding an https token.
    #[arg(long, value_name = "VAR")]
    pub git_token_env: Option<String>,
    /// A file holding an https token.
    #[arg(long, value_name = "FILE")]
    pub git_token_file: Option<PathBuf>,
    /// Name of an environment variable holding an https password.
    #[arg(long, value_name = "VAR")]
    pub git_password_env: Option<String>,
    /// A file holding an https password.
    #[arg(long, value_name = "FILE")]
    pub git_password_file: Option<PathBuf>,
    /// An ssh private key file.
    #[arg(long, value_name = "FILE")]
    pub ssh_key_file: Option<PathBuf>,
    /// Name of an environment variable holding the ssh key's passphrase.
    #[arg(long, value_name = "VAR")]
    pub ssh_passphrase_env: Option<String>,
    /// known_hosts file for ssh host keys (default ~/.ssh/known_hosts).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Shallow fetch: this many commits of history, where the server allows it.
    #[arg(long, value_name = "N")]
    pub depth: Option<u32>,
    /// Give up on a fetch after this long.
    #[arg(long, value_name = "DURATION", default_value = "120s")]
    pub fetch_timeout: String,
    /// The git cache (default $KEELSON_CACHE_DIR, else ~/.cache/keelson).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// How a commit's tree is read: straight from git's objects, or from a checkout.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = TreeArg::Objects)]
    pub tree: TreeArg,
}

/// `--tree`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TreeArg {
    Objects,
    Checkout,
}

impl RepoArgs {
    /// The repository, when `--repo` was given.
    pub fn spec(&self) -> anyhow::Result<Option<RepoSpec>> {
        let Some(url) = &self.repo else {
            return Ok(None);
        };
        let url = RepoUrl::parse(url).map_err(|m| anyhow::anyhow!("--repo: {m}"))?;
        let mut spec = RepoSpec::new(url);
        let token = match (&self.git_token_env, &self.git_token_file) {
            (Some(v), None) => Some(SecretRef::env(v)),
            (None, Some(f)) => Some(SecretRef::file(f)),
            (None, None) => None,
            _ => bail!("give one of --git-token-env and --git-token-file"),
        };
        let password = match (&self.git_password_env, &self.git_password_file) {
            (Some(v), None) => Some(SecretRef::env(v)),
            (None, Some(f)) => Some(SecretRef::file(f)),
            (None, None) => None,
            _ => bail!("give one of --git-password-env and --git-password-file"),
        };
        spec.auth = Auth {
            username: self.git_username.clone(),
            token,
            password,
            ssh_key: self.ssh_key_file.as_ref().map(SecretRef::file),
            ssh_passphrase: self.ssh_passphrase_env.as_ref().map(SecretRef::env),
            known_hosts: self.known_hosts.clone(),
        };
        spec.auth
            .validate("auth")
            .map_err(|(f, m)| anyhow::anyhow!("{f}: {m}"))?;
        spec.depth = self.depth.filter(|d| *d > 0);
        spec.timeout = keelson::time::parse_duration(&self.fetch_timeout)
            .ok()
            .filter(|d| !d.is_zero())
            .with_context(|| {
                format!(
                    "--fetch-timeout: {:?} is not a duration",
                    self.fetch_timeout
                )
            })?;
        Ok(Some(spec))
    }

    /// The git cache.
    pub fn source(&self) -> Source {
        Source::new(self.cache_dir.clone().unwrap_or_else(Source::default_root))
    }

    /// How trees are read.
    pub fn mode(&self) -> TreeMode {
        match self.tree {
            TreeArg::Checkout => TreeMode::Checkout,
            TreeArg::Objects => TreeMode::Objects,
        }
    }
}
