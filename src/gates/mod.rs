//! Gate kinds: each one *collects* evidence (side effects allowed) and *judges* it (pure).
//!
//! Replay calls [`judge`] again on the evidence recorded in the release log, so a judge must
//! depend only on its spec, its evidence, and the [`JudgeContext`] (which is itself recorded).
//! Adding a gate kind means adding its module and one arm in [`collect`] and [`judge`].

pub mod change_record;
pub mod regression;
pub mod security_review;
pub mod sign;
pub mod signoff;
pub mod virus_scan;

use std::sync::Arc;

use serde_json::Value;

use crate::model::{GateKind, GateSpec, Pipeline};
use crate::record::{Blobs, Record, RecordError};
use crate::stage::Staged;

pub use crate::verdict::{Code, Outcome, Reason, Verdict, codes};

/// Everything a collect step may use. Cheap to clone.
#[derive(Clone)]
pub struct CollectContext {
    pub pipeline: Arc<Pipeline>,
    pub record: Record,
    pub staged: Arc<Staged>,
    pub version: String,
    pub operator: Option<String>,
    pub dry_run: bool,
    /// Unix seconds at the start of the run; "now" for every judge in this run.
    pub started_at: i64,
    /// See [`JudgeContext::policy`].
    pub policy: String,
    /// See [`JudgeContext::subject_since`].
    pub subject_since: i64,
    /// The record's earlier lines that a signed checkpoint vouches for (nothing else of an
    /// earlier run is relied on).
    pub prior: Arc<Vec<crate::log::Entry>>,
    /// Flips to `true` when the run is interrupted: stop work, kill children, return.
    pub cancel: tokio::sync::watch::Receiver<bool>,
    /// The sign gate runs although a gate it needs awaits a sign-off: a dry run's rehearsal of
    /// signing. It signs with a throwaway key, never the release key, since a release signature
    /// over bytes nobody signed off yet must not exist.
    pub rehearsal: bool,
}

/// Everything a judge may use. Built from the live run, or from the recorded log in replay.
pub struct JudgeContext<'a> {
    pub project: &'a str,
    pub version: &'a str,
    /// `sha256:<hex>` over SHA256SUMS.
    pub subject: &'a str,
    pub operator: Option<&'a str>,
    pub started_at: i64,
    pub dry_run: bool,
    /// The allowed_signers text in force for the run (recorded), if the pipeline names one.
    pub signers: Option<&'a str>,
    pub pipeline: &'a Pipeline,
    /// `sha256:` digest of the run's pipeline sources (the pipeline file and every `uses:`
    /// file): what a sign-off statement binds as its policy.
    pub policy: &'a str,
    /// Unix seconds when the record first staged this subject: no statement about the subject
    /// can be older.
    pub subject_since: i64,
    pub blobs: &'a dyn Blobs,
}

/// A collect step could not produce evidence at all (the record cannot be written, ...).
/// Anything that the gate itself should be judged on — a failing command, a refused
/// connection — is evidence, not an error.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("interrupted")]
    Interrupted,
    #[error("cannot {action} {}: {source}", .path.display())]
    File {
        action: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot sign: {0}")]
    Sign(#[from] crate::sshsig::SshsigError),
    #[error("a collect task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("cannot encode the evidence: {0}")]
    Encode(#[from] serde_json::Error),
}

impl CollectError {
    /// `map_err` for an I/O error on `path`: "cannot {action} {path}: {error}".
    pub fn file(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> CollectError {
        let path = path.to_path_buf();
        move |source| CollectError::File {
            action,
            path,
            source,
        }
    }
}

/// Run the collect step of `gate`; returns its evidence as JSON.
pub async fn collect(gate: &GateSpec, cx: &CollectContext) -> Result<Value, CollectError> {
    let value = match &gate.kind {
        GateKind::Regression(spec) => to_value(regression::collect(gate, spec, cx).await?)?,
        GateKind::RegressionFromShare(spec) => {
            to_value(regression::from_share::collect(spec, cx).await?)?
        }
        GateKind::Sign(spec) => to_value(sign::collect(gate, spec, cx).await?)?,
        GateKind::VirusScan(spec) => to_value(virus_scan::collect(gate, spec, cx).await?)?,
        GateKind::Signoff(spec) => to_value(signoff::collect(gate, spec, cx).await?)?,
        GateKind::ChangeRecord(spec) => to_value(change_record::collect(gate, spec, cx).await?)?,
        GateKind::SecurityReview(spec) => {
            to_value(security_review::collect(gate, spec, cx).await?)?
        }
    };
    Ok(value)
}

/// Judge `gate` on `evidence`. Pure: same inputs, same verdict, years later.
pub fn judge(gate: &GateSpec, evidence: &Value, cx: &JudgeContext<'_>) -> Verdict {
    match &gate.kind {
        GateKind::Regression(spec) => match from_value(evidence) {
            Ok(ev) => regression::judge(spec, &ev, cx),
            Err(v) => v,
        },
        GateKind::RegressionFromShare(spec) => match from_value(evidence) {
            Ok(ev) => regression::from_share::judge(spec, &ev, cx),
            Err(v) => v,
        },
        GateKind::Sign(spec) => match from_value(evidence) {
            Ok(ev) => sign::judge(spec, &ev, cx),
            Err(v) => v,
        },
        GateKind::VirusScan(spec) => match from_value(evidence) {
            Ok(ev) => virus_scan::judge(spec, &ev, cx),
            Err(v) => v,
        },
        GateKind::Signoff(spec) => match from_value(evidence) {
            Ok(ev) => signoff::judge(gate, spec, &ev, cx),
            Err(v) => v,
        },
        GateKind::ChangeRecord(spec) => match from_value(evidence) {
            Ok(ev) => change_record::judge(spec, &ev, cx),
            Err(v) => v,
        },
        GateKind::SecurityReview(spec) => match from_value(evidence) {
            Ok(ev) => security_review::judge(spec, &ev, cx),
            Err(v) => v,
        },
    }
}

/// Who may still sign `gate`, when it is a sign-off gate: the same reading of its evidence as
/// its judge's (for the reports a CI job shows; never part of a verdict).
pub fn may_still_sign(
    gate: &GateSpec,
    evidence: &Value,
    cx: &JudgeContext<'_>,
) -> Option<Vec<String>> {
    match &gate.kind {
        GateKind::Signoff(spec) => from_value(evidence)
            .ok()
            .map(|ev| signoff::assess(gate, spec, &ev, cx).may_still_sign),
        _ => None,
    }
}

fn to_value<T: serde::Serialize>(ev: T) -> Result<Value, CollectError> {
    Ok(serde_json::to_value(ev)?)
}

fn from_value<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, Verdict> {
    serde_json::from_value(v.clone()).map_err(|e| {
        Verdict::red(
            Code::EvidenceMalformed,
            format!("recorded evidence does not parse: {e}"),
        )
    })
}
