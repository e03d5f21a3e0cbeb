//! Reading a release's change range (`changes.range` in `changes.repo`) with the git CLI.
//!
//! relgate runs the `git` its users already have instead of linking a git library: the output of
//! one `git log` call is all it needs, and it is stored verbatim so that replay can parse it again
//! with [`parse_log`] (pure, no git needed) years later.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `git log` format: each commit starts with RS, fields end with US, the message ends with US and
/// NUL (`-z`), then the touched files follow, each ending with NUL.
const FORMAT: &str = "--format=%x1e%H%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%B%x1f";

const RS: u8 = 0x1e;
const US: u8 = 0x1f;

/// One non-merge commit of the range.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Commit {
    pub hash: String,
    pub parents: Vec<String>,
    pub author_name: String,
    pub author_email: String,
    /// Author date, strict ISO 8601 as git prints it (`%aI`).
    pub date: String,
    /// The whole message (subject, body, trailers).
    pub message: String,
    /// Files the commit touched (`--name-only`, `/`-separated, relative to the repository).
    pub files: Vec<String>,
}

impl Commit {
    /// The message's first line.
    pub fn subject(&self) -> &str {
        self.message.lines().next().unwrap_or("").trim()
    }

    /// `Name <email>`.
    pub fn author(&self) -> String {
        format!("{} <{}>", self.author_name, self.author_email)
    }

    /// The trailers of the message (see [`trailers`]).
    pub fn trailers(&self) -> Vec<(String, String)> {
        trailers(&self.message)
    }

    /// Is `principal` this commit's author? Principals are matched to the author's email,
    /// ignoring ASCII case (allowed_signers principals are usually email addresses).
    pub fn authored_by(&self, principal: &str) -> bool {
        !self.author_email.is_empty() && self.author_email.eq_ignore_ascii_case(principal.trim())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("range {range:?} is not a plain revision range")]
    BadRange { range: String },
    #[error("cannot run git in {repo}")]
    Spawn {
        repo: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("git log {range} in {repo} failed: {stderr}")]
    Failed {
        repo: PathBuf,
        range: String,
        stderr: String,
    },
    #[error("git log output does not parse at byte {offset}: {message}")]
    Parse { offset: usize, message: String },
    #[error("interrupted")]
    Interrupted,
}

