//! The steps of a run after its last gate: decide, publish (write-ahead), notify, seal the log
//! and say how the run ended.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::keys::{attestation_files, origin, write_checkpoint};
use super::{Event, GateState, GateSummary, Run, RunError, RunOptions, RunSummary, append, team};
use crate::exit;
use crate::log::{self, Decision, Record as LogRecord, RunFinished};
use crate::publish::{self, Destination, ReleaseFiles, Target};
use crate::record::Record;

/// How the run ended, as it is recorded, told and returned.
pub(super) struct Ending {
    pub decision: Decision,
    pub exit_code: i32,
    /// Where the release was published, as the destination names itself.
    pub published: Option<String>,
    /// Why the run refused although no gate is red (a failed publish), or a note on how it
    /// ended.
    pub message: Option<String>,
}

/// Decide from the gates' states alone: aborted, refused, a dry run, pending, or to publish.
pub(super) fn decide(
    results: &BTreeMap<String, GateSummary>,
    opts: &RunOptions,
) -> (Decision, i32) {
    let any = |f: fn(&GateState) -> bool| results.values().any(|g| f(&g.state));
    if any(|s| matches!(s, GateState::Aborted)) || *opts.cancel.borrow() {
        (Decision::Aborted, exit::REFUSED)
    } else if any(|s| matches!(s, GateState::Red { .. })) {
        (Decision::Refused, exit::REFUSED)
    } else if opts.dry_run {
        (Decision::DryRun, exit::SUCCESS)
    } else if any(|s| {
        matches!(
            s,
            GateState::Pending { .. } | GateState::Waiting { .. } | GateState::Blocked { .. }
        )
    }) {
        (Decision::Pending, exit::PENDING)
    } else {
        (Decision::Published, exit::SUCCESS)
    }
}

impl Run {
    /// Publish when so decided: the release's lease taken, the release put in place
    /// (write-ahead), the lease given back.
    pub(super) async fn publish(
        &self,
        decision: Decision,
        exit_code: i32,
    ) -> Result<Ending, RunError> {
        let mut ending = Ending {
            decision,
            exit_code,
            published: None,
            message: None,
        };
        // One publisher at a time: another machine holding the release's lease stops this one.
        let mut lease = None;
        if ending.decision == Decision::Published && self.destination.is_some() {
            let operator = self.opts.operator.as_deref();
            let (share, p, version) = (self.share.as_ref(), &self.p, &self.opts.version);
            match team::take_lease(share, p, version, &self.record_id, operator).await {
                Ok(l) => lease = l,
                Err(not) => {
                    ending.message = Some(not.message);
                    (ending.decision, ending.exit_code) = (Decision::Refused, not.exit_code);
                }
            }
        }
        if ending.decision == Decision::Published
            && let Some(dest) = &self.destination
        {
            self.put(dest, &mut ending).await?;
        }
        if let Some(m) = team::give_back(self.share.as_ref(), lease).await {
            ending.message.get_or_insert(m);
        }
        Ok(ending)
    }

    /// Put the release in place, write-ahead; `published` once it is there.
    async fn put(&self, dest: &Destination, ending: &mut Ending) -> Result<(), RunError> {
        let to = dest.describe();
        // Write-ahead: the decision to publish, and a checkpoint covering it, before any byte
        // moves. The published record is the log as it stands here.
        append(
            &self.log,
            LogRecord::Publish(log::Publish {
                run: self.run_no,
                to: to.clone(),
                subject: self.staged.subject.clone(),
                files: publish::listed(&self.staged),
            }),
        )?;
        self.checkpoint()?;
        match self.upload(dest, &to).await {
            Ok(()) => {
                append(
                    &self.log,
                    LogRecord::Published(log::Published {
                        run: self.run_no,
                        to: to.clone(),
                    }),
                )?;
                let _ = self.events.send(Event::Published { to: to.clone() });
                ending.published = Some(to);
                (ending.decision, ending.exit_code) = (Decision::Published, exit::SUCCESS);
            }
            Err(e) => {
                ending.message = Some(format!("publish failed: {e}"));
                (ending.decision, ending.exit_code) = (Decision::Refused, exit::REFUSED);
            }
        }
        Ok(())
    }

