//! The `sign` gate: SSHSIG over SHA256SUMS (namespace `file`) with the release key: an OpenSSH
//! Ed25519 or ECDSA key file, or any supported key held by ssh-agent and named by its public key
//! (`crate::signkey`).
//!
//! Collect signs the staged `SHA256SUMS` bytes, writes `SHA256SUMS.sig` beside them and stores
//! both in the evidence store. Judge verifies that stored signature again over those stored
//! bytes, so replay re-checks the cryptography instead of trusting a recorded "ok".

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{CollectContext, CollectError, JudgeContext, Verdict};
use crate::digest::sha256_hex;
use crate::gates::Code;
use crate::model::{GateSpec, SignSpec};
use crate::signkey::{self, RawSigner};
use crate::sshsig;

pub use crate::layout::{SIG_FILE, SUMS_FILE};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SignEvidence {
    /// The principal the pipeline names as signer.
    pub signer: String,
    /// The key path as written in the pipeline.
    pub key: String,
    /// The key path after `${VAR}` expansion and resolution, when expansion worked.
    pub key_path: Option<String>,
    /// Why the configured key could not be used (absent when it was).
    pub key_problem: Option<KeyProblem>,
    /// A dry run without the key signed with a fresh throwaway key.
    pub throwaway: bool,
    /// A line for the terminal, e.g. that a throwaway key was used.
    pub note: Option<String>,
    /// Digest of the signed SHA256SUMS bytes (evidence store).
    pub sums: Option<String>,
    /// Whether `SHA256SUMS` on disk holds exactly the signed bytes.
    pub sums_written: bool,
    /// Digest of the armored signature (evidence store).
    pub signature: Option<String>,
    /// `SHA256:...` of the signing key.
    pub key_fingerprint: Option<String>,
    /// `ssh-ed25519 AAAA...` (or another type's line) of the signing key.
    pub public_key: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct KeyProblem {
    /// `unavailable` (unset variable, missing file, no agent or a key it does not hold) or
    /// `unusable` (a type relgate does not sign with, encrypted, malformed).
    pub kind: KeyProblemKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum KeyProblemKind {
    Unavailable,
    Unusable,
}

/// The signing key's file: `${VAR}` expanded from the environment (an unset or empty variable
/// is an error naming it), a relative path resolved against the pipeline root.
pub fn key_path(spec: &SignSpec, root: &Path) -> Result<PathBuf, String> {
    let expanded = expand_env(&spec.key, |name| std::env::var(name).ok())?;
    if expanded.is_empty() {
        return Err("the key path is empty".into());
    }
    let p = PathBuf::from(expanded);
    Ok(if p.is_absolute() { p } else { root.join(p) })
}

/// Expand every `${NAME}` in `text` with `lookup`. A `$` not followed by `{` stays as it is.
fn expand_env(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated ${{ in key path {text:?}"))?;
        let name = &after[..end];
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "invalid variable name {name:?} in key path {text:?}"
            ));
        }
        match lookup(name) {
            Some(v) if !v.is_empty() => out.push_str(&v),
            Some(_) => return Err(format!("environment variable {name} is empty")),
            None => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

pub async fn collect(
    _gate: &GateSpec,
    spec: &SignSpec,
    cx: &CollectContext,
) -> Result<SignEvidence, CollectError> {
    if *cx.cancel.borrow() {
        return Err(CollectError::Interrupted);
    }
    let mut ev = SignEvidence {
        signer: spec.signer.clone(),
        key: spec.key.clone(),
        key_path: None,
        key_problem: None,
        throwaway: false,
        note: None,
        sums: None,
        sums_written: false,
        signature: None,
        key_fingerprint: None,
        public_key: None,
    };

    let loaded = match key_path(spec, &cx.pipeline.root) {
        Ok(path) => {
            ev.key_path = Some(path.display().to_string());
            if path.is_file() {
                // The file is there but may not serve: malformed, encrypted, a type relgate does
                // not sign with from disk (unusable); a public key whose agent is not there or
                // does not hold it (unavailable, like a missing file).
                signkey::load(&path)
                    .and_then(|k| signkey::check_release_key(&k, &path).map(|()| k))
                    .map_err(|e| KeyProblem {
                        kind: if e.is_unavailable() {
                            KeyProblemKind::Unavailable
                        } else {
                            KeyProblemKind::Unusable
                        },
                        message: e.to_string(),
                    })
            } else {
                Err(KeyProblem {
                    kind: KeyProblemKind::Unavailable,
                    message: format!("key file {} does not exist", path.display()),
                })
            }
        }
        Err(message) => Err(KeyProblem {
            kind: KeyProblemKind::Unavailable,
            message,
        }),
    };

    let key = match loaded {
        // A dry run rehearses signing but never with the release key: a real signature would
        // exist for bytes nobody accepted, and anyone who can read the record could publish
        // them (also a rehearsal past an awaited sign-off). An unusable key (wrong type,
        // encrypted) is still reported, since a real run would fail on it too.
        Ok(_) if cx.dry_run => {
            ev.throwaway = true;
            ev.note = Some(if cx.rehearsal {
                "signed with a throwaway key: a rehearsal (dry run) past an awaited sign-off; \
                 the release key signs only once it is given"
                    .into()
            } else {
                "signed with a throwaway key (dry run); the release key is there and usable".into()
            });
            signkey::throwaway()?
        }
        Err(p) if cx.dry_run && p.kind == KeyProblemKind::Unavailable => {
            ev.throwaway = true;
            ev.note = Some(format!(
                "signed with a throwaway key (dry run); the release key is not available: {}",
                p.message
            ));
            signkey::throwaway()?
        }
        Ok(k) => k,
        Err(p) => {
            ev.key_problem = Some(p);
            return Ok(ev);
        }
    };

    let sums = &cx.staged.sums;
    let armored = sshsig::sign(&key, sshsig::NS_FILE, sums)?;
    let sig_path = cx.staged.dir.join(SIG_FILE);
    crate::stage::write_synced(&sig_path, armored.as_bytes())
        .map_err(CollectError::file("write", &sig_path))?;
    crate::record::sync_dir(&cx.staged.dir).map_err(CollectError::file("sync", &cx.staged.dir))?;

    // SHA256SUMS is what gets published; make sure it holds the bytes that were signed.
    ev.sums_written = std::fs::read(cx.staged.dir.join(SUMS_FILE)).is_ok_and(|b| &b == sums);
    ev.sums = Some(cx.record.put(sums)?);
    ev.signature = Some(cx.record.put(armored.as_bytes())?);
    ev.key_fingerprint = Some(sshsig::fingerprint(key.public_key()));
    ev.public_key = Some(sshsig::public_line(key.public_key()));
    Ok(ev)
}

/// Verify the recorded signature again over the recorded SHA256SUMS, and that its key may sign
/// for the signer. Pure: reads only the spec, the evidence and the context.
pub fn judge(spec: &SignSpec, ev: &SignEvidence, cx: &JudgeContext<'_>) -> Verdict {
    match checked(spec, ev, cx) {
        Ok(verdict) | Err(verdict) => verdict,
    }
}

/// The checks in turn; the first that fails ends the judging with its red verdict (`Err`).
fn checked(spec: &SignSpec, ev: &SignEvidence, cx: &JudgeContext<'_>) -> Result<Verdict, Verdict> {
    key_usable(ev)?;
    let (sums, sig_bytes) = recorded(ev, cx)?;
    sums_are_the_subject(ev, &sums, cx)?;
    let (key, fp) = signing_key(ev, &sums, &sig_bytes)?;
    if ev.throwaway {
        return Ok(throwaway(&fp, cx));
    }
    Ok(signer_allowed(spec, &key, &fp, cx))
}

/// The configured key could be used: red `key-unavailable` or `key-unusable` if not.
fn key_usable(ev: &SignEvidence) -> Result<(), Verdict> {
    let Some(p) = &ev.key_problem else {
        return Ok(());
    };
    let code = match p.kind {
        KeyProblemKind::Unavailable => Code::KeyUnavailable,
        KeyProblemKind::Unusable => Code::KeyUnusable,
    };
    Err(Verdict::red(
        code,
        format!("signing key {}: {}", ev.key, p.message),
    ))
}

/// The signed SHA256SUMS and the signature, read back from the record.
fn recorded(ev: &SignEvidence, cx: &JudgeContext<'_>) -> Result<(Vec<u8>, Vec<u8>), Verdict> {
    let (Some(sums_digest), Some(sig_digest)) = (&ev.sums, &ev.signature) else {
        return Err(Verdict::red(
            Code::SignatureMissing,
            "no signature over SHA256SUMS was recorded",
        ));
    };
    let sums = cx
        .blobs
        .get(sums_digest)
        .map_err(|e| Verdict::red(Code::EvidenceUnreadable, format!("SHA256SUMS: {e}")))?;
    let sig_bytes = cx
        .blobs
        .get(sig_digest)
        .map_err(|e| Verdict::red(Code::EvidenceUnreadable, format!("{SIG_FILE}: {e}")))?;
    Ok((sums, sig_bytes))
}

/// The signed bytes are what `SHA256SUMS` in the staging folder holds, and the release
/// subject.
fn sums_are_the_subject(
    ev: &SignEvidence,
    sums: &[u8],
    cx: &JudgeContext<'_>,
) -> Result<(), Verdict> {
    if !ev.sums_written {
        return Err(Verdict::red(
            Code::SumsNotWritten,
            format!("{SUMS_FILE} in the staging folder does not hold the signed bytes"),
        ));
    }
    let actual = format!("sha256:{}", sha256_hex(sums));
    if actual != cx.subject {
        return Err(Verdict::red(
            Code::SubjectMismatch,
            format!(
                "the signed SHA256SUMS is {actual}, the release subject is {}",
                cx.subject
            ),
        ));
    }
    Ok(())
}

/// The key that made the signature, and its fingerprint: the signature verifies over `sums`
/// (namespace `file`), by the key the evidence names.
fn signing_key(
    ev: &SignEvidence,
    sums: &[u8],
    sig_bytes: &[u8],
) -> Result<(ssh_key::PublicKey, String), Verdict> {
    let invalid = |message: String| Verdict::red(Code::SignatureInvalid, message);
    let Ok(armored) = std::str::from_utf8(sig_bytes) else {
        return Err(invalid(format!("{SIG_FILE} is not text")));
    };
    let key = sshsig::signature_key(armored).map_err(|e| invalid(format!("{SIG_FILE}: {e}")))?;
    sshsig::verify_with_key(&key, sshsig::NS_FILE, sums, armored)
        .map_err(|e| invalid(format!("{SIG_FILE}: {e}")))?;
    let fp = sshsig::fingerprint(&key);
    if ev.key_fingerprint.as_deref() != Some(fp.as_str()) {
        return Err(invalid(format!(
            "{SIG_FILE} is signed by {fp}, the evidence names {}",
            ev.key_fingerprint.as_deref().unwrap_or("no key")
        )));
    }
    Ok((key, fp))
}

/// A throwaway key is in no allowed_signers file; it only shows the shape of a dry run: green
/// in one, red outside.
fn throwaway(fp: &str, cx: &JudgeContext<'_>) -> Verdict {
    if cx.dry_run {
        Verdict::green()
    } else {
        Verdict::red(
            Code::ThrowawayKey,
            format!("{SIG_FILE} was made with a throwaway key ({fp}) outside a dry run"),
        )
    }
}

/// The recorded allowed_signers lists `key` for the signer, for namespace `file`, at the
/// start of the run.
fn signer_allowed(
    spec: &SignSpec,
    key: &ssh_key::PublicKey,
    fp: &str,
    cx: &JudgeContext<'_>,
) -> Verdict {
    let Some(text) = cx.signers else {
        return Verdict::red(
            Code::SignersMissing,
            format!(
                "no allowed_signers is recorded to check {} against",
                spec.signer
            ),
        );
    };
    let signers = match crate::signers::parse(text) {
        Ok(s) => s,
        Err(errs) => {
            let first = errs.first().map(ToString::to_string).unwrap_or_default();
            return Verdict::red(
                Code::SignersInvalid,
                format!("allowed_signers has {} bad line(s); {first}", errs.len()),
            );
        }
    };
    if signers.allows(&spec.signer, key, sshsig::NS_FILE, cx.started_at) {
        return Verdict::green();
    }
    let others = signers.principals_for_key(key, sshsig::NS_FILE, cx.started_at);
    let detail = if others.is_empty() {
        "which allowed_signers does not list for namespace file at this time".to_string()
    } else {
        format!("which allowed_signers lists only for {}", others.join(", "))
    };
    Verdict::red(
        Code::SignerNotAllowed,
        format!(
            "{SIG_FILE} is signed by {fp}, {detail}; the signer is {}",
            spec.signer
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("/keys/release".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expansion_names_the_missing_variable() {
        assert_eq!(expand_env("${KEY}", lookup).unwrap(), "/keys/release");
        assert_eq!(
            expand_env("a/${KEY}/b$c", lookup).unwrap(),
            "a//keys/release/b$c"
        );
        assert_eq!(expand_env("plain", lookup).unwrap(), "plain");
        let e = expand_env("${NOPE}", lookup).unwrap_err();
        assert!(e.contains("NOPE") && e.contains("not set"), "{e}");
        let e = expand_env("${EMPTY}", lookup).unwrap_err();
        assert!(e.contains("EMPTY") && e.contains("empty"), "{e}");
        assert!(
            expand_env("${KEY", lookup)
                .unwrap_err()
                .contains("unterminated")
        );
        assert!(expand_env("${1X}", lookup).unwrap_err().contains("invalid"));
    }

    /// Evidence blobs held in memory, checked by digest like the real store.
    struct MemBlobs(std::collections::BTreeMap<String, Vec<u8>>);

    impl crate::record::Blobs for MemBlobs {
        fn get(&self, digest: &str) -> Result<Vec<u8>, crate::record::RecordError> {
            self.0
                .get(digest)
                .cloned()
                .ok_or_else(|| crate::record::RecordError::BadDigest(digest.to_string()))
        }
    }

    fn pipeline() -> crate::model::Pipeline {
        crate::model::Pipeline {
            file: "/p/pipeline.yaml".into(),
            root: "/p".into(),
            project: "acme".into(),
            state_dir: "/p/.relgate".into(),
            artefacts: vec![],
            signers: None,
            roles: Default::default(),
            changes: None,
            gates: vec![],
            publish: None,
            share: None,
        }
    }

    /// Evidence for `sums` signed by `key`, with the blobs that hold it.
    fn signed(key: &ssh_key::PrivateKey, sums: &[u8], throwaway: bool) -> (SignEvidence, MemBlobs) {
        let sig = sshsig::sign(key, sshsig::NS_FILE, sums).unwrap();
        let mut blobs = std::collections::BTreeMap::new();
        blobs.insert(sha256_hex(sums), sums.to_vec());
        blobs.insert(sha256_hex(sig.as_bytes()), sig.as_bytes().to_vec());
        let ev = SignEvidence {
            signer: "r@x".into(),
            key: "k".into(),
            key_path: Some("/p/k".into()),
            key_problem: None,
            throwaway,
            note: None,
            sums: Some(sha256_hex(sums)),
            sums_written: true,
            signature: Some(sha256_hex(sig.as_bytes())),
            key_fingerprint: Some(sshsig::fingerprint(key.public_key())),
            public_key: Some(sshsig::public_line(key.public_key())),
        };
        (ev, MemBlobs(blobs))
    }

    fn judged(
        ev: &SignEvidence,
        blobs: &MemBlobs,
        signers: Option<&str>,
        dry_run: bool,
    ) -> Vec<String> {
        let p = pipeline();
        let sums = blobs
            .0
            .get(ev.sums.as_deref().unwrap_or(""))
            .cloned()
            .unwrap_or_default();
        let subject = format!("sha256:{}", sha256_hex(&sums));
        let cx = JudgeContext {
            project: "acme",
            version: "1.0.0",
            subject: &subject,
            operator: None,
            started_at: 1_795_000_000,
            dry_run,
            signers,
            pipeline: &p,
            policy: "sha256:00",
            subject_since: 0,
            blobs,
        };
        let spec = SignSpec {
            key: "k".into(),
            signer: "r@x".into(),
        };
        judge(&spec, ev, &cx)
            .reasons
            .into_iter()
            .map(|r| r.code)
            .collect()
    }

    #[test]
    fn judge_codes() {
        let key = sshsig::throwaway_key().unwrap();
        let allowed = format!("r@x {}", sshsig::public_line(key.public_key()));
        let (ev, blobs) = signed(&key, b"sums\n", false);
        assert!(judged(&ev, &blobs, Some(&allowed), false).is_empty());
        assert_eq!(judged(&ev, &blobs, None, false), ["signers-missing"]);
        assert_eq!(
            judged(&ev, &blobs, Some("garbage"), false),
            ["signers-invalid"]
        );
        let other = format!("s@x {}", sshsig::public_line(key.public_key()));
        assert_eq!(
            judged(&ev, &blobs, Some(&other), false),
            ["signer-not-allowed"]
        );

        let mut wrong_fp = ev.clone();
        wrong_fp.key_fingerprint = Some("SHA256:other".into());
        assert_eq!(
            judged(&wrong_fp, &blobs, Some(&allowed), false),
            ["signature-invalid"]
        );

        let mut unsigned = ev.clone();
        unsigned.signature = None;
        assert_eq!(
            judged(&unsigned, &blobs, Some(&allowed), false),
            ["signature-missing"]
        );

        let mut no_key = ev.clone();
        no_key.key_problem = Some(KeyProblem {
            kind: KeyProblemKind::Unavailable,
            message: "environment variable K is not set".into(),
        });
        assert_eq!(
            judged(&no_key, &blobs, Some(&allowed), false),
            ["key-unavailable"]
        );

        let (tw, tw_blobs) = signed(&sshsig::throwaway_key().unwrap(), b"sums\n", true);
        assert!(judged(&tw, &tw_blobs, Some(&allowed), true).is_empty());
        assert_eq!(
            judged(&tw, &tw_blobs, Some(&allowed), false),
            ["throwaway-key"]
        );
        // A dry run does not make a real key acceptable when it is not allowed.
        assert_eq!(
            judged(&ev, &blobs, Some(&other), true),
            ["signer-not-allowed"]
        );
    }

    #[test]
    fn relative_paths_resolve_against_the_root() {
        let spec = SignSpec {
            key: "keys/release".into(),
            signer: "r@x".into(),
        };
        assert_eq!(
            key_path(&spec, Path::new("/pipe")).unwrap(),
            PathBuf::from("/pipe/keys/release")
        );
        let spec = SignSpec {
            key: "/abs/key".into(),
            signer: "r@x".into(),
        };
        assert_eq!(
            key_path(&spec, Path::new("/pipe")).unwrap(),
            PathBuf::from("/abs/key")
        );
    }
}
