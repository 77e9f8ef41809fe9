//! Credentials for a repository. They are named in configuration (an environment
//! variable or a file), never read from the repository, and never printed: [`Secret`] has
//! no `Display`, its `Debug` is redacted, and error text is scrubbed of every secret.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A secret value. `Debug` prints `Secret(REDACTED)`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value (tests and programmatic configuration).
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for handing to libgit2 only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(REDACTED)")
    }
}

/// Where a secret comes from: exactly one of an environment variable or a file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretRef {
    /// The name of an environment variable holding the value.
    #[serde(default)]
    pub env: Option<String>,
    /// A file holding the value (trailing newlines are dropped).
    #[serde(default)]
    pub file: Option<PathBuf>,
}

impl SecretRef {
    /// A secret held in the environment variable `name`.
    pub fn env(name: impl Into<String>) -> Self {
        SecretRef {
            env: Some(name.into()),
            file: None,
        }
    }

    /// A secret held in the file at `path`.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        SecretRef {
            env: None,
            file: Some(path.into()),
        }
    }

    /// Reads the value; the error names the variable or file, never the value.
    pub fn load(&self) -> Result<Secret, String> {
        match (&self.env, &self.file) {
            (Some(var), None) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Secret(v)),
                Ok(_) => Err(format!("environment variable {var} is empty")),
                Err(_) => Err(format!("environment variable {var} is not set")),
            },
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let value = text.trim_end_matches(['\n', '\r']).to_string();
                if value.is_empty() {
                    return Err(format!("{} is empty", path.display()));
                }
                Ok(Secret(value))
            }
            _ => Err("name exactly one of env or file".into()),
        }
    }
}

/// How to authenticate to a repository.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Auth {
    /// The user name (https basic auth, or the ssh login when the URL names none).
    #[serde(default)]
    pub username: Option<String>,
    /// An https access token, sent as the basic-auth password.
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// An https password (basic auth).
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// An ssh private key (OpenSSH or PEM format).
    #[serde(default)]
    pub ssh_key: Option<SecretRef>,
    /// The passphrase of `sshKey`, if it has one.
    #[serde(default)]
    pub ssh_passphrase: Option<SecretRef>,
    /// The known_hosts file ssh host keys are checked against (default
    /// `~/.ssh/known_hosts`). Unknown or mismatching host keys are refused.
    #[serde(default)]
    pub known_hosts: Option<PathBuf>,
}

impl Auth {
    /// Checks the combination of fields; `field` prefixes the field names in errors.
    pub fn validate(&self, field: &str) -> Result<(), (String, String)> {
        if self.token.is_some() && self.password.is_some() {
            return Err((
                format!("{field}.token"),
                "name either token or password, not both".into(),
            ));
        }
        for (name, r) in [
            ("token", &self.token),
            ("password", &self.password),
            ("sshKey", &self.ssh_key),
            ("sshPassphrase", &self.ssh_passphrase),
        ] {
            if let Some(r) = r
                && r.env.is_some() == r.file.is_some()
            {
                return Err((
                    format!("{field}.{name}"),
                    "name exactly one of env or file".into(),
                ));
            }
        }
        if self.ssh_passphrase.is_some() && self.ssh_key.is_none() {
            return Err((format!("{field}.sshPassphrase"), "needs sshKey".into()));
        }
        Ok(())
    }

    /// Reads every secret named, once, before any network traffic.
    pub(crate) fn load(&self) -> Result<LoadedAuth, String> {
        let load = |name: &str, r: &Option<SecretRef>| -> Result<Option<Secret>, String> {
            r.as_ref()
                .map(|r| r.load().map_err(|e| format!("auth.{name}: {e}")))
                .transpose()
        };
        let password = match load("token", &self.token)? {
            Some(t) => Some(t),
            None => load("password", &self.password)?,
        };
        Ok(LoadedAuth {
            username: self.username.clone(),
            token: self.token.is_some(),
            password,
            ssh_key: load("sshKey", &self.ssh_key)?,
            ssh_passphrase: load("sshPassphrase", &self.ssh_passphrase)?,
            known_hosts: self.known_hosts.clone(),
        })
    }
}

/// Credentials read into memory for one fetch.
#[derive(Debug)]
pub(crate) struct LoadedAuth {
    pub username: Option<String>,
    /// Whether `password` is a token (the user name then defaults to `x-access-token`).
    pub token: bool,
    pub password: Option<Secret>,
    pub ssh_key: Option<Secret>,
    pub ssh_passphrase: Option<Secret>,
    pub known_hosts: Option<PathBuf>,
}

impl LoadedAuth {
    /// The secrets, for scrubbing error text.
    pub fn secrets(&self) -> Vec<&Secret> {
        [&self.password, &self.ssh_key, &self.ssh_passphrase]
            .into_iter()
            .flatten()
            .collect()
    }

    /// The basic-auth user name.
    pub fn http_user(&self) -> &str {
        match &self.username {
            Some(u) => u,
            None if self.token => "x-access-token",
            None => "git",
        }
    }

    /// The known_hosts file to check ssh host keys against.
    pub fn known_hosts_file(&self) -> Option<PathBuf> {
        self.known_hosts
            .clone()
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".ssh/known_hosts")))
    }
}

/// Replaces every secret (and its basic-auth encodings) in `text` with `REDACTED`.
pub(crate) fn scrub(text: &str, auth: &LoadedAuth) -> String {
    use base64::Engine as _;
    let mut out = text.to_string();
    for secret in auth.secrets() {
        let value = secret.expose();
        if value.len() < 4 {
            continue;
        }
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{value}", auth.http_user()));
        for needle in [basic.as_str(), value] {
            out = out.replace(needle, "REDACTED");
        }
        for line in value.lines().filter(|l| l.trim().len() >= 16) {
            out = out.replace(line.trim(), "REDACTED");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("s3cr3t-value");
        assert_eq!(format!("{s:?}"), "Secret(REDACTED)");
        let auth = LoadedAuth {
            username: None,
            token: true,
            password: Some(s),
            ssh_key: None,
            ssh_passphrase: None,
            known_hosts: None,
        };
        let dbg = format!("{auth:?}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert_eq!(
            scrub("server said s3cr3t-value twice: s3cr3t-value", &auth),
            "server said REDACTED twice: REDACTED"
        );
    }

    #[test]
    fn missing_sources_name_the_variable_not_a_value() {
        let e = SecretRef::env("KEELSON_TEST_SURELY_UNSET_VAR")
            .load()
            .unwrap_err();
        assert!(e.contains("KEELSON_TEST_SURELY_UNSET_VAR"), "{e}");
        let e = SecretRef::default().load().unwrap_err();
        assert!(e.contains("exactly one"), "{e}");
    }

    #[test]
    fn files_lose_their_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "abc123\n").unwrap();
        assert_eq!(SecretRef::file(&p).load().unwrap().expose(), "abc123");
    }

    #[test]
    fn validation_names_fields() {
        let a = Auth {
            token: Some(SecretRef::env("A")),
            password: Some(SecretRef::env("B")),
            ..Auth::default()
        };
        assert_eq!(a.validate("auth").unwrap_err().0, "auth.token");
        let a = Auth {
            ssh_key: Some(SecretRef::default()),
            ..Auth::default()
        };
        assert_eq!(a.validate("auth").unwrap_err().0, "auth.sshKey");
    }
}
