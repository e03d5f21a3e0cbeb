//! The SLSA Verification Summary Attestation (VSA v1) of a published release: an in-toto
//! Statement v1 whose subjects are the artefacts (each with its SHA-256) and whose predicate
//! says that relgate verified them against the pipeline and accepted them.
//!
//! Every field comes from the release record, never from the clock or the machine, so that
//! replay derives the very same statement bytes again from the published `audit/`:
//!
//! | field | from |
//! |---|---|
//! | `subject` | the publishing run's `run-started` artefacts (`SHA256SUMS`, line by line) |
//! | `verifier.id`, `verifier.version` | [`VERIFIER_ID`], the run's `tool_version` |
//! | `timeVerified` | the `ts` of the `publish` line (a dry run: of its `run-finished` line) |
//! | `resourceUri` | the `publish` line's `to` (a folder as a `file://` URL) |
//! | `policy` | the pipeline file's name and `pipeline_digest` |
//! | `inputAttestations` | SHA-256 of `audit/log.jsonl` and of `audit/checkpoint` as published |
//! | `verificationResult`, `verifiedLevels` | `PASSED`, [`LEVEL_ACCEPTED`] ([`LEVEL_DRY_RUN`] for a dry run's rehearsal) |
//!
//! The statement is canonical JSON (sorted keys, no whitespace), the envelope one JSON line.

use serde_json::json;
use ssh_key::PublicKey;

use super::{dsse, spki};
use crate::digest::{canonical_json, sha256_hex};
use crate::log::{Decision, Entry, Record};
use crate::signkey::RawSigner;

pub use crate::layout::{PUBKEY_FILE, VSA_FILE};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/verification_summary/v1";
/// Who verified: relgate, as a URN (no web address speaks for it).
pub const VERIFIER_ID: &str = "urn:relgate:verifier:v1";
/// The level a published release was accepted at: every gate of its pipeline green. A custom
/// level (not `SLSA_…`), as the VSA specification allows.
pub const LEVEL_ACCEPTED: &str = "RELGATE_ACCEPTED";
/// The level of a dry run's rehearsal: nothing was accepted or published.
pub const LEVEL_DRY_RUN: &str = "RELGATE_DRY_RUN";
/// Where the record's files are named from inside a release.
const LOG_URI: &str = "audit/log.jsonl";
const CHECKPOINT_URI: &str = "audit/checkpoint";

/// What a VSA says, gathered from the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// `(release path, sha256 hex)`, in `SHA256SUMS` order.
    pub subjects: Vec<(String, String)>,
    pub time_verified: String,
    pub resource_uri: String,
    pub policy_uri: String,
    pub policy_sha256: String,
    pub log_sha256: String,
    pub checkpoint_sha256: String,
    pub tool_version: String,
    pub dry_run: bool,
}

/// The signed files: the envelope (one line, LF-terminated) and the release key's PEM.
#[derive(Clone, Debug)]
pub struct Attestation {
    pub envelope: String,
    pub pem: String,
}

/// `resourceUri` for a destination as the log names it: a URL stays as it is, a folder becomes
/// a `file://` URL ending in `/`.
pub fn resource_uri(to: &str) -> String {
    if to.contains("://") {
        return to.to_string();
    }
    url::Url::from_directory_path(to)
        .map(String::from)
        .unwrap_or_else(|()| to.to_string())
}

/// Gather the summary from a record's log (its bytes `log` and parsed `entries`) and its latest
/// checkpoint text. The log must end with the `publish` line (the published record), or with a
/// dry run's `run-finished` (then `dry_run_to` names where it would have published).
pub fn from_record(
    entries: &[Entry],
    log: &[u8],
    checkpoint: &[u8],
    dry_run_to: Option<&str>,
) -> Result<Summary, String> {
    let last = entries.last().ok_or("the log is empty")?;
    let (run, to, dry_run) = match (&last.record, dry_run_to) {
        (Record::Publish(p), _) => (p.run, p.to.clone(), false),
        (Record::RunFinished(f), Some(to)) if f.decision == Decision::DryRun => {
            (f.run, to.to_string(), true)
        }
        _ => {
            return Err(
                "the record does not end with a publish decision (or a dry run's end)".into(),
            );
        }
    };
    let started = entries
        .iter()
        .find_map(|e| match &e.record {
            Record::RunStarted(r) if r.run == run => Some(r),
            _ => None,
        })
        .ok_or_else(|| format!("run {run} has no run-started line"))?;
    if started.dry_run != dry_run {
        return Err("a dry run's record never publishes".into());
    }
    Ok(Summary {
        subjects: started
            .artefacts
            .iter()
            .map(|a| (a.release_path.clone(), a.sha256.clone()))
            .collect(),
        time_verified: last.ts.clone(),
        resource_uri: resource_uri(&to),
        policy_uri: started
            .sources
            .first()
            .map(|s| s.path.clone())
            .unwrap_or_default(),
        policy_sha256: started.pipeline_digest.clone(),
        log_sha256: sha256_hex(log),
        checkpoint_sha256: sha256_hex(checkpoint),
        tool_version: started.tool_version.clone(),
        dry_run,
    })
}

