//! Sign-off statements: the signed JSON a person gives for one gate of one release (SPEC §4).
//!
//! A statement is canonical JSON (sorted keys, no whitespace, no trailing newline) signed with
//! SSHSIG under the namespace `relgate-approval` over its exact bytes. It lives in the release
//! record as `approvals/NAME` beside `approvals/NAME.sig`, so that anyone can check it with
//! `ssh-keygen -Y verify -f allowed_signers -I PRINCIPAL -n relgate-approval -s NAME.sig < NAME`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::digest::{canonical_json, is_hex_digest, sha256_hex};
use crate::model::{GateKind, Pipeline};
use crate::signers::AllowedSigners;
use crate::signkey::RawSigner;
use crate::sshsig::{self, NS_APPROVAL, SshsigError};

/// The `type` of every statement; a signature over anything else is not a sign-off.
pub const STATEMENT_TYPE: &str = "relgate-approval/v1";
/// Suffix of the signature file beside a statement.
pub const SIG_SUFFIX: &str = ".sig";

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        }
    }
}

/// A sign-off statement. Unknown extra keys are allowed (the SPEC names a minimum), but the
/// bytes must be canonical, so that one statement has exactly one signed form.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Statement {
    #[serde(rename = "type")]
    pub kind: String,
    pub project: String,
    pub version: String,
    pub gate: String,
    /// `sha256:<hex>` of the release's SHA256SUMS.
    pub subject: String,
    /// `sha256:<hex>` of the pipeline sources the sign-off is given under
    /// ([`crate::digest::policy_digest`]): a changed policy needs new sign-offs.
    pub policy: String,
    /// The principal, as written in allowed_signers.
    pub signer: String,
    pub decision: Decision,
    pub comment: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// `SHA256:...` fingerprint of the signing key.
    pub key: String,
}

impl Statement {
    /// The exact bytes that are signed and stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising a struct of strings cannot fail.
        canonical_json(self)
            .map(String::into_bytes)
            .unwrap_or_default()
    }

    /// The statement's time as unix seconds.
    pub fn unix_time(&self) -> Option<i64> {
        OffsetDateTime::parse(&self.time, &Rfc3339)
            .ok()
            .map(|t| t.unix_timestamp())
    }
}

/// Why a statement and its signature cannot be taken as a sign-off at all. Each has a stable
/// code (the `approval-*` codes in docs/diagnostics.md).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PairProblem {
    #[error("the statement is not canonical JSON (sorted keys, no spaces, no trailing bytes)")]
    NotCanonical,
    #[error("the statement is not a {STATEMENT_TYPE} statement: {0}")]
    Malformed(String),
    #[error("the statement time {0:?} is not RFC 3339")]
    BadTime(String),
    #[error("the signature does not verify: {0}")]
    BadSignature(String),
    #[error("the statement names key {stated} but was signed with {actual}")]
    KeyMismatch { stated: String, actual: String },
    #[error("{signer} may not sign with key {key} (namespace relgate-approval) at {time}")]
    SignerNotAllowed {
        signer: String,
        key: String,
        time: String,
    },
}

impl PairProblem {
    pub fn code(&self) -> crate::gates::Code {
        match self {
            PairProblem::NotCanonical => crate::gates::Code::ApprovalNotCanonical,
            PairProblem::Malformed(_) | PairProblem::BadTime(_) => {
                crate::gates::Code::ApprovalMalformed
            }
            PairProblem::BadSignature(_) => crate::gates::Code::ApprovalBadSignature,
            PairProblem::KeyMismatch { .. } => crate::gates::Code::ApprovalKeyMismatch,
            PairProblem::SignerNotAllowed { .. } => crate::gates::Code::ApprovalSignerNotAllowed,
        }
    }
}

/// Parse statement bytes strictly: canonical form, the right type, every field present.
pub fn parse_statement(bytes: &[u8]) -> Result<Statement, PairProblem> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| PairProblem::Malformed(e.to_string()))?;
    // Duplicate keys, whitespace, key order and trailing bytes all change the canonical form.
    let canonical = canonical_json(&value).map_err(|e| PairProblem::Malformed(e.to_string()))?;
    if canonical.as_bytes() != bytes {
        return Err(PairProblem::NotCanonical);
    }
    let statement: Statement =
        serde_json::from_value(value).map_err(|e| PairProblem::Malformed(e.to_string()))?;
    if statement.kind != STATEMENT_TYPE {
        return Err(PairProblem::Malformed(format!(
            "type is {:?}",
            statement.kind
        )));
    }
    if statement.unix_time().is_none() {
        return Err(PairProblem::BadTime(statement.time.clone()));
    }
    Ok(statement)
}

