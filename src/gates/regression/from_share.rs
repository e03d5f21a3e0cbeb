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
pub fn assess(
    spec: &FromShareSpec,
    ev: &FromShareEvidence,
    project: &str,
    signers: Option<&str>,
    valid_at: i64,
    blobs: &dyn Blobs,
) -> Assessment {
    let mut a = Assessment::default();
    let reading = match Reading::new(spec, ev, project, signers, valid_at, blobs) {
        Ok(reading) => reading,
        Err(problem) => {
            a.problem = Some(problem);
            return a;
        }
    };
    let mut latest = BTreeMap::new();
    for f in &ev.statements {
        match reading.counted(f) {
            Ok((at, counted)) => a.keep_latest(&mut latest, at, counted),
            Err(ignored) => a.ignored.push(ignored),
        }
    }
    a.per_job(&spec.jobs, latest);
    a
}

/// What each statement is read against: the spec, the release commit and the signers.
struct Reading<'a> {
    spec: &'a FromShareSpec,
    ev: &'a FromShareEvidence,
    project: &'a str,
    commit: &'a str,
    signers: crate::signers::AllowedSigners,
    valid_at: i64,
    blobs: &'a dyn Blobs,
}

/// The latest counted statement of each job so far, and when it was made.
type Latest = BTreeMap<String, (i64, CountedJob)>;

impl<'a> Reading<'a> {
    /// What stops the gate whatever the share holds: a release commit that could not be read,
    /// a share that could not be read, no signers to check the statements with.
    fn new(
        spec: &'a FromShareSpec,
        ev: &'a FromShareEvidence,
        project: &'a str,
        signers: Option<&str>,
        valid_at: i64,
        blobs: &'a dyn Blobs,
    ) -> Result<Self, Reason> {
        let Some(commit) = ev.commit.as_deref() else {
            return Err(Reason::new(
                Code::CiCommitUnknown,
                format!(
                    "the release commit ({} in {}) cannot be read: {}",
                    ev.rev,
                    ev.repo.display(),
                    ev.commit_error.as_deref().unwrap_or("no reason recorded")
                ),
            ));
        };
        if let Some(e) = &ev.share_error {
            return Err(Reason::new(
                Code::CiShareUnreadable,
                format!("cannot read the CI evidence on {}: {e}", ev.share),
            ));
        }
        let Some(signers) = signers.and_then(|t| crate::signers::parse(t).ok()) else {
            return Err(Reason::new(
                Code::CiNoSigners,
                "no allowed_signers text is recorded to check the CI statements' signatures with",
            ));
        };
        Ok(Reading {
            spec,
            ev,
            project,
            commit,
            signers,
            valid_at,
            blobs,
        })
    }

    /// The statement `f` as it counts for its job, with when it was made; or why it does not
    /// count.
    fn counted(&self, f: &FetchedStatement) -> Result<(i64, CountedJob), IgnoredStatement> {
        let st = self.verified(f)?;
        let at = st.unix_time().unwrap_or(i64::MAX);
        if let Some((code, reason)) = self.why_not_counted(f, &st, at) {
            return Err(ignored(f, Some(&st.job), code, reason));
        }
        Ok((
            at,
            CountedJob {
                job: st.job.clone(),
                name: f.name.clone(),
                statement: st,
            },
        ))
    }

    /// The statement, its bytes in the record and its signature valid under the signers.
    fn verified(&self, f: &FetchedStatement) -> Result<CiStatement, IgnoredStatement> {
        let (Ok(bytes), Ok(sig)) = (self.blobs.get(&f.statement), self.blobs.get(&f.signature))
        else {
            return Err(ignored(
                f,
                None,
                Code::EvidenceMalformed,
                "its bytes are not in the record".into(),
            ));
        };
        ci::verify(&bytes, &sig, &self.signers, self.valid_at)
            .map_err(|p| ignored(f, None, p.code(), p.to_string()))
    }

