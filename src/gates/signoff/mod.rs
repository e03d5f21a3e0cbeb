//! The `signoff` gate: manual sign-off by a quorum of distinct people with distinct keys, with
//! segregation of duties (no commit author, no operator, no release signer signs off).
//!
//! Collect copies every `approvals/NAME` + `NAME.sig` pair into the evidence store and, when the
//! pipeline has `changes`, the `git log` of the range (for the authors). [`assess`] is the pure
//! reading of that evidence — what counts, what is ignored and why, who may still sign — and
//! [`judge`] turns it into a verdict; `status` shows the same [`SignoffReport`], and
//! [`preview`] reads an approvals folder the way the next run will (for `status` and
//! `approve`).

mod assess;
pub mod preview;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{CollectContext, CollectError, JudgeContext, Outcome, Reason, Verdict};
use crate::approval;
use crate::gates::Code;
use crate::git::{self, RangeFacts};
use crate::model::{GateSpec, SignoffSpec};

pub use assess::assess;

/// How far the clocks of an approver's machine and the release machine may disagree: a
/// statement may be dated this much before the subject was first staged, or after the
/// approvals folder was read, and still count. Anything further out is backdated or from the
/// future, and does not count.
pub const CLOCK_SKEW_SECS: i64 = 300;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SignoffEvidence {
    /// Digest of the allowed_signers text read at collect time (the judge uses the text the
    /// run recorded, `JudgeContext::signers`).
    pub signers: Option<String>,
    /// Every complete pair found, by name, with the digests of its two files.
    pub approvals: Vec<RecordedPair>,
    /// Files in approvals/ without their partner.
    pub unpaired: Vec<String>,
    /// Files in approvals/ refused unread, and why (an unreadable name, shown escaped; too
    /// big; not a regular file).
    #[serde(default)]
    pub refused: Vec<(String, String)>,
    /// Pairs an earlier run of this record recorded for the same gate and subject that are no
    /// longer in approvals/: a rejection stays in force, a withdrawn approval is reported.
    #[serde(default)]
    pub remembered: Vec<RecordedPair>,
    /// Unix seconds when approvals/ was read: no statement dated after it can have been there.
    #[serde(default)]
    pub read_at: Option<i64>,
    /// The commit authors of `changes.range`, when the pipeline sets `changes`.
    pub authors: Option<AuthorsEvidence>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordedPair {
    pub name: String,
    /// Digest of the statement bytes.
    pub statement: String,
    /// Digest of the signature bytes.
    pub signature: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuthorsEvidence {
    pub range: String,
    /// How git was run and what it said about the range; refused when absent (older evidence).
    #[serde(default)]
    pub history: Option<RangeFacts>,
    /// Digest of the raw `git log` output (the judge reads the authors from it).
    pub log: Option<String>,
    pub error: Option<String>,
    /// The principals of the changes' authors and co-authors, sorted (a readable copy).
    pub emails: Vec<String>,
}

/// A sign-off that counts toward the quorum.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counted {
    pub principal: String,
    pub key: String,
    pub name: String,
    pub time: String,
}

/// A valid rejection by an eligible principal.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rejection {
    pub principal: String,
    pub comment: String,
    pub name: String,
    pub time: String,
}

/// A pair that does not count, and why.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ignored {
    pub name: String,
    /// The statement's signer, when it could be read.
    pub signer: Option<String>,
    /// Stable code, e.g. `approval-bad-signature`.
    pub code: Code,
    pub reason: String,
}

/// Everything `status` and the verdict say about one signoff gate.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignoffReport {
    pub gate: String,
    pub subject: String,
    pub quorum: u32,
    pub counted: Vec<Counted>,
    pub rejected: Vec<Rejection>,
    pub ignored: Vec<Ignored>,
    /// Eligible principals of the role who have not signed (or whose sign-off did not count).
    pub may_still_sign: Vec<String>,
    /// A problem that stops the gate whatever was signed (red).
    pub problem: Option<Reason>,
}

pub async fn collect(
    gate: &GateSpec,
    _spec: &SignoffSpec,
    cx: &CollectContext,
) -> Result<SignoffEvidence, CollectError> {
    let signers = match &cx.pipeline.signers {
        Some(path) => match std::fs::read(path) {
            Ok(text) => Some(cx.record.put(&text)?),
            Err(_) => None,
        },
        None => None,
    };
    let dir = approvals_source(cx);
    let read_at = time::OffsetDateTime::now_utc().unix_timestamp();
    let folder = approval::load_folder(&dir).map_err(CollectError::file("read", &dir))?;
    let mut approvals = Vec::with_capacity(folder.pairs.len());
    for pair in &folder.pairs {
        approvals.push(RecordedPair {
            name: pair.name.clone(),
            statement: cx.record.put(&pair.statement)?,
            signature: cx.record.put(&pair.signature)?,
        });
    }
    let authors = match &cx.pipeline.changes {
        None => None,
        Some(changes) => {
            let read = git::read_range(&changes.repo, &changes.range, cx.cancel.clone()).await;
            if matches!(read, Err(git::GitError::Interrupted)) {
                return Err(CollectError::Interrupted);
            }
            let (a, log) = authors_evidence(&changes.range, read);
            if let Some(raw) = log {
                cx.record.put(&raw)?;
            }
            Some(a)
        }
    };
    let remembered = remembered(
        &gate.id,
        &cx.prior,
        &cx.staged.subject,
        &cx.record,
        &approvals,
    );
    Ok(SignoffEvidence {
        signers,
        approvals,
        unpaired: folder.unpaired,
        refused: folder.refused,
        remembered,
        read_at: Some(read_at),
        authors,
    })
}

