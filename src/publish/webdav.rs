//! A WebDAV collection (Apache mod_dav_fs, nginx, rclone, …): the release is uploaded into a
//! temporary collection beside the final one, what arrived is checked, and then ONE `MOVE` of the
//! whole collection with `Overwrite: F` puts it in place.
//!
//! Why this holds all or nothing and never overwrites (measured on Apache 2.4, nginx and rclone;
//! docs/publish.md):
//! - a collection MOVE is a `rename(2)` of the folder on the server, so readers see no release or
//!   a whole one;
//! - `Overwrite: F` makes the server refuse (412) when the destination exists, and a collection
//!   MOVE racing another one onto the same name loses with 412 or, on Apache, with 500
//!   "Directory not empty" (`rename(2)` onto a non-empty folder fails); without the header Apache
//!   **deletes** the existing release first, so it is always sent;
//! - the final collection is never created beforehand: an *empty* one would be silently replaced
//!   by the rename.
//!
//! After a MOVE that did not answer 201/204 — a refusal, a 500, or an answer lost on the way —
//! the destination is looked at: relgate's own release there (the same `SHA256SUMS` and the same
//! `audit/log.jsonl`) means the MOVE happened; anything else there is another release, and the
//! upload is refused and removed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::{Method, StatusCode};

use super::{Existing, PublishError, ReleaseFiles, Source, Target};
use crate::dav::{self, Dav, DavError, Expect, Payload, Transfer, mkcol, move_method};
use crate::http::redact;
use crate::layout::{AUDIT_DIR, SUMS_FILE};
use crate::record::{LOG_FILE, MAX_EVIDENCE_BYTES, MAX_LOG_BYTES};

/// Uploads at once: enough to keep a link busy with many small files, few enough to hold only a
/// few MiB of buffers.
const PARALLEL: usize = 4;
/// A temporary collection of this release older than this is a leftover of a killed run and is
/// removed; a younger one may be another publisher's upload in progress and is left alone.
const STALE_AFTER_SECS: u64 = 3600;

/// A release collection on a WebDAV server.
#[derive(Clone, Debug)]
pub struct Webdav {
    dav: Dav,
    /// The final collection, with its trailing `/`.
    target: url::Url,
    /// Its parent collection, with its trailing `/`.
    parent: url::Url,
    /// The final collection's name.
    name: String,
    /// Why the credentials cannot be used (half a pair), said when the server is first
    /// contacted: a dry run never contacts it, and must not fail for it.
    auth_problem: Option<String>,
}

impl Webdav {
    /// `url` is the rendered `publish.to` (checked by the config: http(s), a host, no
    /// credentials or query).
    pub fn new(url: &url::Url, ca: Option<&std::path::Path>) -> Result<Webdav, PublishError> {
        let unsupported = |why: String| PublishError::Unsupported {
            to: redact(url),
            why,
        };
        let client = crate::http::client(ca).map_err(|e| unsupported(e.to_string()))?;
        let (auth, auth_problem) = match crate::http::credentials(url) {
            Ok(a) => (a, None),
            Err(e) => (None, Some(e.to_string())),
        };
        let mut target = url.clone();
        let segments: Vec<String> = url
            .path_segments()
            .map(|s| s.filter(|p| !p.is_empty()).map(str::to_string).collect())
            .unwrap_or_default();
        let Some((last, up)) = segments.split_last() else {
            return Err(unsupported(
                "the URL names no collection to publish into".into(),
            ));
        };
        let name = dav::multistatus::decode_path(last)
            .ok_or_else(|| unsupported("the URL's last segment is not UTF-8".into()))?;
        target.set_path(&format!("/{}/", segments.join("/")));
        let mut parent = url.clone();
        parent.set_path(&if up.is_empty() {
            "/".to_string()
        } else {
            format!("/{}/", up.join("/"))
        });
        Ok(Webdav {
            dav: Dav::new(client, auth, crate::http::stall_timeout()),
            target,
            parent,
            name,
            auth_problem,
        })
    }

    fn usable(&self) -> Result<(), PublishError> {
        match &self.auth_problem {
            Some(why) => Err(PublishError::Unsupported {
                to: self.shown(),
                why: why.clone(),
            }),
            None => Ok(()),
        }
    }

