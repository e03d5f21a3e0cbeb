//! The signed checkpoint: a short text committing to the log's length and head, signed with
//! SSHSIG (namespace `relgate-checkpoint`) by the `sign` gate's key. It exposes a cut-off tail.

use std::path::{Path, PathBuf};

use super::chain::Head;
use crate::record::{CHECKPOINT_FILE, CHECKPOINT_SIG_FILE};
use crate::sshsig;

/// A parsed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub head: String,
    pub time: String,
}

pub const HEADER: &str = "relgate-checkpoint/v1";

impl Checkpoint {
    pub fn new(origin: &str, size: u64, head: Head) -> Self {
        Checkpoint {
            origin: origin.to_string(),
            size,
            head: head.hex(),
            time: super::clock::now_rfc3339(),
        }
    }

    pub fn text(&self) -> String {
        format!(
            "{HEADER}\norigin {}\nsize {}\nhead {}\ntime {}\n",
            self.origin, self.size, self.head, self.time
        )
    }

    /// Strict parse: exactly the five lines `text` produces.
    pub fn parse(text: &str) -> Result<Checkpoint, String> {
        let lines: Vec<&str> = text.split('\n').collect();
        if lines.len() != 6 || !lines[5].is_empty() || lines[0] != HEADER {
            return Err("checkpoint is not in relgate-checkpoint/v1 form".into());
        }
        let field = |i: usize, name: &str| -> Result<String, String> {
            lines[i]
                .strip_prefix(name)
                .and_then(|r| r.strip_prefix(' '))
                .map(str::to_string)
                .ok_or_else(|| format!("checkpoint line {} should start with {name:?}", i + 1))
        };
        let size = field(2, "size")?
            .parse::<u64>()
            .map_err(|_| "checkpoint size is not a number".to_string())?;
        let cp = Checkpoint {
            origin: field(1, "origin")?,
            size,
            head: field(3, "head")?,
            time: field(4, "time")?,
        };
        if cp.text() != text {
            return Err("checkpoint is not in canonical form".into());
        }
        Ok(cp)
    }
}

/// The folder in a record that keeps every checkpoint ever written.
pub const HISTORY_DIR: &str = "checkpoints";

