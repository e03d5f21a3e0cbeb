//! Delivering one notification: the URL (from the pipeline or the environment), the body, an
//! HMAC-SHA256 signature header when a secret is configured, and a bounded number of attempts
//! over relgate's one HTTP client (`crate::http`).
//!
//! Headers: `Content-Type: application/json`, `X-Relgate-Event: pending|refused|published`,
//! `X-Relgate-Delivery: <id>` and, with `secret_env`, `X-Relgate-Signature-256:
//! sha256=<hex of HMAC-SHA256(secret, body)>` over the exact body bytes. A connection that
//! fails, a timeout, 429 and 5xx are tried again (after 0.5 s, 1 s, 2 s, … up to 8 s); any
//! other answer ends it. Nothing here can fail a run: every outcome is a [`Delivery`].

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Message;
use crate::model::{Notify, NotifyEvent, NotifyFormat, NotifyTarget};

/// The header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Relgate-Signature-256";

/// How one notification went.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Delivery {
    pub event: &'static str,
    /// Where it went, as it may be shown and recorded (never a credential, query or a path
    /// that came from the environment).
    pub target: String,
    pub format: &'static str,
    pub delivered: bool,
    pub attempts: u32,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub signed: bool,
}

impl Delivery {
    /// The `notification` log line for run `run`.
    pub fn record(&self, run: u32) -> crate::log::Notification {
        crate::log::Notification {
            run,
            event: self.event.to_string(),
            target: self.target.clone(),
            format: self.format.to_string(),
            delivered: self.delivered,
            attempts: self.attempts,
            status: self.status,
            error: self.error.clone(),
            signed: self.signed,
        }
    }
}

/// Tell every webhook that wants `event` about `msg`, one after the other.
pub async fn deliver_all(hooks: &[Notify], event: NotifyEvent, msg: &Message) -> Vec<Delivery> {
    let wanted: Vec<&Notify> = hooks.iter().filter(|h| h.on.contains(&event)).collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let client = crate::http::client(None);
    let mut out = Vec::new();
    for hook in wanted {
        let d = match &client {
            Ok(c) => deliver(c, hook, event, msg).await,
            Err(e) => failed(hook, event, shown_target(hook, None), e.to_string()),
        };
        out.push(d);
    }
    out
}

fn format_name(f: NotifyFormat) -> &'static str {
    match f {
        NotifyFormat::Json => "json",
        NotifyFormat::Slack => "slack",
    }
}

fn failed(hook: &Notify, event: NotifyEvent, target: String, error: String) -> Delivery {
    Delivery {
        event: event.name(),
        target,
        format: format_name(hook.format),
        delivered: false,
        attempts: 0,
        status: None,
        error: Some(error),
        signed: false,
    }
}

/// The target as shown: a pipeline URL without credentials or query; for a URL from the
/// environment only its scheme and host (its path may be the secret).
fn shown_target(hook: &Notify, url: Option<&url::Url>) -> String {
    match (&hook.target, url) {
        (NotifyTarget::Url(u), _) => url::Url::parse(u)
            .map(|u| crate::http::redact(&u))
            .unwrap_or_else(|_| u.clone()),
        (NotifyTarget::Env(name), Some(u)) => format!(
            "${name} ({}://{}/…)",
            u.scheme(),
            u.host_str().unwrap_or_default()
        ),
        (NotifyTarget::Env(name), None) => format!("${name}"),
    }
}