    fn shown(&self) -> String {
        redact(&self.target).trim_end_matches('/').to_string()
    }

    async fn ensure_collection(&self, url: &url::Url) -> Result<(), PublishError> {
        Ok(self.dav.ensure_collection(url).await?)
    }

    /// Remove temporary collections of this release that a killed run left (best effort).
    async fn remove_stale(&self) {
        let Ok(Some(members)) = self.dav.propfind(&self.parent, "1").await else {
            return;
        };
        let prefix = format!(".{}.partial-", self.name);
        let now = now_secs();
        for m in members {
            let Some(leaf) = m.path.rsplit('/').next() else {
                continue;
            };
            let Some(rest) = leaf.strip_prefix(&prefix) else {
                continue;
            };
            let started = rest.split('-').next().and_then(|t| t.parse::<u64>().ok());
            if m.collection && started.is_some_and(|t| t + STALE_AFTER_SECS < now) {
                let _ = self.delete(&dav::collection_url(&self.parent, leaf)).await;
            }
        }
    }

    /// Remove the temporary collection after a failure, best effort, and make sure it is gone:
    /// Apache may still be winding down an aborted PUT into it (its temporary body file vanishes
    /// under the DELETE, which then answers 404 and leaves the collection), so look, and try
    /// again a moment later.
    async fn discard(&self, tmp: &url::Url) {
        for attempt in 1..=4u32 {
            let _ = self.delete(tmp).await;
            if let Ok(None) = self.dav.propfind(tmp, "0").await {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250) * attempt).await;
        }
    }

    async fn delete(&self, url: &url::Url) -> Result<(), DavError> {
        let (resp, n) = self
            .dav
            .send(&Method::DELETE, url, &[], &Payload::None, true)
            .await?;
        match resp.status().as_u16() {
            200 | 202 | 204 | 404 => Ok(()),
            _ => Err(Dav::unexpected(&Method::DELETE, url, &resp, n)),
        }
    }

    /// Upload every file into `tmp`, then check what arrived.
    async fn upload(&self, tmp: &url::Url, files: &ReleaseFiles) -> Result<(), PublishError> {
        let created = dav_collections(files);
        for rel in &created {
            let url = dav::collection_url(tmp, rel);
            let (resp, n) = self
                .dav
                .send(&mkcol(), &url, &[], &Payload::None, true)
                .await?;
            // 405 on a retry: the first try made it.
            if !matches!(resp.status().as_u16(), 201 | 405) {
                return Err(Dav::unexpected(&mkcol(), &url, &resp, n).into());
            }
        }
        let sizes = sizes(files)?;
        let sent = Arc::new(AtomicU64::new(0));
        let total: u64 = sizes.iter().sum();
        let report: dav::Progress = {
            let sent = sent.clone();
            let outer = files.progress.clone();
            Arc::new(move |n| {
                let now = sent.fetch_add(n, Ordering::Relaxed) + n;
                if let Some(p) = &outer {
                    (p.0)(now.min(total), total);
                }
            })
        };
        // Boxed one by one: a closure over borrowed files inside the stream trips the compiler's
        // higher-ranked lifetime check for a Send future.
        type Job<'a> =
            std::pin::Pin<Box<dyn Future<Output = Result<(), PublishError>> + Send + 'a>>;
        // After a failure no new upload starts, but those running are let finish: a request
        // dropped halfway may still complete on the server after the cleanup's DELETE began,
        // and leave a file in a collection that should be gone.
        let failed = std::sync::atomic::AtomicBool::new(false);
        let failed = &failed;
        let mut jobs: Vec<Job<'_>> = Vec::new();
        for (f, size) in files.files.iter().zip(sizes.iter().copied()) {
            let report = report.clone();
            jobs.push(Box::pin(async move {
                if failed.load(Ordering::SeqCst) {
                    return Ok(());
                }
                let r = self.put_file(tmp, f, size, report).await;
                if r.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                r
            }));
        }
        let mut results =
            futures_util::StreamExt::buffer_unordered(futures_util::stream::iter(jobs), PARALLEL);
        let mut first = None;
        while let Some(r) = futures_util::StreamExt::next(&mut results).await {
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        }
        drop(results);
        if let Some(e) = first {
            return Err(e);
        }
        self.check_arrived(tmp, files, &created).await
    }

    /// PUT one file (streamed from disk, hashed as it goes). Progress counts what each try
    /// hands over; a retried file is counted again, and the total is capped at the release's
    /// size, which is as exact as a progress line needs.
    async fn put_file(
        &self,
        tmp: &url::Url,
        f: &super::ReleaseFile,
        size: u64,
        report: dav::Progress,
    ) -> Result<(), PublishError> {
        let url = dav::file_url(tmp, &f.path);
        let (path, expect) = match &f.source {
            Source::Bytes(b) => {
                report(b.len() as u64);
                let payload = Payload::Bytes(bytes::Bytes::from(b.clone()));
                return self.finish_put(&url, &payload).await;
            }
            Source::Staged {
                path,
                sha256,
                size,
                id,
            } => (
                path.clone(),
                Some(Expect {
                    sha256: sha256.clone(),
                    size: *size,
                    id: *id,
                }),
            ),
            Source::Record(path) => (path.clone(), None),
        };
        let make = move |t: Arc<Transfer>| {
            dav::body::file_body(&path, size, expect.clone(), t, Some(report.clone()))
        };
        let payload = Payload::Stream {
            length: size,
            make: &make,
        };
        self.finish_put(&url, &payload).await
    }

    async fn finish_put(&self, url: &url::Url, payload: &Payload<'_>) -> Result<(), PublishError> {
        let (resp, n) = self.dav.send(&Method::PUT, url, &[], payload, true).await?;
        if !matches!(resp.status().as_u16(), 200 | 201 | 204) {
            return Err(Dav::unexpected(&Method::PUT, url, &resp, n).into());
        }
        Ok(())
    }

    /// What arrived must be exactly what was sent: every file, of its size (and digest where the
    /// server reports one), and nothing else.
    async fn check_arrived(
        &self,
        tmp: &url::Url,
        files: &ReleaseFiles,
        created: &[String],
    ) -> Result<(), PublishError> {
        let arrived = |detail: String| PublishError::Arrived {
            to: redact(tmp),
            detail,
        };
        let Some(listing) = self.dav.list_tree(tmp).await? else {
            return Err(arrived("the upload collection is gone".into()));
        };
        let mut there: std::collections::BTreeMap<&str, &dav::Member> =
            listing.iter().map(|(r, m)| (r.as_str(), m)).collect();
        for (f, size) in files.files.iter().zip(sizes(files)?) {
            let Some(m) = there.remove(f.path.as_str()) else {
                return Err(arrived(format!("{} is not there", f.path)));
            };
            if m.collection {
                return Err(arrived(format!("{} is a collection", f.path)));
            }
            if m.length != Some(size) {
                return Err(arrived(format!(
                    "{} is {} there, {size} bytes were sent",
                    f.path,
                    m.length
                        .map_or_else(|| "of unknown size".to_string(), |l| format!("{l} bytes"))
                )));
            }
            if let (Some(theirs), Source::Staged { sha256, .. }) = (&m.sha256, &f.source)
                && theirs != sha256
            {
                return Err(arrived(format!(
                    "{} has sha256 {theirs} there, {sha256} was sent",
                    f.path
                )));
            }
        }
        for dir in created {
            if there.remove(dir.as_str()).is_some_and(|m| !m.collection) {
                return Err(arrived(format!("{dir} is not a collection")));
            }
        }
        if let Some((extra, _)) = there.into_iter().next() {
            return Err(arrived(format!("{extra} is there but was not sent")));
        }
        Ok(())
    }

    /// After a MOVE that did not say it worked: is the release at the target ours?
    async fn settle_move(
        &self,
        files: &ReleaseFiles,
        failure: PublishError,
    ) -> Result<(), PublishError> {
        let existing = self.probe().await?;
        let Existing::Release { sums, audit_log } = existing else {
            return Err(failure);
        };
        let ours_sums = files.bytes_of(SUMS_FILE);
        let ours_log = files.record_bytes(&format!("{AUDIT_DIR}/{LOG_FILE}"));
        if sums.is_some() && sums == ours_sums && audit_log.is_some() && audit_log == ours_log {
            // The MOVE happened; its answer was lost.
            return Ok(());
        }
        Err(PublishError::Raced { to: self.shown() })
    }
}

