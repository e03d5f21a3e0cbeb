//! The run report: what one run of a release judged, as the share keeps it — the subject and
//! its artefacts, every gate's verdict and reasons, the open findings and their owners, the
//! policy and signers it ran under, and the checkpoint that sealed it. A report of a run that
//! awaits sign-offs is the **open request** an approver signs from (`approve --from`), and the
//! reports together are the release history (`relgate history`).
//!
//! Canonical JSON, named by its SHA-256, signed with SSHSIG (namespace `relgate-run-report`) by
//! the release key — or, for a dry run, by a throwaway key that vouches for nothing. A reader
//! believes a report only once its name is its digest and its signature is the release signer's
//! under a trust root from outside the share.

use serde::{Deserialize, Serialize};

use crate::config::SourceFile;
use crate::gates::Reason;
use crate::gates::signoff::AuthorsEvidence;
use crate::model::Pipeline;
use crate::stage::StagedArtefact;
use crate::trust::TrustRoot;

pub const REPORT_TYPE: &str = "relgate-run-report/v1";
/// Namespace of a report's signature: never confusable with a checkpoint's, a sign-off's or
/// `SHA256SUMS.sig`.
pub const NS_REPORT: &str = "relgate-run-report";

/// One run, as reported.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunReport {
    #[serde(rename = "type")]
    pub kind: String,
    pub project: String,
    pub version: String,
    pub dry_run: bool,
    /// The run's number in its record.
    pub run: u32,
    /// The record's id: the chain head of its log's first line.
    pub record: String,
    /// When the report was made (RFC 3339 UTC).
    pub time: String,
    /// Unix seconds: the run's "now".
    pub started_at: i64,
    /// `published`, `refused`, `pending`, `dry-run` or `aborted`.
    pub decision: String,
    pub exit_code: i32,
    pub message: Option<String>,
    pub operator: Option<String>,
    pub subject: String,
    /// Unix seconds: when the record first staged this subject (a sign-off dated earlier than
    /// that, less the clock skew, is backdated).
    pub subject_since: i64,
    /// `sha256:` of the pipeline sources (what a sign-off binds as its `policy`).
    pub policy: String,
    pub sources: Vec<SourceFile>,
    pub pipeline: Pipeline,
    /// The allowed_signers text the run recorded.
    pub signers: Option<String>,
    pub artefacts: Vec<StagedArtefact>,
    pub gates: Vec<GateLine>,
    pub findings: Vec<FindingLine>,
    /// The commit authors the run read for its sign-offs (segregation of duties), so that an
    /// approver without a checkout is judged as the next run will judge them.
    pub authors: Option<Authors>,
    /// The checkpoint that sealed the run, and its signature.
    pub checkpoint: Option<Sealed>,
    /// Fingerprint of the key that signs this report.
    pub key: String,
    /// For a pending run: the approve command of each principal who may still sign.
    pub approve: Vec<String>,
    /// Where the release was published.
    pub published: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GateLine {
    pub id: String,
    pub kind: String,
    /// `green`, `red`, `pending`, `blocked`, `skipped` or `aborted`.
    pub state: String,
    pub reasons: Vec<Reason>,
    /// A gate that never started: the gates it waited on.
    pub waiting_on: Vec<String>,
    /// A pending sign-off: who may still sign.
    pub may_still_sign: Option<Vec<String>>,
}

/// A finding of a security review that is not fixed, with its assignment.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FindingLine {
    pub gate: String,
    pub finding: String,
    pub severity: Option<String>,
    pub owner: Option<String>,
    pub ticket: Option<String>,
    pub due: Option<String>,
    pub status: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Authors {
    pub evidence: AuthorsEvidence,
    /// The raw `git log` output the evidence names, base64.
    pub log: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sealed {
    pub text: String,
    pub sig: String,
}

impl RunReport {
    /// The exact bytes that are signed and stored.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SignError> {
        crate::digest::canonical_json(self)
            .map(String::into_bytes)
            .map_err(SignError::Encode)
    }

    /// The first gate (in pipeline order) that is red.
    pub fn first_red(&self) -> Option<&GateLine> {
        self.gates.iter().find(|g| g.state == "red")
    }
}

/// Who vouches for a report that was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Voucher {
    /// The release signer, under the trust root given (`release@acme.test (SHA256:…)`).
    Release(String),
    /// A dry run's throwaway key: anyone can make one, so nothing says who wrote it.
    Throwaway(String),
}

/// A report read from a share and checked.
#[derive(Clone, Debug)]
pub struct Checked {
    /// Its name on the share (`<sha256>.json`).
    pub name: String,
    pub report: RunReport,
    pub voucher: Voucher,
}

/// Check a report read as `name` with its signature: the name is the bytes' digest, the bytes
/// are a canonical report, the signature verifies by the key it names, and — unless it is a
/// dry run's — the trust root allows that key for the release signer at the report's time.
pub fn check(name: &str, bytes: &[u8], sig: &[u8], trust: &TrustRoot) -> Result<Checked, String> {
    if !super::layout::names_bytes(name, bytes) {
        return Err(
            "its content does not match its name (it was altered, or is damaged)".to_string(),
        );
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not a run report: {e}"))?;
    let canonical = crate::digest::canonical_json(&value).map_err(|e| e.to_string())?;
    if canonical.as_bytes() != bytes {
        return Err("not in canonical form".into());
    }
    let report: RunReport =
        serde_json::from_value(value).map_err(|e| format!("not a run report: {e}"))?;
    if report.kind != REPORT_TYPE {
        return Err(format!("its type is {:?}, not {REPORT_TYPE}", report.kind));
    }
    // The record id names a folder on the share and is shown as a path: a chain head, never
    // text of the writer's choosing (a dry run's report is anyone's to sign).
    if !crate::digest::is_hex_digest(&report.record) {
        return Err("its record id is not a chain head (64 hex digits)".into());
    }
    let armored = std::str::from_utf8(sig).map_err(|_| "the signature is not text".to_string())?;
    let key = crate::sshsig::signature_key(armored).map_err(|e| e.to_string())?;
    crate::sshsig::verify_with_key(&key, NS_REPORT, bytes, armored).map_err(|e| e.to_string())?;
    let fp = crate::sshsig::fingerprint(&key);
    if fp != report.key {
        return Err(format!(
            "it names key {} but was signed with {fp}",
            report.key
        ));
    }
    let voucher = if report.dry_run {
        Voucher::Throwaway(fp)
    } else {
        let at = time::OffsetDateTime::parse(
            &report.time,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|_| format!("its time {:?} is not RFC 3339", report.time))?
        .unix_timestamp();
        Voucher::Release(trust.release_key(&key, NS_REPORT, at)?)
    };
    Ok(Checked {
        name: name.to_string(),
        report,
        voucher,
    })
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("cannot write the run report: {0}")]
    Encode(#[source] serde_json::Error),
    #[error(transparent)]
    Sign(#[from] crate::sshsig::SshsigError),
}

/// Sign `report` with `key`: its bytes, their name, and the armored signature.
pub fn sign(
    report: &RunReport,
    key: &ssh_key::PrivateKey,
) -> Result<(Vec<u8>, String, String), SignError> {
    let bytes = report.to_bytes()?;
    let sig = crate::sshsig::sign(key, NS_REPORT, &bytes)?;
    Ok((bytes.clone(), super::layout::object_name(&bytes), sig))
}
