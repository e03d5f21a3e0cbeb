//! One bucket at one endpoint: signed requests over relgate's HTTP client, bounded retries with
//! backoff where repeating a request is harmless, a stall watchdog on uploads, and errors that
//! name the object (`s3://bucket/key`) and the HTTP status — never a credential or a signature.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};

use super::body::{self, Payload, Progress};
use super::creds::Credentials;
use super::sigv4;
use super::{S3Error, xml};

/// How many times a request whose repetition is harmless is tried in all.
pub const MAX_ATTEMPTS: u32 = 4;
/// The first backoff; each retry waits twice as long as the one before (plus jitter).
const BACKOFF: Duration = Duration::from_millis(200);

/// A bucket and how to reach it.
#[derive(Clone, Debug)]
pub struct Bucket {
    http: reqwest::Client,
    /// The service URL without the bucket (path-style), or with it as a host name.
    base: url::Url,
    path_style: bool,
    pub bucket: String,
    pub region: String,
    creds: Credentials,
}

/// What a HEAD said about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub size: u64,
    /// The server's own SHA-256 of the whole object, in hex, when it keeps one (objects put in
    /// one piece with `x-amz-checksum-sha256`; not multipart ones, whose checksum is composite).
    pub sha256: Option<String>,
    /// The ETag as sent (quotes included): shown in tests, never compared as a digest.
    pub etag: Option<String>,
}

/// One request, as [`Bucket::send`] takes it.
pub(super) struct Op<'a> {
    pub method: Method,
    pub key: &'a str,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub payload: Payload,
    /// Repeating it after a failure is harmless (reads, deletes, create-only writes whose
    /// "already there" is compared, parts of an upload).
    pub idempotent: bool,
}

impl<'a> Op<'a> {
    pub fn new(method: Method, key: &'a str) -> Op<'a> {
        Op {
            method,
            key,
            query: Vec::new(),
            headers: Vec::new(),
            payload: Payload::Empty,
            idempotent: true,
        }
    }

    pub fn query(mut self, k: &str, v: &str) -> Op<'a> {
        self.query.push((k.into(), v.into()));
        self
    }

    pub fn header(mut self, k: &str, v: &str) -> Op<'a> {
        self.headers.push((k.into(), v.into()));
        self
    }

    pub fn payload(mut self, p: Payload) -> Op<'a> {
        self.payload = p;
        self
    }
}

impl Bucket {
    /// A bucket at `endpoint` (default: AWS's regional endpoint), signing for `region` (default
    /// `AWS_REGION`, `AWS_DEFAULT_REGION`, else `us-east-1`), trusting `ca` besides the
    /// platform's roots. Credentials are read here, from the environment.
    pub fn connect(
        bucket: &str,
        endpoint: Option<&str>,
        region: Option<&str>,
        ca: Option<&Path>,
    ) -> Result<Bucket, S3Error> {
        let creds = Credentials::from_env()?;
        let region = region
            .map(str::to_string)
            .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
            .or_else(|| {
                std::env::var("AWS_DEFAULT_REGION")
                    .ok()
                    .filter(|r| !r.is_empty())
            })
            .unwrap_or_else(|| "us-east-1".into());
        let http = crate::http::client(ca).map_err(|e| S3Error::Setup(e.to_string()))?;
        Bucket::with(http, bucket, endpoint, &region, creds)
    }

    /// A bucket with everything given (tests, and [`Bucket::connect`]).
    pub fn with(
        http: reqwest::Client,
        bucket: &str,
        endpoint: Option<&str>,
        region: &str,
        creds: Credentials,
    ) -> Result<Bucket, S3Error> {
        // Virtual-hosted addressing on AWS itself (path-style is deprecated there), except for
        // names with dots, which do not match AWS's wildcard certificate; path-style elsewhere,
        // since most S3-compatible stores expect it.
        let (base, path_style) = match endpoint {
            Some(e) => (
                url::Url::parse(e).map_err(|err| S3Error::Setup(format!("endpoint {e}: {err}")))?,
                true,
            ),
            None if bucket.contains('.') => (aws_url(&format!("s3.{region}.amazonaws.com"))?, true),
            None => (
                aws_url(&format!("{bucket}.s3.{region}.amazonaws.com"))?,
                false,
            ),
        };
        Ok(Bucket {
            http,
            base,
            path_style,
            bucket: bucket.to_string(),
            region: region.to_string(),
            creds,
        })
    }

