//! Replay: verify a release record offline — the chain, the signed checkpoint, every evidence
//! file, every verdict judged again from its evidence under the recorded pipeline, and that a
//! publish happened only when every gate was green. Never runs a command or contacts a server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::engine::inputs_digest;
use crate::gates::{self, JudgeContext, Outcome};
use crate::log::checkpoint::Checkpoint;
use crate::log::{Entry, Record as LogRecord, RunStarted, read_log};
use crate::record::{
    self, Blobs, CHECKPOINT_FILE, CHECKPOINT_SIG_FILE, EVIDENCE_DIR, LOG_FILE, Record,
};
use crate::{digest, signers, sshsig, stage};

/// The first problem replay found; `line` is the 1-based log line (0: not about one line).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReplayReport {
    pub record: PathBuf,
    pub ok: bool,
    pub lines: usize,
    pub runs: usize,
    pub verdicts_rejudged: usize,
    pub published: bool,
    pub checkpoint_signer: Option<String>,
    pub notes: Vec<String>,
    pub problem: Option<Problem>,
}

fn fail(line: usize, message: impl Into<String>) -> Problem {
    Problem {
        line,
        message: message.into(),
    }
}

/// A published folder holds its record under `audit/`; otherwise PATH is the record.
pub fn record_dir(path: &Path) -> PathBuf {
    let audit = path.join(crate::publish::AUDIT_DIR);
    if audit.join(LOG_FILE).is_file() {
        audit
    } else {
        path.to_path_buf()
    }
}

pub fn replay(path: &Path, signers_override: Option<&str>) -> ReplayReport {
    let dir = record_dir(path);
    let mut report = ReplayReport {
        record: dir.clone(),
        ok: false,
        lines: 0,
        runs: 0,
        verdicts_rejudged: 0,
        published: false,
        checkpoint_signer: None,
        notes: Vec::new(),
        problem: None,
    };
    if let Err(p) = check(&dir, signers_override, &mut report) {
        report.problem = Some(p);
    } else {
        report.ok = true;
    }
    report
}