/// A statement whose signature verifies under the allowed signers, by the key it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub statement: Statement,
    /// Unix seconds of `statement.time`.
    pub at: i64,
    /// Fingerprint of the key that made the signature.
    pub key: String,
}

/// Check one pair: the statement parses strictly, the signature verifies over its exact bytes
/// in namespace relgate-approval, the key is the one the statement names, and allowed_signers
/// lets the statement's signer use that key at `valid_at` (unix seconds) — the time the
/// statement is counted, never the time it claims for itself, which its signer chose. Pure.
pub fn verify_pair(
    statement: &[u8],
    signature: &[u8],
    signers: &AllowedSigners,
    valid_at: i64,
) -> Result<Verified, PairProblem> {
    let st = parse_statement(statement)?;
    let at = st
        .unix_time()
        .ok_or_else(|| PairProblem::BadTime(st.time.clone()))?;
    let armored = std::str::from_utf8(signature)
        .map_err(|_| PairProblem::BadSignature("the signature file is not text".into()))?;
    let key =
        sshsig::signature_key(armored).map_err(|e| PairProblem::BadSignature(e.to_string()))?;
    sshsig::verify_with_key(&key, NS_APPROVAL, statement, armored)
        .map_err(|e| PairProblem::BadSignature(e.to_string()))?;
    let actual = sshsig::fingerprint(&key);
    if actual != st.key {
        return Err(PairProblem::KeyMismatch {
            stated: st.key.clone(),
            actual,
        });
    }
    if !signers.allows(&st.signer, &key, NS_APPROVAL, valid_at) {
        let time = OffsetDateTime::from_unix_timestamp(valid_at)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| valid_at.to_string());
        return Err(PairProblem::SignerNotAllowed {
            signer: st.signer.clone(),
            key: actual,
            time,
        });
    }
    Ok(Verified {
        statement: st,
        at,
        key: actual,
    })
}

/// One `NAME` + `NAME.sig` pair as found in an approvals folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    pub name: String,
    pub statement: Vec<u8>,
    pub signature: Vec<u8>,
}

/// What an approvals folder holds: complete pairs, files that have no partner, and files that
/// are never read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Folder {
    pub pairs: Vec<Pair>,
    /// Statements without `.sig`, and `.sig` files without a statement.
    pub unpaired: Vec<String>,
    /// Files refused without being used, and why: a name that would print as something else
    /// (control, bidi or invisible characters; shown escaped), a file over
    /// [`MAX_STATEMENT_BYTES`], anything but a regular file.
    pub refused: Vec<(String, String)>,
}

/// The largest statement or signature file read (a real one is well under 2 KiB).
pub const MAX_STATEMENT_BYTES: u64 = 64 << 10;

/// Read every pair in `dir` (sorted by name). A missing folder holds nothing. Hidden files
/// (a write in progress) and sub-folders are skipped; symbolic links, FIFOs and devices are
/// refused unread, and so is any file over [`MAX_STATEMENT_BYTES`].
pub fn load_folder(dir: &Path) -> std::io::Result<Folder> {
    let mut names = Vec::new();
    let mut folder = Folder::default();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Folder::default()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let raw = entry.file_name();
        let shown = raw.to_string_lossy().escape_debug().to_string();
        let Ok(name) = raw.into_string() else {
            folder.refused.push((shown, "the name is not UTF-8".into()));
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        // A name goes into messages, the terminal and the log: it must read as what it is.
        if let Err(why) = crate::names::check_release_path(&name) {
            folder.refused.push((shown, why.to_string()));
            continue;
        }
        let ft = entry.file_type()?;
        if ft.is_dir() {
            continue;
        }
        if !ft.is_file() {
            folder
                .refused
                .push((name, "not a regular file (a link, FIFO or device)".into()));
            continue;
        }
        names.push(name);
    }
    names.sort();
    for name in &names {
        if let Some(base) = name.strip_suffix(SIG_SUFFIX) {
            if !names.iter().any(|n| n == base) {
                folder.unpaired.push(name.clone());
            }
            continue;
        }
        let sig_name = format!("{name}{SIG_SUFFIX}");
        if !names.contains(&sig_name) {
            folder.unpaired.push(name.clone());
            continue;
        }
        let read = |n: &str| crate::record::read_capped(&dir.join(n), MAX_STATEMENT_BYTES);
        match (read(name), read(&sig_name)) {
            (Ok(statement), Ok(signature)) => folder.pairs.push(Pair {
                name: name.clone(),
                statement,
                signature,
            }),
            (Err(e), _) | (_, Err(e)) => folder.refused.push((name.clone(), e.to_string())),
        }
    }
    Ok(folder)
}

