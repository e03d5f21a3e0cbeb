//! One `git log` over a resolved range, and its pure parser.
//!
//! The output is stored as evidence and parsed again by the judge, in the run and in replay.
//! Commit content is the attacker's input here (names, messages and file names may hold any
//! byte but NUL), so records and fields are delimited by a random token chosen after the range
//! was resolved to commit ids: no commit can contain it, so none can forge a record, shift a
//! field or end a file list early.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{GitError, is_object_id};

const RS: u8 = 0x1e;
const US: u8 = 0x1f;

/// Fields before the message: hash, parents, author name, author email, author date,
/// committer name, committer email.
const HEADER_FIELDS: usize = 7;

/// The `--format` for `token`: each commit starts with RS + token, each field (the message
/// last) ends with US + token. `-z` then ends the header with NUL and each file name with NUL.
fn format(token: &str) -> String {
    let end = format!("%x1f{token}");
    format!("--format=%x1e{token}%H{end}%P{end}%an{end}%ae{end}%aI{end}%cn{end}%ce{end}%B{end}")
}

/// One commit of the range.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Commit {
    pub hash: String,
    pub parents: Vec<String>,
    pub author_name: String,
    pub author_email: String,
    /// Author date, strict ISO 8601 as git prints it (`%aI`).
    pub date: String,
    pub committer_name: String,
    pub committer_email: String,
    /// The whole message (subject, body, trailers).
    pub message: String,
    /// Files the commit touched (`--name-only`, `/`-separated, relative to the repository).
    /// For a merge: the files whose content matches none of its parents
    /// (`--diff-merges=combined`), i.e. the changes the merge itself makes.
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

    /// `Name <email>`.
    pub fn committer(&self) -> String {
        format!("{} <{}>", self.committer_name, self.committer_email)
    }

    /// The trailers of the message (see [`trailers`]).
    pub fn trailers(&self) -> Vec<(String, String)> {
        trailers(&self.message)
    }

    pub fn is_merge(&self) -> bool {
        self.parents.len() > 1
    }

    /// Is there a change of this commit's own to judge? Every non-merge commit (even an empty
    /// one) is one. A merge is when it holds a file that is in none of its parents: an added
    /// file, a conflict resolution, or a file both sides changed — content nobody reviewed as
    /// such. A merge that only joins reviewed histories is left out; its commits are judged.
    pub fn carries_change(&self) -> bool {
        !self.is_merge() || !self.files.is_empty()
    }
}

/// Run `git log` over `revs` (resolved commit ids: `START..END` or `END`) in `repo`, with
/// `token` as the record separator; returns the raw output, to be stored as evidence.
///
/// Merges are listed with the files that differ from every parent (`--diff-merges=combined`),
/// so a merge with a change of its own is judged like any commit. The diff settings that could
/// hide a file (`diff.relative`, `diff.ignoreSubmodules`, renames) are pinned off.
pub(super) async fn log_raw(
    repo: &Path,
    revs: &str,
    token: &str,
    cancel: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<u8>, GitError> {
    let format = format(token);
    let args = [
        "log",
        "--no-color",
        "--no-mailmap",
        "--no-renames",
        "--no-relative",
        "--ignore-submodules=none",
        "--diff-merges=combined",
        "--name-only",
        "-z",
        format.as_str(),
        "--end-of-options",
        revs,
        "--",
    ];
    super::stdout(repo, &format!("log {revs}"), &args, cancel).await
}

/// Parse the output of [`log_raw`] made with `token`. Pure: replay calls it on the stored bytes.
pub fn parse_log(raw: &[u8], token: &str) -> Result<Vec<Commit>, GitError> {
    let err = |offset: usize, message: &str| GitError::Parse {
        offset,
        message: message.to_string(),
    };
    if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err(
            0,
            "the record separator is not a random hexadecimal token",
        ));
    }
    let start: Vec<u8> = [&[RS][..], token.as_bytes()].concat();
    let end: Vec<u8> = [&[US][..], token.as_bytes()].concat();
    let mut commits = Vec::new();
    if raw.is_empty() {
        return Ok(commits);
    }
    if !raw.starts_with(&start) {
        return Err(err(0, "expected the start of a commit"));
    }
    let mut at = 0;
    while at < raw.len() {
        let body_at = at + start.len();
        let next = find(&raw[body_at..], &start).map_or(raw.len(), |n| body_at + n);
        let mut fields = Vec::with_capacity(HEADER_FIELDS + 1);
        let mut i = body_at;
        for _ in 0..=HEADER_FIELDS {
            let n =
                find(&raw[i..next], &end).ok_or_else(|| err(i, "a commit record ends early"))?;
            fields.push(String::from_utf8_lossy(&raw[i..i + n]).into_owned());
            i += n + end.len();
        }
        let files = parse_files(&raw[i..next]).map_err(|(o, m)| err(i + o, m))?;
        let [
            hash,
            parents,
            author_name,
            author_email,
            date,
            committer_name,
            committer_email,
            message,
        ]: [String; HEADER_FIELDS + 1] = fields
            .try_into()
            .map_err(|_| err(at, "a commit record has the wrong number of fields"))?;
        if !is_object_id(&hash) {
            return Err(err(at, "a commit hash is not hexadecimal"));
        }
        let parents: Vec<String> = parents.split_whitespace().map(str::to_string).collect();
        if !parents.iter().all(|p| is_object_id(p)) {
            return Err(err(at, "a parent is not a commit hash"));
        }
        commits.push(Commit {
            hash,
            parents,
            author_name,
            author_email,
            date,
            committer_name,
            committer_email,
            message,
            files,
        });
        at = next;
    }
    Ok(commits)
}

