//! Evidence from CI on the share (docs/team.md, "Evidence from CI"): the JUnit reports a CI job
//! wrote for one commit, and the statement its key signed about them.
//!
//! ```text
//! <project>/ci/<commit>/statements/<sha256>.json[.sig]   one per upload, named by its digest
//! <project>/ci/<commit>/junit/<sha256>.xml              each report, named by its digest
//! ```
//!
//! The statement is canonical JSON signed with SSHSIG under its own namespace
//! (`relgate-ci-evidence`), so a sign-off or a checkpoint signature can never pass for one. It
//! names the project, the commit, the job, the CI's own run identity, and each report's
//! SHA-256 and size: the reports are bound to it by digest, the statement to the key by its
//! signature. The folder a statement lies in is only where to look; what counts is what it
//! says, checked by [`verify`] (pure, so replay checks it again from the record).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::layout;
use super::{Share, ShareError, Store};
use crate::approval::Pair;
use crate::digest::{canonical_json, is_hex_digest, sha256_hex};
use crate::signers::AllowedSigners;
use crate::sshsig;

/// The `type` of every CI evidence statement.
pub const STATEMENT_TYPE: &str = "relgate-ci-evidence/v1";
/// The SSHSIG namespace of CI evidence statements (an `allowed_signers` entry restricted with
/// `namespaces=` must list it for the CI's key).
pub const NS_CI_EVIDENCE: &str = "relgate-ci-evidence";
/// The most reports one statement may name.
pub const MAX_REPORTS: usize = 1000;
/// The most statements read for one commit (anyone who can write the share can add more).
pub const MAX_STATEMENTS: usize = 1000;
/// The CI run's identity, taken from these variables when they are set (GitHub Actions,
/// GitLab CI, Jenkins, Buildkite and the generic `CI_*` ones): recorded, shown, never judged.
pub const RUN_VARIABLES: &[&str] = &[
    "GITHUB_REPOSITORY",
    "GITHUB_WORKFLOW",
    "GITHUB_RUN_ID",
    "GITHUB_RUN_ATTEMPT",
    "GITHUB_JOB",
    "GITHUB_SHA",
    "GITHUB_SERVER_URL",
    "RUNNER_NAME",
    "RUNNER_OS",
    "CI_PROJECT_PATH",
    "CI_PIPELINE_ID",
    "CI_JOB_ID",
    "CI_JOB_NAME",
    "CI_JOB_URL",
    "CI_COMMIT_SHA",
    "CI_RUNNER_DESCRIPTION",
    "BUILD_URL",
    "BUILD_ID",
    "JOB_NAME",
    "NODE_NAME",
    "BUILDKITE_BUILD_ID",
    "BUILDKITE_JOB_ID",
    "BUILDKITE_AGENT_NAME",
];

/// What a CI job says it ran.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CiStatement {
    #[serde(rename = "type")]
    pub kind: String,
    pub project: String,
    /// The full commit id the job tested.
    pub commit: String,
    /// The job's name, as the gate's `from_share.jobs` lists it (`linux`, `macos`, …).
    pub job: String,
    /// The principal, as written in allowed_signers.
    pub signer: String,
    /// `SHA256:…` fingerprint of the signing key.
    pub key: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// The CI's own identity of the run ([`RUN_VARIABLES`] that were set).
    pub run: BTreeMap<String, String>,
    pub reports: Vec<ReportRef>,
}

/// One JUnit report a statement vouches for.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReportRef {
    /// The file's name on the CI runner (shown, never used as a path).
    pub name: String,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
    pub size: u64,
}

impl CiStatement {
    /// The exact bytes that are signed and stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Strings, numbers and a map of strings always serialise.
        canonical_json(self)
            .map(String::into_bytes)
            .unwrap_or_default()
    }

    pub fn unix_time(&self) -> Option<i64> {
        OffsetDateTime::parse(&self.time, &Rfc3339)
            .ok()
            .map(|t| t.unix_timestamp())
    }
}

/// Why a statement cannot be taken as CI evidence at all. Each has a stable code
/// (docs/diagnostics.md).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CiProblem {
    #[error("the statement is not a {STATEMENT_TYPE} statement: {0}")]
    Malformed(String),
    #[error("the signature does not verify: {0}")]
    BadSignature(String),
    #[error("the statement names key {stated} but was signed with {actual}")]
    KeyMismatch { stated: String, actual: String },
    #[error("{signer} may not sign with key {key} (namespace {NS_CI_EVIDENCE}) at {time}")]
    SignerNotAllowed {
        signer: String,
        key: String,
        time: String,
    },
}

impl CiProblem {
    pub fn code(&self) -> crate::gates::Code {
        match self {
            CiProblem::Malformed(_) => crate::gates::Code::CiStatementMalformed,
            CiProblem::BadSignature(_) | CiProblem::KeyMismatch { .. } => {
                crate::gates::Code::CiBadSignature
            }
            CiProblem::SignerNotAllowed { .. } => crate::gates::Code::CiSignerNotAllowed,
        }
    }
}

