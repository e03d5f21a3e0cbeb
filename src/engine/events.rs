//! Events of a run, consumed by the reporters (terminal, JSON, JUnit).

use crate::gates::Reason;
use crate::log::Decision;

#[derive(Clone, Debug)]
pub enum GateState {
    Green {
        reused: bool,
    },
    Red {
        reasons: Vec<Reason>,
    },
    Pending {
        reasons: Vec<Reason>,
    },
    /// Not started: a gate it needs is not green.
    Blocked {
        waiting_on: Vec<String>,
    },
    /// Not applicable to this release (`when`).
    Skipped {
        reason: String,
    },
    /// Stopped by an interrupt.
    Aborted,
}

impl GateState {
    /// May gates that need this one start?
    pub fn satisfies_needs(&self) -> bool {
        matches!(self, GateState::Green { .. } | GateState::Skipped { .. })
    }

    pub fn label(&self) -> &'static str {
        match self {
            GateState::Green { .. } => "green",
            GateState::Red { .. } => "red",
            GateState::Pending { .. } => "pending",
            GateState::Blocked { .. } => "blocked",
            GateState::Skipped { .. } => "skipped",
            GateState::Aborted => "aborted",
        }
    }
}

#[derive(Clone, Debug)]
pub enum Event {
    RunStarted {
        project: String,
        version: String,
        subject: String,
        dry_run: bool,
        record: String,
        gates: Vec<(String, String)>,
        notes: Vec<String>,
    },
    GateStarted {
        gate: String,
    },
    GateFinished {
        gate: String,
        kind: String,
        state: GateState,
        elapsed_ms: u64,
        notes: Vec<String>,
    },
    /// A remote target is uploading: `sent` of `total` bytes so far.
    Uploading {
        to: String,
        sent: u64,
        total: u64,
    },
    Published {
        to: String,
    },
    Finished {
        decision: Decision,
        exit_code: i32,
        message: Option<String>,
    },
}
