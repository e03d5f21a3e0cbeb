//! Replay: verify a release record — or a published release folder and the record in its
//! `audit/` — offline, under a trust root from outside it. Never runs a command or contacts a
//! server. The steps mirror docs/log-format.md ("What `relgate replay` checks"):
//!
//! 1. the record's files: regular files only, every read size-capped ([`crate::audit`]);
//! 2. the log: canonical lines, contiguous chain ([`crate::log::read_log`]);
//! 3. every evidence file matches its digest;
//! 4. every run, line by line ([`runs`]): its pipeline derived again from the recorded source
//!    bytes, every verdict inside its run and judged again from its evidence, every publish
//!    decided with every gate green;
//! 5. every checkpoint signed by the release signer under the trust root, the log extending
//!    each, the newest covering every line, and any checkpoint the caller kept from earlier
//!    ([`crate::log::attest`]);
//! 6. for a published folder ([`folder`]): the artefacts, `SHA256SUMS` and its signature are
//!    exactly what the log recorded, and every file there and in `audit/` is accounted for.
//!
//! `check` reads as this list, one function per step. Step 5's own checkpoints are checked
//! before step 4, whose runs rely on which lines they vouched for in time; the checkpoints
//! kept from earlier come after it.
//!
//! A release at a URL ([`replay_folder`]) is checked by the same steps: its record (`audit/`) is
//! copied into a private temporary folder first — regular files only, each read capped as on
//! disk — because steps 1–5 read the record many times and in any order, and a record is small
//! beside the artefacts. Step 6 reads the published files from the server itself, hashing them
//! as they stream, exactly as `verify URL` does.

mod folder;
mod runs;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::folder::Folder;
use crate::log::attest::{self, CheckpointError, Strictness};
use crate::log::{Entry, read_log};
use crate::record::{self, EVIDENCE_DIR, LOG_FILE, Record};
use crate::trust::TrustRoot;

pub use crate::record::MAX_LOG_BYTES;

/// The first problem replay found; `line` is the 1-based log line (0: not about one line).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ReplayReport {
    pub record: PathBuf,
    /// The release the record is of (from its log, once it verified).
    pub project: Option<String>,
    pub version: Option<String>,
    pub ok: bool,
    pub lines: usize,
    pub runs: usize,
    pub verdicts_rejudged: usize,
    pub published: bool,
    /// True when PATH was a published folder and its files were bound to the record.
    pub folder_checked: bool,
    pub checkpoints: usize,
    pub checkpoint_signer: Option<String>,
    pub trust_root: String,
    pub notes: Vec<String>,
    pub problem: Option<Problem>,
}

pub(crate) fn fail(line: usize, message: impl Into<String>) -> Problem {
    Problem {
        line,
        message: message.into(),
    }
}

/// What replay is given besides the path.
pub struct ReplayOptions<'a> {
    pub trust: &'a TrustRoot,
    /// Checkpoints kept from earlier (each with `FILE.sig`): the log must extend every one.
    pub checkpoints: &'a [PathBuf],
}

/// Replay the record or published folder at `path` on this machine.
pub fn replay(path: &Path, opts: &ReplayOptions<'_>) -> ReplayReport {
    replay_folder(&crate::folder::LocalFolder::new(path), opts)
}

/// What replay read and checked, for a command that shows the record afterwards (`report`,
/// what-if): the record folder, its log's lines, and which of them the verified checkpoints
/// vouched for in time. Handed out once the checkpoints verified, whatever later steps found,
/// so that a 10,000-line log is not read and checked twice.
pub struct Read {
    pub dir: PathBuf,
    pub entries: Vec<Entry>,
    pub trusted: Vec<bool>,
    /// The private copy `dir` is in when the record was read from a URL: `dir` is there only as
    /// long as this is kept (a caller that takes `dir` out takes this with it).
    pub copy: Option<tempfile::TempDir>,
}

/// Replay a record or a published folder, on this machine or at a URL.
pub fn replay_folder(folder: &dyn Folder, opts: &ReplayOptions<'_>) -> ReplayReport {
    replay_and_read(folder, opts).0
}

