//! The regression gate's `from_share:` form: instead of running a command here, take the JUnit
//! reports CI jobs uploaded to the team's share for the release commit (`crate::share::ci`),
//! so that a test matrix run on many runners counts without being run again.
//!
//! Collect finds the release commit (the end of `changes.range`, else `HEAD` of the pipeline's
//! repository), reads every statement on the share for it, and stores each statement, its
//! signature, and the reports it names whose bytes match their digests, in the record.
//! [`assess`] is the pure reading of that evidence — which statement stands for each job, which
//! are ignored and why — and [`judge`] judges the counted reports with the same strict JUnit
//! reader as the local form. Replay calls both again on the record alone: the signature of each
//! statement is checked again under the allowed_signers the run recorded.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::judge::judge_reports;
use super::junit::{JunitFile, JunitState, MAX_REPORT_BYTES};
use crate::gates::Code;
use crate::gates::{CollectContext, CollectError, JudgeContext, Reason, Verdict};
use crate::model::{FromShareSpec, Pipeline};
use crate::record::Blobs;
use crate::report::printable;
use crate::share::ci::{self, CiStatement};

/// How far a CI machine's clock may run ahead of the release machine's: a statement dated
/// further after the share was read was not there when it was read.
pub const CLOCK_SKEW_SECS: i64 = 300;

/// Everything the judge needs, as recorded in the release log.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FromShareEvidence {
    /// The repository the release commit was read from, and the revision read.
    pub repo: PathBuf,
    pub rev: String,
    /// The release commit, or why it could not be found.
    pub commit: Option<String>,
    pub commit_error: Option<String>,
    /// The share as messages name it (no credentials).
    pub share: String,
    pub share_error: Option<String>,
    /// Every statement found for the commit, stored in the record.
    pub statements: Vec<FetchedStatement>,
    /// Objects passed over unread (as shown, why): a name that is not its content's digest, …
    pub passed_over: Vec<(String, String)>,
    /// Unix seconds when the share was read.
    pub read_at: i64,
    /// For people reading the run; the judge does not read them.
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FetchedStatement {
    /// Its name on the share (`<sha256>.json`).
    pub name: String,
    /// Digests of the statement and signature bytes in the record.
    pub statement: String,
    pub signature: String,
    /// Were its reports fetched? Only a statement that verified at collect time has them
    /// fetched: junk on the share costs no downloads.
    pub fetched: bool,
    pub reports: Vec<FetchedReport>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FetchedReport {
    /// The digest the statement names.
    pub sha256: String,
    pub state: FetchState,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum FetchState {
    /// Its bytes matched the statement's digest and size, and are in the record.
    Stored,
    /// Not on the share.
    Missing,
    /// The bytes there are not the ones the statement names.
    Altered { actual_sha256: String, size: u64 },
    /// Over [`MAX_REPORT_BYTES`], or the share failed to give it.
    Unreadable { error: String },
}

/// The statement that stands for one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountedJob {
    pub job: String,
    pub name: String,
    pub statement: CiStatement,
}

/// A statement that does not count, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoredStatement {
    pub name: String,
    /// The job it names, when it could be read.
    pub job: Option<String>,
    pub code: Code,
    pub reason: String,
}

/// The pure reading of the evidence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assessment {
    /// A problem that stops the gate whatever the share holds.
    pub problem: Option<Reason>,
    /// One per named job that has a statement that counts, in `jobs` order.
    pub counted: Vec<CountedJob>,
    pub ignored: Vec<IgnoredStatement>,
    /// Valid statements of a job that a later one of the same job replaced (a job run again).
    pub superseded: Vec<(String, String)>,
    /// Named jobs with no statement that counts.
    pub missing: Vec<String>,
}

