//! The sections read from a gate's evidence — sign-offs, the change record, the findings, the
//! virus scan — and the segregation of duties. Each reads the evidence the way its judge does
//! (the same pure functions, under the run's recorded policy and time), so the report never
//! says something the verdict does not.

use super::{
    ChangeRow, ChangesSection, FindingRow, FindingsSection, IgnoredStatement, ReleaseReport,
    ScanFile, ScanSection, Segregation, SignoffSection, Statement,
};
use crate::clamd::reply::{ScanReply, parse_fildes_reply, parse_scan_reply};
use crate::config::units::format_duration;
use crate::gates::JudgeContext;
use crate::gates::change_record::ChangeRecordEvidence;
use crate::gates::security_review::{SecurityReviewEvidence, analyse};
use crate::gates::signoff::{SignoffEvidence, assess};
use crate::gates::virus_scan::{ScanMethod, VirusScanEvidence};
use crate::log::RunStarted;
use crate::model::{GateKind, GateSpec, Pipeline, SecurityReviewSpec, SignoffSpec, VirusScanSpec};
use crate::record::{Blobs, Record};
use crate::view::RunView;

/// What the judges of one run were given, rebuilt from its `run-started` line as replay does.
pub(super) struct RunContext<'a> {
    started: &'a RunStarted,
    record: &'a Record,
    signers: Option<String>,
    policy: String,
    subject_since: i64,
}

impl<'a> RunContext<'a> {
    pub fn new(started: &'a RunStarted, record: &'a Record, subject_since: i64) -> Self {
        let signers = started
            .signers
            .as_deref()
            .and_then(|d| record.get(d).ok())
            .and_then(|b| String::from_utf8(b).ok());
        RunContext {
            started,
            record,
            signers,
            policy: crate::digest::policy_digest(&started.sources),
            subject_since,
        }
    }

