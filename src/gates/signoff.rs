//! The `signoff` gate: manual sign-off by a quorum of distinct people with distinct keys, with
//! segregation of duties (no commit author, no operator, no release signer signs off).
//!
//! Collect copies every `approvals/NAME` + `NAME.sig` pair into the evidence store and, when the
//! pipeline has `changes`, the `git log` of the range (for the authors). [`assess`] is the pure
//! reading of that evidence — what counts, what is ignored and why, who may still sign — and
//! [`judge`] turns it into a verdict; `status` shows the same [`SignoffReport`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{CollectContext, CollectError, JudgeContext, Outcome, Reason, Verdict};
use crate::approval::{self, Decision, Verified};
use crate::git::{self, RangeFacts};
use crate::identity;
use crate::model::{GateSpec, SignoffSpec};

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
    pub code: String,
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
    let folder = approval::load_folder(&dir)
        .map_err(|e| CollectError::Other(format!("cannot read {}: {e}", dir.display())))?;
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
            let mut a = AuthorsEvidence {
                range: changes.range.clone(),
                history: None,
                log: None,
                error: None,
                emails: Vec::new(),
            };
            match git::read_range(&changes.repo, &changes.range, cx.cancel.clone()).await {
                Ok(read) => {
                    if let (Some(raw), Some(sep)) = (&read.log, &read.facts.separator) {
                        a.log = Some(cx.record.put(raw)?);
                        match git::parse_log(raw, sep) {
                            // A malformed identity leaves the list empty; the judge says why.
                            Ok(commits) => a.emails = writers(&commits).unwrap_or_default(),
                            Err(e) => a.error = Some(e.to_string()),
                        }
                    }
                    a.history = Some(read.facts);
                }
                Err(git::GitError::Interrupted) => return Err(CollectError::Interrupted),
                Err(e) => a.error = Some(e.to_string()),
            }
            Some(a)
        }
    };
    let remembered = remembered(gate, cx, &approvals);
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