/// Read the evidence: verify each statement under `signers` at `valid_at`, keep those by a
/// principal of `signed_by`, for this project and exactly the release commit, for a named job,
/// whose every report was stored; the latest of a job stands for it. Pure.
#[expect(
    clippy::too_many_lines,
    reason = "a sequence of steps not yet split into functions (issue 15)"
)]
pub fn assess(
    spec: &FromShareSpec,
    ev: &FromShareEvidence,
    project: &str,
    signers: Option<&str>,
    valid_at: i64,
    blobs: &dyn Blobs,
) -> Assessment {
    let mut a = Assessment::default();
    let Some(commit) = ev.commit.as_deref() else {
        a.problem = Some(Reason::new(
            Code::CiCommitUnknown,
            format!(
                "the release commit ({} in {}) cannot be read: {}",
                ev.rev,
                ev.repo.display(),
                ev.commit_error.as_deref().unwrap_or("no reason recorded")
            ),
        ));
        return a;
    };
    if let Some(e) = &ev.share_error {
        a.problem = Some(Reason::new(
            Code::CiShareUnreadable,
            format!("cannot read the CI evidence on {}: {e}", ev.share),
        ));
        return a;
    }
    let Some(signers) = signers.and_then(|t| crate::signers::parse(t).ok()) else {
        a.problem = Some(Reason::new(
            Code::CiNoSigners,
            "no allowed_signers text is recorded to check the CI statements' signatures with",
        ));
        return a;
    };
    let mut best: BTreeMap<String, (i64, CountedJob)> = BTreeMap::new();
    for f in &ev.statements {
        let ignore = |job: Option<&str>, code: Code, reason: String| IgnoredStatement {
            name: f.name.clone(),
            job: job.map(str::to_string),
            code,
            reason,
        };
        let (Ok(bytes), Ok(sig)) = (blobs.get(&f.statement), blobs.get(&f.signature)) else {
            a.ignored.push(ignore(
                None,
                Code::EvidenceMalformed,
                "its bytes are not in the record".into(),
            ));
            continue;
        };
        let st = match ci::verify(&bytes, &sig, &signers, valid_at) {
            Ok(st) => st,
            Err(p) => {
                a.ignored.push(ignore(None, p.code(), p.to_string()));
                continue;
            }
        };
        let job = Some(st.job.as_str());
        let at = st.unix_time().unwrap_or(i64::MAX);
        let problem = if !spec.signed_by.contains(&st.signer) {
            Some((
                Code::CiSignerNotInSignedBy,
                format!(
                    "signed by {}, who is not in signed_by ({})",
                    st.signer,
                    spec.signed_by_as_written.join(", ")
                ),
            ))
        } else if st.project != project {
            Some((
                Code::CiOtherProject,
                format!("it is for project {}", st.project),
            ))
        } else if st.commit != commit {
            Some((
                Code::CiOtherCommit,
                format!(
                    "it is for commit {}, not the release commit {commit}",
                    st.commit
                ),
            ))
        } else if !spec.jobs.contains(&st.job) {
            Some((
                Code::CiJobNotNamed,
                format!("job {} is not one of {}", st.job, spec.jobs.join(", ")),
            ))
        } else if at > ev.read_at.saturating_add(CLOCK_SKEW_SECS) {
            Some((
                Code::CiStatementFromFuture,
                format!("dated {}, after the share was read", st.time),
            ))
        } else {
            report_problem(f, &st, blobs)
        };
        if let Some((code, reason)) = problem {
            a.ignored.push(ignore(job, code, reason));
            continue;
        }
        let counted = CountedJob {
            job: st.job.clone(),
            name: f.name.clone(),
            statement: st,
        };
        match best.get(&counted.job) {
            Some((t, prev)) if (*t, prev.name.as_str()) > (at, counted.name.as_str()) => {
                a.superseded.push((counted.job.clone(), counted.name));
            }
            Some((_, prev)) => {
                a.superseded.push((prev.job.clone(), prev.name.clone()));
                best.insert(counted.job.clone(), (at, counted));
            }
            None => {
                best.insert(counted.job.clone(), (at, counted));
            }
        }
    }
    for job in &spec.jobs {
        match best.remove(job) {
            Some((_, c)) => a.counted.push(c),
            None => a.missing.push(job.clone()),
        }
    }
    a
}

