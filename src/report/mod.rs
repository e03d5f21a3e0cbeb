//! Reporters: separate consumers of one stream of run events — the live terminal display, the
//! JSON document, the JUnit file and the Markdown summary for a CI job's page — plus the
//! refusal lines every run prints on stderr.

pub mod json;
pub mod junit;
pub mod summary;
pub mod terminal;

use crate::engine::{GateState, RunSummary};

/// One line per gate that is not green: `relgate: GATE: STATE: code: message[; code: message]`.
pub fn refusal_lines(summary: &RunSummary) -> Vec<String> {
    summary
        .gates
        .iter()
        .filter_map(|g| {
            let (id, state) = (&g.id, &g.state);
            let detail = match state {
                GateState::Green { .. } | GateState::Skipped { .. } => return None,
                GateState::Red { reasons } | GateState::Pending { reasons } => reasons
                    .iter()
                    .map(|r| format!("{}: {}", r.code, r.message))
                    .collect::<Vec<_>>()
                    .join("; "),
                GateState::Blocked { waiting_on } => {
                    format!("needs-not-green: waiting on {}", waiting_on.join(", "))
                }
                GateState::Waiting { waiting_on } => format!(
                    "needs-pending: waiting on {} (awaiting sign-off)",
                    waiting_on.join(", ")
                ),
                GateState::Aborted => "interrupted: the run was stopped".to_string(),
            };
            Some(format!("relgate: {id}: {}: {detail}", state.label()))
        })
        .collect()
}
