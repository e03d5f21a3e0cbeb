//! The `change-record` gate: every change in `changes.range` — each non-merge commit, and each
//! merge that makes a change of its own — was reviewed by someone who did not write it and
//! carries test evidence, and whoever packages the release (the operator, the `sign` gate's
//! signer) neither wrote nor committed any of it.
//!
//! Collect checks and reads the range with git ([`git::read_range`]) and stores the raw
//! `git log` output; judge parses those stored bytes again, so the rows in the evidence are a
//! readable copy that cannot drift from what git said. People are compared as principals
//! ([`crate::identity`]): authors, co-authors (`Co-authored-by:`), committers and reviewers.

use std::fmt::Write as _;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use super::{CollectContext, CollectError, JudgeContext, Reason, Verdict};
use crate::gates::Code;
use crate::git::{self, Commit, RangeFacts, RangeSpec};
use crate::identity::{self, IdentityError};
use crate::model::{ChangeRecordSpec, GateSpec};

/// The Markdown change record written into the release record folder.
pub const MARKDOWN_FILE: &str = "change-record.md";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChangeRecordEvidence {
    /// `changes.repo` and `changes.range` as applied (absent: the pipeline has no `changes`).
    pub repo: Option<String>,
    pub range: Option<String>,
    /// How git was run and what it said about the range (shallow? START an ancestor of END?).
    /// Evidence written before relgate recorded this has none and is refused.
    #[serde(default)]
    pub history: Option<RangeFacts>,
    /// Digest of the raw `git log` output.
    pub log: Option<String>,
    /// Why the range could not be read.
    pub error: Option<String>,
    /// The change record: one row per change (see [`Commit::carries_change`]), newest first.
    pub changes: Vec<ChangeRow>,
    /// Merges in the range without a change of their own (their commits are rows).
    #[serde(default)]
    pub merges_left_out: Vec<String>,
    /// Digest of `change-record.md`.
    pub markdown: Option<String>,
}

/// One change of the change record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChangeRow {
    pub hash: String,
    /// The subject line.
    pub description: String,
    /// `Name <email>`.
    pub author: String,
    pub author_email: String,
    /// `Name <email>`.
    #[serde(default)]
    pub committer: String,
    #[serde(default)]
    pub committer_email: String,
    /// `Co-authored-by:` trailer values: authors too.
    #[serde(default)]
    pub co_authors: Vec<String>,
    /// A merge (with a change of its own; `test_files` are then that change's files).
    #[serde(default)]
    pub merge: bool,
    /// `Reviewed-by:` trailer values.
    pub reviewers: Vec<String>,
    /// `Tested-by:` and `Test:` trailer values.
    pub tests: Vec<String>,
    /// Touched files that match `test_paths`.
    pub test_files: Vec<String>,
    /// Author date, ISO 8601.
    pub date: String,
}

impl ChangeRow {
    pub fn short(&self) -> &str {
        short(&self.hash)
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// Compile `test_paths` (repository-relative globs; `*` stops at `/`, `**` crosses it).
pub fn test_globs(patterns: &[String]) -> Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let glob = GlobBuilder::new(p)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("test_paths {p:?}: {}", e.kind()))?;
        b.add(glob);
    }
    b.build().map_err(|e| e.to_string())
}

