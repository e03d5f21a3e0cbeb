//! The engine: drive one run of a release — stage, record, run gates concurrently along
//! `needs`, decide, publish — writing every step to the log before acting on it.

pub mod events;
mod keys;
mod recover;
pub mod reuse;
pub mod schedule;
mod team;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;

pub use events::{Event, GateState, GateSummary};

use crate::config::SourceFile;
use crate::digest::{canonical_json, sha256_hex};
use crate::exit;
use crate::gates::Outcome;
use crate::log::{self, Decision, Entry, LogWriter, Record as LogRecord, RunFinished, RunStarted};
use crate::model::Pipeline;
use crate::publish::{self, Destination, Existing, ReleaseFiles, Target};
use crate::record::Record;
use crate::stage::{self, Staged};
pub use keys::origin;
use keys::{attestation_files, checkpoint_key, write_checkpoint};

/// What `relgate run` was asked to do, after the pipeline was validated.
pub struct RunOptions {
    pub pipeline: Arc<Pipeline>,
    pub sources: Vec<SourceFile>,
    pub version: String,
    pub dry_run: bool,
    pub operator: Option<String>,
    pub rerun: bool,
    pub cancel: tokio::sync::watch::Receiver<bool>,
    /// The webhooks told about the outcome (`notify:`).
    pub notify: Vec<crate::model::Notify>,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunSummary {
    pub decision: Decision,
    pub exit_code: i32,
    pub subject: String,
    pub record: PathBuf,
    /// Where the release was published, as the destination names itself.
    pub published: Option<String>,
    /// Every gate of the run, in pipeline order.
    pub gates: Vec<GateSummary>,
    /// Why the run refused although no gate is red (a failed publish), or a note on how it
    /// ended (a completed interrupted publish).
    pub message: Option<String>,
    /// How each notification went (never part of the decision).
    pub notifications: Vec<crate::notify::Delivery>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("version {0:?} is not a valid release version (letters, digits, `.`, `_`, `+`, `-`)")]
    BadVersion(String),
    #[error(transparent)]
    Log(#[from] log::writer::LogError),
    #[error(transparent)]
    Record(#[from] crate::record::RecordError),
    #[error(transparent)]
    Stage(#[from] stage::StageError),
    #[error("artefacts: {0}")]
    Artefacts(String),
    #[error("cannot read signers file {path}: {source}")]
    Signers {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "release {version} is already published at {to}; a published release is never overwritten"
    )]
    AlreadyPublished { version: String, to: String },
    #[error(
        "another relgate run holds the release record {0}: nothing was run; try again once it \
         has finished"
    )]
    Locked(PathBuf),
    #[error(
        "the release record {dir} does not verify, so nothing in it is used: {problem}. It may \
         have been tampered with. Keep it as evidence and start over: move it aside \
         (mv {dir} {dir}.suspect) and run again; a new record starts from nothing"
    )]
    Tampered {
        dir: PathBuf,
        problem: crate::log::attest::AttestProblem,
    },
    #[error("the pipeline's signers cannot serve as the trust root: {0}")]
    Trust(#[from] crate::trust::TrustError),
    #[error("share: {0}")]
    Share(#[from] crate::share::ShareError),
    /// The share holds a newer checkpoint of this record than the record itself: rolled back.
    #[error("share: {0}")]
    RolledBack(#[source] crate::share::sync::SyncError),
    #[error("share: {0}; nothing was run")]
    ShareSync(#[source] crate::share::sync::SyncError),
    #[error("cannot {action} {}: {source}", .path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
    #[error(transparent)]
    Checkpoint(#[from] crate::log::checkpoint::WriteError),
    /// A folder or file of the record was swapped for something else while the run used it.
    #[error("{} {what}; the record may have been tampered with, and nothing more is done", .path.display())]
    RecordChanged { path: PathBuf, what: &'static str },
    #[error(
        "cannot record the interrupted publish of {to}: the signing key differs from the one its run recorded"
    )]
    KeyChanged { to: String },
    #[error("the release log's writer was poisoned by a panic")]
    Poisoned,
    #[error("a gate task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl RunError {
    /// `map_err` for an I/O error on `path`: "cannot {action} {path}: {error}".
    pub(crate) fn file(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> RunError {
        let path = path.to_path_buf();
        move |source| RunError::File {
            action,
            path,
            source,
        }
    }
}

impl RunError {
    /// Exit code for a run that could not be carried out.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::BadVersion(_)
            | RunError::Artefacts(_)
            | RunError::Signers { .. }
            | RunError::Trust(_) => exit::CONFIG,
            RunError::Locked(_) => exit::BUSY,
            _ => exit::REFUSED,
        }
    }
}

pub fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.as_bytes()[0].is_ascii_alphanumeric()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
}

/// The release record folder of `version` (dry runs get a fresh one each time).
pub fn record_dir(pipeline: &Pipeline, version: &str, dry_run: bool) -> PathBuf {
    if dry_run {
        let now = time::OffsetDateTime::now_utc();
        let stamp = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}.{:09}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.nanosecond()
        );
        pipeline
            .state_dir
            .join("dry-runs")
            .join(version)
            .join(stamp)
    } else {
        pipeline.state_dir.join("releases").join(version)
    }
}

