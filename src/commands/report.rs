//! `relgate report PATH|URL`: the auditor's report of a release record or a published release
//! ([`crate::report::release`]), as HTML or Markdown, on stdout or into a file.
//!
//! The record is replayed first, under a trust root from outside it (as `replay` takes one),
//! and the report says what replay said. It relies only on lines a checkpoint signed by the
//! release signer vouched for in time; a record nothing vouches for (a dry run's, signed by a
//! throwaway key; one whose checkpoints do not hold) is shown whole under a banner saying it is
//! unauthenticated. Exit 0: written, and the record verified; 1: written, but the record does
//! not verify (the report says why), or it could not be read at all; 2: no trust root, or the
//! output cannot be written.

use std::path::{Path, PathBuf};

use crate::exit;
use crate::layout::AUDIT_DIR;
use crate::log::attest::{self, Strictness};
use crate::output::{errln, out};
use crate::record::{LOG_FILE, Record};
use crate::report::release::{self, Html, Inputs, Markdown, Reporter, Verification};
use crate::trust::{self, TrustArgs};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    Html,
    Markdown,
}

pub struct ReportArgs<'a> {
    pub path: &'a Path,
    pub trust: &'a TrustArgs,
    pub pipeline: &'a Path,
    pub format: ReportFormat,
    pub output: Option<&'a Path>,
    /// How to reach a release at an http(s):// URL.
    pub access: &'a crate::folder::Access,
}

/// A release record read for a command that shows it: replayed under the trust root, its log
/// read (the chain holds), and which lines a checkpoint signed by the release signer vouched
/// for in time. Shared by `report` and what-if replay.
pub(crate) struct Opened {
    /// Keeps the private copy of a record read from a URL on disk while `dir` is read.
    _copy: Option<tempfile::TempDir>,
    /// The record folder (`audit/` of a published release).
    pub dir: PathBuf,
    pub replayed: crate::replay::ReplayReport,
    pub entries: Vec<crate::log::Entry>,
    /// Per line, trusted in time; or why nothing in the record is vouched for.
    pub trusted: Result<Vec<bool>, String>,
}

/// Open PATH (a record, a published folder, or its http(s):// or s3:// URL) for `what` (the
/// command, in messages). On failure the message is printed and the exit code returned.
pub(crate) fn open(
    what: &str,
    path: &Path,
    trust_args: &TrustArgs,
    pipeline: &Path,
    access: &crate::folder::Access,
) -> Result<Opened, i32> {
    let root = match trust::resolve(trust_args, pipeline, path) {
        Ok(r) => r,
        Err(e) => {
            errln!("relgate: {e}");
            return Err(exit::CONFIG);
        }
    };
    // A release at a URL (WebDAV or S3) is read through the folder trait; replay copies its
    // record into a private folder that `read` keeps, and streams the artefacts.
    let folder = match crate::folder::open(path, &access.with_pipeline(pipeline)) {
        Ok(f) => f,
        Err(e) => {
            errln!("relgate: {what}: {e}");
            return Err(exit::CONFIG);
        }
    };
    let (replayed, read) = crate::replay::replay_and_read(
        folder.as_ref(),
        &crate::replay::ReplayOptions {
            trust: &root,
            checkpoints: &[],
        },
    );
    // Replay read the log and verified its checkpoints: use what it read. It stops before
    // that only for a record whose checkpoints do not hold (a dry run's, a tampered one),
    // which is then read here, chain first, to be shown under its banner.
    if let Some(read) = read {
        return Ok(Opened {
            _copy: read.copy,
            dir: read.dir,
            replayed,
            entries: read.entries,
            trusted: Ok(read.trusted),
        });
    }
    if folder.local_path().is_none() {
        // Nothing was copied from the URL to show under a banner: say why replay stopped.
        let why = replayed
            .problem
            .as_ref()
            .map_or_else(|| "it could not be read".to_string(), |p| p.message.clone());
        errln!(
            "relgate: {what}: {}: {}",
            path.display(),
            crate::report::printable(&why)
        );
        return Err(exit::REFUSED);
    }
    let audit = path.join(AUDIT_DIR);
    let dir = if audit.is_dir() {
        audit
    } else {
        path.to_path_buf()
    };
    let bytes = match crate::record::read_capped(&dir.join(LOG_FILE), crate::record::MAX_LOG_BYTES)
    {
        Ok(b) => b,
        Err(e) => {
            errln!(
                "relgate: {what}: cannot read {}: {e}",
                path.join(LOG_FILE).display()
            );
            return Err(exit::REFUSED);
        }
    };
    // The chain must hold before anything is shown: a line that does not link is not the
    // log's, whoever vouches for the rest.
    let entries = match crate::log::read_log(&bytes) {
        Ok((entries, _)) => entries,
        Err(p) => {
            errln!(
                "relgate: {what}: {}/{LOG_FILE} line {}: {}; nothing in it can be used",
                path.display(),
                p.line,
                p.message
            );
            return Err(exit::REFUSED);
        }
    };
    let trusted = match attest::attest(&dir, &entries, &root, Strictness::Resume) {
        Ok(att) if att.attested > 0 => Ok(att.trusted),
        Ok(_) => Err(
            "No checkpoint signed by the release signer covers any line of this record (its \
             run had no signing key)."
                .to_string(),
        ),
        Err(p) => Err(unauthenticated_why(&entries, &p.to_string())),
    };
    Ok(Opened {
        _copy: None,
        dir,
        replayed,
        entries,
        trusted,
    })
}

