//! The steps of a run before its first gate: where the release would go, the record opened
//! and locked, the artefacts staged, and the run's `run-started` line written.

use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;

use super::keys::checkpoint_key;
use super::{
    Event, Run, RunError, RunOptions, RunSummary, SharedLog, append, lock_record, record_dir,
    recover, team,
};
use crate::digest::sha256_hex;
use crate::log::attest::ForUse;
use crate::log::{CheckpointKey, Entry, LogWriter, Record as LogRecord, RunStarted};
use crate::model::Pipeline;
use crate::publish::{Destination, Existing, Target};
use crate::record::Record;
use crate::share::Share;
use crate::stage::{self, Staged};
use crate::trust::TrustRoot;

/// What a webhook is signed with, and a URL kept in the environment because it is itself a
/// secret: cut from the gates' output like any secret-looking variable, whatever its name.
pub(super) fn declare_notify_secrets(opts: &RunOptions) {
    crate::gates::regression::declare_secret_vars(opts.notify.iter().flat_map(|n| {
        let url = match &n.target {
            crate::model::NotifyTarget::Env(name) => Some(name.clone()),
            crate::model::NotifyTarget::Url(_) => None,
        };
        n.secret_env.iter().cloned().chain(url)
    }));
}

/// Where the release would be published (`publish:`), if anywhere.
pub(super) fn resolve_destination(opts: &RunOptions) -> Result<Option<Destination>, RunError> {
    let p = &opts.pipeline;
    Ok(match &p.publish {
        Some(publish) => Some(Destination::resolve(
            publish,
            &p.root,
            &p.project,
            &opts.version,
        )?),
        None => None,
    })
}

/// A real run looks at the destination first: a release already there ends the run, either as
/// the completion of an interrupted publish (its summary) or as a refusal.
pub(super) async fn probe(
    opts: &RunOptions,
    destination: Option<&Destination>,
    events: &UnboundedSender<Event>,
) -> Result<Option<RunSummary>, RunError> {
    let Some(dest) = destination.filter(|_| !opts.dry_run) else {
        return Ok(None);
    };
    let existing = dest.probe().await?;
    if let Existing::Release { sums, audit_log } = existing {
        // A run that died after the release was put in place but before recording it
        // left a complete release: record the completion instead of refusing forever.
        let found = recover::Found {
            sums: sums.as_deref(),
            audit_log: audit_log.as_deref(),
        };
        if let Some(summary) = recover::complete_interrupted_publish(opts, dest, found, events)? {
            return Ok(Some(summary));
        }
        return Err(RunError::AlreadyPublished {
            version: opts.version.clone(),
            to: dest.describe(),
        });
    }
    Ok(None)
}

/// The release record as this run found it: locked, verified, held against the share.
pub(super) struct Opened {
    pub record: Record,
    /// Held for the whole run.
    pub lock: std::fs::File,
    pub trust: TrustRoot,
    pub verified: ForUse,
    pub share: Option<Share>,
    /// What the share had to say, for the run's start.
    pub share_notes: Vec<String>,
}

/// Open the release record: create and lock it, verify what earlier runs left, and hold it
/// against the team's share.
pub(super) async fn open_record(opts: &RunOptions) -> Result<Opened, RunError> {
    let p = &opts.pipeline;
    let record = Record::new(record_dir(p, &opts.version, opts.dry_run));
    std::fs::create_dir_all(&record.dir).map_err(RunError::file("create", &record.dir))?;
    let lock = lock_record(&record)?;
    // Nothing in an earlier run's record is used before its checkpoints verify under the
    // pipeline's signers; only the lines they cover are relied on.
    let trust = TrustRoot::from_pipeline(p)?;
    let verified = crate::log::attest::read_for_use(&record.dir, &trust).map_err(|problem| {
        RunError::Tampered {
            dir: record.dir.clone(),
            problem,
        }
    })?;
    // The team's share: the record must extend its checkpoints there, and the sign-offs left
    // there are taken in before anything is judged.
    let share = team::open(p, opts.dry_run)?;
    let share_notes = match &share {
        Some(s) => team::before_run(s, p, &opts.version, &record, &verified, &trust).await?,
        None => Vec::new(),
    };
    Ok(Opened {
        record,
        lock,
        trust,
        verified,
        share,
        share_notes,
    })
}

/// The staged artefacts and the signers in force, both in the record.
pub(super) struct Staging {
    pub staged: Staged,
    /// Digest of `SHA256SUMS` in the record's evidence.
    pub sums_digest: String,
    pub signers_text: Option<String>,
    pub signers_digest: Option<String>,
}

