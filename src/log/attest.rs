//! Attestation: which prefix of a release log the release signer vouches for.
//!
//! A log's chain shows that no line was altered, inserted or reordered *relative to the lines
//! around it*; only a signed checkpoint says which log the release signer wrote. Every
//! checkpoint a record holds (the history in `checkpoints/` and the latest `checkpoint`) must
//! be signed by the release signer under a trust root from outside the record, and the log must
//! extend it: the line at its `size` has its `head`. `replay` demands that of every checkpoint
//! and that the newest covers every line; `run`, `status` and `approve` rely only on the lines
//! a valid checkpoint covers, and refuse a record whose checkpoints do not hold.

use std::path::Path;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::checkpoint::{self, Checkpoint, Stored};
use super::reader::Entry;
use super::records::{Record, RunStarted};
use crate::record::CHECKPOINT_FILE;
use crate::sshsig;
use crate::trust::TrustRoot;

/// What the checkpoints of a record vouch for.
#[derive(Clone, Debug, Default)]
pub struct Attestation {
    /// Lines covered by the newest valid checkpoint (0: none).
    pub attested: usize,
    /// Who signed that checkpoint (`release@acme.test (SHA256:…)`, or a dry run's throwaway key).
    pub signer: Option<String>,
    /// How many checkpoints verified.
    pub checkpoints: usize,
    /// Things worth saying that are not failures (unsigned checkpoints, lines sealed late).
    pub notes: Vec<String>,
    /// The newest checkpoint that verified, as stored.
    pub newest: Option<Stored>,
    /// Per line: was it attested *in time*, by a checkpoint signed before any later run began?
    /// Lines a later run's checkpoint sealed only afterwards — those of a run that did not
    /// finish, or lines added by someone without the key — are never relied on, even though
    /// the chain now covers them.
    pub trusted: Vec<bool>,
}

/// A checkpoint that does not hold: which file, the log line it concerns (0: none), and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", if *line > 0 { format!(" line {line}") } else { String::new() })]
pub struct AttestProblem {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Why one checkpoint does not count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointError {
    /// No `.sig` beside it: the run had no signing key.
    Unsigned,
    /// The signature does not verify over the text (possibly two files from different writes).
    BadSignature(String),
    /// Anything else: not a checkpoint, another release, a log that does not extend it, a key
    /// the trust root does not allow. The line it concerns, and why.
    Invalid(usize, String),
}

/// A checkpoint that verified.
#[derive(Clone, Debug)]
pub struct Checked {
    pub checkpoint: Checkpoint,
    pub signer: String,
}

/// How strictly [`attest`] reads a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strictness {
    /// `replay`: every checkpoint signed and valid; the newest covers every line.
    Replay,
    /// `run`, `status`, `approve`: lines past the newest valid checkpoint are unattested (a run
    /// killed before sealing leaves some); unsigned checkpoints attest nothing; but a checkpoint
    /// that is signed and does not hold means the record was tampered with.
    Resume,
}

fn first_run(entries: &[Entry]) -> Option<&RunStarted> {
    entries.iter().find_map(|e| match &e.record {
        Record::RunStarted(r) => Some(r.as_ref()),
        _ => None,
    })
}

