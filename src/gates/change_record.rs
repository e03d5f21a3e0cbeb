//! The `change-record` gate: every non-merge commit in `changes.range` was reviewed by someone
//! other than its author and carries test evidence, and whoever packages the release (the
//! operator, the `sign` gate's signer) wrote none of it.
//!
//! Collect runs `git log` once and stores its raw output; judge parses those stored bytes again,
//! so the rows in the evidence are a readable copy that cannot drift from what git said.

use std::fmt::Write as _;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use super::{CollectContext, CollectError, JudgeContext, Reason, Verdict};
use crate::git::{self, Commit};
use crate::model::{ChangeRecordSpec, GateSpec};

/// The Markdown change record written into the release record folder.
pub const MARKDOWN_FILE: &str = "change-record.md";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChangeRecordEvidence {
    /// `changes.repo` and `changes.range` as applied (absent: the pipeline has no `changes`).
    pub repo: Option<String>,
    pub range: Option<String>,
    /// Digest of the raw `git log` output.
    pub log: Option<String>,
    /// Why the range could not be read.
    pub error: Option<String>,
    /// The change record: one row per non-merge commit, newest first.
    pub changes: Vec<ChangeRow>,
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
        self.hash.get(..12).unwrap_or(&self.hash)
    }
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

/// Turn parsed commits into change-record rows. Pure.
pub fn rows(commits: &[Commit], test_paths: &GlobSet) -> Vec<ChangeRow> {
    commits
        .iter()
        .map(|c| {
            let trailers = c.trailers();
            let values = |tokens: &[&str]| -> Vec<String> {
                trailers
                    .iter()
                    .filter(|(t, _)| tokens.iter().any(|k| t.eq_ignore_ascii_case(k)))
                    .map(|(_, v)| v.clone())
                    .filter(|v| !v.is_empty())
                    .collect()
            };
            ChangeRow {
                hash: c.hash.clone(),
                description: c.subject().to_string(),
                author: c.author(),
                author_email: c.author_email.clone(),
                reviewers: values(&["Reviewed-by"]),
                tests: values(&["Tested-by", "Test"]),
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

/// The change record as a Markdown table.
pub fn markdown(range: &str, rows: &[ChangeRow]) -> String {
    fn cell(s: &str) -> String {
        s.replace('\\', "\\\\")
            .replace('|', "\\|")
            .replace(['\n', '\r'], " ")
    }
    let mut out = format!(
        "# Change record\n\nRange `{}`: {} change(s), merges left out.\n\n| commit | description | author | reviewed by | tests | date |\n|---|---|---|---|---|---|\n",
        range.replace('`', "'"),
        rows.len()
    );
    for r in rows {
        let mut tests: Vec<String> = r.tests.clone();
        tests.extend(r.test_files.iter().map(|f| format!("`{f}`")));
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} |",
            r.short(),
            cell(&r.description),
            cell(&r.author),
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
        log: None,
        error: None,
        changes: Vec::new(),
        markdown: None,
    };
    let Some(changes) = &cx.pipeline.changes else {
        return Ok(ev);
    };
    ev.repo = Some(changes.repo.display().to_string());
    ev.range = Some(changes.range.clone());
    let raw = match git::log_raw(&changes.repo, &changes.range, cx.cancel.clone()).await {
        Ok(raw) => raw,
        Err(git::GitError::Interrupted) => return Err(CollectError::Interrupted),
        Err(e) => {
            ev.error = Some(e.to_string());
            return Ok(ev);
        }
    };
    ev.log = Some(cx.record.put(&raw)?);
    let commits = match git::parse_log(&raw) {
        Ok(c) => c,
        Err(e) => {
            ev.error = Some(e.to_string());
            return Ok(ev);
        }
    };
    // A bad glob is judged (red), not an error: record the rows without test files.
    let globs = test_globs(&spec.test_paths).unwrap_or_else(|_| GlobSet::empty());
    ev.changes = rows(&commits, &globs);
    let md = markdown(&changes.range, &ev.changes);
    ev.markdown = Some(cx.record.put(md.as_bytes())?);
    let path = cx.record.dir.join(MARKDOWN_FILE);
    crate::stage::write_synced(&path, md.as_bytes()).map_err(|source| {
        CollectError::Record(crate::record::RecordError::Write { path, source })
    })?;
    Ok(ev)
}

/// Does `value` (a `Reviewed-by:` value) name the commit's author?
fn names_author(value: &str, row: &ChangeRow) -> bool {
    let who = git::identity_email(value);
    who.eq_ignore_ascii_case(&row.author_email) || value.trim() == row.author.trim()
}

/// Is `principal` the author of `row`? Principals match author emails, ignoring ASCII case.
pub fn authored_by(row: &ChangeRow, principal: &str) -> bool {
    !row.author_email.is_empty() && row.author_email.eq_ignore_ascii_case(principal.trim())
}

pub fn judge(spec: &ChangeRecordSpec, ev: &ChangeRecordEvidence, cx: &JudgeContext<'_>) -> Verdict {
    if cx.pipeline.changes.is_none() || ev.range.is_none() {
        return Verdict::red(
            "changes-missing",
            "the pipeline sets no `changes` range to take the change record from",
        );
    }
    if let Some(e) = &ev.error {
        return Verdict::red("change-range-unreadable", e.clone());
    }
    let rows = match recorded_rows(spec, ev, cx) {
        Ok(rows) => rows,
        Err(v) => return v,
    };
    let mut reasons = Vec::new();
    for r in &rows {
        let what = format!("{} {:?} by {}", r.short(), r.description, r.author);
        if spec.require_reviewer {
            if r.reviewers.is_empty() {
                reasons.push(Reason::new(
                    "change-unreviewed",
                    format!("{what} has no Reviewed-by trailer"),
                ));
            } else if r.reviewers.iter().all(|v| names_author(v, r)) {
                reasons.push(Reason::new(
                    "change-self-reviewed",
                    format!("{what} is reviewed only by its author"),
                ));
            }
        }
        if spec.require_tests && r.tests.is_empty() && r.test_files.is_empty() {
            reasons.push(Reason::new(
                "change-untested",
                format!("{what} touches no test_paths file and has no Tested-by or Test trailer"),
            ));
        }
        let packagers = cx.operator.map(|o| ("the operator", o)).into_iter().chain(
            cx.pipeline
                .sign_gate()
                .map(|(_, s)| ("the sign gate's signer", s.signer.as_str())),
        );
        for (who, principal) in packagers {
            if authored_by(r, principal) {
                reasons.push(Reason::new(
                    "packager-authored",
                    format!("{what}: {who} {principal} authored it; whoever packages a release must not have written it"),
                ));
            }
        }
    }
    Verdict::from_reasons(reasons)
}

/// The rows parsed again from the stored `git log` bytes, checked against the recorded rows.
fn recorded_rows(
    spec: &ChangeRecordSpec,
    ev: &ChangeRecordEvidence,
    cx: &JudgeContext<'_>,
) -> Result<Vec<ChangeRow>, Verdict> {
    let Some(log) = &ev.log else {
        return Err(Verdict::red(
            "evidence-malformed",
            "the evidence names no git log output",
        ));
    };
    let raw = cx
        .blobs
        .get(log)
        .map_err(|e| Verdict::red("evidence-missing", e.to_string()))?;
    let commits =
        git::parse_log(&raw).map_err(|e| Verdict::red("change-range-unreadable", e.to_string()))?;
    let globs = test_globs(&spec.test_paths).map_err(|e| Verdict::red("test-paths-invalid", e))?;
    let rows = rows(&commits, &globs);
    if rows != ev.changes {
        return Err(Verdict::red(
            "evidence-mismatch",
            "the recorded change rows differ from the recorded git log output",
        ));
    }
    Ok(rows)
}