/// Shared, ordered access to the log for the gate tasks.
pub(crate) type SharedLog = Arc<Mutex<LogWriter>>;

pub(crate) fn append(log: &SharedLog, record: LogRecord) -> Result<Entry, RunError> {
    let mut w = log.lock().map_err(|_| RunError::Poisoned)?;
    Ok(w.append(record)?)
}

/// Run a release.
pub async fn run(opts: RunOptions, events: UnboundedSender<Event>) -> Result<RunSummary, RunError> {
    let p = opts.pipeline.clone();
    // What a webhook is signed with, and a URL kept in the environment because it is itself a
    // secret: cut from the gates' output like any secret-looking variable, whatever its name.
    crate::gates::regression::declare_secret_vars(opts.notify.iter().flat_map(|n| {
        let url = match &n.target {
            crate::model::NotifyTarget::Env(name) => Some(name.clone()),
            crate::model::NotifyTarget::Url(_) => None,
        };
        n.secret_env.iter().cloned().chain(url)
    }));
    if !valid_version(&opts.version) {
        return Err(RunError::BadVersion(opts.version.clone()));
    }
    let destination = match &p.publish {
        Some(publish) => Some(Destination::resolve(
            publish,
            &p.root,
            &p.project,
            &opts.version,
        )?),
        None => None,
    };
    if !opts.dry_run
        && let Some(dest) = &destination
    {
        let existing = dest.probe().await?;
        if let Existing::Release { sums, audit_log } = existing {
            // A run that died after the release was put in place but before recording it
            // left a complete release: record the completion instead of refusing forever.
            let found = recover::Found {
                sums: sums.as_deref(),
                audit_log: audit_log.as_deref(),
            };
            if let Some(summary) =
                recover::complete_interrupted_publish(&opts, dest, found, &events)?
            {
                return Ok(summary);
            }
            return Err(RunError::AlreadyPublished {
                version: opts.version.clone(),
                to: dest.describe(),
            });
        }
    }
    let record = Record::new(record_dir(&p, &opts.version, opts.dry_run));
    std::fs::create_dir_all(&record.dir).map_err(RunError::file("create", &record.dir))?;
    let _lock = lock_record(&record)?;
    // Nothing in an earlier run's record is used before its checkpoints verify under the
    // pipeline's signers; only the lines they cover are relied on.
    let trust = crate::trust::TrustRoot::from_pipeline(&p)?;
    let verified = crate::log::attest::read_for_use(&record.dir, &trust).map_err(|problem| {
        RunError::Tampered {
            dir: record.dir.clone(),
            problem,
        }
    })?;
    // The team's share: the record must extend its checkpoints there, and the sign-offs left
    // there are taken in before anything is judged.
    let share = team::open(&p, opts.dry_run)?;
    let share_notes = match &share {
        Some(s) => team::before_run(s, &p, &opts.version, &record, &verified, &trust).await?,
        None => Vec::new(),
    };

    // Stage: one copy, hashed in the same read. Everything later concerns these bytes.
    let files = stage::resolve(&p.root, &p.artefacts).map_err(|problems| {
        RunError::Artefacts(
            problems
                .iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let staged = stage_into_record(&record, &p, &files)?;
    let sums_digest = record.put(&staged.sums)?;

    // The signers in force, kept verbatim so replay and verify need nothing else.
    let signers_text = match &p.signers {
        Some(path) => Some(
            std::fs::read_to_string(path).map_err(|source| RunError::Signers {
                path: path.clone(),
                source,
            })?,
        ),
        None => None,
    };
    let signers_digest = match &signers_text {
        Some(t) => {
            stage::write_synced(&record.dir.join(crate::audit::SIGNERS_COPY), t.as_bytes())
                .map_err(RunError::file(
                    "write",
                    &record.dir.join(crate::audit::SIGNERS_COPY),
                ))?;
            Some(record.put(t.as_bytes())?)
        }
        None => None,
    };

    // The log is opened (and created) only once staging worked, so a run that cannot stage
    // leaves no empty log behind.
    let (writer, prior) = LogWriter::open(&record.log_path())?;
    let log: SharedLog = Arc::new(Mutex::new(writer));

    let started_at = time::OffsetDateTime::now_utc().unix_timestamp();
    let run_no = prior
        .iter()
        .filter(|e| matches!(e.record, LogRecord::RunStarted(_)))
        .count() as u32
        + 1;
    let previous_subject = prior.iter().rev().find_map(|e| match &e.record {
        LogRecord::RunStarted(r) => Some(r.subject.clone()),
        _ => None,
    });
    let subject_changed = previous_subject
        .as_ref()
        .is_some_and(|s| *s != staged.subject);
    let (checkpoint_key, ck_note) = checkpoint_key(&p, opts.dry_run);
    // What earlier runs left that a checkpoint vouched for in time: the only part relied on.
    let attested: Vec<Entry> = verified.trusted_entries();
    let subject_since = attested
        .iter()
        .find_map(|e| match &e.record {
            LogRecord::RunStarted(r) if r.subject == staged.subject => Some(r.started_at),
            _ => None,
        })
        .unwrap_or(started_at);
    let pipeline_digest = opts
        .sources
        .first()
        .map(|s| sha256_hex(s.text.as_bytes()))
        .unwrap_or_default();
    let first = append(
        &log,
        LogRecord::RunStarted(Box::new(RunStarted {
            run: run_no,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            project: p.project.clone(),
            version: opts.version.clone(),
            dry_run: opts.dry_run,
            operator: opts.operator.clone(),
            started_at,
            pipeline_digest,
            sources: opts.sources.clone(),
            pipeline: (*p).clone(),
            signers: signers_digest,
            subject: staged.subject.clone(),
            sums: sums_digest,
            artefacts: staged.artefacts.clone(),
            subject_changed,
            checkpoint_key: checkpoint_key.as_ref().map(|(_, k)| k.clone()),
        })),
    )?;
    // The record's name on a share: the chain head of its first line.
    let record_id = prior.first().unwrap_or(&first).head.hex();
    let mut notes = Vec::new();
    if subject_changed {
        notes.push(format!(
            "the artefacts changed since the last run: new subject {} (earlier sign-offs no longer count)",
            staged.subject
        ));
    }
    if let Some(LogRecord::RecoveredTornTail(t)) = prior.last().map(|e| &e.record) {
        notes.push(format!(
            "the release log ended in a torn line (a crash mid-write): {} bytes were saved as {} and cut off",
            t.bytes, t.saved_as
        ));
    }
    notes.extend(ck_note);
    notes.extend(verified.notes);
    notes.extend(share_notes);
    let _ = events.send(Event::RunStarted {
        project: p.project.clone(),
        version: opts.version.clone(),
        subject: staged.subject.clone(),
        dry_run: opts.dry_run,
        record: record.dir.display().to_string(),
        gates: p
            .gates
            .iter()
            .map(|g| (g.id.clone(), g.kind.name().to_string()))
            .collect(),
        notes,
    });

    let staged = Arc::new(staged);
    let cx = crate::gates::CollectContext {
        pipeline: p.clone(),
        record: record.clone(),
        staged: staged.clone(),
        version: opts.version.clone(),
        operator: opts.operator.clone(),
        dry_run: opts.dry_run,
        started_at,
        policy: crate::digest::policy_digest(&opts.sources),
        subject_since,
        prior: Arc::new(attested.clone()),
        cancel: opts.cancel.clone(),
        rehearsal: false,
    };
    let sched = schedule::Scheduler {
        log: log.clone(),
        cx,
        run: run_no,
        rerun: opts.rerun,
        prior: attested,
        signers_text: signers_text.clone(),
        events: events.clone(),
    };
    let mut results = sched.run_all().await?;

    // Decide.
    let any = |f: fn(&GateState) -> bool| results.values().any(|g| f(&g.state));
    let (decision, exit_code) = if any(|s| matches!(s, GateState::Aborted)) || *opts.cancel.borrow()
    {
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
    };

    let mut published = None;
    let mut message = None;
    // One publisher at a time: another machine holding the release's lease stops this one.
    let mut lease = None;
    let (decision, exit_code) = if decision == Decision::Published && destination.is_some() {
        let operator = opts.operator.as_deref();
        match team::take_lease(share.as_ref(), &p, &opts.version, &record_id, operator).await {
            Ok(l) => {
                lease = l;
                (decision, exit_code)
            }
            Err(not) => {
                message = Some(not.message);
                (Decision::Refused, not.exit_code)
            }
        }
    } else {
        (decision, exit_code)
    };
    let (decision, exit_code) = if decision == Decision::Published {
        match &destination {
            Some(dest) => {
                let to = dest.describe();
                // Write-ahead: the decision to publish, and a checkpoint covering it, before
                // any byte moves. The published record is the log as it stands here.
                append(
                    &log,
                    LogRecord::Publish(log::Publish {
                        run: run_no,
                        to: to.clone(),
                        subject: staged.subject.clone(),
                        files: publish::listed(&staged),
                    }),
                )?;
                write_checkpoint(
                    &log,
                    &record,
                    checkpoint_key.as_ref().map(|(k, _)| k),
                    &origin(&p, &opts.version),
                )?;
                // The attestation of what was accepted: made from the record as it is
                // published (the log ends with the publish line, the checkpoint covers it), and
                // the release's report, rendered from the record as it now stands.
                let beside = attestation_files(&record, checkpoint_key.as_ref(), None);
                let gathered = beside.and_then(|b| {
                    let report = embedded_report(&record, &trust)?;
                    ReleaseFiles::gather(&record, &staged, b, report)
                });
                let put = match gathered {
                    Ok(mut files) => {
                        let (events, to) = (events.clone(), to.clone());
                        files.progress = Some(publish::Progress(Arc::new(move |sent, total| {
                            let to = to.clone();
                            let _ = events.send(Event::Uploading { to, sent, total });
                        })));
                        dest.put(&files).await
                    }
                    Err(e) => Err(e),
                };
                match put {
                    Ok(()) => {
                        append(
                            &log,
                            LogRecord::Published(log::Published {
                                run: run_no,
                                to: to.clone(),
                            }),
                        )?;
                        let _ = events.send(Event::Published { to: to.clone() });
                        published = Some(to);
                        (Decision::Published, exit::SUCCESS)
                    }
                    Err(e) => {
                        message = Some(format!("publish failed: {e}"));
                        (Decision::Refused, exit::REFUSED)
                    }
                }
            }
            None => (Decision::Published, exit::SUCCESS),
        }
    } else {
        (decision, exit_code)
    };
    if let Some(m) = team::give_back(share.as_ref(), lease).await {
        message.get_or_insert(m);
    }

    // Tell whoever asked. A notification reports the decision and never changes it, nor the
    // exit code; how it went is recorded inside the run, before its end.
    let mut notifications = Vec::new();
    if let Some(event) = crate::notify::event_of(decision, opts.dry_run)
        && !opts.notify.is_empty()
    {
        let gates: Vec<&GateSummary> = p.gates.iter().filter_map(|g| results.get(&g.id)).collect();
        let msg = crate::notify::Message::for_run(
            event,
            &crate::notify::RunFacts {
                project: &p.project,
                version: &opts.version,
                run: run_no,
                subject: &staged.subject,
                decision,
                exit_code,
                operator: opts.operator.as_deref(),
                published: published.as_deref(),
                message: message.as_deref(),
                gates: &gates,
            },
        );
        notifications = crate::notify::deliver_all(&opts.notify, event, &msg).await;
        for d in &notifications {
            append(&log, LogRecord::Notification(d.record(run_no)))?;
        }
    }
    append(
        &log,
        LogRecord::RunFinished(RunFinished {
            run: run_no,
            decision,
            exit_code,
            message: message.clone(),
        }),
    )?;
    write_checkpoint(
        &log,
        &record,
        checkpoint_key.as_ref().map(|(k, _)| k),
        &origin(&p, &opts.version),
    )?;
    // A dry run that would publish rehearses the attestation too, with its throwaway key, and
    // keeps it in its own record (docs/attestation.md).
    if decision == Decision::DryRun
        && let Some(dest) = &destination
    {
        let files = attestation_files(&record, checkpoint_key.as_ref(), Some(&dest.describe()))?;
        for f in files {
            if let publish::Source::Bytes(bytes) = &f.source {
                log::checkpoint::atomic_write(&record.dir.join(&f.path), bytes)?;
            }
        }
    }
    let _ = events.send(Event::Finished {
        decision,
        exit_code,
        message: message.clone(),
    });
    let gates = p
        .gates
        .iter()
        .filter_map(|g| results.remove(&g.id))
        .collect();
    Ok(RunSummary {
        decision,
        exit_code,
        subject: staged.subject.clone(),
        record: record.dir.clone(),
        published,
        gates,
        message,
        notifications,
    })
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

/// Stage the artefacts into `<record>/staged/<subject>/`, replacing an earlier copy of the
/// same subject so that the bytes used are always the ones just read.
fn stage_into_record(
    record: &Record,
    p: &Pipeline,
    files: &[stage::ArtefactFile],
) -> Result<Staged, RunError> {
    let base = record.dir.join(crate::record::STAGED_DIR);
    std::fs::create_dir_all(&base).map_err(RunError::file("create", &base))?;
    let made_here = folder_identity(&base)?;
    let tmp = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(&base)
        .map_err(RunError::file("create a staging folder in", &base))?;
    let workdir = tmp.path().join("s");
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let staged = stage::stage(&p.root, files, &workdir, workers)?;
    let dest = record.staged_dir(staged.subject_hex());
    if dest.exists() {
        std::fs::remove_dir_all(&dest).map_err(RunError::file("replace", &dest))?;
    }
    std::fs::rename(&workdir, &dest).map_err(RunError::file("move staging into", &dest))?;
    // Only this subject's copy is ever used again (publish reads it; older subjects' sign-offs
    // no longer count), so earlier copies and the leftovers of a killed run go: a record must
    // not grow by a full set of artefacts each time they change. We hold the record's lock.
    // Only names staging itself makes are removed, and only while `staged` is still the folder
    // that was made here: whoever can write the record could swap in a link to someone's
    // folder between the two, and then no more than folders named like a subject could go.
    if let Ok(entries) = std::fs::read_dir(&base) {
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let ours = crate::digest::is_hex_digest(&name) || name.starts_with(".staging-");
            if ours && path != dest && path != tmp.path() {
                if folder_identity(&base)? != made_here {
                    return Err(RunError::RecordChanged {
                        path: base,
                        what: "was replaced while this run staged",
                    });
                }
                std::fs::remove_dir_all(&path)
                    .map_err(RunError::file("remove the old copy", &path))?;
            }
        }
    }
    crate::record::sync_dir(&base).map_err(RunError::file("sync", &base))?;
    Ok(Staged {
        dir: dest,
        ..staged
    })
}

/// A folder's device and inode, refusing a symbolic link in its place.
fn folder_identity(dir: &std::path::Path) -> Result<(u64, u64), RunError> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(dir).map_err(RunError::file("read", dir))?;
    if !m.file_type().is_dir() {
        return Err(RunError::RecordChanged {
            path: dir.to_path_buf(),
            what: "is no longer a folder (a link or a file was put there)",
        });
    }
    Ok((m.dev(), m.ino()))
}

/// An exclusive lock on the record for the whole run.
fn lock_record(record: &Record) -> Result<std::fs::File, RunError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = record.dir.join(".lock");
    // Never through a link planted in the record, never waiting on a FIFO.
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                RunError::RecordChanged {
                    path: path.clone(),
                    what: "is a symbolic link",
                }
            } else {
                RunError::file("open", &path)(e)
            }
        })?;
    if !f
        .metadata()
        .map_err(RunError::file("open", &path))?
        .is_file()
    {
        return Err(RunError::RecordChanged {
            path,
            what: "is not a regular file",
        });
    }
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(RunError::Locked(record.dir.clone())),
        Err(std::fs::TryLockError::Error(e)) => Err(RunError::file("lock", &path)(e)),
    }
}