    /// How messages name an object: `s3://bucket/key`.
    pub fn shown(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The endpoint as messages name it (no credentials, no query).
    pub fn endpoint_shown(&self) -> String {
        crate::http::redact(&self.base)
    }

    fn url(&self, key: &str, query: &[(String, String)]) -> Result<url::Url, S3Error> {
        let base_path = self.base.path().trim_end_matches('/');
        let path = if self.path_style {
            format!("{base_path}/{}/{key}", self.bucket)
        } else {
            format!("{base_path}/{key}")
        };
        let mut u = self.base.clone();
        u.set_path(&sigv4::encode_path(&path));
        let q = sigv4::canonical_query(query);
        u.set_query(if q.is_empty() { None } else { Some(&q) });
        // The url crate re-encodes nothing SigV4 left in place; check, since a signature over
        // one path sent with another fails only at the server.
        if u.path() != sigv4::encode_path(&path) {
            return Err(S3Error::Setup(format!(
                "{}: the key cannot be sent as it is signed",
                self.shown(key)
            )));
        }
        Ok(u)
    }

    /// Send `op`, retrying a harmless one after a transport failure, a stall, a 5xx, a 429, a
    /// 400 RequestTimeout or a 409 ConditionalRequestConflict, at most [`MAX_ATTEMPTS`] times
    /// with backoff. Returns any other response for the caller to judge (404, 412, …); a
    /// retryable failure that persists, or a 400/409 whose code is not retryable, is an error.
    pub(super) async fn send(&self, op: &Op<'_>) -> Result<reqwest::Response, S3Error> {
        let mut attempt = 1;
        loop {
            let last = attempt >= MAX_ATTEMPTS;
            match self.send_once(op).await {
                Ok(resp) if !retryable_status(resp.status()) => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status();
                    let bytes = self.small_body(op.key, resp).await.unwrap_or_default();
                    // For 400 and 409 only some codes mean "try again"; they are in the body.
                    let again = match status.as_u16() {
                        400 | 409 => matches!(
                            xml::error_code(&bytes).0.as_deref(),
                            Some("ConditionalRequestConflict" | "RequestTimeout")
                        ),
                        _ => true,
                    };
                    if !again || last || !op.idempotent {
                        return Err(self.status_error(op, status, &bytes, attempt));
                    }
                }
                // Nothing was sent, and sending again would read the same file: not retried.
                Err(Attempt::Local(e)) => return Err(e),
                Err(Attempt::StagedChanged(found)) => {
                    return Err(S3Error::StagedChanged {
                        key: self.shown(op.key),
                        found,
                    });
                }
                Err(e) => {
                    let again = match &e {
                        Attempt::Transport { before_send, .. } => op.idempotent || *before_send,
                        _ => op.idempotent,
                    };
                    if !again || last {
                        return Err(self.attempt_error(op, e, attempt));
                    }
                }
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    async fn send_once(&self, op: &Op<'_>) -> Result<reqwest::Response, Attempt> {
        let url = self
            .url(op.key, &op.query)
            .map_err(|e| Attempt::Transport {
                why: e.to_string(),
                before_send: false,
                source: None,
            })?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => String::new(),
        };
        let payload_hash = op.payload.sha256_hex();
        let mut headers = op.headers.clone();
        headers.push(("host".into(), host));
        headers.push(("x-amz-content-sha256".into(), payload_hash.clone()));
        if let Some(len) = op.payload.content_length() {
            headers.push(("content-length".into(), len.to_string()));
        }
        let datetime = sigv4::amz_datetime(time::OffsetDateTime::now_utc());
        let signed = sigv4::sign(
            &sigv4::Request {
                method: op.method.as_str(),
                path: url.path(),
                query: &op.query,
                headers: &headers,
                payload_hash: &payload_hash,
            },
            &sigv4::Scope {
                region: &self.region,
                service: "s3",
                datetime: &datetime,
            },
            &self.creds,
        );
        let mut rb = self.http.request(op.method.clone(), url);
        for (k, v) in headers.iter().chain(signed.iter()) {
            // reqwest sets Host from the URL itself, to the same value.
            if k != "host" {
                rb = rb.header(k.as_str(), v.as_str());
            }
        }
        let progress = Arc::new(Progress::new());
        let (body, failed) = body::make(&op.payload, progress.clone()).map_err(Attempt::Local)?;
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let stall = crate::http::stall_timeout();
        let request = rb.send();
        tokio::pin!(request);
        let result = tokio::select! {
            r = &mut request => r,
            () = progress.watchdog(stall) => {
                return Err(Attempt::Stalled { sending: !progress.sent() });
            }
        };
        if let Some(found) = failed.take() {
            return Err(Attempt::StagedChanged(found));
        }
        result.map_err(|e| Attempt::Transport {
            before_send: e.is_connect(),
            why: describe_reqwest(&e),
            source: Some(e.without_url()),
        })
    }

    fn attempt_error(&self, op: &Op<'_>, e: Attempt, attempts: u32) -> S3Error {
        let (why, source) = match e {
            Attempt::Transport { why, source, .. } => (why, source),
            Attempt::Stalled { sending: true } => (
                format!(
                    "stalled: the upload did not move for {}s",
                    crate::http::stall_timeout().as_secs()
                ),
                None,
            ),
            Attempt::Stalled { sending: false } => (
                format!(
                    "stalled: no answer within {}s",
                    crate::http::stall_timeout().as_secs()
                ),
                None,
            ),
            Attempt::StagedChanged(found) => (found, None),
            Attempt::Local(e) => return e,
        };
        S3Error::Transport {
            op: op.method.to_string(),
            target: self.shown(op.key),
            endpoint: self.endpoint_shown(),
            why: self.scrub(&why),
            attempts,
            source,
        }
    }

    /// An error for a response that is not what the caller wanted, from its status and the
    /// `Code`/`Message` of its body.
    pub(super) fn status_error(
        &self,
        op: &Op<'_>,
        status: StatusCode,
        body: &[u8],
        attempts: u32,
    ) -> S3Error {
        let (code, message) = xml::error_code(body);
        let mut detail = String::new();
        if let Some(c) = code {
            detail.push(' ');
            detail.push_str(&c);
        }
        if let Some(m) = message {
            detail.push_str(": ");
            detail.push_str(&m);
        }
        S3Error::Status {
            op: op.method.to_string(),
            target: self.shown(op.key),
            endpoint: self.endpoint_shown(),
            status: status.as_u16(),
            detail: self.scrub(&detail),
            attempts,
        }
    }

    /// Cut every credential string out of text that came from elsewhere.
    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.creds.secrets() {
            out = out.replace(s, "[redacted]");
        }
        out
    }

    /// Read a response's body for an error message, then make the error.
    pub(super) async fn fail(&self, op: &Op<'_>, resp: reqwest::Response) -> S3Error {
        let status = resp.status();
        let body = self.small_body(op.key, resp).await.unwrap_or_default();
        self.status_error(op, status, &body, 1)
    }

    /// HEAD an object: `None` when there is none.
    pub async fn head(&self, key: &str) -> Result<Option<Head>, S3Error> {
        let op = Op::new(Method::HEAD, key).header("x-amz-checksum-mode", "ENABLED");
        let resp = self.send(&op).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let h = resp.headers();
                let size = h
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| self.protocol(&op, "a HEAD answer without Content-Length"))?;
                // A composite (multipart) checksum ends in `-N` and is not the object's hash.
                let sha256 = h
                    .get("x-amz-checksum-sha256")
                    .and_then(|v| v.to_str().ok())
                    .filter(|v| !v.contains('-'))
                    .and_then(base64_to_hex);
                let etag = h
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                Ok(Some(Head { size, sha256, etag }))
            }
            _ => Err(self.fail(&op, resp).await),
        }
    }

    /// GET an object as a stream (hash it while reading): `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<reqwest::Response>, S3Error> {
        let op = Op::new(Method::GET, key);
        let resp = self.send(&op).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(resp)),
            _ => Err(self.fail(&op, resp).await),
        }
    }

    /// GET a small object whole, refusing one over `cap` bytes.
    pub async fn get_small(&self, key: &str, cap: u64) -> Result<Option<Vec<u8>>, S3Error> {
        let Some(mut resp) = self.get(key).await? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        while let Some(chunk) = self.chunk(key, &mut resp).await? {
            if out.len() as u64 + chunk.len() as u64 > cap {
                return Err(self.protocol(
                    &Op::new(Method::GET, key),
                    &format!("the object is larger than {cap} bytes"),
                ));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Some(out))
    }

    /// Stream an object through SHA-256: its hex digest and size, or `None` when there is none.
    /// Memory stays at one chunk whatever the object's size.
    pub async fn hash_object(&self, key: &str) -> Result<Option<(String, u64)>, S3Error> {
        let Some(mut resp) = self.get(key).await? else {
            return Ok(None);
        };
        let mut h = Sha256::new();
        let mut n = 0u64;
        while let Some(chunk) = self.chunk(key, &mut resp).await? {
            h.update(&chunk);
            n += chunk.len() as u64;
        }
        Ok(Some((hex::encode(h.finalize()), n)))
    }

    /// The next chunk of an answer's body, or an error when none comes within the stall
    /// timeout.
    pub async fn chunk(
        &self,
        key: &str,
        resp: &mut reqwest::Response,
    ) -> Result<Option<bytes::Bytes>, S3Error> {
        let stall = crate::http::stall_timeout();
        match tokio::time::timeout(stall, resp.chunk()).await {
            Ok(r) => r.map_err(|e| self.read_error(key, e)),
            Err(_) => Err(S3Error::Transport {
                op: "GET".into(),
                target: self.shown(key),
                endpoint: self.endpoint_shown(),
                why: format!("stalled: nothing arrived for {}s", stall.as_secs()),
                attempts: 1,
                source: None,
            }),
        }
    }

    /// A whole answer body that is small by nature (an error, a listing page, an upload id),
    /// read chunk by chunk under the stall timeout.
    pub(super) async fn small_body(
        &self,
        key: &str,
        mut resp: reqwest::Response,
    ) -> Result<Vec<u8>, S3Error> {
        let mut out = Vec::new();
        while let Some(chunk) = self.chunk(key, &mut resp).await? {
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    pub(super) fn read_error(&self, key: &str, e: reqwest::Error) -> S3Error {
        S3Error::Transport {
            op: "GET".into(),
            target: self.shown(key),
            endpoint: self.endpoint_shown(),
            why: self.scrub(&describe_reqwest(&e)),
            attempts: 1,
            source: Some(e.without_url()),
        }
    }

    pub(super) fn protocol(&self, op: &Op<'_>, why: &str) -> S3Error {
        S3Error::Protocol {
            op: op.method.to_string(),
            target: self.shown(op.key),
            why: why.to_string(),
        }
    }

    /// Delete an object (deleting one that is not there succeeds too).
    pub async fn delete(&self, key: &str) -> Result<(), S3Error> {
        let op = Op::new(Method::DELETE, key);
        let resp = self.send(&op).await?;
        if resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(self.fail(&op, resp).await)
        }
    }

    /// Every object whose key starts with `prefix`, with its size (ListObjectsV2, page by page).
    pub async fn list(&self, prefix: &str) -> Result<Vec<xml::Listed>, S3Error> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut op = Op::new(Method::GET, "")
                .query("list-type", "2")
                .query("prefix", prefix);
            if let Some(t) = &token {
                op = op.query("continuation-token", t);
            }
            let resp = self.send(&op).await?;
            if !resp.status().is_success() {
                return Err(self.fail(&op, resp).await);
            }
            let bytes = self.small_body(prefix, resp).await?;
            let (page, next) = xml::list_page(&bytes).map_err(|why| self.protocol(&op, &why))?;
            out.extend(page);
            match next {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// Create a bucket (tests and examples; relgate never creates buckets when publishing).
    pub async fn create_bucket(&self) -> Result<(), S3Error> {
        let op = Op::new(Method::PUT, "");
        let resp = self.send(&op).await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(self.fail(&op, resp).await)
        }
    }
}

/// What went wrong with one attempt.
enum Attempt {
    Transport {
        why: String,
        before_send: bool,
        source: Option<reqwest::Error>,
    },
    /// Nothing moved for the stall timeout, while sending the body or waiting for the answer.
    Stalled { sending: bool },
    /// The staged file no longer has its recorded bytes: the body was cut off on purpose.
    StagedChanged(String),
    /// The body could not be made (its file does not open): nothing was sent.
    Local(S3Error),
}

fn retryable_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 500 | 502 | 503 | 504 | 429 | 409 | 400)
}

