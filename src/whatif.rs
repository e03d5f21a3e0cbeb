//! What-if replay: a release's recorded evidence judged again under *another* pipeline, gate by
//! gate, with the same pure judges — "which past releases would fail today's SLA or quorum
//! rule?".
//!
//! This is not a verification. The release was gated under its recorded policy, and replay
//! (`crate::replay`) is what checks that; what-if only says how the same evidence reads under a
//! policy it was never released under. What stays as the run recorded it: the project, version,
//! subject, operator, "now" (the run's start, so a finding due later is not overdue), the
//! signers text the run recorded, and the policy digest sign-off statements were bound to (a
//! statement given under the recorded policy is read as given, not refused as "another
//! policy": the question is what the *rules* say). What changes: every gate's spec, `when`,
//! `needs`, the roles, and the sign gate's signer. A gate the recorded run has no evidence for
//! cannot be judged, and says so.

use serde::Serialize;

use crate::gates::{self, JudgeContext, Outcome, Reason};
use crate::log::RunStarted;
use crate::model::Pipeline;
use crate::record::{Blobs, Record};
use crate::view::{GateStatus, RunView};

/// Where one gate stands, recorded or judged again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Standing {
    /// A verdict (`green`, `red`, `pending`) and its reasons.
    Verdict {
        outcome: Outcome,
        reasons: Vec<Reason>,
    },
    /// Not started: a needed gate was not green. `pending` when every such gate awaits a
    /// sign-off (as `run` shows it), else `blocked`.
    Blocked {
        waiting_on: Vec<String>,
        awaiting_signoff: bool,
    },
    /// `when` rules it out.
    Skipped { reason: String },
    /// The gate is not in that pipeline.
    Absent,
    /// No evidence to judge: the recorded run never collected any for this gate.
    NotJudged { why: String },
}

impl Standing {
    pub fn label(&self) -> &'static str {
        match self {
            Standing::Verdict { outcome, .. } => match outcome {
                Outcome::Green => "green",
                Outcome::Red => "red",
                Outcome::Pending => "pending",
            },
            Standing::Blocked {
                awaiting_signoff: true,
                ..
            } => "pending",
            Standing::Blocked { .. } => "blocked",
            Standing::Skipped { .. } => "skipped",
            Standing::Absent => "not a gate",
            Standing::NotJudged { .. } => "not judged",
        }
    }

    /// Lets gates that need it start.
    fn satisfies(&self) -> bool {
        matches!(
            self,
            Standing::Verdict {
                outcome: Outcome::Green,
                ..
            } | Standing::Skipped { .. }
        )
    }

    fn awaits_signoff(&self) -> bool {
        self.label() == "pending"
    }

    /// What it says, one `(code, message)` per line.
    pub fn reasons(&self) -> Vec<(String, String)> {
        match self {
            Standing::Verdict { reasons, .. } => reasons
                .iter()
                .map(|r| (r.code.clone(), r.message.clone()))
                .collect(),
            Standing::Blocked { waiting_on, .. } => vec![(
                "needs-not-green".into(),
                format!("waiting on {}", waiting_on.join(", ")),
            )],
            Standing::Skipped { reason } => vec![("not-applicable".into(), reason.clone())],
            Standing::Absent => Vec::new(),
            Standing::NotJudged { why } => vec![("not-judged".into(), why.clone())],
        }
    }
}

/// One gate, as recorded and as judged under the other policy.
#[derive(Clone, Debug, Serialize)]
pub struct GateChange {
    pub gate: String,
    pub recorded: Standing,
    pub now: Standing,
    pub changed: bool,
}

/// The whole comparison for one run.
#[derive(Clone, Debug, Serialize)]
pub struct WhatIf {
    pub run: u32,
    /// How the run ended (`published`, `refused`, …).
    pub recorded_decision: String,
    /// What the gates judged again would decide: `published` (or `accepted`: no publish
    /// target), `refused`, `pending`, or `cannot tell` when a gate could not be judged.
    pub decision: String,
    pub gates: Vec<GateChange>,
}

impl WhatIf {
    pub fn changed(&self) -> usize {
        self.gates.iter().filter(|g| g.changed).count()
    }
}

/// What the run's judges were given that stays as recorded.
pub struct Recorded<'a> {
    pub run: &'a RunView<'a>,
    pub record: &'a Record,
    /// The recorded signers text.
    pub signers: Option<&'a str>,
    /// The recorded policy digest (what sign-off statements bound).
    pub policy: &'a str,
    /// When the record first staged this subject.
    pub subject_since: i64,
}

