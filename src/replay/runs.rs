//! Replay step 4: every run of the log, line by line — each record inside its run, each verdict
//! judged again under the policy derived from the run's recorded source bytes, each publish
//! decided with every gate green.

use std::collections::BTreeMap;

use super::{Problem, fail};
use crate::engine::inputs_digest;
use crate::gates::{self, JudgeContext, Outcome};
use crate::log::{Decision, Entry, Record as LogRecord, RunStarted};
use crate::model::{GateKind, GateSpec, Pipeline};
use crate::record::{Blobs, Record};
use crate::{digest, stage};

/// What one run of the log did, as far as the later steps need it.
pub(super) struct RunFacts {
    /// Index of its `run-started` entry.
    pub index: usize,
    /// Index of its `publish` entry, if it published.
    pub publish: Option<usize>,
    /// Digest of the signature over `SHA256SUMS` its sign gate recorded last.
    pub signature: Option<String>,
}

pub(super) struct LogFacts {
    pub runs: Vec<RunFacts>,
    pub verdicts_rejudged: usize,
    pub published: bool,
}

/// Where a run stands while its lines are read.
struct Current<'a> {
    started: &'a RunStarted,
    /// The policy derived from the recorded sources (equal to the recorded one).
    signers_text: Option<String>,
    policy: String,
    subject_since: i64,
    /// gate → inputs of its `gate-started` in this run.
    gates_started: BTreeMap<String, String>,
    /// gate → its outcome in this run (verdict), or `None` for skipped/blocked/aborted.
    decided: BTreeMap<String, Option<Outcome>>,
    skipped: Vec<String>,
    published_line: bool,
    /// The events of the run's `notification` lines, with their lines.
    notified: Vec<(String, usize)>,
    finished: bool,
}

/// What the walk through the log carries from one run to the next.
#[derive(Default)]
struct Seen<'a> {
    /// The project and version of the record's first run.
    release: Option<(&'a str, &'a str)>,
    /// subject → started_at of the first run that staged it.
    first_staged: BTreeMap<&'a str, i64>,
    last_derived: Option<Derived>,
}

/// Step 4: every run of the log, line by line. `trusted[i]`: line `i` was attested in time
/// (`crate::log::attest::in_time`).
pub(super) fn check(
    rec: &Record,
    entries: &[Entry],
    trusted: &[bool],
) -> Result<LogFacts, Problem> {
    let mut facts = LogFacts {
        runs: Vec::new(),
        verdicts_rejudged: 0,
        published: false,
    };
    let mut cur: Option<Current<'_>> = None;
    let mut seen = Seen::default();
    for (i, e) in entries.iter().enumerate() {
        let line = e.line;
        match &e.record {
            LogRecord::RunStarted(r) => {
                cur = Some(run_started(rec, line, r, facts.runs.len(), &mut seen)?);
                facts.runs.push(RunFacts {
                    index: i,
                    publish: None,
                    signature: None,
                });
                continue;
            }
            LogRecord::RecoveredTornTail(_) => continue,
            _ => {}
        }
        let Some(c) = cur.as_mut() else {
            let kind = e.record.kind();
            return Err(fail(line, format!("{kind} before any run started")));
        };
        inside_run(c, &e.record, line)?;
        let run = facts.runs.last_mut().ok_or_else(|| fail(line, "no run"))?;
        match &e.record {
            LogRecord::GateStarted(s) => gate_started(c, run, s, line)?,
            LogRecord::GateVerdict(v) => {
                let sig = verdict(rec, entries, trusted, i, c, v, &mut facts.verdicts_rejudged)?;
                if sig.is_some() {
                    run.signature = sig;
                }
                c.decided.insert(v.gate.clone(), Some(v.outcome));
            }
            LogRecord::GateSkipped(s) => gate_skipped(c, s, line)?,
            LogRecord::GateBlocked(b) => gate_ended(c, &b.gate, line)?,
            LogRecord::GateAborted(a) => gate_ended(c, &a.gate, line)?,
            LogRecord::Publish(p) => {
                publish(c, run, p, line)?;
                run.publish = Some(i);
                facts.published = true;
            }
            LogRecord::Published(_) => {
                if run.publish.is_none() {
                    return Err(fail(line, "published without a publish decision"));
                }
                c.published_line = true;
            }
            LogRecord::Notification(n) => {
                notification(c, n, line)?;
                c.notified.push((n.event.clone(), line));
            }
            LogRecord::RunFinished(f) => run_finished(c, f)?,
            LogRecord::RunStarted(_) | LogRecord::RecoveredTornTail(_) => {}
        }
    }
    if facts.runs.is_empty() {
        return Err(fail(0, "the log holds no run"));
    }
    Ok(facts)
}

