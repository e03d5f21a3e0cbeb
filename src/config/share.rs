//! `share:`: the team's meeting place (docs/team.md). Either the location alone
//! (`share: https://dav.acme.test/relgate`) or a mapping with `url` and the keys a remote store
//! needs (`endpoint`, `region`, `ca`, `allow_http`) plus `lease`, how long a publish lease holds.

use super::cx::{Cx, Map};
use super::validate::Inputs;
use super::yaml::{Node, Value};
use crate::model::ShareSpec;

/// A publish lease outlives a crashed holder by this much, unless `lease:` says otherwise.
pub const DEFAULT_LEASE_SECS: u64 = 3600;

const WHAT: &str = "a folder, an https:// WebDAV collection or an s3://bucket/prefix URL";

pub(crate) fn share(cx: &mut Cx, n: &Node, top: &Map, inp: &Inputs) -> Option<ShareSpec> {
    if let Value::Str(_) = &n.value {
        let url = location(cx, n, "share", false)?;
        return Some(ShareSpec {
            url,
            endpoint: None,
            region: None,
            ca: None,
            allow_http: false,
            lease_secs: DEFAULT_LEASE_SECS,
        });
    }
    let anchor = top.entry("share").map(|(k, _)| k.pos).unwrap_or_default();
    let map = Map::new(
        cx,
        n,
        anchor,
        "share",
        &format!("{WHAT}, or a mapping with `url`"),
        Some(&["url", "endpoint", "region", "ca", "allow_http", "lease"]),
    )?;
    let allow_http = match map.get("allow_http") {
        Some(b) => cx.bool(b, "share.allow_http")?,
        None => false,
    };
    let url_node = map.require(cx, "url", WHAT)?;
    let url = location(cx, url_node, "share.url", allow_http)?;
    let is_s3 = url.starts_with("s3://");
    let is_remote = url.contains("://");
    let super::validate::RemoteKeys {
        endpoint,
        region,
        ca,
    } = super::validate::remote_keys(
        cx,
        &map,
        inp,
        super::validate::Remote {
            key: "share",
            noun: "share",
            is_s3,
            is_remote,
            allow_http,
        },
    )?;
    let lease_secs = match map.get("lease") {
        // A duration is never 0 (`cx.duration` refuses it): a lease always holds a while.
        Some(l) => cx.duration(l, "share.lease")?,
        None => DEFAULT_LEASE_SECS,
    };
    Some(ShareSpec {
        url,
        endpoint,
        region,
        ca,
        allow_http,
        lease_secs,
    })
}

/// The location: a folder, or a URL without credentials or a query (they would end up in the
/// log and in every approve command printed).
fn location(cx: &mut Cx, n: &Node, path: &str, allow_http: bool) -> Option<String> {
    let s = cx.str(n, path, WHAT)?;
    if s.trim().is_empty() {
        cx.expected(n, path, WHAT);
        return None;
    }
    let Some((scheme, _)) = s.split_once("://") else {
        return Some(s.to_string());
    };
    match scheme.to_ascii_lowercase().as_str() {
        "https" | "http" | "s3" => {}
        other => {
            cx.error(
                n.pos,
                path,
                format!("unsupported scheme {other}://; expected a folder, https://, http:// (loopback) or s3://"),
            );
            return None;
        }
    }
    let url = match url::Url::parse(s) {
        Ok(u) => u,
        Err(e) => {
            cx.error(n.pos, path, format!("{s:?} is not a URL: {e}"));
            return None;
        }
    };
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        cx.error(
            n.pos,
            path,
            "credentials and queries do not belong in the pipeline; give them in the \
             environment (RELGATE_SHARE_USER/RELGATE_SHARE_PASSWORD, AWS_*) or ~/.netrc",
        );
        return None;
    }
    if url.host_str().is_none_or(str::is_empty) {
        cx.error(n.pos, path, format!("{s:?} names no host (or bucket)"));
        return None;
    }
    if url.scheme() == "http" && !allow_http && !crate::http::is_loopback(&url) {
        cx.error(
            n.pos,
            path,
            "plain http:// to another machine sends credentials unencrypted; use https://, or \
             write `share: {url: …, allow_http: true}` to accept that",
        );
        return None;
    }
    if url.scheme() == "s3"
        && let Err(why) = crate::s3::parse_url(s)
    {
        cx.error(n.pos, path, why);
        return None;
    }
    Some(s.trim_end_matches('/').to_string())
}
