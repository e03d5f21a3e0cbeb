//! DSSE, the Dead Simple Signing Envelope (secure-systems-lab/dsse, protocol v1): a signature
//! over `PAE(payloadType, payload)`, so that the type is signed with the bytes.
//!
//! Signatures are what DSSE verifiers expect of each key type: Ed25519 over PAE; ECDSA over the
//! SHA-256 (nistp256) or SHA-384 (nistp384) of PAE, DER-encoded; RSA PKCS#1 v1.5 over its
//! SHA-256 (securesystemslib scheme `rsa-pkcs1v15-sha256`). An SSH key or agent makes exactly
//! those (ECDSA only needs its `(r, s)` re-encoded), and PAE begins with `DSSEv1 `, which no
//! SSHSIG signed-data blob (`SSHSIG…`) or SSH authentication blob (a length-prefixed session
//! id) can, so the release key signing both formats lets no signature pass for the other.

use base64ct::Encoding;
use serde::{Deserialize, Serialize};
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, HashAlg, PublicKey, Signature};

use super::der;
use crate::signkey::{RawSigner, RsaHash};
use crate::sshsig;

/// The payload type of an in-toto Statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

#[derive(Debug, thiserror::Error)]
pub enum DsseError {
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("not a DSSE envelope: {0}")]
    Malformed(String),
    #[error("payloadType is {found:?}, expected {expected:?}")]
    PayloadType { found: String, expected: String },
    #[error("no signature with keyid {0} (the release key's fingerprint)")]
    NoSignature(String),
    #[error("the signature by {0} does not verify")]
    Invalid(String),
}

/// The envelope, as JSON: `{"payload", "payloadType", "signatures": [{"keyid", "sig"}]}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub payload: String,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EnvelopeSignature {
    #[serde(default)]
    pub keyid: String,
    pub sig: String,
}

/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Sign `payload` with `key`; returns the envelope as one line of canonical JSON (no LF), its
/// `keyid` the key's OpenSSH `SHA256:` fingerprint.
pub fn sign(
    key: &(impl RawSigner + ?Sized),
    payload_type: &str,
    payload: &[u8],
) -> Result<String, DsseError> {
    let msg = pae(payload_type, payload);
    let raw = key
        .sign_raw(&msg, RsaHash::Sha256)
        .map_err(|e| DsseError::Sign(e.to_string()))?;
    let sig = match raw.algorithm() {
        Algorithm::Ed25519
        | Algorithm::Rsa {
            hash: Some(HashAlg::Sha256),
        } => raw.as_bytes().to_vec(),
        Algorithm::Ecdsa { .. } => {
            let (r, s) = ssh_ecdsa_components(raw.as_bytes()).map_err(DsseError::Sign)?;
            der::ecdsa_sig(&r, &s)
        }
        other => {
            return Err(DsseError::Sign(format!(
                "a {other} signature is not one DSSE verifiers check"
            )));
        }
    };
    let fp = sshsig::fingerprint(key.public_key());
    let env = Envelope {
        payload: base64ct::Base64::encode_string(payload),
        payload_type: payload_type.to_string(),
        signatures: vec![EnvelopeSignature {
            keyid: fp.clone(),
            sig: base64ct::Base64::encode_string(&sig),
        }],
    };
    verify(
        &serde_json::to_string(&env).unwrap_or_default(),
        key.public_key(),
        payload_type,
    )
    .map_err(|e| DsseError::Sign(format!("the envelope made does not verify: {e}")))?;
    crate::digest::canonical_json(&env).map_err(|e| DsseError::Sign(e.to_string()))
}

/// Check an envelope: `payloadType` is `expected_type`, and a signature whose `keyid` is the
/// fingerprint of `key` verifies by `key` over PAE. Returns the payload. Other signatures are
/// ignored, as DSSE says; the key is the caller's, never the envelope's.
pub fn verify(text: &str, key: &PublicKey, expected_type: &str) -> Result<Vec<u8>, DsseError> {
    let env: Envelope =
        serde_json::from_str(text.trim_end()).map_err(|e| DsseError::Malformed(e.to_string()))?;
    if env.payload_type != expected_type {
        return Err(DsseError::PayloadType {
            found: env.payload_type,
            expected: expected_type.to_string(),
        });
    }
    let payload = b64(&env.payload).map_err(DsseError::Malformed)?;
    let fp = sshsig::fingerprint(key);
    let msg = pae(&env.payload_type, &payload);
    let mine: Vec<&EnvelopeSignature> = env.signatures.iter().filter(|s| s.keyid == fp).collect();
    if mine.is_empty() {
        return Err(DsseError::NoSignature(fp));
    }
    for s in mine {
        let Ok(raw) = b64(&s.sig) else { continue };
        if verify_raw(key, &msg, &raw).is_ok() {
            return Ok(payload);
        }
    }
    Err(DsseError::Invalid(fp))
}

