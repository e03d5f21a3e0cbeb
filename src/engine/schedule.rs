//! Running the gates concurrently along `needs`: a gate starts once every gate it needs has
//! finished; if one of them is not green it is blocked instead, and never started.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;

use super::{
    Event, GateState, GateSummary, RunError, SharedLog, append, inputs_digest, outcome_state, reuse,
};
use crate::gates::Code;
use crate::gates::{self, CollectContext, CollectError, JudgeContext, Outcome};
use crate::log::{self, Entry, Record as LogRecord};
use crate::model::{Bump, GateKind, GateSpec, Pipeline};

pub(crate) struct Scheduler {
    pub log: SharedLog,
    pub cx: CollectContext,
    pub run: u32,
    pub rerun: bool,
    pub prior: Vec<Entry>,
    pub signers_text: Option<String>,
    pub events: UnboundedSender<Event>,
}

/// One gate being run, once what it runs against was observed: what its steps share.
struct Attempt<'g> {
    gate: &'g GateSpec,
    /// When it started, for its elapsed time.
    since: Instant,
    /// The gates it needs that await a sign-off, when a dry run rehearses it anyway.
    rehearsal: Option<Vec<String>>,
    depends_on: Option<reuse::Dependencies>,
    inputs: String,
}

/// What collecting and judging a gate came to.
struct Judged {
    verdict: gates::Verdict,
    /// The evidence's digest in the record, when there is evidence.
    evidence: Option<String>,
    /// The gate's own notes, from its evidence.
    notes: Vec<String>,
    may_still_sign: Option<Vec<String>>,
}

impl Scheduler {
    /// Run every gate; how each ended, by id.
    pub async fn run_all(self) -> Result<BTreeMap<String, GateSummary>, RunError> {
        let this = Arc::new(self);
        let gates = this.cx.pipeline.gates.clone();
        let mut states: BTreeMap<String, GateState> = BTreeMap::new();
        let mut results: BTreeMap<String, GateSummary> = BTreeMap::new();
        let mut started: HashSet<String> = HashSet::new();
        let mut running: JoinSet<(String, Result<GateSummary, RunError>)> = JoinSet::new();
        loop {
            let mut progressed = true;
            while progressed {
                progressed = false;
                for g in &gates {
                    if started.contains(&g.id) || !g.needs.iter().all(|n| states.contains_key(n)) {
                        continue;
                    }
                    started.insert(g.id.clone());
                    let unmet: Vec<String> = g
                        .needs
                        .iter()
                        .filter(|n| !states.get(*n).is_some_and(GateState::satisfies_needs))
                        .cloned()
                        .collect();
                    // Waiting on sign-offs only is not failing: such a gate is pending. A dry
                    // run still rehearses the sign gate then, so that signing runs nightly.
                    let awaiting = !unmet.is_empty()
                        && unmet
                            .iter()
                            .all(|n| states.get(n).is_some_and(GateState::awaits_signoff));
                    let rehearse =
                        awaiting && this.cx.dry_run && matches!(g.kind, GateKind::Sign(_));
                    // A gate that will not start: record why, show it, and count it as done.
                    let not_started = if *this.cx.cancel.borrow() {
                        Some((
                            LogRecord::GateAborted(log::GateAborted {
                                run: this.run,
                                gate: g.id.clone(),
                            }),
                            GateState::Aborted,
                        ))
                    } else if !unmet.is_empty() && !rehearse {
                        Some((
                            LogRecord::GateBlocked(log::GateBlocked {
                                run: this.run,
                                gate: g.id.clone(),
                                waiting_on: unmet.clone(),
                            }),
                            if awaiting {
                                GateState::Waiting {
                                    waiting_on: unmet.clone(),
                                }
                            } else {
                                GateState::Blocked {
                                    waiting_on: unmet.clone(),
                                }
                            },
                        ))
                    } else {
                        None
                    };
                    if let Some((record, state)) = not_started {
                        append(&this.log, record)?;
                        let done = this.finish(g, state, Instant::now(), Vec::new(), None);
                        states.insert(g.id.clone(), done.state.clone());
                        results.insert(g.id.clone(), done);
                        progressed = true;
                    } else {
                        let me = this.clone();
                        let gate = g.clone();
                        let rehearsal = rehearse.then_some(unmet);
                        running.spawn(async move {
                            let id = gate.id.clone();
                            (id, me.run_gate(&gate, rehearsal).await)
                        });
                    }
                }
            }
            match running.join_next().await {
                None => break,
                Some(Ok((id, result))) => {
                    let done = result?;
                    states.insert(id.clone(), done.state.clone());
                    results.insert(id, done);
                }
                Some(Err(e)) => return Err(RunError::Task(e)),
            }
        }
        Ok(results)
    }