async fn deliver(
    client: &reqwest::Client,
    hook: &Notify,
    event: NotifyEvent,
    msg: &Message,
) -> Delivery {
    let url = match resolve(hook) {
        Ok(u) => u,
        Err(e) => return failed(hook, event, shown_target(hook, None), e),
    };
    let target = shown_target(hook, Some(&url));
    let secret = match &hook.secret_env {
        None => None,
        Some(name) => match std::env::var(name).ok().filter(|s| !s.is_empty()) {
            Some(s) => Some(s),
            // A receiver that checks signatures must never get an unsigned body from us.
            None => {
                return failed(
                    hook,
                    event,
                    target,
                    format!("the secret variable {name} is not set: not sent unsigned"),
                );
            }
        },
    };
    let now = time::OffsetDateTime::now_utc();
    let sent_at = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let delivery = crate::digest::sha256_hex(
        format!(
            "{}/{}/{}/{}",
            now.unix_timestamp_nanos(),
            std::process::id(),
            target,
            event.name()
        )
        .as_bytes(),
    )[..32]
        .to_string();
    let body = match hook.format {
        NotifyFormat::Json => msg.json(&sent_at, &delivery),
        NotifyFormat::Slack => msg.slack(),
    };
    let signature = secret.as_deref().map(|s| sign(s.as_bytes(), &body));
    let mut d = Delivery {
        event: event.name(),
        target,
        format: format_name(hook.format),
        delivered: false,
        attempts: 0,
        status: None,
        error: None,
        signed: signature.is_some(),
    };
    let attempts = hook.retries.saturating_add(1);
    for attempt in 1..=attempts {
        d.attempts = attempt;
        let mut req = client
            .post(url.clone())
            .timeout(Duration::from_secs(hook.timeout_secs))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Relgate-Event", event.name())
            .header("X-Relgate-Delivery", &delivery)
            .body(body.clone());
        if let Some(sig) = &signature {
            req = req.header(SIGNATURE_HEADER, format!("sha256={sig}"));
        }
        let again = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                d.status = Some(status.as_u16());
                // Drain a little of the answer so the connection ends cleanly; never more: the
                // receiver chooses how much it sends, and every byte read is dropped at once.
                let _ = tokio::time::timeout(Duration::from_secs(2), drain(resp)).await;
                if status.is_success() {
                    d.delivered = true;
                    d.error = None;
                    return d;
                }
                d.error = Some(format!("HTTP {status}"));
                status.is_server_error() || status.as_u16() == 429
            }
            Err(e) => {
                d.status = None;
                d.error = Some(error_text(e));
                true
            }
        };
        if !again {
            return d;
        }
        if attempt < attempts {
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
    d
}

/// The most of an answer read (and thrown away) before the connection is let go.
const MAX_DRAIN_BYTES: usize = 64 << 10;

/// Read and drop at most [`MAX_DRAIN_BYTES`] of an answer's body, chunk by chunk.
async fn drain(mut resp: reqwest::Response) {
    let mut read = 0usize;
    while read < MAX_DRAIN_BYTES {
        match resp.chunk().await {
            Ok(Some(c)) => read = read.saturating_add(c.len()),
            _ => return,
        }
    }
}

/// The webhook's URL: from the pipeline, or from its environment variable (checked by the
/// same rules as a pipeline URL, except that its query may hold a token).
fn resolve(hook: &Notify) -> Result<url::Url, String> {
    let (text, from) = match &hook.target {
        NotifyTarget::Url(u) => (u.clone(), None),
        NotifyTarget::Env(name) => match std::env::var(name).ok().filter(|v| !v.is_empty()) {
            Some(v) => (v, Some(name)),
            None => return Err(format!("the URL variable {name} is not set")),
        },
    };
    let url = url::Url::parse(&text).map_err(|e| match from {
        Some(name) => format!("${name} is not a URL: {e}"),
        None => format!("not a URL: {e}"),
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if hook.allow_http || crate::http::is_loopback(&url) => Ok(url),
        other => Err(format!(
            "{other}:// is not allowed for a webhook (https://, or http:// on this machine or \
             with allow_http)"
        )),
    }
}

/// Lowercase hex of HMAC-SHA256(`key`, `body`).
pub fn sign(key: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// 0.5 s, 1 s, 2 s, … at most 8 s; `RELGATE_NOTIFY_BACKOFF_MS` sets the first step.
fn backoff(attempt: u32) -> Duration {
    let base = std::env::var("RELGATE_NOTIFY_BACKOFF_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(500);
    let ms = base.saturating_mul(1u64 << attempt.saturating_sub(1).min(10));
    Duration::from_millis(ms.min(8_000))
}

/// A transport error in words, without the URL (whose path or query may be a secret).
fn error_text(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut text = kind.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_millis(1000));
        assert_eq!(backoff(9), Duration::from_millis(8000));
    }
}
