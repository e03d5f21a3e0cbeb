//! One typed view of a release log: its runs, and in each run the state every gate was left
//! in, the publish decision, the notifications sent and how the run ended.
//!
//! `status`, `logs`, `findings`, the release report, recovery and what-if replay read a log
//! through this view instead of each walking the lines its own way, so that they agree on what
//! a log says (which verdict is a gate's latest, when a run counts as published, how long a
//! gate took). The view is built from lines the caller has already verified — the chain always,
//! and for a local record only the lines trusted in time (`crate::log::attest::ForUse`) — and
//! is lenient: a line that names another run or a gate the run's pipeline does not have is left
//! out. Deciding whether a log is *valid* is replay's job (`crate::replay`), not this view's.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::log::{
    Decision, Entry, GateAborted, GateBlocked, GateSkipped, GateStarted, GateVerdict, Notification,
    Publish, Published, Record, RunFinished, RunStarted,
};
use crate::model::GateSpec;

/// A record body with the log line it came from.
pub struct At<'a, T> {
    pub entry: &'a Entry,
    pub body: &'a T,
}

// Derived Clone/Copy would demand `T: Copy`; two references are always copyable.
impl<T> Clone for At<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for At<'_, T> {}

impl<'a, T> At<'a, T> {
    /// The 1-based line number in `log.jsonl`.
    pub fn line(&self) -> usize {
        self.entry.line
    }

    /// When the line was written (RFC 3339, as recorded).
    pub fn ts(&self) -> &'a str {
        &self.entry.ts
    }
}

/// Where a gate was left in one run.
#[derive(Clone, Copy)]
pub enum GateStatus<'a> {
    /// No line decided it (it may have started: see [`GateView::started`]).
    Undecided,
    Verdict(At<'a, GateVerdict>),
    Blocked(At<'a, GateBlocked>),
    Skipped(At<'a, GateSkipped>),
    Aborted(At<'a, GateAborted>),
}

/// One gate of one run.
#[derive(Clone, Copy)]
pub struct GateView<'a> {
    /// The gate as the run's recorded pipeline has it.
    pub spec: &'a GateSpec,
    pub started: Option<At<'a, GateStarted>>,
    pub status: GateStatus<'a>,
}

impl<'a> GateView<'a> {
    pub fn id(&self) -> &'a str {
        &self.spec.id
    }

    pub fn kind(&self) -> &'static str {
        self.spec.kind.name()
    }

    /// The verdict line, when the gate has one in this run.
    pub fn verdict(&self) -> Option<At<'a, GateVerdict>> {
        match self.status {
            GateStatus::Verdict(v) => Some(v),
            _ => None,
        }
    }

    /// The state as `status` names it: an outcome (`green`, `red`, `pending`), `blocked`,
    /// `skipped`, `aborted`, `running-or-interrupted` (started, never decided: a run still
    /// going, or one killed) or `not-run`.
    pub fn label(&self) -> &'static str {
        match self.status {
            GateStatus::Verdict(v) => match v.body.outcome {
                crate::gates::Outcome::Green => "green",
                crate::gates::Outcome::Red => "red",
                crate::gates::Outcome::Pending => "pending",
            },
            GateStatus::Blocked(_) => "blocked",
            GateStatus::Skipped(_) => "skipped",
            GateStatus::Aborted(_) => "aborted",
            GateStatus::Undecided if self.started.is_some() => "running-or-interrupted",
            GateStatus::Undecided => "not-run",
        }
    }

    /// How long the gate took, from its `gate-started` line to its verdict, by the times the
    /// log recorded (a kept result took no time in this run: `None`).
    pub fn duration_ms(&self) -> Option<u64> {
        let (start, end) = (self.started?, self.verdict()?);
        if end.body.reused_from.is_some() {
            return None;
        }
        let ms = |ts: &str| {
            OffsetDateTime::parse(ts, &Rfc3339)
                .ok()
                .map(|t| t.unix_timestamp_nanos() / 1_000_000)
        };
        let d = ms(end.ts())?.checked_sub(ms(start.ts())?)?;
        u64::try_from(d).ok()
    }
}

/// One run of the release.
pub struct RunView<'a> {
    pub start: At<'a, RunStarted>,
    /// Every gate of the run's pipeline, in its order.
    pub gates: Vec<GateView<'a>>,
    pub publish: Option<At<'a, Publish>>,
    pub published: Option<At<'a, Published>>,
    /// Webhook deliveries recorded in this run, in order.
    pub notifications: Vec<At<'a, Notification>>,
    pub finished: Option<At<'a, RunFinished>>,
}

impl<'a> RunView<'a> {
    pub fn number(&self) -> u32 {
        self.start.body.run
    }

