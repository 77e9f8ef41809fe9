//! Repository URLs: https/http, ssh (URL and scp-like forms), git://, file:// and local
//! paths. A URL never carries a password or token: those come from [`super::Auth`].

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// How a repository is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `https://` (or `http://`, for loopback test servers).
    Https,
    Http,
    /// `ssh://user@host[:port]/path` or `user@host:path`.
    Ssh,
    /// `git://` (the unauthenticated git daemon protocol).
    Git,
    /// A local path or `file://` URL.
    File,
}

/// A parsed repository URL, safe to print: it holds no secret.
#[derive(Clone, PartialEq, Eq)]
pub struct RepoUrl {
    scheme: Scheme,
    user: Option<String>,
    host: String,
    port: Option<u16>,
    /// For network URLs the path on the server; for local repositories an absolute path.
    path: String,
    /// The form handed to libgit2.
    raw: String,
}

impl RepoUrl {
    /// Parses `text`; a local path is made absolute against the current directory.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty repository URL".into());
        }
        if let Some((scheme, rest)) = text.split_once("://") {
            let scheme = match scheme.to_ascii_lowercase().as_str() {
                "https" => Scheme::Https,
                "http" => Scheme::Http,
                "ssh" | "git+ssh" | "ssh+git" => Scheme::Ssh,
                "git" => Scheme::Git,
                "file" => Scheme::File,
                other => return Err(format!("unsupported URL scheme {other:?}")),
            };
            if scheme == Scheme::File {
                let path = rest.strip_prefix("localhost").unwrap_or(rest);
                if !path.starts_with('/') {
                    return Err("file:// URLs need an absolute path".into());
                }
                return Ok(Self::local(PathBuf::from(path)));
            }
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            let (user, hostport) = split_userinfo(authority)?;
            let (host, port) = split_port(hostport)?;
            if host.is_empty() {
                return Err("the URL names no host".into());
            }
            let mut url = RepoUrl {
                scheme,
                user,
                host: host.to_ascii_lowercase(),
                port,
                path: path.to_string(),
                raw: String::new(),
            };
            url.raw = url.render();
            return Ok(url);
        }
        // scp-like `[user@]host:path`: a colon before any slash, and not a Windows drive.
        if let Some(colon) = text.find(':')
            && !text[..colon].contains('/')
            && colon > 1
        {
            let (user, host) = split_userinfo(&text[..colon])?;
            let path = &text[colon + 1..];
            let mut url = RepoUrl {
                scheme: Scheme::Ssh,
                user,
                host: host.to_ascii_lowercase(),
                port: None,
                path: if path.starts_with('/') {
                    path.to_string()
                } else {
                    format!("/{path}")
                },
                raw: String::new(),
            };
            // Keep the scp form for libgit2: `host:path` is relative to the login's home.
            url.raw = match &url.user {
                Some(u) => format!("{u}@{}:{path}", url.host),
                None => format!("{}:{path}", url.host),
            };
            return Ok(url);
        }
        let path = Path::new(text);
        let abs = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| format!("cannot resolve the local path {text:?}: {e}"))?
                .join(path)
        };
        Ok(Self::local(abs))
    }

    fn local(path: PathBuf) -> Self {
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        let text = path.display().to_string();
        RepoUrl {
            scheme: Scheme::File,
            user: None,
            host: String::new(),
            port: None,
            raw: format!("file://{text}"),
            path: text,
        }
    }

    fn render(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Https => "https",
            Scheme::Http => "http",
            Scheme::Ssh => "ssh",
            Scheme::Git => "git",
            Scheme::File => return format!("file://{}", self.path),
        };
        let user = self
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{scheme}://{user}{}{port}{}", self.host, self.path)
    }

    /// How the repository is reached.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The user named in the URL (`git` in `git@host:org/repo`).
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The host (empty for local repositories).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, when the URL names one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The URL as handed to libgit2.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The repository's short name: the last path segment without `.git`.
    pub fn name(&self) -> String {
        let last = self
            .path
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let name = last.strip_suffix(".git").unwrap_or(last);
        let clean: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if clean.is_empty() || clean.starts_with('.') {
            format!("repo{clean}")
        } else {
            clean
        }
    }

    /// A stable key for the cache directory: the same repository under spelling
    /// variants (`.git` suffix, trailing slash, host case, user) maps to one key.
    pub fn cache_key(&self) -> String {
        format!("{}-{}", self.name(), self.identity())
    }

    /// The repository's identity, the same for its spelling variants (as
    /// [`RepoUrl::cache_key`]): 16 hex digits, fit for a label value.
    pub fn identity(&self) -> String {
        let path = self.path.trim_end_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        let scheme = match self.scheme {
            Scheme::Https | Scheme::Http => "http",
            Scheme::Ssh => "ssh",
            Scheme::Git => "git",
            Scheme::File => "file",
        };
        let canonical = format!("{scheme}://{}:{}{path}", self.host, self.port.unwrap_or(0));
        let digest = Sha256::digest(canonical.as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn split_userinfo(authority: &str) -> Result<(Option<String>, &str), String> {
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            if userinfo.contains(':') {
                return Err(
                    "the URL holds a password or token; name it in the repository's \
                            auth (an environment variable or a file) instead"
                        .into(),
                );
            }
            Ok((Some(userinfo.to_string()), host))
        }
        None => Ok((None, authority)),
    }
}