    /// Show how a gate ended and return it for the run's summary.
    fn finish(
        &self,
        gate: &GateSpec,
        state: GateState,
        since: Instant,
        notes: Vec<String>,
        evidence: Option<String>,
    ) -> GateSummary {
        let elapsed_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
        let _ = self.events.send(Event::GateFinished {
            gate: gate.id.clone(),
            kind: gate.kind.name().to_string(),
            state: state.clone(),
            elapsed_ms,
            notes: notes.clone(),
        });
        GateSummary {
            id: gate.id.clone(),
            kind: gate.kind.name().to_string(),
            state,
            elapsed_ms,
            evidence,
            notes,
            may_still_sign: None,
        }
    }

    /// Run one gate. `rehearsal`: the gates it needs that await a sign-off, when a dry run
    /// runs it anyway (the sign gate; see [`CollectContext::rehearsal`]).
    ///
    /// Its steps, in this order: skipped when `when:` rules it out; what it runs against
    /// observed (before it starts, so that a kept result was observed with exactly the same);
    /// an earlier green result kept, or else `gate-started` written before anything of the gate
    /// runs; its evidence collected and judged; its verdict recorded and shown.
    async fn run_gate(
        &self,
        gate: &GateSpec,
        rehearsal: Option<Vec<String>>,
    ) -> Result<GateSummary, RunError> {
        let t0 = Instant::now();
        // 1. A gate `when:` rules out for this version is skipped.
        if let Some(why) = not_applicable(gate, &self.cx.pipeline, &self.cx.version) {
            return self.skip(gate, why, t0);
        }
        // 2. What it runs against, and the digest of its inputs.
        let attempt = self.observe(gate, rehearsal, t0).await;
        // 3. An earlier green result with the same inputs is kept instead.
        if let Some(kept) = self.keep(&attempt)? {
            return Ok(kept);
        }
        // 4. Why an earlier green result is not kept, to be shown with this run's verdict.
        let not_kept = self.not_kept(&attempt);
        // 5. Write-ahead: `gate-started`.
        self.start(&attempt)?;
        // 6. Collect its evidence and judge it; an interrupted collect aborts the gate.
        let Some(judged) = self.collect_and_judge(&attempt).await? else {
            return self.abort(gate, t0);
        };
        // 7. Its verdict, recorded and shown.
        self.verdict(attempt, judged, not_kept)
    }

    /// Record that `when:` rules the gate out (`gate-skipped`), and show it.
    fn skip(&self, gate: &GateSpec, why: String, t0: Instant) -> Result<GateSummary, RunError> {
        append(
            &self.log,
            LogRecord::GateSkipped(log::GateSkipped {
                run: self.run,
                gate: gate.id.clone(),
                reason: why.clone(),
            }),
        )?;
        let state = GateState::Skipped { reason: why };
        Ok(self.finish(gate, state, t0, Vec::new(), None))
    }

