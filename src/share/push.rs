//! What `run` leaves on the share once a run is over: the record's new checkpoints, and the
//! run's report — for a run that awaits sign-offs, the open request approvers sign from. A dry
//! run leaves its whole record (it would die with a CI runner) and a report its throwaway key
//! signs. Nothing here changes the run's outcome: what could not be pushed is said, and the
//! next run pushes it.

use std::path::Path;

use super::report::{Authors, FindingLine, GateLine, RunReport, Sealed};
use super::{Share, Store, layout};
use crate::engine::{GateState, GateSummary, RunSummary};
use crate::gates::Code;
use crate::gates::security_review::{SecurityReviewEvidence, analyse};
use crate::gates::signoff::SignoffEvidence;
use crate::log::{Entry, Record as LogRecord, RunStarted};
use crate::model::{GateKind, Pipeline};
use crate::record::{Blobs, Record};

/// What was pushed, and what could not be.
#[derive(Debug, Default)]
pub struct Pushed {
    /// Lines for the terminal, each worth saying.
    pub notes: Vec<String>,
    /// Where the run's report is on the share.
    pub report: Option<String>,
    /// For a run awaiting sign-offs: each eligible principal's approve command.
    pub commands: Vec<String>,
}

/// Why part of what a run leaves could not be pushed: shown as a note, never fatal.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("cannot read the log: {0}")]
    ReadLog(#[source] std::io::Error),
    #[error("the log does not read: line {line}: {message}")]
    ParseLog { line: usize, message: String },
    #[error("the pipeline has no sign gate")]
    NoSignGate,
    /// The sign gate's `key` names no usable path (an unset variable, empty).
    #[error("{0}")]
    KeyPath(String),
    #[error(transparent)]
    Key(#[from] crate::sshsig::SshsigError),
    #[error(transparent)]
    Share(#[from] super::ShareError),
    /// The record's files could not be listed.
    #[error(transparent)]
    List(crate::audit::AuditError),
    #[error("{rel}: {source}")]
    File {
        rel: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the log holds no run")]
    NoRun,
    #[error(transparent)]
    Evidence(#[from] crate::record::RecordError),
    #[error("the recorded signers are not UTF-8")]
    SignersNotUtf8,
}

/// Push what a finished run left: checkpoints (or, for a dry run, the record) first, then the
/// report that names them.
pub async fn after_run(
    share: &Share,
    p: &Pipeline,
    version: &str,
    summary: &RunSummary,
    dry_run: bool,
) -> Pushed {
    let mut out = Pushed::default();
    let record = Record::new(&summary.record);
    let entries = match read_entries(&record.dir) {
        Ok(e) => e,
        Err(why) => {
            out.notes.push(format!("share: nothing pushed: {why}"));
            return out;
        }
    };
    let Some(id) = super::sync::record_id(&entries) else {
        out.notes
            .push("share: nothing pushed: the record holds no log".into());
        return out;
    };
    let pushed = if dry_run {
        push_record(share, &p.project, version, &id, &record.dir).await
    } else {
        push_checkpoints(share, &p.project, version, &id, &record.dir).await
    };
    if let Err(why) = pushed {
        out.notes.push(format!(
            "share: the record's checkpoints were not all pushed ({why}); the next run pushes \
             them"
        ));
    }
    let key = match report_key(p, dry_run) {
        Ok(k) => k,
        Err(why) => {
            out.notes.push(format!(
                "share: the run's report was not pushed: {why} (the release key signs it)"
            ));
            return out;
        }
    };
    let report = match build(share, p, version, summary, &record, &entries, &id, &key) {
        Ok(r) => r,
        Err(why) => {
            out.notes
                .push(format!("share: the run's report was not pushed: {why}"));
            return out;
        }
    };
    let signed = super::report::sign(&report, &key);
    let (bytes, name, sig) = match signed {
        Ok(s) => s,
        Err(why) => {
            out.notes
                .push(format!("share: the run's report was not pushed: {why}"));
            return out;
        }
    };
    let at = format!("{}/{name}", layout::runs_dir(&p.project, version, dry_run));
    let put = async {
        share
            .put(&format!("{at}{}", layout::SIG), sig.as_bytes())
            .await?;
        share.put(&at, &bytes).await
    };
    match put.await {
        Ok(_) => {
            out.report = Some(share.shown(&at));
            out.commands = report.approve;
        }
        Err(e) => out.notes.push(format!(
            "share: the run's report was not pushed ({e}); run again to push it"
        )),
    }
    out
}

fn read_entries(dir: &Path) -> Result<Vec<Entry>, PushError> {
    let bytes = crate::record::read_capped(
        &dir.join(crate::record::LOG_FILE),
        crate::record::MAX_LOG_BYTES,
    )
    .map_err(PushError::ReadLog)?;
    crate::log::read_log(&bytes)
        .map(|(e, _)| e)
        .map_err(|p| PushError::ParseLog {
            line: p.line,
            message: p.message,
        })
}

/// The key that signs the report: the release key, or for a dry run a throwaway one.
fn report_key(p: &Pipeline, dry_run: bool) -> Result<ssh_key::PrivateKey, PushError> {
    if dry_run {
        return Ok(crate::sshsig::throwaway_key()?);
    }
    let (_, spec) = p.sign_gate().ok_or(PushError::NoSignGate)?;
    let path = crate::gates::sign::key_path(spec, &p.root).map_err(PushError::KeyPath)?;
    Ok(crate::sshsig::load_private_key(&path)?)
}

/// Every signed checkpoint of the record that the share does not hold yet.
async fn push_checkpoints(
    share: &Share,
    project: &str,
    version: &str,
    id: &str,
    dir: &Path,
) -> Result<(), PushError> {
    let history = dir.join(crate::log::checkpoint::HISTORY_DIR);
    let to = layout::checkpoints_dir(project, version, id);
    let there = share.list(&to).await?;
    let mut names: Vec<String> = match std::fs::read_dir(&history) {
        Ok(d) => d
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| crate::log::checkpoint::is_history_name(n) && !n.ends_with(layout::SIG))
            .collect(),
        Err(_) => return Ok(()),
    };
    names.sort();
    for name in names {
        // `list` is sorted.
        if there.binary_search(&name).is_ok() {
            continue;
        }
        let sig_name = format!("{name}{}", layout::SIG);
        let read = |n: &str| crate::record::read_capped(&history.join(n), 64 << 10);
        // An unsigned checkpoint attests nothing; it is not shared.
        let (Ok(text), Ok(sig)) = (read(&name), read(&sig_name)) else {
            continue;
        };
        share.put(&format!("{to}/{sig_name}"), &sig).await?;
        share.put(&format!("{to}/{name}"), &text).await?;
    }
    Ok(())
}

/// A dry run's whole record (not its staged copies), log last: a reader that finds the log
/// finds what it names.
async fn push_record(
    share: &Share,
    project: &str,
    version: &str,
    id: &str,
    dir: &Path,
) -> Result<(), PushError> {
    let to = layout::record_dir(project, version, true, id);
    let files = crate::audit::list_files(dir).map_err(PushError::List)?;
    let mut files: Vec<String> = files
        .into_iter()
        .filter(|rel| {
            let first = rel.split('/').next().unwrap_or_default();
            first != crate::record::STAGED_DIR
                && !rel.split('/').any(|part| part.starts_with('.'))
                && !first.starts_with("log.torn-")
                && layout::check_path(rel).is_ok()
        })
        .collect();
    files.sort_by_key(|rel| rel == crate::record::LOG_FILE);
    for rel in files {
        let cap = if rel == crate::record::LOG_FILE {
            crate::record::MAX_LOG_BYTES
        } else {
            crate::record::MAX_EVIDENCE_BYTES
        };
        let bytes =
            crate::record::read_capped(&dir.join(&rel), cap).map_err(|source| PushError::File {
                rel: rel.clone(),
                source,
            })?;
        share.put(&format!("{to}/{rel}"), &bytes).await?;
    }
    Ok(())
}

/// The report of the run `summary` describes.
#[allow(clippy::too_many_arguments)]
fn build(
    share: &Share,
    p: &Pipeline,
    version: &str,
    summary: &RunSummary,
    record: &Record,
    entries: &[Entry],
    id: &str,
    key: &ssh_key::PrivateKey,
) -> Result<RunReport, PushError> {
    let run: &RunStarted = entries
        .iter()
        .rev()
        .find_map(|e| match &e.record {
            LogRecord::RunStarted(r) => Some(r.as_ref()),
            _ => None,
        })
        .ok_or(PushError::NoRun)?;
    let subject_since = entries
        .iter()
        .find_map(|e| match &e.record {
            LogRecord::RunStarted(r) if r.subject == run.subject => Some(r.started_at),
            _ => None,
        })
        .unwrap_or(run.started_at);
    let signers = match &run.signers {
        Some(d) => Some(String::from_utf8(record.get(d)?).map_err(|_| PushError::SignersNotUtf8)?),
        None => None,
    };
    let checkpoint = crate::log::checkpoint::read_stored(
        &record.dir.join(crate::record::CHECKPOINT_FILE),
        crate::record::CHECKPOINT_FILE,
    )
    .ok()
    .and_then(|s| {
        Some(Sealed {
            text: s.text,
            sig: s.sig?,
        })
    });
    let fingerprint = crate::sshsig::fingerprint(key.public_key());
    let decision = serde_json::to_value(summary.decision)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let pending = summary.decision == crate::log::Decision::Pending;
    // Who could sign now: in the role and not barred (the judge's list), with a key that
    // `signers` allows for sign-offs today (an expired key would only be refused).
    let allowed = signers
        .as_deref()
        .and_then(|t| crate::signers::parse(t).ok());
    let can_sign = |who: &str| {
        allowed.as_ref().is_some_and(|s| {
            !s.keys_for(who, crate::sshsig::NS_APPROVAL, super::now())
                .is_empty()
        })
    };
    let mut approve = Vec::new();
    if pending {
        for g in &summary.gates {
            for who in g.may_still_sign.iter().flatten().filter(|w| can_sign(w)) {
                approve.push(format!(
                    "relgate approve --from {} --release {}/{version} --gate {} --key KEY --as {} \
                     --trust-key {fingerprint}",
                    share.describe(),
                    p.project,
                    g.id,
                    who
                ));
            }
        }
    }
    Ok(RunReport {
        kind: super::report::REPORT_TYPE.into(),
        project: p.project.clone(),
        version: version.into(),
        dry_run: run.dry_run,
        run: run.run,
        record: id.into(),
        time: super::rfc3339(super::now()),
        started_at: run.started_at,
        decision,
        exit_code: summary.exit_code,
        message: summary.message.clone(),
        operator: run.operator.clone(),
        subject: run.subject.clone(),
        subject_since,
        policy: crate::digest::policy_digest(&run.sources),
        sources: run.sources.clone(),
        pipeline: run.pipeline.clone(),
        signers,
        artefacts: run.artefacts.clone(),
        gates: summary.gates.iter().map(gate_line).collect(),
        findings: findings(&run.pipeline, &summary.gates, record, run.started_at),
        authors: authors(&summary.gates, record),
        checkpoint,
        key: fingerprint,
        approve,
        published: summary.published.clone(),
    })
}

fn gate_line(g: &GateSummary) -> GateLine {
    let (reasons, waiting_on) = match &g.state {
        GateState::Red { reasons } | GateState::Pending { reasons } => (reasons.clone(), vec![]),
        GateState::Blocked { waiting_on } | GateState::Waiting { waiting_on } => {
            (vec![], waiting_on.clone())
        }
        GateState::Skipped { reason } => (
            vec![crate::gates::Reason::new(Code::GateSkipped, reason.clone())],
            vec![],
        ),
        GateState::Green { .. } | GateState::Aborted => (vec![], vec![]),
    };
    GateLine {
        id: g.id.clone(),
        kind: g.kind.clone(),
        state: g.state.label().into(),
        reasons,
        waiting_on,
        may_still_sign: g.may_still_sign.clone(),
    }
}

/// The findings of each security review of the run that are not fixed, with their owners.
fn findings(p: &Pipeline, gates: &[GateSummary], record: &Record, now: i64) -> Vec<FindingLine> {
    let mut out = Vec::new();
    for g in gates {
        let Some(GateKind::SecurityReview(spec)) = p.gate(&g.id).map(|s| &s.kind) else {
            continue;
        };
        let Some(ev) = g
            .evidence
            .as_ref()
            .and_then(|d| record.get(d).ok())
            .and_then(|b| serde_json::from_slice::<SecurityReviewEvidence>(&b).ok())
        else {
            continue;
        };
        for row in analyse(spec, &ev, record, now).rows {
            if row.status.as_deref() == Some("fixed") {
                continue;
            }
            out.push(FindingLine {
                gate: g.id.clone(),
                finding: row.finding,
                severity: row.severity,
                owner: row.owner,
                ticket: row.ticket,
                due: row.due,
                status: row.status,
            });
        }
    }
    out
}

/// The commit authors a signoff gate of the run read, with the raw `git log` they come from.
fn authors(gates: &[GateSummary], record: &Record) -> Option<Authors> {
    gates.iter().filter(|g| g.kind == "signoff").find_map(|g| {
        let ev: SignoffEvidence =
            serde_json::from_slice(&record.get(g.evidence.as_ref()?).ok()?).ok()?;
        let evidence = ev.authors?;
        let log = match &evidence.log {
            Some(d) => Some(<base64ct::Base64 as base64ct::Encoding>::encode_string(
                &record.get(d).ok()?,
            )),
            None => None,
        };
        Some(Authors { evidence, log })
    })
}
