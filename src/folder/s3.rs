//! A release under an S3 prefix, read through relgate's own client ([`crate::s3`]): listed once
//! with ListObjectsV2 (page by page), objects streamed with GET (retried before the answer
//! starts, watched for stalls while it streams), several at once.
//!
//! A prefix is a release only once its commit marker (`SHA256SUMS.sig`, written last) is
//! there, and only when every key under it is a plain relative path: a folder placeholder, an
//! empty, `.` or `..` part, a backslash or a control character in any key refuses the whole
//! prefix before anything is read, since no release relgate publishes has one. Every object
//! must stream exactly as many bytes as the listing said.
//!
//! Where the bucket is: the endpoint from `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, else the
//! project's `publish.endpoint` when its `publish.to` names the same bucket, else AWS; the
//! region likewise (then `AWS_REGION`); an extra CA from `--ca`, `AWS_CA_BUNDLE` or
//! `publish.ca`. Credentials as for publishing.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::{Access, Folder, FolderError, Item, ListError, LocationError};
use crate::layout::SIG_FILE;
use crate::s3::Bucket;

pub struct S3Folder {
    rt: tokio::runtime::Runtime,
    bucket: Bucket,
    /// The release's prefix in the bucket, without slashes at its ends.
    prefix: String,
    /// Every object below the prefix (relative key, listed size), sorted; or why the prefix is
    /// not a release that can be read: made once, handed out as [`FolderError::Listing`] (a
    /// shared `Arc`, not a copy) by every call that needs it.
    listing: Result<Vec<(String, u64)>, Arc<ListError>>,
    /// The folders the keys imply (`linux` for `linux/b.bin`).
    dirs: BTreeSet<String>,
}

impl S3Folder {
    /// Connect and list the release at `url` (`s3://bucket/prefix`). `Err` only for what makes
    /// the requests impossible (a bad URL, no credentials, a CA file that does not load); a
    /// prefix that is not a release is reported by [`Folder::check_root`].
    pub fn open(url: &str, access: &Access) -> Result<S3Folder, LocationError> {
        let (name, prefix) = crate::s3::parse_url(url).map_err(LocationError::Bad)?;
        let (endpoint, region, ca) = location(&name, access);
        let bucket = Bucket::connect(&name, endpoint.as_deref(), region.as_deref(), ca.as_deref())?;
        // As for WebDAV: each hashing thread waits here for its next chunk while the runtime's
        // own threads drive the connections.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("relgate-s3")
            .enable_all()
            .build()
            .map_err(|source| LocationError::Runtime { source })?;
        let listing = rt.block_on(list(&bucket, &prefix)).map_err(Arc::new);
        let mut dirs = BTreeSet::new();
        if let Ok(l) = &listing {
            for (rel, _) in l {
                let mut at = rel.as_str();
                while let Some((up, _)) = at.rsplit_once('/') {
                    dirs.insert(up.to_string());
                    at = up;
                }
            }
        }
        Ok(S3Folder {
            rt,
            bucket,
            prefix,
            listing,
            dirs,
        })
    }

    /// The listing, or the error it failed with (shared, not copied).
    fn listing(&self) -> Result<&[(String, u64)], FolderError> {
        self.listing
            .as_deref()
            .map_err(|e| FolderError::Listing(Arc::clone(e)))
    }

    fn listed(&self, rel: &str) -> Option<u64> {
        let list = self.listing.as_ref().ok()?;
        list.binary_search_by(|(r, _)| r.as_str().cmp(rel))
            .ok()
            .map(|i| list[i].1)
    }
}

/// The objects under `prefix/` as (relative key, size), sorted; `Err` when the prefix is not a
/// release or holds a key no release has.
async fn list(b: &Bucket, prefix: &str) -> Result<Vec<(String, u64)>, ListError> {
    let base = format!("{prefix}/");
    let listed = b.list(&base).await.map_err(|source| ListError::S3 {
        prefix: prefix.to_string(),
        source,
    })?;
    let mut out: Vec<(String, u64)> = listed
        .into_iter()
        .map(|l| {
            let rel = l.key.strip_prefix(&base).unwrap_or(&l.key).to_string();
            (rel, l.size)
        })
        .collect();
    // The marker first: a prefix without it is not a release, whatever else is there.
    if !out.iter().any(|(rel, _)| rel == SIG_FILE) {
        return Err(ListError::NotPublished {
            prefix: prefix.to_string(),
        });
    }
    for (rel, _) in &out {
        check_rel(rel).map_err(|source| ListError::Key {
            key: crate::report::printable(&b.shown(&format!("{base}{rel}"))),
            source,
        })?;
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Why a key under the prefix is none a release has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadKey {
    #[error("a folder placeholder object; a release holds files only")]
    Placeholder,
    #[error("an empty, `.` or `..` part in the key; {}", PLAIN)]
    DotPart,
    #[error("a backslash in the key; {}", PLAIN)]
    Backslash,
    #[error("a control character (U+{:04X}) in the key; {}", u32::from(*.0), PLAIN)]
    Control(char),
}

const PLAIN: &str = "a release holds plain relative paths only";

/// A relative key must be a path a folder can hold without leaving it, and a name a terminal
/// shows as it is.
fn check_rel(rel: &str) -> Result<(), BadKey> {
    if rel.is_empty() || rel.ends_with('/') {
        return Err(BadKey::Placeholder);
    }
    for part in rel.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(BadKey::DotPart);
        }
        if part.contains('\\') {
            return Err(BadKey::Backslash);
        }
        if let Some(c) = part.chars().find(|c| c.is_control()) {
            return Err(BadKey::Control(c));
        }
    }
    Ok(())
}