/// Check one checkpoint against the log and the trust root.
pub fn check_checkpoint(
    stored: &Stored,
    entries: &[Entry],
    trust: &TrustRoot,
) -> Result<Checked, CheckpointError> {
    let invalid = |line: usize, m: String| CheckpointError::Invalid(line, m);
    let cp = Checkpoint::parse(&stored.text).map_err(|m| invalid(0, m))?;
    let run = first_run(entries).ok_or_else(|| invalid(0, "the log holds no run".into()))?;
    let origin = format!("relgate/{}/{}", run.project, run.version);
    if cp.origin != origin {
        return Err(invalid(
            0,
            format!("the checkpoint speaks of {}, not {origin}", cp.origin),
        ));
    }
    let size = usize::try_from(cp.size).unwrap_or(usize::MAX);
    if size == 0 || size > entries.len() {
        return Err(invalid(
            entries.len().max(1),
            format!(
                "the signed checkpoint covers {} lines but the log has {} (lines removed at the \
                 end: the record was cut or rolled back)",
                cp.size,
                entries.len()
            ),
        ));
    }
    if entries[size - 1].head.hex() != cp.head {
        return Err(invalid(
            size,
            format!(
                "the log's first {size} lines are not the ones this checkpoint signed (a line \
                 was altered, or the record was forked)"
            ),
        ));
    }
    let sig = stored.sig.as_deref().ok_or(CheckpointError::Unsigned)?;
    let key =
        sshsig::signature_key(sig).map_err(|e| CheckpointError::BadSignature(e.to_string()))?;
    sshsig::verify_with_key(&key, sshsig::NS_CHECKPOINT, stored.text.as_bytes(), sig)
        .map_err(|e| CheckpointError::BadSignature(e.to_string()))?;
    let fp = sshsig::fingerprint(&key);
    // A dry run signs with a throwaway key that it records in the log itself: anyone can make
    // one and write it there, so it proves nothing about who made the record. It is never
    // trusted, and is named as what it is.
    let throwaway = entries[..size].iter().any(|e| match &e.record {
        Record::RunStarted(r) => r
            .checkpoint_key
            .as_ref()
            .is_some_and(|k| k.throwaway && k.fingerprint == fp),
        _ => false,
    });
    if throwaway {
        return Err(invalid(
            0,
            format!(
                "signed by {fp}, a dry run's throwaway key, which anyone can make: the chain \
                 holds, but nothing says who made this record"
            ),
        ));
    }
    let at = OffsetDateTime::parse(&cp.time, &Rfc3339)
        .map_err(|_| {
            invalid(
                0,
                format!("the checkpoint time {:?} is not RFC 3339", cp.time),
            )
        })?
        .unix_timestamp();
    let signer = trust
        .release_key(&key, sshsig::NS_CHECKPOINT, at)
        .map_err(|m| invalid(0, m))?;
    Ok(Checked {
        checkpoint: cp,
        signer,
    })
}

/// Which lines a checkpoint covered before the next run began: line `i` is trusted when some
/// valid checkpoint's size `s` has `i < s <= n`, `n` being the index of the first `run-started`
/// after `i` (the log's length when there is none). Every run that finishes seals its lines
/// with a checkpoint before the next run starts, so only lines of an unfinished run, or lines
/// someone appended without the key and a later run then sealed, fall outside.
pub fn in_time(entries: &[Entry], sizes: &[usize]) -> Vec<bool> {
    let mut trusted = vec![false; entries.len()];
    let mut next_run = entries.len();
    for i in (0..entries.len()).rev() {
        trusted[i] = sizes.iter().any(|&s| i < s && s <= next_run);
        if matches!(entries[i].record, Record::RunStarted(_)) {
            next_run = i;
        }
    }
    trusted
}

