//! Recovery of a run killed between putting the release in place and recording it.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;

use super::*;

/// What a destination holds, as far as recovery needs it.
pub(super) struct Found<'a> {
    pub sums: Option<&'a [u8]>,
    pub audit_log: Option<&'a [u8]>,
}

/// Finish a publish that a killed run left between the rename and its `published` record.
///
/// Returns `Ok(None)` unless the record's log ends with a `publish` to `to` (nothing after it
/// but torn-tail recovery, and possibly that run's `published` and `run-finished` without a
/// checkpoint covering them) and the folder at `to` is that very release: its `audit/log.jsonl`
/// is the log up to that `publish` line (same length and chain head) and its `SHA256SUMS`
/// hashes to the recorded subject. Then `published` and `run-finished` are recorded for that
/// run, the checkpoint is signed again, and the release counts as published. Anything else
/// at `to` stays a hard failure.
///
/// Its steps, in this order: every check (the record, the interrupted publish, the release at
/// the target, the key) before the first line is written, then the lines, then the reporters.
pub(super) fn complete_interrupted_publish(
    opts: &RunOptions,
    dest: &Destination,
    found: Found<'_>,
    events: &UnboundedSender<Event>,
) -> Result<Option<RunSummary>, RunError> {
    let to = dest.describe();
    // 1. The record, locked and verified, its log open.
    let Some((opened, writer)) = open_record(opts)? else {
        return Ok(None);
    };
    // 2. The publish to `to` that its run did not see through.
    let Some(left) = interrupted_publish(&opened, &to) else {
        return Ok(None);
    };
    // 3. What reached the target is that publish's release: its log and sums, then, for a
    //    real run, the whole of it.
    if !same_release(&found, &opened.prior, &left) {
        return Ok(None);
    }
    // The run that decided to publish, as the lines up to its decision leave it.
    let view = crate::view::ReleaseView::new(&opened.prior[..=left.at]);
    let Some(run) = view.run(left.intent.run) else {
        return Ok(None);
    };
    let started = run.start.body;
    if started.dry_run || !whole_release_there(dest, &opened.trust, started.started_at) {
        return Ok(None);
    }
    // 4. The key that signs the checkpoint is the one the run recorded.
    let key = recorded_key(&opts.pipeline, started, &to)?;
    // 5. Record what is missing, and seal the log again.
    record_completion(opts, &opened.record, writer, &left, key.as_ref())?;
    // 6. Tell, and summarise the run as it ended.
    let message = tell(events, left.intent.run, &to);
    Ok(Some(RunSummary {
        decision: Decision::Published,
        exit_code: exit::SUCCESS,
        subject: started.subject.clone(),
        record: opened.record.dir.clone(),
        published: Some(to),
        gates: gates_as_left(run),
        message: Some(message),
        notifications: Vec::new(),
    }))
}

/// The release record as recovery reads it; its lock is held until recovery ends.
struct Opened {
    record: Record,
    trust: crate::trust::TrustRoot,
    /// Per line: attested in time by a checkpoint under the trust root.
    trusted: Vec<bool>,
    /// The log's lines, as its writer found them.
    prior: Vec<Entry>,
    _lock: std::fs::File,
}

/// Open the version's record: locked first, then verified under the pipeline's trust root
/// (a record that does not verify is never completed), then its log opened for appending (its
/// writer returned beside it). `None` when there is no log, so nothing to complete.
fn open_record(opts: &RunOptions) -> Result<Option<(Opened, LogWriter)>, RunError> {
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
    let opened = Opened {
        record,
        trust,
        trusted: verified.trusted,
        prior,
        _lock,
    };
    Ok(Some((opened, writer)))
}

/// A publish its run did not see through, and what of its end the log already holds.
struct Interrupted<'a> {
    /// Its line's index in the log.
    at: usize,
    intent: &'a log::Publish,
    already_published: bool,
    already_finished: bool,
}

/// The log's last `publish`, when it is attested in time, goes to `to`, and its run did not
/// finish: nothing after it but what that run itself wrote before dying unsealed.
fn interrupted_publish<'a>(opened: &'a Opened, to: &str) -> Option<Interrupted<'a>> {
    let prior = &opened.prior;
    let at = prior
        .iter()
        .rposition(|e| matches!(e.record, LogRecord::Publish(_)))?;
    let LogRecord::Publish(intent) = &prior[at].record else {
        return None;
    };
    if !opened.trusted.get(at).copied().unwrap_or(false) {
        return None;
    }
    if intent.to != to {
        return None;
    }
    let (already_published, already_finished) = what_followed(&prior[at + 1..], intent)?;
    // A checkpoint covering every line means the run completed normally: nothing to do.
    if already_finished && sealed(&opened.record, prior.len()) {
        return None;
    }
    Some(Interrupted {
        at,
        intent,
        already_published,
        already_finished,
    })
}

