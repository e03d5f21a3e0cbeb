//! [`assess`]: the pure reading of a signoff gate's evidence — what counts, what is ignored and
//! why, who may still sign.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    CLOCK_SKEW_SECS, Counted, Ignored, Rejection, SignoffEvidence, SignoffReport, writers,
};
use crate::approval::{self, Decision, Verified};
use crate::gates::Code;
use crate::gates::{JudgeContext, Reason};
use crate::git::{self, RangeFacts};
use crate::identity;
use crate::model::{GateSpec, SignoffSpec};
use crate::signers::AllowedSigners;

/// An eligible, verified statement.
struct Candidate {
    v: Verified,
    name: String,
}

/// Who may not sign off, and why: principal → (code, reason).
type Barred = BTreeMap<String, (Code, &'static str)>;

/// An approving principal with its statements since its last rejection.
type Approver<'c> = (String, Vec<&'c Candidate>);

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
    // A problem that stops the gate ends the reading; what was sorted out before it stays.
    if let Err(problem) = assess_into(&mut report, gate, spec, ev, cx) {
        report.problem = Some(problem);
    }
    report
}

/// The steps of [`assess`], in order.
fn assess_into(
    report: &mut SignoffReport,
    gate: &GateSpec,
    spec: &SignoffSpec,
    ev: &SignoffEvidence,
    cx: &JudgeContext<'_>,
) -> Result<(), Reason> {
    let role: Vec<String> = cx
        .pipeline
        .roles
        .get(&spec.role)
        .cloned()
        .unwrap_or_default();
    let signers = signers(cx)?;
    let authors = authors(ev, cx)?;
    let barred = barred(spec, cx, &authors);
    unread(report, ev);
    let rules = Rules {
        gate,
        spec,
        cx,
        role: &role,
        barred: &barred,
        read_at: ev.read_at.unwrap_or(cx.started_at),
    };
    let candidates = eligible(report, ev, &signers, &rules)?;
    let approvers = latest(report, &candidates);
    count(report, &approvers);
    report.may_still_sign = may_still_sign(report, &role, &signers, &barred);
    Ok(())
}

/// The allowed_signers the run recorded: without them no sign-off can be checked.
fn signers(cx: &JudgeContext<'_>) -> Result<AllowedSigners, Reason> {
    match cx.signers.map(crate::signers::parse) {
        None => Err(Reason::new(
            Code::SignersMissing,
            "no allowed_signers is recorded for the run, so no sign-off can be checked",
        )),
        Some(Err(problems)) => {
            let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            Err(Reason::new(
                Code::SignersInvalid,
                format!("allowed_signers does not parse: {}", text.join("; ")),
            ))
        }
        Some(Ok(s)) => Ok(s),
    }
}

/// Who may not sign off, by default, and why.
fn barred(spec: &SignoffSpec, cx: &JudgeContext<'_>, authors: &BTreeSet<String>) -> Barred {
    let mut barred: Barred = BTreeMap::new();
    for a in authors.iter().filter(|_| spec.bar_authors) {
        barred.insert(
            a.clone(),
            (
                Code::ApprovalByAuthor,
                "wrote (authored or co-authored) a change in changes.range",
            ),
        );
    }
    if let Some(op) = cx.operator.filter(|_| spec.bar_operator) {
        barred.insert(
            identity::principal(op),
            (Code::ApprovalByOperator, "is the operator of this run"),
        );
    }
    if let Some((_, sign)) = cx.pipeline.sign_gate().filter(|_| spec.bar_signer) {
        barred.insert(
            identity::principal(&sign.signer),
            (Code::ApprovalByReleaseSigner, "is the sign gate's signer"),
        );
    }
    barred
}

/// Files in approvals/ that were not read as a pair: ignored.
fn unread(report: &mut SignoffReport, ev: &SignoffEvidence) {
    for name in &ev.unpaired {
        report.ignored.push(Ignored {
            name: name.clone(),
            signer: None,
            code: Code::ApprovalUnpaired,
            reason: "a statement without its .sig file, or a .sig without its statement".into(),
        });
    }
    for (name, why) in &ev.refused {
        report.ignored.push(Ignored {
            name: name.clone(),
            signer: None,
            code: Code::ApprovalFileRefused,
            reason: format!("refused unread: {why}"),
        });
    }
}

/// Each recorded pair (those still in approvals/, then those removed since a run recorded
/// them) verified and held against the [`Rules`]: those that may count, the rest ignored.
fn eligible(
    report: &mut SignoffReport,
    ev: &SignoffEvidence,
    signers: &AllowedSigners,
    rules: &Rules<'_>,
) -> Result<Vec<Candidate>, Reason> {
    let cx = rules.cx;
    let mut candidates = Vec::new();
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
                    return Err(Reason::new(
                        Code::EvidenceMissing,
                        format!("sign-off {}: {e}", pair.name),
                    ));
                }
            };
        let ignore = |report: &mut SignoffReport, signer: Option<&str>, code: Code, reason| {
            report.ignored.push(Ignored {
                name: pair.name.clone(),
                signer: signer.map(str::to_string),
                code,
                reason,
            });
        };
        let v = match approval::verify_pair(&statement, &signature, signers, cx.started_at) {
            Ok(v) => v,
            Err(p) => {
                let signer = approval::parse_statement(&statement).ok().map(|s| s.signer);
                ignore(report, signer.as_deref(), p.code(), p.to_string());
                continue;
            }
        };
        match rules.not_counted(&v, gone) {
            Some((code, reason)) => ignore(report, Some(v.statement.signer.as_str()), code, reason),
            None => candidates.push(Candidate {
                name: pair.name.clone(),
                v,
            }),
        }
    }
    Ok(candidates)
}

