//! Replay step 6: a published folder is exactly what its record says was gated, and holds
//! nothing the record does not account for.

use std::path::Path;

use super::runs::{LogFacts, RunFacts};
use super::{Problem, fail};
use crate::audit::{self, Accounted};
use crate::digest::sha256_hex;
use crate::folder::Folder;
use crate::log::{Entry, Record as LogRecord, RunStarted};
use crate::record::{APPROVALS_DIR, Blobs, Record, STAGED_DIR};
use crate::trust::TrustRoot;
use crate::verify;

/// Check a published folder and its `audit/` record (`dir`, whose files are `files`;
/// `trusted`: which log lines the verified checkpoints vouched for in time). Returns notes.
///
/// The steps, in this order: the run that published, the record's files, `SHA256SUMS` and the
/// artefacts' sizes before anything is hashed, the folder itself, the attestation, and a note
/// when the report is not there.
#[expect(
    clippy::too_many_arguments,
    reason = "the facts replay's earlier steps established"
)]
pub(super) fn check_published(
    folder: &dyn Folder,
    dir: &Path,
    files: &[String],
    entries: &[Entry],
    trusted: &[bool],
    facts: &LogFacts,
    accounted: &Accounted,
    trust: &TrustRoot,
) -> Result<Vec<String>, Problem> {
    let publishing = publishing_run(entries, facts)?;
    check_record_files(dir, files, entries, trusted, accounted)?;
    let recorded_sums = check_sums_and_sizes(folder, dir, &publishing)?;
    let verified = check_folder(folder, trust, &publishing, &recorded_sums)?;
    check_attestation(dir, entries, &publishing, &verified)?;
    Ok(report_note(files))
}

/// The run that published, as the log records it.
struct Publishing<'a> {
    run: &'a RunFacts,
    started: &'a RunStarted,
    /// The line of its start.
    start_line: usize,
    /// The line of the publish decision, the log's last.
    decision_line: usize,
}

/// The published record is the log as it stood at the publish decision: its last line is a
/// run's publish decision, and that run has a start.
fn publishing_run<'a>(
    entries: &'a [Entry],
    facts: &'a LogFacts,
) -> Result<Publishing<'a>, Problem> {
    let last = entries.len() - 1;
    let Some(run) = facts.runs.iter().find(|r| r.publish == Some(last)) else {
        return Err(fail(
            entries.len(),
            "the published record does not end with its publish decision",
        ));
    };
    let LogRecord::RunStarted(started) = &entries[run.index].record else {
        return Err(fail(0, "the publishing run has no start"));
    };
    Ok(Publishing {
        run,
        started,
        start_line: entries[run.index].line,
        decision_line: entries[last].line,
    })
}

/// Every file in audit/ is the log, a checkpoint, the report, or something the log accounts
/// for, and no folder rides along either.
fn check_record_files(
    dir: &Path,
    files: &[String],
    entries: &[Entry],
    trusted: &[bool],
    accounted: &Accounted,
) -> Result<(), Problem> {
    if let Some(extra) = audit::unexpected_dirs(dir)
        .map_err(|e| fail(0, e.to_string()))?
        .first()
    {
        return Err(fail(
            0,
            format!("audit/{extra}/ is a folder the log does not account for"),
        ));
    }
    for rel in files {
        if Accounted::is_structural(rel, files) {
            continue;
        }
        // The report is accounted for by rendering the record again: the same bytes, or it
        // is not the record's (an edited sentence, a script added, another format).
        if rel == audit::REPORT_FILE {
            check_report(dir, entries, trusted)?;
            continue;
        }
        let digest = audit::file_digest(dir, rel).map_err(|e| fail(0, format!("audit/{e}")))?;
        if !accounted.covers(rel, &digest) {
            return Err(fail(
                0,
                format!(
                    "audit/{rel} is not accounted for by the log (an added or edited file; \
                     sha256 {digest})"
                ),
            ));
        }
    }
    Ok(())
}

/// Before anything is hashed: `SHA256SUMS` must be the one the log staged, and every artefact
/// the size the log recorded (a huge or sparse file is refused without reading it). Returns
/// the recorded `SHA256SUMS`.
fn check_sums_and_sizes(
    folder: &dyn Folder,
    dir: &Path,
    p: &Publishing<'_>,
) -> Result<Vec<u8>, Problem> {
    let recorded_sums = Record::new(dir)
        .get(&p.started.sums)
        .map_err(|e| fail(p.start_line, e.to_string()))?;
    let found_sums = crate::folder::read_capped(folder, crate::layout::SUMS_FILE, 64 << 20)
        .map_err(|e| fail(0, format!("{}: {e}", crate::layout::SUMS_FILE)))?;
    if found_sums != recorded_sums {
        return Err(not_the_staged_sums(&found_sums, p));
    }
    for a in &p.started.artefacts {
        // A folder that cannot tell a size without reading (some servers) is hashed as it is.
        let size = folder.size(&a.release_path);
        if size.is_some_and(|n| n != a.size) {
            return Err(fail(
                p.start_line,
                format!(
                    "{}: {} bytes where the gated artefact had {}",
                    a.release_path,
                    size.map_or("no".to_string(), |n| n.to_string()),
                    a.size
                ),
            ));
        }
    }
    Ok(recorded_sums)
}

/// The published `SHA256SUMS` (`found`) is not the one the publishing run staged.
fn not_the_staged_sums(found: &[u8], p: &Publishing<'_>) -> Problem {
    fail(
        p.decision_line,
        format!(
            "the published SHA256SUMS (sha256:{}) is not the one the log staged and gated ({})",
            sha256_hex(found),
            p.started.subject
        ),
    )
}