/// Check every checkpoint in the record folder `dir` against `entries` (its log).
pub fn attest(
    dir: &Path,
    entries: &[Entry],
    trust: &TrustRoot,
    strictness: Strictness,
) -> Result<Attestation, AttestProblem> {
    let problem = |file: &str, line: usize, message: String| AttestProblem {
        file: file.to_string(),
        line,
        message,
    };
    let stored = checkpoint::list(dir).map_err(|m| problem("checkpoints", 0, m.to_string()))?;
    let mut out = Attestation::default();
    if stored.is_empty() {
        if strictness == Strictness::Replay {
            return Err(problem(
                CHECKPOINT_FILE,
                0,
                "no checkpoint: the log is not signed".into(),
            ));
        }
        if !entries.is_empty() {
            out.notes
                .push("the record holds no checkpoint: nothing in it is attested".into());
        }
        out.trusted = vec![false; entries.len()];
        return Ok(out);
    }
    let history_valid = stored.iter().filter(|s| s.file != CHECKPOINT_FILE).count();
    let mut sizes: Vec<usize> = Vec::new();
    for s in &stored {
        match check_checkpoint(s, entries, trust) {
            Ok(c) => {
                out.checkpoints += 1;
                let size = usize::try_from(c.checkpoint.size).unwrap_or(usize::MAX);
                if size >= out.attested {
                    out.attested = size;
                    out.signer = Some(c.signer.clone());
                    out.newest = Some(s.clone());
                }
                sizes.push(size);
            }
            Err(CheckpointError::Unsigned) => {
                if strictness == Strictness::Replay {
                    return Err(problem(
                        &s.file,
                        0,
                        "the checkpoint is not signed: the signing key was not available".into(),
                    ));
                }
                if !out.notes.iter().any(|n| n.contains("unsigned")) {
                    out.notes.push(
                        "unsigned checkpoints (the run had no signing key) attest nothing".into(),
                    );
                }
            }
            // The latest pair is rewritten file by file; a run killed between the two leaves
            // them disagreeing while the history holds the signed copy. Only `run` and its
            // companions forgive that; replay wants a consistent record.
            Err(CheckpointError::BadSignature(m))
                if strictness == Strictness::Resume
                    && s.file == CHECKPOINT_FILE
                    && history_valid > 0 =>
            {
                out.notes.push(format!(
                    "the latest checkpoint and its signature disagree ({m}); the history's \
                     copies are used"
                ));
            }
            Err(CheckpointError::BadSignature(m)) => {
                return Err(problem(&s.file, 0, format!("signature: {m}")));
            }
            Err(CheckpointError::Invalid(line, m)) => return Err(problem(&s.file, line, m)),
        }
    }
    out.trusted = in_time(entries, &sizes);
    if strictness == Strictness::Replay && out.attested != entries.len() {
        return Err(problem(
            CHECKPOINT_FILE,
            out.attested + 1,
            format!(
                "the newest signed checkpoint covers {} lines but the log has {} (lines added at \
                 the end that the release signer never signed)",
                out.attested,
                entries.len()
            ),
        ));
    }
    Ok(out)
}

/// A record's log as `run`, `status` and `approve` may use it: every line, and which of them a
/// signed checkpoint vouched for in time ([`in_time`]).
#[derive(Clone, Debug, Default)]
pub struct ForUse {
    pub entries: Vec<Entry>,
    /// Lines covered by the newest valid checkpoint.
    pub attested: usize,
    /// Per line: attested in time. Only these lines are ever relied on.
    pub trusted: Vec<bool>,
    pub signer: Option<String>,
    pub notes: Vec<String>,
}

impl ForUse {
    /// The lines relied on, in order: those attested in time.
    pub fn trusted_entries(&self) -> Vec<Entry> {
        self.entries
            .iter()
            .zip(&self.trusted)
            .filter(|(_, t)| **t)
            .map(|(e, _)| e.clone())
            .collect()
    }
}

/// Read and check the record in `dir` before anything in it is used: the log reads strictly
/// (a torn last line, which the next writer sets aside, is left out) and every checkpoint holds
/// under the trust root. A record without a log is empty.
pub fn read_for_use(dir: &Path, trust: &TrustRoot) -> Result<ForUse, AttestProblem> {
    regular_files_only(dir)?;
    let Some(bytes) = read_log_bytes(dir)? else {
        return Ok(ForUse::default());
    };
    let entries = strict_entries(dir, &bytes)?;
    let mut att = attest(dir, &entries, trust, Strictness::Resume)?;
    extends_pin(dir, &entries, trust)?;
    if let Some(newest) = &att.newest {
        super::pin::remember(dir, newest);
    }
    let mut notes = std::mem::take(&mut att.notes);
    notes.extend(not_relied_on(&att, entries.len()));
    Ok(ForUse {
        entries,
        attested: att.attested,
        trusted: att.trusted,
        signer: att.signer,
        notes,
    })
}

/// Regular files and folders only: a link planted in the record would have relgate read or
/// write elsewhere, a FIFO would block it. A record that is not there has nothing to refuse.
fn regular_files_only(dir: &Path) -> Result<(), AttestProblem> {
    if std::fs::symlink_metadata(dir).is_ok() {
        crate::audit::list_files(dir).map_err(|e| AttestProblem {
            file: dir.display().to_string(),
            line: 0,
            message: e.to_string(),
        })?;
    }
    Ok(())
}