#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    #[error("the pipeline has no gate {gate:?}")]
    UnknownGate { gate: String },
    #[error("gate {gate:?} is a {kind} gate; only signoff gates take sign-offs")]
    NotSignoff { gate: String, kind: String },
    #[error("the pipeline names no signers file, so no sign-off can be checked")]
    NoSigners,
    #[error("cannot read signers file {path}")]
    ReadSigners {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("signers file {path} does not parse: {problems}")]
    SignersParse { path: PathBuf, problems: String },
    #[error("{principal} is not a principal in {path}")]
    UnknownPrincipal { principal: String, path: PathBuf },
    #[error(
        "key {fingerprint} is not allowed for {principal} in {path} (namespace relgate-approval, now)"
    )]
    KeyNotAllowed {
        principal: String,
        fingerprint: String,
        path: PathBuf,
    },
    #[error("{principal} is not in role {role:?} of gate {gate:?}")]
    NotInRole {
        principal: String,
        role: String,
        gate: String,
    },
    #[error("a rejection needs --comment saying why")]
    RejectNeedsComment,
    #[error("{0:?} is not a subject (expected sha256: and 64 lowercase hex digits)")]
    BadSubject(String),
    #[error(
        "unknown release {version}: no release record at {dir} (run it first, or pass --subject)"
    )]
    UnknownRelease { version: String, dir: PathBuf },
    #[error("the release record {dir} holds no staged SHA256SUMS")]
    NoSubject { dir: PathBuf },
    #[error("cannot read the release subject in {path}")]
    ReadSubject {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] SshsigError),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What `relgate approve` asks for.
#[derive(Clone, Debug)]
pub struct ApproveRequest<'a> {
    pub pipeline: &'a Pipeline,
    pub version: &'a str,
    pub gate: &'a str,
    /// The signer's OpenSSH private key file, or public key file (then ssh-agent signs).
    pub key: &'a Path,
    pub principal: &'a str,
    pub comment: Option<&'a str>,
    pub reject: bool,
    /// `sha256:<hex>`: the release subject being signed for.
    pub subject: &'a str,
    /// `sha256:<hex>`: the policy (pipeline sources) the sign-off is given under.
    pub policy: &'a str,
    /// Where the pair is written: the record's approvals/ folder, or the current folder.
    pub out_dir: &'a Path,
    /// Unix seconds; the statement's time.
    pub now: i64,
}

/// Is `s` `sha256:` followed by 64 lowercase hex digits?
pub fn is_subject(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(is_hex_digest)
}

/// Build, sign and write one sign-off (see [`sign`]). Returns the statement's path (the
/// signature is beside it).
pub fn approve(req: &ApproveRequest<'_>) -> Result<PathBuf, ApproveError> {
    let pair = sign(req)?;
    write_pair(req.out_dir, &pair.name, &pair.statement, &pair.signature)
}

/// Write a pair made by [`sign`] into `dir`; returns the statement's path.
pub fn write(dir: &Path, pair: &Pair) -> Result<PathBuf, ApproveError> {
    write_pair(dir, &pair.name, &pair.statement, &pair.signature)
}

impl ApproveError {
    /// The `approval-*` code of a sign-off that would be signed but never count (the reason a
    /// judge would ignore it for); `None` for a mistake in the request itself.
    pub fn code(&self) -> Option<crate::gates::Code> {
        match self {
            ApproveError::UnknownPrincipal { .. } | ApproveError::KeyNotAllowed { .. } => {
                Some(crate::gates::Code::ApprovalSignerNotAllowed)
            }
            ApproveError::NotInRole { .. } => Some(crate::gates::Code::ApprovalOutsideRole),
            _ => None,
        }
    }
}

