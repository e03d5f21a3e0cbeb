//! A small WebDAV client over the one HTTP client (`crate::http`): the requests relgate sends to a
//! repository, with bounded retries for idempotent ones, a stall watchdog on every transfer, and
//! errors that name the method, the URL without credentials, the HTTP status and how many tries
//! were made.
//!
//! Idempotent here means: sending it again cannot do anything the first one did not (GET,
//! PROPFIND, PUT of the same bytes, DELETE, MKCOL of a collection only relgate names). `MOVE` is
//! never retried: a MOVE whose answer was lost may have happened, and only looking at the
//! destination can tell (`crate::publish::webdav`).

pub mod body;
pub mod multistatus;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, Response, StatusCode};

pub use body::{Expect, Progress, Transfer};
pub use multistatus::Member;

use crate::http::{Auth, redact};

/// Tries of an idempotent request.
pub const ATTEMPTS: u32 = 3;
/// Wait before the second try; doubled before each later one.
const BACKOFF: Duration = Duration::from_millis(300);
/// The largest listing read (a release of a million files stays well below).
pub const MAX_LISTING_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum DavError {
    #[error("{method} {url}: HTTP {status}{}{}", tries(*.attempts), hint(.status))]
    Status {
        method: String,
        url: String,
        status: String,
        attempts: u32,
    },
    /// `message` is reqwest's error said in one line (what failed, and its innermost cause);
    /// the error itself is kept as the source, without its URL (whose query could carry a
    /// token: messages show URLs only through `http::redact`).
    #[error("{method} {url}: {message}{}", tries(*.attempts))]
    Transport {
        method: String,
        url: String,
        message: String,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    #[error("{method} {url}: stalled, nothing moved for {secs} s{}", tries(*.attempts))]
    Stalled {
        method: String,
        url: String,
        secs: u64,
        attempts: u32,
    },
    #[error("{method} {url}: {source}")]
    Local {
        method: String,
        url: String,
        #[source]
        source: std::sync::Arc<body::BodyError>,
    },
    #[error("{url}: the answer is over the limit of {cap} bytes")]
    TooLarge { url: String, cap: u64 },
    #[error("{url}: the listing cannot be read: {message}")]
    Listing { url: String, message: String },
    #[error("{url}: {message}")]
    Unsupported { url: String, message: String },
}

fn tries(n: u32) -> String {
    if n > 1 {
        format!(" (after {n} attempts)")
    } else {
        String::new()
    }
}

/// What a user can do about a status that usually means a setup problem.
fn hint(status: &str) -> &'static str {
    match status.split(' ').next() {
        Some("401") => {
            "; the credentials were refused or missing (RELGATE_PUBLISH_USER and \
             RELGATE_PUBLISH_PASSWORD, RELGATE_PUBLISH_TOKEN, or ~/.netrc)"
        }
        Some("403") => "; the server does not allow this user to do that",
        Some("413") => "; the server limits the body size (Apache: LimitRequestBody 0)",
        _ => "",
    }
}

impl DavError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            DavError::Status { status, .. } => status.split(' ').next()?.parse().ok(),
            _ => None,
        }
    }
}

/// A request's body, made afresh for every try.
pub enum Payload<'a> {
    None,
    Bytes(Bytes),
    /// A streamed body of a known length, given the transfer to report to.
    Stream {
        length: u64,
        make: &'a (dyn Fn(Arc<Transfer>) -> reqwest::Body + Send + Sync),
    },
}

/// A client for one repository.
#[derive(Clone, Debug)]
pub struct Dav {
    client: reqwest::Client,
    auth: Option<Auth>,
    stall: Duration,
}

fn status_text(s: StatusCode) -> String {
    format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
        .trim_end()
        .to_string()
}

