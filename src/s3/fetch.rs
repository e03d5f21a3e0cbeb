//! Reading a release out of a bucket, for `verify` and `replay`: the keys under its prefix with
//! their sizes, and each object streamed to a local folder chunk by chunk (nothing held whole
//! in memory), so that the very checks a local folder gets run on exactly the bytes the bucket
//! served.

use std::io::Write;
use std::path::Path;

use super::{Bucket, Listed, S3Error};

/// Why a release could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    S3(#[from] S3Error),
    /// A key no release folder could hold (`..`, an empty part, a "folder" object): a release
    /// relgate published never has one.
    #[error("{key}: {why}")]
    BadKey { key: String, why: String },
    #[error("{key}: the server sent {got} bytes, the listing said {listed}")]
    Size { key: String, got: u64, listed: u64 },
    #[error("cannot write {}: {source}", .path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The objects under `prefix/`, as paths relative to it with their sizes.
pub async fn list_release(b: &Bucket, prefix: &str) -> Result<Vec<Listed>, FetchError> {
    let base = format!("{prefix}/");
    let mut out = Vec::new();
    for l in b.list(&base).await? {
        let rel = l.key.strip_prefix(&base).unwrap_or(&l.key).to_string();
        check_rel(&rel).map_err(|why| FetchError::BadKey {
            key: b.shown(&l.key),
            why,
        })?;
        out.push(Listed {
            key: rel,
            size: l.size,
        });
    }
    Ok(out)
}

/// A relative key must be a path a folder can hold without leaving it.
fn check_rel(rel: &str) -> Result<(), String> {
    if rel.is_empty() || rel.ends_with('/') {
        return Err("a folder placeholder object; a release holds files only".into());
    }
    for part in rel.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err("an empty, `.` or `..` part in the key".into());
        }
        if part.contains(['\\', '\0']) {
            return Err("a backslash or NUL in the key".into());
        }
    }
    Ok(())
}

/// Stream one object into a new file at `dest` (which must not exist), checking its size
/// against the listing.
pub async fn download(b: &Bucket, key: &str, listed: u64, dest: &Path) -> Result<(), FetchError> {
    let io = |e| FetchError::Io {
        path: dest.to_path_buf(),
        source: e,
    };
    if let Some(up) = dest.parent() {
        std::fs::create_dir_all(up).map_err(io)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(io)?;
    let Some(mut resp) = b.get(key).await? else {
        return Err(FetchError::Size {
            key: b.shown(key),
            got: 0,
            listed,
        });
    };
    let mut got = 0u64;
    while let Some(chunk) = b.chunk(key, &mut resp).await? {
        got += chunk.len() as u64;
        if got > listed {
            break;
        }
        file.write_all(&chunk).map_err(io)?;
    }
    if got != listed {
        return Err(FetchError::Size {
            key: b.shown(key),
            got,
            listed,
        });
    }
    file.flush().map_err(io)?;
    Ok(())
}

/// Every object under `prefix/` into the empty folder `dest`.
pub async fn download_release(
    b: &Bucket,
    prefix: &str,
    dest: &Path,
) -> Result<Vec<Listed>, FetchError> {
    let listed = list_release(b, prefix).await?;
    for l in &listed {
        download(
            b,
            &format!("{prefix}/{}", l.key),
            l.size,
            &dest.join(&l.key),
        )
        .await?;
    }
    Ok(listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_would_leave_the_folder_are_refused() {
        for bad in ["", "a/", "../x", "a/../b", "a//b", "./a", "a\\b"] {
            assert!(check_rel(bad).is_err(), "{bad:?}");
        }
        assert!(check_rel("audit/evidence/abc").is_ok());
    }
}