/// Stage: one copy, hashed in the same read. Everything later concerns these bytes.
pub(super) fn stage(p: &Pipeline, record: &Record) -> Result<Staging, RunError> {
    let files = stage::resolve(&p.root, &p.artefacts).map_err(|problems| {
        RunError::Artefacts(
            problems
                .iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let staged = stage_into_record(record, p, &files)?;
    let sums_digest = record.put(&staged.sums)?;
    let (signers_text, signers_digest) = keep_signers(p, record)?;
    Ok(Staging {
        staged,
        sums_digest,
        signers_text,
        signers_digest,
    })
}

/// The signers in force, kept verbatim so replay and verify need nothing else: their text and
/// its digest in the record's evidence.
fn keep_signers(
    p: &Pipeline,
    record: &Record,
) -> Result<(Option<String>, Option<String>), RunError> {
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
    Ok((signers_text, signers_digest))
}

/// What the gates of this run start from, beyond the run itself.
pub(super) struct Begun {
    pub started_at: i64,
    /// When the record first staged this subject (sign-offs older than that do not count).
    pub subject_since: i64,
    /// What earlier runs left that a checkpoint vouched for in time: the only part relied on.
    pub attested: Vec<Entry>,
}

/// Begin the run in the log: open it, write `run-started`, and tell the reporters.
pub(super) fn begin(
    opts: RunOptions,
    events: UnboundedSender<Event>,
    destination: Option<Destination>,
    opened: Opened,
    staging: Staging,
) -> Result<(Run, Begun), RunError> {
    let p = opts.pipeline.clone();
    let Opened {
        record,
        lock,
        trust,
        verified,
        share,
        share_notes,
    } = opened;
    // The log is opened (and created) only once staging worked, so a run that cannot stage
    // leaves no empty log behind.
    let (writer, prior) = LogWriter::open(&record.log_path())?;
    let log: SharedLog = Arc::new(Mutex::new(writer));

    let started_at = time::OffsetDateTime::now_utc().unix_timestamp();
    let (run_no, subject_changed) = after_earlier_runs(&prior, &staging.staged.subject);
    let (checkpoint_key, ck_note) = checkpoint_key(&p, opts.dry_run);
    // What earlier runs left that a checkpoint vouched for in time: the only part relied on.
    let attested: Vec<Entry> = verified.trusted_entries();
    let subject_since = first_staged(&attested, &staging.staged.subject).unwrap_or(started_at);
    let key = checkpoint_key.as_ref().map(|(_, k)| k);
    let line = run_started(&opts, &staging, run_no, started_at, subject_changed, key);
    let first = append(&log, LogRecord::RunStarted(Box::new(line)))?;
    // The record's name on a share: the chain head of its first line.
    let record_id = prior.first().unwrap_or(&first).head.hex();
    let mut notes = start_notes(&staging.staged, subject_changed, &prior);
    notes.extend(ck_note);
    notes.extend(verified.notes);
    notes.extend(share_notes);
    announce(&opts, &events, &record.dir, &staging.staged, notes);
    let run = Run {
        p,
        opts,
        events,
        destination,
        record,
        trust,
        share,
        log,
        run_no,
        record_id,
        staged: Arc::new(staging.staged),
        signers_text: staging.signers_text,
        checkpoint_key,
        _lock: lock,
    };
    let begun = Begun {
        started_at,
        subject_since,
        attested,
    };
    Ok((run, begun))
}

/// This run's number, and whether the artefacts changed since the last run (its subject).
fn after_earlier_runs(prior: &[Entry], subject: &str) -> (u32, bool) {
    let run_no = prior
        .iter()
        .filter(|e| matches!(e.record, LogRecord::RunStarted(_)))
        .count() as u32
        + 1;
    let previous_subject = prior.iter().rev().find_map(|e| match &e.record {
        LogRecord::RunStarted(r) => Some(r.subject.clone()),
        _ => None,
    });
    let subject_changed = previous_subject.as_ref().is_some_and(|s| *s != subject);
    (run_no, subject_changed)
}

/// When the first attested run that staged `subject` started.
fn first_staged(attested: &[Entry], subject: &str) -> Option<i64> {
    attested.iter().find_map(|e| match &e.record {
        LogRecord::RunStarted(r) if r.subject == subject => Some(r.started_at),
        _ => None,
    })
}

/// The run's first line: the release, the policy as written and as checked, the staged
/// subject and the key that will sign the checkpoints.
fn run_started(
    opts: &RunOptions,
    staging: &Staging,
    run_no: u32,
    started_at: i64,
    subject_changed: bool,
    checkpoint_key: Option<&CheckpointKey>,
) -> RunStarted {
    let p = &opts.pipeline;
    let pipeline_digest = opts
        .sources
        .first()
        .map(|s| sha256_hex(s.text.as_bytes()))
        .unwrap_or_default();
    RunStarted {
        run: run_no,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        project: p.project.clone(),
        version: opts.version.clone(),
        dry_run: opts.dry_run,
        operator: opts.operator.clone(),
        started_at,
        pipeline_digest,
        sources: opts.sources.clone(),
        pipeline: (**p).clone(),
        signers: staging.signers_digest.clone(),
        subject: staging.staged.subject.clone(),
        sums: staging.sums_digest.clone(),
        artefacts: staging.staged.artefacts.clone(),
        subject_changed,
        checkpoint_key: checkpoint_key.cloned(),
    }
}

/// What the run's start tells beyond its gates: a new subject, a torn line cut off the log.
fn start_notes(staged: &Staged, subject_changed: bool, prior: &[Entry]) -> Vec<String> {
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
    notes
}

/// Tell the reporters the run has started.
fn announce(
    opts: &RunOptions,
    events: &UnboundedSender<Event>,
    record: &Path,
    staged: &Staged,
    notes: Vec<String>,
) {
    let p = &opts.pipeline;
    let _ = events.send(Event::RunStarted {
        project: p.project.clone(),
        version: opts.version.clone(),
        subject: staged.subject.clone(),
        dry_run: opts.dry_run,
        record: record.display().to_string(),
        gates: p
            .gates
            .iter()
            .map(|g| (g.id.clone(), g.kind.name().to_string()))
            .collect(),
        notes,
    });
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
fn folder_identity(dir: &Path) -> Result<(u64, u64), RunError> {
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