/// What a verified statement must be to count.
struct Rules<'a> {
    gate: &'a GateSpec,
    spec: &'a SignoffSpec,
    cx: &'a JudgeContext<'a>,
    /// The role's members.
    role: &'a [String],
    barred: &'a Barred,
    /// When approvals/ was read: no statement dated after it can have been there.
    read_at: i64,
}

impl Rules<'_> {
    /// Why `v` does not count (the first rule it breaks), or `None`. `gone`: its files were
    /// removed from approvals/ after a run recorded them.
    fn not_counted(&self, v: &Verified, gone: bool) -> Option<(Code, String)> {
        let (spec, cx) = (self.spec, self.cx);
        let st = &v.statement;
        Some(if st.project != cx.project || st.version != cx.version {
            (
                Code::ApprovalOtherRelease,
                format!("it is for {} {}", st.project, st.version),
            )
        } else if st.gate != self.gate.id {
            (
                Code::ApprovalOtherGate,
                format!("it is for gate {}", st.gate),
            )
        } else if st.subject != cx.subject {
            (
                Code::ApprovalOtherSubject,
                format!(
                    "it is for subject {}, not the staged {}",
                    st.subject, cx.subject
                ),
            )
        } else if !self.role.iter().any(|m| m == &st.signer) {
            (
                Code::ApprovalOutsideRole,
                format!("{} is not in role {}", st.signer, spec.role),
            )
        } else if let Some((code, why)) = self.barred.get(&identity::principal(&st.signer)) {
            (*code, format!("{} {why}", st.signer))
        } else if st.policy != cx.policy {
            (
                Code::ApprovalOtherPolicy,
                format!(
                    "it was given under policy {}, not this run's {} (the pipeline changed)",
                    st.policy, cx.policy
                ),
            )
        } else if v.at > self.read_at.saturating_add(CLOCK_SKEW_SECS) {
            (
                Code::ApprovalFromFuture,
                format!("it is dated {}, after the approvals were read", st.time),
            )
        } else if v.at < cx.subject_since.saturating_sub(CLOCK_SKEW_SECS) {
            (
                Code::ApprovalBackdated,
                format!(
                    "it is dated {}, before this subject was first staged",
                    st.time
                ),
            )
        } else if spec.expires_secs.is_some_and(|exp| {
            cx.started_at.saturating_sub(v.at) > i64::try_from(exp).unwrap_or(i64::MAX)
        }) {
            (
                Code::ApprovalExpired,
                format!("it is dated {}, older than the gate's expires", st.time),
            )
        } else if gone && st.decision == Decision::Approve {
            (
                Code::ApprovalWithdrawn,
                "its files were removed from approvals/ after a run recorded them; a removed \
                 approval no longer counts"
                    .to_string(),
            )
        } else {
            return None;
        })
    }
}

/// A principal's latest statement decides (a rejection wins a tie); earlier ones that
/// disagree with it are superseded. Rejections go to the report; returned are the approving
/// principals, each with its statements since its last rejection.
fn latest<'c>(report: &mut SignoffReport, candidates: &'c [Candidate]) -> Vec<Approver<'c>> {
    let mut by_principal: BTreeMap<String, Vec<&Candidate>> = BTreeMap::new();
    for c in candidates {
        by_principal
            .entry(c.v.statement.signer.clone())
            .or_default()
            .push(c);
    }
    let mut approvers: Vec<Approver<'c>> = Vec::new();
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
                    code: Code::ApprovalSuperseded,
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
    approvers
}

/// Distinct principals with distinct keys: a maximum matching of principals to keys, so
/// that one person twice, or two principals sharing one key, count once.
fn count(report: &mut SignoffReport, approvers: &[Approver<'_>]) {
    let matched = match_keys(approvers);
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
                        code: Code::ApprovalKeyShared,
                        reason: format!("key {} already counts for another principal", c.v.key),
                    });
                }
            }
        }
    }
}

/// The role's members who may still sign: named in allowed_signers, neither counted nor
/// rejecting yet, and not barred.
fn may_still_sign(
    report: &SignoffReport,
    role: &[String],
    signers: &AllowedSigners,
    barred: &Barred,
) -> Vec<String> {
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
    may
}

/// The principals who wrote the range's changes, from the recorded `git log`, or the problem
/// that stops the gate: without them, segregation of duties cannot be checked.
fn authors(ev: &SignoffEvidence, cx: &JudgeContext<'_>) -> Result<BTreeSet<String>, Reason> {
    if cx.pipeline.changes.is_none() {
        return Ok(BTreeSet::new());
    }
    let Some(a) = &ev.authors else {
        return Err(Reason::new(
            Code::EvidenceMalformed,
            "the evidence holds no commit authors though the pipeline sets changes",
        ));
    };
    if let Some(e) = &a.error {
        return Err(Reason::new(
            Code::ChangeRangeUnreadable,
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
            Code::EvidenceMalformed,
            "the evidence names no git log output",
        ));
    };
    let raw = cx
        .blobs
        .get(log)
        .map_err(|e| Reason::new(Code::EvidenceMissing, e.to_string()))?;
    let commits = git::parse_log(&raw, sep)
        .map_err(|e| Reason::new(Code::ChangeRangeUnreadable, e.to_string()))?;
    let writers = writers(&commits)?;
    if writers != a.emails {
        return Err(Reason::new(
            Code::EvidenceMismatch,
            "the recorded authors differ from the recorded git log output",
        ));
    }
    Ok(writers.into_iter().collect())
}

/// Kuhn's augmenting paths: principal i -> one of its keys, no key used twice. Returns the
/// key each principal is matched with.
fn match_keys<'a>(approvers: &'a [Approver<'a>]) -> Vec<Option<&'a str>> {
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