/// Verify a DSSE signature (the per-type encoding of the module comment) over `msg`.
fn verify_raw(key: &PublicKey, msg: &[u8], raw: &[u8]) -> Result<(), String> {
    let sig = match key.key_data() {
        KeyData::Ed25519(_) => Signature::new(Algorithm::Ed25519, raw.to_vec()),
        KeyData::Ecdsa(k) => {
            let (r, s) = der::read_ecdsa_sig(raw)?;
            let mut data = Vec::new();
            for part in [r, s] {
                mpint(&mut data, &part);
            }
            Signature::new(Algorithm::Ecdsa { curve: k.curve() }, data)
        }
        KeyData::Rsa(_) => Signature::new(
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
            raw.to_vec(),
        ),
        other => {
            return Err(format!(
                "{} keys do not sign DSSE envelopes",
                other.algorithm()
            ));
        }
    }
    .map_err(|e| e.to_string())?;
    sshsig::key_policy(key)?;
    signature::Verifier::verify(key.key_data(), msg, &sig).map_err(|e| e.to_string())
}

/// An SSH `mpint` of a non-negative magnitude.
fn mpint(out: &mut Vec<u8>, magnitude: &[u8]) {
    let trimmed: Vec<u8> = magnitude.iter().copied().skip_while(|b| *b == 0).collect();
    let pad = trimmed.first().is_some_and(|b| b & 0x80 != 0);
    let len = trimmed.len() + usize::from(pad);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    if pad {
        out.push(0);
    }
    out.extend(trimmed);
}

/// `(r, s)` of an SSH ECDSA signature blob (`mpint r, mpint s`).
fn ssh_ecdsa_components(data: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut rest = data;
    let mut take = || -> Result<Vec<u8>, String> {
        let len_bytes = rest.get(..4).ok_or("short ECDSA signature")?;
        let n =
            u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        let v = rest.get(4..4 + n).ok_or("short ECDSA signature")?.to_vec();
        rest = &rest[4 + n..];
        Ok(v)
    };
    let r = take()?;
    let s = take()?;
    Ok((r, s))
}

/// Base64, standard or URL-safe, padded or not (DSSE verifiers must accept each).
fn b64(s: &str) -> Result<Vec<u8>, String> {
    let normal: String = s
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    base64ct::Base64Unpadded::decode_vec(&normal).map_err(|e| format!("bad base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::EcdsaCurve;

    /// The test vector of the DSSE protocol document.
    #[test]
    fn pae_matches_the_spec_test_vector() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    }

    #[test]
    fn an_envelope_verifies_only_unchanged_and_by_its_key() {
        let key = crate::sshsig::throwaway_key().unwrap();
        let env = sign(&key, PAYLOAD_TYPE, b"{\"a\":1}").unwrap();
        assert_eq!(
            verify(&env, key.public_key(), PAYLOAD_TYPE).unwrap(),
            b"{\"a\":1}"
        );
        // URL-safe, unpadded base64 is read too.
        let mut e: Envelope = serde_json::from_str(&env).unwrap();
        let url = |s: &str| s.replace('+', "-").replace('/', "_").replace('=', "");
        e.payload = url(&e.payload);
        e.signatures[0].sig = url(&e.signatures[0].sig);
        let text = serde_json::to_string(&e).unwrap();
        assert!(verify(&text, key.public_key(), PAYLOAD_TYPE).is_ok());
        let other = crate::sshsig::throwaway_key().unwrap();
        assert!(matches!(
            verify(&env, other.public_key(), PAYLOAD_TYPE),
            Err(DsseError::NoSignature(_))
        ));
        let retyped = env.replace(PAYLOAD_TYPE, "application/json");
        assert!(verify(&retyped, key.public_key(), "application/json").is_err());
        let v: serde_json::Value = serde_json::from_str(&env).unwrap();
        let changed = env.replace(
            v["payload"].as_str().unwrap(),
            &base64ct::Base64::encode_string(b"{\"a\":2}"),
        );
        assert!(matches!(
            verify(&changed, key.public_key(), PAYLOAD_TYPE),
            Err(DsseError::Invalid(_))
        ));
    }

    #[test]
    fn ecdsa_envelopes_carry_der_signatures() {
        for curve in [EcdsaCurve::NistP256, EcdsaCurve::NistP384] {
            let key = ssh_key::PrivateKey::random(
                &mut ssh_key::rand_core::OsRng,
                Algorithm::Ecdsa { curve },
            )
            .unwrap();
            let env = sign(&key, PAYLOAD_TYPE, b"x").unwrap();
            let v: serde_json::Value = serde_json::from_str(&env).unwrap();
            let sig = b64(v["signatures"][0]["sig"].as_str().unwrap()).unwrap();
            assert!(der::read_ecdsa_sig(&sig).is_ok());
            assert!(verify(&env, key.public_key(), PAYLOAD_TYPE).is_ok());
        }
    }
}
