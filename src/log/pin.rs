//! The newest checkpoint this machine has seen for a record, kept outside the record.
//!
//! A record rolled back to an earlier state — its log cut and the newer checkpoints removed — is
//! still a whole, validly signed record, and nothing inside it can tell. Whoever keeps a later
//! checkpoint can (`replay --checkpoint`); `run`, `status` and `approve` keep one themselves, in
//! the user's state folder (`$RELGATE_PIN_DIR`, else `$XDG_STATE_HOME/relgate/pins`, else
//! `~/.local/state/relgate/pins`), one pair of files per record. Someone who can write the record
//! but not that folder can no longer roll it back unnoticed on this machine. A fresh machine (a
//! CI runner) has no pins and so no such protection; docs/trust.md says so.

use std::path::{Path, PathBuf};

use super::checkpoint::{Stored, read_stored};

/// Where pins live, if anywhere.
fn pin_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("RELGATE_PIN_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("relgate/pins"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".local/state/relgate/pins"))
}

/// The pin file of the record in `dir`: named by the SHA-256 of its absolute path.
pub fn path_for(dir: &Path) -> Option<PathBuf> {
    let abs = dir.canonicalize().ok()?;
    let name = crate::digest::sha256_hex(abs.as_os_str().as_encoded_bytes());
    Some(pin_dir()?.join(name))
}

/// The pinned checkpoint of the record in `dir`, if this machine has one.
pub fn load(dir: &Path) -> Option<Stored> {
    let path = path_for(dir)?;
    read_stored(&path, &path.display().to_string()).ok()
}

/// Pin `stored` (a signed checkpoint that verified) for the record in `dir`. Best effort: a
/// state folder that cannot be written costs the protection, never the run.
pub fn remember(dir: &Path, stored: &Stored) {
    let (Some(path), Some(sig)) = (path_for(dir), &stored.sig) else {
        return;
    };
    let Some(parent) = path.parent() else {
        return;
    };
    if std::fs::create_dir_all(parent).is_err() {
        return;
    }
    let mut sig_path = path.as_os_str().to_owned();
    sig_path.push(".sig");
    if crate::stage::write_synced(Path::new(&sig_path), sig.as_bytes()).is_ok() {
        let _ = crate::stage::write_synced(&path, stored.text.as_bytes());
    }
}