    pub fn gate(&self, id: &str) -> Option<&GateView<'a>> {
        self.gates.iter().find(|g| g.spec.id == id)
    }

    /// How the run ended: its `run-finished`, or — in a published release's `audit/`, which
    /// ends with the publish decision — published once it decided to publish.
    pub fn decision(&self) -> Option<Decision> {
        match (&self.finished, &self.publish) {
            (Some(f), _) => Some(f.body.decision),
            (None, Some(_)) => Some(Decision::Published),
            (None, None) => None,
        }
    }

    /// The line that says how the run ended (`run-finished`, else `publish`).
    pub fn decided_at(&self) -> Option<&'a Entry> {
        self.finished
            .map(|f| f.entry)
            .or(self.publish.map(|p| p.entry))
    }

    fn gate_mut(&mut self, id: &str) -> Option<&mut GateView<'a>> {
        self.gates.iter_mut().find(|g| g.spec.id == id)
    }
}

/// A release log as runs.
pub struct ReleaseView<'a> {
    pub runs: Vec<RunView<'a>>,
}

impl<'a> ReleaseView<'a> {
    /// Build the view of `entries` (verified lines, in log order).
    pub fn new(entries: &'a [Entry]) -> ReleaseView<'a> {
        let mut runs: Vec<RunView<'a>> = Vec::new();
        for e in entries {
            if let Record::RunStarted(r) = &e.record {
                runs.push(RunView {
                    start: At {
                        entry: e,
                        body: r.as_ref(),
                    },
                    gates: r
                        .pipeline
                        .gates
                        .iter()
                        .map(|spec| GateView {
                            spec,
                            started: None,
                            status: GateStatus::Undecided,
                        })
                        .collect(),
                    publish: None,
                    published: None,
                    notifications: Vec::new(),
                    finished: None,
                });
                continue;
            }
            let Some(run) = runs.last_mut() else {
                continue;
            };
            if record_run(&e.record) != Some(run.number()) {
                continue;
            }
            match &e.record {
                Record::GateStarted(s) => {
                    if let Some(g) = run.gate_mut(&s.gate) {
                        g.started = Some(At { entry: e, body: s });
                    }
                }
                Record::GateVerdict(v) => {
                    set(run, &v.gate, GateStatus::Verdict(At { entry: e, body: v }))
                }
                Record::GateBlocked(b) => {
                    set(run, &b.gate, GateStatus::Blocked(At { entry: e, body: b }))
                }
                Record::GateSkipped(s) => {
                    set(run, &s.gate, GateStatus::Skipped(At { entry: e, body: s }))
                }
                Record::GateAborted(a) => {
                    set(run, &a.gate, GateStatus::Aborted(At { entry: e, body: a }))
                }
                Record::Publish(p) => run.publish = Some(At { entry: e, body: p }),
                Record::Published(p) => run.published = Some(At { entry: e, body: p }),
                Record::Notification(n) => run.notifications.push(At { entry: e, body: n }),
                Record::RunFinished(f) => run.finished = Some(At { entry: e, body: f }),
                Record::RunStarted(_) | Record::RecoveredTornTail(_) => {}
            }
        }
        ReleaseView { runs }
    }

    /// The latest run.
    pub fn latest(&self) -> Option<&RunView<'a>> {
        self.runs.last()
    }

    /// The run numbered `run`.
    pub fn run(&self, run: u32) -> Option<&RunView<'a>> {
        self.runs.iter().find(|r| r.number() == run)
    }

    /// The latest verdict of `gate` in any run, with its run.
    pub fn latest_verdict(&self, gate: &str) -> Option<(&RunView<'a>, At<'a, GateVerdict>)> {
        self.runs
            .iter()
            .rev()
            .find_map(|r| r.gate(gate).and_then(|g| g.verdict()).map(|v| (r, v)))
    }

    /// The latest verdict of `gate` that has evidence: its run's start, its line, the digest.
    pub fn latest_evidence(&self, gate: &str) -> Option<(&'a RunStarted, usize, &'a str)> {
        self.runs.iter().rev().find_map(|r| {
            let v = r.gate(gate)?.verdict()?;
            let d = v.body.evidence.as_deref()?;
            Some((r.start.body, v.line(), d))
        })
    }
}

fn set<'a>(run: &mut RunView<'a>, gate: &str, status: GateStatus<'a>) {
    if let Some(g) = run.gate_mut(gate) {
        g.status = status;
    }
}