    /// Why a valid statement made at `at` does not count: its signer is not in `signed_by`, it
    /// is for another project or commit or for a job not named, it is dated after the share
    /// was read, or its reports cannot be judged.
    fn why_not_counted(
        &self,
        f: &FetchedStatement,
        st: &CiStatement,
        at: i64,
    ) -> Option<(Code, String)> {
        let (spec, commit) = (self.spec, self.commit);
        if !spec.signed_by.contains(&st.signer) {
            Some((
                Code::CiSignerNotInSignedBy,
                format!(
                    "signed by {}, who is not in signed_by ({})",
                    st.signer,
                    spec.signed_by_as_written.join(", ")
                ),
            ))
        } else if st.project != self.project {
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
        } else if at > self.ev.read_at.saturating_add(CLOCK_SKEW_SECS) {
            Some((
                Code::CiStatementFromFuture,
                format!("dated {}, after the share was read", st.time),
            ))
        } else {
            report_problem(f, st, self.blobs)
        }
    }
}

/// `f` ignored, with the job it names when it could be read.
fn ignored(
    f: &FetchedStatement,
    job: Option<&str>,
    code: Code,
    reason: String,
) -> IgnoredStatement {
    IgnoredStatement {
        name: f.name.clone(),
        job: job.map(str::to_string),
        code,
        reason,
    }
}

/// The steps of [`assess`] that add to the assessment.
impl Assessment {
    /// Keep the latest statement of each job (made later, or at the same time with the greater
    /// name); the one it replaces is superseded.
    fn keep_latest(&mut self, latest: &mut Latest, at: i64, counted: CountedJob) {
        match latest.get(&counted.job) {
            Some((t, prev)) if (*t, prev.name.as_str()) > (at, counted.name.as_str()) => {
                self.superseded.push((counted.job.clone(), counted.name));
            }
            Some((_, prev)) => {
                self.superseded.push((prev.job.clone(), prev.name.clone()));
                latest.insert(counted.job.clone(), (at, counted));
            }
            None => {
                latest.insert(counted.job.clone(), (at, counted));
            }
        }
    }

    /// For each named job in `jobs` order, its statement counted, or the job missing.
    fn per_job(&mut self, jobs: &[String], mut latest: Latest) {
        for job in jobs {
            match latest.remove(job) {
                Some((_, c)) => self.counted.push(c),
                None => self.missing.push(job.clone()),
            }
        }
    }
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

/// Read the share for the release commit and store what it holds: each statement and its
/// signature, and the reports of each statement that would count.
pub async fn collect(
    spec: &FromShareSpec,
    cx: &CollectContext,
) -> Result<FromShareEvidence, CollectError> {
    let p = &cx.pipeline;
    let (repo, rev) = commit_source(p);
    let mut ev = FromShareEvidence::unread(repo, rev);
    // 1. The release commit.
    let Some(commit) = release_commit(&mut ev, cx).await? else {
        return Ok(ev);
    };
    // 2. The share.
    let Some(share) = open_share(&mut ev, p) else {
        return Ok(ev);
    };
    // 3. The statements on it for the commit.
    let Some(pairs) = read_statements(&mut ev, &share, &p.project, &commit).await else {
        return Ok(ev);
    };
    // 4. Each statement stored, and the reports of those that would count.
    let signers_text = p
        .signers
        .as_ref()
        .and_then(|path| std::fs::read_to_string(path).ok());
    let fetch = Fetch {
        spec,
        cx,
        share: &share,
        commit: &commit,
        signers: signers_text
            .as_deref()
            .and_then(|t| crate::signers::parse(t).ok()),
    };
    for pair in &pairs {
        ev.statements.push(fetch.statement(pair).await?);
    }
    // 5. What the run shows.
    ev.notes = notes(spec, &ev, &p.project, signers_text.as_deref(), cx);
    Ok(ev)
}

impl FromShareEvidence {
    /// Nothing read yet of the release commit `rev` in `repo`.
    fn unread(repo: PathBuf, rev: String) -> Self {
        FromShareEvidence {
            repo,
            rev,
            commit: None,
            commit_error: None,
            share: String::new(),
            share_error: None,
            statements: Vec::new(),
            passed_over: Vec::new(),
            read_at: crate::share::now(),
            notes: Vec::new(),
        }
    }
}

/// Resolve the release commit into `ev`; `None` (with the error recorded) when it cannot be.
async fn release_commit(
    ev: &mut FromShareEvidence,
    cx: &CollectContext,
) -> Result<Option<String>, CollectError> {
    match crate::git::resolve_commit(&ev.repo, &ev.rev, cx.cancel.clone()).await {
        Ok(c) => {
            ev.commit = Some(c.clone());
            Ok(Some(c))
        }
        Err(crate::git::GitError::Interrupted) => Err(CollectError::Interrupted),
        Err(e) => {
            ev.commit_error = Some(e.to_string());
            Ok(None)
        }
    }
}

/// Open the pipeline's share, naming it in `ev`; `None` (with why recorded) when there is
/// none or it cannot be opened.
fn open_share(ev: &mut FromShareEvidence, p: &Pipeline) -> Option<crate::share::Share> {
    let share = match p
        .share
        .as_ref()
        .map(|s| crate::share::open_spec(s, &p.root))
    {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            ev.share_error = Some(e.to_string());
            return None;
        }
        None => {
            ev.share_error = Some("the pipeline names no share".into());
            return None;
        }
    };
    ev.share = crate::share::Store::describe(&share);
    Some(share)
}