/// The lines after the `publish`: whether its run recorded `published` and `run-finished`
/// (in that order; notifications between them). The run may have died after recording
/// `published`, or after `run-finished` but before sealing the log with its checkpoint.
/// `None` when anything else follows.
fn what_followed(after: &[Entry], intent: &log::Publish) -> Option<(bool, bool)> {
    let mut already_published = false;
    let mut already_finished = false;
    for e in after {
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
            _ => return None,
        }
    }
    Some((already_published, already_finished))
}

/// Whether the record's checkpoint covers all `lines` of its log.
fn sealed(record: &Record, lines: usize) -> bool {
    std::fs::read_to_string(record.dir.join(crate::record::CHECKPOINT_FILE))
        .ok()
        .and_then(|t| log::checkpoint::Checkpoint::parse(&t).ok())
        .is_some_and(|cp| cp.size == lines as u64)
}

/// Whether the target's `audit/log.jsonl` is the log up to the `publish` line (same length
/// and chain head) and its `SHA256SUMS` hashes to the subject that line names.
fn same_release(found: &Found<'_>, prior: &[Entry], left: &Interrupted<'_>) -> bool {
    let same_log = found
        .audit_log
        .and_then(|bytes| log::read_log(bytes).ok())
        .is_some_and(|(entries, head)| entries.len() == left.at + 1 && head == prior[left.at].head);
    let same_sums = found
        .sums
        .is_some_and(|sums| format!("sha256:{}", sha256_hex(sums)) == left.intent.subject);
    same_log && same_sums
}

/// What is there must be the whole release, signed by the release signer: its record and
/// sums alone could be copied next to other bytes. Checked where it can be read as a folder
/// (a local target).
fn whole_release_there(
    dest: &Destination,
    trust: &crate::trust::TrustRoot,
    started_at: i64,
) -> bool {
    if let Destination::Local(local) = dest
        && crate::verify::check(
            &crate::folder::LocalFolder::new(&local.path),
            trust,
            started_at,
        )
        .is_err()
    {
        return false;
    }
    true
}

/// The key to sign the checkpoint with: it must be the one the run recorded, or replay would
/// reject the checkpoint.
fn recorded_key(
    p: &Pipeline,
    started: &log::RunStarted,
    to: &str,
) -> Result<Option<(crate::signkey::SignKey, log::CheckpointKey)>, RunError> {
    let (key, _) = checkpoint_key(p, false);
    let recorded = started.checkpoint_key.as_ref().map(|k| &k.fingerprint);
    if key.as_ref().map(|(_, k)| &k.fingerprint) != recorded {
        return Err(RunError::KeyChanged { to: to.to_string() });
    }
    Ok(key)
}

/// Append what the run did not record — `published`, then `run-finished` — and sign a
/// checkpoint covering them.
fn record_completion(
    opts: &RunOptions,
    record: &Record,
    writer: LogWriter,
    left: &Interrupted<'_>,
    key: Option<&(crate::signkey::SignKey, log::CheckpointKey)>,
) -> Result<(), RunError> {
    let intent = left.intent;
    let log: SharedLog = Arc::new(Mutex::new(writer));
    if !left.already_published {
        append(
            &log,
            LogRecord::Published(log::Published {
                run: intent.run,
                to: intent.to.clone(),
            }),
        )?;
    }
    if !left.already_finished {
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
        record,
        key.map(|(k, _)| k),
        &origin(&opts.pipeline, &opts.version),
    )
}

/// Tell the reporters the release is published and the run finished; the note on how it
/// ended.
fn tell(events: &UnboundedSender<Event>, run: u32, to: &str) -> String {
    let message =
        format!("run {run} was interrupted after publishing {to}; its completion is now recorded");
    let _ = events.send(Event::Published { to: to.to_string() });
    let _ = events.send(Event::Finished {
        decision: Decision::Published,
        exit_code: exit::SUCCESS,
        message: Some(message.clone()),
    });
    message
}

/// The gates as the interrupted run left them.
fn gates_as_left(run: &crate::view::RunView<'_>) -> Vec<GateSummary> {
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
    gates
}