/// Endpoint, region and CA for `bucket`: the environment first (`--ca` before it), then the
/// project's pipeline when it publishes to that bucket.
fn location(bucket: &str, access: &Access) -> (Option<String>, Option<String>, Option<PathBuf>) {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let publish = access
        .pipeline
        .as_deref()
        .filter(|p| p.is_file())
        .and_then(|p| crate::config::load_policy(p).ok())
        .and_then(|l| l.pipeline.publish)
        .filter(|p| {
            crate::s3::parse_url(&p.to.replace("{project}", "p").replace("{version}", "v"))
                .is_ok_and(|(b, _)| b == bucket)
        });
    let endpoint = var("AWS_ENDPOINT_URL_S3")
        .or_else(|| var("AWS_ENDPOINT_URL"))
        .or_else(|| publish.as_ref().and_then(|p| p.endpoint.clone()));
    let region = publish.as_ref().and_then(|p| p.region.clone());
    let ca = access
        .ca
        .clone()
        .or_else(|| var("AWS_CA_BUNDLE").map(PathBuf::from))
        .or_else(|| publish.as_ref().and_then(|p| p.ca.clone()));
    (endpoint, region, ca)
}

impl Folder for S3Folder {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket.bucket, self.prefix)
    }

    fn check_root(&self) -> Result<(), FolderError> {
        self.listing().map(|_| ())
    }

    fn open(&self, rel: &str) -> Result<Box<dyn Read + '_>, FolderError> {
        self.check_root()?;
        let Some(listed) = self.listed(rel) else {
            let rel = rel.to_string();
            return Err(if self.dirs.contains(&rel) {
                FolderError::NotRegular { rel }
            } else {
                FolderError::Missing { rel }
            });
        };
        let key = format!("{}/{rel}", self.prefix);
        match self.rt.block_on(self.bucket.get(&key)) {
            Ok(Some(resp)) => Ok(Box::new(Body {
                folder: self,
                key,
                resp,
                chunk: Bytes::new(),
                got: 0,
                listed,
            })),
            Ok(None) => Err(FolderError::Vanished {
                rel: rel.to_string(),
            }),
            Err(e) => Err(FolderError::GetObject {
                key,
                source: Box::new(e),
            }),
        }
    }

    fn walk(&self, skip: Option<&str>) -> Vec<Item> {
        let Ok(list) = &self.listing else {
            return Vec::new();
        };
        let mut items: Vec<(String, bool)> = list
            .iter()
            .map(|(rel, _)| (rel.clone(), false))
            .chain(self.dirs.iter().map(|d| (d.clone(), true)))
            .filter(|(rel, _)| {
                skip.is_none_or(|s| rel.strip_prefix(s).is_none_or(|r| !r.starts_with('/')))
            })
            .collect();
        items.sort();
        items
            .into_iter()
            .map(|(rel, dir)| Item::Entry { rel, dir })
            .collect()
    }

    fn regular_files(&self) -> Result<Vec<String>, FolderError> {
        Ok(self.listing()?.iter().map(|(rel, _)| rel.clone()).collect())
    }

    fn is_dir(&self, rel: &str) -> Result<bool, FolderError> {
        Ok(self.dirs.contains(rel))
    }

    fn size(&self, rel: &str) -> Option<u64> {
        self.listed(rel)
    }

    /// As many GETs at once as a publish sends PUTs, as for WebDAV.
    fn concurrency(&self) -> usize {
        4
    }
}

/// A GET's body as a reader: each `read` waits for the next chunk (or the stall timeout), and
/// the object must be exactly as long as the listing said.
struct Body<'a> {
    folder: &'a S3Folder,
    key: String,
    resp: reqwest::Response,
    chunk: Bytes,
    got: u64,
    listed: u64,
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            let f = self.folder;
            match f.rt.block_on(f.bucket.chunk(&self.key, &mut self.resp)) {
                Ok(Some(c)) => {
                    self.got += c.len() as u64;
                    if self.got > self.listed {
                        return Err(std::io::Error::other(format!(
                            "the server sent more than the {} bytes the listing said",
                            self.listed
                        )));
                    }
                    self.chunk = c;
                }
                Ok(None) if self.got != self.listed => {
                    return Err(std::io::Error::other(format!(
                        "the server sent {} bytes, the listing said {}",
                        self.got, self.listed
                    )));
                }
                Ok(None) => return Ok(0),
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// Is `arg` an `s3://` URL?
pub fn is_s3(arg: &Path) -> bool {
    arg.to_str().is_some_and(|s| s.starts_with("s3://"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_would_leave_the_folder_or_fool_a_terminal_are_refused() {
        for bad in [
            "",
            "a/",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a\\b",
            "a\0b",
            "a\nb",
            "a\u{1b}[2J",
            "a\u{85}",
        ] {
            assert!(check_rel(bad).is_err(), "{bad:?}");
        }
        assert!(check_rel("audit/evidence/abc").is_ok());
        assert!(check_rel("linux/b.bin").is_ok());
        assert_eq!(check_rel("a\u{1}b"), Err(BadKey::Control('\u{1}')));
        assert_eq!(
            BadKey::Control('\u{1}').to_string(),
            "a control character (U+0001) in the key; a release holds plain relative paths only"
        );
    }
}
