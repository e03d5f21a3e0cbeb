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
    /// Not started, and waiting rather than failed: every gate it needs that is not green
    /// awaits a sign-off (pending, or itself waiting). It starts once they are given. Logged as
    /// `gate-blocked`, shown as pending.
    Waiting {
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

    /// Is this gate waiting for a sign-off, its own or one it needs?
    pub fn awaits_signoff(&self) -> bool {
        matches!(self, GateState::Pending { .. } | GateState::Waiting { .. })
    }

    pub fn label(&self) -> &'static str {
        match self {
            GateState::Green { .. } => "green",
            GateState::Red { .. } => "red",
            GateState::Pending { .. } => "pending",
            GateState::Blocked { .. } => "blocked",
            GateState::Waiting { .. } => "pending",
            GateState::Skipped { .. } => "skipped",
            GateState::Aborted => "aborted",
        }
    }
}

/// How one gate ended in a run, for the reporters.
#[derive(Clone, Debug)]
pub struct GateSummary {
    pub id: String,
    pub kind: String,
    pub state: GateState,
    /// From its start (or, for a gate that never started, from when that was decided).
    pub elapsed_ms: u64,
    /// Digest of its evidence in the record (also for a result kept from an earlier run).
    pub evidence: Option<String>,
    /// Short remarks shown with it (a rehearsal, flaky tests, a kept result).
    pub notes: Vec<String>,
    /// A pending sign-off gate: the principals who may still sign, as its judge reads the
    /// evidence.
    pub may_still_sign: Option<Vec<String>>,
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