/// Why a statement's reports cannot be judged: one that was not fetched, is not on the share,
/// or is not the bytes the statement names.
fn report_problem(
    f: &FetchedStatement,
    st: &CiStatement,
    blobs: &dyn Blobs,
) -> Option<(Code, String)> {
    if !f.fetched || f.reports.len() != st.reports.len() {
        return Some((
            Code::CiReportMissing,
            "its reports were not fetched when the share was read".into(),
        ));
    }
    for (want, got) in st.reports.iter().zip(&f.reports) {
        let name = printable(&want.name);
        let problem = match &got.state {
            _ if got.sha256 != want.sha256 => Some((
                Code::EvidenceMalformed,
                format!("{name}: the recorded report is not the one the statement names"),
            )),
            FetchState::Stored => match blobs.get(&want.sha256) {
                Ok(b) if b.len() as u64 == want.size => None,
                Ok(b) => Some((
                    Code::CiReportAltered,
                    format!(
                        "{name}: {} bytes, the statement says {}",
                        b.len(),
                        want.size
                    ),
                )),
                Err(e) => Some((Code::EvidenceMalformed, format!("{name}: {e}"))),
            },
            FetchState::Missing => Some((
                Code::CiReportMissing,
                format!("{name} (sha256 {}) is not on the share", want.sha256),
            )),
            FetchState::Altered {
                actual_sha256,
                size,
            } => Some((
                Code::CiReportAltered,
                format!(
                    "{name}: the share holds other bytes under its digest ({size} bytes, sha256 \
                     {actual_sha256}; the statement names {})",
                    want.sha256
                ),
            )),
            FetchState::Unreadable { error } => Some((
                Code::CiReportMissing,
                format!("{name}: {}", printable(error)),
            )),
        };
        if problem.is_some() {
            return problem;
        }
    }
    None
}

pub fn judge(spec: &FromShareSpec, ev: &FromShareEvidence, cx: &JudgeContext<'_>) -> Verdict {
    let a = assess(spec, ev, cx.project, cx.signers, cx.started_at, cx.blobs);
    if let Some(p) = a.problem {
        return Verdict::from_reasons(vec![p]);
    }
    let mut reasons = Vec::new();
    let commit = ev.commit.as_deref().unwrap_or_default();
    for job in &a.missing {
        let mut msg = format!(
            "no CI statement for job {job} at the release commit {commit} signed by {} on {}",
            spec.signed_by_as_written.join(", "),
            ev.share
        );
        let ignored: Vec<String> = a
            .ignored
            .iter()
            .filter(|i| i.job.as_deref() == Some(job.as_str()))
            .map(|i| format!("{} ({}: {})", i.name, i.code, printable(&i.reason)))
            .collect();
        if !ignored.is_empty() {
            msg.push_str(&format!("; ignored: {}", ignored.join("; ")));
        }
        reasons.push(Reason::new(Code::CiJobMissing, msg));
    }
    let mut files = Vec::new();
    for c in &a.counted {
        if c.statement.reports.is_empty() {
            reasons.push(Reason::new(
                Code::JunitMissing,
                format!("job {} uploaded no JUnit report ({})", c.job, c.name),
            ));
        }
        for r in &c.statement.reports {
            files.push(JunitFile {
                path: format!("{}/{}", c.job, printable(&r.name)),
                pattern: c.job.clone(),
                state: JunitState::Fresh {
                    sha256: r.sha256.clone(),
                    size: r.size,
                },
            });
        }
    }
    // With a job missing, `min_tests` would only repeat it.
    let min_tests = spec.min_tests.filter(|_| a.missing.is_empty());
    reasons.extend(judge_reports(&files, min_tests, cx.blobs));
    Verdict::from_reasons(reasons)
}

