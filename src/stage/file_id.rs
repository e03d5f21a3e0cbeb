//! What a staged copy was the moment staging finished writing it, so that publishing can tell
//! later, without reading its bytes again, that it is still that very file, unwritten since.

use std::os::unix::fs::MetadataExt;

/// The identity and last-change times of a file, from one `fstat` of the descriptor that
/// wrote it.
///
/// Any write, truncation, `chmod`, `chown` or new hard link changes `ctime`, which a caller
/// cannot set back (only the system clock can); a write changes `mtime` too, and a replaced
/// file has another inode. Since Linux 6.13 ext4, xfs, btrfs and tmpfs give a change after
/// a timestamp was looked at a fresh fine-grained time ("multigrain" timestamps), so even a
/// write in the same clock tick as the last one staging made shows; older kernels stamp at
/// the timer tick (a few milliseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub nlink: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl FileId {
    pub fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            nlink: meta.nlink(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The same file (device and inode).
    pub fn same_file(&self, meta: &std::fs::Metadata) -> bool {
        self.dev == meta.dev() && self.ino == meta.ino()
    }
}
