//! What a release record's files are, according to its log: the files `publish` copies into a
//! release's `audit/`, and the files `replay` accepts there.
//!
//! A published `audit/` holds nothing the log does not account for. Publish copies only what
//! this module names, and replay refuses anything else, so that no file — an approval dropped in
//! late, an edited `allowed_signers` copy, a script — can ride along with a release looking like
//! part of its record.
//!
//! | file | accounted for when |
//! |---|---|
//! | `log.jsonl`, `checkpoint`, `checkpoint.sig`, `checkpoints/*` | always (checked by replay's own steps) |
//! | `evidence/<digest>` | the log names it, or an evidence document the log reaches names it |
//! | `approvals/NAME`, `approvals/NAME.sig` | a signoff gate's evidence recorded that pair, with these bytes |
//! | `allowed_signers` | its bytes are the signers the last run recorded |
//! | `change-record.md`, `security-review.md` | its bytes are a view some gate recorded (`markdown`, `table`) |
//! | `report.html` | (published only) its bytes are what the record renders to ([`REPORT_FILE`]) |
//!
//! The release's attestation and its PEM (`attestation.intoto.jsonl`, `release.pub.pem`) are
//! not part of the record: they sit beside `SHA256SUMS`, where `crate::verify` admits them and
//! `crate::replay` derives the statement again from this record. In a dry run's record they are
//! its rehearsal, noted by replay, never published.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use crate::digest::{is_hex_digest, sha256_hex};
use crate::log::{Entry, Record as LogRecord};
use crate::record::{APPROVALS_DIR, Blobs, EVIDENCE_DIR, LOG_FILE};

/// The record's copy of the signers file in force for the last run.
pub const SIGNERS_COPY: &str = "allowed_signers";
/// The release report in a published `audit/`. Not a file of the local record: publishing
/// renders it from the record (`crate::report::release::embedded`), and replay renders the
/// published record again and accepts the file only if it is those very bytes — so it can say
/// nothing the record does not. Releases published before it existed have none (noted).
pub const REPORT_FILE: &str = crate::report::release::REPORT_FILE;

/// Human-readable views that gates write beside the log, and the evidence field naming each.
pub const VIEWS: &[(&str, &str)] = &[
    (crate::gates::change_record::MARKDOWN_FILE, "markdown"),
    (crate::gates::security_review::TABLE_FILE, "table"),
];

/// Why a record's files cannot be listed, read or accounted for. Each keeps the error it wraps
/// as its source, with the path, file or digest it concerns.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A symbolic link: the record folder itself, or a file in it (a relative path).
    #[error("{} is a symbolic link", .path.display())]
    Symlink { path: PathBuf },
    #[error("{} is not a folder", .path.display())]
    NotFolder { path: PathBuf },
    #[error("{rel} is not a regular file (a FIFO, device or socket)")]
    Special { rel: String },
    #[error("{}: the name is not UTF-8", .rel.display())]
    NotUtf8 { rel: PathBuf },
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", .root.display())]
    Walk {
        root: PathBuf,
        #[source]
        source: walkdir::Error,
    },
    /// A walk handed back a path outside the folder walked (never seen; kept rather than
    /// trusted).
    #[error("{source}")]
    Outside {
        path: PathBuf,
        #[source]
        source: std::path::StripPrefixError,
    },
    /// A record file that cannot be read for its digest.
    #[error("{rel}: {source}")]
    File {
        rel: String,
        #[source]
        source: std::io::Error,
    },
    #[error("evidence/{digest}: {source}")]
    Evidence {
        digest: String,
        #[source]
        source: crate::record::RecordError,
    },
    #[error(transparent)]
    Log(#[from] crate::log::LogProblem),
}

/// The path of `entry` below `root`.
fn below<'a>(entry: &'a walkdir::DirEntry, root: &Path) -> Result<&'a Path, AuditError> {
    entry
        .path()
        .strip_prefix(root)
        .map_err(|source| AuditError::Outside {
            path: entry.path().to_path_buf(),
            source,
        })
}

/// The files a record's log accounts for.
#[derive(Clone, Debug, Default)]
pub struct Accounted {
    /// Evidence digests the log reaches.
    pub evidence: BTreeSet<String>,
    /// `approvals/` file name → the digests recorded for it (a statement or its signature).
    pub approvals: BTreeMap<String, BTreeSet<String>>,
    /// Digest of the signers text the last run recorded.
    pub signers: Option<String>,
    /// View file name → digests recorded for it.
    pub views: BTreeMap<String, BTreeSet<String>>,
}

