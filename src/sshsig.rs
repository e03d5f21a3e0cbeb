//! SSHSIG signing and verification (OpenSSH `ssh-keygen -Y sign` / `-Y verify` compatible).
//!
//! Verified key types ([`key_policy`], the one place that says which): `ssh-ed25519`,
//! `ecdsa-sha2-nistp256`, `ecdsa-sha2-nistp384`, `ssh-rsa` keys of at least 2048 bits with
//! `rsa-sha2-256`/`rsa-sha2-512` signatures (never SHA-1), and the security-key types
//! `sk-ssh-ed25519@openssh.com` and `sk-ecdsa-sha2-nistp256@openssh.com`, whose signatures must
//! say the user was present (flag 0x01); their flags and counter are returned. Anything else
//! (`ssh-dss`, `ecdsa-sha2-nistp521`, smaller RSA keys, certificates) is refused by name.
//! Signing is [`crate::signkey`]'s: a key file or ssh-agent.

use std::path::{Path, PathBuf};

use ssh_key::public::KeyData;
use ssh_key::{Algorithm, EcdsaCurve, HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

use crate::signkey::{RawSigner, RsaHash};

/// Namespace of the signature over `SHA256SUMS` (what `ssh-keygen -Y sign -n file` uses).
pub const NS_FILE: &str = "file";
/// Namespace of the signed log checkpoint.
pub const NS_CHECKPOINT: &str = "relgate-checkpoint";
/// Namespace of sign-off statements.
pub const NS_APPROVAL: &str = "relgate-approval";

#[derive(Debug, thiserror::Error)]
pub enum SshsigError {
    #[error("cannot read key {path}: {message}")]
    ReadKey { path: PathBuf, message: String },
    #[error("key {path} is a {algorithm} key: {why}")]
    Unsupported {
        path: PathBuf,
        algorithm: String,
        why: String,
    },
    #[error(transparent)]
    Agent(Box<crate::agent::AgentError>),
    #[error(
        "{path} is a public key ({fingerprint}), so relgate signs through ssh-agent, but the \
         agent at {} does not hold it (ssh-add the private key)", .socket.display()
    )]
    NotInAgent {
        path: PathBuf,
        fingerprint: String,
        socket: PathBuf,
    },
    #[error(
        "key {path} is passphrase-protected; set RELGATE_KEY_PASSPHRASE or use an unencrypted key"
    )]
    Encrypted { path: PathBuf },
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("signature is not a valid SSH signature: {0}")]
    Malformed(String),
    #[error("signature does not verify: {0}")]
    Invalid(String),
}

impl SshsigError {
    /// The key is not there to be used (no agent, or the agent does not hold it), as opposed
    /// to a key that is there but cannot serve: a dry run signs with a throwaway key instead.
    pub fn is_unavailable(&self) -> bool {
        match self {
            SshsigError::NotInAgent { .. } => true,
            SshsigError::Agent(e) => !matches!(
                **e,
                crate::agent::AgentError::Protocol { .. }
                    | crate::agent::AgentError::Refused { .. }
            ),
            _ => false,
        }
    }
}

