//! The keys relgate signs with: a private key file, or a key held by an ssh-agent and named by
//! its public key, so that it never touches disk (the sign gate, checkpoints, `approve`).
//!
//! What a key file given to relgate holds decides how it signs:
//! - an OpenSSH **public** key (`ssh-ed25519 AAAA… comment`, a `.pub` file): through the agent
//!   in `SSH_AUTH_SOCK`, which must hold the matching private key (`ssh-add`);
//! - an OpenSSH **private** key: relgate signs itself, with Ed25519 and ECDSA (nistp256,
//!   nistp384) keys. RSA private keys are refused on disk: relgate does no RSA private-key
//!   operation itself (the `rsa` crate's RUSTSEC-2023-0071 timing issue concerns exactly those),
//!   so an RSA release or approver key signs through ssh-agent, where OpenSSH does it.
//!
//! Security-key (`sk-…`) keys sign only through an agent (the token answers there), and only
//! SSHSIG: their signatures cover the token's flags and counter, which no DSSE verifier
//! expects, so they cannot be a release key (the VSA is DSSE; `crate::intoto`).

use std::path::Path;

use ssh_key::{Algorithm, EcdsaCurve, PrivateKey, PublicKey, Signature};

use crate::agent::{self, Agent, AgentError};
use crate::sshsig::SshsigError;

/// A key relgate can sign with.
#[derive(Clone, Debug)]
pub enum SignKey {
    /// A private key read from a file (or made for a dry run).
    File(Box<PrivateKey>),
    /// A key the agent holds; only its public half is known here.
    Agent { agent: Agent, public: PublicKey },
}

/// The hash an RSA signature is made with (other key types fix their own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaHash {
    Sha256,
    Sha512,
}

/// Anything that signs bytes as SSH does for its key type (Ed25519 over the bytes, ECDSA over
/// their SHA-256/384, RSA PKCS#1 v1.5 over their SHA-256/512): the building block of both
/// SSHSIG and DSSE signatures.
pub trait RawSigner {
    fn public_key(&self) -> &PublicKey;
    fn sign_raw(&self, data: &[u8], rsa: RsaHash) -> Result<Signature, SshsigError>;
}

impl RawSigner for PrivateKey {
    fn public_key(&self) -> &PublicKey {
        PrivateKey::public_key(self)
    }

    fn sign_raw(&self, data: &[u8], _rsa: RsaHash) -> Result<Signature, SshsigError> {
        file_algorithm(&self.algorithm()).map_err(SshsigError::Sign)?;
        signature::Signer::try_sign(self.key_data(), data)
            .map_err(|e| SshsigError::Sign(e.to_string()))
    }
}

impl RawSigner for SignKey {
    fn public_key(&self) -> &PublicKey {
        match self {
            SignKey::File(k) => k.public_key(),
            SignKey::Agent { public, .. } => public,
        }
    }

    fn sign_raw(&self, data: &[u8], rsa: RsaHash) -> Result<Signature, SshsigError> {
        match self {
            SignKey::File(k) => k.sign_raw(data, rsa),
            SignKey::Agent { agent, public } => {
                let flags = match (public.algorithm(), rsa) {
                    (Algorithm::Rsa { .. }, RsaHash::Sha256) => agent::RSA_SHA2_256,
                    (Algorithm::Rsa { .. }, RsaHash::Sha512) => agent::RSA_SHA2_512,
                    _ => 0,
                };
                agent.sign(public, data, flags).map_err(SshsigError::from)
            }
        }
    }
}

/// May relgate sign with a private key of this algorithm read from disk?
fn file_algorithm(a: &Algorithm) -> Result<(), String> {
    match a {
        Algorithm::Ed25519
        | Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256 | EcdsaCurve::NistP384,
        } => Ok(()),
        Algorithm::Rsa { .. } => Err(
            "relgate does not sign with RSA private keys itself; add the key to ssh-agent \
             (ssh-add) and name its public key (.pub) instead"
                .into(),
        ),
        other => Err(format!(
            "relgate signs with Ed25519 and ECDSA (nistp256, nistp384) key files, or any \
             supported key through ssh-agent; this is a {other} key"
        )),
    }
}

/// A fresh Ed25519 key for dry runs: it vouches for nothing.
pub fn throwaway() -> Result<SignKey, SshsigError> {
    crate::sshsig::throwaway_key().map(|k| SignKey::File(Box::new(k)))
}

/// Load the key at `path`: a public key signs through the agent in `SSH_AUTH_SOCK`, a private
/// key file (a passphrase from `RELGATE_KEY_PASSPHRASE`) signs itself.
pub fn load(path: &Path) -> Result<SignKey, SshsigError> {
    let read_err = |message: String| SshsigError::ReadKey {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| read_err(e.to_string()))?;
    if let Some(public) = public_key_text(&text) {
        return through_agent(path, public);
    }
    let key = crate::sshsig::load_private_key(path)?;
    file_algorithm(&key.algorithm()).map_err(|why| SshsigError::Unsupported {
        path: path.to_path_buf(),
        algorithm: key.algorithm().to_string(),
        why,
    })?;
    Ok(SignKey::File(Box::new(key)))
}

/// The public key of a `.pub` file's single line (or an `authorized_keys`-style line), if
/// that is what `text` is.
fn public_key_text(text: &str) -> Option<PublicKey> {
    let line = text.trim();
    if line.starts_with("-----BEGIN") || line.contains('\n') {
        return None;
    }
    PublicKey::from_openssh(line).ok()
}

fn through_agent(path: &Path, public: PublicKey) -> Result<SignKey, SshsigError> {
    crate::sshsig::key_policy(&public).map_err(|why| SshsigError::Unsupported {
        path: path.to_path_buf(),
        algorithm: public.algorithm().to_string(),
        why,
    })?;
    let agent = Agent::from_env().map_err(SshsigError::from)?;
    if !agent.holds(&public).map_err(SshsigError::from)? {
        return Err(SshsigError::NotInAgent {
            path: path.to_path_buf(),
            fingerprint: crate::sshsig::fingerprint(&public),
            socket: agent.socket().to_path_buf(),
        });
    }
    Ok(SignKey::Agent { agent, public })
}

/// Is the key an `sk-…` (security key) key?
pub fn is_security_key(key: &PublicKey) -> bool {
    matches!(
        key.algorithm(),
        Algorithm::SkEd25519 | Algorithm::SkEcdsaSha2NistP256
    )
}

/// A release key signs SHA256SUMS, checkpoints and the DSSE envelope of the VSA; a security
/// key cannot make the last (see the module comment).
pub fn check_release_key(key: &SignKey, path: &Path) -> Result<(), SshsigError> {
    if is_security_key(key.public_key()) {
        return Err(SshsigError::Unsupported {
            path: path.to_path_buf(),
            algorithm: key.public_key().algorithm().to_string(),
            why: "a security key's signatures cover its flags and counter, which DSSE verifiers \
                  of the release's attestation do not expect; use an Ed25519, ECDSA or RSA \
                  release key (a token-held PIV key through ssh-agent works)"
                .into(),
        });
    }
    Ok(())
}

impl From<AgentError> for SshsigError {
    fn from(e: AgentError) -> Self {
        SshsigError::Agent(Box::new(e))
    }
}