fn backoff(attempt: u32) -> Duration {
    let base = BACKOFF * 2u32.saturating_pow(attempt.saturating_sub(1));
    // Jitter from the clock's nanoseconds: enough to keep two racing clients apart.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base + Duration::from_millis(u64::from(nanos % 100))
}

fn aws_url(host: &str) -> Result<url::Url, S3Error> {
    url::Url::parse(&format!("https://{host}/")).map_err(|e| S3Error::Setup(format!("{host}: {e}")))
}

/// reqwest's errors name the full URL; say what happened instead (the caller names the object).
fn describe_reqwest(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!(
            "timed out (no connection within {}s)",
            crate::http::CONNECT_TIMEOUT.as_secs()
        )
    } else if e.is_connect() {
        "cannot connect".into()
    } else if e.is_body() || e.is_request() {
        "the connection broke while sending".into()
    } else if e.is_decode() {
        "the connection broke while receiving".into()
    } else {
        "the request failed".into()
    }
}

/// A base64 SHA-256 (as `x-amz-checksum-sha256` carries it) in hex.
fn base64_to_hex(b64: &str) -> Option<String> {
    use base64ct::Encoding;
    let bytes = base64ct::Base64::decode_vec(b64).ok()?;
    (bytes.len() == 32).then(|| hex::encode(bytes))
}

/// A hex SHA-256 as `x-amz-checksum-sha256` wants it (base64).
pub fn hex_to_base64(hex_digest: &str) -> Option<String> {
    use base64ct::Encoding;
    let bytes = hex::decode(hex_digest).ok()?;
    Some(base64ct::Base64::encode_string(&bytes))
}
