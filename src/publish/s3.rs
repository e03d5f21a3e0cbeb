//! An S3 prefix (`s3://bucket/prefix/{project}/{version}`): S3 has no rename, so a release is
//! made visible by its last object instead. Every object is written create-only
//! (`If-None-Match: *`), large files by multipart upload, and `SHA256SUMS.sig` — the commit
//! marker — last. A prefix without the marker is not a published release, for `verify` as for
//! relgate itself: the next run completes it.
//!
//! Who may complete a markerless prefix is settled by a claim: before its first object, a
//! publish writes `.<name>.relgate-claim` beside the prefix, create-only, holding a random token
//! that the release record keeps (`.publish-claim` in the record folder). Two records racing for
//! one version: one claim is created, the other run finds a token not its own and is refused
//! before it writes anything. The same record resuming finds its own token and carries on.
//!
//! Resuming keeps every object whose content is ours (size, then the server's SHA-256 or a
//! streamed download's), refuses any artefact or `SHA256SUMS` with other content (nothing is
//! ever overwritten), and replaces only files under `audit/` that its own earlier attempt wrote:
//! the log has grown since, by the lines of the run that failed or was killed. Objects found in
//! a prefix the run did not already hold the claim for are never touched.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{Existing, PublishError, ReleaseFile, ReleaseFiles, Source, Target};
use crate::layout::{AUDIT_DIR, SIG_FILE, SUMS_FILE};
use crate::record::LOG_FILE;
use crate::s3::body::Payload;
use crate::s3::upload::{self, Put};
use crate::s3::{Bucket, S3Error};

/// The file in the release record holding the token of its claims.
pub const CLAIM_TOKEN_FILE: &str = ".publish-claim";

/// A release prefix in a bucket, and how to reach it.
#[derive(Clone, Debug)]
pub struct S3 {
    pub bucket: String,
    /// The release's prefix, without slashes at its ends.
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub ca: Option<PathBuf>,
}

impl S3 {
    /// `url` is `publish.to` with its placeholders filled.
    pub fn new(url: &str, publish: &crate::model::Publish) -> Result<S3, PublishError> {
        let (bucket, prefix) =
            crate::s3::parse_url(url).map_err(|why| PublishError::Unsupported {
                to: url.to_string(),
                why,
            })?;
        Ok(S3 {
            bucket,
            prefix,
            endpoint: publish.endpoint.clone(),
            region: publish.region.clone(),
            ca: publish.ca.clone(),
        })
    }

    fn connect(&self) -> Result<Bucket, PublishError> {
        Bucket::connect(
            &self.bucket,
            self.endpoint.as_deref(),
            self.region.as_deref(),
            self.ca.as_deref(),
        )
        .map_err(|e| self.remote(e))
    }

    fn key(&self, rel: &str) -> String {
        format!("{}/{rel}", self.prefix)
    }

    /// `.<name>.relgate-claim` beside the release prefix: outside it, so never part of what a
    /// listing of the release shows.
    fn claim_key(&self) -> String {
        match self.prefix.rsplit_once('/') {
            Some((parent, name)) => format!("{parent}/.{name}.relgate-claim"),
            None => format!(".{}.relgate-claim", self.prefix),
        }
    }

    fn remote(&self, e: S3Error) -> PublishError {
        match e {
            S3Error::StagedChanged { key, found } => PublishError::StagedChanged {
                path: key
                    .strip_prefix(&format!("s3://{}/{}/", self.bucket, self.prefix))
                    .unwrap_or(&key)
                    .to_string(),
                found,
            },
            source => PublishError::S3 {
                to: self.describe(),
                source: Box::new(source),
            },
        }
    }

    fn refuse(&self, why: String) -> PublishError {
        PublishError::S3Refused {
            to: self.describe(),
            why,
        }
    }

    async fn marker_present(&self, b: &Bucket) -> Result<bool, PublishError> {
        Ok(b.head(&self.key(SIG_FILE))
            .await
            .map_err(|e| self.remote(e))?
            .is_some())
    }

    /// Claim the prefix for this record: `Ok(true)` when the claim was this record's already
    /// (an earlier attempt), `Ok(false)` when it was made now.
    async fn claim(&self, b: &Bucket, token: &str) -> Result<bool, PublishError> {
        let key = self.claim_key();
        let body = format!("relgate publish claim {token}\n");
        // A claim removed between our create and our read (a publish that just finished) is
        // tried again; the marker check after the claim then refuses.
        for _ in 0..3 {
            let put = upload::put_create(b, &key, Payload::bytes(body.clone().into_bytes()))
                .await
                .map_err(|e| self.remote(e))?;
            if put == Put::Created {
                return Ok(false);
            }
            match b.get_small(&key, 4096).await.map_err(|e| self.remote(e))? {
                Some(found) if found == body.as_bytes() => return Ok(true),
                Some(_) => {
                    return Err(self.refuse(format!(
                        "another release record is publishing this version there ({} holds its \
                         claim); nothing was written. If that publish was abandoned, remove the \
                         claim and the objects under {}/ by hand",
                        b.shown(&key),
                        self.describe()
                    )));
                }
                None => continue,
            }
        }
        Err(self.refuse(format!("the claim {} keeps changing", b.shown(&key))))
    }

