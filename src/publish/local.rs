//! A local folder: the release is built beside the target from the staged bytes, fsynced, then
//! renamed into place with `RENAME_NOREPLACE`, so a reader never sees a partial release and an
//! existing folder is never overwritten. A staged copy that is provably still the file staging
//! hashed is moved into the folder being built (`moved.rs`); any other is copied and hashed
//! again on the way.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Existing, PublishError, ReleaseFiles, Source, Target, moved};
use crate::layout::{AUDIT_DIR, SUMS_FILE};
use crate::record::{LOG_FILE, sync_dir};
use crate::stage::copy_and_hash;

/// A release folder on this machine.
#[derive(Clone, Debug)]
pub struct Local {
    pub path: PathBuf,
}

impl Local {
    pub fn new(path: PathBuf) -> Local {
        Local { path }
    }
}

impl Target for Local {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    async fn probe(&self) -> Result<Existing, PublishError> {
        // symlink_metadata: a dangling symlink at the target is "already there" too.
        if self.path.symlink_metadata().is_err() {
            return Ok(Existing::Absent);
        }
        let read = |p: PathBuf| crate::record::read_capped(&p, crate::record::MAX_LOG_BYTES).ok();
        Ok(Existing::Release {
            sums: read(self.path.join(SUMS_FILE)),
            audit_log: read(self.path.join(AUDIT_DIR).join(LOG_FILE)),
        })
    }

    async fn put(&self, files: &ReleaseFiles) -> Result<(), PublishError> {
        let to = &self.path;
        if to.symlink_metadata().is_ok() {
            return Err(PublishError::Exists {
                to: self.describe(),
            });
        }
        let parent = to.parent().ok_or_else(|| PublishError::Io {
            what: "find the parent folder of",
            path: to.clone(),
            source: std::io::ErrorKind::NotFound.into(),
        })?;
        create_parents(parent)?;
        let name = to
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "release".into());
        remove_stale_partials(parent, &name);
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}.partial-"))
            .tempdir_in(parent)
            .map_err(PublishError::io("create a folder in", parent))?;
        let artefacts = build(tmp.path(), files)?;
        rename_noreplace(tmp.path(), to).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => PublishError::Raced {
                to: self.describe(),
            },
            _ => PublishError::Io {
                what: "rename into",
                path: to.clone(),
                source: e,
            },
        })?;
        let _ = tmp.keep();
        sync_dir(parent).map_err(PublishError::io("sync", parent))?;
        crash_point(artefacts + 1);
        Ok(())
    }
}

/// Create the parent folders; the ones created here are made durable too, or a power loss can
/// drop the published release together with a parent that was never synced.
fn create_parents(parent: &Path) -> Result<(), PublishError> {
    let existing = parent
        .ancestors()
        .find(|a| a.is_dir())
        .map(Path::to_path_buf);
    fs::create_dir_all(parent).map_err(PublishError::io("create", parent))?;
    if let Some(existing) = existing {
        for a in parent.ancestors().take_while(|a| *a != existing) {
            if let Some(up) = a.parent() {
                sync_dir(up).map_err(PublishError::io("sync", up))?;
            }
        }
    }
    Ok(())
}

/// Remove `.NAME.partial-*` folders a killed publish left beside the target. The caller holds
/// the release record's lock, so no live run of this release is building one (a run from
/// another state folder aimed at the same target would lose its folder and publish nothing,
/// never half). Best effort: a leftover is hidden and harmless, never a reason to refuse.
fn remove_stale_partials(parent: &Path, name: &str) {
    let prefix = format!(".{name}.partial-");
    let Ok(rd) = fs::read_dir(parent) else {
        return;
    };
    for entry in rd.flatten() {
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Fill `dir` with every file of the release: staged artefacts moved when they are untouched
/// since staging, else re-hashed while copied (a changed staged byte aborts); the record's
/// files, the checksums and the signature; then fsync it all, and the staged folders moved
/// from. Returns the number of artefacts placed.
fn build(dir: &Path, files: &ReleaseFiles) -> Result<u64, PublishError> {
    let mut placed = 0;
    let mut moved_from = std::collections::BTreeSet::new();
    for f in &files.files {
        let dst = dir.join(&f.path);
        if let Some(up) = dst.parent() {
            fs::create_dir_all(up).map_err(PublishError::io("create", up))?;
        }
        match &f.source {
            Source::Staged {
                path,
                sha256,
                size,
                id,
            } => {
                let taken = match id {
                    Some(id) => moved::take(path, &dst, id, &f.path)?,
                    None => None,
                };
                placed += 1;
                if taken == Some(moved::Taken::Moved) {
                    moved_from.extend(path.parent().map(Path::to_path_buf));
                }
                if taken.is_some() {
                    crash_point(placed);
                    continue;
                }
                let (sha, got) = copy_and_hash(path, &dst).map_err(|e| PublishError::Io {
                    what: "copy",
                    path: path.clone(),
                    source: std::io::Error::other(e.to_string()),
                })?;
                if &sha != sha256 || got != *size {
                    return Err(PublishError::StagedChanged {
                        path: f.path.clone(),
                        found: sha,
                    });
                }
                crash_point(placed);
            }
            Source::Bytes(bytes) => write_file(&dst, bytes)?,
            Source::Record(path) => {
                let bytes = crate::record::read_capped(path, crate::record::MAX_EVIDENCE_BYTES)
                    .map_err(PublishError::io("read", path))?;
                write_file(&dst, &bytes)?;
            }
        }
    }
    // The staged folders lost their entries: made durable too, so that after a power loss
    // no staged name is left for a published file.
    for d in &moved_from {
        sync_dir(d).map_err(PublishError::io("sync", d))?;
    }
    sync_tree(dir)?;
    Ok(placed)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), PublishError> {
    crate::stage::write_synced(path, bytes).map_err(PublishError::io("write", path))
}

/// fsync every folder below `dir`, deepest first.
fn sync_tree(dir: &Path) -> Result<(), PublishError> {
    let mut dirs: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_dir())
        .map(|e| e.into_path())
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        sync_dir(&d).map_err(PublishError::io("sync", &d))?;
    }
    Ok(())
}

/// rename(2) that fails with `AlreadyExists` instead of replacing `to`.
#[allow(unsafe_code)]
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let f = CString::new(from.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let t = CString::new(to.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A test hook like `RELGATE_CRASH_AFTER_LINES`: with `RELGATE_CRASH_AFTER_MOVES=N` the
/// process aborts right after the N-th staged artefact is placed in the folder being built
/// (moved, cloned or copied), as a `kill -9` would stop it between moves; N one past the
/// artefacts stops it right after the folder was renamed into place.
fn crash_point(placed: u64) {
    static AT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| {
        std::env::var("RELGATE_CRASH_AFTER_MOVES")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if *at == Some(placed) {
        std::process::abort();
    }
}
