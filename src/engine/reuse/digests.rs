//! The digests behind [`super::Dependencies`]: the paths a work tree changed and what they hold,
//! the files of `inputs:`, a private clamd's database folder, and the keyed environment.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{FilesState, GitState};
use crate::git::worktree;
use crate::model::{GateKind, Pipeline, RegressionSpec};

/// Variables a command inherits that describe the shell session or relgate's own bookkeeping,
/// not the build: they differ between two terminals, two `cd`s or two users' state folders and
/// are left out of the environment digest.
const SESSION_VARS: &[&str] = &[
    "PWD",
    "OLDPWD",
    "SHLVL",
    "_",
    "RELGATE_OPERATOR",
    "RELGATE_PIN_DIR",
];
/// Variables relgate sets for the command itself (their values are covered by the project,
/// the version and the record).
const SET_BY_RELGATE: &[&str] = &["RELGATE_PROJECT", "RELGATE_VERSION", "RELGATE_RECORD"];
/// The key the environment digest is made with, in the state folder, never in a record.
pub const KEY_FILE: &str = "reuse.key";

/// Why a dependency's digest could not be made: recorded as the reason the gate's result is
/// not kept (`unsure`), so its text is what a record shows.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error(
        "{count} tracked file(s) in {} are marked assume-unchanged or skip-worktree, so git \
         would not show a change to them",
        top.display()
    )]
    Unwatched { count: usize, top: PathBuf },
    /// What one path holds, named as the message shows it.
    #[error("{shown}: {source}")]
    Entry {
        shown: String,
        #[source]
        source: EntryError,
    },
    /// What a file of a folder holds (the folder's own message names no path).
    #[error(transparent)]
    Content(EntryError),
    #[error("inputs glob {pattern:?}: {}", source.kind())]
    Glob {
        pattern: String,
        #[source]
        source: globset::Error,
    },
    #[error("inputs glob {pattern:?}: {source}")]
    Walk {
        pattern: String,
        #[source]
        source: walkdir::Error,
    },
    #[error("inputs glob {pattern:?}: {} is not UTF-8", path.display())]
    NotUtf8 { pattern: String, path: PathBuf },
    #[error("{}: {source}", dir.display())]
    Folder {
        dir: PathBuf,
        #[source]
        source: walkdir::Error,
    },
    #[error("{} is not a 32-byte key; remove it and run again", path.display())]
    BadKey { path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    ReadKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make {}: {source}", path.display())]
    MakeKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make a random key: {0}")]
    Random(#[source] ssh_key::rand_core::Error),
    /// Another run made the key first, and it cannot be read.
    #[error("cannot read {}", path.display())]
    KeyLost { path: PathBuf },
}

/// Why what a path holds cannot be told as one token.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("a submodule or a nested repository changed; what it holds is not compared")]
    Folder,
    #[error("not a regular file")]
    NotRegular,
}

/// Paths that change with every run without being something a gate ran against: the state
/// folder (the records), the artefacts (already in the subject) and JUnit reports (written by
/// the gates).
struct Excluded {
    state: PathBuf,
    root: PathBuf,
    globs: globset::GlobSet,
}