    fn judge(&self) -> JudgeContext<'_> {
        let r = self.started;
        JudgeContext {
            project: &r.project,
            version: &r.version,
            subject: &r.subject,
            operator: r.operator.as_deref(),
            started_at: r.started_at,
            dry_run: r.dry_run,
            signers: self.signers.as_deref(),
            pipeline: &r.pipeline,
            policy: &self.policy,
            subject_since: self.subject_since,
            blobs: self.record,
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(ev: &serde_json::Value) -> Option<T> {
    serde_json::from_value(ev.clone()).ok()
}

/// A date (UTC) from unix seconds.
fn date(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| secs.to_string())
}

pub(super) fn signoff(
    gate: &GateSpec,
    spec: &SignoffSpec,
    ev: &serde_json::Value,
    cx: &RunContext<'_>,
    verdict: String,
) -> SignoffSection {
    let mut s = SignoffSection {
        gate: gate.id.clone(),
        role: spec.role.clone(),
        quorum: spec.quorum,
        verdict,
        ..SignoffSection::default()
    };
    let Some(ev) = parse::<SignoffEvidence>(ev) else {
        s.problem = Some((
            "evidence-malformed".into(),
            "the recorded evidence does not parse".into(),
        ));
        return s;
    };
    let a = assess(gate, spec, &ev, &cx.judge());
    // The comment is in the statement itself; the assessment names the statement's file.
    let comment = |name: &str| -> String {
        ev.approvals
            .iter()
            .chain(&ev.remembered)
            .find(|p| p.name == name)
            .and_then(|p| cx.record.get(&p.statement).ok())
            .and_then(|b| crate::approval::parse_statement(&b).ok())
            .map(|st| st.comment)
            .unwrap_or_default()
    };
    s.counted = a
        .counted
        .iter()
        .map(|c| Statement {
            principal: c.principal.clone(),
            key: c.key.clone(),
            time: super::build::shown_time(&c.time),
            comment: comment(&c.name),
            name: c.name.clone(),
        })
        .collect();
    s.rejected = a
        .rejected
        .iter()
        .map(|r| {
            let key = ev
                .approvals
                .iter()
                .chain(&ev.remembered)
                .find(|p| p.name == r.name)
                .and_then(|p| cx.record.get(&p.statement).ok())
                .and_then(|b| crate::approval::parse_statement(&b).ok())
                .map(|st| st.key)
                .unwrap_or_default();
            Statement {
                principal: r.principal.clone(),
                key,
                time: super::build::shown_time(&r.time),
                comment: r.comment.clone(),
                name: r.name.clone(),
            }
        })
        .collect();
    s.ignored = a
        .ignored
        .iter()
        .map(|i| IgnoredStatement {
            name: i.name.clone(),
            signer: i.signer.clone(),
            code: i.code.to_string(),
            reason: i.reason.clone(),
        })
        .collect();
    s.may_still_sign = a.may_still_sign;
    s.problem = a.problem.map(|p| (p.code, p.message));
    s
}

pub(super) fn changes(gate: &str, ev: &serde_json::Value, verdict: String) -> ChangesSection {
    let mut s = ChangesSection {
        gate: gate.to_string(),
        verdict,
        ..ChangesSection::default()
    };
    let Some(ev) = parse::<ChangeRecordEvidence>(ev) else {
        s.error = Some("the recorded evidence does not parse".into());
        return s;
    };
    s.range = ev.range.clone();
    s.error = ev.error.clone();
    s.rows = ev
        .changes
        .iter()
        .map(|r| ChangeRow {
            commit: r.short().to_string(),
            description: r.description.clone(),
            author: r.author.clone(),
            reviewers: r.reviewers.clone(),
            tests: r.tests.iter().chain(&r.test_files).cloned().collect(),
            date: r.date.clone(),
        })
        .collect();
    s
}

pub(super) fn findings(
    gate: &str,
    spec: &SecurityReviewSpec,
    ev: &serde_json::Value,
    cx: &RunContext<'_>,
    verdict: String,
) -> FindingsSection {
    let mut s = FindingsSection {
        gate: gate.to_string(),
        verdict,
        ..FindingsSection::default()
    };
    let Some(ev) = parse::<SecurityReviewEvidence>(ev) else {
        s.reasons.push((
            "evidence-malformed".into(),
            "the recorded evidence does not parse".into(),
        ));
        return s;
    };
    let a = analyse(spec, &ev, cx.record, cx.started.started_at);
    let pair = |r: &crate::gates::Reason| (r.code.clone(), r.message.clone());
    s.reasons = a.reasons.iter().map(pair).collect();
    s.warnings = a.warnings.iter().map(pair).collect();
    s.rows = a
        .rows
        .into_iter()
        .map(|r| FindingRow {
            sla: r
                .severity
                .as_deref()
                .and_then(|sev| spec.sla_secs.get(sev))
                .map(|secs| format_duration(*secs)),
            finding: r.finding,
            tool: r.tool,
            severity: r.severity,
            severity_source: r.severity_source,
            location: r.location,
            message: r.message,
            owner: r.owner,
            ticket: r.ticket,
            due: r.due,
            status: r.status,
            verdict: r.verdict,
        })
        .collect();
    s
}

pub(super) fn scan(
    gate: &str,
    spec: &VirusScanSpec,
    ev: &serde_json::Value,
    cx: &RunContext<'_>,
    verdict: String,
) -> ScanSection {
    let mut s = ScanSection {
        gate: gate.to_string(),
        verdict,
        max_signature_age: spec.max_signature_age_secs.map(format_duration),
        ..ScanSection::default()
    };
    let Some(ev) = parse::<VirusScanEvidence>(ev) else {
        s.scanner_error = Some("the recorded evidence does not parse".into());
        return s;
    };
    s.clamd = ev.clamd.clone();
    s.engine = ev.engine.as_ref().map(|e| format!("ClamAV {e}"));
    s.db_version = ev.db_version;
    s.db_date = ev.db_date.map(date);
    s.db_age = ev.db_date.map(|d| {
        let age = cx.started.started_at.saturating_sub(d);
        if age < 0 {
            "newer than the run".to_string()
        } else {
            age_text(age.unsigned_abs())
        }
    });
    s.scanner_error = ev.scanner_error.clone();
    s.files = ev
        .files
        .iter()
        .map(|f| {
            let method = match f.method {
                ScanMethod::Instream => "instream",
                ScanMethod::Fildes => "fildes",
            };
            let result = if let Some(why) = &f.skipped {
                format!("not scanned: {why}")
            } else if let Some(raw) = &f.reply {
                let parsed = match f.method {
                    ScanMethod::Instream => parse_scan_reply(raw),
                    ScanMethod::Fildes => parse_fildes_reply(raw),
                };
                match parsed {
                    ScanReply::Clean => "OK".to_string(),
                    ScanReply::Found(name) => format!("FOUND {name}"),
                    ScanReply::NotClean(why) => why,
                }
            } else {
                f.error.clone().unwrap_or_else(|| "no reply".into())
            };
            ScanFile {
                path: f.release_path.clone(),
                method: method.into(),
                size: f.size,
                result,
            }
        })
        .collect();
    s
}

/// `3d 4h`: an age to the hour (to the minute under an hour).
fn age_text(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// Who wrote, operated and signed the release, and what each separation the policy asks for
/// came to (read from the verdicts and the sign-off assessments above).
pub(super) fn segregation(
    run: &RunView<'_>,
    report: &ReleaseReport,
    cx: &RunContext<'_>,
) -> Segregation {
    let pipeline = &cx.started.pipeline;
    let (authors, authors_source) = authors(run, cx);
    let mut checks: Vec<(String, String)> = report
        .changes
        .iter()
        .map(|c| changes_check(report, c))
        .collect();
    checks.extend(
        report
            .signoffs
            .iter()
            .filter_map(|s| signoff_check(pipeline, s)),
    );
    Segregation {
        authors,
        authors_source,
        operator: cx.started.operator.clone(),
        signer: pipeline.sign_gate().map(|(_, s)| s.signer.clone()),
        checks,
    }
}

/// The authors of the changes, and where they were read: from the (last) change record's rows,
/// else from the first signoff gate's git evidence that has them; else unknown, and why.
fn authors(run: &RunView<'_>, cx: &RunContext<'_>) -> (Option<Vec<String>>, String) {
    let mut found: Option<(Vec<String>, String)> = None;
    for g in &run.gates {
        let Some(ev) = g
            .verdict()
            .and_then(|v| v.body.evidence.as_deref())
            .and_then(|d| cx.record.get(d).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        else {
            continue;
        };
        match &g.spec.kind {
            GateKind::ChangeRecord(_) => {
                if let Some(a) = change_record_authors(&ev) {
                    found = Some(a);
                }
            }
            GateKind::Signoff(_) if found.is_none() => {
                if let Some(a) = parse::<SignoffEvidence>(&ev).and_then(|e| e.authors)
                    && a.error.is_none()
                {
                    found = Some((a.emails, format!("the history of {}", a.range)));
                }
            }
            _ => {}
        }
    }
    match found {
        Some((who, source)) => (Some(who), source),
        None => {
            let why = match &cx.started.pipeline.changes {
                Some(c) => format!("unknown: the history of {} was not read", c.range),
                None => "unknown: the pipeline names no change range".into(),
            };
            (None, why)
        }
    }
}

/// The authors and co-authors of a change record's rows (sorted, once each), and where they
/// were read; `None` when the record could not be read.
fn change_record_authors(ev: &serde_json::Value) -> Option<(Vec<String>, String)> {
    let ev = parse::<ChangeRecordEvidence>(ev)?;
    if ev.error.is_some() {
        return None;
    }
    let mut who: Vec<String> = ev
        .changes
        .iter()
        .flat_map(|r| std::iter::once(&r.author_email).chain(&r.co_authors))
        .cloned()
        .collect();
    who.sort();
    who.dedup();
    let source = format!(
        "the change record ({})",
        ev.range.as_deref().unwrap_or("changes")
    );
    Some((who, source))
}

/// What a change-record gate shows of its separation: held, broken (and by which reason codes
/// of its verdict), or not shown.
fn changes_check(report: &ReleaseReport, c: &ChangesSection) -> (String, String) {
    let codes: Vec<&str> = report
        .gates
        .iter()
        .filter(|g| g.id == c.gate)
        .flat_map(|g| &g.reasons)
        .filter(|(code, _)| code == "packager-authored" || code == "change-self-reviewed")
        .map(|(code, _)| code.as_str())
        .collect();
    let outcome = if c.verdict == "green" || (codes.is_empty() && !c.rows.is_empty()) {
        "held".to_string()
    } else if codes.is_empty() {
        format!("not shown ({})", c.verdict)
    } else {
        format!("broken: {}", codes.join(", "))
    };
    (
        format!(
            "{}: the operator and the release signer wrote no change; no change reviewed only \
             by its author",
            c.gate
        ),
        outcome,
    )
}

/// Whose sign-offs a signoff gate does not count (its `segregation:`), and whom it ignored for
/// it; `None` for a section that is not a signoff gate of the pipeline.
fn signoff_check(pipeline: &Pipeline, s: &SignoffSection) -> Option<(String, String)> {
    let Some(GateKind::Signoff(spec)) = pipeline.gate(&s.gate).map(|g| &g.kind) else {
        return None;
    };
    let mut barred = Vec::new();
    for (on, who, code) in [
        (spec.bar_authors, "commit authors", "approval-by-author"),
        (spec.bar_operator, "the operator", "approval-by-operator"),
        (
            spec.bar_signer,
            "the release signer",
            "approval-by-release-signer",
        ),
    ] {
        if !on {
            continue;
        }
        let caught: Vec<String> = s
            .ignored
            .iter()
            .filter(|i| i.code == code)
            .map(|i| i.signer.clone().unwrap_or_else(|| i.name.clone()))
            .collect();
        barred.push(if caught.is_empty() {
            format!("{who}: none signed")
        } else {
            format!("{who}: ignored {} ({code})", caught.join(", "))
        });
    }
    Some(if barred.is_empty() {
        (
            format!("{}: sign-offs", s.gate),
            "no segregation asked for (segregation: [])".into(),
        )
    } else {
        (
            format!("{}: sign-offs by these do not count", s.gate),
            barred.join("; "),
        )
    })
}
