//! Recovery of a run killed between putting the release in place and recording it.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;

use super::*;

/// Finish a publish that a killed run left between the rename and its `published` record.
///
/// Returns `Ok(None)` unless the record's log ends with a `publish` to `to` (nothing after it
/// but torn-tail recovery, and possibly that run's `published` and `run-finished` without a
/// checkpoint covering them) and the folder at `to` is that very release: its `audit/log.jsonl`
/// is the log up to that `publish` line (same length and chain head) and its `SHA256SUMS`
/// hashes to the recorded subject. Then `published` and `run-finished` are recorded for that
/// run, the checkpoint is signed again, and the release counts as published. Anything else
/// at `to` stays a hard failure.
/// What a destination holds, as far as recovery needs it.
pub(super) struct Found<'a> {
    pub sums: Option<&'a [u8]>,
    pub audit_log: Option<&'a [u8]>,
}

pub(super) fn complete_interrupted_publish(
    opts: &RunOptions,
    dest: &Destination,
    found: Found<'_>,
    events: &UnboundedSender<Event>,
) -> Result<Option<RunSummary>, RunError> {
    let to = dest.describe();
    let p = &opts.pipeline;
    let record = Record::new(record_dir(p, &opts.version, false));
    if !record.log_path().is_file() {
        return Ok(None);
    }
    let _lock = lock_record(&record)?;
    // The publish decision must be one the release signer's checkpoint covers (it is written
    // before any file moves); a record that does not verify is never completed.
    let trust = crate::trust::TrustRoot::from_pipeline(p)?;
    let verified = crate::log::attest::read_for_use(&record.dir, &trust).map_err(|problem| {
        RunError::Tampered {
            dir: record.dir.clone(),
            problem,
        }
    })?;
    let (writer, prior) = LogWriter::open(&record.log_path())?;
    let Some(at) = prior
        .iter()
        .rposition(|e| matches!(e.record, LogRecord::Publish(_)))
    else {
        return Ok(None);
    };
    let LogRecord::Publish(intent) = &prior[at].record else {
        return Ok(None);
    };
    if !verified.trusted.get(at).copied().unwrap_or(false) {
        return Ok(None);
    }
    if intent.to != to {
        return Ok(None);
    }
    // The run may also have died after recording `published`, or after `run-finished` but
    // before sealing the log with its checkpoint: complete whatever is missing.
    let mut already_published = false;
    let mut already_finished = false;
    for e in &prior[at + 1..] {
        match &e.record {
            LogRecord::RecoveredTornTail(_) => {}
            LogRecord::Published(done)
                if done.run == intent.run && done.to == intent.to && !already_published =>
            {
                already_published = true;
            }
            // Told after the release was in place, before the run recorded its end.
            LogRecord::Notification(n)
                if n.run == intent.run && already_published && !already_finished => {}
            LogRecord::RunFinished(f)
                if f.run == intent.run
                    && f.decision == Decision::Published
                    && already_published
                    && !already_finished =>
            {
                already_finished = true;
            }
            _ => return Ok(None),
        }
    }
    if already_finished {
        // A checkpoint covering every line means the run completed normally: nothing to do.
        let sealed = std::fs::read_to_string(record.dir.join(crate::record::CHECKPOINT_FILE))
            .ok()
            .and_then(|t| log::checkpoint::Checkpoint::parse(&t).ok())
            .is_some_and(|cp| cp.size == prior.len() as u64);
        if sealed {
            return Ok(None);
        }
    }
    let same_log = found
        .audit_log
        .and_then(|bytes| log::read_log(bytes).ok())
        .is_some_and(|(entries, head)| entries.len() == at + 1 && head == prior[at].head);
    let same_sums = found
        .sums
        .is_some_and(|sums| format!("sha256:{}", sha256_hex(sums)) == intent.subject);
    if !same_log || !same_sums {
        return Ok(None);
    }
    // The run that decided to publish, as the lines up to its decision leave it.
    let view = crate::view::ReleaseView::new(&prior[..=at]);
    let Some(run) = view.run(intent.run) else {
        return Ok(None);
    };
    let started = run.start.body;
    if started.dry_run {
        return Ok(None);
    }
    // What is there must be the whole release, signed by the release signer: its record and
    // sums alone could be copied next to other bytes.
    if let Destination::Local(local) = dest
        && crate::verify::check(
            &crate::folder::LocalFolder::new(&local.path),
            &trust,
            started.started_at,
        )
        .is_err()
    {
        return Ok(None);
    }
    // The checkpoint must stay signed by the key the run recorded, or replay would reject it.
    let (key, _) = checkpoint_key(p, false);
    let recorded = started.checkpoint_key.as_ref().map(|k| &k.fingerprint);
    if key.as_ref().map(|(_, k)| &k.fingerprint) != recorded {
        return Err(RunError::KeyChanged { to: to.to_string() });
    }
    let log: SharedLog = Arc::new(Mutex::new(writer));
    if !already_published {
        append(
            &log,
            LogRecord::Published(log::Published {
                run: intent.run,
                to: intent.to.clone(),
            }),
        )?;
    }
    if !already_finished {
        append(
            &log,
            LogRecord::RunFinished(RunFinished {
                run: intent.run,
                decision: Decision::Published,
                exit_code: exit::SUCCESS,
                message: Some("completed a publish interrupted after the rename".into()),
            }),
        )?;
    }
    write_checkpoint(
        &log,
        &record,
        key.as_ref().map(|(k, _)| k),
        &origin(p, &opts.version),
    )?;
    let message = format!(
        "run {} was interrupted after publishing {}; its completion is now recorded",
        intent.run, to
    );
    let _ = events.send(Event::Published { to: to.clone() });
    let _ = events.send(Event::Finished {
        decision: Decision::Published,
        exit_code: exit::SUCCESS,
        message: Some(message.clone()),
    });
    // The gates as that run left them.
    let mut gates = Vec::new();
    for g in &run.gates {
        let (state, evidence) = match g.status {
            crate::view::GateStatus::Verdict(v) => (
                outcome_state(
                    v.body.outcome,
                    v.body.reasons.clone(),
                    v.body.reused_from.is_some(),
                ),
                v.body.evidence.clone(),
            ),
            crate::view::GateStatus::Skipped(s) => (
                GateState::Skipped {
                    reason: s.body.reason.clone(),
                },
                None,
            ),
            _ => continue,
        };
        gates.push(GateSummary {
            id: g.id().to_string(),
            kind: g.kind().to_string(),
            state,
            elapsed_ms: g.duration_ms().unwrap_or(0),
            evidence,
            notes: Vec::new(),
            may_still_sign: None,
        });
    }
    Ok(Some(RunSummary {
        decision: Decision::Published,
        exit_code: exit::SUCCESS,
        subject: started.subject.clone(),
        record: record.dir.clone(),
        published: Some(to.clone()),
        gates,
        message: Some(message),
        notifications: Vec::new(),
    }))
}