/// Turn parsed commits into change-record rows: the commits that carry a change. Pure.
pub fn rows(commits: &[Commit], test_paths: &GlobSet) -> Vec<ChangeRow> {
    commits
        .iter()
        .filter(|c| c.carries_change())
        .map(|c| {
            let trailers = c.trailers();
            // Empty values are kept where they name people: an empty `Reviewed-by:` is a
            // malformed identity (red), not a missing one.
            let values = |tokens: &[&str], keep_empty: bool| -> Vec<String> {
                trailers
                    .iter()
                    .filter(|(t, _)| tokens.iter().any(|k| t.eq_ignore_ascii_case(k)))
                    .map(|(_, v)| v.clone())
                    .filter(|v| keep_empty || !v.is_empty())
                    .collect()
            };
            ChangeRow {
                hash: c.hash.clone(),
                description: c.subject().to_string(),
                author: c.author(),
                author_email: c.author_email.clone(),
                committer: c.committer(),
                committer_email: c.committer_email.clone(),
                co_authors: values(&["Co-authored-by"], true),
                merge: c.is_merge(),
                reviewers: values(&["Reviewed-by"], true),
                tests: values(&["Tested-by", "Test"], false),
                test_files: c
                    .files
                    .iter()
                    .filter(|f| test_paths.is_match(f.as_str()))
                    .cloned()
                    .collect(),
                date: c.date.clone(),
            }
        })
        .collect()
}

/// The merges that carry no change of their own. Pure.
pub fn merges_left_out(commits: &[Commit]) -> Vec<String> {
    commits
        .iter()
        .filter(|c| !c.carries_change())
        .map(|c| c.hash.clone())
        .collect()
}

/// The principals who wrote `c`: its author and its co-authors. Signoff bars the same people.
pub fn writers(c: &Commit) -> Result<Vec<String>, IdentityError> {
    let mut out = vec![identity::parse_address(&c.author_email)?.principal];
    for (token, value) in c.trailers() {
        if token.eq_ignore_ascii_case("Co-authored-by") {
            out.push(identity::parse_identity(&value)?.address.principal);
        }
    }
    Ok(out)
}

/// The principals who wrote the changes among `commits`, sorted, each once; or why one
/// commit's writers cannot be told.
pub fn range_writers(commits: &[Commit]) -> Result<Vec<String>, String> {
    let mut all = std::collections::BTreeSet::new();
    for c in commits.iter().filter(|c| c.carries_change()) {
        all.extend(writers(c).map_err(|e| format!("cannot tell who wrote {}: {e}", c.hash))?);
    }
    Ok(all.into_iter().collect())
}

/// The change record as a Markdown table.
pub fn markdown(range: &str, resolved: &str, rows: &[ChangeRow], merges_left_out: usize) -> String {
    fn cell(s: &str) -> String {
        s.replace('\\', "\\\\")
            .replace('|', "\\|")
            .replace(['\n', '\r'], " ")
    }
    let mut out = format!(
        "# Change record\n\nRange `{}` (`{resolved}`): {} change(s); {} merge(s) without a change of their own left out.\n\n| commit | description | author | reviewed by | tests | date |\n|---|---|---|---|---|---|\n",
        range.replace('`', "'"),
        rows.len(),
        merges_left_out
    );
    for r in rows {
        let mut tests: Vec<String> = r.tests.clone();
        tests.extend(r.test_files.iter().map(|f| format!("`{f}`")));
        let mut authors = vec![r.author.clone()];
        authors.extend(r.co_authors.iter().cloned());
        let _ = writeln!(
            out,
            "| `{}`{} | {} | {} | {} | {} | {} |",
            r.short(),
            if r.merge { " (merge)" } else { "" },
            cell(&r.description),
            cell(&authors.join(", ")),
            cell(&r.reviewers.join(", ")),
            cell(&tests.join(", ")),
            cell(&r.date)
        );
    }
    out
}