/// Read the statement pairs for `commit` on the share, recording when and what was passed
/// over; `None` (with why recorded) when the share cannot be read.
async fn read_statements(
    ev: &mut FromShareEvidence,
    share: &crate::share::Share,
    project: &str,
    commit: &str,
) -> Option<Vec<crate::approval::Pair>> {
    let found = match ci::read(share, project, commit).await {
        Ok(f) => f,
        Err(e) => {
            ev.share_error = Some(e.to_string());
            return None;
        }
    };
    ev.read_at = crate::share::now();
    ev.passed_over = found.ignored;
    Some(found.pairs)
}

/// What each statement on the share is stored and fetched with.
struct Fetch<'a> {
    spec: &'a FromShareSpec,
    cx: &'a CollectContext,
    share: &'a crate::share::Share,
    commit: &'a str,
    signers: Option<crate::signers::AllowedSigners>,
}

impl Fetch<'_> {
    /// Store the statement and its signature; when it verifies and is by `signed_by`, for this
    /// project, commit and a named job, fetch its reports too (junk costs no downloads).
    async fn statement(
        &self,
        pair: &crate::approval::Pair,
    ) -> Result<FetchedStatement, CollectError> {
        let (spec, cx, p) = (self.spec, self.cx, &self.cx.pipeline);
        let mut f = FetchedStatement {
            name: pair.name.clone(),
            statement: cx.record.put(&pair.statement)?,
            signature: cx.record.put(&pair.signature)?,
            fetched: false,
            reports: Vec::new(),
        };
        let verified = self
            .signers
            .as_ref()
            .and_then(|s| ci::verify(&pair.statement, &pair.signature, s, cx.started_at).ok());
        if let Some(st) = verified.filter(|st| {
            spec.signed_by.contains(&st.signer)
                && st.commit == self.commit
                && st.project == p.project
                && spec.jobs.contains(&st.job)
        }) {
            f.fetched = true;
            for r in &st.reports {
                f.reports.push(FetchedReport {
                    sha256: r.sha256.clone(),
                    state: self.report(r).await?,
                });
            }
        }
        Ok(f)
    }

    /// Fetch one report the statement names, storing it when its bytes are the ones named.
    async fn report(&self, r: &ci::ReportRef) -> Result<FetchState, CollectError> {
        let p = &self.cx.pipeline;
        Ok(
            match ci::get_report(
                self.share,
                &p.project,
                self.commit,
                &r.sha256,
                MAX_REPORT_BYTES,
            )
            .await
            {
                Ok(None) => FetchState::Missing,
                Ok(Some(bytes)) => {
                    let actual = crate::digest::sha256_hex(&bytes);
                    if actual == r.sha256 && bytes.len() as u64 == r.size {
                        self.cx.record.put(&bytes)?;
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
            },
        )
    }
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