/// Step 4, `run-started`: run numbers count up from 1 (`runs` began before it), every run is
/// of the same project and version, and its start holds ([`check_run_started`]). Returns
/// where the run it begins stands.
fn run_started<'a>(
    rec: &Record,
    line: usize,
    r: &'a RunStarted,
    runs: usize,
    seen: &mut Seen<'a>,
) -> Result<Current<'a>, Problem> {
    if r.run as usize != runs + 1 {
        return Err(fail(line, format!("run number {} out of sequence", r.run)));
    }
    match seen.release {
        None => seen.release = Some((&r.project, &r.version)),
        Some((p, v)) if p == r.project && v == r.version => {}
        Some((p, v)) => {
            return Err(fail(
                line,
                format!(
                    "this run is of {} {}, the record's first run of {p} {v}",
                    r.project, r.version
                ),
            ));
        }
    }
    let signers_text = check_run_started(rec, line, r, &mut seen.last_derived)?;
    let since = *seen.first_staged.entry(&r.subject).or_insert(r.started_at);
    Ok(Current {
        started: r,
        policy: digest::policy_digest(&r.sources),
        signers_text,
        subject_since: since,
        gates_started: BTreeMap::new(),
        decided: BTreeMap::new(),
        skipped: Vec::new(),
        published_line: false,
        notified: Vec::new(),
        finished: false,
    })
}

/// Step 4, every other record (except `recovered-torn-tail`): it names the current run and
/// lies inside it — nothing after its `run-finished`, nothing but `notification` and
/// `run-finished` after its `published` or after a `notification`.
fn inside_run(c: &Current<'_>, record: &LogRecord, line: usize) -> Result<(), Problem> {
    let kind = record.kind();
    let Some(run_no) = run_of(record) else {
        return Ok(());
    };
    if run_no != c.started.run {
        return Err(fail(
            line,
            format!(
                "{kind} names run {run_no}, but run {} is the current one",
                c.started.run
            ),
        ));
    }
    if c.finished {
        return Err(fail(
            line,
            format!("{kind} after run {run_no} finished: no record lies outside its run"),
        ));
    }
    // After the release is in place, only the run's notifications and its end follow;
    // after a notification, only more of them and the end (they report the decision).
    let closing = matches!(
        record,
        LogRecord::RunFinished(_) | LogRecord::Notification(_)
    );
    if c.published_line && !closing {
        return Err(fail(
            line,
            format!("{kind} after the release was published"),
        ));
    }
    if !c.notified.is_empty() && !closing {
        return Err(fail(
            line,
            format!("{kind} after the run's notifications were sent"),
        ));
    }
    Ok(())
}

/// Step 4, every other record: a `gate-started` names a gate of the run's pipeline, not yet
/// decided, and comes before the publish decision (no gate started after it).
fn gate_started(
    c: &mut Current<'_>,
    run: &RunFacts,
    s: &crate::log::GateStarted,
    line: usize,
) -> Result<(), Problem> {
    gate_of(&c.started.pipeline, &s.gate, line)?;
    undecided(c, &s.gate, line)?;
    if run.publish.is_some() {
        return Err(fail(line, "a gate started after the publish decision"));
    }
    c.gates_started.insert(s.gate.clone(), s.inputs.clone());
    Ok(())
}