/// The statement's exact bytes.
pub fn statement(s: &Summary) -> Vec<u8> {
    let subject: Vec<serde_json::Value> = s
        .subjects
        .iter()
        .map(|(name, sha)| json!({"name": name, "digest": {"sha256": sha}}))
        .collect();
    let level = if s.dry_run {
        LEVEL_DRY_RUN
    } else {
        LEVEL_ACCEPTED
    };
    let v = json!({
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "verifier": {"id": VERIFIER_ID, "version": {"relgate": s.tool_version}},
            "timeVerified": s.time_verified,
            "resourceUri": s.resource_uri,
            "policy": {"uri": s.policy_uri, "digest": {"sha256": s.policy_sha256}},
            "inputAttestations": [
                {"uri": LOG_URI, "digest": {"sha256": s.log_sha256}},
                {"uri": CHECKPOINT_URI, "digest": {"sha256": s.checkpoint_sha256}},
            ],
            "verificationResult": "PASSED",
            "verifiedLevels": [level],
        },
    });
    // A value of strings and arrays always serialises.
    canonical_json(&v)
        .map(String::into_bytes)
        .unwrap_or_default()
}

/// Why a record's attestation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error("{name}: {source}")]
    File {
        name: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Log(#[from] crate::log::LogProblem),
    #[error("the checkpoint is not UTF-8")]
    CheckpointNotUtf8,
    /// The checkpoint's text does not parse (the parser's message).
    #[error("{0}")]
    Checkpoint(String),
    #[error("the latest checkpoint does not cover the whole log")]
    NotCovered,
    /// The log is not one a VSA speaks for ([`from_record`]'s message).
    #[error("{0}")]
    Record(String),
    #[error(transparent)]
    Sign(#[from] dsse::DsseError),
    /// The key has no form DSSE verifiers read ([`spki::der`]'s message).
    #[error("{0}")]
    Key(String),
}

/// Sign the summary's statement with `key` and give the release key's PEM.
pub fn attest(key: &(impl RawSigner + ?Sized), s: &Summary) -> Result<Attestation, AttestError> {
    let envelope = dsse::sign(key, dsse::PAYLOAD_TYPE, &statement(s))?;
    Ok(Attestation {
        envelope: format!("{envelope}\n"),
        pem: spki::pem(key.public_key()).map_err(AttestError::Key)?,
    })
}

/// The attestation of the record in `dir` as it stands: its log must end with the publish
/// decision (or, `dry_run_to` given, a dry run's end), and its latest checkpoint cover it.
pub fn for_record(
    dir: &std::path::Path,
    key: &(impl RawSigner + ?Sized),
    dry_run_to: Option<&str>,
) -> Result<Attestation, AttestError> {
    let read = |name: &'static str, cap: u64| {
        crate::record::read_capped(&dir.join(name), cap)
            .map_err(|source| AttestError::File { name, source })
    };
    let log = read(crate::record::LOG_FILE, crate::record::MAX_LOG_BYTES)?;
    let checkpoint = read(crate::record::CHECKPOINT_FILE, 64 << 10)?;
    let (entries, _) = crate::log::read_log(&log)?;
    let cp = crate::log::checkpoint::Checkpoint::parse(
        std::str::from_utf8(&checkpoint).map_err(|_| AttestError::CheckpointNotUtf8)?,
    )
    .map_err(AttestError::Checkpoint)?;
    if usize::try_from(cp.size).ok() != Some(entries.len()) {
        return Err(AttestError::NotCovered);
    }
    let summary =
        from_record(&entries, &log, &checkpoint, dry_run_to).map_err(AttestError::Record)?;
    attest(key, &summary)
}

/// Check a published VSA without its record (`relgate verify`): `pem` is exactly `key`'s PEM,
/// the envelope is one line signed by `key` (keyid its fingerprint) with the in-toto payload
/// type, and its statement is canonical, says PASSED at [`LEVEL_ACCEPTED`] by relgate, and
/// names exactly the artefacts of `sums` (`(path, sha256)` in order). Returns the statement.
pub fn check(
    envelope: &[u8],
    pem: &[u8],
    key: &PublicKey,
    sums: &[(String, String)],
) -> Result<Vec<u8>, (&'static str, String)> {
    let want_pem = spki::pem(key).map_err(|e| (PUBKEY_FILE, e))?;
    if pem != want_pem.as_bytes() {
        return Err((
            PUBKEY_FILE,
            "is not the key that signed SHA256SUMS.sig".into(),
        ));
    }
    let vsa = |m: String| (VSA_FILE, m);
    let text = std::str::from_utf8(envelope).map_err(|_| vsa("is not UTF-8".into()))?;
    let line = text
        .strip_suffix('\n')
        .filter(|l| !l.contains('\n'))
        .ok_or_else(|| vsa("must be exactly one line ending in a line feed".into()))?;
    let payload = dsse::verify(line, key, dsse::PAYLOAD_TYPE).map_err(|e| vsa(e.to_string()))?;
    let st: serde_json::Value =
        serde_json::from_slice(&payload).map_err(|e| vsa(format!("statement: {e}")))?;
    if canonical_json(&st).map(String::into_bytes).ok().as_deref() != Some(&payload[..]) {
        return Err(vsa("the statement is not canonical JSON".into()));
    }
    let expect = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(vsa(format!("the statement {what}")))
        }
    };
    expect(
        st["_type"] == STATEMENT_TYPE,
        "is not an in-toto Statement v1",
    )?;
    expect(
        st["predicateType"] == PREDICATE_TYPE,
        "is not a SLSA VSA v1",
    )?;
    let pred = &st["predicate"];
    expect(
        pred["verifier"]["id"] == VERIFIER_ID,
        "was not made by relgate",
    )?;
    expect(
        pred["verificationResult"] == "PASSED",
        "does not say PASSED",
    )?;
    expect(
        pred["verifiedLevels"] == json!([LEVEL_ACCEPTED]),
        &format!("does not say {LEVEL_ACCEPTED}"),
    )?;
    let subjects: Vec<serde_json::Value> = sums
        .iter()
        .map(|(name, sha)| json!({"name": name, "digest": {"sha256": sha}}))
        .collect();
    expect(
        st["subject"] == serde_json::Value::Array(subjects),
        "names other subjects than SHA256SUMS lists",
    )?;
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        Summary {
            subjects: vec![("a.txt".into(), "a".repeat(64))],
            time_verified: "2026-12-01T06:40:00Z".into(),
            resource_uri: resource_uri("/srv/releases/acme/1.0.0"),
            policy_uri: "pipeline.yaml".into(),
            policy_sha256: "b".repeat(64),
            log_sha256: "c".repeat(64),
            checkpoint_sha256: "d".repeat(64),
            tool_version: "0.1.0".into(),
            dry_run: false,
        }
    }

    #[test]
    fn folders_become_file_urls_and_urls_stay() {
        assert_eq!(
            resource_uri("/srv/rel eases/1.0.0"),
            "file:///srv/rel%20eases/1.0.0/"
        );
        assert_eq!(
            resource_uri("s3://bucket/acme/1.0.0"),
            "s3://bucket/acme/1.0.0"
        );
    }

    #[test]
    fn a_signed_summary_checks_and_a_changed_one_does_not() {
        let key = crate::sshsig::throwaway_key().unwrap();
        let s = summary();
        let a = attest(&key, &s).unwrap();
        let sums = s.subjects.clone();
        let st = check(
            a.envelope.as_bytes(),
            a.pem.as_bytes(),
            key.public_key(),
            &sums,
        )
        .unwrap();
        assert_eq!(st, statement(&s));
        let other_sums = vec![("a.txt".to_string(), "e".repeat(64))];
        let e = check(
            a.envelope.as_bytes(),
            a.pem.as_bytes(),
            key.public_key(),
            &other_sums,
        )
        .unwrap_err();
        assert_eq!(e.0, VSA_FILE);
        assert!(e.1.contains("other subjects"), "{}", e.1);
        // A dry run's level is never accepted as a release's.
        let dry = attest(&key, &Summary { dry_run: true, ..s }).unwrap();
        let e = check(
            dry.envelope.as_bytes(),
            dry.pem.as_bytes(),
            key.public_key(),
            &sums,
        )
        .unwrap_err();
        assert!(e.1.contains(LEVEL_ACCEPTED), "{}", e.1);
        // Two lines, or none: refused.
        let twice = format!("{}{}", a.envelope, a.envelope);
        assert!(check(twice.as_bytes(), a.pem.as_bytes(), key.public_key(), &sums).is_err());
    }
}