/// Worth another try: the server (or something in between) failed or was busy.
fn retryable(s: StatusCode) -> bool {
    matches!(s.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

impl Dav {
    pub fn new(client: reqwest::Client, auth: Option<Auth>, stall: Duration) -> Dav {
        Dav {
            client,
            auth,
            stall,
        }
    }

    /// Send one request, trying an idempotent one again (with backoff) after a transport error
    /// or a status that says the server failed. Returns the last answer, whatever its status.
    pub async fn send(
        &self,
        method: &Method,
        url: &url::Url,
        headers: &[(&str, String)],
        payload: &Payload<'_>,
        idempotent: bool,
    ) -> Result<(Response, u32), DavError> {
        let shown = redact(url);
        let max = if idempotent { ATTEMPTS } else { 1 };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let transfer = Transfer::new();
            let mut req = self.client.request(method.clone(), url.clone());
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            if let Some(a) = &self.auth {
                req = a.apply(req);
            }
            req = match payload {
                Payload::None => req,
                Payload::Bytes(b) => req.body(b.clone()),
                Payload::Stream { length, make } => req
                    .header(reqwest::header::CONTENT_LENGTH, *length)
                    .body(make(transfer.clone())),
            };
            let outcome = tokio::select! {
                r = req.send() => Some(r),
                () = transfer.stalled(self.stall) => None,
            };
            let again = attempt < max;
            match outcome {
                Some(Ok(resp)) if again && retryable(resp.status()) => {}
                Some(Ok(resp)) => return Ok((resp, attempt)),
                Some(Err(e)) => {
                    // A certificate the client does not trust stays untrusted on a retry.
                    let again = again && !is_tls_failure(&e);
                    if let Some(why) = transfer.fatal() {
                        return Err(DavError::Local {
                            method: method.to_string(),
                            url: shown,
                            source: why,
                        });
                    }
                    if !again {
                        return Err(DavError::Transport {
                            method: method.to_string(),
                            url: shown,
                            message: transport_message(&e),
                            attempts: attempt,
                            source: e.without_url(),
                        });
                    }
                }
                None if !again => {
                    return Err(DavError::Stalled {
                        method: method.to_string(),
                        url: shown,
                        secs: self.stall.as_secs(),
                        attempts: attempt,
                    });
                }
                None => {}
            }
            tokio::time::sleep(BACKOFF * 2u32.pow(attempt - 1)).await;
        }
    }

    /// The error for an answer relgate did not expect.
    pub fn unexpected(method: &Method, url: &url::Url, resp: &Response, attempts: u32) -> DavError {
        DavError::Status {
            method: method.to_string(),
            url: redact(url),
            status: status_text(resp.status()),
            attempts,
        }
    }

    /// The next chunk of an answer's body, or `None` at its end; a body that stalls fails.
    pub async fn chunk(
        &self,
        url: &url::Url,
        resp: &mut Response,
    ) -> Result<Option<Bytes>, DavError> {
        match tokio::time::timeout(self.stall, resp.chunk()).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(DavError::Transport {
                method: "GET".into(),
                url: redact(url),
                message: transport_message(&e),
                attempts: 1,
                source: e.without_url(),
            }),
            Err(_) => Err(DavError::Stalled {
                method: "GET".into(),
                url: redact(url),
                secs: self.stall.as_secs(),
                attempts: 1,
            }),
        }
    }

    /// A whole answer body of at most `cap` bytes.
    pub async fn body(
        &self,
        url: &url::Url,
        mut resp: Response,
        cap: u64,
    ) -> Result<Vec<u8>, DavError> {
        let mut out = Vec::new();
        while let Some(c) = self.chunk(url, &mut resp).await? {
            if (out.len() + c.len()) as u64 > cap {
                return Err(DavError::TooLarge {
                    url: redact(url),
                    cap,
                });
            }
            out.extend_from_slice(&c);
        }
        Ok(out)
    }

    /// GET a resource of at most `cap` bytes; `Ok(None)` if it is not there (404).
    pub async fn get_small(&self, url: &url::Url, cap: u64) -> Result<Option<Vec<u8>>, DavError> {
        let (resp, n) = self
            .send(&Method::GET, url, &[], &Payload::None, true)
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(Some(self.body(url, resp, cap).await?)),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(Dav::unexpected(&Method::GET, url, &resp, n)),
        }
    }

    /// GET a resource for streaming; `Ok(None)` if it is not there.
    pub async fn get(&self, url: &url::Url) -> Result<Option<Response>, DavError> {
        let (resp, n) = self
            .send(&Method::GET, url, &[], &Payload::None, true)
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(Some(resp)),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(Dav::unexpected(&Method::GET, url, &resp, n)),
        }
    }

    /// Create `url` (a collection, with its trailing `/`) and the collections above it that are
    /// missing: 405 means it is there already, and so does any refusal after which a PROPFIND
    /// finds the collection (another writer may have made it a moment ago: Apache answers the
    /// loser of two MKCOLs of one name with 403).
    pub async fn ensure_collection(&self, url: &url::Url) -> Result<(), DavError> {
        let mut missing = vec![url.clone()];
        while let Some(at) = missing.last().cloned() {
            let (resp, n) = self.send(&mkcol(), &at, &[], &Payload::None, true).await?;
            match resp.status().as_u16() {
                201 | 405 => {
                    missing.pop();
                }
                // 409: its own parent is missing; create that first.
                409 if at.path() != "/" && missing.len() < 64 => {
                    let mut up = at.clone();
                    if let Ok(mut s) = up.path_segments_mut() {
                        s.pop_if_empty().pop().push("");
                    }
                    missing.push(up);
                }
                _ => {
                    let there = self.propfind(&at, "0").await?;
                    if !there.is_some_and(|m| m.first().is_some_and(|m| m.collection)) {
                        return Err(Dav::unexpected(&mkcol(), &at, &resp, n));
                    }
                    missing.pop();
                }
            }
        }
        Ok(())
    }

    /// PROPFIND with `depth` (`0`, `1`, `infinity`); `Ok(None)` if the resource is not there.
    pub async fn propfind(
        &self,
        url: &url::Url,
        depth: &str,
    ) -> Result<Option<Vec<Member>>, DavError> {
        let method = propfind_method();
        let headers = [
            ("Depth", depth.to_string()),
            ("Content-Type", "application/xml; charset=utf-8".to_string()),
        ];
        let payload = Payload::Bytes(Bytes::from_static(multistatus::PROPFIND_BODY.as_bytes()));
        let (resp, n) = self.send(&method, url, &headers, &payload, true).await?;
        match resp.status().as_u16() {
            207 => {}
            404 => return Ok(None),
            405 | 501 => {
                return Err(DavError::Unsupported {
                    url: redact(url),
                    message: format!(
                        "the server does not list collections (PROPFIND: HTTP {}); is WebDAV on?",
                        status_text(resp.status())
                    ),
                });
            }
            _ => return Err(Dav::unexpected(&method, url, &resp, n)),
        }
        let xml = self.body(url, resp, MAX_LISTING_BYTES).await?;
        multistatus::parse(&xml)
            .map(Some)
            .map_err(|message| DavError::Listing {
                url: redact(url),
                message,
            })
    }

    /// Every member below the collection `url` (which ends in `/`), as paths relative to it:
    /// one `Depth: infinity` PROPFIND, or, where the server refuses that (403, as nginx and
    /// Apache without `DavDepthInfinity` do), one `Depth: 1` per collection.
    pub async fn list_tree(
        &self,
        url: &url::Url,
    ) -> Result<Option<Vec<(String, Member)>>, DavError> {
        let base = multistatus::decode_path(url.path()).unwrap_or_default();
        let base = base.trim_end_matches('/').to_string();
        match self.propfind(url, "infinity").await {
            Ok(Some(members)) => return relative(&base, members, url).map(Some),
            Ok(None) => return Ok(None),
            Err(e) if e.status() == Some(403) => {}
            Err(e) => return Err(e),
        }
        let mut out = Vec::new();
        let mut queue = vec![url.clone()];
        while let Some(dir) = queue.pop() {
            let Some(members) = self.propfind(&dir, "1").await? else {
                if dir == *url {
                    return Ok(None);
                }
                continue;
            };
            for (rel, m) in relative(&base, members, url)? {
                let dir_rel = multistatus::decode_path(dir.path()).unwrap_or_default();
                if m.path == dir_rel.trim_end_matches('/') {
                    continue;
                }
                if m.collection {
                    queue.push(collection_url(url, &rel));
                }
                out.push((rel, m));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Some(out))
    }
}

