//! Publishing to a local folder, all or nothing: built beside the target from the staged bytes,
//! fsynced, then renamed into place with RENAME_NOREPLACE, so a reader never sees a partial
//! release and an existing folder is never overwritten.

use std::fs;
use std::path::{Path, PathBuf};

use crate::audit::Accounted;
use crate::engine::{SharedLog, append, write_checkpoint};
use crate::log::{self, Record as LogRecord};
use crate::record::{EVIDENCE_DIR, LOG_FILE, Record, sync_dir};
use crate::stage::{Staged, copy_and_hash};

/// The folder inside a published release that holds the release record.
pub const AUDIT_DIR: &str = "audit";

pub(crate) fn publish(
    log: &SharedLog,
    record: &Record,
    staged: &Staged,
    to: &Path,
    run: u32,
    key: Option<&ssh_key::PrivateKey>,
    origin: &str,
) -> Result<(), String> {
    // symlink_metadata: a dangling symlink at the target counts as existing.
    if to.symlink_metadata().is_ok() {
        return Err(format!(
            "{} already exists; a published release is never overwritten",
            to.display()
        ));
    }
    let mut files: Vec<String> = staged
        .artefacts
        .iter()
        .map(|a| a.release_path.clone())
        .collect();
    files.push("SHA256SUMS".into());
    files.push("SHA256SUMS.sig".into());
    // Write-ahead: the decision to publish, and a checkpoint covering it, before any file moves.
    append(
        log,
        LogRecord::Publish(log::Publish {
            run,
            to: to.display().to_string(),
            subject: staged.subject.clone(),
            files,
        }),
    )
    .map_err(|e| e.to_string())?;
    write_checkpoint(log, record, key, origin).map_err(|e| e.to_string())?;

    let parent = to
        .parent()
        .ok_or_else(|| format!("{} has no parent folder", to.display()))?;
    // Folders created here must be durable too, or a power loss can drop the published
    // release together with a parent that was never synced.
    let existing = parent
        .ancestors()
        .find(|a| a.is_dir())
        .map(Path::to_path_buf);
    fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    if let Some(existing) = existing {
        for a in parent.ancestors().take_while(|a| *a != existing) {
            if let Some(up) = a.parent() {
                sync_dir(up).map_err(|e| format!("cannot sync {}: {e}", up.display()))?;
            }
        }
    }
    let name = to
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "release".into());
    remove_stale_partials(parent, &name);
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.partial-"))
        .tempdir_in(parent)
        .map_err(|e| format!("cannot create a folder in {}: {e}", parent.display()))?;
    build(tmp.path(), record, staged)?;
    rename_noreplace(tmp.path(), to).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            format!(
                "{} appeared while publishing; it was not overwritten",
                to.display()
            )
        }
        _ => format!("cannot rename into {}: {e}", to.display()),
    })?;
    let _ = tmp.keep();
    sync_dir(parent).map_err(|e| format!("cannot sync {}: {e}", parent.display()))?;
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

/// Fill `dir` with the staged artefacts (re-hashed while copied), the checksums, the
/// signature and the release record.
fn build(dir: &Path, record: &Record, staged: &Staged) -> Result<(), String> {
    for a in &staged.artefacts {
        let dst = dir.join(&a.release_path);
        let (sha, size) = copy_and_hash(&staged.path_of(a), &dst).map_err(|e| e.to_string())?;
        if sha != a.sha256 || size != a.size {
            return Err(format!(
                "staged {} no longer matches its digest (found {sha}); nothing was published",
                a.release_path
            ));
        }
    }
    let sums = fs::read(staged.dir.join("SHA256SUMS"))
        .map_err(|e| format!("cannot read staged SHA256SUMS: {e}"))?;
    if sums != staged.sums {
        return Err("staged SHA256SUMS changed; nothing was published".into());
    }
    write_file(&dir.join("SHA256SUMS"), &sums)?;
    let sig = fs::read(staged.dir.join("SHA256SUMS.sig"))
        .map_err(|e| format!("cannot read SHA256SUMS.sig (did the sign gate run?): {e}"))?;
    write_file(&dir.join("SHA256SUMS.sig"), &sig)?;
    copy_record(&record.dir, &dir.join(AUDIT_DIR))?;
    sync_tree(dir)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    crate::stage::write_synced(path, bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Copy the release record into `to`: the log, its checkpoints, and exactly the files the log
/// accounts for ([`crate::audit`]) — no staged copies, lock or torn-line leftovers, no
/// sign-off handed in after the signoff gate read the folder, no evidence of a run killed before
/// its verdict. Replay of the published release refuses anything else in `audit/`.
pub fn copy_record(from: &Path, to: &Path) -> Result<(), String> {
    let log_bytes = crate::record::read_capped(&from.join(LOG_FILE), crate::replay::MAX_LOG_BYTES)
        .map_err(|e| format!("cannot read the release log: {e}"))?;
    let (entries, _) = log::read_log(&log_bytes).map_err(|e| e.to_string())?;
    let files = crate::audit::list_files(from)?;
    let evidence: std::collections::BTreeSet<&str> = files
        .iter()
        .filter_map(|f| f.strip_prefix(&format!("{EVIDENCE_DIR}/")))
        .collect();
    let accounted =
        crate::audit::accounted(&entries, &Record::new(from), &|d| evidence.contains(d))?;
    fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    for rel in &files {
        if !Accounted::is_structural(rel, &files) {
            if !Accounted::may_cover(rel) {
                continue;
            }
            let digest = crate::audit::file_digest(from, rel)?;
            if !accounted.covers(rel, &digest) {
                continue;
            }
        }
        let src = from.join(rel);
        let bytes = crate::record::read_capped(&src, crate::record::MAX_EVIDENCE_BYTES)
            .map_err(|e| format!("cannot read {}: {e}", src.display()))?;
        let dst = to.join(rel);
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        write_file(&dst, &bytes)?;
    }
    Ok(())
}

/// fsync every folder below `dir`, deepest first.
fn sync_tree(dir: &Path) -> Result<(), String> {
    let mut dirs: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_dir())
        .map(|e| e.into_path())
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        sync_dir(&d).map_err(|e| format!("cannot sync {}: {e}", d.display()))?;
    }
    Ok(())
}

/// rename(2) that fails with `AlreadyExists` instead of replacing `to`.
#[allow(unsafe_code)]
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
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
