//! The state of the git work tree a command runs in: its HEAD commit and every path that
//! differs from it, as `git status` sees them. A kept test result is only as honest as this
//! reading (see `engine::reuse`).
//!
//! git runs under the same guard as for the change range, plus settings that would let a cache
//! answer instead of the files: the file system monitor and the untracked cache are off.
//! Paths git has been told not to look at (`assume-unchanged`, `skip-worktree`) are reported,
//! since a change to them would go unseen.

use std::path::{Path, PathBuf};

use super::GitError;

/// What git says about the work tree around a folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The folder is not inside a git work tree (or git says so for the `.git` folder itself).
    Outside,
    Inside(WorkTree),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkTree {
    /// The work tree's top folder, as git resolved it.
    pub top: PathBuf,
    /// The commit HEAD names; `None` on a branch without a commit yet.
    pub head: Option<String>,
    /// Every tracked path that differs from HEAD (staged or not) and every untracked path that
    /// is not ignored, in git's order.
    pub changes: Vec<Change>,
    /// How many tracked paths git was told to take as unchanged (`assume-unchanged` or
    /// `skip-worktree`): changes to them do not show in `changes`.
    pub unwatched: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The two status letters (`XY` of `git status --porcelain`), e.g. ` M`, `A `, `??`.
    pub status: String,
    /// The path relative to the top folder, as git printed it (`/`-separated bytes).
    pub path: Vec<u8>,
}

/// Read the work tree around `dir`. An error means git could not answer (not installed, a
/// broken repository): the caller cannot tell what the tree holds.
pub async fn probe(
    dir: &Path,
    mut cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<Probe, GitError> {
    let cancel = &mut cancel;
    let what = "rev-parse --is-inside-work-tree";
    let inside = super::output(dir, &["rev-parse", "--is-inside-work-tree"], cancel).await?;
    // Outside any repository git exits 128; inside `.git` it prints `false`.
    if !inside.status.success() || String::from_utf8_lossy(&inside.stdout).trim() != "true" {
        if inside.status.success() || inside.status.code() == Some(128) {
            return Ok(Probe::Outside);
        }
        return Err(super::failed(dir, what, &inside));
    }
    let top = super::stdout(
        dir,
        "rev-parse --show-toplevel",
        &["rev-parse", "--show-toplevel"],
        cancel,
    )
    .await?;
    let top = PathBuf::from(
        String::from_utf8_lossy(&top)
            .trim_end_matches('\n')
            .to_string(),
    );
    let head = super::output(
        &top,
        &["rev-parse", "--verify", "--quiet", "HEAD^{commit}"],
        cancel,
    )
    .await?;
    let head = if head.status.success() {
        let id = String::from_utf8_lossy(&head.stdout).trim().to_string();
        if !super::is_object_id(&id) {
            return Err(GitError::Unexpected {
                repo: top,
                what: "rev-parse HEAD".into(),
                output: id,
            });
        }
        Some(id)
    } else {
        None
    };
    let status = super::stdout(
        &top,
        "status",
        &[
            "-c",
            "core.fsmonitor=false",
            "-c",
            "core.untrackedCache=false",
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--no-renames",
            "--ignore-submodules=none",
        ],
        cancel,
    )
    .await?;
    let changes = parse_status(&status).map_err(|output| GitError::Unexpected {
        repo: top.clone(),
        what: "status --porcelain".into(),
        output,
    })?;
    let listed = super::stdout(&top, "ls-files -v", &["ls-files", "-v", "-z"], cancel).await?;
    let unwatched = count_unwatched(&listed);
    Ok(Probe::Inside(WorkTree {
        top,
        head,
        changes,
        unwatched,
    }))
}

/// `XY PATH` records, each ended by NUL (`--porcelain=v1 -z --no-renames`: one path each).
/// Pure. `Err` holds the record that does not read.
pub fn parse_status(raw: &[u8]) -> Result<Vec<Change>, String> {
    let mut out = Vec::new();
    for record in raw.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        match record {
            [x, y, b' ', path @ ..] if !path.is_empty() => out.push(Change {
                status: String::from_utf8_lossy(&[*x, *y]).into_owned(),
                path: path.to_vec(),
            }),
            _ => return Err(String::from_utf8_lossy(record).into_owned()),
        }
    }
    Ok(out)
}

/// Entries of `git ls-files -v -z` whose tag says git does not look at the file: a lowercase
/// letter (`assume-unchanged`) or `S` (`skip-worktree`). Pure.
pub fn count_unwatched(raw: &[u8]) -> usize {
    raw.split(|b| *b == 0)
        .filter(|r| matches!(r.first(), Some(t) if t.is_ascii_lowercase() || *t == b'S'))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_records_read_with_their_two_letters() {
        let got = parse_status(b" M src/a.rs\0?? new file.txt\0A  b\0").unwrap();
        let paths: Vec<(&str, &[u8])> = got
            .iter()
            .map(|c| (c.status.as_str(), c.path.as_slice()))
            .collect();
        assert_eq!(
            paths,
            [
                (" M", b"src/a.rs".as_slice()),
                ("??", b"new file.txt".as_slice()),
                ("A ", b"b".as_slice())
            ]
        );
        assert!(parse_status(b"").unwrap().is_empty());
        assert!(parse_status(b"M\0").is_err());
    }

    #[test]
    fn assume_unchanged_and_skip_worktree_are_counted() {
        assert_eq!(count_unwatched(b"H a\0h b\0S c\0H d\0"), 2);
        assert_eq!(count_unwatched(b""), 0);
    }
}
