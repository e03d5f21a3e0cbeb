//! Reading a release's change range (`changes.range` in `changes.repo`) with the git CLI, run so
//! that nothing stored in the repository can rewrite the history relgate reads.
//!
//! relgate runs the `git` its users already have instead of linking a git library. A repository
//! can change what git reports without changing a single commit: `refs/replace/` swaps one
//! object for another, `info/grafts` gives a commit other parents, a `shallow` file cuts history
//! off, a commit-graph file caches parents, `.mailmap` renames people, `diff.relative` hides
//! files. Every git process relgate starts runs under one [`HistoryGuard`], which the evidence
//! records; a shallow repository is refused (see [`range`]).
//!
//! [`range::read_range`] checks and resolves the range and runs one `git log`, whose output is
//! stored verbatim so that replay parses it again with [`parse_log`] (pure, no git needed).

pub mod log;
pub mod range;
pub mod worktree;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde::{Deserialize, Serialize};

pub use log::{Commit, parse_log, trailers};
pub use range::{RangeFacts, RangeProblem, RangeRead, RangeSpec, read_range, resolve_commit};

/// How git was run, as recorded in the evidence. [`HistoryGuard::applied`] is what relgate
/// does; a judge refuses evidence that does not show it (`change-history-unguarded`), such as
/// evidence written before relgate guarded its git runs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct HistoryGuard {
    /// Were `refs/replace/` objects applied? relgate passes `--no-replace-objects` and sets
    /// `GIT_NO_REPLACE_OBJECTS=1`.
    pub replace_objects: bool,
    /// `GIT_GRAFT_FILE`: `/dev/null`, so `info/grafts` cannot give a commit other parents
    /// (`--no-replace-objects` does not turn grafts off).
    pub graft_file: String,
    /// Was a commit-graph file used? Off (`core.commitGraph=false`): parents come from the
    /// commit objects themselves, not from a cache file anyone with write access can replace.
    pub commit_graph: bool,
    /// Was `.mailmap` applied? Off: identities are compared as the commits hold them.
    pub mailmap: bool,
}

impl HistoryGuard {
    pub fn applied() -> HistoryGuard {
        HistoryGuard {
            replace_objects: false,
            graft_file: "/dev/null".to_string(),
            commit_graph: false,
            mailmap: false,
        }
    }

    pub fn holds(&self) -> bool {
        *self == HistoryGuard::applied()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("range {range:?} is not a plain revision range: {why}")]
    BadRange { range: String, why: &'static str },
    #[error("cannot run git in {repo}")]
    Spawn {
        repo: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("git {what} in {repo} failed: {stderr}")]
    Failed {
        repo: PathBuf,
        what: String,
        stderr: String,
    },
    #[error("git {what} in {repo} printed {output:?}, which relgate does not understand")]
    Unexpected {
        repo: PathBuf,
        what: String,
        output: String,
    },
    #[error("git log output does not parse at byte {offset}: {message}")]
    Parse { offset: usize, message: String },
    #[error("cannot make a random record separator")]
    Random,
    #[error("interrupted")]
    Interrupted,
}

/// A git command in `repo` under the [`HistoryGuard`]. The user's and the repository's
/// configuration cannot change what relgate parses: every setting that could is pinned here or
/// by an option of the command itself.
fn command(repo: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("--no-replace-objects")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "core.commitGraph=false",
            "-c",
            "log.mailmap=false",
            "-c",
            "log.showSignature=false",
            "-c",
            "log.showRoot=true",
            "-c",
            "core.quotePath=false",
            "-c",
            "i18n.logOutputEncoding=UTF-8",
        ])
        .env("GIT_NO_REPLACE_OBJECTS", "1")
        .env("GIT_GRAFT_FILE", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    // Variables that would point git at other objects, refs or repositories than `repo`'s.
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_COMMON_DIR",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_NAMESPACE",
        "GIT_REPLACE_REF_BASE",
        "GIT_SHALLOW_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Run `git ARGS` in `repo` under the guard; the output whatever the exit status.
async fn output(
    repo: &Path,
    args: &[&str],
    cancel: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<Output, GitError> {
    let mut cmd = command(repo);
    cmd.args(args);
    tokio::select! {
        out = cmd.output() => out.map_err(|source| GitError::Spawn { repo: repo.to_path_buf(), source }),
        _ = cancelled(cancel) => Err(GitError::Interrupted),
    }
}

/// Run `git ARGS` in `repo`; its stdout when it exits 0, else [`GitError::Failed`].
async fn stdout(
    repo: &Path,
    what: &str,
    args: &[&str],
    cancel: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<u8>, GitError> {
    let out = output(repo, args, cancel).await?;
    if !out.status.success() {
        return Err(failed(repo, what, &out));
    }
    Ok(out.stdout)
}

fn failed(repo: &Path, what: &str, out: &Output) -> GitError {
    GitError::Failed {
        repo: repo.to_path_buf(),
        what: what.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    }
}

/// Resolves when the run is interrupted; never when the sender is gone (nobody can cancel).
async fn cancelled(cancel: &mut tokio::sync::watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A full hexadecimal object id (SHA-1 or SHA-256).
pub fn is_object_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}