/// `url` (a collection, ending in `/`) joined with the relative path `rel`, segment by segment
/// (each percent-encoded), as a file URL.
pub fn file_url(url: &url::Url, rel: &str) -> url::Url {
    let mut u = url.clone();
    if let Ok(mut segs) = u.path_segments_mut() {
        segs.pop_if_empty();
        for part in rel.split('/') {
            segs.push(part);
        }
    }
    u
}

/// As [`file_url`], with the trailing `/` of a collection.
pub fn collection_url(url: &url::Url, rel: &str) -> url::Url {
    let mut u = file_url(url, rel);
    if let Ok(mut segs) = u.path_segments_mut() {
        segs.push("");
    }
    u
}

/// Members below `base` (a decoded path without a trailing `/`), with their relative paths;
/// the collection itself is left out, and a member outside it is an error (a server listing
/// what was not asked).
fn relative(
    base: &str,
    members: Vec<Member>,
    url: &url::Url,
) -> Result<Vec<(String, Member)>, DavError> {
    let mut out = Vec::new();
    for m in members {
        if m.path == base {
            continue;
        }
        let Some(rel) = m.path.strip_prefix(base).and_then(|r| r.strip_prefix('/')) else {
            return Err(DavError::Listing {
                url: redact(url),
                message: format!("lists {} outside the collection", m.path),
            });
        };
        out.push((rel.to_string(), m));
    }
    Ok(out)
}

