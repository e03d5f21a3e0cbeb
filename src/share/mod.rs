//! The team's share: one place, with no server of relgate's own, where a release's people meet
//! (docs/team.md) — a folder, a WebDAV collection or an S3 prefix.
//!
//! The store promises little, and relgate asks little of it: list a folder, read a small
//! object, write an object **create-only** (never replacing one that is there), and claim a
//! folder so that of several claimants exactly one wins (the publish lease). relgate never
//! overwrites or deletes anything on a share. Names are content-addressed (a statement is named
//! by the SHA-256 of its bytes), so two writers of one name write the same bytes; and nothing
//! read there is believed before its digest and its signature are checked: anyone who can
//! write the share can write anything into it.

pub mod ci;
mod dav;
pub mod history;
pub mod layout;
pub mod lease;
mod local;
pub mod push;
pub mod report;
pub mod request;
mod s3;
pub mod statements;
pub mod sync;

use std::path::{Path, PathBuf};

pub use dav::DavShare;
pub use local::LocalShare;
pub use s3::S3Share;

/// The largest object relgate reads from a share whole (a run report with its pipeline
/// sources and `git log` is well below; a record's evidence has the record's own caps).
pub const MAX_OBJECT_BYTES: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    #[error("{0}")]
    Location(String),
    #[error(transparent)]
    Dav(#[from] crate::dav::DavError),
    #[error(transparent)]
    S3(#[from] crate::s3::S3Error),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{at}: {why}")]
    Refused { at: String, why: String },
}

impl ShareError {
    /// The fault is the object's, not the way to the share: a link, folder or FIFO where a file
    /// should be, an object over the size read, an answer refusing that one name. Anyone who
    /// can write the share can plant such a thing, so a reader that lists many objects passes it
    /// over and says so; a share that cannot be reached at all is still an error.
    pub fn about_the_object(&self) -> bool {
        match self {
            ShareError::Refused { .. } => true,
            // What a planted thing causes (relgate's own refusals are `Other`: not a regular
            // file, over the limit), not what a failing disk or an unmounted share does.
            ShareError::Io { source, .. } => {
                use std::io::ErrorKind as K;
                matches!(
                    source.kind(),
                    K::Other
                        | K::PermissionDenied
                        | K::NotADirectory
                        | K::IsADirectory
                        | K::InvalidData
                        | K::InvalidFilename
                ) || source.raw_os_error() == Some(libc::ELOOP)
            }
            ShareError::Dav(crate::dav::DavError::TooLarge { .. }) => true,
            ShareError::Dav(e) => e.status().is_some_and(|s| (400..500).contains(&s)),
            ShareError::S3(crate::s3::S3Error::Protocol { .. }) => true,
            ShareError::S3(crate::s3::S3Error::Status { status, .. }) => {
                (400..500).contains(status)
            }
            ShareError::Location(_) | ShareError::S3(_) => false,
        }
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ShareError {
        let path = path.to_path_buf();
        move |source| ShareError::Io { path, source }
    }
}

/// What a create-only write found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    Created,
    /// Something was there already; it was left as it is.
    Exists,
}

/// How to reach a remote share.
#[derive(Clone, Debug, Default)]
pub struct Access {
    pub ca: Option<PathBuf>,
    pub allow_http: bool,
    /// S3 only.
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

/// One kind of store. Names are `/`-separated paths below the share's root, each part checked
/// by [`layout::check_name`].
pub trait Store {
    /// The share as messages name it (a path, or a URL without credentials).
    fn describe(&self) -> String;
    /// The names directly below the folder `dir` (`""`: the share's root; files and folders
    /// alike), sorted; hidden names (a write in progress) are left out, and a folder that is
    /// not there holds nothing.
    fn list(&self, dir: &str) -> impl Future<Output = Result<Vec<String>, ShareError>> + Send;
    /// The object `name`, of at most `cap` bytes; `None` when it is not there.
    fn get(
        &self,
        name: &str,
        cap: u64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, ShareError>> + Send;
    /// Write `bytes` at `name` unless something is there. Readers see the whole object or none.
    /// Two writers at once may both see `Created` only where they write one content-addressed
    /// name, that is, the same bytes.
    fn put(&self, name: &str, bytes: &[u8])
    -> impl Future<Output = Result<Put, ShareError>> + Send;
    /// Create the folder `dir` holding `file` with `bytes`, all at once; of several claimants
    /// of one `dir`, exactly one gets `Created`.
    fn claim(
        &self,
        dir: &str,
        file: &str,
        bytes: &[u8],
    ) -> impl Future<Output = Result<Put, ShareError>> + Send;
}

/// A share, opened.
#[derive(Clone, Debug)]
pub enum Share {
    Local(LocalShare),
    // Boxed: a client and its URLs are large beside a path.
    Dav(Box<DavShare>),
    S3(Box<S3Share>),
}

/// Open the share at `location`: a folder (relative to `root` when given), an `http(s)://`
/// WebDAV collection, or `s3://bucket/prefix`.
pub fn open(location: &str, root: Option<&Path>, access: &Access) -> Result<Share, ShareError> {
    let Some((scheme, _)) = location.split_once("://") else {
        let path = match root {
            Some(r) => r.join(location),
            None => PathBuf::from(location),
        };
        let path = std::path::absolute(&path).unwrap_or(path);
        return Ok(Share::Local(LocalShare::new(path)));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "s3" => Ok(Share::S3(Box::new(S3Share::new(location, access)?))),
        "http" | "https" => {
            let url = url::Url::parse(location)
                .map_err(|e| ShareError::Location(format!("{location}: {e}")))?;
            if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
                return Err(ShareError::Location(
                    "credentials and queries do not belong in the share's URL; give them in the \
                     environment (RELGATE_SHARE_USER and RELGATE_SHARE_PASSWORD, or \
                     RELGATE_SHARE_TOKEN) or ~/.netrc"
                        .into(),
                ));
            }
            if url.scheme() == "http" && !access.allow_http && !crate::http::is_loopback(&url) {
                return Err(ShareError::Location(format!(
                    "{}: plain http:// to another machine sends credentials unencrypted; use \
                     https://, or --allow-http to accept that",
                    crate::http::redact(&url)
                )));
            }
            Ok(Share::Dav(Box::new(DavShare::new(&url, access)?)))
        }
        other => Err(ShareError::Location(format!(
            "{location}: a share over {other}:// is not available; use a folder, https:// or s3://"
        ))),
    }
}

/// Open the share a pipeline names.
pub fn open_spec(spec: &crate::model::ShareSpec, root: &Path) -> Result<Share, ShareError> {
    let access = Access {
        ca: spec.ca.clone(),
        allow_http: spec.allow_http,
        endpoint: spec.endpoint.clone(),
        region: spec.region.clone(),
    };
    open(&spec.url, Some(root), &access)
}

impl Store for Share {
    fn describe(&self) -> String {
        match self {
            Share::Local(s) => s.describe(),
            Share::Dav(s) => s.describe(),
            Share::S3(s) => s.describe(),
        }
    }

    async fn list(&self, dir: &str) -> Result<Vec<String>, ShareError> {
        // "" is the share's root.
        if !dir.is_empty() {
            layout::check_path(dir)?;
        }
        let mut names = match self {
            Share::Local(s) => s.list(dir).await?,
            Share::Dav(s) => s.list(dir).await?,
            Share::S3(s) => s.list(dir).await?,
        };
        names.retain(|n| !n.starts_with('.') && layout::check_name(n).is_ok());
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn get(&self, name: &str, cap: u64) -> Result<Option<Vec<u8>>, ShareError> {
        layout::check_path(name)?;
        match self {
            Share::Local(s) => s.get(name, cap).await,
            Share::Dav(s) => s.get(name, cap).await,
            Share::S3(s) => s.get(name, cap).await,
        }
    }

    async fn put(&self, name: &str, bytes: &[u8]) -> Result<Put, ShareError> {
        layout::check_path(name)?;
        match self {
            Share::Local(s) => s.put(name, bytes).await,
            Share::Dav(s) => s.put(name, bytes).await,
            Share::S3(s) => s.put(name, bytes).await,
        }
    }

    async fn claim(&self, dir: &str, file: &str, bytes: &[u8]) -> Result<Put, ShareError> {
        layout::check_path(dir)?;
        layout::check_name(file)?;
        match self {
            Share::Local(s) => s.claim(dir, file, bytes).await,
            Share::Dav(s) => s.claim(dir, file, bytes).await,
            Share::S3(s) => s.claim(dir, file, bytes).await,
        }
    }
}

impl Share {
    /// Where `name` is, as messages show it.
    pub fn shown(&self, name: &str) -> String {
        format!("{}/{name}", self.describe().trim_end_matches('/'))
    }
}

/// A name part no other writer picks: it only has to differ, not to be secret.
pub(crate) fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!("{}-{nanos}-{:p}", std::process::id(), &nanos);
    crate::digest::sha256_hex(seed.as_bytes())[..16].to_string()
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// RFC 3339 UTC for unix seconds.
pub(crate) fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}