impl Accounted {
    /// Is `rel` (a `/`-separated path in the record), with content digest `digest`, accounted
    /// for? Structural files (the log and checkpoints) are the caller's business and answer
    /// `false` here.
    pub fn covers(&self, rel: &str, digest: &str) -> bool {
        if let Some(name) = rel.strip_prefix(&format!("{EVIDENCE_DIR}/")) {
            return name == digest && self.evidence.contains(name);
        }
        if let Some(name) = rel.strip_prefix(&format!("{APPROVALS_DIR}/")) {
            return self
                .approvals
                .get(name)
                .is_some_and(|set| set.contains(digest));
        }
        if rel == SIGNERS_COPY {
            return self.signers.as_deref() == Some(digest);
        }
        self.views.get(rel).is_some_and(|set| set.contains(digest))
    }

    /// Could `rel` be accounted for at all (evidence, approvals, the signers copy, a view)?
    /// Anything else — the staged copies, the lock, a torn line set aside — never is, and need
    /// not even be read.
    pub fn may_cover(rel: &str) -> bool {
        rel.starts_with(&format!("{EVIDENCE_DIR}/"))
            || rel.starts_with(&format!("{APPROVALS_DIR}/"))
            || rel == SIGNERS_COPY
            || VIEWS.iter().any(|(f, _)| *f == rel)
    }

    /// Is `rel` one of the files replay checks by its own steps: the log, the latest checkpoint
    /// and its signature, a checkpoint in the history, or the signature of one that is there
    /// (`files` is the record's listing)?
    pub fn is_structural(rel: &str, files: &[String]) -> bool {
        use crate::log::checkpoint::HISTORY_DIR;
        if rel == LOG_FILE
            || rel == crate::record::CHECKPOINT_FILE
            || rel == crate::record::CHECKPOINT_SIG_FILE
        {
            return true;
        }
        let Some(name) = rel
            .strip_prefix(HISTORY_DIR)
            .and_then(|r| r.strip_prefix('/'))
            .filter(|n| crate::log::checkpoint::is_history_name(n))
        else {
            return false;
        };
        match name.strip_suffix(".sig") {
            Some(base) => files.iter().any(|f| {
                f.strip_prefix(HISTORY_DIR)
                    .and_then(|r| r.strip_prefix('/'))
                    == Some(base)
            }),
            None => true,
        }
    }
}

/// Work out what the log accounts for, reading evidence documents through `blobs` (every read
/// digest-checked). `exists` says whether an evidence file of that digest is present: strings
/// in evidence documents that merely look like digests are not followed unless it is.
pub fn accounted(
    entries: &[Entry],
    blobs: &dyn Blobs,
    exists: &dyn Fn(&str) -> bool,
) -> Result<Accounted, AuditError> {
    let mut out = Accounted::default();
    let mut queue: VecDeque<String> = VecDeque::new();
    let push = |d: &str, out: &mut Accounted, queue: &mut VecDeque<String>| {
        if is_hex_digest(d) && exists(d) && out.evidence.insert(d.to_string()) {
            queue.push_back(d.to_string());
        }
    };
    for e in entries {
        match &e.record {
            LogRecord::RunStarted(r) => {
                push(&r.sums, &mut out, &mut queue);
                if let Some(s) = &r.signers {
                    push(s, &mut out, &mut queue);
                }
                out.signers = r.signers.clone();
            }
            LogRecord::GateVerdict(v) => {
                if let Some(d) = &v.evidence {
                    push(d, &mut out, &mut queue);
                }
            }
            _ => {}
        }
    }
    while let Some(d) = queue.pop_front() {
        let bytes = blobs.get(&d).map_err(|source| AuditError::Evidence {
            digest: d.clone(),
            source,
        })?;
        // Raw files (captured output, reports, signatures) are leaves; only JSON documents name
        // further evidence.
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        let mut found = Vec::new();
        walk(&doc, &mut |key, value| {
            if let serde_json::Value::String(s) = value {
                found.push((key.map(str::to_string), s.clone()));
            }
        });
        for (key, s) in found {
            let digest = s.strip_prefix("sha256:").unwrap_or(&s).to_string();
            push(&digest, &mut out, &mut queue);
            if let Some(k) = key.as_deref()
                && let Some((file, _)) = VIEWS.iter().find(|(_, field)| *field == k)
                && out.evidence.contains(&digest)
            {
                out.views
                    .entry((*file).to_string())
                    .or_default()
                    .insert(digest.clone());
            }
        }
        record_pairs(&doc, &mut out);
    }
    Ok(out)
}

/// A signoff gate's evidence lists its pairs as `{name, statement, signature}`; note them.
fn record_pairs(doc: &serde_json::Value, out: &mut Accounted) {
    for list in ["approvals", "remembered"] {
        let Some(pairs) = doc.get(list).and_then(|a| a.as_array()) else {
            continue;
        };
        for p in pairs {
            let (Some(name), Some(st), Some(sig)) = (
                p.get("name").and_then(|v| v.as_str()),
                p.get("statement").and_then(|v| v.as_str()),
                p.get("signature").and_then(|v| v.as_str()),
            ) else {
                continue;
            };
            out.approvals
                .entry(name.to_string())
                .or_default()
                .insert(st.to_string());
            out.approvals
                .entry(format!("{name}{}", crate::approval::SIG_SUFFIX))
                .or_default()
                .insert(sig.to_string());
        }
    }
}