/// [`replay_folder`], and what it read ([`Read`]; `None` when it stopped before the
/// checkpoints verified).
pub fn replay_and_read(
    folder: &dyn Folder,
    opts: &ReplayOptions<'_>,
) -> (ReplayReport, Option<Read>) {
    let mut report = ReplayReport {
        record: PathBuf::from(folder.describe()),
        project: None,
        version: None,
        ok: false,
        lines: 0,
        runs: 0,
        verdicts_rejudged: 0,
        published: false,
        folder_checked: false,
        checkpoints: 0,
        checkpoint_signer: None,
        trust_root: opts.trust.source.clone(),
        notes: Vec::new(),
        problem: None,
    };
    let mut read = None;
    match locate(folder, opts, &mut report, &mut read) {
        Ok(()) => report.ok = true,
        Err(p) => report.problem = Some(p),
    }
    (report, read)
}

/// Find the record — `audit/` of a published folder, else the folder itself — and check it,
/// in place on this machine, else from a private copy.
fn locate(
    folder: &dyn Folder,
    opts: &ReplayOptions<'_>,
    report: &mut ReplayReport,
    read: &mut Option<Read>,
) -> Result<(), Problem> {
    let published = folder
        .is_dir(crate::layout::AUDIT_DIR)
        .map_err(|e| fail(0, e.to_string()))?;
    let shown = |base: String| {
        if published {
            PathBuf::from(base).join(crate::layout::AUDIT_DIR)
        } else {
            PathBuf::from(base)
        }
    };
    let published_folder = published.then_some(folder);
    if let Some(path) = folder.local_path() {
        let dir = shown(path.display().to_string());
        report.record = dir.clone();
        return check(&dir, published_folder, opts, report, read);
    }
    // The report names the folder already (`record`): the message says only what is wrong.
    folder.check_root().map_err(|e| fail(0, e.to_string()))?;
    // Only a record is copied: a folder with neither `audit/` nor a log at its top is none,
    // and copying it whole would download a release's artefacts for nothing.
    if !published
        && folder
            .regular_files()
            .is_ok_and(|f| !f.iter().any(|r| r == LOG_FILE))
    {
        return Err(fail(
            0,
            format!(
                "no record here: neither {}/ (a published release's record) nor {LOG_FILE} (a \
                 record) is there",
                crate::layout::AUDIT_DIR
            ),
        ));
    }
    let shown_dir = shown(folder.describe());
    report.record = shown_dir.clone();
    let tmp =
        tempfile::tempdir().map_err(|e| fail(0, format!("cannot make a temporary folder: {e}")))?;
    let prefix = published.then_some(crate::layout::AUDIT_DIR);
    crate::folder::copy_tree(folder, prefix, tmp.path())
        .map_err(|e| fail(0, format!("{}: {e}", folder.describe())))?;
    let outcome = check(tmp.path(), published_folder, opts, report, read);
    // Messages name the record where it is, not the private copy.
    report.record = shown_dir.clone();
    let private = tmp.path().display().to_string();
    let public = shown_dir.display().to_string();
    for n in &mut report.notes {
        *n = n.replace(&private, &public);
    }
    let outcome = outcome.map_err(|mut p| {
        p.message = p.message.replace(&private, &public);
        p
    });
    // What was read lives in the private copy: it goes with it.
    if let Some(r) = read.as_mut() {
        r.copy = Some(tmp);
    }
    outcome
}

