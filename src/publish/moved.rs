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
    let Ok(file) = open_read_only(staged) else {
        return Ok(None);
    };
    let Ok(meta) = file.metadata() else {
        return Ok(None);
    };
    if !meta.is_file() || id.nlink != 1 || FileId::of(&meta) != *id {
        return Ok(None);
    }
    let Some(lease) = Lease::take(&file) else {
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

fn open_read_only(path: &Path) -> std::io::Result<fs::File> {
    // No link followed, and never waiting on a FIFO planted in the record.
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
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

/// A read lease on a file we own (`fcntl(F_SETLEASE, F_RDLCK)`): granted only while no
/// descriptor anywhere on this machine has the file open for writing, and broken by anyone
/// who opens it for writing while it is held (their `open` waits until we let go).
struct Lease<'a> {
    file: &'a fs::File,
}

/// `F_SETSIG` (asm-generic/fcntl.h; the libc crate does not export it for glibc targets).
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64",
    target_arch = "powerpc64",
    target_arch = "s390x",
    target_arch = "loongarch64"
))]
const F_SETSIG: libc::c_int = 10;

impl<'a> Lease<'a> {
    /// `None` where the filesystem or the system does not grant leases, or someone has the file
    /// open for writing.
    #[cfg(any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "riscv64",
        target_arch = "powerpc64",
        target_arch = "s390x",
        target_arch = "loongarch64"
    ))]
    #[expect(unsafe_code, reason = "fcntl lease calls have no safe wrapper")]
    fn take(file: &'a fs::File) -> Option<Lease<'a>> {
        let fd = file.as_raw_fd();
        // A lease break is announced by a signal, SIGIO unless told otherwise, and SIGIO ends
        // the process. SIGURG is ignored unless handled: the break is read with F_GETLEASE.
        // SAFETY: fcntl on a descriptor we own, with integer arguments only.
        if unsafe { libc::fcntl(fd, F_SETSIG, libc::SIGURG) } != 0 {
            return None;
        }
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) } != 0 {
            return None;
        }
        Some(Lease { file })
    }

    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "riscv64",
        target_arch = "powerpc64",
        target_arch = "s390x",
        target_arch = "loongarch64"
    )))]
    fn take(_file: &'a fs::File) -> Option<Lease<'a>> {
        None
    }

    /// Still held: nobody has tried to open the file for writing since it was taken (during
    /// a break the lease reads as what it is being broken to).
    #[expect(unsafe_code, reason = "fcntl lease calls have no safe wrapper")]
    fn unbroken(&self) -> bool {
        // SAFETY: fcntl on a descriptor we own, no arguments.
        unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_GETLEASE) == libc::F_RDLCK }
    }
}

impl Drop for Lease<'_> {
    #[expect(unsafe_code, reason = "fcntl lease calls have no safe wrapper")]
    fn drop(&mut self) {
        // Closing the descriptor would release it too; a writer waiting on the break goes on.
        // SAFETY: fcntl on a descriptor we own, with integer arguments only.
        unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK) };
    }
}