/// A job name: what relgate accepts as a name part on a share, at most 100 bytes.
pub fn is_job_name(s: &str) -> bool {
    s.len() <= 100 && layout::check_name(s).is_ok()
}

/// A full commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
pub fn is_commit_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64)
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parse statement bytes strictly: canonical form, the right type, every field well formed.
pub fn parse_statement(bytes: &[u8]) -> Result<CiStatement, CiProblem> {
    let malformed = |m: String| CiProblem::Malformed(m);
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    let canonical = canonical_json(&value).map_err(|e| malformed(e.to_string()))?;
    if canonical.as_bytes() != bytes {
        return Err(malformed(
            "not canonical JSON (sorted keys, no spaces, no trailing bytes)".into(),
        ));
    }
    let st: CiStatement = serde_json::from_value(value).map_err(|e| malformed(e.to_string()))?;
    if st.kind != STATEMENT_TYPE {
        return Err(malformed(format!("type is {:?}", st.kind)));
    }
    if !is_commit_id(&st.commit) {
        return Err(malformed(format!(
            "commit {:?} is not a full commit id",
            st.commit
        )));
    }
    if !is_job_name(&st.job) {
        return Err(malformed(format!("job {:?} is not a job name", st.job)));
    }
    if st.unix_time().is_none() {
        return Err(malformed(format!("time {:?} is not RFC 3339", st.time)));
    }
    if st.reports.len() > MAX_REPORTS {
        return Err(malformed(format!("more than {MAX_REPORTS} reports")));
    }
    if let Some(r) = st.reports.iter().find(|r| !is_hex_digest(&r.sha256)) {
        return Err(malformed(format!("report digest {:?}", r.sha256)));
    }
    Ok(st)
}

/// Check one pair: the statement parses strictly, the signature verifies over its exact bytes
/// in namespace `relgate-ci-evidence` with the key the statement names, and allowed_signers
/// lets the statement's signer use that key at `valid_at` (the run's time, never the one the
/// statement claims). Whether the signer is one the gate takes is the gate's to judge. Pure.
pub fn verify(
    statement: &[u8],
    signature: &[u8],
    signers: &AllowedSigners,
    valid_at: i64,
) -> Result<CiStatement, CiProblem> {
    let st = parse_statement(statement)?;
    let armored = std::str::from_utf8(signature)
        .map_err(|_| CiProblem::BadSignature("the signature file is not text".into()))?;
    let key = sshsig::signature_key(armored).map_err(|e| CiProblem::BadSignature(e.to_string()))?;
    sshsig::verify_with_key(&key, NS_CI_EVIDENCE, statement, armored)
        .map_err(|e| CiProblem::BadSignature(e.to_string()))?;
    let actual = sshsig::fingerprint(&key);
    if actual != st.key {
        return Err(CiProblem::KeyMismatch {
            stated: st.key.clone(),
            actual,
        });
    }
    if !signers.allows(&st.signer, &key, NS_CI_EVIDENCE, valid_at) {
        return Err(CiProblem::SignerNotAllowed {
            signer: st.signer.clone(),
            key: actual,
            time: super::rfc3339(valid_at),
        });
    }
    Ok(st)
}

/// `<project>/ci/<commit>`.
pub fn commit_dir(project: &str, commit: &str) -> String {
    format!("{project}/ci/{commit}")
}

pub fn statements_dir(project: &str, commit: &str) -> String {
    format!("{}/statements", commit_dir(project, commit))
}

/// Where the report with digest `sha256` is.
pub fn report_path(project: &str, commit: &str, sha256: &str) -> String {
    format!("{}/junit/{sha256}.xml", commit_dir(project, commit))
}

/// One report to upload.
pub struct Upload {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The CI run's identity from the environment.
pub fn run_identity() -> BTreeMap<String, String> {
    RUN_VARIABLES
        .iter()
        .filter_map(|k| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| ((*k).to_string(), v))
        })
        .collect()
}

/// What [`sign`] needs.
pub struct SignRequest<'a> {
    pub project: &'a str,
    pub commit: &'a str,
    pub job: &'a str,
    pub principal: &'a str,
    pub key: &'a crate::signkey::SignKey,
    pub now: i64,
    pub run: BTreeMap<String, String>,
    pub reports: &'a [Upload],
}

/// Build and sign the statement for `reports`.
pub fn sign(req: &SignRequest<'_>) -> Result<Pair, sshsig::SshsigError> {
    use crate::signkey::RawSigner;
    let statement = CiStatement {
        kind: STATEMENT_TYPE.into(),
        project: req.project.into(),
        commit: req.commit.into(),
        job: req.job.into(),
        signer: req.principal.into(),
        key: sshsig::fingerprint(req.key.public_key()),
        time: super::rfc3339(req.now),
        run: req.run.clone(),
        reports: req
            .reports
            .iter()
            .map(|r| ReportRef {
                name: r.name.clone(),
                sha256: sha256_hex(&r.bytes),
                size: r.bytes.len() as u64,
            })
            .collect(),
    };
    let bytes = statement.to_bytes();
    let sig = sshsig::sign(req.key, NS_CI_EVIDENCE, &bytes)?;
    Ok(Pair {
        name: layout::object_name(&bytes),
        statement: bytes,
        signature: sig.into_bytes(),
    })
}