/// The folder itself: every artefact against `SHA256SUMS`, nothing unlisted, and the signature
/// by the release signer under the trust root, as of the run that published it; the verified
/// `SHA256SUMS` is the recorded one, and its signature the one the sign gate recorded.
fn check_folder(
    folder: &dyn Folder,
    trust: &TrustRoot,
    p: &Publishing<'_>,
    recorded_sums: &[u8],
) -> Result<verify::Verified, Problem> {
    let verified = verify::check(folder, trust, p.started.started_at).map_err(|problems| {
        fail(
            0,
            format!(
                "the published folder does not verify: {}",
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        )
    })?;
    if verified.sums != recorded_sums {
        return Err(not_the_staged_sums(&verified.sums, p));
    }
    let sig_digest = sha256_hex(&verified.signature);
    if p.run.signature.as_deref() != Some(sig_digest.as_str()) {
        return Err(fail(
            p.decision_line,
            "the published SHA256SUMS.sig is not the signature the sign gate recorded",
        ));
    }
    Ok(verified)
}

/// The attestation says exactly what the record says: its statement is derived again from the
/// published log and checkpoint, byte for byte (`crate::intoto::vsa`).
fn check_attestation(
    dir: &Path,
    entries: &[Entry],
    p: &Publishing<'_>,
    verified: &verify::Verified,
) -> Result<(), Problem> {
    let read = |name: &str, cap: u64| {
        crate::record::read_capped(&dir.join(name), cap)
            .map_err(|e| fail(0, format!("audit/{name}: {e}")))
    };
    let log = read(crate::record::LOG_FILE, crate::record::MAX_LOG_BYTES)?;
    let checkpoint = read(crate::record::CHECKPOINT_FILE, 64 << 10)?;
    let derived = crate::intoto::vsa::from_record(entries, &log, &checkpoint, None)
        .map_err(|m| fail(p.decision_line, m))?;
    if crate::intoto::vsa::statement(&derived) != verified.statement {
        return Err(fail(
            p.decision_line,
            format!(
                "{}: its statement is not the one the record derives (its time, place, policy, \
                 log or checkpoint differ from the publish decision's)",
                crate::layout::VSA_FILE
            ),
        ));
    }
    Ok(())
}

/// A note when `audit/report.html` is not there (checked, when it is, with the record's files).
fn report_note(files: &[String]) -> Vec<String> {
    let mut notes = Vec::new();
    if !files.iter().any(|f| f == audit::REPORT_FILE) {
        notes.push(format!(
            "audit/{} is not there (a release published before reports were included, or it \
             was removed); `relgate report` renders it from the record",
            audit::REPORT_FILE
        ));
    }
    notes
}

/// `audit/report.html` must be exactly what the published record renders to.
fn check_report(dir: &Path, entries: &[Entry], trusted: &[bool]) -> Result<(), Problem> {
    let found = crate::record::read_capped(
        &dir.join(audit::REPORT_FILE),
        crate::record::MAX_EVIDENCE_BYTES,
    )
    .map_err(|e| fail(0, format!("audit/{}: {e}", audit::REPORT_FILE)))?;
    let rendered = crate::report::release::embedded(dir, entries, trusted);
    if found == rendered {
        return Ok(());
    }
    let format = crate::report::release::FORMAT_VERSION;
    let marker = format!("<meta name=\"relgate-report-format\" content=\"{format}\">");
    let why = if String::from_utf8_lossy(&found).contains(&marker) {
        format!(
            "it differs from what the record renders to (sha256 {})",
            sha256_hex(&found)
        )
    } else {
        format!(
            "it is not report format {format}, the one this relgate renders (sha256 {})",
            sha256_hex(&found)
        )
    };
    Err(fail(
        0,
        format!(
            "audit/{} is not the record's report: {why}; an edited or added report is refused",
            audit::REPORT_FILE
        ),
    ))
}

/// A local record may hold what a published one may not: the staged copies, the lock, a torn
/// line set aside, sign-offs handed in since the last run, evidence of a run killed before its
/// verdict. Say what is there beyond the log's account, without failing.
pub(super) fn local_leftovers(dir: &Path, files: &[String], accounted: &Accounted) -> Vec<String> {
    let mut pending = 0;
    let mut unaccounted = Vec::new();
    for rel in files {
        if Accounted::is_structural(rel, files)
            || rel.starts_with(&format!("{STAGED_DIR}/"))
            || rel == ".lock"
            || rel == crate::publish::CLAIM_TOKEN_FILE
            || rel.starts_with("log.torn-")
            // A dry run's rehearsal attestation (`crate::intoto::vsa`).
            || rel == crate::layout::VSA_FILE
            || rel == crate::layout::PUBKEY_FILE
            || rel.starts_with(&format!("{}/", crate::log::checkpoint::HISTORY_DIR))
        {
            continue;
        }
        let Ok(digest) = audit::file_digest(dir, rel) else {
            unaccounted.push(rel.clone());
            continue;
        };
        if accounted.covers(rel, &digest) {
            continue;
        }
        if rel.starts_with(&format!("{APPROVALS_DIR}/")) {
            pending += 1;
        } else {
            unaccounted.push(rel.clone());
        }
    }
    let mut notes = Vec::new();
    if pending > 0 {
        notes.push(format!(
            "{pending} file(s) in approvals/ not yet read by a run (they count from the next run)"
        ));
    }
    if !unaccounted.is_empty() {
        notes.push(format!(
            "{} file(s) the log does not account for (never published): {}",
            unaccounted.len(),
            unaccounted.join(", ")
        ));
    }
    notes
}