/// Where the release commit is read: the end of `changes.range` in `changes.repo`, else
/// `HEAD` of the pipeline's folder.
pub fn commit_source(p: &Pipeline) -> (PathBuf, String) {
    match &p.changes {
        Some(c) => {
            let end = crate::git::RangeSpec::parse(&c.range)
                .map(|r| r.end.to_string())
                .unwrap_or_else(|_| "HEAD".into());
            (c.repo.clone(), end)
        }
        None => (p.root.clone(), "HEAD".into()),
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "a sequence of steps not yet split into functions (issue 15)"
)]
pub async fn collect(
    spec: &FromShareSpec,
    cx: &CollectContext,
) -> Result<FromShareEvidence, CollectError> {
    let p = &cx.pipeline;
    let (repo, rev) = commit_source(p);
    let mut ev = FromShareEvidence {
        repo: repo.clone(),
        rev: rev.clone(),
        commit: None,
        commit_error: None,
        share: String::new(),
        share_error: None,
        statements: Vec::new(),
        passed_over: Vec::new(),
        read_at: crate::share::now(),
        notes: Vec::new(),
    };
    match crate::git::resolve_commit(&repo, &rev, cx.cancel.clone()).await {
        Ok(c) => ev.commit = Some(c),
        Err(crate::git::GitError::Interrupted) => return Err(CollectError::Interrupted),
        Err(e) => {
            ev.commit_error = Some(e.to_string());
            return Ok(ev);
        }
    }
    let commit = ev.commit.clone().unwrap_or_default();
    let share = match p
        .share
        .as_ref()
        .map(|s| crate::share::open_spec(s, &p.root))
    {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            ev.share_error = Some(e.to_string());
            return Ok(ev);
        }
        None => {
            ev.share_error = Some("the pipeline names no share".into());
            return Ok(ev);
        }
    };
    ev.share = crate::share::Store::describe(&share);
    let found = match ci::read(&share, &p.project, &commit).await {
        Ok(f) => f,
        Err(e) => {
            ev.share_error = Some(e.to_string());
            return Ok(ev);
        }
    };
    ev.read_at = crate::share::now();
    ev.passed_over = found.ignored;
    let signers_text = p
        .signers
        .as_ref()
        .and_then(|path| std::fs::read_to_string(path).ok());
    let signers = signers_text
        .as_deref()
        .and_then(|t| crate::signers::parse(t).ok());
    for pair in &found.pairs {
        let mut f = FetchedStatement {
            name: pair.name.clone(),
            statement: cx.record.put(&pair.statement)?,
            signature: cx.record.put(&pair.signature)?,
            fetched: false,
            reports: Vec::new(),
        };
        let verified = signers
            .as_ref()
            .and_then(|s| ci::verify(&pair.statement, &pair.signature, s, cx.started_at).ok());
        if let Some(st) = verified.filter(|st| {
            spec.signed_by.contains(&st.signer)
                && st.commit == commit
                && st.project == p.project
                && spec.jobs.contains(&st.job)
        }) {
            f.fetched = true;
            for r in &st.reports {
                let state =
                    match ci::get_report(&share, &p.project, &commit, &r.sha256, MAX_REPORT_BYTES)
                        .await
                    {
                        Ok(None) => FetchState::Missing,
                        Ok(Some(bytes)) => {
                            let actual = crate::digest::sha256_hex(&bytes);
                            if actual == r.sha256 && bytes.len() as u64 == r.size {
                                cx.record.put(&bytes)?;
                                FetchState::Stored
                            } else {
                                FetchState::Altered {
                                    actual_sha256: actual,
                                    size: bytes.len() as u64,
                                }
                            }
                        }
                        Err(e) => FetchState::Unreadable {
                            error: e.to_string(),
                        },
                    };
                f.reports.push(FetchedReport {
                    sha256: r.sha256.clone(),
                    state,
                });
            }
        }
        ev.statements.push(f);
    }
    ev.notes = notes(spec, &ev, &p.project, signers_text.as_deref(), cx);
    Ok(ev)
}

/// What the run shows: each job's statement (with the CI's run identity), what was ignored.
fn notes(
    spec: &FromShareSpec,
    ev: &FromShareEvidence,
    project: &str,
    signers: Option<&str>,
    cx: &CollectContext,
) -> Vec<String> {
    let a = assess(spec, ev, project, signers, cx.started_at, &cx.record);
    let mut notes = Vec::new();
    for c in &a.counted {
        let run: Vec<String> = c
            .statement
            .run
            .iter()
            .map(|(k, v)| format!("{k}={}", printable(v)))
            .collect();
        notes.push(format!(
            "job {}: {} report(s) signed by {} at {}{}",
            c.job,
            c.statement.reports.len(),
            printable(&c.statement.signer),
            printable(&c.statement.time),
            if run.is_empty() {
                String::new()
            } else {
                format!(" ({})", run.join(" "))
            }
        ));
    }
    for i in &a.ignored {
        notes.push(format!(
            "share: ignored ci/{}/statements/{}: {}: {}",
            ev.commit.as_deref().unwrap_or_default(),
            i.name,
            i.code,
            printable(&i.reason)
        ));
    }
    for (at, why) in &ev.passed_over {
        notes.push(format!("share: ignored {at}: {}", printable(why)));
    }
    for (job, name) in &a.superseded {
        notes.push(format!(
            "job {job}: statement {name} replaced by a later one of the same job"
        ));
    }
    notes
}

#[cfg(test)]
#[path = "from_share_tests.rs"]
mod tests;
