//! Copying one artefact into staging while hashing it in the same read, as fast as the
//! machine hashes (see docs/benchmarks.md).

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{FileId, StageError};

/// Bytes per read. Larger chunks mean fewer syscalls and larger direct writes for the disk;
/// 2 MiB × [`BUFFERS`] keeps a copy's memory at 8 MiB whatever the file's size.
pub(super) const CHUNK: usize = 2 << 20;
/// Chunks in flight per copy: one being read, the others being hashed and written.
const BUFFERS: usize = 4;
/// Threads writing one copy. A direct write returns only once the device has the data, so
/// one writer leaves the disk idle between chunks; two keep a write queued (measured: one
/// stream of 2 MiB direct writes reached about 1 GiB/s, two about 1.7 GiB/s).
const WRITERS: usize = 2;
/// Direct I/O wants the buffer address, the file offset and the length aligned to the
/// device's logical block size; 4096 covers every common one.
pub(super) const ALIGN: usize = 4096;
/// Copies at once in [`stage`]: each holds `CHUNK * BUFFERS` of memory and two threads, and
/// more parallel writers than this only queue at the disk.
pub(super) const MAX_WORKERS: usize = 4;

/// Copy `src` to `dst` and hash the bytes in the same read. Returns (hex digest, size).
///
/// Speed: SHA-256 runs at about the speed a page-cached file can be read, so a loop that
/// reads, hashes, then writes spends the write time on top of the hash time. Above one chunk
/// the copy is therefore pipelined: this thread reads each chunk once, a second thread hashes
/// it while two more write the very same (shared, immutable) buffer; buffers are reused
/// through small bounded channels. The write uses `O_DIRECT` where the filesystem allows it: the
/// bytes go straight from our buffer to the disk instead of into a second gigabyte of page
/// cache, which on the measured machine was both the slowest part of a buffered copy and what
/// made the final fsync long (see docs/benchmarks.md). The final `sync_all` stays: it flushes
/// the device cache and the file's metadata.
pub fn copy_and_hash(src: &Path, dst: &Path) -> Result<(String, u64), StageError> {
    copy_hash_and_stat(src, dst).map(|(digest, size, _)| (digest, size))
}

/// [`copy_and_hash`], and the copy's [`FileId`] as it stood once every byte was written and
/// synced, taken from the descriptor that wrote it (a path could name another file by then).
pub fn copy_hash_and_stat(src: &Path, dst: &Path) -> Result<(String, u64, FileId), StageError> {
    let ioerr = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StageError::Io { path, source }
    };
    let input = open_nofollow(src).map_err(ioerr(src))?;
    let before = input.metadata().map_err(ioerr(src))?;
    if let Some(parent) = dst.parent() {
        fs::create_dir_all(parent).map_err(ioerr(parent))?;
    }
    let output = fs::File::create(dst).map_err(ioerr(dst))?;
    // Read at most one byte more than the size seen at open: a file that keeps growing is
    // caught as changed at once instead of being chased forever (endless data).
    let mut input = Read::take(input, before.len().saturating_add(1));
    let (digest, size) = if before.len() <= CHUNK as u64 {
        copy_small(&mut input, &output).map_err(|e| e.at(src, dst))?
    } else {
        let direct = open_direct(dst);
        copy_pipelined(&mut input, &output, direct).map_err(|e| e.at(src, dst))?
    };
    output.sync_all().map_err(ioerr(dst))?;
    if size != before.len() {
        return Err(StageError::Changed {
            path: src.to_path_buf(),
        });
    }
    let id = FileId::of(&output.metadata().map_err(ioerr(dst))?);
    Ok((digest, size, id))
}

/// Which side of a copy failed.
enum CopyError {
    Read(std::io::Error),
    Write(std::io::Error),
}

impl CopyError {
    fn at(self, src: &Path, dst: &Path) -> StageError {
        match self {
            CopyError::Read(source) => StageError::Io {
                path: src.to_path_buf(),
                source,
            },
            CopyError::Write(source) => StageError::Io {
                path: dst.to_path_buf(),
                source,
            },
        }
    }
}

/// A second handle on `dst` that bypasses the page cache, if the filesystem supports it.
fn open_direct(dst: &Path) -> Option<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(dst)
        .ok()
}

/// Fill `buf` unless the file ends first; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> Result<usize, CopyError> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        }
    }
    Ok(n)
}