    /// Gather the release's files and put them at `dest`, telling the reporters how the upload
    /// goes.
    async fn upload(&self, dest: &Destination, to: &str) -> Result<(), publish::PublishError> {
        // The attestation of what was accepted: made from the record as it is published (the
        // log ends with the publish line, the checkpoint covers it), and the release's report,
        // rendered from the record as it now stands.
        let beside = attestation_files(&self.record, self.checkpoint_key.as_ref(), None);
        let mut files = beside.and_then(|b| {
            let report = embedded_report(&self.record, &self.trust)?;
            ReleaseFiles::gather(&self.record, &self.staged, b, report)
        })?;
        let (events, to) = (self.events.clone(), to.to_string());
        files.progress = Some(publish::Progress(Arc::new(move |sent, total| {
            let to = to.clone();
            let _ = events.send(Event::Uploading { to, sent, total });
        })));
        dest.put(&files).await
    }

    /// Tell whoever asked. A notification reports the decision and never changes it, nor the
    /// exit code; how it went is recorded inside the run, before its end.
    pub(super) async fn notify(
        &self,
        results: &BTreeMap<String, GateSummary>,
        ending: &Ending,
    ) -> Result<Vec<crate::notify::Delivery>, RunError> {
        let mut notifications = Vec::new();
        if let Some(event) = crate::notify::event_of(ending.decision, self.opts.dry_run)
            && !self.opts.notify.is_empty()
        {
            let p = &self.p;
            let gates: Vec<&GateSummary> =
                p.gates.iter().filter_map(|g| results.get(&g.id)).collect();
            let msg = crate::notify::Message::for_run(
                event,
                &crate::notify::RunFacts {
                    project: &p.project,
                    version: &self.opts.version,
                    run: self.run_no,
                    subject: &self.staged.subject,
                    decision: ending.decision,
                    exit_code: ending.exit_code,
                    operator: self.opts.operator.as_deref(),
                    published: ending.published.as_deref(),
                    message: ending.message.as_deref(),
                    gates: &gates,
                },
            );
            notifications = crate::notify::deliver_all(&self.opts.notify, event, &msg).await;
            for d in &notifications {
                append(&self.log, LogRecord::Notification(d.record(self.run_no)))?;
            }
        }
        Ok(notifications)
    }

    /// Seal the run: `run-finished`, a checkpoint covering it, and for a dry run that would
    /// publish, the rehearsed attestation.
    pub(super) fn seal(&self, ending: &Ending) -> Result<(), RunError> {
        append(
            &self.log,
            LogRecord::RunFinished(RunFinished {
                run: self.run_no,
                decision: ending.decision,
                exit_code: ending.exit_code,
                message: ending.message.clone(),
            }),
        )?;
        self.checkpoint()?;
        // A dry run that would publish rehearses the attestation too, with its throwaway key,
        // and keeps it in its own record (docs/attestation.md).
        if ending.decision == Decision::DryRun
            && let Some(dest) = &self.destination
        {
            let key = self.checkpoint_key.as_ref();
            let files = attestation_files(&self.record, key, Some(&dest.describe()))?;
            for f in files {
                if let publish::Source::Bytes(bytes) = &f.source {
                    log::checkpoint::atomic_write(&self.record.dir.join(&f.path), bytes)?;
                }
            }
        }
        Ok(())
    }

    /// Say how the run ended: to the reporters, and as its summary (every gate, in pipeline
    /// order).
    pub(super) fn finish(
        self,
        ending: Ending,
        mut results: BTreeMap<String, GateSummary>,
        notifications: Vec<crate::notify::Delivery>,
    ) -> RunSummary {
        let _ = self.events.send(Event::Finished {
            decision: ending.decision,
            exit_code: ending.exit_code,
            message: ending.message.clone(),
        });
        let gates = self
            .p
            .gates
            .iter()
            .filter_map(|g| results.remove(&g.id))
            .collect();
        RunSummary {
            decision: ending.decision,
            exit_code: ending.exit_code,
            subject: self.staged.subject.clone(),
            record: self.record.dir.clone(),
            published: ending.published,
            gates,
            message: ending.message,
            notifications,
        }
    }

    /// A checkpoint over the log as it stands, signed with the run's key.
    fn checkpoint(&self) -> Result<(), RunError> {
        write_checkpoint(
            &self.log,
            &self.record,
            self.checkpoint_key.as_ref().map(|(k, _)| k),
            &origin(&self.p, &self.opts.version),
        )
    }
}

/// The release report for `audit/report.html`, from the record's lines trusted in time under
/// the pipeline's trust root (the same lines replay will rely on when it renders it again).
fn embedded_report(
    record: &Record,
    trust: &crate::trust::TrustRoot,
) -> Result<Vec<u8>, publish::PublishError> {
    let used = crate::log::attest::read_for_use(&record.dir, trust)
        .map_err(|p| publish::PublishError::Record(p.to_string()))?;
    Ok(crate::report::release::embedded(
        &record.dir,
        &used.entries,
        &used.trusted,
    ))
}