fn split_port(hostport: &str) -> Result<(&str, Option<u16>), String> {
    if let Some(rest) = hostport.strip_prefix('[') {
        // [ipv6]:port
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("unterminated IPv6 address in {hostport:?}"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().map_err(|_| format!("bad port {p:?}"))?),
            None => None,
        };
        return Ok((host, port));
    }
    match hostport.rsplit_once(':') {
        Some((host, p)) if !p.is_empty() => Ok((
            host,
            Some(p.parse().map_err(|_| format!("bad port {p:?}"))?),
        )),
        Some((host, _)) => Ok((host, None)),
        None => Ok((hostport, None)),
    }
}

impl fmt::Display for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl fmt::Debug for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepoUrl({})", self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let cases = [
            (
                "https://Git.Example.com/org/shop.git",
                Scheme::Https,
                "git.example.com",
                None,
                "shop",
            ),
            (
                "http://127.0.0.1:8080/shop",
                Scheme::Http,
                "127.0.0.1",
                Some(8080),
                "shop",
            ),
            (
                "ssh://git@example.com:2222/org/shop.git",
                Scheme::Ssh,
                "example.com",
                Some(2222),
                "shop",
            ),
            (
                "git@example.com:org/shop.git",
                Scheme::Ssh,
                "example.com",
                None,
                "shop",
            ),
            (
                "git://127.0.0.1:9418/shop.git",
                Scheme::Git,
                "127.0.0.1",
                Some(9418),
                "shop",
            ),
            ("file:///srv/git/shop.git", Scheme::File, "", None, "shop"),
            ("/srv/git/shop", Scheme::File, "", None, "shop"),
        ];
        for (text, scheme, host, port, name) in cases {
            let u = RepoUrl::parse(text).unwrap();
            assert_eq!(u.scheme(), scheme, "{text}");
            assert_eq!(u.host(), host, "{text}");
            assert_eq!(u.port(), port, "{text}");
            assert_eq!(u.name(), name, "{text}");
        }
        assert_eq!(
            RepoUrl::parse("git@example.com:org/shop.git")
                .unwrap()
                .as_str(),
            "git@example.com:org/shop.git"
        );
    }

    #[test]
    fn passwords_in_urls_are_refused_without_echoing_them() {
        let err = RepoUrl::parse("https://bob:hunter2secret@example.com/x.git").unwrap_err();
        assert!(!err.contains("hunter2secret"), "{err}");
        assert!(err.contains("auth"), "{err}");
    }

    #[test]
    fn cache_key_ignores_spelling() {
        let a = RepoUrl::parse("https://example.com/org/shop.git").unwrap();
        let b = RepoUrl::parse("https://EXAMPLE.com/org/shop/").unwrap();
        let c = RepoUrl::parse("https://example.com/org/other.git").unwrap();
        assert_eq!(a.cache_key(), b.cache_key());
        assert_ne!(a.cache_key(), c.cache_key());
        assert!(a.cache_key().starts_with("shop-"));
    }
}
