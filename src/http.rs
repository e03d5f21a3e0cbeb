//! The one HTTP client relgate uses for remote repositories: reqwest over rustls (ring
//! provider, no OpenSSL), the platform's trust store plus an optional in-house CA, a bounded
//! connect timeout, the stall timeout its callers apply, and URLs shown only without
//! credentials.

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
}

/// A client for one destination. `ca` is a PEM file whose certificates are trusted besides the
/// platform's own.
pub fn client(ca: Option<&Path>) -> Result<reqwest::Client, HttpError> {
    // reqwest is built without a default crypto provider; ring is the one relgate ships. A
    // second install (another client in this process) is refused harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // No `read_timeout`: reqwest starts it when a request is sent and never resets it while the
    // body uploads, so a 2 GiB PUT over a slow link would time out however well it moved.
    // Callers watch for stalls themselves (`crate::s3`), byte by byte.
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
