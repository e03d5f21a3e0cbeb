//! Appending to the log: one `write` per line, then fdatasync, before relgate acts on it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::chain::Head;
use super::clock::now_rfc3339;
use super::reader::{Entry, read_log};
use super::records::{Record, RecoveredTornTail, encode_line};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot write the release log {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the release log {path} is damaged and cannot be resumed: {problem}")]
    Damaged {
        path: PathBuf,
        problem: super::reader::LogProblem,
    },
    #[error("cannot encode a log record: {0}")]
    Encode(#[from] serde_json::Error),
}

pub struct LogWriter {
    path: PathBuf,
    file: File,
    head: Head,
    next_seq: u64,
}

/// The largest size any checkpoint beside the log claims (the history and the latest), if
/// there is a readable one.
fn checkpoint_size(log: &Path) -> Option<u64> {
    let dir = log.parent()?;
    super::checkpoint::list(dir)
        .ok()?
        .iter()
        .filter_map(|s| super::checkpoint::Checkpoint::parse(&s.text).ok())
        .map(|c| c.size)
        .max()
}

impl LogWriter {
    /// Open (or create) the log at `path`, verifying what is there. A torn last line is copied
    /// aside, cut off and the recovery recorded; any other defect refuses to resume.
    pub fn open(path: &Path) -> Result<(LogWriter, Vec<Entry>), LogError> {
        let io = |source| LogError::Io {
            path: path.to_path_buf(),
            source,
        };
        let existed = path.exists();
        let bytes = if existed {
            std::fs::read(path).map_err(io)?
        } else {
            Vec::new()
        };
        let mut torn: Option<RecoveredTornTail> = None;
        let (entries, head) = match read_log(&bytes) {
            Ok(ok) => ok,
            Err(p) if p.torn_tail => {
                // The torn line is the unterminated remainder, or the last (garbled) line.
                let search = if bytes.last() == Some(&b'\n') {
                    &bytes[..bytes.len() - 1]
                } else {
                    &bytes[..]
                };
                let cut = search
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let tail = &bytes[cut..];
                let good = read_log(&bytes[..cut]).map_err(|problem| LogError::Damaged {
                    path: path.to_path_buf(),
                    problem,
                })?;
                // A checkpoint is only written after the lines it covers were fsynced, so a
                // crash can tear a line only past the checkpoint. A "torn" line the checkpoint
                // covers was complete once: that is damage, and cutting it off would erase a
                // signed record. Refuse rather than recover.
                if let Some(size) = checkpoint_size(path)
                    && size > good.0.len() as u64
                {
                    return Err(LogError::Damaged {
                        path: path.to_path_buf(),
                        problem: super::reader::LogProblem {
                            line: good.0.len() + 1,
                            message: format!(
                                "damaged although the signed checkpoint covers {size} lines, so \
                                 it was complete once and was not torn by a crash ({})",
                                p.message
                            ),
                            torn_tail: false,
                        },
                    });
                }
                let saved = path.with_extension(format!(
                    "torn-{}",
                    crate::digest::sha256_hex(tail).get(..12).unwrap_or("x")
                ));
                // The copy is made durable before the cut, so the bytes are never lost.
                crate::stage::write_synced(&saved, tail).map_err(io)?;
                if let Some(parent) = path.parent() {
                    crate::record::sync_dir(parent).map_err(io)?;
                }
                let f = OpenOptions::new().write(true).open(path).map_err(io)?;
                f.set_len(cut as u64).map_err(io)?;
                f.sync_all().map_err(io)?;
                torn = Some(RecoveredTornTail {
                    bytes: tail.len() as u64,
                    sha256: crate::digest::sha256_hex(tail),
                    saved_as: saved
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                });
                good
            }
            Err(problem) => {
                return Err(LogError::Damaged {
                    path: path.to_path_buf(),
                    problem,
                });
            }
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        if !existed && let Some(parent) = path.parent() {
            crate::record::sync_dir(parent).map_err(io)?;
        }
        let mut w = LogWriter {
            path: path.to_path_buf(),
            file,
            head,
            next_seq: entries.len() as u64,
        };
        let mut entries = entries;
        if let Some(t) = torn {
            let e = w.append(Record::RecoveredTornTail(t))?;
            entries.push(e);
        }
        Ok((w, entries))
    }

    /// Append one record durably. Returns the entry as written.
    pub fn append(&mut self, record: Record) -> Result<Entry, LogError> {
        let ts = now_rfc3339();
        let line = encode_line(self.next_seq, &self.head.hex(), &ts, &record)?;
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        let io = |source| LogError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&bytes).map_err(io)?;
        // A failed fsync is fatal: never retried, never acted upon (fsyncgate).
        self.file.sync_data().map_err(io)?;
        self.head = self.head.next(line.as_bytes());
        crash_point(self.next_seq + 1);
        let entry = Entry {
            seq: self.next_seq,
            line: self.next_seq as usize + 1,
            ts,
            record,
            head: self.head,
        };
        self.next_seq += 1;
        Ok(entry)
    }

    pub fn head(&self) -> Head {
        self.head
    }

    /// Number of lines in the log.
    pub fn len(&self) -> u64 {
        self.next_seq
    }

    pub fn is_empty(&self) -> bool {
        self.next_seq == 0
    }
}

/// A test hook for crash-consistency tests: with `RELGATE_CRASH_AFTER_LINES=N` the process
/// aborts (as a `kill -9` would stop it) right after the log durably reached N lines. Every
/// decision relgate takes is preceded by its line, so this stops it at each point between
/// recording something and acting on it.
fn crash_point(lines: u64) {
    static AT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| {
        std::env::var("RELGATE_CRASH_AFTER_LINES")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if *at == Some(lines) {
        std::process::abort();
    }
}