/// Is `name` a history file's name (`<12 digits>-<16 lowercase hex>`, optionally `.sig`)?
pub fn is_history_name(name: &str) -> bool {
    let base = name.strip_suffix(".sig").unwrap_or(name);
    let b = base.as_bytes();
    b.len() == 29
        && b[..12].iter().all(u8::is_ascii_digit)
        && b[12] == b'-'
        && b[13..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// The history name of a checkpoint: its size (zero-padded, so names sort by size) and the
/// start of its text's SHA-256 (two checkpoints of one size differ in time).
pub fn history_name(cp: &Checkpoint) -> String {
    let digest = crate::digest::sha256_hex(cp.text().as_bytes());
    format!("{:012}-{}", cp.size, &digest[..16])
}

/// Write a checkpoint, signed when `key` is given: first into the history
/// (`checkpoints/NAME` and `NAME.sig`, never overwritten), then as the latest `checkpoint` and
/// `checkpoint.sig` (each via a temporary file and rename). A crash between the two latest files
/// leaves them disagreeing, but never the history.
pub fn write(
    dir: &Path,
    cp: &Checkpoint,
    key: Option<&dyn crate::signkey::RawSigner>,
) -> Result<(), WriteError> {
    let text = cp.text();
    let sig = match key {
        Some(k) => Some(sshsig::sign(k, sshsig::NS_CHECKPOINT, text.as_bytes())?),
        None => None,
    };
    let history = dir.join(HISTORY_DIR);
    let fresh = !history.is_dir();
    std::fs::create_dir_all(&history).map_err(WriteError::io("create", &history))?;
    if fresh {
        crate::record::sync_dir(dir).map_err(WriteError::io("sync", dir))?;
    }
    let name = history_name(cp);
    if let Some(sig) = &sig {
        atomic_write(&history.join(format!("{name}.sig")), sig.as_bytes())?;
    }
    atomic_write(&history.join(&name), text.as_bytes())?;
    let sig_path = dir.join(CHECKPOINT_SIG_FILE);
    match &sig {
        Some(sig) => atomic_write(&sig_path, sig.as_bytes())?,
        None => match std::fs::remove_file(&sig_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(WriteError::io("remove the old", &sig_path)(e)),
        },
    }
    atomic_write(&dir.join(CHECKPOINT_FILE), text.as_bytes())?;
    Ok(())
}

/// Why a checkpoint (or another file of the record written whole) could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot sign the checkpoint: {0}")]
    Sign(#[from] sshsig::SshsigError),
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl WriteError {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> WriteError {
        let path = path.to_path_buf();
        move |source| WriteError::Io {
            action,
            path,
            source,
        }
    }
}

/// One checkpoint as found in a record: its file name (relative to the record), its text and
/// its signature, if there is one.
#[derive(Clone, Debug)]
pub struct Stored {
    pub file: String,
    pub text: String,
    pub sig: Option<String>,
}

/// The largest checkpoint or signature file read (a real one is a few hundred bytes).
const MAX_CHECKPOINT_BYTES: u64 = 64 << 10;

/// Why a record's checkpoints could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{} is not UTF-8", path.display())]
    NotUtf8 { path: PathBuf },
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{shown} is missing")]
    Missing { shown: String },
    #[error("cannot read {}: {source}", dir.display())]
    Folder {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{HISTORY_DIR}/{name} is not a checkpoint (nothing else belongs there)")]
    Stray { name: String },
    #[error("{HISTORY_DIR} is not a folder")]
    NotFolder,
}

/// Read one checkpoint file and the `.sig` beside it (regular files only, size-capped).
pub fn read_stored(path: &Path, shown: &str) -> Result<Stored, ReadError> {
    let read = |p: &Path| -> Result<Option<String>, ReadError> {
        match crate::record::read_capped(p, MAX_CHECKPOINT_BYTES) {
            Ok(b) => String::from_utf8(b)
                .map(Some)
                .map_err(|_| ReadError::NotUtf8 {
                    path: p.to_path_buf(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ReadError::File {
                path: p.to_path_buf(),
                source,
            }),
        }
    };
    let text = read(path)?.ok_or_else(|| ReadError::Missing {
        shown: shown.to_string(),
    })?;
    let mut sig_path = path.as_os_str().to_owned();
    sig_path.push(".sig");
    let sig = read(Path::new(&sig_path))?;
    Ok(Stored {
        file: shown.to_string(),
        text,
        sig,
    })
}

/// Every checkpoint in a record: the history, oldest first, then the latest `checkpoint`.
pub fn list(dir: &Path) -> Result<Vec<Stored>, ReadError> {
    let mut out = Vec::new();
    let history = dir.join(HISTORY_DIR);
    let cannot = |source| ReadError::Folder {
        dir: history.clone(),
        source,
    };
    match std::fs::symlink_metadata(&history) {
        Ok(m) if m.is_dir() => {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(&history).map_err(cannot)? {
                let entry = entry.map_err(cannot)?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(".tmp") {
                    // A checkpoint being written (tempfile's name) when a run was killed.
                    continue;
                }
                if !is_history_name(&name) {
                    return Err(ReadError::Stray { name });
                }
                if !name.ends_with(".sig") {
                    names.push(name);
                }
            }
            names.sort();
            for name in names {
                out.push(read_stored(
                    &history.join(&name),
                    &format!("{HISTORY_DIR}/{name}"),
                )?);
            }
        }
        Ok(_) => return Err(ReadError::NotFolder),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(cannot(e)),
    }
    let latest = dir.join(CHECKPOINT_FILE);
    if std::fs::symlink_metadata(&latest).is_ok() {
        out.push(read_stored(&latest, CHECKPOINT_FILE)?);
    }
    Ok(out)
}

/// tmp → fsync → rename → fsync the folder.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let err = WriteError::io("write", path);
    let write = || -> std::io::Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        crate::record::sync_dir(dir)
    };
    write().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_roundtrip_is_strict() {
        let cp = Checkpoint::new("acme/1.0.0", 7, Head::GENESIS.next(b"x"));
        assert_eq!(Checkpoint::parse(&cp.text()).unwrap(), cp);
        assert!(Checkpoint::parse(&cp.text().replace("size 7", "size 07")).is_err());
        assert!(Checkpoint::parse(&format!("{}x", cp.text())).is_err());
    }
}
