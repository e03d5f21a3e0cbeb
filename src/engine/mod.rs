//! The engine: drive one run of a release — stage, record, run gates concurrently along
//! `needs`, decide, publish — writing every step to the log before acting on it.

pub mod events;
mod finish;
mod keys;
mod recover;
pub mod reuse;
pub mod schedule;
mod start;
mod team;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;

pub use events::{Event, GateState, GateSummary};

use crate::config::SourceFile;
use crate::digest::{canonical_json, sha256_hex};
use crate::exit;
use crate::gates::Outcome;
use crate::log::{self, Decision, Entry, LogWriter, Record as LogRecord, RunFinished};
use crate::model::Pipeline;
use crate::publish::{Destination, Target};
use crate::record::Record;
use crate::stage::{self, Staged};
pub use keys::origin;
use keys::{checkpoint_key, write_checkpoint};

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

/// Run a release, step by step; each step writes what it does to the log before doing it.
pub async fn run(opts: RunOptions, events: UnboundedSender<Event>) -> Result<RunSummary, RunError> {
    start::declare_notify_secrets(&opts);
    if !valid_version(&opts.version) {
        return Err(RunError::BadVersion(opts.version.clone()));
    }
    // 1. Where the release goes; a release already there ends the run here.
    let destination = start::resolve_destination(&opts)?;
    if let Some(summary) = start::probe(&opts, destination.as_ref(), &events).await? {
        return Ok(summary);
    }
    // 2. The record: locked, verified, held against the share.
    let opened = start::open_record(&opts).await?;
    // 3. Stage the artefacts and keep the signers in force.
    let staging = start::stage(&opts.pipeline, &opened.record)?;
    // 4. Open the log and write `run-started`.
    let (run, begun) = start::begin(opts, events, destination, opened, staging)?;
    // 5. Run the gates along `needs`.
    let results = run.run_gates(begun).await?;
    // 6. Decide.
    let (decision, exit_code) = finish::decide(&results, &run.opts);
    // 7. Publish (write-ahead) when so decided.
    let ending = run.publish(decision, exit_code).await?;
    // 8. Notify.
    let notifications = run.notify(&results, &ending).await?;
    // 9. Seal the log: `run-finished` and its checkpoint.
    run.seal(&ending)?;
    // 10. Say how it ended.
    Ok(run.finish(ending, results, notifications))
}

/// One run once its `run-started` line is written: what its later steps share.
struct Run {
    p: Arc<Pipeline>,
    opts: RunOptions,
    events: UnboundedSender<Event>,
    destination: Option<Destination>,
    record: Record,
    trust: crate::trust::TrustRoot,
    share: Option<crate::share::Share>,
    log: SharedLog,
    run_no: u32,
    /// The record's name on a share: the chain head of its first line.
    record_id: String,
    staged: Arc<Staged>,
    signers_text: Option<String>,
    checkpoint_key: Option<(crate::signkey::SignKey, crate::log::CheckpointKey)>,
    /// The record's lock, held for the whole run (and released last).
    _lock: std::fs::File,
}

impl Run {
    /// Run every gate concurrently along `needs`; how each ended, by id.
    async fn run_gates(
        &self,
        begun: start::Begun,
    ) -> Result<BTreeMap<String, GateSummary>, RunError> {
        let cx = crate::gates::CollectContext {
            pipeline: self.p.clone(),
            record: self.record.clone(),
            staged: self.staged.clone(),
            version: self.opts.version.clone(),
            operator: self.opts.operator.clone(),
            dry_run: self.opts.dry_run,
            started_at: begun.started_at,
            policy: crate::digest::policy_digest(&self.opts.sources),
            subject_since: begun.subject_since,
            prior: Arc::new(begun.attested.clone()),
            cancel: self.opts.cancel.clone(),
            rehearsal: false,
        };
        let sched = schedule::Scheduler {
            log: self.log.clone(),
            cx,
            run: self.run_no,
            rerun: self.opts.rerun,
            prior: begun.attested,
            signers_text: self.signers_text.clone(),
            events: self.events.clone(),
        };
        sched.run_all().await
    }
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
