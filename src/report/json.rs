//! `--format json`: one JSON document describing the run.

use serde_json::{Value, json};

use crate::engine::{GateState, RunSummary};

pub fn document(
    summary: &RunSummary,
    project: &str,
    version: &str,
    dry_run: bool,
    message: Option<&str>,
) -> Value {
    let gates: Vec<Value> = summary
        .gates
        .iter()
        .map(|(id, kind, state)| {
            let mut g = json!({ "id": id, "kind": kind, "state": state.label() });
            match state {
                GateState::Red { reasons } | GateState::Pending { reasons } => {
                    g["reasons"] = json!(reasons);
                }
                GateState::Blocked { waiting_on } | GateState::Waiting { waiting_on } => {
                    g["waiting_on"] = json!(waiting_on);
                }
                GateState::Skipped { reason } => g["skipped_because"] = json!(reason),
                GateState::Green { reused } => g["reused"] = json!(reused),
                GateState::Aborted => {}
            }
            g
        })
        .collect();
    json!({
        "project": project,
        "version": version,
        "dry_run": dry_run,
        "subject": summary.subject,
        "record": summary.record.display().to_string(),
        "decision": summary.decision,
        "exit_code": summary.exit_code,
        "published": summary.published.as_ref().map(|p| p.display().to_string()),
        "message": message,
        "gates": gates,
    })
}