/// Digest of what a gate's verdict depends on, for reuse on resume: its spec, the release,
/// the signers and, for automated gates, what it was observed to run against
/// ([`reuse::Dependencies`]; absent from lines written before relgate observed it).
pub fn inputs_digest(
    gate: &crate::model::GateSpec,
    subject: &str,
    project: &str,
    version: &str,
    signers: Option<&str>,
    depends_on: Option<&reuse::Dependencies>,
) -> String {
    let mut v = serde_json::json!({
        "gate": gate,
        "subject": subject,
        "project": project,
        "version": version,
        "signers": signers.map(|s| sha256_hex(s.as_bytes())),
    });
    if let (Some(d), Some(obj)) = (depends_on, v.as_object_mut()) {
        obj.insert(
            "depends_on".into(),
            serde_json::to_value(d).unwrap_or_default(),
        );
    }
    sha256_hex(canonical_json(&v).unwrap_or_default().as_bytes())
}

pub(crate) fn outcome_state(
    outcome: Outcome,
    reasons: Vec<crate::gates::Reason>,
    reused: bool,
) -> GateState {
    match outcome {
        Outcome::Green => GateState::Green { reused },
        Outcome::Red => GateState::Red { reasons },
        Outcome::Pending => GateState::Pending { reasons },
    }
}
