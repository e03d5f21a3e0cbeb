//! A signoff gate as the next run would count it, without running it: the approvals folder as
//! it is now (and, for `approve`, the statement about to be written), judged by the same
//! [`assess`] under the current pipeline, with the operator and the subject of the release's
//! latest run. `status` shows it; `approve` refuses a statement it would ignore.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{
    AuthorsEvidence, RecordedPair, SignoffEvidence, SignoffReport, assess, authors_evidence,
    remembered,
};
use crate::approval::{Folder, Pair};
use crate::digest::sha256_hex;
use crate::gates::JudgeContext;
use crate::log::Entry;
use crate::model::{GateSpec, Pipeline, SignoffSpec};
use crate::record::{Blobs, Record, RecordError};

/// What the preview is of.
pub struct PreviewRequest<'a> {
    /// The pipeline as it is now: the next run's policy.
    pub pipeline: &'a Pipeline,
    pub gate: &'a GateSpec,
    pub spec: &'a SignoffSpec,
    pub version: &'a str,
    /// The subject the next run is expected to stage (the latest run's).
    pub subject: &'a str,
    /// `sha256:` digest of the pipeline sources as they are now.
    pub policy: &'a str,
    pub operator: Option<&'a str>,
    /// The allowed_signers text as it is now.
    pub signers: Option<&'a str>,
    /// When the record first staged `subject` (now, for a subject it never staged).
    pub subject_since: i64,
    /// Unix seconds: "now" for the judge.
    pub now: i64,
    /// The record's attested lines (for rejections and withdrawn approvals it remembers).
    pub prior: &'a [Entry],
    pub record: Option<&'a Record>,
    /// The approvals folder as it is now.
    pub folder: &'a Folder,
    /// A statement not written yet.
    pub extra: Option<&'a Pair>,
    /// The commit authors as the release machine read them, with the raw `git log` they come
    /// from: an approver signing from a share has no checkout to read them from.
    pub known_authors: Option<(&'a AuthorsEvidence, &'a [u8])>,
}

/// The report, and why the authors could not be read when that was so (then the preview
/// counts as if authors were not barred, and says so).
pub struct Preview {
    pub report: SignoffReport,
    pub authors_unknown: Option<String>,
}

/// Bytes held in memory, then the record's evidence store.
struct Layered<'a> {
    mem: Mutex<BTreeMap<String, Vec<u8>>>,
    record: Option<&'a Record>,
}

impl Layered<'_> {
    fn put(&self, bytes: &[u8]) -> String {
        let digest = sha256_hex(bytes);
        if let Ok(mut m) = self.mem.lock() {
            m.insert(digest.clone(), bytes.to_vec());
        }
        digest
    }
}

impl Blobs for Layered<'_> {
    fn get(&self, digest: &str) -> Result<Vec<u8>, RecordError> {
        if let Some(b) = self.mem.lock().ok().and_then(|m| m.get(digest).cloned()) {
            return Ok(b);
        }
        match self.record {
            Some(r) => r.get(digest),
            None => Err(RecordError::BadDigest(digest.to_string())),
        }
    }
}

/// Count the folder (and `extra`) as the next run would.
pub async fn preview(
    req: &PreviewRequest<'_>,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> Preview {
    let blobs = Layered {
        mem: Mutex::new(BTreeMap::new()),
        record: req.record,
    };
    let mut approvals: Vec<RecordedPair> = Vec::new();
    for pair in req.folder.pairs.iter().chain(req.extra) {
        let recorded = RecordedPair {
            name: pair.name.clone(),
            statement: blobs.put(&pair.statement),
            signature: blobs.put(&pair.signature),
        };
        if !approvals.iter().any(|a| a.statement == recorded.statement) {
            approvals.push(recorded);
        }
    }
    let remembered = remembered(&req.gate.id, req.prior, req.subject, &blobs, &approvals);
    let authors = match (&req.pipeline.changes, req.known_authors) {
        (Some(_), Some((known, raw))) if req.spec.bar_authors => {
            blobs.put(raw);
            Some(known.clone())
        }
        (Some(changes), None) if req.spec.bar_authors => {
            let read = crate::git::read_range(&changes.repo, &changes.range, cancel).await;
            let (a, log) = authors_evidence(&changes.range, read);
            if let Some(raw) = log {
                blobs.put(&raw);
            }
            Some(a)
        }
        _ => None,
    };
    let mut ev = SignoffEvidence {
        signers: None,
        approvals,
        unpaired: req.folder.unpaired.clone(),
        refused: req.folder.refused.clone(),
        remembered,
        read_at: Some(req.now),
        authors,
    };
    let mut pipeline = req.pipeline.clone();
    if ev.authors.is_none() {
        // Authors are not barred here: the range is not read for them.
        pipeline.changes = None;
    }
    let report = judge(req, &pipeline, &ev, &blobs);
    match report.problem.clone() {
        // The authors cannot be told: the next run would be red for that whatever is signed.
        // Count again without the bar, so the other reasons a statement has still show.
        Some(problem) if ev.authors.is_some() && !problem.code.starts_with("signers-") => {
            pipeline.changes = None;
            ev.authors = None;
            Preview {
                report: judge(req, &pipeline, &ev, &blobs),
                authors_unknown: Some(problem.message),
            }
        }
        _ => Preview {
            report,
            authors_unknown: None,
        },
    }
}

fn judge(
    req: &PreviewRequest<'_>,
    pipeline: &Pipeline,
    ev: &SignoffEvidence,
    blobs: &dyn Blobs,
) -> SignoffReport {
    let cx = JudgeContext {
        project: &pipeline.project,
        version: req.version,
        subject: req.subject,
        operator: req.operator,
        started_at: req.now,
        dry_run: false,
        signers: req.signers,
        pipeline,
        policy: req.policy,
        subject_since: req.subject_since,
        blobs,
    };
    assess(req.gate, req.spec, ev, &cx)
}
