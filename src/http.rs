//! The one HTTP client relgate uses for remote repositories: reqwest over rustls (ring
//! provider, no OpenSSL), the platform's trust store plus an optional in-house CA, a bounded
//! connect timeout, the stall timeout its callers apply, credentials from the environment or
//! `~/.netrc` that are never shown, and URLs shown only without credentials.

use std::path::Path;
use std::time::Duration;

/// How long to wait for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a transfer may go without a byte moving before it counts as stalled, unless
/// `RELGATE_HTTP_STALL_TIMEOUT` (seconds) says otherwise.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The stall timeout in force: [`STALL_TIMEOUT`], or `RELGATE_HTTP_STALL_TIMEOUT` seconds (a
/// slow link may want more; the fault tests want less).
pub fn stall_timeout() -> Duration {
    std::env::var("RELGATE_HTTP_STALL_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(STALL_TIMEOUT)
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot read the CA file {}: {source}", .path.display())]
    CaRead {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the CA file {} holds no PEM certificate", .path.display())]
    CaEmpty { path: std::path::PathBuf },
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    #[error("{user} is set without {password} (or the other way round)")]
    HalfCredentials {
        user: &'static str,
        password: &'static str,
    },
}

/// A client for one destination. `ca` is a PEM file whose certificates are trusted besides the
/// platform's own.
pub fn client(ca: Option<&Path>) -> Result<reqwest::Client, HttpError> {
    // reqwest is built without a default crypto provider; ring is the one relgate ships. A
    // second install (another client in this process) is refused harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // No `read_timeout`: reqwest starts it when a request is sent and never resets it while the
    // body uploads, so a 2 GiB PUT over a slow link would time out however well it moved.
    // Callers watch for stalls themselves (`crate::dav`, `crate::s3`), byte by byte.
    let mut b = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("relgate/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca {
        let pem = std::fs::read(path).map_err(|source| HttpError::CaRead {
            path: path.to_path_buf(),
            source,
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| HttpError::Client(format!("{}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(HttpError::CaEmpty {
                path: path.to_path_buf(),
            });
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| HttpError::Client(e.to_string()))
}

/// How requests to a repository authenticate. `Debug` never shows a secret, and nothing in
/// relgate formats one: the values go into the `Authorization` header only.
#[derive(Clone)]
pub enum Auth {
    Basic { user: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Basic { .. } => f.write_str("Auth::Basic(<redacted>)"),
            Auth::Bearer(_) => f.write_str("Auth::Bearer(<redacted>)"),
        }
    }
}

impl Auth {
    pub fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::Basic { user, password } => req.basic_auth(user, Some(password)),
            Auth::Bearer(token) => req.bearer_auth(token),
        }
    }
}

/// Which environment variables hold a repository's credentials.
#[derive(Clone, Copy, Debug)]
pub struct CredentialVars {
    pub token: &'static str,
    pub user: &'static str,
    pub password: &'static str,
}

/// Publishing, and `verify`/`replay` by URL.
pub const PUBLISH_VARS: CredentialVars = CredentialVars {
    token: "RELGATE_PUBLISH_TOKEN",
    user: "RELGATE_PUBLISH_USER",
    password: "RELGATE_PUBLISH_PASSWORD",
};

/// The team's share (`share:`, `approve --from`, `history`): often another server, or another
/// account on the same one, than the release repository.
pub const SHARE_VARS: CredentialVars = CredentialVars {
    token: "RELGATE_SHARE_TOKEN",
    user: "RELGATE_SHARE_USER",
    password: "RELGATE_SHARE_PASSWORD",
};

/// The credentials for `url`: `RELGATE_PUBLISH_TOKEN` (a bearer token), else
/// `RELGATE_PUBLISH_USER` and `RELGATE_PUBLISH_PASSWORD`, else the entry for the URL's host in
/// `$NETRC` or `~/.netrc`, else none.
pub fn credentials(url: &url::Url) -> Result<Option<Auth>, HttpError> {
    credentials_from(url, &PUBLISH_VARS)
}

/// As [`credentials`], from the variables `vars` names.
pub fn credentials_from(url: &url::Url, vars: &CredentialVars) -> Result<Option<Auth>, HttpError> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(token) = var(vars.token) {
        return Ok(Some(Auth::Bearer(token)));
    }
    match (var(vars.user), var(vars.password)) {
        (Some(user), Some(password)) => return Ok(Some(Auth::Basic { user, password })),
        (None, None) => {}
        _ => {
            return Err(HttpError::HalfCredentials {
                user: vars.user,
                password: vars.password,
            });
        }
    }
    let file = match var("NETRC") {
        Some(f) => std::path::PathBuf::from(f),
        None => match var("HOME") {
            Some(h) => std::path::Path::new(&h).join(".netrc"),
            None => return Ok(None),
        },
    };
    // A missing or unreadable .netrc means no credentials from it, as for curl.
    let Ok(bytes) = crate::record::read_capped(&file, 1 << 20) else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    let Some(host) = url.host_str() else {
        return Ok(None);
    };
    Ok(
        crate::netrc::lookup(&text, host).and_then(|e| match (e.login, e.password) {
            (Some(user), Some(password)) => Some(Auth::Basic { user, password }),
            _ => None,
        }),
    )
}

/// A URL as messages, logs and the terminal may show it: no user, no password, no query (which
/// can carry a presigned signature or a token), no fragment.
pub fn redact(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// Is `url`'s host this machine (plain HTTP is allowed there without `allow_http`)?
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_drops_every_credential() {
        let u =
            url::Url::parse("https://bob:s3cret@repo.example/a/b?X-Amz-Signature=abc#x").unwrap();
        let shown = redact(&u);
        assert_eq!(shown, "https://repo.example/a/b");
        assert!(!shown.contains("s3cret") && !shown.contains("abc"));
    }

    #[test]
    fn loopback_hosts() {
        for (u, want) in [
            ("http://127.0.0.1:8080/x", true),
            ("http://[::1]/x", true),
            ("http://localhost/x", true),
            ("http://repo.example/x", false),
            ("http://10.0.0.1/x", false),
        ] {
            assert_eq!(is_loopback(&url::Url::parse(u).unwrap()), want, "{u}");
        }
    }
}
