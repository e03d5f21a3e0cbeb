//! The auditor's report of one release: what was released, by whom, how each gate decided and
//! on what evidence, who signed off, what segregation of duties was checked, the change record,
//! the security findings, the virus scan, and what replay said about the record.
//!
//! [`ReleaseReport`] is built once from the typed view of the log ([`crate::view`]) and the
//! record's evidence ([`build`]); each format is a [`Reporter`] writing it into any `Write`
//! ([`Html`], [`Markdown`]), so every format is snapshot-testable and the two always say the same.
//!
//! A report is a pure function of the record: it holds the record's own times, never the
//! clock's, and nothing of the machine that rendered it. A published release carries its report
//! as `audit/report.html` and replay renders the record again and requires the same bytes
//! ([`FORMAT_VERSION`] says which renderer made it).

mod build;
mod escape;
mod html;
mod markdown;
mod sections;

use std::io::{self, Write};

pub use build::{Inputs, Verification, build, notification_text, relied_on};
pub use html::Html;
pub use markdown::Markdown;

/// The report's format. A change to what a renderer writes for the same record changes this
/// number, and the renderer of every earlier number stays, so that replay can still render
/// the `audit/report.html` of a release published before the change.
pub const FORMAT_VERSION: u32 = 1;

/// The file name of the report in a published release's `audit/`.
pub const REPORT_FILE: &str = "report.html";

/// Writes a [`ReleaseReport`] in one format.
pub trait Reporter {
    fn write(&self, report: &ReleaseReport, out: &mut dyn Write) -> io::Result<()>;

    /// The whole document in memory.
    fn render(&self, report: &ReleaseReport) -> Vec<u8> {
        let mut buf = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = self.write(report, &mut buf);
        buf
    }
}

/// Everything a report says, in the order it says it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReleaseReport {
    pub project: String,
    pub version: String,
    /// Why nothing here is vouched for, when that is so (a dry run's throwaway key, a record
    /// whose checkpoints do not hold): shown first, in words nobody can miss.
    pub unauthenticated: Option<String>,
    pub release: ReleaseFacts,
    pub checkpoint: Option<CheckpointFacts>,
    /// Every run, oldest first.
    pub runs: Vec<RunRow>,
    /// The run the gates below are of (the latest).
    pub deciding_run: u32,
    pub gates: Vec<GateRow>,
    pub signoffs: Vec<SignoffSection>,
    pub segregation: Segregation,
    pub changes: Vec<ChangesSection>,
    pub findings: Vec<FindingsSection>,
    pub scans: Vec<ScanSection>,
    /// Log lines left out because no checkpoint vouched for them in time.
    pub notes: Vec<String>,
    /// Evidence is linked (`evidence/<digest>`) when the report sits beside it.
    pub evidence_links: bool,
    pub verification: Verification,
}

/// The release at a glance.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReleaseFacts {
    /// `sha256:` over `SHA256SUMS`.
    pub subject: String,
    /// `published`, `refused`, `pending`, `dry-run`, `aborted`, or `unfinished`.
    pub decision: String,
    /// When it was decided: the time of that log line.
    pub decided_at: Option<String>,
    pub operator: Option<String>,
    /// The release signer (the sign gate's principal).
    pub signer: Option<String>,
    /// The key that signed `SHA256SUMS`, else the key that signs the checkpoints.
    pub key_fingerprint: Option<String>,
    /// True when that key is a dry run's throwaway key.
    pub throwaway_key: bool,
    pub dry_run: bool,
    /// Where it was published, as the log names it.
    pub published_to: Option<String>,
    /// The artefacts: release path, size, sha256.
    pub artefacts: Vec<(String, u64, String)>,
    pub tool_version: String,
}

/// The latest checkpoint of the record, as it reads (verified by replay, not by the report).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckpointFacts {
    pub size: u64,
    pub head: String,
    pub time: String,
    /// The fingerprint of the key in `checkpoint.sig`; `None`: unsigned.
    pub signed_by: Option<String>,
}

/// One run in the timeline.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunRow {
    pub run: u32,
    pub line: usize,
    pub started: String,
    pub operator: Option<String>,
    pub subject: String,
    pub subject_changed: bool,
    pub dry_run: bool,
    pub decision: Option<String>,
    pub ended: Option<String>,
    pub exit_code: Option<i32>,
    pub message: Option<String>,
    /// `2 green, 1 red, 1 pending`.
    pub tally: String,
    /// How each notification of the run went: `published to https://… (json): delivered`.
    pub notifications: Vec<String>,
}