impl Target for Webdav {
    fn describe(&self) -> String {
        self.shown()
    }

    async fn probe(&self) -> Result<Existing, PublishError> {
        self.usable()?;
        match self.dav.propfind(&self.target, "0").await? {
            None => Ok(Existing::Absent),
            Some(_) => {
                let get = |rel: &str, cap: u64| {
                    let url = dav::file_url(&self.target, rel);
                    async move { self.dav.get_small(&url, cap).await.ok().flatten() }
                };
                Ok(Existing::Release {
                    sums: get(SUMS_FILE, MAX_EVIDENCE_BYTES).await,
                    audit_log: get(&format!("{AUDIT_DIR}/{LOG_FILE}"), MAX_LOG_BYTES).await,
                })
            }
        }
    }

    async fn put(&self, files: &ReleaseFiles) -> Result<(), PublishError> {
        if self.probe().await? != Existing::Absent {
            return Err(PublishError::Exists { to: self.shown() });
        }
        self.ensure_collection(&self.parent).await?;
        self.remove_stale().await;
        let tmp = dav::collection_url(
            &self.parent,
            &format!(".{}.partial-{}-{}", self.name, now_secs(), unique()),
        );
        let (resp, n) = self
            .dav
            .send(&mkcol(), &tmp, &[], &Payload::None, false)
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(Dav::unexpected(&mkcol(), &tmp, &resp, n).into());
        }
        if let Err(e) = self.upload(&tmp, files).await {
            self.discard(&tmp).await;
            return Err(e);
        }
        let mv = move_method();
        let headers = [
            ("Destination", self.target.to_string()),
            // Never without it: Apache's default (T) deletes an existing release first.
            ("Overwrite", "F".to_string()),
        ];
        let outcome = self
            .dav
            .send(&mv, &tmp, &headers, &Payload::None, false)
            .await;
        let failure = match outcome {
            Ok((resp, _)) if matches!(resp.status().as_u16(), 201 | 204) => return Ok(()),
            Ok((resp, n)) => match resp.status().as_u16() {
                412 => PublishError::Raced { to: self.shown() },
                _ => Dav::unexpected(&mv, &tmp, &resp, n).into(),
            },
            Err(e) => e.into(),
        };
        let settled = self.settle_move(files, failure).await;
        if settled.is_err() {
            self.discard(&tmp).await;
        }
        settled
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A name part no other run picks: it only has to differ, not to be secret.
fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!("{}-{nanos}-{:p}", std::process::id(), &nanos);
    crate::digest::sha256_hex(seed.as_bytes())[..16].to_string()
}

/// The collections the release's files need, parents first.
fn dav_collections(files: &ReleaseFiles) -> Vec<String> {
    let mut dirs = std::collections::BTreeSet::new();
    for f in &files.files {
        let mut at = f.path.as_str();
        while let Some((up, _)) = at.rsplit_once('/') {
            dirs.insert(up.to_string());
            at = up;
        }
    }
    let mut dirs: Vec<String> = dirs.into_iter().collect();
    dirs.sort_by_key(|d| d.matches('/').count());
    dirs
}

/// Each file's size as it will be sent.
fn sizes(files: &ReleaseFiles) -> Result<Vec<u64>, PublishError> {
    files
        .files
        .iter()
        .map(|f| match &f.source {
            Source::Bytes(b) => Ok(b.len() as u64),
            Source::Staged { size, .. } => Ok(*size),
            Source::Record(path) => crate::record::open_regular(path)
                .and_then(|file| file.metadata())
                .map(|m| m.len())
                .map_err(PublishError::io("read", path)),
        })
        .collect()
}

impl From<DavError> for PublishError {
    fn from(e: DavError) -> Self {
        PublishError::Remote(e)
    }
}
