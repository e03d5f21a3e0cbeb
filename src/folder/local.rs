//! A folder on this machine: nothing is followed through a symbolic link, and only regular
//! files are opened (a FIFO would block a reader forever).

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Folder, FolderError, Item, WalkProblem};

#[derive(Clone, Debug)]
pub struct LocalFolder {
    dir: PathBuf,
}

impl LocalFolder {
    pub fn new(dir: &Path) -> LocalFolder {
        LocalFolder {
            dir: dir.to_path_buf(),
        }
    }
}

impl Folder for LocalFolder {
    fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    fn check_root(&self) -> Result<(), FolderError> {
        let path = self.dir.clone();
        match std::fs::symlink_metadata(&self.dir) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(m) if m.file_type().is_symlink() => Err(FolderError::RootSymlink { path }),
            Ok(_) => Err(FolderError::RootNotFolder { path }),
            Err(source) => Err(FolderError::RootUnreadable { path, source }),
        }
    }

    fn open(&self, rel: &str) -> Result<Box<dyn Read + '_>, FolderError> {
        // Every folder on the way must be a real folder: a symlinked folder could point anywhere.
        let mut at = self.dir.clone();
        let parts: Vec<&str> = rel.split('/').collect();
        let rel = rel.to_string();
        for (i, part) in parts.iter().enumerate() {
            at.push(part);
            let meta = match std::fs::symlink_metadata(&at) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(FolderError::Missing { rel });
                }
                Err(source) => return Err(FolderError::Stat { path: at, source }),
            };
            let last = i + 1 == parts.len();
            if meta.file_type().is_symlink() {
                return Err(if last {
                    FolderError::Symlink { rel }
                } else {
                    let at = parts[..=i].join("/");
                    FolderError::SymlinkOnTheWay { rel, at }
                });
            }
            if last && !meta.is_file() {
                return Err(FolderError::NotRegular { rel });
            }
            if !last && !meta.is_dir() {
                let at = parts[..=i].join("/");
                return Err(FolderError::NotFolderOnTheWay { rel, at });
            }
        }
        let file = crate::record::open_regular(&at)
            .map_err(|source| FolderError::Open { path: at, source })?;
        Ok(Box::new(file))
    }

    fn walk(&self, skip: Option<&str>) -> Vec<Item> {
        let dir = &self.dir;
        let mut out = Vec::new();
        let walk = walkdir::WalkDir::new(dir)
            .follow_links(false)
            .min_depth(1)
            .sort_by_file_name();
        let mut it = walk.into_iter();
        while let Some(entry) = it.next() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let at = e
                        .path()
                        .and_then(|p| p.strip_prefix(dir).ok())
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| dir.display().to_string());
                    out.push(Item::Problem {
                        at,
                        why: WalkProblem::Unreadable(e),
                    });
                    continue;
                }
            };
            let Ok(rel) = entry.path().strip_prefix(dir) else {
                continue;
            };
            let Some(rel_str) = rel.to_str() else {
                out.push(Item::Problem {
                    at: rel.display().to_string(),
                    why: WalkProblem::NotUtf8,
                });
                continue;
            };
            let is_dir = entry.file_type().is_dir();
            if is_dir && Some(rel_str) == skip {
                it.skip_current_dir();
            }
            out.push(Item::Entry {
                rel: rel_str.to_string(),
                dir: is_dir,
            });
        }
        out
    }

    fn regular_files(&self) -> Result<Vec<String>, FolderError> {
        Ok(crate::audit::list_files(&self.dir)?)
    }

    fn is_dir(&self, rel: &str) -> Result<bool, FolderError> {
        let path = self.dir.join(rel);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => Err(FolderError::DirSymlink { path }),
            Ok(m) => Ok(m.is_dir()),
            Err(_) => Ok(false),
        }
    }

    fn size(&self, rel: &str) -> Option<u64> {
        std::fs::symlink_metadata(self.dir.join(rel))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    fn local_path(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    /// One file per core: hashing a page-cached file keeps a core busy, and a cold one is read
    /// ahead by the kernel; more readers than cores only compete for them.
    fn concurrency(&self) -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(MAX_READERS)
    }
}

/// Files hashed at once however many cores there are: each reader holds a buffer, and past a
/// few dozen streams a disk, not the cores, sets the pace.
const MAX_READERS: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    fn opened(f: &LocalFolder, rel: &str) -> Result<(), FolderError> {
        f.open(rel).map(|_| ())
    }

    #[test]
    fn an_absent_file_is_missing_and_a_symlinked_folder_on_the_way_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("real")).unwrap();
        std::fs::write(tmp.path().join("real/a.bin"), b"a").unwrap();
        std::os::unix::fs::symlink("real", tmp.path().join("linked")).unwrap();
        let f = LocalFolder::new(tmp.path());

        assert!(opened(&f, "real/a.bin").is_ok());
        for absent in ["real/b.bin", "gone/a.bin"] {
            let e = opened(&f, absent).unwrap_err();
            assert!(
                matches!(&e, FolderError::Missing { rel } if rel == absent),
                "{e:?}"
            );
            assert_eq!(e.to_string(), "missing");
        }
        // The link points at a real folder holding the very file: refused all the same.
        let e = opened(&f, "linked/a.bin").unwrap_err();
        assert!(
            matches!(&e, FolderError::SymlinkOnTheWay { at, .. } if at == "linked"),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "linked is a symbolic link");
        let e = opened(&f, "real/a.bin/x").unwrap_err();
        assert_eq!(e.to_string(), "real/a.bin is not a folder");
    }
}