/// Call `f(key, value)` for every value in a JSON document (`key` is the object key it sits
/// under, if any).
fn walk(v: &serde_json::Value, f: &mut dyn FnMut(Option<&str>, &serde_json::Value)) {
    fn go(
        key: Option<&str>,
        v: &serde_json::Value,
        f: &mut dyn FnMut(Option<&str>, &serde_json::Value),
    ) {
        f(key, v);
        match v {
            serde_json::Value::Array(a) => a.iter().for_each(|x| go(key, x, f)),
            serde_json::Value::Object(o) => o.iter().for_each(|(k, x)| go(Some(k), x, f)),
            _ => {}
        }
    }
    go(None, v, f);
}

/// Every file below `root` as `/`-separated relative paths. Anything but regular files and
/// folders — a symbolic link, FIFO, device or socket — is refused with its path, so that no
/// reader ever follows a link out of the record or blocks on a FIFO.
pub fn list_files(root: &Path) -> Result<Vec<String>, AuditError> {
    match std::fs::symlink_metadata(root) {
        Ok(m) if m.is_dir() => {}
        Ok(m) if m.file_type().is_symlink() => {
            return Err(AuditError::Symlink {
                path: root.to_path_buf(),
            });
        }
        Ok(_) => {
            return Err(AuditError::NotFolder {
                path: root.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(AuditError::Read {
                path: root.to_path_buf(),
                source,
            });
        }
    }
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|source| AuditError::Walk {
            root: root.to_path_buf(),
            source,
        })?;
        let rel = below(&entry, root)?;
        let rel = rel
            .to_str()
            .ok_or_else(|| AuditError::NotUtf8 {
                rel: rel.to_path_buf(),
            })?
            .to_string();
        let ft = entry.file_type();
        if ft.is_dir() {
            continue;
        }
        if ft.is_symlink() {
            return Err(AuditError::Symlink { path: rel.into() });
        }
        if !ft.is_file() {
            return Err(AuditError::Special { rel });
        }
        out.push(rel);
    }
    Ok(out)
}

/// The folders below `root` that a release record may hold: `evidence/`, `approvals/` and
/// `checkpoints/`, nothing deeper. Anything else (an empty folder riding along) is returned.
pub fn unexpected_dirs(root: &Path) -> Result<Vec<String>, AuditError> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false).min_depth(1) {
        let entry = entry.map_err(|source| AuditError::Walk {
            root: root.to_path_buf(),
            source,
        })?;
        if !entry.file_type().is_dir() {
            continue;
        }
        let rel = below(&entry, root)?.to_string_lossy().into_owned();
        let known = [
            EVIDENCE_DIR,
            APPROVALS_DIR,
            crate::log::checkpoint::HISTORY_DIR,
        ];
        if !known.contains(&rel.as_str()) {
            out.push(rel);
        }
    }
    Ok(out)
}

/// SHA-256 of a record file read safely (regular files only, size-capped).
pub fn file_digest(root: &Path, rel: &str) -> Result<String, AuditError> {
    let bytes = crate::record::read_capped(&root.join(rel), crate::record::MAX_EVIDENCE_BYTES)
        .map_err(|source| AuditError::File {
            rel: rel.to_string(),
            source,
        })?;
    Ok(sha256_hex(&bytes))
}

/// The files of the record in `dir` that a published `audit/` holds: the log, its checkpoints,
/// and exactly what the log accounts for — no staged copies, lock or torn-line leftovers, no
/// sign-off handed in after the signoff gate read the folder, no evidence of a run killed
/// before its verdict. Replay of the published release refuses anything else.
pub fn publishable(dir: &Path) -> Result<Vec<String>, AuditError> {
    let log_path = dir.join(LOG_FILE);
    let log_bytes =
        crate::record::read_capped(&log_path, crate::record::MAX_LOG_BYTES).map_err(|source| {
            AuditError::Read {
                path: log_path.clone(),
                source,
            }
        })?;
    let (entries, _) = crate::log::read_log(&log_bytes)?;
    let files = list_files(dir)?;
    let evidence: BTreeSet<&str> = files
        .iter()
        .filter_map(|f| f.strip_prefix(&format!("{EVIDENCE_DIR}/")))
        .collect();
    let accounted = accounted(&entries, &crate::record::Record::new(dir), &|d| {
        evidence.contains(d)
    })?;
    let mut out = Vec::new();
    for rel in &files {
        if Accounted::is_structural(rel, &files)
            || (Accounted::may_cover(rel) && accounted.covers(rel, &file_digest(dir, rel)?))
        {
            out.push(rel.clone());
        }
    }
    Ok(out)
}