/// One gate of the deciding run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GateRow {
    pub id: String,
    pub kind: String,
    /// `green`, `red`, `pending`, `blocked`, `skipped`, `aborted`, `not-run`, …
    pub verdict: String,
    /// `(code, message)`; for a blocked gate, what it waited on; for a skipped one, why.
    pub reasons: Vec<(String, String)>,
    /// `1.2 s`; `None` when it did not run in this run.
    pub duration: Option<String>,
    /// The verdict's log line.
    pub line: Option<usize>,
    /// A result kept from an earlier run: that verdict's log line.
    pub kept_from: Option<u64>,
    /// The evidence document first, then every file it names.
    pub evidence: Vec<EvidenceRef>,
}

/// An evidence file, by what it is and its digest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EvidenceRef {
    /// `evidence`, or where the evidence document names it (`stdout.head`, `sarif[0].digest`).
    pub label: String,
    pub digest: String,
}

/// One signoff gate's sign-offs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SignoffSection {
    pub gate: String,
    pub role: String,
    pub quorum: u32,
    pub verdict: String,
    pub counted: Vec<Statement>,
    pub rejected: Vec<Statement>,
    pub ignored: Vec<IgnoredStatement>,
    pub may_still_sign: Vec<String>,
    /// A problem that stops the gate whatever was signed: `(code, message)`.
    pub problem: Option<(String, String)>,
}

/// A sign-off statement that counted (or a rejection).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Statement {
    pub principal: String,
    pub key: String,
    pub time: String,
    pub comment: String,
    /// Its file name in `approvals/`.
    pub name: String,
}

/// A statement that does not count, and why.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IgnoredStatement {
    pub name: String,
    pub signer: Option<String>,
    pub code: String,
    pub reason: String,
}

/// Who did what, and which separations the policy checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Segregation {
    /// The authors (and co-authors) of the changes in the range, when the record knows them.
    pub authors: Option<Vec<String>>,
    /// Where the authors come from (`changes v1.0..HEAD`), or why they are unknown.
    pub authors_source: String,
    pub operator: Option<String>,
    pub signer: Option<String>,
    /// `(rule, what the record shows)`.
    pub checks: Vec<(String, String)>,
}

/// One change-record gate's table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChangesSection {
    pub gate: String,
    pub range: Option<String>,
    pub verdict: String,
    pub rows: Vec<ChangeRow>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChangeRow {
    pub commit: String,
    pub description: String,
    pub author: String,
    pub reviewers: Vec<String>,
    /// Test trailers and test files.
    pub tests: Vec<String>,
    pub date: String,
}

/// One security-review gate's findings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FindingsSection {
    pub gate: String,
    pub verdict: String,
    pub rows: Vec<FindingRow>,
    /// `(code, message)` of what is red, and of warnings.
    pub reasons: Vec<(String, String)>,
    pub warnings: Vec<(String, String)>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FindingRow {
    pub finding: String,
    pub tool: String,
    pub severity: Option<String>,
    pub severity_source: Option<String>,
    pub location: String,
    pub message: String,
    pub owner: Option<String>,
    pub ticket: Option<String>,
    pub due: Option<String>,
    /// The severity's SLA in the policy (`30d`).
    pub sla: Option<String>,
    pub status: Option<String>,
    /// Reason codes this finding raised (`remediation-overdue`); empty: fine.
    pub verdict: Vec<String>,
}

/// One virus-scan gate's scan.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScanSection {
    pub gate: String,
    pub verdict: String,
    pub clamd: String,
    pub engine: Option<String>,
    pub db_version: Option<u64>,
    /// The signature database's date (UTC) and its age when the run started.
    pub db_date: Option<String>,
    pub db_age: Option<String>,
    pub max_signature_age: Option<String>,
    pub scanner_error: Option<String>,
    pub files: Vec<ScanFile>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScanFile {
    pub path: String,
    /// `instream` or `fildes`.
    pub method: String,
    pub size: u64,
    /// `OK`, `FOUND <signature>`, an error, or why it was not sent.
    pub result: String,
}

/// The report a published release carries as `audit/report.html`: rendered from the record in
/// `dir` — its log, evidence and latest checkpoint, the lines `trusted` in time (every
/// checkpoint verified by the caller) — with nothing of the machine or the moment. Publishing
/// renders it just before the files move; replay renders it again from `audit/` and requires
/// the same bytes.
pub fn embedded(dir: &std::path::Path, entries: &[crate::log::Entry], trusted: &[bool]) -> Vec<u8> {
    let (relied, notes) = relied_on(entries, Some(trusted));
    let report = build(Inputs {
        entries: &relied,
        record: &crate::record::Record::new(dir),
        unauthenticated: None,
        notes,
        evidence_links: true,
        verification: Verification::Embedded {
            lines: entries.len(),
            head: entries.last().map(|e| e.head.hex()).unwrap_or_default(),
        },
    });
    Html.render(&report)
}
