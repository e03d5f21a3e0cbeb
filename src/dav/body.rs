//! Request bodies streamed from files, hashed while read, and the bookkeeping of one transfer
//! (when a byte last moved, and a local failure that must not be retried).
//!
//! A file is read in 1 MiB chunks by a blocking thread and handed to the request through a
//! channel two chunks deep, so an upload holds a few MiB whatever the file's size. When the
//! file's expected digest is known (a staged artefact), its bytes are checked **before the
//! last chunk is handed over**: a changed byte makes the body fail, the server never receives a
//! complete file, and the upload aborts. They are checked by hashing them as they go — or,
//! when the staged file provably is still the one staging hashed (its identity unchanged and a
//! read lease held from before the first byte to the last: `stage::vouch`, the proof a local
//! publish moves a staged copy on), by seeing that the lease was never broken and the identity
//! still holds. Hashing costs a core's worth of time on a large file; the lease costs nothing.

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

/// Why a file's body failed locally: it could not be read, or its bytes are not the ones
/// staged. Shared (`Arc`): the transfer keeps it for the request's error and the body's stream
/// carries it as its `io::Error`.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("cannot open {}: {source}", path.display())]
    Open {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Reading past the last byte, to see that the file did not grow, failed (said as the I/O
    /// error alone, as it always was).
    #[error("{0}")]
    Probe(#[source] std::io::Error),
    #[error("{} grew while it was sent (more than {size} bytes)", path.display())]
    GrewPast { path: std::path::PathBuf, size: u64 },
    #[error("{} shrank while it was sent ({total} of {size} bytes)", path.display())]
    Shrank {
        path: std::path::PathBuf,
        total: u64,
        size: u64,
    },
    #[error("{} grew while it was sent", path.display())]
    Grew { path: std::path::PathBuf },
    #[error("staged {} is {total} bytes, not the {staged} staged", path.display())]
    Size {
        path: std::path::PathBuf,
        total: u64,
        staged: u64,
    },
    #[error("staged {} no longer matches its digest (found {found})", path.display())]
    Digest {
        path: std::path::PathBuf,
        found: String,
    },
    #[error("staged {} was opened for writing or changed while it was sent", path.display())]
    Touched { path: std::path::PathBuf },
    #[error("staged {} could not be checked", path.display())]
    Unchecked { path: std::path::PathBuf },
}

/// How one request's transfer is going.
#[derive(Debug)]
pub struct Transfer {
    start: Instant,
    /// Milliseconds after `start` when a byte last moved.
    last: AtomicU64,
    /// A local reason the request must fail and not be tried again (a changed staged file).
    fatal: Mutex<Option<Arc<BodyError>>>,
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

    fn fail(&self, why: Arc<BodyError>) {
        if let Ok(mut f) = self.fatal.lock() {
            f.get_or_insert(why);
        }
    }

    /// The local failure, if there was one.
    pub fn fatal(&self) -> Option<Arc<BodyError>> {
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
    /// The staged file's identity when staging recorded it: with a lease, no need to hash.
    pub id: Option<crate::stage::FileId>,
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
            let why = Arc::new(why);
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
) -> Result<(), BodyError> {
    let at = || path.to_path_buf();
    let file = crate::record::open_regular(path)
        .map_err(|source| BodyError::Open { path: at(), source })?;
    // Held from before the first byte is read to after the last is checked.
    let lease = expect.and_then(|e| e.id.as_ref().map(|id| (crate::stage::vouch(&file, id), id)));
    let mut hasher = match (expect, &lease) {
        (Some(_), None | Some((None, _))) => Some(Sha256::new()),
        _ => None,
    };
    // Read one byte past the size: a file that grew is caught, not chased.
    let mut reader = (&file).take(size.saturating_add(1));
    let mut total = 0u64;
    loop {
        // Read into spare capacity (read_to_end does not zero it first): a fresh buffer per
        // chunk, since the previous one is still queued or being sent.
        let mut buf = Vec::with_capacity(CHUNK);
        (&mut reader)
            .take(CHUNK as u64)
            .read_to_end(&mut buf)
            .map_err(|source| BodyError::Read { path: at(), source })?;
        let filled = buf.len();
        total += filled as u64;
        if let Some(h) = hasher.as_mut() {
            h.update(&buf);
        }
        let end = filled < CHUNK || total >= size;
        if total > size {
            return Err(BodyError::GrewPast { path: at(), size });
        }
        if end {
            if total < size {
                return Err(BodyError::Shrank {
                    path: at(),
                    total,
                    size,
                });
            }
            // The last chunk: check the bytes before the server can have the whole file.
            if let Some(e) = expect {
                let mut probe = [0u8; 1];
                let more = reader.read(&mut probe).map_err(BodyError::Probe)?;
                if more > 0 {
                    return Err(BodyError::Grew { path: at() });
                }
                if total != e.size {
                    return Err(BodyError::Size {
                        path: at(),
                        total,
                        staged: e.size,
                    });
                }
                match (&hasher, &lease) {
                    (Some(h), _) => {
                        let found = hex::encode(h.clone().finalize());
                        if found != e.sha256 {
                            return Err(BodyError::Digest { path: at(), found });
                        }
                    }
                    (None, Some((Some(l), id))) => {
                        let same = file
                            .metadata()
                            .is_ok_and(|m| crate::stage::FileId::of(&m) == **id);
                        if !l.unbroken() || !same {
                            return Err(BodyError::Touched { path: at() });
                        }
                    }
                    // Neither hashed nor leased cannot happen (no lease means hashing); if it
                    // ever did, the bytes went unchecked, so the body fails rather than pass.
                    _ => return Err(BodyError::Unchecked { path: at() }),
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::stage::FileId;

    const SIZE: usize = 4 * CHUNK + 123;

    fn staged() -> (tempfile::TempDir, std::path::PathBuf, FileId, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        let bytes: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let id = FileId::of(&std::fs::metadata(&path).unwrap());
        let sha = hex::encode(Sha256::digest(&bytes));
        (dir, path, id, sha)
    }

    /// Run `pump` on a thread of its own with a channel one chunk deep: take the first chunk,
    /// run `between`, then take the rest; return what `pump` said and the bytes it handed over.
    fn pump_stepwise(
        path: &Path,
        expect: Expect,
        between: impl FnOnce(),
    ) -> (Result<(), BodyError>, usize) {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let path = path.to_path_buf();
        let t = Transfer::new();
        let pumping =
            std::thread::spawn(move || pump(&path, SIZE as u64, Some(&expect), &t, None, &tx));
        // The first chunk is read (the lease taken before it); then act, then take the rest.
        let mut got = match rx.blocking_recv() {
            Some(Ok(b)) => b.len(),
            _ => 0,
        };
        between();
        while let Some(Ok(b)) = rx.blocking_recv() {
            got += b.len();
        }
        (pumping.join().unwrap(), got)
    }

    #[test]
    fn an_untouched_staged_file_is_vouched_for_by_its_lease_without_hashing() {
        let (_d, path, id, _sha) = staged();
        // A wrong digest that a hash would catch: with the lease, the bytes are not hashed,
        // and the identity and the unbroken lease are what is checked.
        let expect = Expect {
            sha256: "0".repeat(64),
            size: SIZE as u64,
            id: Some(id),
        };
        let (res, got) = pump_stepwise(&path, expect, || {});
        assert!(res.is_ok(), "{res:?}");
        assert_eq!(got, SIZE);
    }

    #[test]
    fn without_its_identity_a_staged_file_is_hashed() {
        let (_d, path, _id, sha) = staged();
        let wrong = Expect {
            sha256: "0".repeat(64),
            size: SIZE as u64,
            id: None,
        };
        let (res, _) = pump_stepwise(&path, wrong, || {});
        let err = res.unwrap_err();
        assert!(matches!(err, BodyError::Digest { .. }), "{err:?}");
        assert!(
            err.to_string().contains("no longer matches its digest"),
            "{err}"
        );
        let right = Expect {
            sha256: sha,
            size: SIZE as u64,
            id: None,
        };
        let (res, _) = pump_stepwise(&path, right, || {});
        assert!(res.is_ok(), "{res:?}");
    }

    /// A writer that opens the staged file while it is sent breaks the lease (its `open` waits
    /// until the lease is let go): the body fails before its last chunk, and only then may the
    /// writer write.
    #[test]
    fn a_writer_during_the_upload_breaks_the_lease_and_fails_the_body() {
        let (_d, path, id, sha) = staged();
        let expect = Expect {
            sha256: sha,
            size: SIZE as u64,
            id: Some(id),
        };
        let (opened_tx, opened_rx) = mpsc::channel();
        let p = path.clone();
        let mut writer = None;
        let (res, got) = pump_stepwise(&path, expect, || {
            writer = Some(std::thread::spawn(move || {
                let mut f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
                opened_tx.send(()).unwrap();
                f.write_all(b"X").unwrap();
            }));
            // The open blocks while the lease is held; wait until the kernel shows the break
            // under way (/proc/locks), however long the writer took to get there.
            let ino = format!(":{} ", id.ino);
            let breaking = || {
                std::fs::read_to_string("/proc/locks").is_ok_and(|l| {
                    l.lines()
                        .any(|line| line.contains("BREAKING") && line.contains(&ino))
                })
            };
            // (A bound only so that a missing lease fails the test instead of hanging it.)
            let give_up = std::time::Instant::now() + Duration::from_secs(60);
            while !breaking() {
                assert!(std::time::Instant::now() < give_up, "no lease was broken");
                std::thread::sleep(Duration::from_millis(5));
            }
            assert!(
                opened_rx.try_recv().is_err(),
                "the writer got in under the lease"
            );
        });
        let err = res.unwrap_err();
        assert!(matches!(err, BodyError::Touched { .. }), "{err:?}");
        assert!(
            err.to_string().contains("opened for writing or changed"),
            "{err}"
        );
        assert!(got < SIZE, "the last chunk must not be handed over");
        writer.unwrap().join().unwrap();
    }
}
