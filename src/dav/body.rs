//! Request bodies streamed from files, hashed while read, and the bookkeeping of one transfer
//! (when a byte last moved, and a local failure that must not be retried).
//!
//! A file is read in 1 MiB chunks by a blocking thread and handed to the request through a
//! channel two chunks deep, so an upload holds a few MiB whatever the file's size. When the
//! file's expected digest is known (a staged artefact), the digest is compared **before the
//! last chunk is handed over**: a changed byte makes the body fail, the server never receives a
//! complete file, and the upload aborts.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// Bytes per chunk read from a file.
const CHUNK: usize = 1 << 20;
/// Chunks queued between the reading thread and the connection.
const DEPTH: usize = 2;

/// How one request's transfer is going.
#[derive(Debug)]
pub struct Transfer {
    start: Instant,
    /// Milliseconds after `start` when a byte last moved.
    last: AtomicU64,
    /// A local reason the request must fail and not be tried again (a changed staged file).
    fatal: Mutex<Option<String>>,
    /// Bytes of the body handed to the connection.
    pub sent: AtomicU64,
}

impl Transfer {
    pub fn new() -> Arc<Transfer> {
        Arc::new(Transfer {
            start: Instant::now(),
            last: AtomicU64::new(0),
            fatal: Mutex::new(None),
            sent: AtomicU64::new(0),
        })
    }

    /// A byte moved.
    pub fn touch(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }

    /// How long since a byte last moved.
    pub fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }

    fn fail(&self, why: String) {
        if let Ok(mut f) = self.fatal.lock() {
            f.get_or_insert(why);
        }
    }

    /// The local failure, if there was one.
    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().ok().and_then(|f| f.clone())
    }

    /// Resolve once the transfer has been idle for `stall`.
    pub async fn stalled(&self, stall: Duration) {
        loop {
            let idle = self.idle();
            if idle >= stall {
                return;
            }
            tokio::time::sleep(stall - idle).await;
        }
    }
}

/// Called with each chunk's size as it is handed to the connection (for progress).
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// What a file's bytes must be.
#[derive(Clone, Debug)]
pub struct Expect {
    pub sha256: String,
    pub size: u64,
}

/// A body that streams `path` (a regular file, not followed through a symbolic link) of `size`
/// bytes. With `expect`, the bytes must hash to it, or the body fails before its end.
pub fn file_body(
    path: &Path,
    size: u64,
    expect: Option<Expect>,
    transfer: Arc<Transfer>,
    progress: Option<Progress>,
) -> reqwest::Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(DEPTH);
    let path = path.to_path_buf();
    let t = transfer.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(why) = pump(&path, size, expect.as_ref(), &t, progress.as_ref(), &tx) {
            t.fail(why.clone());
            let _ = tx.blocking_send(Err(std::io::Error::other(why)));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    reqwest::Body::wrap_stream(stream)
}

/// Read, hash and hand over the file; `Err` says why the body must fail.
fn pump(
    path: &Path,
    size: u64,
    expect: Option<&Expect>,
    transfer: &Transfer,
    progress: Option<&Progress>,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), String> {
    let shown = path.display();
    let file =
        crate::record::open_regular(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
    // Read one byte past the size: a file that grew is caught, not chased.
    let mut file = file.take(size.saturating_add(1));
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        // Read into spare capacity (read_to_end does not zero it first): a fresh buffer per
        // chunk, since the previous one is still queued or being sent.
        let mut buf = Vec::with_capacity(CHUNK);
        (&mut file)
            .take(CHUNK as u64)
            .read_to_end(&mut buf)
            .map_err(|e| format!("cannot read {shown}: {e}"))?;
        let filled = buf.len();
        total += filled as u64;
        hasher.update(&buf);
        let end = filled < CHUNK || total >= size;
        if total > size {
            return Err(format!(
                "{shown} grew while it was sent (more than {size} bytes)"
            ));
        }
        if end {
            if total < size {
                return Err(format!(
                    "{shown} shrank while it was sent ({total} of {size} bytes)"
                ));
            }
            // The last chunk: check the digest before the server can have the whole file.
            if let Some(e) = expect {
                let mut probe = [0u8; 1];
                if file.read(&mut probe).map_err(|e| e.to_string())? > 0 {
                    return Err(format!("{shown} grew while it was sent"));
                }
                let found = hex::encode(hasher.clone().finalize());
                if found != e.sha256 || total != e.size {
                    return Err(format!(
                        "staged {shown} no longer matches its digest (found {found})"
                    ));
                }
            }
        }
        let n = buf.len() as u64;
        if n > 0 {
            if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                // The request was dropped (it failed, or stalled): nothing more to send.
                return Ok(());
            }
            transfer.touch();
            transfer.sent.fetch_add(n, Ordering::Relaxed);
            if let Some(p) = progress {
                p(n);
            }
        }
        if end {
            return Ok(());
        }
    }
}
