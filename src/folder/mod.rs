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
use std::sync::Arc;

pub use http::HttpFolder;
pub use local::LocalFolder;
pub use s3::{BadKey, S3Folder, is_s3};

/// Why a folder, or one file in it, cannot be read. Its message is what follows the folder's or
/// the file's name where it is shown (`linux/x.bin: is a symbolic link`); the name is a field,
/// not part of the message, and an absent file is [`FolderError::Missing`], for a caller to
/// match on.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    /// The folder (`check_root`) is a symbolic link.
    #[error("is a symbolic link, not a folder")]
    RootSymlink { path: PathBuf },
    #[error("not a folder")]
    RootNotFolder { path: PathBuf },
    #[error("cannot open the folder: {source}")]
    RootUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A remote folder could not be listed when it was opened. The folder keeps that error, made
    /// once, and every call that needs the listing (`check_root`, `open`, `regular_files`)
    /// hands back the same one: an `Arc` is shared, so the error and its source are never
    /// copied or turned into text to be handed out again.
    #[error(transparent)]
    Listing(Arc<ListError>),
    /// A local folder's files cannot be listed (`regular_files`): a symbolic link, FIFO,
    /// device or socket in it, or a read error.
    #[error(transparent)]
    Files(#[from] crate::audit::AuditError),
    /// `rel` is not there.
    #[error("missing")]
    Missing { rel: String },
    /// `rel` was listed, and the server then had no such object.
    #[error("missing (listed, but the server has no such object)")]
    Vanished { rel: String },
    #[error("is a symbolic link")]
    Symlink { rel: String },
    /// A folder on the way to `rel` (`at`, the path up to it) is a symbolic link.
    #[error("{at} is a symbolic link")]
    SymlinkOnTheWay { rel: String, at: String },
    #[error("is not a regular file")]
    NotRegular { rel: String },
    /// Something on the way to `rel` (`at`) is not a folder.
    #[error("{at} is not a folder")]
    NotFolderOnTheWay { rel: String, at: String },
    /// `is_dir` of a symbolic link.
    #[error("{} is a symbolic link", .path.display())]
    DirSymlink { path: PathBuf },
    /// The file or a folder on the way to it cannot be looked at (`path`, the one that failed).
    #[error("cannot read: {source}")]
    Stat {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A WebDAV GET failed (`url` as messages show it: `http::redact`, no query that could
    /// carry a token). The sources are boxed to keep every `Result` of this module small.
    #[error("{source}")]
    Get {
        url: String,
        #[source]
        source: Box<crate::dav::DavError>,
    },
    /// An S3 GET failed (`key`, the object's full key).
    #[error("{source}")]
    GetObject {
        key: String,
        #[source]
        source: Box<crate::s3::S3Error>,
    },
    /// Reading `rel` failed part way (a disk error, a download cut off or stalled).
    #[error("cannot read: {source}")]
    Read {
        rel: String,
        #[source]
        source: std::io::Error,
    },
    #[error("is over the limit of {cap} bytes")]
    TooBig { rel: String, cap: u64 },
}

/// Why a remote folder cannot be listed, and so not read at all (a URL as `http::redact`
/// shows it).
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("cannot open the folder: not found (HTTP 404)")]
    NotFound { url: String },
    #[error("cannot open the folder: {source}")]
    Dav {
        url: String,
        #[source]
        source: crate::dav::DavError,
    },
    #[error("{source}")]
    S3 {
        prefix: String,
        #[source]
        source: crate::s3::S3Error,
    },
    /// The prefix has no commit marker: no release, or one whose upload never completed.
    #[error(
        "not published: {}, the commit marker written last, is not there (an upload that \
         never completed, or no release at all)",
        crate::layout::SIG_FILE
    )]
    NotPublished { prefix: String },
    /// A key no release has (`key`, as messages show it).
    #[error("{key}: {source}")]
    Key {
        key: String,
        #[source]
        source: BadKey,
    },
}

/// Why `copy_tree` could not copy a record.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The folder's files cannot be listed.
    #[error(transparent)]
    List(#[from] FolderError),
    #[error("more than {} files in the record", MAX_RECORD_FILES)]
    TooMany,
    #[error("{rel}: not a plain relative name")]
    NotPlain { rel: String },
    #[error("cannot create {}: {source}", .path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{rel}: {source}")]
    File {
        rel: String,
        #[source]
        source: FolderError,
    },
}

/// One entry found while walking a folder, or why an entry cannot be named.
#[derive(Debug)]
pub enum Item {
    Entry { rel: String, dir: bool },
    Problem { at: String, why: WalkProblem },
}

