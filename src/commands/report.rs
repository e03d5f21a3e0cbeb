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
}

pub fn run(args: &ReportArgs<'_>) -> i32 {
    // A release in a bucket is read into a temporary folder first, as `replay` does.
    let fetched;
    let local = match super::s3_remote::is_s3(args.path) {
        Some(url) => match super::s3_remote::fetch_release(url, args.pipeline) {
            Ok(tmp) => {
                fetched = tmp;
                fetched.path().to_path_buf()
            }
            Err((code, m)) => {
                errln!("relgate: report: {m}");
                return code;
            }
        },
        None => args.path.to_path_buf(),
    };
    let root = match trust::resolve(args.trust, args.pipeline, args.path) {
        Ok(r) => r,
        Err(e) => {
            errln!("relgate: {e}");
            return exit::CONFIG;
        }
    };
    let mut replayed = crate::replay::replay(
        &local,
        &crate::replay::ReplayOptions {
            trust: &root,
            checkpoints: &[],
        },
    );
    if local != args.path {
        replayed.record = args.path.join(AUDIT_DIR);
    }
    let audit = local.join(AUDIT_DIR);
    let dir = if audit.is_dir() { audit } else { local.clone() };
    let bytes = match crate::record::read_capped(&dir.join(LOG_FILE), crate::record::MAX_LOG_BYTES)
    {
        Ok(b) => b,
        Err(e) => {
            errln!(
                "relgate: report: cannot read {}: {e}",
                args.path.join(LOG_FILE).display()
            );
            return exit::REFUSED;
        }
    };
    // The chain must hold before anything is shown: a line that does not link is not the
    // log's, whoever vouches for the rest.
    let entries = match crate::log::read_log(&bytes) {
        Ok((entries, _)) => entries,
        Err(p) => {
            errln!(
                "relgate: report: {}/{LOG_FILE} line {}: {}; nothing in it can be shown",
                args.path.display(),
                p.line,
                p.message
            );
            return exit::REFUSED;
        }
    };
    let (unauthenticated, trusted) = match attest::attest(&dir, &entries, &root, Strictness::Resume)
    {
        Ok(att) if att.attested > 0 => (None, Some(att.trusted)),
        Ok(_) => (
            Some(
                "No checkpoint signed by the release signer covers any line of this record \
                     (its run had no signing key)."
                    .to_string(),
            ),
            None,
        ),
        Err(p) => (Some(unauthenticated_why(&entries, &p.to_string())), None),
    };
    let (relied, notes) = release::relied_on(&entries, trusted.as_deref());
    let record = Record::new(&dir);
    let report = release::build(Inputs {
        entries: &relied,
        record: &record,
        unauthenticated,
        notes,
        evidence_links: args.output.is_some_and(|o| beside(o, &dir)),
        verification: Verification::Replayed(replayed),
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
