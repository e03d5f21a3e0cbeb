//! `--format json`: one JSON document describing the run.
//!
//! Each gate carries what a CI job needs to show it without reading the record itself: its
//! state and reasons, how long it took (`duration_ms`), its evidence file (`evidence.path`),
//! for a regression gate the files holding its captured output (`output.stdout`,
//! `output.stderr`: the kept head, then the tail when the stream was longer), its notes, and
//! for a pending sign-off who may still sign.

use serde_json::{Value, json};

use crate::engine::{GateState, GateSummary, RunSummary};
use crate::record::{Blobs, Record};

pub fn document(
    summary: &RunSummary,
    project: &str,
    version: &str,
    dry_run: bool,
    message: Option<&str>,
) -> Value {
    let record = Record::new(&summary.record);
    let gates: Vec<Value> = summary.gates.iter().map(|g| gate(g, &record)).collect();
    json!({
        "project": project,
        "version": version,
        "dry_run": dry_run,
        "subject": summary.subject,
        "record": summary.record.display().to_string(),
        "decision": summary.decision,
        "exit_code": summary.exit_code,
        "published": summary.published,
        "message": message,
        "gates": gates,
        "notifications": summary.notifications,
    })
}

fn gate(g: &GateSummary, record: &Record) -> Value {
    let mut v = json!({
        "id": g.id,
        "kind": g.kind,
        "state": g.state.label(),
        "duration_ms": g.elapsed_ms,
        "notes": g.notes,
        "evidence": g.evidence.as_ref().map(|d| json!({
            "digest": d,
            "path": evidence_path(record, d),
        })),
    });
    match &g.state {
        GateState::Red { reasons } | GateState::Pending { reasons } => {
            v["reasons"] = json!(reasons);
        }
        GateState::Blocked { waiting_on } | GateState::Waiting { waiting_on } => {
            v["waiting_on"] = json!(waiting_on);
        }
        GateState::Skipped { reason } => v["skipped_because"] = json!(reason),
        GateState::Green { reused } => v["reused"] = json!(reused),
        GateState::Aborted => {}
    }
    if let Some(who) = &g.may_still_sign {
        v["may_still_sign"] = json!(who);
    }
    if g.kind == "regression"
        && let Some(d) = &g.evidence
        && let Some(output) = output_files(record, d)
    {
        v["output"] = output;
    }
    v
}

fn evidence_path(record: &Record, digest: &str) -> String {
    record.evidence_dir().join(digest).display().to_string()
}

/// The evidence files holding a regression gate's captured stdout and stderr.
fn output_files(record: &Record, digest: &str) -> Option<Value> {
    let bytes = Blobs::get(record, digest).ok()?;
    let ev: crate::gates::regression::RegressionEvidence = serde_json::from_slice(&bytes).ok()?;
    let files = |s: &crate::gates::regression::StreamCapture| -> Vec<String> {
        std::iter::once(&s.head)
            .chain(s.tail.as_ref())
            .map(|d| evidence_path(record, d))
            .collect()
    };
    Some(json!({ "stdout": files(&ev.stdout), "stderr": files(&ev.stderr) }))
}