pub async fn collect(
    _gate: &GateSpec,
    spec: &ChangeRecordSpec,
    cx: &CollectContext,
) -> Result<ChangeRecordEvidence, CollectError> {
    let mut ev = ChangeRecordEvidence {
        repo: None,
        range: None,
        history: None,
        log: None,
        error: None,
        changes: Vec::new(),
        merges_left_out: Vec::new(),
        markdown: None,
    };
    let Some(changes) = &cx.pipeline.changes else {
        return Ok(ev);
    };
    ev.repo = Some(changes.repo.display().to_string());
    ev.range = Some(changes.range.clone());
    let read = match git::read_range(&changes.repo, &changes.range, cx.cancel.clone()).await {
        Ok(read) => read,
        Err(git::GitError::Interrupted) => return Err(CollectError::Interrupted),
        Err(e) => {
            ev.error = Some(e.to_string());
            return Ok(ev);
        }
    };
    let separator = read.facts.separator.clone();
    // The range as resolved, for the Markdown heading: which commits `v1.3.0..HEAD` meant.
    let resolved = match (&read.facts.start, &read.facts.end) {
        (Some(s), Some(e)) => format!("{}..{}", short(s), short(e)),
        (None, Some(e)) => short(e).to_string(),
        _ => String::new(),
    };
    ev.history = Some(read.facts);
    // No log: the range is shallow or reversed, which the facts say and the judge refuses.
    let (Some(raw), Some(separator)) = (read.log, separator) else {
        return Ok(ev);
    };
    ev.log = Some(cx.record.put(&raw)?);
    let commits = match git::parse_log(&raw, &separator) {
        Ok(c) => c,
        Err(e) => {
            ev.error = Some(e.to_string());
            return Ok(ev);
        }
    };
    // A bad glob is judged (red), not an error: record the rows without test files.
    let globs = test_globs(&spec.test_paths).unwrap_or_else(|_| GlobSet::empty());
    ev.changes = rows(&commits, &globs);
    ev.merges_left_out = merges_left_out(&commits);
    let md = markdown(
        &changes.range,
        &resolved,
        &ev.changes,
        ev.merges_left_out.len(),
    );
    ev.markdown = Some(cx.record.put(md.as_bytes())?);
    let path = cx.record.dir.join(MARKDOWN_FILE);
    crate::stage::write_synced(&path, md.as_bytes()).map_err(|source| {
        CollectError::Record(crate::record::RecordError::Write { path, source })
    })?;
    Ok(ev)
}

pub fn judge(spec: &ChangeRecordSpec, ev: &ChangeRecordEvidence, cx: &JudgeContext<'_>) -> Verdict {
    let (Some(_), Some(range)) = (&cx.pipeline.changes, &ev.range) else {
        return Verdict::red(
            Code::ChangesMissing,
            "the pipeline sets no `changes` range to take the change record from",
        );
    };
    if let Err(why) = RangeSpec::parse(range) {
        return Verdict::red(
            Code::ChangeRangeInvalid,
            format!("range {range:?} is not START..END or one revision: {why}"),
        );
    }
    if let Some(e) = &ev.error {
        return Verdict::red(Code::ChangeRangeUnreadable, e.clone());
    }
    if let Some(p) = RangeFacts::problem(ev.history.as_ref(), range) {
        return Verdict::red(p.code(), p.to_string());
    }
    let rows = match recorded_rows(spec, ev, cx) {
        Ok(rows) => rows,
        Err(v) => return v,
    };
    if rows.is_empty() {
        return Verdict::red(
            Code::ChangeRangeEmpty,
            format!(
                "range {range} holds no change to judge ({} merge(s) without a change of their own); a release ships at least one",
                ev.merges_left_out.len()
            ),
        );
    }
    let packagers: Vec<(&str, &str)> = cx
        .operator
        .map(|o| ("the operator", o))
        .into_iter()
        .chain(
            cx.pipeline
                .sign_gate()
                .map(|(_, s)| ("the sign gate's signer", s.signer.as_str())),
        )
        .collect();
    let reasons = rows
        .iter()
        .flat_map(|r| judge_row(spec, r, &packagers))
        .collect();
    Verdict::from_reasons(reasons)
}

