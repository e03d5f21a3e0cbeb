//! Artefacts: resolving the pipeline's globs to files with release paths, and staging them
//! (copy into the release record and hash in the same read), then `SHA256SUMS` and the subject.

use std::fs;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One artefact file found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtefactFile {
    /// The glob (as written) that matched it.
    pub pattern: String,
    /// Path below the pipeline root.
    pub source: PathBuf,
    /// Path below the glob's fixed prefix, `/`-separated.
    pub release_path: String,
}

/// A problem resolving the artefact globs. Each is a configuration error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveProblem {
    #[error("glob {pattern:?} is not valid: {message}")]
    BadGlob { pattern: String, message: String },
    #[error("glob {pattern:?} leaves the pipeline folder")]
    Escapes { pattern: String },
    #[error("glob {pattern:?} matches no regular file")]
    NoMatch { pattern: String },
    #[error("{path} is a symbolic link (matched by {pattern:?}); artefacts must be regular files")]
    Symlink { pattern: String, path: String },
    #[error("{path}: the name holds a backslash, CR, LF or non-UTF-8 bytes")]
    BadName { pattern: String, path: String },
    #[error("{first} and {second} have the same release path {release_path:?}")]
    Collision {
        pattern: String,
        release_path: String,
        first: String,
        second: String,
    },
    #[error("cannot read {path}: {message}")]
    Io {
        pattern: String,
        path: String,
        message: String,
    },
}

impl ResolveProblem {
    /// The glob the problem belongs to, to point a diagnostic at it.
    pub fn pattern(&self) -> &str {
        match self {
            ResolveProblem::BadGlob { pattern, .. }
            | ResolveProblem::Escapes { pattern }
            | ResolveProblem::NoMatch { pattern }
            | ResolveProblem::Symlink { pattern, .. }
            | ResolveProblem::BadName { pattern, .. }
            | ResolveProblem::Collision { pattern, .. }
            | ResolveProblem::Io { pattern, .. } => pattern,
        }
    }
}

fn has_glob_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

/// Split a glob into its fixed folder prefix and the rest.
fn fixed_prefix(pattern: &str) -> (String, String) {
    let parts: Vec<&str> = pattern.split('/').collect();
    let n = parts
        .iter()
        .position(|p| has_glob_meta(p))
        .unwrap_or(parts.len().saturating_sub(1));
    (parts[..n].join("/"), parts[n..].join("/"))
}

/// Resolve every glob below `root`. Returns all problems at once.
pub fn resolve(root: &Path, patterns: &[String]) -> Result<Vec<ArtefactFile>, Vec<ResolveProblem>> {
    let mut files: Vec<ArtefactFile> = Vec::new();
    let mut problems = Vec::new();
    for pattern in patterns {
        match resolve_one(root, pattern) {
            Ok(found) => files.extend(found),
            Err(mut p) => problems.append(&mut p),
        }
    }
    // The same file matched by two globs with the same release path is one artefact.
    files.sort_by(|a, b| {
        a.release_path
            .cmp(&b.release_path)
            .then(a.source.cmp(&b.source))
    });
    files.dedup_by(|a, b| a.release_path == b.release_path && a.source == b.source);
    for pair in files.windows(2) {
        if pair[0].release_path == pair[1].release_path {
            problems.push(ResolveProblem::Collision {
                pattern: pair[1].pattern.clone(),
                release_path: pair[1].release_path.clone(),
                first: pair[0].source.display().to_string(),
                second: pair[1].source.display().to_string(),
            });
        }
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(problems)
    }
}

