//! A share in a folder (a network file system, a disk several accounts can write): an object is
//! written to a hidden temporary file, synced, and hard-linked into place — `link(2)` fails if
//! the name exists, so nothing is ever replaced — and a claimed folder is built hidden and
//! renamed into place with `RENAME_NOREPLACE`.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Put, ShareError, Store};

#[derive(Clone, Debug)]
pub struct LocalShare {
    root: PathBuf,
}

impl LocalShare {
    pub fn new(root: PathBuf) -> LocalShare {
        LocalShare { root }
    }

    /// Where `name` is, reached through folders only: a symbolic link below the root, which
    /// anyone who can write the share could plant, would have relgate read or create files
    /// elsewhere on this machine.
    fn path(&self, name: &str) -> Result<PathBuf, ShareError> {
        let mut at = self.root.clone();
        for part in name.split('/').filter(|p| !p.is_empty()) {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(ShareError::Refused {
                        at: at.display().to_string(),
                        why: "is a symbolic link; a share holds folders and files only".into(),
                    });
                }
                _ => {}
            }
        }
        Ok(at)
    }

    fn parent_of(&self, path: &Path) -> Result<PathBuf, ShareError> {
        let parent = path.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(ShareError::io(&parent))?;
        Ok(parent)
    }
}

impl Store for LocalShare {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    async fn list(&self, dir: &str) -> Result<Vec<String>, ShareError> {
        let path = self.path(dir)?;
        let entries = match std::fs::read_dir(&path) {
            Ok(e) => e,
            // A file where a folder is expected (anyone can write one) holds nothing either.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(Vec::new());
            }
            Err(e) => return Err(ShareError::io(&path)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(ShareError::io(&path))?;
            if let Ok(name) = entry.file_name().into_string() {
                out.push(name);
            }
        }
        Ok(out)
    }

    async fn get(&self, name: &str, cap: u64) -> Result<Option<Vec<u8>>, ShareError> {
        let path = self.path(name)?;
        // A link or FIFO planted in the share is refused, never followed or waited on.
        match crate::record::read_capped(&path, cap) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ShareError::io(&path)(e)),
        }
    }

    async fn put(&self, name: &str, bytes: &[u8]) -> Result<Put, ShareError> {
        let path = self.path(name)?;
        if std::fs::symlink_metadata(&path).is_ok() {
            return Ok(Put::Exists);
        }
        let parent = self.parent_of(&path)?;
        // 0o666 less the umask, as any file the writer makes: the share is for several
        // accounts, and tempfile's 0o600 would keep every request, sign-off and checkpoint to
        // its writer alone.
        let mut tmp = tempfile::Builder::new()
            .prefix(".put-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .tempfile_in(&parent)
            .map_err(ShareError::io(&parent))?;
        tmp.write_all(bytes).map_err(ShareError::io(&path))?;
        tmp.as_file().sync_all().map_err(ShareError::io(&path))?;
        match std::fs::hard_link(tmp.path(), &path) {
            Ok(()) => {
                crate::record::sync_dir(&parent).map_err(ShareError::io(&parent))?;
                Ok(Put::Created)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Put::Exists),
            Err(e) => Err(ShareError::io(&path)(e)),
        }
    }

    async fn claim(&self, dir: &str, file: &str, bytes: &[u8]) -> Result<Put, ShareError> {
        let path = self.path(dir)?;
        if std::fs::symlink_metadata(&path).is_ok() {
            return Ok(Put::Exists);
        }
        let parent = self.parent_of(&path)?;
        let tmp = tempfile::Builder::new()
            .prefix(".claim-")
            .tempdir_in(&parent)
            .map_err(ShareError::io(&parent))?;
        crate::stage::write_synced(&tmp.path().join(file), bytes).map_err(ShareError::io(&path))?;
        match crate::publish::rename_noreplace(tmp.path(), &path) {
            Ok(()) => {
                // The folder is in place; the temporary name is gone with it.
                let _ = tmp.keep();
                crate::record::sync_dir(&parent).map_err(ShareError::io(&parent))?;
                Ok(Put::Created)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Put::Exists),
            Err(e) => Err(ShareError::io(&path)(e)),
        }
    }
}