pub fn run(args: &ReportArgs<'_>) -> i32 {
    let opened = match open("report", args.path, args.trust, args.pipeline, args.access) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let Opened {
        dir,
        replayed,
        entries,
        trusted,
        ..
    } = &opened;
    let (unauthenticated, trusted) = match trusted {
        Ok(t) => (None, Some(t.as_slice())),
        Err(why) => (Some(why.clone()), None),
    };
    let (relied, notes) = release::relied_on(entries, trusted);
    let record = Record::new(dir);
    let report = release::build(Inputs {
        entries: &relied,
        record: &record,
        unauthenticated,
        notes,
        evidence_links: args.output.is_some_and(|o| beside(o, dir)),
        verification: Verification::Replayed(replayed.clone()),
    });
    let reporter: &dyn Reporter = match args.format {
        ReportFormat::Html => &Html,
        ReportFormat::Markdown => &Markdown,
    };
    let doc = reporter.render(&report);
    match args.output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &doc) {
                errln!("relgate: report: cannot write {}: {e}", path.display());
                return exit::CONFIG;
            }
        }
        None => out!("{}", String::from_utf8_lossy(&doc)),
    }
    let verified = matches!(&report.verification, Verification::Replayed(r) if r.ok);
    if verified && report.unauthenticated.is_none() {
        exit::SUCCESS
    } else {
        errln!(
            "relgate: report: the record does not verify; the report says why{}",
            args.output
                .map(|o| format!(" ({})", o.display()))
                .unwrap_or_default()
        );
        exit::REFUSED
    }
}

/// Why a record is not vouched for, in words for its banner.
fn unauthenticated_why(entries: &[crate::log::Entry], problem: &str) -> String {
    let dry_run = entries
        .iter()
        .any(|e| matches!(&e.record, crate::log::Record::RunStarted(r) if r.dry_run));
    if dry_run {
        format!(
            "This is a dry run's record: its checkpoints are signed by a throwaway key that \
             anyone can make, so they say nothing about who made it ({problem})."
        )
    } else {
        format!("Its checkpoints do not hold under the trust root: {problem}.")
    }
}

/// Does `output` go into the record folder `dir` itself (where `evidence/` links resolve)?
fn beside(output: &Path, dir: &Path) -> bool {
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match (parent.canonicalize(), dir.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