fn resolve_one(root: &Path, pattern: &str) -> Result<Vec<ArtefactFile>, Vec<ResolveProblem>> {
    let p = || pattern.to_string();
    let as_path = Path::new(pattern);
    if as_path.is_absolute()
        || as_path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
    {
        return Err(vec![ResolveProblem::Escapes { pattern: p() }]);
    }
    let glob = globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| {
            vec![ResolveProblem::BadGlob {
                pattern: p(),
                message: e.kind().to_string(),
            }]
        })?
        .compile_matcher();
    let (prefix, _) = fixed_prefix(pattern);
    let base = if prefix.is_empty() {
        root.to_path_buf()
    } else {
        root.join(&prefix)
    };
    // A symlinked prefix folder would let the glob read outside the pipeline folder.
    let mut walked = PathBuf::new();
    for comp in Path::new(&prefix).components() {
        walked.push(comp);
        if let Ok(md) = fs::symlink_metadata(root.join(&walked))
            && md.file_type().is_symlink()
        {
            return Err(vec![ResolveProblem::Symlink {
                pattern: p(),
                path: walked.display().to_string(),
            }]);
        }
    }
    let mut out = Vec::new();
    let mut problems = Vec::new();
    if base.is_dir() {
        for entry in walkdir::WalkDir::new(&base)
            .follow_links(false)
            .sort_by_file_name()
        {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    problems.push(ResolveProblem::Io {
                        pattern: p(),
                        path: e
                            .path()
                            .map(|x| x.display().to_string())
                            .unwrap_or_default(),
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            let Ok(rel) = entry.path().strip_prefix(root) else {
                continue;
            };
            let Some(rel_str) = rel.to_str() else {
                problems.push(ResolveProblem::BadName {
                    pattern: p(),
                    path: rel.display().to_string(),
                });
                continue;
            };
            if !glob.is_match(rel_str) {
                continue;
            }
            let ft = entry.file_type();
            if ft.is_symlink() {
                problems.push(ResolveProblem::Symlink {
                    pattern: p(),
                    path: rel_str.to_string(),
                });
                continue;
            }
            if !ft.is_file() {
                continue;
            }
            if rel_str.contains(['\\', '\r', '\n']) {
                problems.push(ResolveProblem::BadName {
                    pattern: p(),
                    path: rel_str.to_string(),
                });
                continue;
            }
            let release_path = if prefix.is_empty() {
                rel_str.to_string()
            } else {
                rel_str[prefix.len()..].trim_start_matches('/').to_string()
            };
            out.push(ArtefactFile {
                pattern: p(),
                source: rel.to_path_buf(),
                release_path,
            });
        }
    } else if base.is_file() && glob.is_match(pattern) {
        // A glob without metacharacters names one file; its release path is its file name.
        let md = fs::symlink_metadata(&base);
        if md.map(|m| m.file_type().is_symlink()).unwrap_or(false) {
            problems.push(ResolveProblem::Symlink {
                pattern: p(),
                path: pattern.to_string(),
            });
        }
    }
    if !has_glob_meta(pattern) && out.is_empty() && problems.is_empty() {
        // A plain file path: the "prefix" is its folder.
        let full = root.join(pattern);
        match fs::symlink_metadata(&full) {
            Ok(md) if md.file_type().is_symlink() => problems.push(ResolveProblem::Symlink {
                pattern: p(),
                path: pattern.to_string(),
            }),
            Ok(md) if md.is_file() => {
                let name = pattern.rsplit('/').next().unwrap_or(pattern).to_string();
                if name.contains(['\\', '\r', '\n']) {
                    problems.push(ResolveProblem::BadName {
                        pattern: p(),
                        path: pattern.to_string(),
                    });
                } else {
                    out.push(ArtefactFile {
                        pattern: p(),
                        source: PathBuf::from(pattern),
                        release_path: name,
                    });
                }
            }
            _ => {}
        }
    }
    if out.is_empty() && problems.is_empty() {
        problems.push(ResolveProblem::NoMatch { pattern: p() });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// One staged artefact.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StagedArtefact {
    pub release_path: String,
    pub sha256: String,
    pub size: u64,
}

/// The staged set: the bytes every later step concerns.
#[derive(Clone, Debug)]
pub struct Staged {
    /// Folder holding the staged copies at their release paths, and `SHA256SUMS`.
    pub dir: PathBuf,
    pub artefacts: Vec<StagedArtefact>,
    /// The exact bytes of `SHA256SUMS`.
    pub sums: Vec<u8>,
    /// `sha256:<hex>` of `sums`.
    pub subject: String,
}

impl Staged {
    pub fn path_of(&self, a: &StagedArtefact) -> PathBuf {
        self.dir.join(&a.release_path)
    }

    pub fn subject_hex(&self) -> &str {
        self.subject.trim_start_matches("sha256:")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("cannot stage {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} changed while it was being staged")]
    Changed { path: PathBuf },
}

/// `SHA256SUMS` in GNU format: sorted by release path, two spaces, LF.
pub fn sums_text(artefacts: &[StagedArtefact]) -> Vec<u8> {
    let mut sorted: Vec<&StagedArtefact> = artefacts.iter().collect();
    sorted.sort_by(|a, b| a.release_path.cmp(&b.release_path));
    let mut out = String::new();
    for a in sorted {
        out.push_str(&a.sha256);
        out.push_str("  ");
        out.push_str(&a.release_path);
        out.push('\n');
    }
    out.into_bytes()
}

/// Bytes per read. Larger chunks mean fewer syscalls and larger direct writes for the disk;
/// 2 MiB × [`BUFFERS`] keeps a copy's memory at 8 MiB whatever the file's size.
const CHUNK: usize = 2 << 20;
/// Chunks in flight per copy: one being read, the others being hashed and written.
const BUFFERS: usize = 4;
/// Threads writing one copy. A direct write returns only once the device has the data, so
/// one writer leaves the disk idle between chunks; two keep a write queued (measured: one
/// stream of 2 MiB direct writes reached about 1 GiB/s, two about 1.7 GiB/s).
const WRITERS: usize = 2;
/// Direct I/O wants the buffer address, the file offset and the length aligned to the
/// device's logical block size; 4096 covers every common one.
const ALIGN: usize = 4096;
/// Copies at once in [`stage`]: each holds `CHUNK * BUFFERS` of memory and two threads, and
/// more parallel writers than this only queue at the disk.
const MAX_WORKERS: usize = 4;

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
    Ok((digest, size))
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

/// Stage `files` (paths relative to `root`) into `dir`, using up to `workers` threads.
/// `dir` must not exist yet; it is created. Returns the staged set with `SHA256SUMS` written.
pub fn stage(
    root: &Path,
    files: &[ArtefactFile],
    dir: &Path,
    workers: usize,
) -> Result<Staged, StageError> {
    fs::create_dir_all(dir).map_err(|source| StageError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    type Slot = std::sync::Mutex<Option<Result<(String, u64), StageError>>>;
    let results: Vec<Slot> = files.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let workers = workers.clamp(1, files.len().clamp(1, MAX_WORKERS));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(f) = files.get(i) else { break };
                    let r = copy_and_hash(&root.join(&f.source), &dir.join(&f.release_path));
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    let mut artefacts = Vec::with_capacity(files.len());
    for (f, slot) in files.iter().zip(results) {
        let r = slot.into_inner().ok().flatten().unwrap_or_else(|| {
            Err(StageError::Changed {
                path: f.source.clone(),
            })
        });
        let (sha256, size) = r?;
        artefacts.push(StagedArtefact {
            release_path: f.release_path.clone(),
            sha256,
            size,
        });
    }
    artefacts.sort_by(|a, b| a.release_path.cmp(&b.release_path));
    let sums = sums_text(&artefacts);
    let subject = format!("sha256:{}", crate::digest::sha256_hex(&sums));
    let sums_path = dir.join("SHA256SUMS");
    write_synced(&sums_path, &sums).map_err(|source| StageError::Io {
        path: sums_path.clone(),
        source,
    })?;
    Ok(Staged {
        dir: dir.to_path_buf(),
        artefacts,
        sums,
        subject,
    })
}

/// Write a file and fsync it.
pub fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_prefix_splits_at_first_meta() {
        assert_eq!(
            fixed_prefix("dist/*.tar.gz"),
            ("dist".into(), "*.tar.gz".into())
        );
        assert_eq!(
            fixed_prefix("out/**/*.bin"),
            ("out".into(), "**/*.bin".into())
        );
        assert_eq!(fixed_prefix("*.zip"), ("".into(), "*.zip".into()));
    }

    #[test]
    fn release_paths_follow_the_glob_prefix() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("out/linux")).unwrap();
        fs::write(t.path().join("out/linux/x.bin"), b"x").unwrap();
        fs::write(t.path().join("out/y.bin"), b"y").unwrap();
        let got = resolve(t.path(), &["out/**/*.bin".into()]).unwrap();
        let names: Vec<_> = got.iter().map(|f| f.release_path.as_str()).collect();
        assert_eq!(names, ["linux/x.bin", "y.bin"]);
    }

    #[test]
    fn symlinks_and_escapes_and_collisions_are_problems() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("a")).unwrap();
        fs::create_dir_all(t.path().join("b")).unwrap();
        fs::write(t.path().join("a/x.txt"), b"1").unwrap();
        fs::write(t.path().join("b/x.txt"), b"2").unwrap();
        fs::create_dir_all(t.path().join("s")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", t.path().join("s/p.txt")).unwrap();
        let err = resolve(
            t.path(),
            &[
                "a/*.txt".into(),
                "b/*.txt".into(),
                "s/*.txt".into(),
                "../*.txt".into(),
                "c/*.z".into(),
            ],
        )
        .unwrap_err();
        assert!(
            err.iter()
                .any(|p| matches!(p, ResolveProblem::Symlink { .. })),
            "{err:?}"
        );
        assert!(
            err.iter()
                .any(|p| matches!(p, ResolveProblem::Escapes { .. })),
            "{err:?}"
        );
        assert!(
            err.iter()
                .any(|p| matches!(p, ResolveProblem::Collision { .. })),
            "{err:?}"
        );
        assert!(
            err.iter()
                .any(|p| matches!(p, ResolveProblem::NoMatch { .. })),
            "{err:?}"
        );
    }

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
    fn sums_are_sorted_gnu_lines() {
        let a = StagedArtefact {
            release_path: "b".into(),
            sha256: "1".repeat(64),
            size: 1,
        };
        let b = StagedArtefact {
            release_path: "a".into(),
            sha256: "2".repeat(64),
            size: 1,
        };
        let text = String::from_utf8(sums_text(&[a, b])).unwrap();
        assert_eq!(
            text,
            format!("{}  a\n{}  b\n", "2".repeat(64), "1".repeat(64))
        );
    }
}