/// Put the reports, then the signed statement, on the share (create-only; a report already
/// there under its digest is left as it is — a reader checks its bytes). Returns where the
/// statement is.
pub async fn upload(
    share: &Share,
    project: &str,
    commit: &str,
    pair: &Pair,
    reports: &[Upload],
) -> Result<String, ShareError> {
    for r in reports {
        let at = report_path(project, commit, &sha256_hex(&r.bytes));
        share.put(&at, &r.bytes).await?;
    }
    super::statements::upload_pair(share, &statements_dir(project, commit), pair).await
}

/// Every statement pair for `commit` on the share (at most [`MAX_STATEMENTS`]), and what was
/// passed over unread, with why.
pub async fn read(
    share: &Share,
    project: &str,
    commit: &str,
) -> Result<super::statements::Found, ShareError> {
    let shown = format!("ci/{commit}/statements");
    let mut found =
        super::statements::read_pairs(share, &statements_dir(project, commit), &shown).await?;
    if found.pairs.len() > MAX_STATEMENTS {
        let n = found.pairs.len() - MAX_STATEMENTS;
        found.pairs.truncate(MAX_STATEMENTS);
        found.ignored.push((
            shown,
            format!("{n} statement(s) past the first {MAX_STATEMENTS} left unread"),
        ));
    }
    Ok(found)
}

/// The report `sha256` of `commit`, if it is there (at most `cap` bytes).
pub async fn get_report(
    share: &Share,
    project: &str,
    commit: &str,
    sha256: &str,
    cap: u64,
) -> Result<Option<Vec<u8>>, ShareError> {
    share.get(&report_path(project, commit, sha256), cap).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> crate::signkey::SignKey {
        crate::signkey::throwaway().expect("key")
    }

    fn signers_for(k: &crate::signkey::SignKey, who: &str) -> AllowedSigners {
        use crate::signkey::RawSigner;
        let line = format!("{who} {}\n", sshsig::public_line(k.public_key()));
        crate::signers::parse(&line).expect("signers")
    }

    fn pair(k: &crate::signkey::SignKey, who: &str) -> Pair {
        sign(&SignRequest {
            project: "acme",
            commit: &"a".repeat(40),
            job: "linux",
            principal: who,
            key: k,
            now: 1_700_000_000,
            run: BTreeMap::from([("GITHUB_RUN_ID".into(), "42".into())]),
            reports: &[Upload {
                name: "junit.xml".into(),
                bytes: b"<testsuite/>".to_vec(),
            }],
        })
        .expect("sign")
    }

    #[test]
    fn a_signed_statement_verifies_for_its_signer_only() {
        let k = key();
        let p = pair(&k, "ci@acme.test");
        let st = verify(
            &p.statement,
            &p.signature,
            &signers_for(&k, "ci@acme.test"),
            1_700_000_100,
        )
        .expect("verifies");
        assert_eq!(st.job, "linux");
        assert_eq!(st.reports[0].sha256, sha256_hex(b"<testsuite/>"));
        // Another principal's key, or another key for this principal: not allowed.
        let other = key();
        let err = verify(
            &p.statement,
            &p.signature,
            &signers_for(&other, "ci@acme.test"),
            1_700_000_100,
        )
        .expect_err("another key");
        assert_eq!(err.code(), "ci-signer-not-allowed");
    }

    #[test]
    fn a_changed_byte_or_another_namespace_does_not_verify() {
        let k = key();
        let p = pair(&k, "ci@acme.test");
        let signers = signers_for(&k, "ci@acme.test");
        let altered = String::from_utf8(p.statement.clone())
            .expect("utf8")
            .replace("linux", "linuy");
        let err = verify(altered.as_bytes(), &p.signature, &signers, 0).expect_err("altered");
        assert_eq!(err.code(), "ci-bad-signature");
        // A sign-off signature over the same bytes is not CI evidence.
        let approval = sshsig::sign(&k, sshsig::NS_APPROVAL, &p.statement).expect("sign");
        let err = verify(&p.statement, approval.as_bytes(), &signers, 0).expect_err("namespace");
        assert_eq!(err.code(), "ci-bad-signature");
    }

    #[test]
    fn commit_ids_are_full() {
        assert!(is_commit_id(&"0".repeat(40)) && is_commit_id(&"f".repeat(64)));
        assert!(!is_commit_id("abc123") && !is_commit_id(&"A".repeat(40)));
    }
}
