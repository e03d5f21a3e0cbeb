//! The release record on disk: its folder layout and the content-addressed evidence store.
//!
//! ```text
//! <record>/log.jsonl                 the hash-chained release log (see docs/log-format.md)
//! <record>/checkpoint                signed (length, head) of the log, rewritten at each run's end
//! <record>/checkpoint.sig            SSHSIG, namespace relgate-checkpoint
//! <record>/evidence/<sha256>         evidence and captured files, named by their digest
//! <record>/approvals/NAME[.sig]      sign-off statements and their signatures
//! <record>/staged/<subject>/...      the staged artefacts and SHA256SUMS (not part of audit/)
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::digest::{is_hex_digest, sha256_hex};

pub const LOG_FILE: &str = "log.jsonl";
pub const CHECKPOINT_FILE: &str = "checkpoint";
pub const CHECKPOINT_SIG_FILE: &str = "checkpoint.sig";
pub const EVIDENCE_DIR: &str = "evidence";
pub const APPROVALS_DIR: &str = "approvals";
pub const STAGED_DIR: &str = "staged";

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read evidence {digest} in {dir}: {source}")]
    Read {
        dir: PathBuf,
        digest: String,
        #[source]
        source: std::io::Error,
    },
    #[error("evidence file {digest} does not match its digest (found {actual})")]
    Mismatch { digest: String, actual: String },
    #[error("{0:?} is not a sha256 digest")]
    BadDigest(String),
}

/// Read access to evidence by digest. Every read checks the digest, so a judge never sees
/// bytes other than the ones the log names.
pub trait Blobs: Send + Sync {
    fn get(&self, digest: &str) -> Result<Vec<u8>, RecordError>;
}

/// A release record folder.
#[derive(Clone, Debug)]
pub struct Record {
    pub dir: PathBuf,
}

impl Record {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Record { dir: dir.into() }
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    pub fn evidence_dir(&self) -> PathBuf {
        self.dir.join(EVIDENCE_DIR)
    }

    pub fn approvals_dir(&self) -> PathBuf {
        self.dir.join(APPROVALS_DIR)
    }

    pub fn staged_dir(&self, subject_hex: &str) -> PathBuf {
        self.dir.join(STAGED_DIR).join(subject_hex)
    }

    /// Store `bytes` under their digest (write to a temporary name, fsync, rename) and return
    /// the digest. Storing the same bytes twice is a no-op.
    pub fn put(&self, bytes: &[u8]) -> Result<String, RecordError> {
        let digest = sha256_hex(bytes);
        let dir = self.evidence_dir();
        let path = dir.join(&digest);
        if path.exists() {
            return Ok(digest);
        }
        let werr = |source| RecordError::Write {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(&dir).map_err(werr)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(werr)?;
        tmp.write_all(bytes).map_err(werr)?;
        tmp.as_file().sync_all().map_err(werr)?;
        tmp.persist(&path).map_err(|e| werr(e.error))?;
        // The log line naming this digest is fsynced next; the file's name must be durable
        // before it, or a power loss leaves a verdict whose evidence is gone.
        sync_dir(&dir).map_err(werr)?;
        Ok(digest)
    }

    /// Store a serialisable value as canonical JSON; returns its digest.
    pub fn put_json<T: serde::Serialize + ?Sized>(&self, value: &T) -> Result<String, RecordError> {
        let text = crate::digest::canonical_json(value).map_err(|e| RecordError::Write {
            path: self.evidence_dir(),
            source: std::io::Error::other(e),
        })?;
        self.put(text.as_bytes())
    }
}

impl Blobs for Record {
    fn get(&self, digest: &str) -> Result<Vec<u8>, RecordError> {
        read_blob(&self.evidence_dir(), digest)
    }
}

/// The largest log read (a 200,000-line log is some 60 MiB).
pub const MAX_LOG_BYTES: u64 = 1 << 30;

/// The largest evidence file read back. Collectors cap what they store well below this (JUnit
/// and SARIF files at 64 MiB, captured output at its tail); the cap keeps a hostile record from
/// making a reader allocate without bound.
pub const MAX_EVIDENCE_BYTES: u64 = 256 << 20;

/// Open `path` for reading only if it is a regular file: a symbolic link is not followed
/// (`O_NOFOLLOW`), and a FIFO or device is refused before anything is read (`O_NONBLOCK`
/// keeps the open itself from waiting for a FIFO's writer).
pub fn open_regular(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::other("is a symbolic link")
            } else {
                e
            }
        })?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(std::io::Error::other(
            "is not a regular file (a FIFO, device, socket or folder)",
        ));
    }
    Ok(file)
}

/// Read a regular file (see [`open_regular`]) of at most `cap` bytes; a bigger one is an error,
/// and never more than `cap + 1` bytes are read even if it grows meanwhile.
pub fn read_capped(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = open_regular(path)?;
    let len = file.metadata()?.len();
    if len > cap {
        return Err(std::io::Error::other(format!(
            "is {len} bytes, over the limit of {cap}"
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(std::io::Error::other(format!(
            "grew past the limit of {cap} bytes while read"
        )));
    }
    Ok(bytes)
}

/// Read and check one evidence file from an evidence folder.
pub fn read_blob(dir: &Path, digest: &str) -> Result<Vec<u8>, RecordError> {
    if !is_hex_digest(digest) {
        return Err(RecordError::BadDigest(digest.to_string()));
    }
    let bytes =
        read_capped(&dir.join(digest), MAX_EVIDENCE_BYTES).map_err(|source| RecordError::Read {
            dir: dir.to_path_buf(),
            digest: digest.to_string(),
            source,
        })?;
    let actual = sha256_hex(&bytes);
    if actual != digest {
        return Err(RecordError::Mismatch {
            digest: digest.to_string(),
            actual,
        });
    }
    Ok(bytes)
}

/// fsync a folder so that a rename or a new entry in it is durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}