    /// Is the object at `key` exactly `size` bytes with SHA-256 `sha256`? The server's own
    /// SHA-256 when it keeps one, else the object streamed through SHA-256 (an ETag is an MD5,
    /// or for multipart and encrypted objects not a digest of the content at all).
    async fn same(&self, b: &Bucket, key: &str, size: u64, sha256: &str) -> Result<bool, S3Error> {
        let Some(head) = b.head(key).await? else {
            return Ok(false);
        };
        if head.size != size {
            return Ok(false);
        }
        if let Some(s) = head.sha256 {
            return Ok(s == sha256);
        }
        Ok(b.hash_object(key)
            .await?
            .is_some_and(|(s, n)| s == sha256 && n == size))
    }

    /// Put one file in place, or find it there already.
    async fn write_one(
        &self,
        b: &Bucket,
        f: &ReleaseFile,
        there: bool,
        resumed: bool,
    ) -> Result<(), PublishError> {
        let key = self.key(&f.path);
        let (path, size, sha256) = self.source(f)?;
        // Our own earlier attempt's copy of the record may be replaced, and so may its
        // attestation (made from that record, so it differs too); nothing else may.
        let made_from_record = [crate::layout::VSA_FILE, crate::layout::PUBKEY_FILE];
        let replaceable = resumed
            && (f.path.starts_with(&format!("{AUDIT_DIR}/"))
                || made_from_record.contains(&f.path.as_str()));
        let r = |e| self.remote(e);
        if there {
            if self.same(b, &key, size, &sha256).await.map_err(r)? {
                return Ok(());
            }
            if !replaceable {
                return Err(self.differs(b, &key));
            }
            b.delete(&key).await.map_err(r)?;
        }
        let put = match &path {
            Some(p) => upload::put_file(b, &key, p, size, &sha256).await,
            None => {
                let Source::Bytes(bytes) = &f.source else {
                    return Err(self.refuse(format!("{}: no bytes to send", f.path)));
                };
                upload::put_create(b, &key, Payload::bytes(bytes.clone())).await
            }
        }
        .map_err(r)?;
        if put == Put::Exists && !self.same(b, &key, size, &sha256).await.map_err(r)? {
            return Err(self.differs(b, &key));
        }
        Ok(())
    }

    fn differs(&self, b: &Bucket, key: &str) -> PublishError {
        self.refuse(format!(
            "{} is already there with other content; it was not overwritten",
            b.shown(key)
        ))
    }

    /// Where a file's bytes are, how many, and their SHA-256 (a record file is hashed here; the
    /// upload hashes it again while sending and cuts off on any difference).
    fn source(&self, f: &ReleaseFile) -> Result<(Option<PathBuf>, u64, String), PublishError> {
        match &f.source {
            Source::Staged {
                path, sha256, size, ..
            } => Ok((Some(path.clone()), *size, sha256.clone())),
            Source::Bytes(bytes) => {
                Ok((None, bytes.len() as u64, crate::digest::sha256_hex(bytes)))
            }
            Source::Record(path) => {
                let file = std::fs::File::open(path).map_err(PublishError::io("read", path))?;
                let (sha, size) =
                    crate::digest::sha256_reader(file).map_err(PublishError::io("read", path))?;
                Ok((Some(path.clone()), size, sha))
            }
        }
    }
}

impl Target for S3 {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    async fn probe(&self) -> Result<Existing, PublishError> {
        let b = self.connect()?;
        // Without its marker a prefix holds no release, whatever else is there.
        if !self.marker_present(&b).await? {
            return Ok(Existing::Absent);
        }
        let r = |e| self.remote(e);
        let sums = b
            .get_small(&self.key(SUMS_FILE), crate::record::MAX_EVIDENCE_BYTES)
            .await
            .map_err(r)?;
        let audit_log = b
            .get_small(
                &self.key(&format!("{AUDIT_DIR}/{LOG_FILE}")),
                crate::record::MAX_LOG_BYTES,
            )
            .await
            .map_err(r)?;
        Ok(Existing::Release { sums, audit_log })
    }

