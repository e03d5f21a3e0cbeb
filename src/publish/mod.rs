//! Publishing a release, all or nothing, never overwriting: one small [`Target`] trait and one
//! file per kind of destination.
//!
//! The engine decides and records (the `publish` line and a checkpoint covering it, written
//! before anything moves; `published` after); a target only moves bytes. What a release holds is
//! gathered once, by [`ReleaseFiles::gather`]: the staged artefacts (their digests known), the
//! `SHA256SUMS` the gates concerned, its signature, and exactly the record files the log accounts
//! for (`crate::audit`).

mod local;
mod moved;
mod s3;
mod webdav;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::layout::{AUDIT_DIR, SIG_FILE, SUMS_FILE};
use crate::record::Record;
use crate::stage::Staged;

pub use local::Local;
pub(crate) use local::rename_noreplace;
pub use s3::{CLAIM_TOKEN_FILE, S3};
pub use webdav::Webdav;

/// Why a publish did not happen. Messages name the destination as [`Target::describe`] does
/// (never with credentials).
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{to} already exists; a published release is never overwritten")]
    Exists { to: String },
    #[error("{to} appeared while publishing; it was not overwritten")]
    Raced { to: String },
    #[error("staged {path} no longer matches its digest (found {found}); nothing was published")]
    StagedChanged { path: String, found: String },
    #[error("staged {path} {what} while it was being published; nothing was published")]
    StagedTouched { path: String, what: &'static str },
    #[error("cannot {what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the release record cannot be copied: {0}")]
    Record(String),
    /// Which files of the record are published cannot be told (`crate::audit::publishable`).
    #[error("the release record cannot be copied: {0}")]
    Audit(#[source] crate::audit::AuditError),
    #[error("cannot make the release's attestation: {0}")]
    Attestation(#[source] crate::intoto::vsa::AttestError),
    #[error("cannot make the release's attestation: no signing key for the checkpoints")]
    NoAttestationKey,
    #[error("cannot publish to {to}: {why}")]
    Unsupported { to: String, why: String },
    #[error("cannot publish to {to}: {source}")]
    S3 {
        to: String,
        // Boxed: an S3 error is large beside the other variants.
        #[source]
        source: Box<crate::s3::S3Error>,
    },
    /// What the bucket holds or answered makes the publish unsafe to go on with.
    #[error("cannot publish to {to}: {why}")]
    S3Refused { to: String, why: String },
    #[error(transparent)]
    Remote(crate::dav::DavError),
    #[error("what arrived in {to} is not what was sent: {detail}; nothing was published")]
    Arrived { to: String, detail: String },
}

impl PublishError {
    pub(crate) fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| PublishError::Io { what, path, source }
    }
}

/// Where a release goes, resolved from `publish.to` for one version.
#[derive(Clone, Debug)]
pub enum Destination {
    Local(Local),
    S3(S3),
    // Boxed: a client and its URLs are large beside a path, and a Destination is moved around.
    Webdav(Box<Webdav>),
}

impl Destination {
    /// Resolve `publish.to` (with `{project}` and `{version}` substituted): a folder against
    /// the pipeline root, or a URL.
    pub fn resolve(
        publish: &crate::model::Publish,
        root: &Path,
        project: &str,
        version: &str,
    ) -> Result<Destination, PublishError> {
        let rendered = publish
            .to
            .replace("{project}", project)
            .replace("{version}", version);
        match rendered.split_once("://") {
            None => Ok(Destination::Local(Local::new(root.join(rendered)))),
            Some(("s3", _)) => Ok(Destination::S3(S3::new(&rendered, publish)?)),
            Some((scheme, _))
                if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
            {
                let url = url::Url::parse(&rendered).map_err(|e| PublishError::Unsupported {
                    to: rendered.clone(),
                    why: e.to_string(),
                })?;
                let ca = publish.ca.as_ref().map(|c| root.join(c));
                Ok(Destination::Webdav(Box::new(Webdav::new(
                    &url,
                    ca.as_deref(),
                )?)))
            }
            Some((scheme, _)) => Err(PublishError::Unsupported {
                to: rendered.clone(),
                why: format!("publishing over {scheme}:// is not available in this build"),
            }),
        }
    }
}

/// What is at a destination before publishing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Nothing: the release can be published there.
    Absent,
    /// A release: its `SHA256SUMS` and its `audit/log.jsonl`, as far as they could be read
    /// (a crash after the release was put in place leaves one that is ours).
    Release {
        sums: Option<Vec<u8>>,
        audit_log: Option<Vec<u8>>,
    },
}

/// One kind of destination.
pub trait Target {
    /// The destination as messages and the log name it (no credentials).
    fn describe(&self) -> String;
    /// What is there now.
    fn probe(&self) -> impl Future<Output = Result<Existing, PublishError>> + Send;
    /// Put every file in place at once, or nothing; never replace what is there.
    fn put(&self, files: &ReleaseFiles) -> impl Future<Output = Result<(), PublishError>> + Send;
}

impl Target for Destination {
    fn describe(&self) -> String {
        match self {
            Destination::Local(l) => l.describe(),
            Destination::S3(s) => s.describe(),
            Destination::Webdav(w) => w.describe(),
        }
    }

    async fn probe(&self) -> Result<Existing, PublishError> {
        match self {
            Destination::Local(l) => l.probe().await,
            Destination::S3(s) => s.probe().await,
            Destination::Webdav(w) => w.probe().await,
        }
    }

