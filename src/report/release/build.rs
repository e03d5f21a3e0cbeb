//! [`build`]: the report from the typed view of the log and the record's evidence. Reads the
//! record folder (evidence by digest, the latest checkpoint) and nothing else: no clock, no
//! environment, no path of the machine it runs on.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::sections::{self, RunContext};
use super::{CheckpointFacts, EvidenceRef, GateRow, ReleaseFacts, ReleaseReport, RunRow};
use crate::log::{Decision, Entry};
use crate::record::{Blobs, CHECKPOINT_FILE, CHECKPOINT_SIG_FILE, Record};
use crate::view::{GateStatus, GateView, ReleaseView, RunView};

/// How the record the report was made from was checked.
#[derive(Clone, Debug, PartialEq)]
pub enum Verification {
    /// The report inside a published release (`audit/report.html`): replay renders the record
    /// again and refuses the release unless it is this very file. `lines` and `head` say which
    /// log it was rendered from.
    Embedded { lines: usize, head: String },
    /// What `relgate replay` said of the record, under the trust root named.
    Replayed(crate::replay::ReplayReport),
}

impl Default for Verification {
    fn default() -> Self {
        Verification::Embedded {
            lines: 0,
            head: String::new(),
        }
    }
}

/// What [`build`] reads.
pub struct Inputs<'a> {
    /// The log lines relied on, in order ([`relied_on`]).
    pub entries: &'a [Entry],
    /// The record folder the evidence is read from.
    pub record: &'a Record,
    /// Why the record is not vouched for, when it is not.
    pub unauthenticated: Option<String>,
    /// Remarks on lines left out.
    pub notes: Vec<String>,
    pub evidence_links: bool,
    pub verification: Verification,
}

/// The lines a report may rely on — those a checkpoint vouched for in time (`trusted`) — and a
/// note on any left out. `trusted: None` takes every line (a record nothing vouches for, shown
/// under its "unauthenticated" banner).
pub fn relied_on(entries: &[Entry], trusted: Option<&[bool]>) -> (Vec<Entry>, Vec<String>) {
    let Some(trusted) = trusted else {
        return (entries.to_vec(), Vec::new());
    };
    let kept: Vec<Entry> = entries
        .iter()
        .zip(trusted)
        .filter(|(_, t)| **t)
        .map(|(e, _)| e.clone())
        .collect();
    let left: Vec<usize> = entries
        .iter()
        .zip(trusted.iter().chain(std::iter::repeat(&false)))
        .filter(|(_, t)| !**t)
        .map(|(e, _)| e.line)
        .collect();
    let mut notes = Vec::new();
    if let (Some(first), Some(last)) = (left.first(), left.last()) {
        notes.push(format!(
            "{} log line(s) between {first} and {last} are left out: no checkpoint signed by \
             the release signer vouched for them before the next run began (a run that did not \
             finish, or lines added without the release key)",
            left.len()
        ));
    }
    (kept, notes)
}

/// Build the report.
pub fn build(inp: Inputs<'_>) -> ReleaseReport {
    let view = ReleaseView::new(inp.entries);
    let mut report = ReleaseReport {
        unauthenticated: inp.unauthenticated,
        notes: inp.notes,
        evidence_links: inp.evidence_links,
        verification: inp.verification,
        checkpoint: checkpoint(inp.record),
        ..ReleaseReport::default()
    };
    // subject → when the record first staged it (what a sign-off may not predate).
    let mut first_staged: BTreeMap<&str, i64> = BTreeMap::new();
    for r in &view.runs {
        let s = r.start.body;
        first_staged.entry(&s.subject).or_insert(s.started_at);
        report.runs.push(run_row(r));
    }
    let Some(run) = view.latest() else {
        report.release.decision = "no run".into();
        return report;
    };
    let started = run.start.body;
    report.project = started.project.clone();
    report.version = started.version.clone();
    report.deciding_run = run.number();
    report.release = release_facts(run, inp.record);
    let cx = RunContext::new(
        started,
        inp.record,
        first_staged
            .get(started.subject.as_str())
            .copied()
            .unwrap_or(started.started_at),
    );
    for g in &run.gates {
        report.gates.push(gate_row(g, inp.record));
    }
    for g in &run.gates {
        let Some(ev) = evidence_json(g, inp.record) else {
            continue;
        };
        let verdict = g.label().to_string();
        match &g.spec.kind {
            crate::model::GateKind::Signoff(spec) => {
                report
                    .signoffs
                    .push(sections::signoff(g.spec, spec, &ev, &cx, verdict));
            }
            crate::model::GateKind::ChangeRecord(_) => {
                report.changes.push(sections::changes(g.id(), &ev, verdict));
            }
            crate::model::GateKind::SecurityReview(spec) => {
                report
                    .findings
                    .push(sections::findings(g.id(), spec, &ev, &cx, verdict));
            }
            crate::model::GateKind::VirusScan(spec) => {
                report
                    .scans
                    .push(sections::scan(g.id(), spec, &ev, &cx, verdict));
            }
            crate::model::GateKind::Regression(_)
            | crate::model::GateKind::RegressionFromShare(_)
            | crate::model::GateKind::Sign(_) => {}
        }
    }
    report.segregation = sections::segregation(run, &report, &cx);
    report
}

