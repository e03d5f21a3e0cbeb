//! Reporters: separate consumers of one stream of run events — the live terminal display, the
//! JSON document, the JUnit file and the Markdown summary for a CI job's page — plus the
//! refusal lines every run prints on stderr — and the auditor's report of a whole release
//! ([`release`]), read from its record.

pub mod json;
pub mod junit;
pub mod release;
pub mod summary;
pub mod terminal;

use crate::engine::{GateState, RunSummary};

/// One line per gate that is not green: `relgate: GATE: STATE: code: message[; code: message]`.
/// Text from the build, the record or an approvals folder as a terminal may show it: control
/// characters (escape sequences, line breaks that would fake a line) and bidirectional controls
/// are written as escapes (`\u{1b}`), so the text can never draw something it is not.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let bidi = matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

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
                    .map(|r| format!("{}: {}", r.code, printable(&r.message)))
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