/// The reasons one change is not acceptable.
fn judge_row(spec: &ChangeRecordSpec, r: &ChangeRow, packagers: &[(&str, &str)]) -> Vec<Reason> {
    let what = format!(
        "{}{} {:?} by {}",
        if r.merge { "merge " } else { "" },
        r.short(),
        r.description,
        r.author
    );
    let mut reasons = Vec::new();
    let mut malformed = |field: &str, e: IdentityError| {
        reasons.push(Reason::new(
            Code::ChangeIdentityMalformed,
            format!("{what}: {field} {e}"),
        ));
    };
    // Who wrote it: the author and every co-author. An identity that does not parse cannot be
    // told apart from anyone, so it is red rather than skipped.
    let author = match identity::parse_address(&r.author_email) {
        Ok(a) => Some(a.principal),
        Err(e) => {
            malformed("author", e);
            None
        }
    };
    let mut co_authors = Vec::new();
    for v in &r.co_authors {
        match identity::parse_identity(v) {
            Ok(id) => co_authors.push(id.address.principal),
            Err(e) => malformed("Co-authored-by", e),
        }
    }
    let writers: Vec<&String> = author.iter().chain(&co_authors).collect();
    let committer = match identity::parse_address(&r.committer_email) {
        Ok(a) => Some(a.principal),
        Err(e) => {
            malformed("committer", e);
            None
        }
    };
    let mut reviewers = Vec::new();
    if spec.require_reviewer {
        for v in &r.reviewers {
            match identity::parse_identity(v) {
                Ok(id) => reviewers.push(id.address.principal),
                Err(e) => malformed("Reviewed-by", e),
            }
        }
    }
    if spec.require_reviewer {
        if r.reviewers.is_empty() {
            reasons.push(Reason::new(
                Code::ChangeUnreviewed,
                format!("{what} has no Reviewed-by trailer"),
            ));
        } else if !reviewers.is_empty() && reviewers.iter().all(|p| writers.contains(&p)) {
            reasons.push(Reason::new(
                Code::ChangeSelfReviewed,
                format!("{what} is reviewed only by its author or a co-author"),
            ));
        }
    }
    if spec.require_tests && r.tests.is_empty() && r.test_files.is_empty() {
        reasons.push(Reason::new(
            Code::ChangeUntested,
            format!("{what} touches no test_paths file and has no Tested-by or Test trailer"),
        ));
    }
    for (who, configured) in packagers {
        let p = identity::principal(configured);
        let mut did = Vec::new();
        if author.as_ref() == Some(&p) {
            did.push("authored");
        }
        if co_authors.contains(&p) {
            did.push("co-authored");
        }
        if committer.as_ref() == Some(&p) {
            did.push("committed");
        }
        if !did.is_empty() {
            reasons.push(Reason::new(
                Code::PackagerAuthored,
                format!(
                    "{what}: {who} {configured} {} it; whoever packages a release must not have written it",
                    did.join(" and ")
                ),
            ));
        }
    }
    reasons
}

/// The rows parsed again from the stored `git log` bytes, checked against the recorded rows.
fn recorded_rows(
    spec: &ChangeRecordSpec,
    ev: &ChangeRecordEvidence,
    cx: &JudgeContext<'_>,
) -> Result<Vec<ChangeRow>, Verdict> {
    let (Some(log), Some(separator)) = (
        &ev.log,
        ev.history.as_ref().and_then(|h| h.separator.as_ref()),
    ) else {
        return Err(Verdict::red(
            Code::EvidenceMalformed,
            "the evidence names no git log output",
        ));
    };
    let raw = cx
        .blobs
        .get(log)
        .map_err(|e| Verdict::red(Code::EvidenceMissing, e.to_string()))?;
    let commits = git::parse_log(&raw, separator)
        .map_err(|e| Verdict::red(Code::ChangeRangeUnreadable, e.to_string()))?;
    let globs =
        test_globs(&spec.test_paths).map_err(|e| Verdict::red(Code::TestPathsInvalid, e))?;
    let rows = rows(&commits, &globs);
    if rows != ev.changes || merges_left_out(&commits) != ev.merges_left_out {
        return Err(Verdict::red(
            Code::EvidenceMismatch,
            "the recorded change rows differ from the recorded git log output",
        ));
    }
    Ok(rows)
}