fn check(
    dir: &Path,
    signers_override: Option<&str>,
    report: &mut ReplayReport,
) -> Result<(), Problem> {
    let bytes = std::fs::read(dir.join(LOG_FILE)).map_err(|e| {
        fail(
            0,
            format!("cannot read {}: {e}", dir.join(LOG_FILE).display()),
        )
    })?;
    let (entries, head) = read_log(&bytes).map_err(|p| fail(p.line, p.message))?;
    report.lines = entries.len();
    if entries.is_empty() {
        return Err(fail(0, "the log is empty"));
    }
    let rec = Record::new(dir);

    // Every evidence file must match its name, referenced or not.
    check_evidence_dir(&dir.join(EVIDENCE_DIR))?;

    let mut run: Option<(&Entry, &RunStarted, Option<String>)> = None;
    let mut states: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut last_run: Option<&RunStarted> = None;
    for e in &entries {
        match &e.record {
            LogRecord::RunStarted(r) => {
                report.runs += 1;
                if r.run as usize != report.runs {
                    return Err(fail(
                        e.line,
                        format!("run number {} out of sequence", r.run),
                    ));
                }
                check_run_started(&rec, e, r)?;
                let signers_text = match signers_override {
                    Some(t) => Some(t.to_string()),
                    None => match &r.signers {
                        Some(d) => {
                            Some(String::from_utf8(blob(&rec, d, e.line)?).map_err(|_| {
                                fail(e.line, "recorded allowed_signers is not UTF-8")
                            })?)
                        }
                        None => None,
                    },
                };
                run = Some((e, r, signers_text));
                last_run = Some(r);
                states.clear();
                skipped.clear();
            }
            LogRecord::GateVerdict(v) => {
                let Some((_, r, signers_text)) = &run else {
                    return Err(fail(e.line, "a verdict before any run started"));
                };
                if v.run != r.run {
                    return Err(fail(e.line, "verdict names another run"));
                }
                let gate = r.pipeline.gate(&v.gate).ok_or_else(|| {
                    fail(
                        e.line,
                        format!("gate {} is not in the recorded pipeline", v.gate),
                    )
                })?;
                let inputs = inputs_digest(
                    gate,
                    &r.subject,
                    &r.project,
                    &r.version,
                    signers_text.as_deref(),
                );
                if signers_override.is_none() && inputs != v.inputs {
                    return Err(fail(
                        e.line,
                        format!("gate {}: recorded inputs digest does not match", v.gate),
                    ));
                }
                if let Some(seq) = v.reused_from {
                    let earlier = entries
                        .get(seq as usize)
                        .filter(|x| x.seq < e.seq)
                        .ok_or_else(|| {
                            fail(
                                e.line,
                                format!(
                                    "gate {}: reused verdict line {} does not exist",
                                    v.gate,
                                    seq + 1
                                ),
                            )
                        })?;
                    match &earlier.record {
                        LogRecord::GateVerdict(o)
                            if o.gate == v.gate
                                && o.inputs == v.inputs
                                && o.outcome == Outcome::Green
                                && o.evidence == v.evidence
                                && o.reused_from.is_none() => {}
                        _ => {
                            return Err(fail(
                                e.line,
                                format!(
                                    "gate {}: reuses line {} which is not a green verdict with the same inputs",
                                    v.gate,
                                    seq + 1
                                ),
                            ));
                        }
                    }
                    if v.outcome != Outcome::Green {
                        return Err(fail(
                            e.line,
                            format!("gate {}: a reused verdict must be green", v.gate),
                        ));
                    }
                } else {
                    match &v.evidence {
                        Some(d) => {
                            let ev_bytes = blob(&rec, d, e.line)?;
                            let ev: serde_json::Value =
                                serde_json::from_slice(&ev_bytes).map_err(|err| {
                                    fail(
                                        e.line,
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
                                signers: signers_text.as_deref(),
                                pipeline: &r.pipeline,
                                blobs: &rec,
                            };
                            let again = gates::judge(gate, &ev, &jcx);
                            report.verdicts_rejudged += 1;
                            if again.outcome != v.outcome || again.reasons != v.reasons {
                                return Err(fail(
                                    e.line,
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
                        }
                        None => {
                            if v.outcome != Outcome::Red {
                                return Err(fail(
                                    e.line,
                                    format!(
                                        "gate {}: a verdict without evidence must be red",
                                        v.gate
                                    ),
                                ));
                            }
                        }
                    }
                }
                states.insert(v.gate.clone(), v.outcome);
            }
            LogRecord::GateSkipped(s) => {
                let Some((_, r, _)) = &run else {
                    return Err(fail(e.line, "a skipped gate before any run started"));
                };
                let gate = r.pipeline.gate(&s.gate).ok_or_else(|| {
                    fail(
                        e.line,
                        format!("gate {} is not in the recorded pipeline", s.gate),
                    )
                })?;
                if crate::engine::schedule::not_applicable(gate, &r.pipeline, &r.version).is_none()
                {
                    return Err(fail(
                        e.line,
                        format!("gate {} was skipped but applies to this release", s.gate),
                    ));
                }
                skipped.push(s.gate.clone());
            }
            LogRecord::Publish(p) => {
                let Some((_, r, _)) = &run else {
                    return Err(fail(e.line, "a publish before any run started"));
                };
                if r.dry_run {
                    return Err(fail(e.line, "a dry run published"));
                }
                if p.subject != r.subject {
                    return Err(fail(
                        e.line,
                        "published another subject than the run staged",
                    ));
                }
                for g in &r.pipeline.gates {
                    let ok = skipped.contains(&g.id) || states.get(&g.id) == Some(&Outcome::Green);
                    if !ok {
                        return Err(fail(
                            e.line,
                            format!("published although gate {} was not green in this run", g.id),
                        ));
                    }
                }
                report.published = true;
            }
            LogRecord::GateStarted(_)
            | LogRecord::GateBlocked(_)
            | LogRecord::GateAborted(_)
            | LogRecord::Published(_)
            | LogRecord::RunFinished(_)
            | LogRecord::RecoveredTornTail(_) => {
                if run.is_none() && !matches!(e.record, LogRecord::RecoveredTornTail(_)) {
                    return Err(fail(
                        e.line,
                        format!("{} before any run started", e.record.kind()),
                    ));
                }
            }
        }
    }

    // The checkpoint must cover every line, and be signed by a key the signers trust.
    let last = last_run.ok_or_else(|| fail(0, "the log holds no run"))?;
    let text = std::fs::read_to_string(dir.join(CHECKPOINT_FILE))
        .map_err(|e| fail(0, format!("cannot read the checkpoint: {e}")))?;
    let cp = Checkpoint::parse(&text).map_err(|m| fail(0, m))?;
    if cp.size != entries.len() as u64 {
        return Err(fail(
            entries.len().min(cp.size as usize).max(1),
            format!(
                "the signed checkpoint covers {} lines but the log has {} (lines removed or added at the end)",
                cp.size,
                entries.len()
            ),
        ));
    }
    if cp.head != head.hex() {
        return Err(fail(
            entries.len(),
            "the signed checkpoint's head does not match the log",
        ));
    }
    if cp.origin != format!("relgate/{}/{}", last.project, last.version) {
        return Err(fail(
            0,
            format!("the checkpoint speaks of {}, not this release", cp.origin),
        ));
    }
    let key_info = last.checkpoint_key.as_ref().ok_or_else(|| {
        fail(
            0,
            "the checkpoint is not signed: the signing key was not available",
        )
    })?;
    let sig = std::fs::read_to_string(dir.join(CHECKPOINT_SIG_FILE))
        .map_err(|e| fail(0, format!("cannot read checkpoint.sig: {e}")))?;
    let key = ssh_key::PublicKey::from_openssh(&key_info.public)
        .map_err(|e| fail(0, format!("recorded checkpoint key does not parse: {e}")))?;
    sshsig::verify_with_key(&key, sshsig::NS_CHECKPOINT, text.as_bytes(), &sig)
        .map_err(|e| fail(0, format!("checkpoint signature: {e}")))?;
    if key_info.throwaway {
        if !last.dry_run {
            return Err(fail(
                0,
                "the checkpoint of a real release is signed with a throwaway key",
            ));
        }
        report
            .notes
            .push("dry run: the checkpoint is signed with a throwaway key".into());
        report.checkpoint_signer = Some(format!("throwaway key {}", key_info.fingerprint));
    } else {
        let signer = last
            .pipeline
            .sign_gate()
            .map(|(_, s)| s.signer.clone())
            .ok_or_else(|| fail(0, "the recorded pipeline has no sign gate"))?;
        let text = match signers_override {
            Some(t) => t.to_string(),
            None => {
                let d = last
                    .signers
                    .as_ref()
                    .ok_or_else(|| fail(0, "no allowed_signers recorded"))?;
                String::from_utf8(rec.get(d).map_err(|e| fail(0, e.to_string()))?)
                    .map_err(|_| fail(0, "recorded allowed_signers is not UTF-8"))?
            }
        };
        let allowed = signers::parse(&text).map_err(|errs| {
            fail(
                0,
                format!(
                    "allowed_signers: {}",
                    errs.first().map(|e| e.to_string()).unwrap_or_default()
                ),
            )
        })?;
        let fp = sshsig::fingerprint(&key);
        let trusted = allowed
            .keys_for(&signer, sshsig::NS_CHECKPOINT, last.started_at)
            .iter()
            .any(|k| sshsig::fingerprint(k) == fp);
        if !trusted {
            return Err(fail(
                0,
                format!(
                    "the checkpoint is signed by {fp}, which allowed_signers does not list for {signer}"
                ),
            ));
        }
        report.checkpoint_signer = Some(format!("{signer} ({fp})"));
    }
    Ok(())
}

fn blob(rec: &Record, digest: &str, line: usize) -> Result<Vec<u8>, Problem> {
    rec.get(digest).map_err(|e| fail(line, e.to_string()))
}

fn check_run_started(rec: &Record, e: &Entry, r: &RunStarted) -> Result<(), Problem> {
    let sums = blob(rec, &r.sums, e.line)?;
    if format!("sha256:{}", digest::sha256_hex(&sums)) != r.subject {
        return Err(fail(
            e.line,
            "the recorded SHA256SUMS does not hash to the subject",
        ));
    }
    if stage::sums_text(&r.artefacts) != sums {
        return Err(fail(
            e.line,
            "the recorded artefact list does not match SHA256SUMS",
        ));
    }
    match r.sources.first() {
        Some(src) if digest::sha256_hex(src.text.as_bytes()) == r.pipeline_digest => Ok(()),
        _ => Err(fail(
            e.line,
            "the recorded pipeline text does not match its digest",
        )),
    }
}

fn check_evidence_dir(dir: &Path) -> Result<(), Problem> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        record::read_blob(dir, &name).map_err(|e| fail(0, format!("evidence/{name}: {e}")))?;
    }
    Ok(())
}