/// The file list after a commit's fields: the NUL that ends the header, one `\n` (after a
/// non-merge's header) or NUL (after a merge's) when files follow, then each name and a NUL.
/// Anything else — an empty name, bytes after the last NUL — is an error.
fn parse_files(tail: &[u8]) -> Result<Vec<String>, (usize, &'static str)> {
    let Some((&0, rest)) = tail.split_first() else {
        return Err((0, "a commit header does not end with NUL"));
    };
    let (mut i, rest) = match rest.first() {
        Some(b'\n' | 0) => (2, &rest[1..]),
        _ => (1, rest),
    };
    let mut files = Vec::new();
    let mut rest = rest;
    while !rest.is_empty() {
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or((i, "a file name does not end"))?;
        if n == 0 {
            return Err((i, "an empty file name"));
        }
        files.push(String::from_utf8_lossy(&rest[..n]).into_owned());
        rest = &rest[n + 1..];
        i += n + 1;
    }
    Ok(files)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
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

    const T: &str = "0123456789abcdef0123456789abcdef";

    /// One record as `log_raw` prints it with token `T`.
    fn record(hash: &str, parents: &str, email: &str, message: &str, tail: &str) -> String {
        let e = format!("\x1f{T}");
        format!(
            "\x1e{T}{hash}{e}{parents}{e}A{e}{email}{e}2026-01-01T00:00:00Z{e}C{e}c@x{e}{message}{e}{tail}"
        )
    }

    #[test]
    fn parse_log_reads_files_merges_and_empty_commits() {
        let (h1, h2, h3) = ("a".repeat(40), "b".repeat(40), "c".repeat(40));
        let raw = [
            record(&h1, &format!("{h2} {h3}"), "a@x", "Merge", "\0\0evil\0"),
            record(&h2, &h3, "a@x", "one\n\nTest: x\n", "\0\nsrc/a\0tests/b\0"),
            record(&h3, "", "b@x", "empty\n", "\0"),
        ]
        .concat();
        let got = parse_log(raw.as_bytes(), T).unwrap();
        assert_eq!(got.len(), 3);
        assert!(got[0].is_merge() && got[0].carries_change());
        assert_eq!(got[0].files, ["evil"]);
        assert_eq!(got[1].files, ["src/a", "tests/b"]);
        assert_eq!(got[1].parents, vec![h3.clone()]);
        assert_eq!(got[1].subject(), "one");
        assert_eq!(got[1].committer(), "C <c@x>");
        assert!(got[2].files.is_empty() && got[2].parents.is_empty());
        assert!(parse_log(b"garbage", T).is_err());
        assert!(parse_log(raw.as_bytes(), "0123").is_err(), "a short token");
    }

    #[test]
    fn commit_content_cannot_forge_a_record_or_shift_a_field() {
        let (h1, h2) = ("a".repeat(40), "b".repeat(40));
        // A file name that looks like the next record under a guessed token is just a name.
        let guess = "f".repeat(32);
        let forged = format!("\x1e{guess}{h2}\x1f{guess}");
        let raw = record(&h1, &h2, "a@x", "Merge", &format!("\0\0{forged}\0"));
        let got = parse_log(raw.as_bytes(), T).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].files, [forged]);
        // A name holding a bare US is a name, not two fields.
        let raw = record(&h1, "", "x\x1fops@x", "m", "\0");
        assert_eq!(
            parse_log(raw.as_bytes(), T).unwrap()[0].author_email,
            "x\x1fops@x"
        );
        // A merge that claims no parents would not be a merge: parents must be commit ids.
        let raw = record(&h1, "not-a-hash", "a@x", "m", "\0");
        assert!(parse_log(raw.as_bytes(), T).is_err());
        // An empty file name, or bytes after the last NUL, do not parse.
        for tail in ["\0\nsrc/a\0\0", "\0\nsrc/a", "x"] {
            let raw = record(&h1, "", "a@x", "m", tail);
            assert!(parse_log(raw.as_bytes(), T).is_err(), "{tail:?}");
        }
    }
}