/// The run a record names (`None`: `run-started` and `recovered-torn-tail`, which name none).
pub fn record_run(r: &Record) -> Option<u32> {
    match r {
        Record::GateStarted(x) => Some(x.run),
        Record::GateVerdict(x) => Some(x.run),
        Record::GateBlocked(x) => Some(x.run),
        Record::GateSkipped(x) => Some(x.run),
        Record::GateAborted(x) => Some(x.run),
        Record::Publish(x) => Some(x.run),
        Record::Published(x) => Some(x.run),
        Record::RunFinished(x) => Some(x.run),
        Record::Notification(x) => Some(x.run),
        Record::RunStarted(_) | Record::RecoveredTornTail(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates::{Outcome, Reason};
    use crate::log::{GateBlocked, GateStarted, GateVerdict, LogWriter, Publish, RunFinished};

    /// A log of two runs of a pipeline with gates `a` and `sign`, written and read back.
    fn log() -> (tempfile::TempDir, Vec<Entry>) {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join("allowed_signers"),
            "release@acme.test ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEbJ4kNLx2bD4sOGrHPHXJ3k8mX6xQnF1MmNQYLrPOVi\n",
        )
        .expect("signers");
        std::fs::write(
            dir.path().join("pipeline.yaml"),
            "version: 1\nproject: acme\nartefacts: [dist/*]\nsigners: allowed_signers\ngates:\n  a:\n    kind: regression\n    run: \"true\"\n  sign:\n    kind: sign\n    key: k\n    signer: release@acme.test\n",
        )
        .expect("pipeline");
        let loaded =
            crate::config::load_policy(&dir.path().join("pipeline.yaml")).expect("pipeline loads");
        let started = |run: u32| {
            Record::RunStarted(Box::new(RunStarted {
                run,
                tool_version: "0".into(),
                project: "acme".into(),
                version: "1.0.0".into(),
                dry_run: false,
                operator: None,
                started_at: 0,
                pipeline_digest: String::new(),
                sources: loaded.sources.clone(),
                pipeline: loaded.pipeline.clone(),
                signers: None,
                subject: "sha256:00".into(),
                sums: String::new(),
                artefacts: Vec::new(),
                subject_changed: false,
                checkpoint_key: None,
            }))
        };
        let verdict = |run: u32, gate: &str, outcome: Outcome| {
            Record::GateVerdict(GateVerdict {
                run,
                gate: gate.into(),
                kind: "regression".into(),
                inputs: "i".into(),
                outcome,
                reasons: vec![Reason::new(crate::gates::Code::Timeout, "y")],
                evidence: Some("e".into()),
                reused_from: None,
                depends_on: None,
            })
        };
        let gate_started = |run: u32| {
            Record::GateStarted(GateStarted {
                run,
                gate: "a".into(),
                inputs: "i".into(),
                depends_on: None,
            })
        };
        let records = vec![
            started(1),
            gate_started(1),
            verdict(1, "a", Outcome::Red),
            Record::GateBlocked(GateBlocked {
                run: 1,
                gate: "sign".into(),
                waiting_on: vec!["a".into()],
            }),
            Record::RunFinished(RunFinished {
                run: 1,
                decision: Decision::Refused,
                exit_code: 1,
                message: None,
            }),
            started(2),
            gate_started(2),
            // A line naming another run is not this run's.
            verdict(1, "a", Outcome::Green),
            verdict(2, "a", Outcome::Green),
            verdict(2, "sign", Outcome::Green),
            Record::Publish(Publish {
                run: 2,
                to: "published/acme/1.0.0".into(),
                subject: "sha256:00".into(),
                files: Vec::new(),
            }),
        ];
        let path = dir.path().join("log.jsonl");
        let (mut w, _) = LogWriter::open(&path).expect("open");
        for r in records {
            w.append(r).expect("append");
        }
        let entries = crate::log::read_log(&std::fs::read(&path).expect("read"))
            .expect("reads")
            .0;
        (dir, entries)
    }

    #[test]
    fn runs_gates_and_decisions_as_the_log_leaves_them() {
        let (_dir, entries) = log();
        let view = ReleaseView::new(&entries);
        assert_eq!(view.runs.len(), 2);
        let first = &view.runs[0];
        assert_eq!(first.decision(), Some(Decision::Refused));
        assert_eq!(first.gate("a").map(|g| g.label()), Some("red"));
        assert_eq!(first.gate("sign").map(|g| g.label()), Some("blocked"));
        // The audit/ of a published release ends with its publish decision: published.
        let second = view.latest().expect("latest");
        assert_eq!(second.decision(), Some(Decision::Published));
        assert_eq!(second.decided_at().map(|e| e.line), Some(11));
        assert_eq!(
            second.gate("a").and_then(|g| g.verdict()).map(|v| v.line()),
            Some(9)
        );
        assert_eq!(view.latest_verdict("a").map(|(r, _)| r.number()), Some(2));
        assert_eq!(
            view.latest_evidence("sign").map(|(_, line, _)| line),
            Some(10)
        );
        // Started and judged: a duration from the lines' own times.
        assert!(second.gate("a").and_then(|g| g.duration_ms()).is_some());
        assert!(second.gate("sign").and_then(|g| g.duration_ms()).is_none());
    }
}