    /// What an automated gate runs against, observed before it starts: a kept result must
    /// have been observed with exactly the same (it is part of the inputs digest).
    async fn observe<'g>(
        &self,
        gate: &'g GateSpec,
        rehearsal: Option<Vec<String>>,
        since: Instant,
    ) -> Attempt<'g> {
        let p = &self.cx.pipeline;
        let depends_on = reuse::observe(gate, p, self.cx.cancel.clone()).await;
        let inputs = inputs_digest(
            gate,
            &self.cx.staged.subject,
            &p.project,
            &self.cx.version,
            self.signers_text.as_deref(),
            depends_on.as_ref(),
        );
        Attempt {
            gate,
            since,
            rehearsal,
            depends_on,
            inputs,
        }
    }

    /// Keep the green result of an earlier run with the same inputs, when the gate's kind
    /// allows it, what it runs against could be told for sure, and `--rerun` was not given:
    /// record it as this run's verdict (`reused_from`) and show it.
    fn keep(&self, a: &Attempt<'_>) -> Result<Option<GateSummary>, RunError> {
        let gate = a.gate;
        let sure = a.depends_on.as_ref().is_some_and(|d| d.unsure.is_none());
        if !(gate.kind.reusable() && sure && !self.rerun) {
            return Ok(None);
        }
        let Some((seq, v)) = self.reusable(gate, &a.inputs) else {
            return Ok(None);
        };
        append(
            &self.log,
            LogRecord::GateVerdict(log::GateVerdict {
                run: self.run,
                gate: gate.id.clone(),
                kind: gate.kind.name().to_string(),
                inputs: a.inputs.clone(),
                outcome: Outcome::Green,
                reasons: Vec::new(),
                evidence: v.evidence.clone(),
                reused_from: Some(seq),
                depends_on: a.depends_on.clone(),
            }),
        )?;
        let state = GateState::Green { reused: true };
        let on = a
            .depends_on
            .as_ref()
            .map(|d| d.summary())
            .unwrap_or_default();
        Ok(Some(self.finish(
            gate,
            state,
            a.since,
            vec![format!(
                "kept the green result of log line {}: same settings and artefacts; {on}",
                seq + 1
            )],
            v.evidence.clone(),
        )))
    }

    /// Why an earlier green result of the gate is not kept: `--rerun`, or what changed in
    /// what it runs against. `None` when there is none, or the change cannot be told.
    fn not_kept(&self, a: &Attempt<'_>) -> Option<String> {
        match (&a.depends_on, self.latest_green(a.gate)) {
            (_, None) => None,
            (_, Some(_)) if self.rerun => Some("ran again (--rerun)".to_string()),
            (Some(now), Some(before)) => Some(format!(
                "ran again: {}",
                reuse::difference(before.depends_on.as_ref(), now)
                    .unwrap_or_else(|| "the gate, the artefacts or the signers changed".into())
            )),
            (None, Some(_)) => None,
        }
    }

    /// Write `gate-started` (durable before the gate runs anything), then show it.
    fn start(&self, a: &Attempt<'_>) -> Result<(), RunError> {
        append(
            &self.log,
            LogRecord::GateStarted(log::GateStarted {
                run: self.run,
                gate: a.gate.id.clone(),
                inputs: a.inputs.clone(),
                depends_on: a.depends_on.clone(),
            }),
        )?;
        let _ = self.events.send(Event::GateStarted {
            gate: a.gate.id.clone(),
        });
        Ok(())
    }

    /// Collect the gate's evidence, under a backstop timeout, and judge it. A collect that
    /// fails or overruns is red; `None` when it was interrupted.
    async fn collect_and_judge(&self, a: &Attempt<'_>) -> Result<Option<Judged>, RunError> {
        let gate = a.gate;
        // The gate enforces its own timeout (killing what it started); this is a backstop.
        let backstop = Duration::from_secs(gate.timeout_secs.saturating_add(30));
        let mut cx = self.cx.clone();
        cx.rehearsal = a.rehearsal.is_some();
        let collected = tokio::time::timeout(backstop, gates::collect(gate, &cx)).await;
        let red = |verdict| Judged {
            verdict,
            evidence: None,
            notes: Vec::new(),
            may_still_sign: None,
        };
        Ok(Some(match collected {
            Ok(Ok(ev)) => self.judge(gate, &ev)?,
            Ok(Err(CollectError::Interrupted)) => return Ok(None),
            Ok(Err(e)) => red(gates::Verdict::red(Code::CollectError, e.to_string())),
            Err(_) => red(gates::Verdict::red(
                Code::Timeout,
                format!("did not finish within {}s", gate.timeout_secs),
            )),
        }))
    }

    /// Store the evidence in the record, then judge it purely, as replay will.
    fn judge(&self, gate: &GateSpec, ev: &serde_json::Value) -> Result<Judged, RunError> {
        let p = &self.cx.pipeline;
        let digest = self.cx.record.put_json(ev)?;
        let jcx = JudgeContext {
            project: &p.project,
            version: &self.cx.version,
            subject: &self.cx.staged.subject,
            operator: self.cx.operator.as_deref(),
            started_at: self.cx.started_at,
            dry_run: self.cx.dry_run,
            signers: self.signers_text.as_deref(),
            pipeline: p,
            policy: &self.cx.policy,
            subject_since: self.cx.subject_since,
            blobs: &self.cx.record,
        };
        let verdict = gates::judge(gate, ev, &jcx);
        let mut may_still_sign = None;
        if verdict.outcome == Outcome::Pending {
            may_still_sign = gates::may_still_sign(gate, ev, &jcx);
        }
        Ok(Judged {
            verdict,
            evidence: Some(digest),
            notes: evidence_notes(ev),
            may_still_sign,
        })
    }

    /// Record that the gate was interrupted (`gate-aborted`), and show it.
    fn abort(&self, gate: &GateSpec, t0: Instant) -> Result<GateSummary, RunError> {
        append(
            &self.log,
            LogRecord::GateAborted(log::GateAborted {
                run: self.run,
                gate: gate.id.clone(),
            }),
        )?;
        Ok(self.finish(gate, GateState::Aborted, t0, Vec::new(), None))
    }

    /// Record the verdict (`gate-verdict`), then show it with its notes: why an earlier
    /// result was not kept, the gate's own, and that it was only rehearsed.
    fn verdict(
        &self,
        a: Attempt<'_>,
        judged: Judged,
        not_kept: Option<String>,
    ) -> Result<GateSummary, RunError> {
        let Judged {
            verdict,
            evidence,
            mut notes,
            may_still_sign,
        } = judged;
        append(
            &self.log,
            LogRecord::GateVerdict(log::GateVerdict {
                run: self.run,
                gate: a.gate.id.clone(),
                kind: a.gate.kind.name().to_string(),
                inputs: a.inputs,
                outcome: verdict.outcome,
                reasons: verdict.reasons.clone(),
                evidence: evidence.clone(),
                reused_from: None,
                depends_on: a.depends_on,
            }),
        )?;
        if let Some(waiting_on) = a.rehearsal {
            notes.push(format!(
                "rehearsed with a throwaway key; a real run waits for {} (awaiting sign-off)",
                waiting_on.join(", ")
            ));
        }
        let state = outcome_state(verdict.outcome, verdict.reasons, false);
        let notes = not_kept.into_iter().chain(notes).collect();
        let mut done = self.finish(a.gate, state, a.since, notes, evidence);
        done.may_still_sign = may_still_sign;
        Ok(done)
    }

    /// The latest green verdict of `gate` in an earlier run, whatever its inputs.
    fn latest_green(&self, gate: &GateSpec) -> Option<&log::GateVerdict> {
        self.prior.iter().rev().find_map(|e| match &e.record {
            LogRecord::GateVerdict(v) if v.gate == gate.id && v.outcome == Outcome::Green => {
                Some(v)
            }
            _ => None,
        })
    }

    /// The green verdict of `gate` to keep: the latest verdict of an earlier run with the same
    /// inputs decides, so a red (a flaky test that failed last time) is never skipped over for
    /// an older green. `prior` holds only lines attested in time.
    fn reusable(&self, gate: &GateSpec, inputs: &str) -> Option<(u64, log::GateVerdict)> {
        let latest = self.prior.iter().rev().find_map(|e| match &e.record {
            LogRecord::GateVerdict(v) if v.gate == gate.id && v.inputs == inputs => {
                Some((e.seq, v))
            }
            _ => None,
        })?;
        let (seq, v) = latest;
        (v.outcome == Outcome::Green && v.evidence.is_some())
            .then(|| (v.reused_from.unwrap_or(seq), v.clone()))
    }
}