/// Step 4, `gate-skipped`: `when.bump` really rules the gate out.
fn gate_skipped(
    c: &mut Current<'_>,
    s: &crate::log::GateSkipped,
    line: usize,
) -> Result<(), Problem> {
    let gate = gate_of(&c.started.pipeline, &s.gate, line)?;
    undecided(c, &s.gate, line)?;
    if crate::engine::schedule::not_applicable(gate, &c.started.pipeline, &c.started.version)
        .is_none()
    {
        return Err(fail(
            line,
            format!("gate {} was skipped but applies to this release", s.gate),
        ));
    }
    c.skipped.push(s.gate.clone());
    c.decided.insert(s.gate.clone(), None);
    Ok(())
}

/// Step 4, every other record: a gate blocked or aborted is one of the run's pipeline, and is
/// decided (without an outcome) once.
fn gate_ended(c: &mut Current<'_>, gate: &str, line: usize) -> Result<(), Problem> {
    gate_of(&c.started.pipeline, gate, line)?;
    undecided(c, gate, line)?;
    c.decided.insert(gate.to_string(), None);
    Ok(())
}

/// Step 4, `publish`: not a dry run; the subject is the run's; every gate of the run's
/// pipeline is green (or skipped) in that run; one per run.
fn publish(
    c: &Current<'_>,
    run: &RunFacts,
    p: &crate::log::Publish,
    line: usize,
) -> Result<(), Problem> {
    if c.started.dry_run {
        return Err(fail(line, "a dry run published"));
    }
    if run.publish.is_some() {
        return Err(fail(line, "a second publish in one run"));
    }
    if p.subject != c.started.subject {
        return Err(fail(line, "published another subject than the run staged"));
    }
    for g in &c.started.pipeline.gates {
        let ok = c.skipped.contains(&g.id) || c.decided.get(&g.id) == Some(&Some(Outcome::Green));
        if !ok {
            return Err(fail(
                line,
                format!("published although gate {} was not green in this run", g.id),
            ));
        }
    }
    Ok(())
}

/// Step 4, `notification` (its end): the run's `run-finished` records the decision each of its
/// notifications named.
fn run_finished(c: &mut Current<'_>, f: &crate::log::RunFinished) -> Result<(), Problem> {
    // Each notification told of the decision the run then recorded.
    let said = match f.decision {
        Decision::Pending => "pending",
        Decision::Refused => "refused",
        Decision::Published => "published",
        Decision::DryRun | Decision::Aborted => "",
    };
    if let Some((event, at)) = c.notified.iter().find(|(ev, _)| ev != said) {
        return Err(fail(
            *at,
            format!(
                "a {event} notification in a run that ended {:?}",
                f.decision
            ),
        ));
    }
    c.finished = true;
    Ok(())
}

fn run_of(r: &LogRecord) -> Option<u32> {
    match r {
        LogRecord::GateStarted(x) => Some(x.run),
        LogRecord::GateVerdict(x) => Some(x.run),
        LogRecord::GateBlocked(x) => Some(x.run),
        LogRecord::GateSkipped(x) => Some(x.run),
        LogRecord::GateAborted(x) => Some(x.run),
        LogRecord::Publish(x) => Some(x.run),
        LogRecord::Published(x) => Some(x.run),
        LogRecord::RunFinished(x) => Some(x.run),
        LogRecord::Notification(x) => Some(x.run),
        LogRecord::RunStarted(_) | LogRecord::RecoveredTornTail(_) => None,
    }
}

