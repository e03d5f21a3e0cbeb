//! SSHSIG signing and verification (OpenSSH `ssh-keygen -Y sign` / `-Y verify` compatible),
//! Ed25519 only.

use std::path::{Path, PathBuf};

use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

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
    #[error("key {path} is a {algorithm} key; relgate signs with Ed25519 keys only")]
    NotEd25519 { path: PathBuf, algorithm: String },
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

/// Load an OpenSSH Ed25519 private key; a passphrase comes from `RELGATE_KEY_PASSPHRASE`.
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
    if key.algorithm() != Algorithm::Ed25519 {
        return Err(SshsigError::NotEd25519 {
            path: path.to_path_buf(),
            algorithm: key.algorithm().to_string(),
        });
    }
    Ok(key)
}

/// A fresh Ed25519 key for dry runs that have no real key.
pub fn throwaway_key() -> Result<PrivateKey, SshsigError> {
    PrivateKey::random(&mut ssh_key::rand_core::OsRng, Algorithm::Ed25519)
        .map_err(|e| SshsigError::Sign(e.to_string()))
}

/// Sign `msg` under `namespace`; returns the armored `-----BEGIN SSH SIGNATURE-----` text.
pub fn sign(key: &PrivateKey, namespace: &str, msg: &[u8]) -> Result<String, SshsigError> {
    let sig = key
        .sign(namespace, HashAlg::Sha512, msg)
        .map_err(|e| SshsigError::Sign(e.to_string()))?;
    sig.to_pem(LineEnding::LF)
        .map_err(|e| SshsigError::Sign(e.to_string()))
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
    let sig = SshSig::from_pem(armored).map_err(|e| SshsigError::Malformed(e.to_string()))?;
    if sig.public_key() != key.key_data() {
        return Err(SshsigError::Invalid("signed by another key".into()));
    }
    key.verify(namespace, msg, &sig)
        .map_err(|e| SshsigError::Invalid(e.to_string()))
}

/// `SHA256:...` fingerprint of a public key, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The `ssh-ed25519 AAAA...` line of a public key (no comment).
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