/// Judge the run's recorded evidence under `policy`.
pub fn judge(rec: &Recorded<'_>, policy: &Pipeline) -> WhatIf {
    let started: &RunStarted = rec.run.start.body;
    let cx = JudgeContext {
        project: &started.project,
        version: &started.version,
        subject: &started.subject,
        operator: started.operator.as_deref(),
        started_at: started.started_at,
        dry_run: started.dry_run,
        signers: rec.signers,
        pipeline: policy,
        policy: rec.policy,
        subject_since: rec.subject_since,
        blobs: rec.record,
    };
    let mut now: Vec<(String, Standing)> = Vec::new();
    // The new policy's gates in its own order (topological: needs come first).
    for gate in &policy.gates {
        let standing = if let Some(reason) =
            crate::engine::schedule::not_applicable(gate, policy, &started.version)
        {
            Standing::Skipped { reason }
        } else {
            let unmet: Vec<&(String, Standing)> = now
                .iter()
                .filter(|(id, s)| gate.needs.contains(id) && !s.satisfies())
                .collect();
            if unmet.is_empty() {
                judge_one(rec, gate, &cx)
            } else {
                Standing::Blocked {
                    waiting_on: unmet.iter().map(|(id, _)| id.clone()).collect(),
                    awaiting_signoff: unmet.iter().all(|(_, s)| s.awaits_signoff()),
                }
            }
        };
        now.push((gate.id.clone(), standing));
    }
    let recorded = recorded_standings(rec.run);
    let mut gates: Vec<GateChange> = Vec::new();
    for (id, standing) in &now {
        let was = recorded
            .iter()
            .find(|(g, _)| g == id)
            .map(|(_, s)| s.clone())
            .unwrap_or(Standing::Absent);
        gates.push(GateChange {
            gate: id.clone(),
            changed: was != *standing,
            recorded: was,
            now: standing.clone(),
        });
    }
    for (id, was) in recorded {
        if policy.gate(&id).is_none() {
            gates.push(GateChange {
                gate: id,
                recorded: was,
                now: Standing::Absent,
                changed: true,
            });
        }
    }
    let decision = {
        let states: Vec<&Standing> = now.iter().map(|(_, s)| s).collect();
        if states
            .iter()
            .any(|s| s.label() == "red" || s.label() == "blocked")
        {
            "refused"
        } else if states
            .iter()
            .any(|s| matches!(s, Standing::NotJudged { .. }))
        {
            "cannot tell"
        } else if states.iter().any(|s| s.label() == "pending") {
            "pending"
        } else if rec.run.publish.is_some() || started.pipeline.publish.is_some() {
            "published"
        } else {
            "accepted"
        }
    };
    WhatIf {
        run: rec.run.number(),
        recorded_decision: rec
            .run
            .decision()
            .and_then(|d| serde_json::to_value(d).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "unfinished".into()),
        decision: decision.into(),
        gates,
    }
}

/// Judge one gate of the policy on what the recorded run collected for the gate of that id.
fn judge_one(rec: &Recorded<'_>, gate: &crate::model::GateSpec, cx: &JudgeContext<'_>) -> Standing {
    let Some(recorded) = rec.run.gate(&gate.id) else {
        return Standing::NotJudged {
            why: "not a gate of the recorded run: no recorded evidence (it would have to run)"
                .into(),
        };
    };
    if recorded.spec.kind.name() != gate.kind.name() {
        return Standing::NotJudged {
            why: format!(
                "a {} gate now, a {} gate in the recorded run: its evidence is of another kind",
                gate.kind.name(),
                recorded.spec.kind.name()
            ),
        };
    }
    let Some(v) = recorded.verdict() else {
        return Standing::NotJudged {
            why: format!(
                "no recorded evidence: the gate was {} in the recorded run",
                recorded.label()
            ),
        };
    };
    let Some(digest) = v.body.evidence.as_deref() else {
        // Collecting failed outright: red whatever the policy says.
        return Standing::Verdict {
            outcome: v.body.outcome,
            reasons: v.body.reasons.clone(),
        };
    };
    let evidence = match rec
        .record
        .get(digest)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(ev) => ev,
        Err(e) => {
            return Standing::NotJudged {
                why: format!("its evidence cannot be read: {e}"),
            };
        }
    };
    let verdict = gates::judge(gate, &evidence, cx);
    Standing::Verdict {
        outcome: verdict.outcome,
        reasons: verdict.reasons,
    }
}

/// The run's gates as it left them.
fn recorded_standings(run: &RunView<'_>) -> Vec<(String, Standing)> {
    let mut out: Vec<(String, Standing)> = Vec::new();
    for g in &run.gates {
        let s = match g.status {
            GateStatus::Verdict(v) => Standing::Verdict {
                outcome: v.body.outcome,
                reasons: v.body.reasons.clone(),
            },
            GateStatus::Blocked(b) => {
                let waits: Vec<&Standing> = out
                    .iter()
                    .filter(|(id, _)| b.body.waiting_on.contains(id))
                    .map(|(_, s)| s)
                    .collect();
                Standing::Blocked {
                    waiting_on: b.body.waiting_on.clone(),
                    awaiting_signoff: !waits.is_empty() && waits.iter().all(|s| s.awaits_signoff()),
                }
            }
            GateStatus::Skipped(s) => Standing::Skipped {
                reason: s.body.reason.clone(),
            },
            GateStatus::Aborted(_) | GateStatus::Undecided => Standing::NotJudged {
                why: format!("{} in the recorded run", g.label()),
            },
        };
        out.push((g.id().to_string(), s));
    }
    out
}