/// The steps of docs/log-format.md ("What `relgate replay` checks") on the record in `dir`;
/// `published` is the folder around it when `dir` is a published release's `audit/`. Each step
/// is a function of its own. Step 5 checks the record's own checkpoints before step 4, whose
/// runs rely only on the lines a checkpoint vouched for in time; the checkpoints kept outside
/// the record come after the runs.
fn check(
    dir: &Path,
    published: Option<&dyn Folder>,
    opts: &ReplayOptions<'_>,
    report: &mut ReplayReport,
    read: &mut Option<Read>,
) -> Result<(), Problem> {
    // 1. Regular files only: nothing is opened before this says it may be.
    let files = regular_files(dir, published)?;
    // 2. The log.
    let entries = log(dir, report)?;
    // 3. Every evidence file matches its name.
    evidence(dir, &files)?;
    name_release(&entries, report);
    // 5. The checkpoints, under the trust root: who made this log, and which lines they
    // vouched for in time.
    let att = checkpoints(dir, &entries, opts.trust, report)?;
    // What the caller may show from here on, whatever the later steps find (a copy: the
    // steps below still read them).
    *read = Some(Read {
        dir: dir.to_path_buf(),
        entries: entries.clone(),
        trusted: att.trusted.clone(),
        copy: None,
    });
    // 4. The runs, line by line.
    let facts = runs(dir, &entries, &att.trusted, report)?;
    // 5, continued: the lines sealed late, and the checkpoints kept from earlier.
    note_sealed_late(&att.trusted, report);
    kept_checkpoints(&entries, opts, report)?;
    // 6. What the files are, according to the log.
    let checked = Checked {
        dir,
        files,
        entries,
        trusted: att.trusted,
        facts,
    };
    files_accounted(&checked, published, opts.trust, report)
}

/// What steps 1 to 5 established about the record, for step 6.
struct Checked<'a> {
    dir: &'a Path,
    /// The record's files, relative to `dir` (step 1).
    files: Vec<String>,
    /// The log's lines (step 2).
    entries: Vec<Entry>,
    /// Per line: vouched for in time by a checkpoint (step 5).
    trusted: Vec<bool>,
    /// What the runs did (step 4).
    facts: runs::LogFacts,
}

/// Step 1: every file of the record, and of the published folder around it, is a regular file
/// or a folder. Returns the record's files.
fn regular_files(dir: &Path, published: Option<&dyn Folder>) -> Result<Vec<String>, Problem> {
    let files = crate::audit::list_files(dir).map_err(|e| fail(0, e.to_string()))?;
    if let Some(folder) = published {
        folder.regular_files().map_err(|e| fail(0, e.to_string()))?;
    }
    Ok(files)
}

/// Step 2: the log, read capped, parses line by line into a contiguous chain, and is not
/// empty.
fn log(dir: &Path, report: &mut ReplayReport) -> Result<Vec<Entry>, Problem> {
    let bytes = record::read_capped(&dir.join(LOG_FILE), MAX_LOG_BYTES).map_err(|e| {
        fail(
            0,
            format!("cannot read {}: {e}", dir.join(LOG_FILE).display()),
        )
    })?;
    let (entries, _) = read_log(&bytes).map_err(|p| fail(p.line, p.message))?;
    report.lines = entries.len();
    if entries.is_empty() {
        return Err(fail(0, "the log is empty"));
    }
    Ok(entries)
}

/// Step 3: every evidence file hashes to its name, referenced or not. Other names (the
/// temporary file of a write a crash interrupted) are never read as evidence; in a local
/// record they are noted, in a published one step 6 refuses them.
fn evidence(dir: &Path, files: &[String]) -> Result<(), Problem> {
    for f in files
        .iter()
        .filter_map(|f| f.strip_prefix(&format!("{EVIDENCE_DIR}/")))
    {
        if crate::digest::is_hex_digest(f) {
            record::read_blob(&dir.join(EVIDENCE_DIR), f)
                .map_err(|e| fail(0, format!("evidence/{f}: {e}")))?;
        }
    }
    Ok(())
}

/// The release the record is of, as its first run names it.
fn name_release(entries: &[Entry], report: &mut ReplayReport) {
    if let Some(crate::log::Record::RunStarted(r)) = entries.first().map(|e| &e.record) {
        report.project = Some(r.project.clone());
        report.version = Some(r.version.clone());
    }
}

/// Step 5, the record's own checkpoints ([`attest::attest`]): each signed under the trust
/// root and extended by the log, the newest covering every line. Returns which lines they
/// vouched for in time.
fn checkpoints(
    dir: &Path,
    entries: &[Entry],
    trust: &TrustRoot,
    report: &mut ReplayReport,
) -> Result<attest::Attestation, Problem> {
    let mut att = attest::attest(dir, entries, trust, Strictness::Replay)
        .map_err(|p| fail(p.line, p.to_string()))?;
    report.checkpoints = att.checkpoints;
    report.checkpoint_signer = att.signer.clone();
    report.notes.append(&mut att.notes);
    Ok(att)
}