/// Load an OpenSSH private key; a passphrase comes from `RELGATE_KEY_PASSPHRASE`. Which
/// algorithms may sign from disk is [`crate::signkey`]'s to say.
pub fn load_private_key(path: &Path) -> Result<PrivateKey, SshsigError> {
    let text = std::fs::read_to_string(path).map_err(|e| SshsigError::ReadKey {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    // ssh-keygen reads a key with blank lines around it, as a CI secret pasted with its final
    // newline and written out with `printf '%s\n'` has; the PEM parser alone refuses that.
    let key = PrivateKey::from_openssh(text.trim()).map_err(|e| SshsigError::ReadKey {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let key = if key.is_encrypted() {
        match std::env::var("RELGATE_KEY_PASSPHRASE") {
            Ok(pass) => key
                .decrypt(pass.as_bytes())
                .map_err(|e| SshsigError::ReadKey {
                    path: path.to_path_buf(),
                    message: format!("cannot decrypt: {e}"),
                })?,
            Err(_) => {
                return Err(SshsigError::Encrypted {
                    path: path.to_path_buf(),
                });
            }
        }
    } else {
        key
    };
    Ok(key)
}

/// A fresh Ed25519 key for dry runs that have no real key.
pub fn throwaway_key() -> Result<PrivateKey, SshsigError> {
    PrivateKey::random(&mut ssh_key::rand_core::OsRng, Algorithm::Ed25519)
        .map_err(|e| SshsigError::Sign(e.to_string()))
}

/// Sign `msg` under `namespace` (SHA-512, as `ssh-keygen -Y sign`); returns the armored
/// `-----BEGIN SSH SIGNATURE-----` text. The signature is verified before it is returned: an
/// agent is another program, and what it answers is checked like any signature.
pub fn sign(
    key: &(impl RawSigner + ?Sized),
    namespace: &str,
    msg: &[u8],
) -> Result<String, SshsigError> {
    let failed = |e: ssh_key::Error| SshsigError::Sign(e.to_string());
    let data = SshSig::signed_data(namespace, HashAlg::Sha512, msg).map_err(failed)?;
    let raw = key.sign_raw(&data, RsaHash::Sha512)?;
    let sig = SshSig::new(
        key.public_key().key_data().clone(),
        namespace,
        HashAlg::Sha512,
        raw,
    )
    .map_err(failed)?;
    let armored = sig.to_pem(LineEnding::LF).map_err(failed)?;
    verify_with_key(key.public_key(), namespace, msg, &armored)
        .map_err(|e| SshsigError::Sign(format!("the signature made does not verify: {e}")))?;
    Ok(armored)
}

/// May a signature by `key` count at all? The key types relgate verifies (module comment);
/// the reason names the type when it may not.
pub fn key_policy(key: &PublicKey) -> Result<(), String> {
    const SUPPORTED: &str = "relgate verifies ssh-ed25519, ecdsa-sha2-nistp256, \
        ecdsa-sha2-nistp384, ssh-rsa (2048 bits or more), sk-ssh-ed25519@openssh.com and \
        sk-ecdsa-sha2-nistp256@openssh.com keys";
    match key.key_data() {
        KeyData::Ed25519(_) | KeyData::SkEd25519(_) | KeyData::SkEcdsaSha2NistP256(_) => Ok(()),
        KeyData::Ecdsa(k) => match k.curve() {
            EcdsaCurve::NistP256 | EcdsaCurve::NistP384 => Ok(()),
            EcdsaCurve::NistP521 => {
                Err(format!("ecdsa-sha2-nistp521 is not supported; {SUPPORTED}"))
            }
        },
        KeyData::Rsa(k) => {
            let bits = mpint_bits(k.n.as_positive_bytes().unwrap_or_default());
            if bits >= MIN_RSA_BITS {
                Ok(())
            } else {
                Err(format!(
                    "an RSA key of {bits} bits is too small; relgate accepts RSA keys of \
                     {MIN_RSA_BITS} bits or more"
                ))
            }
        }
        KeyData::Dsa(_) => Err(format!(
            "ssh-dss (DSA) keys are not supported: OpenSSH no longer makes or accepts them; \
             {SUPPORTED}"
        )),
        other => Err(format!(
            "{} keys are not supported; {SUPPORTED}",
            other.algorithm()
        )),
    }
}

/// The smallest RSA modulus accepted, in bits (what OpenSSH and NIST SP 800-131A require).
pub const MIN_RSA_BITS: usize = 2048;

/// The bit length of a big-endian unsigned integer.
fn mpint_bits(bytes: &[u8]) -> usize {
    let bytes = match bytes.iter().position(|b| *b != 0) {
        Some(i) => &bytes[i..],
        None => return 0,
    };
    bytes.len() * 8 - bytes[0].leading_zeros() as usize
}

/// A security key's report in its signature: the flags byte and the signature counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkDetails {
    pub flags: u8,
    pub counter: u32,
}

/// The flag a security key sets when its user touched it.
pub const SK_USER_PRESENT: u8 = 0x01;
/// The flag a security key sets when it verified its user (PIN, biometrics).
pub const SK_USER_VERIFIED: u8 = 0x04;

/// What a verified signature says beyond "valid".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigDetails {
    pub fingerprint: String,
    /// Set for `sk-…` keys.
    pub sk: Option<SkDetails>,
}

/// Parse an armored signature and return the public key it claims.
pub fn signature_key(armored: &str) -> Result<PublicKey, SshsigError> {
    let sig = SshSig::from_pem(armored).map_err(|e| SshsigError::Malformed(e.to_string()))?;
    Ok(PublicKey::from(sig.public_key().clone()))
}

/// Verify an armored signature over `msg` under `namespace` with exactly `key`.
pub fn verify_with_key(
    key: &PublicKey,
    namespace: &str,
    msg: &[u8],
    armored: &str,
) -> Result<(), SshsigError> {
    verify_detailed(key, namespace, msg, armored).map(|_| ())
}

/// [`verify_with_key`], returning the key's fingerprint and, for a security key, its flags
/// and counter. The key type must pass [`key_policy`]; a security key's signature must say
/// the user was present.
pub fn verify_detailed(
    key: &PublicKey,
    namespace: &str,
    msg: &[u8],
    armored: &str,
) -> Result<SigDetails, SshsigError> {
    let sig = SshSig::from_pem(armored).map_err(|e| SshsigError::Malformed(e.to_string()))?;
    if sig.public_key() != key.key_data() {
        return Err(SshsigError::Invalid("signed by another key".into()));
    }
    key_policy(key).map_err(SshsigError::Invalid)?;
    if let Algorithm::Rsa { hash: None } = sig.signature().algorithm() {
        return Err(SshsigError::Invalid(
            "an ssh-rsa (SHA-1) signature; only rsa-sha2-256 and rsa-sha2-512 are accepted".into(),
        ));
    }
    key.verify(namespace, msg, &sig)
        .map_err(|e| SshsigError::Invalid(e.to_string()))?;
    let sk = match sig.signature().algorithm() {
        Algorithm::SkEd25519 | Algorithm::SkEcdsaSha2NistP256 => {
            let data = sig.signature().as_bytes();
            let trailer = data
                .len()
                .checked_sub(5)
                .and_then(|at| data.get(at..))
                .ok_or_else(|| {
                    SshsigError::Malformed("a security key signature without flags".into())
                })?;
            let details = SkDetails {
                flags: trailer[0],
                counter: u32::from_be_bytes([trailer[1], trailer[2], trailer[3], trailer[4]]),
            };
            if details.flags & SK_USER_PRESENT == 0 {
                return Err(SshsigError::Invalid(format!(
                    "the security key did not confirm that its user was present (flags {:#04x}, \
                     counter {})",
                    details.flags, details.counter
                )));
            }
            Some(details)
        }
        _ => None,
    };
    Ok(SigDetails {
        fingerprint: fingerprint(key),
        sk,
    })
}

/// `SHA256:...` fingerprint of a public key, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The `ssh-ed25519 AAAA...` line of a public key (no comment), or of any other type.
pub fn public_line(key: &PublicKey) -> String {
    let mut k = key.clone();
    k.set_comment("");
    k.to_openssh().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_roundtrip_and_namespace_binding() {
        let key = throwaway_key().unwrap();
        let sig = sign(&key, NS_FILE, b"hello").unwrap();
        verify_with_key(key.public_key(), NS_FILE, b"hello", &sig).unwrap();
        assert!(verify_with_key(key.public_key(), NS_CHECKPOINT, b"hello", &sig).is_err());
        assert!(verify_with_key(key.public_key(), NS_FILE, b"hellp", &sig).is_err());
        let other = throwaway_key().unwrap();
        assert!(verify_with_key(other.public_key(), NS_FILE, b"hello", &sig).is_err());
    }

    /// Signatures by keys of types relgate does not accept are refused with the reason, even
    /// when the signature itself is good (ssh-keygen made it).
    #[test]
    fn signatures_by_unsupported_key_types_are_refused_by_name() {
        use std::process::Command;
        let dir = tempfile::tempdir().unwrap();
        let msg = dir.path().join("m");
        std::fs::write(&msg, b"sums\n").unwrap();
        for (kind, bits, why) in [
            ("ecdsa", "521", "ecdsa-sha2-nistp521 is not supported"),
            ("rsa", "1024", "1024 bits is too small"),
        ] {
            let key = dir.path().join(format!("{kind}{bits}"));
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", kind, "-b", bits, "-N", "", "-f"])
                .arg(&key)
                .status()
                .unwrap();
            assert!(ok.success());
            let _ = std::fs::remove_file(dir.path().join("m.sig"));
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-Y", "sign", "-n", NS_FILE, "-f"])
                .arg(&key)
                .arg(&msg)
                .status()
                .unwrap();
            assert!(ok.success());
            let sig = std::fs::read_to_string(dir.path().join("m.sig")).unwrap();
            let public = signature_key(&sig).unwrap();
            let e = verify_with_key(&public, NS_FILE, b"sums\n", &sig).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
        }
    }

    #[test]
    fn rsa_bit_lengths() {
        assert_eq!(mpint_bits(&[0, 0x01, 0]), 9);
        assert_eq!(mpint_bits(&[0x80; 256]), 2048);
        assert_eq!(mpint_bits(&[0x7f; 256]), 2047);
        assert_eq!(mpint_bits(&[]), 0);
    }

    #[test]
    fn a_key_file_with_blank_lines_around_it_loads_as_ssh_keygen_reads_it() {
        let key = throwaway_key().unwrap();
        let pem = key.to_openssh(ssh_key::LineEnding::LF).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, format!("\n{}\n\n", pem.as_str())).unwrap();
        let loaded = load_private_key(&path).unwrap();
        assert_eq!(loaded.public_key(), key.public_key());
    }
}
