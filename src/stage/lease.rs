//! A read lease on a staged file: the proof, beside its unchanged identity, that nobody has
//! written it since staging hashed it, and that nobody starts to while we hold it. Publishing
//! rests on it to move a staged copy into a local release, or to upload one, without hashing
//! it again (docs/publish.md).

use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use super::FileId;

/// Open a staged file for reading: no link followed, and never waiting on a FIFO planted in
/// the record.
pub fn open_read_only(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

/// `file` is still the staged file `id` names — the same inode, size and times, and the only
/// name it has — and nobody holds it open for writing: a lease is then held on it until the
/// returned value is dropped. `None` when that cannot be shown; the caller hashes the bytes.
pub fn vouch<'a>(file: &'a fs::File, id: &FileId) -> Option<Lease<'a>> {
    let meta = file.metadata().ok()?;
    if !meta.is_file() || id.nlink != 1 || FileId::of(&meta) != *id {
        return None;
    }
    let lease = Lease::take(file)?;
    // Written between the look and the lease? Then the identity no longer matches.
    let meta = file.metadata().ok()?;
    (FileId::of(&meta) == *id).then_some(lease)
}

/// A read lease on a file we own (`fcntl(F_SETLEASE, F_RDLCK)`): granted only while no
/// descriptor anywhere on this machine has the file open for writing, and broken by anyone
/// who opens it for writing while it is held (their `open` waits until we let go).
pub struct Lease<'a> {
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
    pub fn take(file: &'a fs::File) -> Option<Lease<'a>> {
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
    pub fn take(_file: &'a fs::File) -> Option<Lease<'a>> {
        None
    }

    /// Still held: nobody has tried to open the file for writing since it was taken (during
    /// a break the lease reads as what it is being broken to).
    #[expect(unsafe_code, reason = "fcntl lease calls have no safe wrapper")]
    pub fn unbroken(&self) -> bool {
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