/// Short notes a gate wants shown (an optional `notes` array of strings in its evidence).
fn evidence_notes(ev: &serde_json::Value) -> Vec<String> {
    ev.get("notes")
        .and_then(|n| n.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `Some(reason)` when `when.bump` rules the gate out for this version.
pub(crate) fn not_applicable(gate: &GateSpec, p: &Pipeline, version: &str) -> Option<String> {
    let when = gate.when.as_ref()?;
    let base = p.changes.as_ref()?.range.split("..").next()?.to_string();
    let bump = bump_of(&base, version)?;
    if when.bump.contains(&bump) {
        None
    } else {
        Some(
            format!(
                "{base} -> {version} is a {bump:?} bump; the gate applies to {:?}",
                when.bump
            )
            .to_lowercase(),
        )
    }
}

fn semver(v: &str) -> Option<(u64, u64, u64)> {
    let v = v.strip_prefix('v').unwrap_or(v);
    let core = v.split(['-', '+']).next()?;
    let mut it = core.split('.').map(|x| x.parse::<u64>().ok());
    let out = (it.next()??, it.next()??, it.next()??);
    if it.next().is_some() {
        return None;
    }
    Some(out)
}

/// The kind of bump from `base` to `version`; `None` when it cannot be worked out.
pub fn bump_of(base: &str, version: &str) -> Option<Bump> {
    let (a, b) = (semver(base)?, semver(version)?);
    if b.0 != a.0 {
        Some(Bump::Major)
    } else if b.1 != a.1 {
        Some(Bump::Minor)
    } else {
        Some(Bump::Patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bumps() {
        assert_eq!(bump_of("v1.3.0", "2.0.0"), Some(Bump::Major));
        assert_eq!(bump_of("v1.3.0", "1.4.0"), Some(Bump::Minor));
        assert_eq!(bump_of("1.3.0", "1.3.1"), Some(Bump::Patch));
        assert_eq!(bump_of("HEAD~3", "1.3.1"), None);
    }
}
