//! Request bodies: streamed in small chunks, hashed while read, with their progress watched.
//!
//! A staged file is sent with the digest staging recorded (signed as the payload hash, so a
//! real S3 refuses other bytes too). The stream holds back its last chunk until the whole file
//! has been read and hashed: if a staged byte changed, the body ends short with an error, and
//! the server, missing bytes of the announced length, stores nothing.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

/// How much is read and sent at a time.
const CHUNK: usize = 64 << 10;

/// What a request carries.
#[derive(Clone, Debug)]
pub enum Payload {
    Empty,
    /// Bytes in memory (a part of a multipart upload, a small file, an XML document).
    Bytes {
        bytes: Bytes,
        sha256: String,
    },
    /// A whole file whose size and SHA-256 are known beforehand.
    File {
        path: PathBuf,
        size: u64,
        sha256: String,
    },
}

impl Payload {
    pub fn bytes(bytes: impl Into<Bytes>) -> Payload {
        let bytes = bytes.into();
        let sha256 = hex::encode(Sha256::digest(&bytes));
        Payload::Bytes { bytes, sha256 }
    }

    pub fn sha256_hex(&self) -> String {
        match self {
            Payload::Empty => super::sigv4::EMPTY_SHA256.to_string(),
            Payload::Bytes { sha256, .. } | Payload::File { sha256, .. } => sha256.clone(),
        }
    }

    /// The Content-Length to announce (none for a request without a body).
    pub fn content_length(&self) -> Option<u64> {
        match self {
            Payload::Empty => None,
            Payload::Bytes { bytes, .. } => Some(bytes.len() as u64),
            Payload::File { size, .. } => Some(*size),
        }
    }
}

/// How far a body has got, for the stall watchdog.
pub struct Progress {
    start: Instant,
    /// Milliseconds after `start` when a byte last moved (or the body ended).
    last_ms: AtomicU64,
    done: AtomicBool,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            done: AtomicBool::new(false),
        }
    }

    fn tick(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn finish(&self) {
        self.tick();
        self.done.store(true, Ordering::Relaxed);
    }

    /// Resolves when nothing has moved for `stall`: no chunk of the body taken while it is
    /// being sent, or no answer begun that long after the body ended. The HTTP client has no
    /// read timeout of its own (see `crate::http`), so this is what ends a stalled request.
    pub async fn watchdog(&self, stall: Duration) {
        let step = (stall / 4).max(Duration::from_millis(50));
        loop {
            tokio::time::sleep(step).await;
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            if self.start.elapsed().saturating_sub(last) > stall {
                return;
            }
        }
    }

    /// Has the whole body been taken?
    pub fn sent(&self) -> bool {
        self.done.load(Ordering::Relaxed)
    }
}

/// Where a body that cut itself off says why (the staged file's digest as found).
#[derive(Clone, Default)]
pub struct Failed(Arc<Mutex<Option<String>>>);

impl Failed {
    fn set(&self, why: String) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(why);
        }
    }

    pub fn take(&self) -> Option<String> {
        self.0.lock().ok().and_then(|mut g| g.take())
    }
}

/// The body for `payload`, and the slot where it reports a changed staged file.
pub fn make(
    payload: &Payload,
    progress: Arc<Progress>,
) -> Result<(Option<reqwest::Body>, Failed), super::S3Error> {
    let failed = Failed::default();
    progress.tick();
    match payload {
        Payload::Empty => {
            progress.finish();
            Ok((None, failed))
        }
        Payload::Bytes { bytes, .. } => {
            let stream = futures_util::stream::unfold(
                (bytes.clone(), progress),
                |(mut rest, progress)| async move {
                    if rest.is_empty() {
                        progress.finish();
                        return None;
                    }
                    let chunk = rest.split_to(rest.len().min(CHUNK));
                    progress.tick();
                    Some((Ok::<Bytes, std::io::Error>(chunk), (rest, progress)))
                },
            );
            Ok((Some(reqwest::Body::wrap_stream(stream)), failed))
        }
        Payload::File { path, size, sha256 } => {
            let file = std::fs::File::open(path).map_err(|source| super::S3Error::Io {
                path: path.clone(),
                source,
            })?;
            let state = FileState {
                file: tokio::fs::File::from_std(file),
                hasher: Sha256::new(),
                read: 0,
                size: *size,
                expect: sha256.clone(),
                held: None,
                finished: false,
                progress,
                failed: failed.clone(),
            };
            let stream = futures_util::stream::unfold(state, next_chunk);
            Ok((Some(reqwest::Body::wrap_stream(stream)), failed))
        }
    }
}

struct FileState {
    file: tokio::fs::File,
    hasher: Sha256,
    read: u64,
    size: u64,
    expect: String,
    /// The chunk read last, sent only once the next read shows the file is still as recorded.
    held: Option<Bytes>,
    finished: bool,
    progress: Arc<Progress>,
    failed: Failed,
}

async fn next_chunk(mut st: FileState) -> Option<(Result<Bytes, std::io::Error>, FileState)> {
    loop {
        if st.finished {
            return None;
        }
        let mut buf = vec![0u8; CHUNK];
        let n = match st.file.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                st.finished = true;
                return Some((Err(e), st));
            }
        };
        if n > 0 {
            buf.truncate(n);
            st.hasher.update(&buf);
            st.read += n as u64;
            if st.read > st.size {
                return Some(cut_off(st, "grew beyond its recorded size".into()));
            }
            if let Some(prev) = st.held.replace(Bytes::from(buf)) {
                st.progress.tick();
                return Some((Ok(prev), st));
            }
            continue;
        }
        let digest = hex::encode(st.hasher.finalize_reset());
        if st.read != st.size || digest != st.expect {
            return Some(cut_off(st, digest));
        }
        st.finished = true;
        st.progress.tick();
        st.progress.finish();
        return st.held.take().map(|last| (Ok(last), st));
    }
}

fn cut_off(mut st: FileState, found: String) -> (Result<Bytes, std::io::Error>, FileState) {
    st.finished = true;
    st.failed.set(found);
    (
        Err(std::io::Error::other(
            "the staged file changed; the upload is cut off",
        )),
        st,
    )
}

/// Read up to `len` bytes of `file` (less only at its end), feeding `whole` and returning the
/// part with its own SHA-256: one part of a multipart upload, the only thing held in memory.
pub async fn read_part(
    file: &mut tokio::fs::File,
    len: usize,
    whole: &mut Sha256,
) -> std::io::Result<Payload> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = file.read(&mut buf[got..]).await?;
        if n == 0 {
            break;
        }
        got += n;
    }
    buf.truncate(got);
    whole.update(&buf);
    Ok(Payload::bytes(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A staged file that does not open is an error of its own, naming the file and keeping
    /// the I/O error: nothing is sent, and the client does not retry it as a transport failure.
    #[test]
    fn a_file_that_does_not_open_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("a.bin");
        let payload = Payload::File {
            path: gone.clone(),
            size: 1,
            sha256: "0".repeat(64),
        };
        let Err(err) = make(&payload, Arc::new(Progress::new())) else {
            panic!("a missing file made a body");
        };
        match &err {
            super::super::S3Error::Io { path, source } => {
                assert_eq!(path, &gone);
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            err.to_string()
                .starts_with(&format!("cannot read {}", gone.display()))
        );
    }
}