/// Step 4, `notification`: sent by a real run once every gate was decided, of a known event,
/// and `published` exactly when the release was put in place.
fn notification(c: &Current<'_>, n: &crate::log::Notification, line: usize) -> Result<(), Problem> {
    if c.started.dry_run {
        return Err(fail(line, "a dry run sent a notification (it never does)"));
    }
    if !matches!(n.event.as_str(), "pending" | "refused" | "published") {
        return Err(fail(
            line,
            format!("unknown notification event {:?}", n.event),
        ));
    }
    if let Some(g) = c
        .started
        .pipeline
        .gates
        .iter()
        .find(|g| !c.decided.contains_key(&g.id))
    {
        return Err(fail(
            line,
            format!("a notification before gate {} was decided", g.id),
        ));
    }
    if (n.event == "published") != c.published_line {
        return Err(fail(
            line,
            if c.published_line {
                "a notification other than published after the release was published"
            } else {
                "a published notification, but the release was not put in place"
            },
        ));
    }
    Ok(())
}

fn gate_of<'a>(p: &'a Pipeline, gate: &str, line: usize) -> Result<&'a GateSpec, Problem> {
    p.gate(gate)
        .ok_or_else(|| fail(line, format!("gate {gate} is not in the recorded pipeline")))
}

fn undecided(c: &Current<'_>, gate: &str, line: usize) -> Result<(), Problem> {
    if c.decided.contains_key(gate) {
        return Err(fail(
            line,
            format!("gate {gate} was already decided in this run"),
        ));
    }
    Ok(())
}

/// Step 4, `gate-verdict`: the gate exists in the run's pipeline and was not decided yet; its
/// `inputs` is recomputed and equal; a reused verdict points at a verdict it may reuse; any
/// other follows its own `gate-started` and is judged again from its evidence (without
/// evidence it must be red). Returns the signature digest of a sign gate's evidence.
fn verdict(
    rec: &Record,
    entries: &[Entry],
    trusted: &[bool],
    at: usize,
    c: &Current<'_>,
    v: &crate::log::GateVerdict,
    rejudged: &mut usize,
) -> Result<Option<String>, Problem> {
    let line = entries[at].line;
    let gate = gate_of(&c.started.pipeline, &v.gate, line)?;
    undecided(c, &v.gate, line)?;
    same_inputs(c, gate, v, line)?;
    if let Some(seq) = v.reused_from {
        reused(entries, trusted, at, gate, v, seq)?;
        return Ok(None);
    }
    if c.gates_started.get(&v.gate) != Some(&v.inputs) {
        return Err(fail(
            line,
            format!(
                "gate {}: a verdict without its gate-started line in this run",
                v.gate
            ),
        ));
    }
    let Some(d) = &v.evidence else {
        if v.outcome != Outcome::Red {
            return Err(fail(
                line,
                format!("gate {}: a verdict without evidence must be red", v.gate),
            ));
        }
        return Ok(None);
    };
    judged_again(rec, c, gate, v, d, line, rejudged)
}

/// The verdict's `inputs`, recomputed with the recorded signers and the line's own
/// `depends_on`, equal to the recorded one.
fn same_inputs(
    c: &Current<'_>,
    gate: &GateSpec,
    v: &crate::log::GateVerdict,
    line: usize,
) -> Result<(), Problem> {
    let r = c.started;
    let inputs = inputs_digest(
        gate,
        &r.subject,
        &r.project,
        &r.version,
        c.signers_text.as_deref(),
        v.depends_on.as_ref(),
    );
    if inputs != v.inputs {
        return Err(fail(
            line,
            format!("gate {}: recorded inputs digest does not match", v.gate),
        ));
    }
    Ok(())
}

