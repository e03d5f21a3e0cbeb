//! A small S3 client over relgate's reqwest client: SigV4 signing ([`sigv4`]), credentials
//! from the usual AWS places ([`creds`]), and only the operations publishing and verifying need
//! — HEAD, streamed GET, create-only PUT, multipart upload, list, delete
//! ([`client`], [`upload`]).
//!
//! Reading a release (for `verify`, `replay` and `report`, through `crate::folder::S3Folder`)
//! needs two things of a store: the keys under a prefix with their sizes ([`Bucket::list`]) and
//! one object as a stream ([`Bucket::get`], then [`Bucket::chunk`]).

pub mod body;
pub mod client;
pub mod creds;
pub mod sigv4;
pub mod upload;
pub mod xml;

use std::path::PathBuf;

pub use client::{Bucket, Head};
pub use xml::Listed;

/// Why an S3 operation failed. Messages name the object as `s3://bucket/key` and the endpoint
/// without credentials; text from the server is reduced to its error code and message, with
/// any credential string cut out.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error(transparent)]
    Credentials(#[from] creds::CredentialsError),
    #[error("{0}")]
    Setup(String),
    #[error("{op} {target} (at {endpoint}): HTTP {status}{detail}{}", after(*.attempts))]
    Status {
        op: String,
        target: String,
        endpoint: String,
        status: u16,
        detail: String,
        attempts: u32,
    },
    /// `why` is said in one line with every credential cut out; the HTTP client's error, when
    /// there is one, is kept as the source without its URL.
    #[error("{op} {target} (at {endpoint}): {why}{}", after(*.attempts))]
    Transport {
        op: String,
        target: String,
        endpoint: String,
        why: String,
        attempts: u32,
        #[source]
        source: Option<reqwest::Error>,
    },
    #[error("{op} {target}: unexpected answer: {why}")]
    Protocol {
        op: String,
        target: String,
        why: String,
    },
    #[error(
        "the staged copy of {key} no longer matches its digest (found {found}); the upload was \
         cut off and nothing was stored"
    )]
    StagedChanged { key: String, found: String },
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn after(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

/// `s3://bucket/some/prefix` → (`bucket`, `some/prefix`), the prefix without slashes at its
/// ends.
pub fn parse_url(s: &str) -> Result<(String, String), String> {
    let rest = s
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{s:?} is not an s3:// URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("{s:?} names no bucket"));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        return Err(format!(
            "{s:?} names no folder in the bucket; a release needs its own prefix"
        ));
    }
    if prefix
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(format!("{s:?}: empty, `.` or `..` parts are not allowed"));
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("s3://b/rel/acme/1.0.0/").unwrap(),
            ("b".into(), "rel/acme/1.0.0".into())
        );
        assert!(parse_url("s3://b").is_err());
        assert!(parse_url("s3:///x").is_err());
        assert!(parse_url("s3://b/a//c").is_err());
        assert!(parse_url("s3://b/a/../c").is_err());
    }
}