/// Why a walk cannot name an entry (`verify` lists it among its problems).
#[derive(Debug, thiserror::Error)]
pub enum WalkProblem {
    #[error("cannot read: {0}")]
    Unreadable(#[source] walkdir::Error),
    #[error("name is not UTF-8; not listed in SHA256SUMS")]
    NotUtf8,
}

/// `Sync`: `verify` hashes several files of one folder at once, each on a thread of its own.
pub trait Folder: Sync {
    /// The folder as messages name it (a path, or a URL without credentials).
    fn describe(&self) -> String;
    /// `Err` says why the folder itself cannot be read (missing, not a folder, refused).
    fn check_root(&self) -> Result<(), FolderError>;
    /// Open `rel` for reading; [`FolderError::Missing`] when it is not there, else why it may
    /// not be read (a symbolic link on the way, not a regular file, an HTTP error).
    fn open(&self, rel: &str) -> Result<Box<dyn Read + '_>, FolderError>;
    /// Every entry below the folder, sorted, not descending into the top-level folder `skip`.
    fn walk(&self, skip: Option<&str>) -> Vec<Item>;
    /// Every file below the folder; anything but regular files and folders (a symbolic link,
    /// FIFO, device or socket) is refused with its path.
    fn regular_files(&self) -> Result<Vec<String>, FolderError>;
    /// Is `rel` a folder? `Err` when it is a symbolic link.
    fn is_dir(&self, rel: &str) -> Result<bool, FolderError>;
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
    /// The location as given is not one relgate reads (the message says why).
    #[error("{0}")]
    Bad(String),
    /// The HTTP client cannot be set up (a CA file), or credentials are half given.
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    /// No S3 client for the bucket (no credentials, a CA file).
    #[error(transparent)]
    S3(#[from] crate::s3::S3Error),
    #[error("cannot start the runtime: {source}")]
    Runtime {
        #[source]
        source: std::io::Error,
    },
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
        return S3Folder::open(text, access).map(|f| Box::new(f) as Box<dyn Folder>);
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
    HttpFolder::open(&url, access).map(|f| Box::new(f) as Box<dyn Folder>)
}

/// The largest small file (`SHA256SUMS`, its signature, the signers copy) read whole.
pub const MAX_SMALL_FILE: u64 = 64 << 20;

/// Read `rel` whole, refusing more than `cap` bytes.
pub fn read_capped(folder: &dyn Folder, rel: &str, cap: u64) -> Result<Vec<u8>, FolderError> {
    let reader = folder.open(rel)?;
    let mut bytes = Vec::new();
    reader
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| FolderError::Read {
            rel: rel.to_string(),
            source,
        })?;
    if bytes.len() as u64 > cap {
        return Err(FolderError::TooBig {
            rel: rel.to_string(),
            cap,
        });
    }
    Ok(bytes)
}

/// Copy the files below `prefix` (or all) of `folder` into the local folder `into`, with the
/// caps a record's files have on disk: the log 1 GiB, every other file 256 MiB, and at most
/// [`MAX_RECORD_FILES`] of them. Names must be plain relative paths.
pub fn copy_tree(folder: &dyn Folder, prefix: Option<&str>, into: &Path) -> Result<(), CopyError> {
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
            return Err(CopyError::TooMany);
        }
        if local
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\0'))
        {
            return Err(CopyError::NotPlain { rel: rel.clone() });
        }
        let cap = if local == crate::record::LOG_FILE {
            crate::record::MAX_LOG_BYTES
        } else {
            crate::record::MAX_EVIDENCE_BYTES
        };
        let dst = into.join(local);
        if let Some(up) = dst.parent() {
            std::fs::create_dir_all(up).map_err(|source| CopyError::Create {
                path: up.to_path_buf(),
                source,
            })?;
        }
        let file = |source| CopyError::File {
            rel: rel.clone(),
            source,
        };
        let reader = folder.open(rel).map_err(file)?;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&dst)
            .map_err(|source| CopyError::Create {
                path: dst.clone(),
                source,
            })?;
        // Reading and writing are one call: a failed write is reported as a read, as before.
        let n = std::io::copy(&mut reader.take(cap + 1), &mut out).map_err(|source| {
            file(FolderError::Read {
                rel: rel.clone(),
                source,
            })
        })?;
        if n > cap {
            return Err(file(FolderError::TooBig {
                rel: rel.clone(),
                cap,
            }));
        }
    }
    Ok(())
}

/// The most files a record fetched from a remote folder may hold.
pub const MAX_RECORD_FILES: usize = 1_000_000;