/// A reused verdict (line `at`, reusing line `seq`): it points at an earlier green, non-reused
/// verdict of the same reusable gate with the same inputs and evidence, one trusted in time,
/// and its `depends_on` is not `unsure`.
fn reused(
    entries: &[Entry],
    trusted: &[bool],
    at: usize,
    gate: &GateSpec,
    v: &crate::log::GateVerdict,
    seq: u64,
) -> Result<(), Problem> {
    let line = entries[at].line;
    let index = usize::try_from(seq).unwrap_or(usize::MAX);
    let earlier = entries
        .get(index)
        .filter(|x| x.seq < entries[at].seq)
        .ok_or_else(|| {
            fail(
                line,
                format!(
                    "gate {}: reused verdict line {} does not exist",
                    v.gate,
                    seq.saturating_add(1)
                ),
            )
        })?;
    // A run reuses only what a checkpoint vouched for before it began; a verdict that was
    // sealed only later (appended by someone without the key, then sealed by a run) must
    // never have been reused.
    if !trusted.get(index).copied().unwrap_or(false) {
        return Err(fail(
            line,
            format!(
                "gate {}: reuses line {}, which no checkpoint vouched for before a later run \
                 began",
                v.gate,
                seq.saturating_add(1)
            ),
        ));
    }
    match &earlier.record {
        LogRecord::GateVerdict(o)
            if o.gate == v.gate
                && o.inputs == v.inputs
                && o.outcome == Outcome::Green
                && o.evidence == v.evidence
                && o.reused_from.is_none()
                && gate.kind.reusable() => {}
        _ => {
            return Err(fail(
                line,
                format!(
                    "gate {}: reuses line {} which is not a green verdict of a reusable gate with the same inputs",
                    v.gate,
                    seq.saturating_add(1)
                ),
            ));
        }
    }
    if v.outcome != Outcome::Green {
        return Err(fail(
            line,
            format!("gate {}: a reused verdict must be green", v.gate),
        ));
    }
    // Equal inputs already mean equal observations; a result whose inputs could not be
    // told must never have been kept. (Lines from before relgate observed anything carry
    // no observation on either side.)
    if let Some(why) = v.depends_on.as_ref().and_then(|d| d.unsure.as_deref()) {
        return Err(fail(
            line,
            format!(
                "gate {}: kept a result although what it ran against could not be told ({why})",
                v.gate
            ),
        ));
    }
    Ok(())
}

/// The verdict's evidence (digest `d`) loaded and judged again with the recorded policy and a
/// context built from `run-started`; the outcome and reasons must equal the recorded ones.
/// Returns the signature digest of a sign gate's evidence.
fn judged_again(
    rec: &Record,
    c: &Current<'_>,
    gate: &GateSpec,
    v: &crate::log::GateVerdict,
    d: &str,
    line: usize,
    rejudged: &mut usize,
) -> Result<Option<String>, Problem> {
    let r = c.started;
    let ev_bytes = rec.get(d).map_err(|e| fail(line, e.to_string()))?;
    let ev: serde_json::Value = serde_json::from_slice(&ev_bytes).map_err(|err| {
        fail(
            line,
            format!("gate {}: evidence is not JSON: {err}", v.gate),
        )
    })?;
    let jcx = JudgeContext {
        project: &r.project,
        version: &r.version,
        subject: &r.subject,
        operator: r.operator.as_deref(),
        started_at: r.started_at,
        dry_run: r.dry_run,
        signers: c.signers_text.as_deref(),
        pipeline: &r.pipeline,
        policy: &c.policy,
        subject_since: c.subject_since,
        blobs: rec,
    };
    let again = gates::judge(gate, &ev, &jcx);
    *rejudged += 1;
    if again.outcome != v.outcome || again.reasons != v.reasons {
        return Err(fail(
            line,
            format!(
                "gate {}: recorded verdict {:?} does not follow from its evidence, which gives {:?}{}",
                v.gate,
                v.outcome,
                again.outcome,
                again
                    .reasons
                    .first()
                    .map(|x| format!(" ({}: {})", x.code, x.message))
                    .unwrap_or_default()
            ),
        ));
    }
    Ok(match gate.kind {
        GateKind::Sign(_) => ev
            .get("signature")
            .and_then(|s| s.as_str())
            .map(str::to_string),
        _ => None,
    })
}