/// A file that fits one chunk: one read, one hash, one buffered write.
fn copy_small(input: &mut impl Read, output: &fs::File) -> Result<(String, u64), CopyError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    let mut out = output;
    loop {
        let n = read_full(input, &mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(CopyError::Write)?;
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// A chunk buffer whose data starts at an `ALIGN`ed address (for `O_DIRECT`), found inside
/// an ordinary allocation so that no unsafe code is needed.
struct Chunk {
    mem: Vec<u8>,
    start: usize,
    len: usize,
}

impl Chunk {
    fn new() -> Chunk {
        let mem = vec![0u8; CHUNK + ALIGN];
        // align_offset may only fail for exotic pointers; then the chunk is just unaligned
        // and its writes take the buffered path.
        let start = mem.as_ptr().align_offset(ALIGN).min(ALIGN);
        Chunk { mem, start, len: 0 }
    }

    fn space(&mut self) -> &mut [u8] {
        &mut self.mem[self.start..self.start + CHUNK]
    }

    fn data(&self) -> &[u8] {
        &self.mem[self.start..self.start + self.len]
    }

    fn aligned(&self) -> bool {
        (self.data().as_ptr() as usize).is_multiple_of(ALIGN) && self.len.is_multiple_of(ALIGN)
    }
}

/// Read on this thread, hash on another, and write on [`WRITERS`] more, each chunk at its
/// offset: through `direct` while chunk and offset are aligned (all but a short last chunk),
/// else through `output`. A chunk goes back to the reader once both its hash and its write are
/// done (whoever drops the second-last handle sends it; the reader keeps only the last).
fn copy_pipelined(
    input: &mut (impl Read + Send),
    output: &fs::File,
    direct: Option<fs::File>,
) -> Result<(String, u64), CopyError> {
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::sync_channel;
    use std::sync::{Arc, Mutex};

    let stopped = || CopyError::Read(std::io::Error::other("a copying thread stopped"));
    let (to_hasher, hasher_rx) = sync_channel::<Arc<Chunk>>(BUFFERS);
    let (to_writers, writers_rx) = sync_channel::<(u64, Arc<Chunk>)>(BUFFERS);
    let writers_rx = Mutex::new(writers_rx);
    // Every chunk comes back twice (from the hasher and from a writer): room for all.
    let (back, returned) = sync_channel::<Arc<Chunk>>(2 * BUFFERS);
    let direct_ok = AtomicBool::new(direct.is_some());
    let failed: Mutex<Option<std::io::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        let back_h = back.clone();
        let hasher = s.spawn(move || {
            let mut hasher = Sha256::new();
            for chunk in hasher_rx {
                hasher.update(chunk.data());
                // The reader may be gone after an error; the chunk is then simply dropped.
                let _ = back_h.send(chunk);
            }
            hex::encode(hasher.finalize())
        });
        for _ in 0..WRITERS {
            let back = back.clone();
            let (rx, direct, direct_ok, failed) = (&writers_rx, &direct, &direct_ok, &failed);
            s.spawn(move || {
                loop {
                    let next = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => break,
                    };
                    let Ok((offset, chunk)) = next else { break };
                    let mut result = Err(std::io::Error::other("not written"));
                    if let Some(d) = direct
                        && direct_ok.load(Ordering::Relaxed)
                        && chunk.aligned()
                        && offset.is_multiple_of(ALIGN as u64)
                    {
                        result = d.write_all_at(chunk.data(), offset);
                        // The filesystem refuses direct writes after all: go buffered.
                        if matches!(&result, Err(e) if e.raw_os_error() == Some(libc::EINVAL)) {
                            direct_ok.store(false, Ordering::Relaxed);
                        }
                    }
                    if matches!(&result, Err(e) if e.raw_os_error().is_none_or(|c| c == libc::EINVAL))
                    {
                        result = output.write_all_at(chunk.data(), offset);
                    }
                    if let Err(e) = result
                        && let Ok(mut f) = failed.lock()
                    {
                        f.get_or_insert(e);
                    }
                    let _ = back.send(chunk);
                }
            });
        }
        drop(back);
        let copied = (|| {
            let mut fresh = BUFFERS;
            let mut size = 0u64;
            loop {
                if let Ok(mut f) = failed.lock()
                    && let Some(e) = f.take()
                {
                    return Err(CopyError::Write(e));
                }
                let mut chunk = if fresh > 0 {
                    fresh -= 1;
                    Chunk::new()
                } else {
                    // Wait for a chunk that both the hasher and its writer are done with.
                    loop {
                        if let Ok(c) = Arc::try_unwrap(returned.recv().map_err(|_| stopped())?) {
                            break c;
                        }
                    }
                };
                let n = read_full(input, chunk.space())?;
                if n == 0 {
                    return Ok(size);
                }
                chunk.len = n;
                let chunk = Arc::new(chunk);
                to_hasher.send(chunk.clone()).map_err(|_| stopped())?;
                to_writers.send((size, chunk)).map_err(|_| stopped())?;
                size += n as u64;
            }
        })();
        drop(to_hasher);
        drop(to_writers);
        let digest = hasher.join().map_err(|_| stopped())?;
        // The scope joins the writers; only then is every write done and `failed` final.
        Ok::<_, CopyError>((digest, copied))
    })
    .and_then(|(digest, copied)| {
        let size = copied?;
        match failed.into_inner().ok().flatten() {
            Some(e) => Err(CopyError::Write(e)),
            None => Ok((digest, size)),
        }
    })
}

fn open_nofollow(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_copies_take_the_pipelined_path_and_keep_every_byte() {
        let t = tempfile::tempdir().unwrap();
        // Several chunks and an unaligned tail: direct writes for the body, buffered for the
        // tail; and a size of exactly one chunk, which still takes the small path.
        for size in [CHUNK * 2 + ALIGN * 3 + 123, CHUNK, CHUNK + 1] {
            let bytes: Vec<u8> = (0..size).map(|i| (i * 7 + i / 4093) as u8).collect();
            let src = t.path().join(format!("src-{size}"));
            let dst = t.path().join(format!("out/dst-{size}"));
            fs::write(&src, &bytes).unwrap();
            let (digest, n) = copy_and_hash(&src, &dst).unwrap();
            assert_eq!(n, size as u64);
            assert_eq!(digest, crate::digest::sha256_hex(&bytes));
            assert!(
                fs::read(&dst).unwrap() == bytes,
                "copy of {size} bytes differs"
            );
        }
    }

    #[test]
    fn the_copy_is_described_as_it_was_left() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        let dst = t.path().join("dst");
        fs::write(&src, vec![7u8; CHUNK + 5]).unwrap();
        let (_, size, id) = copy_hash_and_stat(&src, &dst).unwrap();
        let now = fs::symlink_metadata(&dst).unwrap();
        assert_eq!(FileId::of(&now), id);
        assert_eq!((id.size, id.nlink), (size, 1));
    }
}