impl Excluded {
    fn new(p: &Pipeline) -> Excluded {
        let mut b = globset::GlobSetBuilder::new();
        let junit = p.gates.iter().flat_map(|g| match &g.kind {
            GateKind::Regression(r) => r.junit.as_slice(),
            _ => &[],
        });
        for pattern in p.artefacts.iter().chain(junit) {
            if let Ok(g) = globset::GlobBuilder::new(pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
            {
                b.add(g);
            }
        }
        let real = |path: &Path| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Excluded {
            state: real(&p.state_dir),
            root: real(&p.root),
            globs: b.build().unwrap_or_else(|_| globset::GlobSet::empty()),
        }
    }

    fn holds(&self, path: &Path) -> bool {
        path.starts_with(&self.state)
            || path
                .strip_prefix(&self.root)
                .ok()
                .and_then(Path::to_str)
                .is_some_and(|rel| self.globs.is_match(rel))
    }
}

pub(super) fn git_state(tree: &worktree::WorkTree, p: &Pipeline) -> Result<GitState, DigestError> {
    if tree.unwatched > 0 {
        return Err(DigestError::Unwatched {
            count: tree.unwatched,
            top: tree.top.clone(),
        });
    }
    let excluded = Excluded::new(p);
    let mut h = Sha256::new();
    h.update(b"relgate/worktree/v1\0");
    let mut changed = 0u64;
    for c in &tree.changes {
        let rel = path_of_bytes(&c.path);
        let path = tree.top.join(&rel);
        if excluded.holds(&path) {
            continue;
        }
        let content = entry_digest(&path).map_err(|source| DigestError::Entry {
            shown: path.display().to_string(),
            source,
        })?;
        h.update(c.status.as_bytes());
        h.update(b"\0");
        h.update(&c.path);
        h.update(b"\0");
        h.update(content.as_bytes());
        h.update(b"\n");
        changed += 1;
    }
    Ok(GitState {
        top: tree.top.display().to_string(),
        head: tree.head.clone(),
        changed,
        changes: hex::encode(h.finalize()),
    })
}

fn path_of_bytes(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt as _;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

/// What a path holds, as one token: `file:<mode bit>:<sha256>`, `link:<target>`, `gone`.
/// A folder (a submodule, a nested repository) cannot be told in one token: an error.
fn entry_digest(path: &Path) -> Result<String, EntryError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok("gone".into()),
        Err(e) => return Err(e.into()),
    };
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(path)?;
        return Ok(format!("link:{}", target.display()));
    }
    if ft.is_dir() {
        return Err(EntryError::Folder);
    }
    if !ft.is_file() {
        return Err(EntryError::NotRegular);
    }
    let f = std::fs::File::open(path)?;
    let (digest, _) = crate::digest::sha256_reader(f)?;
    let exec = meta.permissions().mode() & 0o111 != 0;
    Ok(format!("file:{}:{digest}", if exec { "x" } else { "-" }))
}

/// Every file the `inputs` globs match below `root` (links are not followed), digested with
/// its path.
pub(super) fn files_state(root: &Path, patterns: &[String]) -> Result<FilesState, DigestError> {
    let mut found: std::collections::BTreeMap<String, PathBuf> = Default::default();
    for pattern in patterns {
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|source| DigestError::Glob {
                pattern: pattern.clone(),
                source,
            })?
            .compile_matcher();
        let base = root.join(fixed_prefix(pattern));
        for entry in walkdir::WalkDir::new(&base)
            .follow_links(false)
            .sort_by_file_name()
        {
            let entry = match entry {
                Ok(e) => e,
                // A glob whose folder does not exist (yet) matches nothing.
                Err(e)
                    if e.io_error().map(std::io::Error::kind)
                        == Some(std::io::ErrorKind::NotFound)
                        && e.depth() == 0 =>
                {
                    break;
                }
                Err(source) => {
                    return Err(DigestError::Walk {
                        pattern: pattern.clone(),
                        source,
                    });
                }
            };
            if entry.file_type().is_dir() {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(root) else {
                continue;
            };
            let Some(rel) = rel.to_str() else {
                return Err(DigestError::NotUtf8 {
                    pattern: pattern.clone(),
                    path: entry.path().to_path_buf(),
                });
            };
            if glob.is_match(rel) {
                found.insert(rel.to_string(), entry.path().to_path_buf());
            }
        }
    }
    let mut h = Sha256::new();
    h.update(b"relgate/inputs/v1\0");
    for (rel, path) in &found {
        let content = entry_digest(path).map_err(|source| DigestError::Entry {
            shown: rel.clone(),
            source,
        })?;
        h.update(rel.as_bytes());
        h.update(b"\0");
        h.update(content.as_bytes());
        h.update(b"\n");
    }
    Ok(FilesState {
        files: found.len() as u64,
        digest: hex::encode(h.finalize()),
    })
}

/// The folder part of a glob before its first metacharacter: the only place worth walking.
fn fixed_prefix(pattern: &str) -> String {
    let parts: Vec<&str> = pattern.split('/').collect();
    let n = parts
        .iter()
        .position(|p| p.contains(['*', '?', '[', '{']))
        .unwrap_or(parts.len().saturating_sub(1));
    parts[..n].join("/")
}

/// Every regular file below `dir`, with its path, digested (a private clamd's database).
pub(super) fn folder_digest(dir: &Path) -> Result<String, DigestError> {
    let mut h = Sha256::new();
    h.update(b"relgate/folder/v1\0");
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|source| DigestError::Folder {
            dir: dir.to_path_buf(),
            source,
        })?;
        if entry.file_type().is_dir() {
            continue;
        }
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let content = entry_digest(entry.path()).map_err(DigestError::Content)?;
        h.update(rel.as_os_str().as_encoded_bytes());
        h.update(b"\0");
        h.update(content.as_bytes());
        h.update(b"\n");
    }
    Ok(hex::encode(h.finalize()))
}

