//! A folder to read: a local path or a URL. `verify` and `replay` check a release through this
//! one small trait, so the same code checks a folder on disk, a release on a WebDAV server and
//! one under an S3 prefix (and any other store that can list its files and stream one).
//!
//! What an implementation promises: a listing of every entry below the folder, names as
//! `/`-separated relative paths; files opened only if they are regular files reached without
//! symbolic links (on disk) or listed as plain resources (remote); and reads that stream, so a
//! caller can hash a file of any size without holding it.

mod http;
mod local;
mod s3;

use std::io::Read;
use std::path::{Path, PathBuf};

pub use http::HttpFolder;
pub use local::LocalFolder;
pub use s3::{S3Folder, is_s3};

/// One entry found while walking a folder, or why an entry cannot be named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Entry { rel: String, dir: bool },
    Problem { at: String, message: String },
}

/// `Sync`: `verify` hashes several files of one folder at once, each on a thread of its own.
pub trait Folder: Sync {
    /// The folder as messages name it (a path, or a URL without credentials).
    fn describe(&self) -> String;
    /// `Err` says why the folder itself cannot be read (missing, not a folder, refused).
    fn check_root(&self) -> Result<(), String>;
    /// Open `rel` for reading; `Err("missing")` when it is not there, else why it may not be
    /// read (a symbolic link on the way, not a regular file, an HTTP error).
    fn open(&self, rel: &str) -> Result<Box<dyn Read + '_>, String>;
    /// Every entry below the folder, sorted, not descending into the top-level folder `skip`.
    fn walk(&self, skip: Option<&str>) -> Vec<Item>;
    /// Every file below the folder; anything but regular files and folders (a symbolic link,
    /// FIFO, device or socket) is refused with its path.
    fn regular_files(&self) -> Result<Vec<String>, String>;
    /// Is `rel` a folder? `Err` when it is a symbolic link.
    fn is_dir(&self, rel: &str) -> Result<bool, String>;
    /// The folder's path when it is on this machine (replay then reads its record in place).
    fn local_path(&self) -> Option<&Path> {
        None
    }
    /// The size of the file `rel` as the folder reports it without reading it, when it can.
    fn size(&self, _rel: &str) -> Option<u64> {
        None
    }
    /// How many files are best read at once.
    fn concurrency(&self) -> usize {
        1
    }
}

/// How to reach a remote folder.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// A PEM file of CA certificates trusted besides the platform's.
    pub ca: Option<PathBuf>,
    /// Allow plain `http://` to a host other than this machine.
    pub allow_http: bool,
    /// The project's pipeline: where an `s3://` bucket is (`publish.endpoint`, `region`, `ca`)
    /// when it publishes to that bucket and the environment does not say.
    pub pipeline: Option<PathBuf>,
}

impl Access {
    /// This access, with the project's pipeline to find a bucket's endpoint in.
    pub fn with_pipeline(&self, pipeline: &Path) -> Access {
        Access {
            pipeline: Some(pipeline.to_path_buf()),
            ..self.clone()
        }
    }
}

/// Why a location cannot be opened at all (a usage error: nothing was checked).
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error("{0}")]
    Bad(String),
}

/// Is `arg` a URL rather than a path?
pub fn is_url(arg: &Path) -> bool {
    arg.to_str()
        .and_then(|s| s.split_once("://"))
        .is_some_and(|(scheme, _)| {
            !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// The folder at `arg`: an `http(s)://` URL (WebDAV), an `s3://bucket/prefix` URL, or a path.
pub fn open(arg: &Path, access: &Access) -> Result<Box<dyn Folder>, LocationError> {
    if !is_url(arg) {
        return Ok(Box::new(LocalFolder::new(arg)));
    }
    let text = arg.to_str().unwrap_or_default();
    if is_s3(arg) {
        return S3Folder::open(text, access)
            .map(|f| Box::new(f) as Box<dyn Folder>)
            .map_err(LocationError::Bad);
    }
    let url = url::Url::parse(text).map_err(|e| LocationError::Bad(format!("{text}: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if access.allow_http || crate::http::is_loopback(&url) => {}
        "http" => {
            return Err(LocationError::Bad(format!(
                "{}: plain http:// to another machine sends credentials unencrypted; use \
                 https://, or --allow-http to accept that",
                crate::http::redact(&url)
            )));
        }
        other => {
            return Err(LocationError::Bad(format!(
                "{}: reading over {other}:// is not available in this build",
                crate::http::redact(&url)
            )));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(LocationError::Bad(
            "credentials do not belong in the URL; give them in the environment \
             (RELGATE_PUBLISH_USER/RELGATE_PUBLISH_PASSWORD or RELGATE_PUBLISH_TOKEN) or ~/.netrc"
                .into(),
        ));
    }
    HttpFolder::open(&url, access)
        .map(|f| Box::new(f) as Box<dyn Folder>)
        .map_err(LocationError::Bad)
}

/// The largest small file (`SHA256SUMS`, its signature, the signers copy) read whole.
pub const MAX_SMALL_FILE: u64 = 64 << 20;

/// Read `rel` whole, refusing more than `cap` bytes.
pub fn read_capped(folder: &dyn Folder, rel: &str, cap: u64) -> Result<Vec<u8>, String> {
    let reader = folder.open(rel)?;
    let mut bytes = Vec::new();
    reader
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > cap {
        return Err(format!("is over the limit of {cap} bytes"));
    }
    Ok(bytes)
}

/// Copy the files below `prefix` (or all) of `folder` into the local folder `into`, with the
/// caps a record's files have on disk: the log 1 GiB, every other file 256 MiB, and at most
/// [`MAX_RECORD_FILES`] of them. Names must be plain relative paths.
pub fn copy_tree(folder: &dyn Folder, prefix: Option<&str>, into: &Path) -> Result<(), String> {
    let files = folder.regular_files()?;
    let mut count = 0usize;
    for rel in &files {
        let local = match prefix {
            Some(p) => match rel.strip_prefix(p).and_then(|r| r.strip_prefix('/')) {
                Some(r) => r,
                None => continue,
            },
            None => rel.as_str(),
        };
        count += 1;
        if count > MAX_RECORD_FILES {
            return Err(format!("more than {MAX_RECORD_FILES} files in the record"));
        }
        if local
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\0'))
        {
            return Err(format!("{rel}: not a plain relative name"));
        }
        let cap = if local == crate::record::LOG_FILE {
            crate::record::MAX_LOG_BYTES
        } else {
            crate::record::MAX_EVIDENCE_BYTES
        };
        let dst = into.join(local);
        if let Some(up) = dst.parent() {
            std::fs::create_dir_all(up)
                .map_err(|e| format!("cannot create {}: {e}", up.display()))?;
        }
        let reader = folder.open(rel).map_err(|m| format!("{rel}: {m}"))?;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&dst)
            .map_err(|e| format!("cannot create {}: {e}", dst.display()))?;
        let n = std::io::copy(&mut reader.take(cap + 1), &mut out)
            .map_err(|e| format!("{rel}: cannot read: {e}"))?;
        if n > cap {
            return Err(format!("{rel}: is over the limit of {cap} bytes"));
        }
    }
    Ok(())
}

/// The most files a record fetched from a remote folder may hold.
pub const MAX_RECORD_FILES: usize = 1_000_000;