/// What git said about `range`, as evidence, and the raw `git log` output to store (its digest
/// is named in the evidence). A read that failed is evidence too: the judge says why.
pub(crate) fn authors_evidence(
    range: &str,
    read: Result<git::RangeRead, git::GitError>,
) -> (AuthorsEvidence, Option<Vec<u8>>) {
    let mut a = AuthorsEvidence {
        range: range.to_string(),
        history: None,
        log: None,
        error: None,
        emails: Vec::new(),
    };
    let mut raw_log = None;
    match read {
        Ok(read) => {
            if let (Some(raw), Some(sep)) = (read.log, &read.facts.separator) {
                a.log = Some(crate::digest::sha256_hex(&raw));
                match git::parse_log(&raw, sep) {
                    // A malformed identity leaves the list empty; the judge says why.
                    Ok(commits) => a.emails = writers(&commits).unwrap_or_default(),
                    Err(e) => a.error = Some(e.to_string()),
                }
                raw_log = Some(raw);
            }
            a.history = Some(read.facts);
        }
        Err(e) => a.error = Some(e.to_string()),
    }
    (a, raw_log)
}

/// The pairs earlier runs recorded for `gate` and `subject` (in `prior`, the lines a signed
/// checkpoint covers) that are not among `present`. Their bytes are in `blobs` already.
pub(crate) fn remembered(
    gate: &str,
    prior: &[crate::log::Entry],
    subject: &str,
    blobs: &dyn crate::record::Blobs,
    present: &[RecordedPair],
) -> Vec<RecordedPair> {
    let mut out: Vec<RecordedPair> = Vec::new();
    let mut same_subject = false;
    for e in prior {
        match &e.record {
            crate::log::Record::RunStarted(r) => same_subject = r.subject == subject,
            crate::log::Record::GateVerdict(v) if same_subject && v.gate == gate => {
                let Some(ev) = v
                    .evidence
                    .as_ref()
                    .and_then(|d| blobs.get(d).ok())
                    .and_then(|b| serde_json::from_slice::<SignoffEvidence>(&b).ok())
                else {
                    continue;
                };
                for p in ev.approvals.into_iter().chain(ev.remembered) {
                    // Still present only if both files are as recorded: a statement whose
                    // signature was since spoiled must not take the recorded pair with it.
                    let known =
                        |q: &RecordedPair| q.statement == p.statement && q.signature == p.signature;
                    if !present.iter().any(known) && !out.iter().any(known) {
                        out.push(p);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The approvals folder to read: the release record's own; a dry run (whose record is kept
/// apart) reads the release's folder too, to show what a real run would count.
fn approvals_source(cx: &CollectContext) -> PathBuf {
    if cx.dry_run {
        approval::record_dir(&cx.pipeline, &cx.version).join(crate::record::APPROVALS_DIR)
    } else {
        cx.record.approvals_dir()
    }
}

/// The principals who wrote a change in the range, as the change-record gate counts them; an
/// identity that does not parse is a problem, since it could be anyone.
fn writers(commits: &[git::Commit]) -> Result<Vec<String>, Reason> {
    super::change_record::range_writers(commits)
        .map_err(|e| Reason::new(Code::ChangeIdentityMalformed, e))
}

/// Judge the gate: red on a problem or a rejection, green at quorum, else pending.
pub fn judge(
    gate: &GateSpec,
    spec: &SignoffSpec,
    ev: &SignoffEvidence,
    cx: &JudgeContext<'_>,
) -> Verdict {
    verdict(&assess(gate, spec, ev, cx))
}

/// The verdict for a report. Ignored sign-offs are listed as reasons after the main one (also
/// on a green verdict, so the record says what was left out).
pub fn verdict(report: &SignoffReport) -> Verdict {
    let ignored = report.ignored.iter().map(|i| {
        let who = i.signer.as_deref().unwrap_or("unknown signer");
        Reason::new(i.code, format!("{} ({who}) ignored: {}", i.name, i.reason))
    });
    let (outcome, mut reasons) = if let Some(p) = &report.problem {
        (Outcome::Red, vec![p.clone()])
    } else if !report.rejected.is_empty() {
        let rs = report
            .rejected
            .iter()
            .map(|r| {
                Reason::new(
                    Code::SignoffRejected,
                    format!("rejected by {}: {}", r.principal, r.comment),
                )
            })
            .collect();
        (Outcome::Red, rs)
    } else if report.counted.len() as u64 >= u64::from(report.quorum) {
        (Outcome::Green, Vec::new())
    } else {
        let may = if report.may_still_sign.is_empty() {
            "nobody".to_string()
        } else {
            report.may_still_sign.join(", ")
        };
        let msg = format!(
            "{} of {} approvals; may still sign: {may}; subject {}",
            report.counted.len(),
            report.quorum,
            report.subject
        );
        (Outcome::Pending, vec![Reason::new(Code::QuorumNotMet, msg)])
    };
    reasons.extend(ignored);
    Verdict { outcome, reasons }
}