/// The environment the command will inherit (relgate's own, less what the gate's `env` sets
/// and the session and relgate variables), digested under the state folder's key so that the
/// recorded digest — published in `audit/` — tells nothing about secret values.
pub(super) fn environment_digest(
    spec: &RegressionSpec,
    state_dir: &Path,
) -> Result<String, DigestError> {
    let key = reuse_key(state_dir)?;
    let vars = std::env::vars_os()
        .map(|(k, v)| (k.as_encoded_bytes().to_vec(), v.as_encoded_bytes().to_vec()));
    Ok(keyed_env_digest(&key, vars, |name| {
        let name = std::str::from_utf8(name).unwrap_or("");
        SESSION_VARS.contains(&name)
            || SET_BY_RELGATE.contains(&name)
            || spec.env.contains_key(name)
    }))
}

/// Pure: the sorted variables not `skipped`, hashed after the key.
fn keyed_env_digest(
    key: &[u8],
    vars: impl Iterator<Item = (Vec<u8>, Vec<u8>)>,
    skipped: impl Fn(&[u8]) -> bool,
) -> String {
    let mut vars: Vec<(Vec<u8>, Vec<u8>)> = vars.filter(|(k, _)| !skipped(k)).collect();
    vars.sort();
    let mut h = Sha256::new();
    h.update(b"relgate/environment/v1\0");
    h.update(key);
    for (k, v) in &vars {
        h.update(k);
        h.update(b"\0");
        h.update(v);
        h.update(b"\0");
    }
    hex::encode(h.finalize())
}

/// The state folder's random key, made on first use (0600, never in a record). Losing it only
/// means the next run keeps nothing.
fn reuse_key(state_dir: &Path) -> Result<Vec<u8>, DigestError> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    let path = state_dir.join(KEY_FILE);
    match std::fs::read(&path) {
        Ok(k) if k.len() == 32 => return Ok(k),
        Ok(_) => {
            return Err(DigestError::BadKey { path });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(DigestError::ReadKey { path, source }),
    }
    let cannot = |source: std::io::Error| DigestError::MakeKey {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(state_dir).map_err(cannot)?;
    let mut key = [0u8; 32];
    ssh_key::rand_core::RngCore::try_fill_bytes(&mut ssh_key::rand_core::OsRng, &mut key)
        .map_err(DigestError::Random)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".reuse-key")
        .tempfile_in(state_dir)
        .map_err(cannot)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(cannot)?;
    tmp.write_all(&key).map_err(cannot)?;
    tmp.as_file().sync_all().map_err(cannot)?;
    match tmp.persist_noclobber(&path) {
        Ok(_) => Ok(key.to_vec()),
        // Another run made it first: use theirs.
        Err(_) => std::fs::read(&path)
            .ok()
            .filter(|k| k.len() == 32)
            .ok_or(DigestError::KeyLost { path }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> {
        list.iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn the_environment_digest_sees_values_and_order_does_not_matter() {
        let none = |_: &[u8]| false;
        let a = keyed_env_digest(b"k", vars(&[("A", "1"), ("B", "2")]), none);
        let b = keyed_env_digest(b"k", vars(&[("B", "2"), ("A", "1")]), none);
        assert_eq!(a, b);
        assert_ne!(
            a,
            keyed_env_digest(b"k", vars(&[("A", "1"), ("B", "3")]), none)
        );
        assert_ne!(
            a,
            keyed_env_digest(b"other", vars(&[("A", "1"), ("B", "2")]), none)
        );
        // A name and value cannot be shifted into each other.
        assert_ne!(
            keyed_env_digest(b"k", vars(&[("AB", "")]), none),
            keyed_env_digest(b"k", vars(&[("A", "B")]), none)
        );
        let skip_pwd = |k: &[u8]| k == b"PWD";
        assert_eq!(
            keyed_env_digest(b"k", vars(&[("A", "1"), ("PWD", "/x")]), skip_pwd),
            keyed_env_digest(b"k", vars(&[("A", "1"), ("PWD", "/y")]), skip_pwd)
        );
    }
}