/// Step 4: every run, line by line ([`runs::check`]).
fn runs(
    dir: &Path,
    entries: &[Entry],
    trusted: &[bool],
    report: &mut ReplayReport,
) -> Result<runs::LogFacts, Problem> {
    let facts = runs::check(&Record::new(dir), entries, trusted)?;
    report.runs = facts.runs.len();
    report.verdicts_rejudged = facts.verdicts_rejudged;
    report.published = facts.published;
    Ok(facts)
}

/// Step 5: lines a checkpoint sealed only after the next run began are noted (nothing was
/// reused from them).
fn note_sealed_late(trusted: &[bool], report: &mut ReplayReport) {
    let late = trusted.iter().filter(|t| !**t).count();
    if late > 0 {
        report.notes.push(format!(
            "{late} line(s) were sealed only by a later run's checkpoint (a run that did not \
             finish, or lines added without the release key): nothing was reused from them"
        ));
    }
}

/// Step 5: every `--checkpoint FILE` given holds ([`external_checkpoint`]).
fn kept_checkpoints(
    entries: &[Entry],
    opts: &ReplayOptions<'_>,
    report: &mut ReplayReport,
) -> Result<(), Problem> {
    for kept in opts.checkpoints {
        external_checkpoint(kept, entries, opts.trust)?;
        report.notes.push(format!(
            "the record extends the checkpoint kept in {}",
            kept.display()
        ));
    }
    Ok(())
}

/// Step 6: what the record's files are, according to the log. A published folder must be
/// exactly what its record says was gated, and hold nothing else ([`folder::check_published`]);
/// what a local record holds beyond that is noted ([`folder::local_leftovers`]).
fn files_accounted(
    checked: &Checked<'_>,
    published: Option<&dyn Folder>,
    trust: &TrustRoot,
    report: &mut ReplayReport,
) -> Result<(), Problem> {
    let Checked {
        dir,
        files,
        entries,
        trusted,
        facts,
    } = checked;
    let present: std::collections::BTreeSet<String> = files
        .iter()
        .filter_map(|f| {
            f.strip_prefix(&format!("{EVIDENCE_DIR}/"))
                .map(str::to_string)
        })
        .collect();
    let accounted = crate::audit::accounted(entries, &Record::new(dir), &|d| present.contains(d))
        .map_err(|e| fail(0, e.to_string()))?;
    match published {
        Some(folder) => {
            let notes = folder::check_published(
                folder, dir, files, entries, trusted, facts, &accounted, trust,
            )?;
            report.notes.extend(notes);
            report.folder_checked = true;
            note_folder_name(folder, report);
        }
        None => report
            .notes
            .extend(folder::local_leftovers(dir, files, &accounted)),
    }
    Ok(())
}

/// A folder can be copied under another name; the signed log says which release it is. Say so
/// when the two differ.
fn note_folder_name(folder: &dyn Folder, report: &mut ReplayReport) {
    let described = folder.describe();
    let name = match folder.local_path() {
        Some(p) => p
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())),
        None => described
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .map(str::to_string),
    };
    if let (Some(name), Some(version)) = (name, &report.version)
        && &name != version
    {
        report.notes.push(format!(
            "the folder is named {name}, but the release it holds is version {version}"
        ));
    }
}

/// A checkpoint kept from earlier must be signed by the release signer and extended by the log:
/// a record rolled back (shorter) or forked (other lines) to an earlier state fails here.
fn external_checkpoint(path: &Path, entries: &[Entry], trust: &TrustRoot) -> Result<(), Problem> {
    let shown = path.display().to_string();
    let stored =
        crate::log::checkpoint::read_stored(path, &shown).map_err(|m| fail(0, m.to_string()))?;
    match attest::check_checkpoint(&stored, entries, trust) {
        Ok(_) => Ok(()),
        Err(CheckpointError::Unsigned) => Err(fail(
            0,
            format!("{shown}: no {shown}.sig beside it; a checkpoint counts only when signed"),
        )),
        Err(CheckpointError::BadSignature(m)) => Err(fail(0, format!("{shown}: signature: {m}"))),
        Err(CheckpointError::Invalid(line, m)) => Err(fail(line, format!("{shown}: {m}"))),
    }
}