pub fn propfind_method() -> Method {
    // A constant valid token: from_bytes cannot fail on it (the GET fallback changes nothing).
    Method::from_bytes(b"PROPFIND").unwrap_or(Method::GET)
}

/// Did TLS refuse the server (its certificate, the handshake)? The rustls error sits inside
/// io errors nested in one another, which `source()` skips over, so each is opened by hand.
fn is_tls_failure(e: &reqwest::Error) -> bool {
    fn holds_rustls(mut e: &(dyn std::error::Error + 'static)) -> bool {
        loop {
            if e.is::<rustls::Error>() {
                return true;
            }
            match e
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(inner) => e = inner,
                None => return false,
            }
        }
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if holds_rustls(s) {
            return true;
        }
        source = s.source();
    }
    false
}

/// A transport error as a message, without the URL reqwest would add (the caller names the
/// redacted one) and with the underlying cause.
fn transport_message(e: &reqwest::Error) -> String {
    let mut msg = if e.is_connect() {
        "cannot connect".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_body() {
        "the body was cut off".to_string()
    } else {
        "the connection failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    if let Some(cause) = last {
        msg.push_str(": ");
        msg.push_str(&cause);
    }
    msg
}

/// WebDAV's methods are extension tokens for `http`: `from_bytes` on a constant valid token
/// cannot fail, and the fallback (a GET, which changes nothing) is never taken.
pub fn mkcol() -> Method {
    Method::from_bytes(b"MKCOL").unwrap_or(Method::GET)
}

/// `MOVE` (see [`mkcol`] for why the fallback is never taken).
pub fn move_method() -> Method {
    Method::from_bytes(b"MOVE").unwrap_or(Method::GET)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transport error keeps reqwest's error, but never the URL's query (a token): not in
    /// the message, not anywhere in the source chain, not in `Debug`.
    #[tokio::test]
    async fn a_transport_error_keeps_its_cause_but_not_the_urls_token() {
        // A port held by a socket that never listens: every connection to it is refused.
        let held =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        held.bind(&any.into()).unwrap();
        let port = held.local_addr().unwrap().as_socket().unwrap().port();
        let url = url::Url::parse(&format!(
            "http://127.0.0.1:{port}/release/a.bin?token=SECRET-TOKEN"
        ))
        .unwrap();
        let client = crate::http::client(None).unwrap();
        let dav = Dav::new(client, None, Duration::from_secs(5));
        let err = dav.get(&url).await.unwrap_err();
        assert!(matches!(err, DavError::Transport { .. }), "{err:?}");
        let mut said = vec![err.to_string(), format!("{err:?}")];
        let mut source = std::error::Error::source(&err);
        assert!(source.is_some(), "the cause is kept");
        while let Some(s) = source {
            said.push(s.to_string());
            said.push(format!("{s:?}"));
            source = s.source();
        }
        for text in &said {
            assert!(!text.contains("SECRET-TOKEN"), "{text}");
        }
    }
}
