//! The change range: its syntax, what git says about it before it is read, and the problems
//! that stop it from being judged at all.
//!
//! A range names what a release ships, so it has to be a span of history: `START..END` where
//! START is an ancestor of END (a reversed or unrelated START would hide END's commits), or a
//! single `END` (everything up to END). Both ends are resolved to commit ids once, and `git log`
//! reads those ids, so a ref moved meanwhile changes nothing.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{GitError, HistoryGuard, is_object_id, log};

/// A parsed `changes.range`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeSpec<'a> {
    pub start: Option<&'a str>,
    pub end: &'a str,
}

impl<'a> RangeSpec<'a> {
    /// `START..END` or `END`; each a single revision (a ref, a tag, a commit id, `HEAD~2`).
    /// Pure: the judge checks the recorded range with it too.
    pub fn parse(range: &'a str) -> Result<RangeSpec<'a>, &'static str> {
        if range.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("it holds whitespace or a control character");
        }
        let spec = match range.split_once("..") {
            None => RangeSpec {
                start: None,
                end: range,
            },
            Some((start, end)) => {
                if end.starts_with('.') {
                    return Err("`...` (symmetric difference) is not a span of history");
                }
                if start.is_empty() || end.is_empty() {
                    return Err("write both ends, START..END");
                }
                if end.contains("..") {
                    return Err("it holds more than one `..`");
                }
                RangeSpec {
                    start: Some(start),
                    end,
                }
            }
        };
        for rev in spec.start.iter().chain([&spec.end]) {
            if rev.is_empty() {
                return Err("it is empty");
            }
            if rev.starts_with(['-', '^']) {
                return Err("an end starts with `-` or `^`");
            }
        }
        Ok(spec)
    }
}

/// What git said about the range, recorded with the evidence. The judge refuses a range with a
/// [`RangeProblem`] before it looks at a single commit.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RangeFacts {
    /// `git version` output.
    pub git: String,
    pub guard: HistoryGuard,
    /// `git rev-parse --is-shallow-repository`: a shallow boundary hides history (and a
    /// `shallow` file written by hand cuts a commit from its parents), so it is refused.
    pub shallow: bool,
    /// START and END resolved to commit ids.
    pub start: Option<String>,
    pub end: Option<String>,
    /// `git merge-base --is-ancestor START END` (absent without START).
    pub start_is_ancestor: Option<bool>,
    /// The random token that delimits the recorded `git log` output (see [`log`]).
    pub separator: Option<String>,
}

/// Why a range cannot be judged. Each has a stable code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeProblem {
    #[error(
        "the evidence does not show git run with replace refs and grafts disabled (recorded by an older relgate?); run the release again"
    )]
    Unguarded,
    #[error(
        "{range}: the repository is a shallow clone, whose boundary hides history; fetch it in full (git fetch --unshallow)"
    )]
    Shallow { range: String },
    #[error(
        "{range}: START {start} is not an ancestor of END {end}, so the range would leave out commits END ships"
    )]
    StartNotAncestor {
        range: String,
        start: String,
        end: String,
    },
    #[error("{range}: the evidence lacks the resolved range or the git log output")]
    Incomplete { range: String },
}

impl RangeProblem {
    pub fn code(&self) -> crate::gates::Code {
        match self {
            RangeProblem::Unguarded => crate::gates::Code::ChangeHistoryUnguarded,
            RangeProblem::Shallow { .. } => crate::gates::Code::ChangeHistoryShallow,
            RangeProblem::StartNotAncestor { .. } => {
                crate::gates::Code::ChangeRangeStartNotAncestor
            }
            RangeProblem::Incomplete { .. } => crate::gates::Code::EvidenceMalformed,
        }
    }
}

impl RangeFacts {
    /// The problem that stops `range` from being judged, if any. Pure.
    pub fn problem(facts: Option<&RangeFacts>, range: &str) -> Option<RangeProblem> {
        let Some(f) = facts.filter(|f| f.guard.holds()) else {
            return Some(RangeProblem::Unguarded);
        };
        let range = range.to_string();
        if f.shallow {
            return Some(RangeProblem::Shallow { range });
        }
        match (&f.start, &f.end, f.start_is_ancestor, &f.separator) {
            (Some(start), Some(end), Some(false), _) => Some(RangeProblem::StartNotAncestor {
                range,
                start: start.clone(),
                end: end.clone(),
            }),
            (Some(_), Some(_), Some(true), Some(_)) | (None, Some(_), None, Some(_)) => None,
            _ => Some(RangeProblem::Incomplete { range }),
        }
    }
}

/// The facts about a range and, when nothing stops it from being judged, its `git log` output.
#[derive(Clone, Debug)]
pub struct RangeRead {
    pub facts: RangeFacts,
    pub log: Option<Vec<u8>>,
}

