//! The signed checkpoint: a short text committing to the log's length and head, signed with
//! SSHSIG (namespace `relgate-checkpoint`) by the `sign` gate's key. It exposes a cut-off tail.

use std::path::Path;

use ssh_key::PrivateKey;

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
            time: super::writer::now_rfc3339(),
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

/// Write `checkpoint` and `checkpoint.sig` into `dir` (each via a temporary file and rename).
pub fn write(dir: &Path, cp: &Checkpoint, key: &PrivateKey) -> Result<(), String> {
    let text = cp.text();
    let sig =
        sshsig::sign(key, sshsig::NS_CHECKPOINT, text.as_bytes()).map_err(|e| e.to_string())?;
    atomic_write(&dir.join(CHECKPOINT_SIG_FILE), sig.as_bytes())?;
    atomic_write(&dir.join(CHECKPOINT_FILE), text.as_bytes())?;
    Ok(())
}

/// tmp → fsync → rename → fsync the folder.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let err = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    crate::record::sync_dir(dir).map_err(err)?;
    Ok(())
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
