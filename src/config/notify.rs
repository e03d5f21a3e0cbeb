//! `notify:`: the webhooks told about a run's outcome, checked into [`crate::model::Notify`].
//!
//! ```yaml
//! notify:
//!   - url: https://hooks.example.test/relgate     # or url_env: SLACK_WEBHOOK_URL
//!     format: slack                               # json (default) or slack
//!     on: [pending, refused, published]           # default: all three
//!     secret_env: RELGATE_WEBHOOK_SECRET          # optional: sign the body (HMAC-SHA256)
//!     retries: 3                                  # default 3, at most 10
//!     timeout: 10s                                # per attempt; default 10s, at most 5m
//! ```
//!
//! The pipeline's text is recorded in the release log and published with the release, so
//! nothing secret may be written in it: a secret is named by its environment variable, and a
//! URL that is itself a secret (Slack's) can be too. A URL with credentials or a query is
//! refused for that reason.

use super::cx::{self, Cx, Map};
use super::yaml::Node;
use crate::model::{Notify, NotifyEvent, NotifyFormat, NotifyTarget};

const KEYS: &[&str] = &[
    "url",
    "url_env",
    "format",
    "on",
    "secret_env",
    "retries",
    "timeout",
    "allow_http",
];

/// At most this many retries: a dead endpoint must not hold a release's run for long.
pub const MAX_RETRIES: u64 = 10;
const DEFAULT_RETRIES: u32 = 3;
const DEFAULT_TIMEOUT_SECS: u64 = 10;
const MAX_TIMEOUT_SECS: u64 = 300;

