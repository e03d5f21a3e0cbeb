//! The `security-review` gate: every SARIF finding is assigned in the remediation register
//! (owner, plan, due), nothing is overdue or outside its severity's SLA, no open finding has a
//! blocking severity, and the newest pentest is recent with all its findings registered.
//!
//! Collect reads the SARIF files, the register and the pentest records and stores their exact
//! bytes in the release record; judge reads those bytes back by digest and decides. "Today" is
//! the run's `started_at`, so a replay years later reaches the same verdict.

pub mod analysis;
pub mod matching;
pub mod pentest;
pub mod register;
pub mod severity;
pub mod table;

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{CollectContext, CollectError, JudgeContext, Reason, Verdict};
use crate::model::{GateSpec, SecurityReviewSpec};
use crate::record::Record;
use crate::sarif::MAX_SARIF_BYTES;
use crate::stage::ResolveProblem;

pub use analysis::{Analysis, analyse};
pub use table::{FindingRow, findings_table, render_human, render_markdown};

/// The file the collect step writes into the release record: the findings table.
pub const TABLE_FILE: &str = "security-review.md";

/// One input file as recorded: its path below the pipeline root, and either the digest of its
/// stored bytes or why it could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedFile {
    pub path: String,
    pub digest: Option<String>,
    pub size: Option<u64>,
    /// Why the file was not stored, or (informational) why its content does not parse.
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecurityReviewEvidence {
    /// Every SARIF file the `findings` globs matched, in glob order.
    pub sarif: Vec<RecordedFile>,
    /// Globs that matched no file (each is red: a scanner that wrote nothing found nothing).
    pub unmatched: Vec<String>,
    pub register: RecordedFile,
    pub pentest: Option<RecordedFile>,
    /// Digest of the findings table (`security-review.md`) written for this run.
    pub table: Option<String>,
    /// Notes that do not make the gate red (stale register entries).
    /// Informational: the judge recomputes everything from the recorded files.
    #[serde(default)]
    pub warnings: Vec<Reason>,
}

pub async fn collect(
    _gate: &GateSpec,
    spec: &SecurityReviewSpec,
    cx: &CollectContext,
) -> Result<SecurityReviewEvidence, CollectError> {
    let root = cx.pipeline.root.clone();
    let record = cx.record.clone();
    let spec = spec.clone();
    let started_at = cx.started_at;
    // Reading up to 64 MiB per file and parsing is blocking work.
    tokio::task::spawn_blocking(move || collect_blocking(&root, &spec, &record, started_at))
        .await
        .map_err(CollectError::Task)?
}

/// The collect step without the runtime: read, store, and write the findings table.
pub fn collect_blocking(
    root: &Path,
    spec: &SecurityReviewSpec,
    record: &Record,
    started_at: i64,
) -> Result<SecurityReviewEvidence, CollectError> {
    let mut sarif: Vec<RecordedFile> = Vec::new();
    let mut unmatched = Vec::new();
    for glob in &spec.findings {
        match crate::stage::resolve(root, std::slice::from_ref(glob)) {
            Ok(files) => {
                for f in files {
                    let path = slash_path(&f.source);
                    if sarif.iter().any(|s| s.path == path) {
                        continue;
                    }
                    let mut rf = store(record, root, &f.source, path)?;
                    if let (Some(d), None) = (&rf.digest, &rf.error) {
                        use crate::record::Blobs;
                        let bytes = record.get(d)?;
                        rf.error = crate::sarif::parse(&bytes).err().map(|e| e.to_string());
                    }
                    sarif.push(rf);
                }
            }
            Err(problems) => {
                for p in problems {
                    match p {
                        ResolveProblem::NoMatch { pattern } => unmatched.push(pattern),
                        other => sarif.push(RecordedFile {
                            path: glob.clone(),
                            digest: None,
                            size: None,
                            error: Some(other.to_string()),
                        }),
                    }
                }
            }
        }
    }
    let register = store(
        record,
        root,
        &spec.register,
        display_path(root, &spec.register),
    )?;
    let pentest = match &spec.pentest {
        Some(p) => Some(store(
            record,
            root,
            &p.records,
            display_path(root, &p.records),
        )?),
        None => None,
    };
    let mut ev = SecurityReviewEvidence {
        sarif,
        unmatched,
        register,
        pentest,
        table: None,
        warnings: Vec::new(),
    };
    let a = analyse(spec, &ev, record, started_at);
    let md = render_markdown(&a.rows);
    let table_path = record.dir.join(TABLE_FILE);
    crate::stage::write_synced(&table_path, md.as_bytes()).map_err(|source| {
        crate::record::RecordError::Write {
            path: table_path.clone(),
            source,
        }
    })?;
    ev.table = Some(record.put(md.as_bytes())?);
    ev.warnings = a.warnings;
    Ok(ev)
}

/// Judge the recorded evidence. Pure: only the spec, the evidence, the recorded blobs and
/// `cx.started_at` are read.
pub fn judge(
    spec: &SecurityReviewSpec,
    ev: &SecurityReviewEvidence,
    cx: &JudgeContext<'_>,
) -> Verdict {
    Verdict::from_reasons(analyse(spec, ev, cx.blobs, cx.started_at).reasons)
}

/// Read one input file (refusing oversized ones before reading) and store its bytes.
/// A file that cannot be read is evidence (`error`), not a collect failure.
fn store(
    record: &Record,
    root: &Path,
    rel: &Path,
    shown: String,
) -> Result<RecordedFile, CollectError> {
    let full = root.join(rel);
    match read_capped(&full, MAX_SARIF_BYTES) {
        Ok(bytes) => Ok(RecordedFile {
            path: shown,
            size: Some(bytes.len() as u64),
            digest: Some(record.put(&bytes)?),
            error: None,
        }),
        Err(e) => Ok(RecordedFile {
            path: shown,
            digest: None,
            size: None,
            error: Some(e.to_string()),
        }),
    }
}

/// Why an input file was not read; its text is the evidence's `error`.
#[derive(Debug, thiserror::Error)]
enum InputError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a regular file")]
    NotRegular,
    #[error("larger than {limit} bytes ({size} bytes)")]
    TooLarge { limit: u64, size: u64 },
    /// It grew past the limit while it was read.
    #[error("larger than {limit} bytes")]
    Grew { limit: u64 },
}

fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, InputError> {
    let file = std::fs::File::open(path)?;
    let md = file.metadata()?;
    if !md.is_file() {
        return Err(InputError::NotRegular);
    }
    if md.len() > limit {
        return Err(InputError::TooLarge {
            limit,
            size: md.len(),
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(md.len()).unwrap_or(0));
    // The file may grow between the size check and the read: never read past the limit.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(InputError::Grew { limit });
    }
    Ok(bytes)
}

fn slash_path(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A path as shown in evidence and reasons: below the pipeline root when it is there.
fn display_path(root: &Path, p: &Path) -> String {
    let full: PathBuf = root.join(p);
    match full.strip_prefix(root) {
        Ok(rel) => slash_path(rel),
        Err(_) => full.display().to_string(),
    }
}