/// A time the record holds, as people read it: `2026-11-27 09:04:05 UTC` (the log keeps
/// nanoseconds; seconds are enough on paper). Text that is not RFC 3339 is shown as it is.
pub(super) fn shown_time(ts: &str) -> String {
    match OffsetDateTime::parse(ts, &Rfc3339) {
        Ok(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                "{} {:02}:{:02}:{:02} UTC",
                t.date(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        Err(_) => ts.to_string(),
    }
}

fn decision_name(d: Option<Decision>) -> String {
    d.and_then(|d| serde_json::to_value(d).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "unfinished".into())
}

fn run_row(r: &RunView<'_>) -> RunRow {
    let s = r.start.body;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for g in &r.gates {
        *counts.entry(g.label()).or_default() += 1;
    }
    // The usual order of a verdict list, then anything else.
    let order = ["green", "red", "pending", "blocked", "skipped", "aborted"];
    let mut tally: Vec<String> = order
        .iter()
        .filter_map(|k| counts.get(k).map(|n| format!("{n} {k}")))
        .collect();
    tally.extend(
        counts
            .iter()
            .filter(|(k, _)| !order.contains(k))
            .map(|(k, n)| format!("{n} {k}")),
    );
    RunRow {
        run: s.run,
        line: r.start.line(),
        started: shown_time(r.start.ts()),
        operator: s.operator.clone(),
        subject: s.subject.clone(),
        subject_changed: s.subject_changed,
        dry_run: s.dry_run,
        decision: r.decision().map(|d| decision_name(Some(d))),
        ended: r.decided_at().map(|e| shown_time(&e.ts)),
        exit_code: r.finished.map(|f| f.body.exit_code),
        message: r.finished.and_then(|f| f.body.message.clone()),
        tally: tally.join(", "),
        notifications: r
            .notifications
            .iter()
            .map(|n| notification_text(n.body))
            .collect(),
    }
}

/// One delivery as the timeline shows it.
pub fn notification_text(n: &crate::log::Notification) -> String {
    let how = if n.delivered {
        "delivered".to_string()
    } else {
        format!(
            "not delivered: {}",
            n.error.as_deref().unwrap_or("no answer")
        )
    };
    format!(
        "{} to {} ({}{}): {how} after {} attempt(s)",
        n.event,
        n.target,
        n.format,
        if n.signed { ", signed" } else { "" },
        n.attempts
    )
}

fn release_facts(run: &RunView<'_>, record: &Record) -> ReleaseFacts {
    let s = run.start.body;
    let sign = s.pipeline.sign_gate();
    // The key that signed SHA256SUMS, from the sign gate's evidence; else the run's checkpoint
    // key (a run that never reached its sign gate).
    let signed_with = sign.and_then(|(g, _)| {
        let v = run.gate(&g.id)?.verdict()?;
        let bytes = record.get(v.body.evidence.as_deref()?).ok()?;
        let ev: crate::gates::sign::SignEvidence = serde_json::from_slice(&bytes).ok()?;
        Some((ev.key_fingerprint?, ev.throwaway))
    });
    let (key_fingerprint, throwaway_key) = match signed_with {
        Some((k, t)) => (Some(k), t),
        None => match &s.checkpoint_key {
            Some(k) => (Some(k.fingerprint.clone()), k.throwaway),
            None => (None, false),
        },
    };
    ReleaseFacts {
        subject: s.subject.clone(),
        decision: decision_name(run.decision()),
        decided_at: run.decided_at().map(|e| shown_time(&e.ts)),
        operator: s.operator.clone(),
        signer: sign.map(|(_, spec)| spec.signer.clone()),
        key_fingerprint,
        throwaway_key,
        dry_run: s.dry_run,
        published_to: run.publish.map(|p| p.body.to.clone()),
        artefacts: s
            .artefacts
            .iter()
            .map(|a| (a.release_path.clone(), a.size, a.sha256.clone()))
            .collect(),
        tool_version: s.tool_version.clone(),
    }
}

/// The latest checkpoint as it reads, and whose key its signature carries (replay checks
/// that key against the trust root; the report only names it).
fn checkpoint(record: &Record) -> Option<CheckpointFacts> {
    let read = |name: &str| {
        crate::record::read_capped(&record.dir.join(name), 64 * 1024)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    };
    let cp = crate::log::checkpoint::Checkpoint::parse(&read(CHECKPOINT_FILE)?).ok()?;
    let signed_by = read(CHECKPOINT_SIG_FILE)
        .and_then(|sig| crate::sshsig::signature_key(&sig).ok())
        .map(|k| crate::sshsig::fingerprint(&k));
    Some(CheckpointFacts {
        size: cp.size,
        head: cp.head,
        time: shown_time(&cp.time),
        signed_by,
    })
}

fn gate_row(g: &GateView<'_>, record: &Record) -> GateRow {
    let mut row = GateRow {
        id: g.id().to_string(),
        kind: g.kind().to_string(),
        verdict: g.label().to_string(),
        duration: g
            .duration_ms()
            .map(|ms| format!("{:.1} s", ms as f64 / 1000.0)),
        ..GateRow::default()
    };
    match g.status {
        GateStatus::Verdict(v) => {
            row.line = Some(v.line());
            row.kept_from = v.body.reused_from.map(|seq| seq.saturating_add(1));
            row.reasons = v
                .body
                .reasons
                .iter()
                .map(|r| (r.code.clone(), r.message.clone()))
                .collect();
            if let Some(d) = &v.body.evidence {
                row.evidence = evidence_refs(d, record);
            }
        }
        GateStatus::Blocked(b) => {
            row.line = Some(b.line());
            row.reasons = vec![(
                "needs-not-green".into(),
                format!("waiting on {}", b.body.waiting_on.join(", ")),
            )];
        }
        GateStatus::Skipped(s) => {
            row.line = Some(s.line());
            row.reasons = vec![("not-applicable".into(), s.body.reason.clone())];
        }
        GateStatus::Aborted(a) => {
            row.line = Some(a.line());
            row.reasons = vec![("interrupted".into(), "the run was stopped".into())];
        }
        GateStatus::Undecided => {}
    }
    row
}

/// The gate's evidence document, parsed.
fn evidence_json(g: &GateView<'_>, record: &Record) -> Option<serde_json::Value> {
    let d = g.verdict()?.body.evidence.clone()?;
    serde_json::from_slice(&record.get(&d).ok()?).ok()
}

/// The evidence document and every file of the record it names, each once, labelled by where
/// the document names it. Only names of files that are there count: a string that merely looks
/// like a digest is not evidence.
fn evidence_refs(digest: &str, record: &Record) -> Vec<EvidenceRef> {
    let mut out = vec![EvidenceRef {
        label: "evidence".into(),
        digest: digest.to_string(),
    }];
    let Some(doc) = record
        .get(digest)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        return out;
    };
    let mut found: Vec<(String, String)> = Vec::new();
    walk(&doc, String::new(), &mut found);
    for (label, value) in found {
        let d = value.strip_prefix("sha256:").unwrap_or(&value);
        if crate::digest::is_hex_digest(d)
            && !out.iter().any(|r| r.digest == d)
            && record.evidence_dir().join(d).is_file()
        {
            out.push(EvidenceRef {
                label,
                digest: d.to_string(),
            });
        }
    }
    out
}

/// Every string in a JSON document with its path (`a.b`, `list[2].c`), in document order.
fn walk(v: &serde_json::Value, path: String, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::String(s) => out.push((path, s.clone())),
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk(x, format!("{path}[{i}]"), out);
            }
        }
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(x, p, out);
            }
        }
        _ => {}
    }
}