/// Build and sign one sign-off without writing it. Checks, before signing, everything that
/// would make the sign-off not count for a reason the signer can fix now: the gate, the
/// principal and key in allowed_signers, the role.
pub fn sign(req: &ApproveRequest<'_>) -> Result<Pair, ApproveError> {
    let gate = req
        .pipeline
        .gate(req.gate)
        .ok_or_else(|| ApproveError::UnknownGate {
            gate: req.gate.to_string(),
        })?;
    let GateKind::Signoff(spec) = &gate.kind else {
        return Err(ApproveError::NotSignoff {
            gate: req.gate.to_string(),
            kind: gate.kind.name().to_string(),
        });
    };
    if !is_subject(req.subject) {
        return Err(ApproveError::BadSubject(req.subject.to_string()));
    }
    let comment = req.comment.unwrap_or("").trim();
    if req.reject && comment.is_empty() {
        return Err(ApproveError::RejectNeedsComment);
    }
    let signers_path = req
        .pipeline
        .signers
        .as_ref()
        .ok_or(ApproveError::NoSigners)?;
    let text = fs::read_to_string(signers_path).map_err(|source| ApproveError::ReadSigners {
        path: signers_path.clone(),
        source,
    })?;
    let signers = crate::signers::parse(&text).map_err(|problems| ApproveError::SignersParse {
        path: signers_path.clone(),
        problems: problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    })?;
    if !signers.names_principal(req.principal) {
        return Err(ApproveError::UnknownPrincipal {
            principal: req.principal.to_string(),
            path: signers_path.clone(),
        });
    }
    let in_role = req
        .pipeline
        .roles
        .get(&spec.role)
        .is_some_and(|members| members.iter().any(|m| m == req.principal));
    if !in_role {
        return Err(ApproveError::NotInRole {
            principal: req.principal.to_string(),
            role: spec.role.clone(),
            gate: req.gate.to_string(),
        });
    }
    let key = crate::signkey::load(req.key)?;
    let fingerprint = sshsig::fingerprint(key.public_key());
    if !signers.allows(req.principal, key.public_key(), NS_APPROVAL, req.now) {
        return Err(ApproveError::KeyNotAllowed {
            principal: req.principal.to_string(),
            fingerprint,
            path: signers_path.clone(),
        });
    }
    let time = OffsetDateTime::from_unix_timestamp(req.now)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .ok_or_else(|| ApproveError::Write {
            path: req.out_dir.to_path_buf(),
            source: std::io::Error::other("the clock is out of range"),
        })?;
    let statement = Statement {
        kind: STATEMENT_TYPE.to_string(),
        project: req.pipeline.project.clone(),
        version: req.version.to_string(),
        gate: req.gate.to_string(),
        subject: req.subject.to_string(),
        policy: req.policy.to_string(),
        signer: req.principal.to_string(),
        decision: if req.reject {
            Decision::Reject
        } else {
            Decision::Approve
        },
        comment: comment.to_string(),
        time,
        key: fingerprint,
    };
    let bytes = statement.to_bytes();
    let sig = sshsig::sign(&key, NS_APPROVAL, &bytes)?;
    Ok(Pair {
        name: pair_name(&statement, &bytes),
        statement: bytes,
        signature: sig.into_bytes(),
    })
}

/// `GATE.PRINCIPAL.DECISION.DIGEST12.json`, with the principal reduced to safe characters.
pub fn pair_name(st: &Statement, bytes: &[u8]) -> String {
    let who: String = st
        .signer
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '@' | '-' | '_' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let digest = sha256_hex(bytes);
    format!(
        "{}.{}.{}.{}.json",
        st.gate,
        who,
        st.decision.as_str(),
        &digest[..12]
    )
}

/// Write the signature first, then the statement, each under a temporary name that the loader
/// skips: a reader never sees a statement without its signature.
fn write_pair(
    dir: &Path,
    name: &str,
    statement: &[u8],
    sig: &[u8],
) -> Result<PathBuf, ApproveError> {
    let werr = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ApproveError::Write { path, source }
    };
    fs::create_dir_all(dir).map_err(werr(dir))?;
    let path = dir.join(name);
    let sig_path = dir.join(format!("{name}{SIG_SUFFIX}"));
    // The name is derived from the statement, so the same statement signed twice within one
    // second is already there: nothing to do when its signature is this key's over these bytes
    // (Ed25519 gives the same signature again; ECDSA and agents do not).
    if fs::read(&path).is_ok_and(|b| b == statement)
        && let Ok(existing) = fs::read(&sig_path)
        && (existing == sig || same_signer_verifies(statement, sig, &existing))
    {
        return Ok(path);
    }
    for (target, bytes) in [(&sig_path, sig), (&path, statement)] {
        let mut tmp = tempfile::Builder::new()
            .prefix(".approval")
            .tempfile_in(dir)
            .map_err(werr(target))?;
        tmp.write_all(bytes).map_err(werr(target))?;
        tmp.as_file().sync_all().map_err(werr(target))?;
        tmp.persist_noclobber(target)
            .map_err(|e| ApproveError::Write {
                path: target.clone(),
                source: e.error,
            })?;
    }
    crate::record::sync_dir(dir).map_err(werr(dir))?;
    Ok(path)
}

/// Does `existing` verify over `statement` by the key that made `fresh`?
fn same_signer_verifies(statement: &[u8], fresh: &[u8], existing: &[u8]) -> bool {
    let (Ok(fresh), Ok(existing)) = (std::str::from_utf8(fresh), std::str::from_utf8(existing))
    else {
        return false;
    };
    sshsig::signature_key(fresh)
        .and_then(|key| sshsig::verify_with_key(&key, NS_APPROVAL, statement, existing))
        .is_ok()
}

/// The release record folder of `version`: `<state>/releases/<version>/`.
pub fn record_dir(pipeline: &Pipeline, version: &str) -> PathBuf {
    pipeline.state_dir.join("releases").join(version)
}

#[cfg(test)]
mod tests;