/// A policy derived from a run's recorded sources, with everything it was derived from.
/// Derivation is a pure function of these inputs, and most runs of a record repeat the last
/// run's: then its result is used again instead of validating the same bytes once per run (a
/// record of a hundred runs would spend most of its replay there).
struct Derived {
    sources: Vec<crate::config::SourceFile>,
    signers: Option<String>,
    paths: (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf),
    pipeline: Pipeline,
}

/// A run's start: its `SHA256SUMS` hashes to its subject and matches its artefacts, its
/// sources hash to its pipeline digest, and its policy is what those sources say. Returns the
/// recorded signers text.
fn check_run_started(
    rec: &Record,
    line: usize,
    r: &RunStarted,
    last: &mut Option<Derived>,
) -> Result<Option<String>, Problem> {
    let blob = |d: &str| rec.get(d).map_err(|e| fail(line, e.to_string()));
    let sums = blob(&r.sums)?;
    if format!("sha256:{}", digest::sha256_hex(&sums)) != r.subject {
        return Err(fail(
            line,
            "the recorded SHA256SUMS does not hash to the subject",
        ));
    }
    if stage::sums_text(&r.artefacts) != sums {
        return Err(fail(
            line,
            "the recorded artefact list does not match SHA256SUMS",
        ));
    }
    for a in &r.artefacts {
        crate::names::check_release_path(&a.release_path)
            .map_err(|p| fail(line, format!("artefact {:?}: {p}", a.release_path)))?;
    }
    match r.sources.first() {
        Some(src) if digest::sha256_hex(src.text.as_bytes()) == r.pipeline_digest => {}
        _ => {
            return Err(fail(
                line,
                "the recorded pipeline text does not match its digest",
            ));
        }
    }
    let signers_text = match &r.signers {
        Some(d) => Some(
            String::from_utf8(blob(d)?)
                .map_err(|_| fail(line, "recorded allowed_signers is not UTF-8"))?,
        ),
        None => None,
    };
    policy_derived(line, r, &signers_text, last)?;
    Ok(signers_text)
}

/// The policy judges read is the recorded JSON; it must be what the recorded source bytes
/// say, or a forger could judge under a policy nobody wrote. `last` is the previous run's
/// derivation, used again when its inputs are the same.
fn policy_derived(
    line: usize,
    r: &RunStarted,
    signers_text: &Option<String>,
    last: &mut Option<Derived>,
) -> Result<(), Problem> {
    let paths = (
        r.pipeline.file.clone(),
        r.pipeline.root.clone(),
        r.pipeline.state_dir.clone(),
    );
    if let Some(d) = last.as_ref()
        && d.sources == r.sources
        && d.signers == *signers_text
        && d.paths == paths
    {
        if d.pipeline != r.pipeline {
            return Err(fail(
                line,
                "the recorded pipeline is not what its recorded source bytes say (pipeline_digest covers the sources, not the policy that was judged)",
            ));
        }
        return Ok(());
    }
    let derived = crate::config::derive_recorded(&r.pipeline, &r.sources, signers_text.as_deref())
        .map_err(|d| {
            fail(
                line,
                format!(
                    "the recorded pipeline sources do not validate: {}",
                    d.0.first()
                        .map(|x| format!("{}: {}: {}", x.file.display(), x.key_path, x.message))
                        .unwrap_or_default()
                ),
            )
        })?;
    if derived.pipeline != r.pipeline {
        return Err(fail(
            line,
            "the recorded pipeline is not what its recorded source bytes say (pipeline_digest covers the sources, not the policy that was judged)",
        ));
    }
    if derived.sources != r.sources {
        return Err(fail(
            line,
            "the recorded sources hold files the pipeline does not use",
        ));
    }
    *last = Some(Derived {
        sources: r.sources.clone(),
        signers: signers_text.clone(),
        paths,
        pipeline: derived.pipeline,
    });
    Ok(())
}