/// The pairs earlier runs recorded for this gate and the current subject (in the lines a
/// signed checkpoint covers) that are not among `present`. Their bytes are in the evidence
/// store already.
fn remembered(gate: &GateSpec, cx: &CollectContext, present: &[RecordedPair]) -> Vec<RecordedPair> {
    let mut out: Vec<RecordedPair> = Vec::new();
    let mut same_subject = false;
    for e in cx.prior.iter() {
        match &e.record {
            crate::log::Record::RunStarted(r) => same_subject = r.subject == cx.staged.subject,
            crate::log::Record::GateVerdict(v) if same_subject && v.gate == gate.id => {
                let Some(ev) = v
                    .evidence
                    .as_ref()
                    .and_then(|d| crate::record::Blobs::get(&cx.record, d).ok())
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
        .map_err(|e| Reason::new("change-identity-malformed", e))
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
        Reason::new(&i.code, format!("{} ({who}) ignored: {}", i.name, i.reason))
    });
    let (outcome, mut reasons) = if let Some(p) = &report.problem {
        (Outcome::Red, vec![p.clone()])
    } else if !report.rejected.is_empty() {
        let rs = report
            .rejected
            .iter()
            .map(|r| {
                Reason::new(
                    "signoff-rejected",
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
        (Outcome::Pending, vec![Reason::new("quorum-not-met", msg)])
    };
    reasons.extend(ignored);
    Verdict { outcome, reasons }
}

/// An eligible, verified statement.
struct Candidate {
    v: Verified,
    name: String,
}

/// Read the evidence purely: verify every pair, sort out what does not count, and count
/// distinct principals with distinct keys.
pub fn assess(
    gate: &GateSpec,
    spec: &SignoffSpec,
    ev: &SignoffEvidence,
    cx: &JudgeContext<'_>,
) -> SignoffReport {
    let mut report = SignoffReport {
        gate: gate.id.clone(),
        subject: cx.subject.to_string(),
        quorum: spec.quorum,
        counted: Vec::new(),
        rejected: Vec::new(),
        ignored: Vec::new(),
        may_still_sign: Vec::new(),
        problem: None,
    };
    let role: Vec<String> = cx
        .pipeline
        .roles
        .get(&spec.role)
        .cloned()
        .unwrap_or_default();
    let signers = match cx.signers.map(crate::signers::parse) {
        None => {
            report.problem = Some(Reason::new(
                "signers-missing",
                "no allowed_signers is recorded for the run, so no sign-off can be checked",
            ));
            return report;
        }
        Some(Err(problems)) => {
            let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            report.problem = Some(Reason::new(
                "signers-invalid",
                format!("allowed_signers does not parse: {}", text.join("; ")),
            ));
            return report;
        }
        Some(Ok(s)) => s,
    };
    let authors = match authors(ev, cx) {
        Ok(a) => a,
        Err(problem) => {
            report.problem = Some(problem);
            return report;
        }
    };
    // Who may not sign off, by default, and why.
    let mut barred: BTreeMap<String, (&'static str, &'static str)> = BTreeMap::new();
    for a in authors.iter().filter(|_| spec.bar_authors) {
        barred.insert(
            a.clone(),
            (
                "approval-by-author",
                "wrote (authored or co-authored) a change in changes.range",
            ),
        );
    }
    if let Some(op) = cx.operator.filter(|_| spec.bar_operator) {
        barred.insert(
            identity::principal(op),
            ("approval-by-operator", "is the operator of this run"),
        );
    }
    if let Some((_, sign)) = cx.pipeline.sign_gate().filter(|_| spec.bar_signer) {
        barred.insert(
            identity::principal(&sign.signer),
            ("approval-by-release-signer", "is the sign gate's signer"),
        );
    }

    for name in &ev.unpaired {
        report.ignored.push(Ignored {
            name: name.clone(),
            signer: None,
            code: "approval-unpaired".into(),
            reason: "a statement without its .sig file, or a .sig without its statement".into(),
        });
    }
    for (name, why) in &ev.refused {
        report.ignored.push(Ignored {
            name: name.clone(),
            signer: None,
            code: "approval-file-refused".into(),
            reason: format!("refused unread: {why}"),
        });
    }
    let mut candidates = Vec::new();
    let read_at = ev.read_at.unwrap_or(cx.started_at);
    let pairs = ev
        .approvals
        .iter()
        .map(|p| (p, false))
        .chain(ev.remembered.iter().map(|p| (p, true)));
    for (pair, gone) in pairs {
        let (statement, signature) =
            match (cx.blobs.get(&pair.statement), cx.blobs.get(&pair.signature)) {
                (Ok(s), Ok(g)) => (s, g),
                (Err(e), _) | (_, Err(e)) => {
                    report.problem = Some(Reason::new(
                        "evidence-missing",
                        format!("sign-off {}: {e}", pair.name),
                    ));
                    return report;
                }
            };
        let ignore =
            |report: &mut SignoffReport, signer: Option<&str>, code: &str, reason: String| {
                report.ignored.push(Ignored {
                    name: pair.name.clone(),
                    signer: signer.map(str::to_string),
                    code: code.to_string(),
                    reason,
                });
            };
        let v = match approval::verify_pair(&statement, &signature, &signers, cx.started_at) {
            Ok(v) => v,
            Err(p) => {
                let signer = approval::parse_statement(&statement).ok().map(|s| s.signer);
                ignore(&mut report, signer.as_deref(), p.code(), p.to_string());
                continue;
            }
        };
        let st = &v.statement;
        let who = Some(st.signer.as_str());
        if st.project != cx.project || st.version != cx.version {
            ignore(
                &mut report,
                who,
                "approval-other-release",
                format!("it is for {} {}", st.project, st.version),
            );
        } else if st.gate != gate.id {
            ignore(
                &mut report,
                who,
                "approval-other-gate",
                format!("it is for gate {}", st.gate),
            );
        } else if st.subject != cx.subject {
            ignore(
                &mut report,
                who,
                "approval-other-subject",
                format!(
                    "it is for subject {}, not the staged {}",
                    st.subject, cx.subject
                ),
            );
        } else if !role.iter().any(|m| m == &st.signer) {
            ignore(
                &mut report,
                who,
                "approval-outside-role",
                format!("{} is not in role {}", st.signer, spec.role),
            );
        } else if let Some((code, why)) = barred.get(&identity::principal(&st.signer)) {
            ignore(&mut report, who, code, format!("{} {why}", st.signer));
        } else if st.policy != cx.policy {
            ignore(
                &mut report,
                who,
                "approval-other-policy",
                format!(
                    "it was given under policy {}, not this run's {} (the pipeline changed)",
                    st.policy, cx.policy
                ),
            );
        } else if v.at > read_at.saturating_add(CLOCK_SKEW_SECS) {
            ignore(
                &mut report,
                who,
                "approval-from-future",
                format!("it is dated {}, after the approvals were read", st.time),
            );
        } else if v.at < cx.subject_since.saturating_sub(CLOCK_SKEW_SECS) {
            ignore(
                &mut report,
                who,
                "approval-backdated",
                format!(
                    "it is dated {}, before this subject was first staged",
                    st.time
                ),
            );
        } else if spec.expires_secs.is_some_and(|exp| {
            cx.started_at.saturating_sub(v.at) > i64::try_from(exp).unwrap_or(i64::MAX)
        }) {
            ignore(
                &mut report,
                who,
                "approval-expired",
                format!("it is dated {}, older than the gate's expires", st.time),
            );
        } else if gone && st.decision == Decision::Approve {
            ignore(
                &mut report,
                who,
                "approval-withdrawn",
                "its files were removed from approvals/ after a run recorded them; a removed \
                 approval no longer counts"
                    .to_string(),
            );
        } else {
            candidates.push(Candidate {
                name: pair.name.clone(),
                v,
            });
        }
    }

    // A principal's latest statement decides (a rejection wins a tie); earlier ones that
    // disagree with it are superseded.
    let mut by_principal: BTreeMap<String, Vec<&Candidate>> = BTreeMap::new();
    for c in &candidates {
        by_principal
            .entry(c.v.statement.signer.clone())
            .or_default()
            .push(c);
    }
    let mut approvers: Vec<(String, Vec<&Candidate>)> = Vec::new();
    for (principal, mut list) in by_principal {
        list.sort_by_key(|c| (c.v.at, c.v.statement.decision));
        let Some(latest) = list.last() else { continue };
        let last_reject = list
            .iter()
            .rposition(|c| c.v.statement.decision == Decision::Reject);
        for (i, c) in list.iter().enumerate() {
            let superseded = match latest.v.statement.decision {
                Decision::Reject => i + 1 < list.len(),
                Decision::Approve => last_reject.is_some_and(|r| i <= r),
            };
            if superseded {
                report.ignored.push(Ignored {
                    name: c.name.clone(),
                    signer: Some(principal.clone()),
                    code: "approval-superseded".into(),
                    reason: format!("{principal} signed again later"),
                });
            }
        }
        match latest.v.statement.decision {
            Decision::Reject => report.rejected.push(Rejection {
                principal: principal.clone(),
                comment: latest.v.statement.comment.clone(),
                name: latest.name.clone(),
                time: latest.v.statement.time.clone(),
            }),
            Decision::Approve => {
                let start = last_reject.map_or(0, |r| r + 1);
                approvers.push((principal, list[start..].to_vec()));
            }
        }
    }

    // Distinct principals with distinct keys: a maximum matching of principals to keys, so
    // that one person twice, or two principals sharing one key, count once.
    let matched = match_keys(&approvers);
    for (i, (principal, list)) in approvers.iter().enumerate() {
        match matched[i] {
            Some(key) => {
                let c = list.iter().rev().find(|c| c.v.key == key).or(list.last());
                if let Some(c) = c {
                    report.counted.push(Counted {
                        principal: principal.clone(),
                        key: key.to_string(),
                        name: c.name.clone(),
                        time: c.v.statement.time.clone(),
                    });
                }
            }
            None => {
                for c in list {
                    report.ignored.push(Ignored {
                        name: c.name.clone(),
                        signer: Some(principal.clone()),
                        code: "approval-key-shared".into(),
                        reason: format!("key {} already counts for another principal", c.v.key),
                    });
                }
            }
        }
    }

    let done: BTreeSet<&str> = report
        .counted
        .iter()
        .map(|c| c.principal.as_str())
        .chain(report.rejected.iter().map(|r| r.principal.as_str()))
        .collect();
    let mut may: Vec<String> = role
        .iter()
        .filter(|m| signers.names_principal(m))
        .filter(|m| !done.contains(m.as_str()))
        .filter(|m| !barred.contains_key(&identity::principal(m)))
        .cloned()
        .collect();
    may.sort();
    may.dedup();
    report.may_still_sign = may;
    report
}

/// The principals who wrote the range's changes, from the recorded `git log`, or the problem
/// that stops the gate: without them, segregation of duties cannot be checked.
fn authors(ev: &SignoffEvidence, cx: &JudgeContext<'_>) -> Result<BTreeSet<String>, Reason> {
    if cx.pipeline.changes.is_none() {
        return Ok(BTreeSet::new());
    }
    let Some(a) = &ev.authors else {
        return Err(Reason::new(
            "evidence-malformed",
            "the evidence holds no commit authors though the pipeline sets changes",
        ));
    };
    if let Some(e) = &a.error {
        return Err(Reason::new(
            "change-range-unreadable",
            format!("cannot tell the commit authors: {e}"),
        ));
    }
    // A shallow, reversed or unguarded read may have missed an author. An empty range is no
    // problem here: it has no authors to bar (the change-record gate refuses it).
    if let Some(p) = RangeFacts::problem(a.history.as_ref(), &a.range) {
        return Err(Reason::new(
            p.code(),
            format!("cannot tell the commit authors: {p}"),
        ));
    }
    let (Some(log), Some(sep)) = (
        &a.log,
        a.history.as_ref().and_then(|h| h.separator.as_ref()),
    ) else {
        return Err(Reason::new(
            "evidence-malformed",
            "the evidence names no git log output",
        ));
    };
    let raw = cx
        .blobs
        .get(log)
        .map_err(|e| Reason::new("evidence-missing", e.to_string()))?;
    let commits = git::parse_log(&raw, sep)
        .map_err(|e| Reason::new("change-range-unreadable", e.to_string()))?;
    let writers = writers(&commits)?;
    if writers != a.emails {
        return Err(Reason::new(
            "evidence-mismatch",
            "the recorded authors differ from the recorded git log output",
        ));
    }
    Ok(writers.into_iter().collect())
}

/// Kuhn's augmenting paths: principal i -> one of its keys, no key used twice. Returns the
/// key each principal is matched with.
fn match_keys<'a>(approvers: &'a [(String, Vec<&'a Candidate>)]) -> Vec<Option<&'a str>> {
    let keys: Vec<Vec<&str>> = approvers
        .iter()
        .map(|(_, list)| {
            let mut k: Vec<&str> = list.iter().map(|c| c.v.key.as_str()).collect();
            k.sort_unstable();
            k.dedup();
            k
        })
        .collect();
    let mut owner: BTreeMap<&str, usize> = BTreeMap::new();
    fn augment<'a>(
        i: usize,
        keys: &[Vec<&'a str>],
        owner: &mut BTreeMap<&'a str, usize>,
        seen: &mut BTreeSet<&'a str>,
    ) -> bool {
        for &k in &keys[i] {
            if !seen.insert(k) {
                continue;
            }
            let free = match owner.get(k) {
                None => true,
                Some(&j) => augment(j, keys, owner, seen),
            };
            if free {
                owner.insert(k, i);
                return true;
            }
        }
        false
    }
    for i in 0..approvers.len() {
        augment(i, &keys, &mut owner, &mut BTreeSet::new());
    }
    let mut out = vec![None; approvers.len()];
    for (k, i) in owner {
        out[i] = Some(k);
    }
    out
}