pub(crate) fn validate(cx: &mut Cx, key: &Node, node: &Node) -> Option<Vec<Notify>> {
    let Some(items) = node.as_seq() else {
        cx.expected(
            node,
            "notify",
            "a list of webhooks, each with `url` or `url_env`",
        );
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match one(cx, key, item, &format!("notify[{i}]")) {
            Some(n) => out.push(n),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// One webhook at `path`: its target, format, events, signing secret, retries and timeout.
/// The first problem found ends it (later keys are not looked at).
fn one(cx: &mut Cx, key: &Node, node: &Node, path: &str) -> Option<Notify> {
    let map = Map::new(
        cx,
        node,
        key.pos,
        path,
        "a mapping with `url` or `url_env`",
        None,
    )?;
    report_unknown_keys(cx, node, path);
    let allow_http = match map.get("allow_http") {
        Some(b) => cx.bool(b, &map.sub("allow_http"))?,
        None => false,
    };
    let target = target(cx, &map, allow_http)?;
    let format = format(cx, &map)?;
    let on = events(cx, &map)?;
    let secret_env = match map.get("secret_env") {
        Some(n) => Some(env_name(cx, n, &map.sub("secret_env"))?),
        None => None,
    };
    let retries = retries(cx, &map)?;
    let timeout_secs = timeout(cx, &map)?;
    Some(Notify {
        target,
        format,
        on,
        secret_env,
        retries,
        timeout_secs,
        allow_http,
    })
}

/// Keys a webhook does not take; one that looks like a secret is told where secrets go.
fn report_unknown_keys(cx: &mut Cx, node: &Node, path: &str) {
    let entries: Vec<(&Node, &Node)> = node
        .as_map()
        .map(|m| m.iter().map(|(k, v)| (k, v)).collect())
        .unwrap_or_default();
    cx::report_unknown(cx, &entries, path, KEYS, |name| {
        matches!(name, "secret" | "token" | "password" | "headers").then(|| {
            "nothing secret belongs in the pipeline: it is recorded in the release log and \
             published with the release. Name the environment variable that holds the HMAC \
             key with `secret_env`"
                .to_string()
        })
    });
}

/// Where the webhook is: `url` (checked by [`check_url`]) or `url_env`, exactly one.
fn target(cx: &mut Cx, map: &Map, allow_http: bool) -> Option<NotifyTarget> {
    match (map.get("url"), map.get("url_env")) {
        (Some(u), None) => {
            let text = cx.str(u, &map.sub("url"), "an https:// URL")?;
            check_url(cx, u, &map.sub("url"), text, allow_http)?;
            Some(NotifyTarget::Url(text.to_string()))
        }
        (None, Some(e)) => Some(NotifyTarget::Env(env_name(cx, e, &map.sub("url_env"))?)),
        (Some(_), Some(e)) => {
            cx.error(
                e.pos,
                &map.sub("url_env"),
                "give `url` or `url_env`, not both",
            );
            None
        }
        (None, None) => {
            map.require(cx, "url", "the webhook's https:// URL, or `url_env`")?;
            None
        }
    }
}

/// `format`: json (the default) or slack.
fn format(cx: &mut Cx, map: &Map) -> Option<NotifyFormat> {
    let Some(f) = map.get("format") else {
        return Some(NotifyFormat::Json);
    };
    match f.as_str() {
        Some("json") => Some(NotifyFormat::Json),
        Some("slack") => Some(NotifyFormat::Slack),
        _ => {
            cx.expected(f, &map.sub("format"), "json or slack");
            None
        }
    }
}

/// `on`: the outcomes told about (default all three), each once, in their order.
fn events(cx: &mut Cx, map: &Map) -> Option<Vec<NotifyEvent>> {
    let Some(list) = map.get("on") else {
        return Some(vec![
            NotifyEvent::Pending,
            NotifyEvent::Refused,
            NotifyEvent::Published,
        ]);
    };
    let items = cx.str_list(list, &map.sub("on"), "pending, refused, published", true)?;
    let mut on = Vec::new();
    for (text, item) in items {
        let ev = match text {
            "pending" => NotifyEvent::Pending,
            "refused" => NotifyEvent::Refused,
            "published" => NotifyEvent::Published,
            _ => {
                cx.expected(item, &map.sub("on"), "pending, refused or published");
                return None;
            }
        };
        if !on.contains(&ev) {
            on.push(ev);
        }
    }
    on.sort();
    Some(on)
}

/// `retries`: from 0 to [`MAX_RETRIES`] (default 3).
fn retries(cx: &mut Cx, map: &Map) -> Option<u32> {
    let Some(n) = map.get("retries") else {
        return Some(DEFAULT_RETRIES);
    };
    let what = format!("a whole number from 0 to {MAX_RETRIES}");
    let v = cx.uint(n, &map.sub("retries"), &what)?;
    if v > MAX_RETRIES {
        cx.expected(n, &map.sub("retries"), &what);
        return None;
    }
    u32::try_from(v).ok()
}

/// `timeout`: per attempt, at most 5m (default 10s).
fn timeout(cx: &mut Cx, map: &Map) -> Option<u64> {
    let Some(n) = map.get("timeout") else {
        return Some(DEFAULT_TIMEOUT_SECS);
    };
    let v = cx.duration(n, &map.sub("timeout"))?;
    if v > MAX_TIMEOUT_SECS {
        cx.expected(n, &map.sub("timeout"), "a duration of at most 5m");
        return None;
    }
    Some(v)
}

/// An environment variable's name: letters, digits and `_`, not starting with a digit.
fn env_name(cx: &mut Cx, node: &Node, path: &str) -> Option<String> {
    let what = "the name of an environment variable, e.g. RELGATE_WEBHOOK_SECRET";
    let s = cx.str(node, path, what)?;
    let ok = !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        cx.expected(node, path, what);
        return None;
    }
    Some(s.to_string())
}

/// The URL rules: https (http only to this machine or with `allow_http`), a host, and no
/// credentials or query (they would be published with the release).
pub(crate) fn check_url(
    cx: &mut Cx,
    node: &Node,
    path: &str,
    text: &str,
    allow_http: bool,
) -> Option<()> {
    let url = match url::Url::parse(text) {
        Ok(u) => u,
        Err(e) => {
            cx.error(node.pos, path, format!("{text:?} is not a URL: {e}"));
            return None;
        }
    };
    match url.scheme() {
        "https" => {}
        "http" if allow_http || crate::http::is_loopback(&url) => {}
        "http" => {
            cx.error(
                node.pos,
                path,
                "plain http:// to another machine sends the notification (and its signature) \
                 unencrypted; use https://, or set `allow_http: true` to accept that",
            );
            return None;
        }
        other => {
            cx.error(
                node.pos,
                path,
                format!(
                    "unsupported scheme {other}://; expected https:// (or http:// on this machine)"
                ),
            );
            return None;
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        cx.error(node.pos, path, format!("{text:?} names no host"));
        return None;
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        cx.error(
            node.pos,
            path,
            "credentials and queries do not belong in the pipeline (it is recorded and \
             published with the release); give a URL holding a token with `url_env`",
        );
        return None;
    }
    Some(())
}