/// The log's bytes, read capped; `None` when the record has no log.
fn read_log_bytes(dir: &Path) -> Result<Option<Vec<u8>>, AttestProblem> {
    let log_path = dir.join(crate::record::LOG_FILE);
    match crate::record::read_capped(&log_path, crate::record::MAX_LOG_BYTES) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AttestProblem {
            file: crate::record::LOG_FILE.into(),
            line: 0,
            message: e.to_string(),
        }),
    }
}

/// A defect of the log, as the problem it is.
fn damaged(p: super::LogProblem) -> AttestProblem {
    AttestProblem {
        file: crate::record::LOG_FILE.into(),
        line: p.line,
        message: p.message,
    }
}

/// The log's lines, read strictly; a torn last line is left out ([`without_torn_tail`]), any
/// other defect refuses the record.
fn strict_entries(dir: &Path, bytes: &[u8]) -> Result<Vec<Entry>, AttestProblem> {
    match super::read_log(bytes) {
        Ok((entries, _)) => Ok(entries),
        Err(p) if p.torn_tail => without_torn_tail(dir, bytes, &p),
        Err(p) => Err(damaged(p)),
    }
}

/// The lines before a torn last line (`torn`: why it does not read), which the next writer
/// sets aside. Only a line past every checkpoint can be torn by a crash; one a checkpoint
/// covers was complete once (the writer refuses to cut it, too).
fn without_torn_tail(
    dir: &Path,
    bytes: &[u8],
    torn: &super::LogProblem,
) -> Result<Vec<Entry>, AttestProblem> {
    let search = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let cut = search
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let good = super::read_log(&bytes[..cut]).map_err(damaged)?.0;
    let signed = checkpoint::list(dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|s| Checkpoint::parse(&s.text).ok())
        .map(|c| c.size)
        .max()
        .unwrap_or(0);
    if signed > good.len() as u64 {
        return Err(AttestProblem {
            file: crate::record::LOG_FILE.into(),
            line: good.len() + 1,
            message: format!(
                "damaged although the signed checkpoint covers {signed} lines, so it was \
                 complete once and was not torn by a crash ({})",
                torn.message
            ),
        });
    }
    Ok(good)
}

/// The record must extend the newest checkpoint this machine saw for it: a record rolled back
/// (cut, its newer checkpoints removed) is whole and signed, and only a checkpoint kept outside
/// it can tell. A pin that no longer verifies (a rotated key) protects nothing; it is replaced.
fn extends_pin(dir: &Path, entries: &[Entry], trust: &TrustRoot) -> Result<(), AttestProblem> {
    let Some(pinned) = super::pin::load(dir) else {
        return Ok(());
    };
    match check_checkpoint(&pinned, entries, trust) {
        Err(CheckpointError::Invalid(line, m)) if m.contains("lines") => Err(AttestProblem {
            file: pinned.file.clone(),
            line,
            message: format!(
                "the record does not extend the checkpoint this machine saw for it last (kept \
                 outside the record): {m}"
            ),
        }),
        _ => Ok(()),
    }
}

/// Notes on the lines nothing is relied on from: those a later run's checkpoint sealed only
/// afterwards, and those no signed checkpoint covers (`lines`: the log's length).
fn not_relied_on(att: &Attestation, lines: usize) -> Vec<String> {
    let mut notes = Vec::new();
    let late: Vec<usize> = att
        .trusted
        .iter()
        .enumerate()
        .filter(|(i, t)| !**t && *i < att.attested)
        .map(|(i, _)| i + 1)
        .collect();
    if let (Some(first), Some(last)) = (late.first(), late.last()) {
        notes.push(format!(
            "{} log line(s) between {first} and {last} were sealed only by a later run's \
             checkpoint (a run that did not finish, or lines added without the release key); \
             nothing in them is relied on",
            late.len()
        ));
    }
    if att.attested < lines {
        notes.push(format!(
            "log lines {}-{} are not covered by a signed checkpoint (a run that did not finish); \
             nothing in them is relied on",
            att.attested + 1,
            lines
        ));
    }
    notes
}