/// Run `git log` over `range` in `repo`; returns the raw output (to be stored as evidence).
///
/// Merges are left out (`--no-merges`): they carry no change of their own to review. The user's
/// git configuration cannot change the output: signatures, colour and renames are pinned off.
pub async fn log_raw(
    repo: &Path,
    range: &str,
    mut cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<u8>, GitError> {
    // A range is a revision expression, never an option or a path.
    if range.is_empty() || range.starts_with('-') || range.contains(['\0', '\n']) {
        return Err(GitError::BadRange {
            range: range.to_string(),
        });
    }
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("-C")
        .arg(repo)
        .args([
            "-c",
            "log.showSignature=false",
            "-c",
            "core.quotePath=false",
            "-c",
            "i18n.logOutputEncoding=UTF-8",
            "log",
            "--no-merges",
            "--no-color",
            "--no-renames",
            "--name-only",
            "-z",
            FORMAT,
            "--end-of-options",
            range,
            "--",
        ])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::select! {
        out = cmd.output() => out.map_err(|source| GitError::Spawn { repo: repo.to_path_buf(), source })?,
        _ = cancelled(&mut cancel) => return Err(GitError::Interrupted),
    };
    if !out.status.success() {
        return Err(GitError::Failed {
            repo: repo.to_path_buf(),
            range: range.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

/// Resolves when the run is interrupted; never when the sender is gone (nobody can cancel).
async fn cancelled(cancel: &mut tokio::sync::watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Parse the output of [`log_raw`]. Pure: replay calls it on the stored bytes.
pub fn parse_log(raw: &[u8]) -> Result<Vec<Commit>, GitError> {
    let err = |offset: usize, message: &str| GitError::Parse {
        offset,
        message: message.to_string(),
    };
    let mut commits = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != RS {
            return Err(err(i, "expected the start of a commit"));
        }
        i += 1;
        let mut fields = Vec::with_capacity(5);
        for _ in 0..5 {
            let end = raw[i..]
                .iter()
                .position(|&b| b == US)
                .ok_or_else(|| err(i, "a commit header ends early"))?;
            fields.push(String::from_utf8_lossy(&raw[i..i + end]).into_owned());
            i += end + 1;
        }
        // A commit message holds no NUL, so the first US NUL ends it.
        let end = raw[i..]
            .windows(2)
            .position(|w| w == [US, 0])
            .ok_or_else(|| err(i, "a commit message does not end"))?;
        let message = String::from_utf8_lossy(&raw[i..i + end]).into_owned();
        i += end + 2;
        if raw.get(i) == Some(&b'\n') {
            i += 1;
        }
        let mut files = Vec::new();
        while i < raw.len() && !starts_commit(&raw[i..]) {
            let end = raw[i..]
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| err(i, "a file name does not end"))?;
            if end > 0 {
                files.push(String::from_utf8_lossy(&raw[i..i + end]).into_owned());
            }
            i += end + 1;
        }
        let [hash, parents, author_name, author_email, date]: [String; 5] = fields
            .try_into()
            .map_err(|_| err(i, "a commit header has the wrong number of fields"))?;
        if !is_object_id(&hash) {
            return Err(err(i, "a commit hash is not hexadecimal"));
        }
        commits.push(Commit {
            hash,
            parents: parents.split_whitespace().map(str::to_string).collect(),
            author_name,
            author_email,
            date,
            message,
            files,
        });
    }
    Ok(commits)
}

/// Does `rest` start a commit record (RS, a hex object id, US)? Tells a record from a file
/// name that happens to begin with RS.
fn starts_commit(rest: &[u8]) -> bool {
    if rest.first() != Some(&RS) {
        return false;
    }
    match rest[1..].iter().position(|&b| b == US) {
        Some(n) => std::str::from_utf8(&rest[1..1 + n]).is_ok_and(is_object_id),
        None => false,
    }
}

fn is_object_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The trailers of a commit message, git's way: the last paragraph (not the subject), when
/// every line in it is `Token: value` or a continuation line (leading whitespace). Tokens keep
/// their spelling; compare them ignoring ASCII case.
pub fn trailers(message: &str) -> Vec<(String, String)> {
    let text = message.replace("\r\n", "\n");
    let paragraphs: Vec<&str> = text
        .split("\n\n")
        .map(|p| p.trim_matches('\n'))
        .filter(|p| !p.trim().is_empty())
        .collect();
    if paragraphs.len() < 2 {
        return Vec::new();
    }
    let Some(last) = paragraphs.last() else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for line in last.lines() {
        if line.starts_with([' ', '\t']) {
            match out.last_mut() {
                Some((_, v)) => {
                    v.push(' ');
                    v.push_str(line.trim());
                    continue;
                }
                None => return Vec::new(),
            }
        }
        let Some((token, value)) = line.split_once(':') else {
            return Vec::new();
        };
        let valid_token = !token.is_empty()
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid_token {
            return Vec::new();
        }
        out.push((token.to_string(), value.trim().to_string()));
    }
    out
}

/// The email in `Name <email>`, or the whole value when it has no `<...>`.
pub fn identity_email(value: &str) -> &str {
    match (value.rfind('<'), value.rfind('>')) {
        (Some(a), Some(b)) if a < b => value[a + 1..b].trim(),
        _ => value.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_come_from_the_last_paragraph_only() {
        let msg = "Fix it\n\nReviewed-by: nobody in the body: really\nmore\n\nReviewed-by: Bob <b@x>\nTest: unit\n  and more\n";
        assert_eq!(
            trailers(msg),
            vec![
                ("Reviewed-by".into(), "Bob <b@x>".into()),
                ("Test".into(), "unit and more".into())
            ]
        );
        assert!(
            trailers("Reviewed-by: Bob <b@x>\n").is_empty(),
            "subject only"
        );
        assert!(trailers("Fix\n\nsome prose\nReviewed-by: Bob\n").is_empty());
    }

    #[test]
    fn identity_email_takes_the_angle_brackets() {
        assert_eq!(identity_email("Bob B <bob@x.test>"), "bob@x.test");
        assert_eq!(identity_email("bob@x.test"), "bob@x.test");
    }

    #[test]
    fn parse_log_reads_files_and_empty_commits() {
        let h1 = "a".repeat(40);
        let h2 = "b".repeat(40);
        let raw = format!(
            "\x1e{h1}\x1f{h2}\x1fA\x1fa@x\x1f2026-01-01T00:00:00Z\x1fone\n\nTest: x\n\x1f\0\nsrc/a\0tests/b\0\x1e{h2}\x1f\x1fB\x1fb@x\x1f2026-01-01T00:00:00Z\x1fempty\n\x1f\0"
        );
        let got = parse_log(raw.as_bytes()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].files, ["src/a", "tests/b"]);
        assert_eq!(got[0].parents, vec![h2]);
        assert_eq!(got[0].subject(), "one");
        assert!(got[1].files.is_empty());
        assert!(got[1].parents.is_empty());
        assert!(parse_log(b"garbage").is_err());
    }
}