/// Check and resolve `range` in `repo`, then read it with one `git log` (see [`log`]).
/// A shallow repository or a START that is not an ancestor of END is not read: the facts say
/// why, and the judge turns that into a red verdict.
pub async fn read_range(
    repo: &Path,
    range: &str,
    mut cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<RangeRead, GitError> {
    let spec = RangeSpec::parse(range).map_err(|why| GitError::BadRange {
        range: range.to_string(),
        why,
    })?;
    let cancel = &mut cancel;
    let version = super::stdout(repo, "version", &["version"], cancel).await?;
    let mut facts = RangeFacts {
        git: String::from_utf8_lossy(&version).trim().to_string(),
        guard: HistoryGuard::applied(),
        shallow: false,
        start: None,
        end: None,
        start_is_ancestor: None,
        separator: None,
    };
    let what = "rev-parse --is-shallow-repository";
    let shallow = super::stdout(
        repo,
        what,
        &["rev-parse", "--is-shallow-repository"],
        cancel,
    )
    .await?;
    facts.shallow = match String::from_utf8_lossy(&shallow).trim() {
        "true" => true,
        "false" => false,
        other => {
            return Err(GitError::Unexpected {
                repo: repo.to_path_buf(),
                what: what.to_string(),
                output: other.to_string(),
            });
        }
    };
    if facts.shallow {
        return Ok(RangeRead { facts, log: None });
    }
    let end = resolve(repo, spec.end, cancel).await?;
    facts.end = Some(end.clone());
    let revs = match spec.start {
        None => end,
        Some(start) => {
            let start = resolve(repo, start, cancel).await?;
            facts.start = Some(start.clone());
            let ancestor = is_ancestor(repo, &start, &end, cancel).await?;
            facts.start_is_ancestor = Some(ancestor);
            if !ancestor {
                return Ok(RangeRead { facts, log: None });
            }
            format!("{start}..{end}")
        }
    };
    // Chosen only now: the commits are fixed by their ids, so even a process that reads this
    // token off our command line cannot put it into a commit that this log will print.
    let token = random_token()?;
    let raw = log::log_raw(repo, &revs, &token, cancel).await?;
    facts.separator = Some(token);
    Ok(RangeRead {
        facts,
        log: Some(raw),
    })
}

/// The commit id `rev` names in `repo`, read under the [`HistoryGuard`] (a tag is peeled).
pub async fn resolve_commit(
    repo: &Path,
    rev: &str,
    mut cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<String, GitError> {
    resolve(repo, rev, &mut cancel).await
}

/// The commit id `rev` names (a tag is peeled; anything that is not one commit is an error).
async fn resolve(
    repo: &Path,
    rev: &str,
    cancel: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<String, GitError> {
    let what = format!("rev-parse {rev}");
    let peeled = format!("{rev}^{{commit}}");
    let out = super::stdout(
        repo,
        &what,
        &["rev-parse", "--verify", "--end-of-options", &peeled],
        cancel,
    )
    .await?;
    let id = String::from_utf8_lossy(&out).trim().to_string();
    if !is_object_id(&id) {
        return Err(GitError::Unexpected {
            repo: repo.to_path_buf(),
            what,
            output: id,
        });
    }
    Ok(id)
}

async fn is_ancestor(
    repo: &Path,
    start: &str,
    end: &str,
    cancel: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<bool, GitError> {
    let args = ["merge-base", "--is-ancestor", start, end];
    let out = super::output(repo, &args, cancel).await?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(super::failed(repo, "merge-base --is-ancestor", &out)),
    }
}

/// 128 random bits, hexadecimal.
fn random_token() -> Result<String, GitError> {
    use ssh_key::rand_core::RngCore as _;
    let mut bytes = [0u8; 16];
    ssh_key::rand_core::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|_| GitError::Random)?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_start_dot_dot_end_or_one_revision() {
        let r = RangeSpec::parse("v1.3.0..HEAD").unwrap();
        assert_eq!((r.start, r.end), (Some("v1.3.0"), "HEAD"));
        assert_eq!(RangeSpec::parse("HEAD~3").unwrap().start, None);
        for bad in [
            "",
            "a...b",
            "..HEAD",
            "v1..",
            "a..b..c",
            "-n1",
            "^v1 HEAD",
            "v1..^HEAD",
            "v1 ..HEAD",
            "v1..HEAD\n",
        ] {
            assert!(RangeSpec::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn facts_without_the_guard_or_with_a_shallow_or_reversed_range_are_a_problem() {
        let good = RangeFacts {
            git: "git version 2.47.3".into(),
            guard: HistoryGuard::applied(),
            shallow: false,
            start: Some("a".repeat(40)),
            end: Some("b".repeat(40)),
            start_is_ancestor: Some(true),
            separator: Some("0".repeat(32)),
        };
        assert_eq!(RangeFacts::problem(Some(&good), "r"), None);
        let code = |f: &RangeFacts| RangeFacts::problem(Some(f), "r").map(|p| p.code().as_str());
        assert_eq!(
            RangeFacts::problem(None, "r").map(|p| p.code().as_str()),
            Some("change-history-unguarded")
        );
        let mut f = good.clone();
        f.guard.graft_file = String::new();
        assert_eq!(code(&f), Some("change-history-unguarded"));
        let mut f = good.clone();
        f.shallow = true;
        assert_eq!(code(&f), Some("change-history-shallow"));
        let mut f = good.clone();
        f.start_is_ancestor = Some(false);
        assert_eq!(code(&f), Some("change-range-start-not-ancestor"));
        let mut f = good;
        f.separator = None;
        assert_eq!(code(&f), Some("evidence-malformed"));
    }
}
