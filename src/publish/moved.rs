//! Taking a staged copy into a local release without writing its bytes again: moved with
//! `rename(2)`, or where only a reflink crosses (two mounts of one filesystem, btrfs
//! subvolumes) shared with `FICLONE`, when it provably is still the file staging wrote and
//! hashed. Otherwise the caller copies it and hashes it again on the way. docs/publish.md
//! says why this is safe and what it rests on.

use std::fs;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use super::PublishError;
use crate::stage::FileId;

/// How a staged copy got into the release without a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Taken {
    Moved,
    Cloned,
}

/// Put the staged copy `staged` of `release_path` at `dst`, a new name in the folder being
/// built, without copying it — if it is still the file staging left (`id`): the same inode,
/// size and times, so unwritten and not linked anew since, and nobody holds it open for
/// writing (a read lease can be had only then, and is broken by anyone opening it for writing
/// while we hold it). `Ok(None)`: it may not be, or the filesystem cannot move or clone it
/// here; the caller then copies and hashes it. `Err`: it was moved but something opened or
/// replaced it meanwhile; the folder being built must not be published.
pub(super) fn take(
    staged: &Path,
    dst: &Path,
    id: &FileId,
    release_path: &str,
) -> Result<Option<Taken>, PublishError> {
    let Ok(file) = crate::stage::open_read_only(staged) else {
        return Ok(None);
    };
    let Some(lease) = crate::stage::vouch(&file, id) else {
        return Ok(None);
    };
    let taken = match super::local::rename_noreplace(staged, dst) {
        Ok(()) => Taken::Moved,
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => match clone_into(&file, dst) {
            Ok(true) => Taken::Cloned,
            Ok(false) => return Ok(None),
            Err(e) => return Err(PublishError::io("clone into", dst)(e)),
        },
        Err(_) => return Ok(None),
    };
    let touched = |what| PublishError::StagedTouched {
        path: release_path.to_string(),
        what,
    };
    if !lease.unbroken() {
        return Err(touched("was opened for writing"));
    }
    // The name in the release must be the file vetted above: the staged path could have been
    // swapped for another file between the open and the rename.
    let placed = fs::symlink_metadata(dst).map_err(PublishError::io("look at", dst))?;
    let now = file
        .metadata()
        .map_err(PublishError::io("look at", staged))?;
    let same = match taken {
        // A rename changes the file's ctime, nothing else.
        Taken::Moved => {
            id.same_file(&placed)
                && id.same_file(&now)
                && now.len() == id.size
                && now.nlink() == 1
                && (now.mtime(), now.mtime_nsec()) == id.mtime
        }
        Taken::Cloned => FileId::of(&now) == *id && placed.len() == id.size,
    };
    if !same {
        return Err(touched("changed"));
    }
    // Staging synced the bytes; this makes sure of them where they now are (cheap when clean).
    match taken {
        Taken::Moved => file.sync_all().map_err(PublishError::io("sync", dst))?,
        Taken::Cloned => fs::File::open(dst)
            .and_then(|f| f.sync_all())
            .map_err(PublishError::io("sync", dst))?,
    }
    drop(lease);
    Ok(Some(taken))
}

/// Share `src`'s blocks with a new file at `dst` (copy on write). `Ok(false)` where the
/// filesystem cannot (ext4, tmpfs, another filesystem); nothing is left at `dst` then.
#[expect(unsafe_code, reason = "the FICLONE ioctl has no safe wrapper")]
fn clone_into(src: &fs::File, dst: &Path) -> std::io::Result<bool> {
    // 0o666 less the umask, as a copy made with `File::create` would be.
    let out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(dst)?;
    // SAFETY: both are descriptors we own and keep open across the call; FICLONE takes the
    // source descriptor as its integer argument and no pointer.
    let rc = unsafe { libc::ioctl(out.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) };
    if rc != 0 {
        drop(out);
        fs::remove_file(dst)?;
        return Ok(false);
    }
    Ok(true)
}