    async fn put(&self, files: &ReleaseFiles) -> Result<(), PublishError> {
        let b = self.connect()?;
        if self.marker_present(&b).await? {
            return Err(PublishError::Exists {
                to: self.describe(),
            });
        }
        let token = claim_token(&files.record)?;
        let resumed = self.claim(&b, &token).await?;
        if self.marker_present(&b).await? {
            return Err(PublishError::Raced {
                to: self.describe(),
            });
        }
        let r = |e| self.remote(e);
        let listed = b.list(&format!("{}/", self.prefix)).await.map_err(r)?;
        let there: BTreeMap<String, u64> = listed
            .into_iter()
            .filter_map(|l| {
                let rel = l
                    .key
                    .strip_prefix(&format!("{}/", self.prefix))?
                    .to_string();
                Some((rel, l.size))
            })
            .collect();
        let ours: BTreeSet<&str> = files.files.iter().map(|f| f.path.as_str()).collect();
        // Anything else under the prefix would be served as part of the release: an earlier
        // attempt's record file goes, anything not ours stops the publish before it writes.
        for rel in there.keys().filter(|k| !ours.contains(k.as_str())) {
            if resumed && rel.starts_with(&format!("{AUDIT_DIR}/")) {
                b.delete(&self.key(rel)).await.map_err(r)?;
            } else {
                return Err(self.refuse(format!(
                    "{} is not part of this release; nothing was overwritten",
                    b.shown(&self.key(rel))
                )));
            }
        }
        let mut written = 0u64;
        let (marker, rest): (Vec<&ReleaseFile>, Vec<&ReleaseFile>) =
            files.files.iter().partition(|f| f.path == SIG_FILE);
        for f in rest {
            self.write_one(&b, f, there.contains_key(&f.path), resumed)
                .await?;
            written += 1;
            crash_point(written);
        }
        // The commit marker, last: from here on the release is published.
        let Some(marker) = marker.first() else {
            return Err(self.refuse(format!("the release has no {SIG_FILE}")));
        };
        let Source::Bytes(sig) = &marker.source else {
            return Err(self.refuse(format!("{SIG_FILE} is not in memory")));
        };
        let put = upload::put_create(&b, &self.key(SIG_FILE), Payload::bytes(sig.clone()))
            .await
            .map_err(r)?;
        if put == Put::Exists {
            let same = self
                .same(
                    &b,
                    &self.key(SIG_FILE),
                    sig.len() as u64,
                    &crate::digest::sha256_hex(sig),
                )
                .await
                .map_err(r)?;
            if !same {
                return Err(PublishError::Raced {
                    to: self.describe(),
                });
            }
        }
        crash_point(written + 1);
        // The claim has done its work; a leftover one (a crash just here) is harmless, since
        // the marker is checked before any claim is.
        let _ = b.delete(&self.claim_key()).await;
        Ok(())
    }
}

/// The record's claim token, made (and made durable) on first use.
fn claim_token(record: &Path) -> Result<String, PublishError> {
    let path = record.join(CLAIM_TOKEN_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let token = text.trim();
        if token.len() == 32 && token.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Ok(token.to_string());
        }
    }
    let mut raw = [0u8; 16];
    {
        use std::io::Read;
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut raw))
            .map_err(PublishError::io(
                "read random bytes from",
                Path::new("/dev/urandom"),
            ))?;
    }
    let token = hex::encode(raw);
    crate::stage::write_synced(&path, format!("{token}\n").as_bytes())
        .map_err(PublishError::io("write", &path))?;
    crate::record::sync_dir(record).map_err(PublishError::io("sync", record))?;
    Ok(token)
}

/// A test hook like `RELGATE_CRASH_AFTER_LINES`: with `RELGATE_CRASH_AFTER_OBJECTS=N` the
/// process aborts right after the N-th object of an S3 publish is in place (the last one is
/// the marker), as a `kill -9` would stop it mid-upload.
fn crash_point(objects: u64) {
    static AT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| {
        std::env::var("RELGATE_CRASH_AFTER_OBJECTS")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if *at == Some(objects) {
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(prefix: &str) -> S3 {
        S3 {
            bucket: "b".into(),
            prefix: prefix.into(),
            endpoint: None,
            region: None,
            ca: None,
        }
    }

    #[test]
    fn the_claim_sits_beside_the_release() {
        assert_eq!(
            s3("rel/acme/1.0.0").claim_key(),
            "rel/acme/.1.0.0.relgate-claim"
        );
        assert_eq!(s3("1.0.0").claim_key(), ".1.0.0.relgate-claim");
        assert_eq!(s3("rel/acme/1.0.0").describe(), "s3://b/rel/acme/1.0.0");
    }
}