    async fn put(&self, files: &ReleaseFiles) -> Result<(), PublishError> {
        match self {
            Destination::Local(l) => l.put(files).await,
            Destination::S3(s) => s.put(files).await,
            Destination::Webdav(w) => w.put(files).await,
        }
    }
}

/// Where one file of the release comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A staged artefact: its bytes must still have the digest and size staging recorded.
    Staged {
        path: PathBuf,
        sha256: String,
        size: u64,
        /// The staged copy as staging left it, when known: a local target may then move it
        /// into the release instead of copying it (`local.rs`).
        id: Option<crate::stage::FileId>,
    },
    /// Bytes held in memory (`SHA256SUMS`, its signature).
    Bytes(Vec<u8>),
    /// A file of the release record (copied as it is; replay checks it against the log).
    Record(PathBuf),
}

/// One file of a release, at its path inside the release folder.
#[derive(Clone, Debug)]
pub struct ReleaseFile {
    pub path: String,
    pub source: Source,
}

/// Every file of a release, in the order a target should write them: artefacts, the record,
/// then `SHA256SUMS` and last `SHA256SUMS.sig` (the commit marker where a target has no atomic
/// rename).
#[derive(Clone, Debug, Default)]
pub struct ReleaseFiles {
    pub files: Vec<ReleaseFile>,
    /// The release record's folder (a target may keep what it needs to resume there).
    pub record: PathBuf,
    /// Told the bytes sent so far and the release's size, as a remote target uploads.
    pub progress: Option<Progress>,
}

/// A progress callback: `(bytes sent, bytes in all)`.
#[derive(Clone)]
pub struct Progress(pub Arc<dyn Fn(u64, u64) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

impl ReleaseFiles {
    /// Gather a release: the staged artefacts, `SHA256SUMS` (which must still hold the bytes
    /// the subject names), its signature, the record files the log accounts for, `beside`:
    /// files made from the record at the publish decision that sit beside `SHA256SUMS` (the
    /// attestation and the release key's PEM, `crate::intoto`), and the release report
    /// rendered from that record (`report`, which becomes `audit/report.html`; see
    /// `crate::report::release::embedded`).
    pub fn gather(
        record: &Record,
        staged: &Staged,
        beside: Vec<ReleaseFile>,
        report: Vec<u8>,
    ) -> Result<ReleaseFiles, PublishError> {
        let mut files = Vec::new();
        for a in &staged.artefacts {
            files.push(ReleaseFile {
                path: a.release_path.clone(),
                source: Source::Staged {
                    path: staged.path_of(a),
                    sha256: a.sha256.clone(),
                    size: a.size,
                    id: staged.ids.get(&a.release_path).copied(),
                },
            });
        }
        let sums_path = staged.dir.join(SUMS_FILE);
        let sums = crate::record::read_capped(&sums_path, crate::record::MAX_EVIDENCE_BYTES)
            .map_err(PublishError::io("read", &sums_path))?;
        if sums != staged.sums {
            return Err(PublishError::StagedChanged {
                path: SUMS_FILE.into(),
                found: format!("sha256:{}", crate::digest::sha256_hex(&sums)),
            });
        }
        let sig_path = staged.dir.join(SIG_FILE);
        let sig = crate::record::read_capped(&sig_path, crate::record::MAX_EVIDENCE_BYTES)
            .map_err(PublishError::io("read (did the sign gate run?)", &sig_path))?;
        for rel in crate::audit::publishable(&record.dir).map_err(PublishError::Audit)? {
            files.push(ReleaseFile {
                path: format!("{AUDIT_DIR}/{rel}"),
                source: Source::Record(record.dir.join(&rel)),
            });
        }
        // The report is not a file of the local record: it exists only in the release, where
        // replay renders the record again and accepts it only byte for byte (crate::audit).
        files.push(ReleaseFile {
            path: format!("{AUDIT_DIR}/{}", crate::audit::REPORT_FILE),
            source: Source::Bytes(report),
        });
        // Before SHA256SUMS and its signature: a remote target writes the marker last, and a
        // reader must never see a release without its attestation.
        files.extend(beside);
        files.push(ReleaseFile {
            path: SUMS_FILE.into(),
            source: Source::Bytes(sums),
        });
        files.push(ReleaseFile {
            path: SIG_FILE.into(),
            source: Source::Bytes(sig),
        });
        Ok(ReleaseFiles {
            files,
            record: record.dir.clone(),
            progress: None,
        })
    }

    /// The bytes of a file held in memory (`SHA256SUMS`, its signature).
    pub fn bytes_of(&self, path: &str) -> Option<Vec<u8>> {
        self.files.iter().find_map(|f| match &f.source {
            Source::Bytes(b) if f.path == path => Some(b.clone()),
            _ => None,
        })
    }

    /// The bytes of a record file (`audit/log.jsonl`), read again from the record.
    pub fn record_bytes(&self, path: &str) -> Option<Vec<u8>> {
        self.files.iter().find_map(|f| match &f.source {
            Source::Record(p) if f.path == path => {
                crate::record::read_capped(p, crate::record::MAX_LOG_BYTES).ok()
            }
            _ => None,
        })
    }
}

/// The release paths the `publish` log line lists: the artefacts, `SHA256SUMS` and its signature.
pub fn listed(staged: &Staged) -> Vec<String> {
    let mut out: Vec<String> = staged
        .artefacts
        .iter()
        .map(|a| a.release_path.clone())
        .collect();
    out.push(SUMS_FILE.into());
    out.push(SIG_FILE.into());
    out
}
